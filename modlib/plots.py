"""Figures: the house style, ``savefig`` (the one way a figure reaches ``figures/``), and the
figure helpers that more than one notebook uses."""

from __future__ import annotations

import itertools
import re
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from . import cnt, graphs, paths, stats, store
from .checks import check_choice

FIGURE_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
FORMATS = ("png", "pdf", "svg")
_METADATA = {
    "png": {"Software": "modlib"},
    "pdf": {"Creator": "modlib", "Producer": "modlib", "CreationDate": None},
    "svg": {"Creator": "modlib", "Date": None},
}


def set_theme() -> None:
    """The house style: seaborn's ``whitegrid`` with readable font sizes, colour-blind palette;
    call it once at the top of a notebook (importing modlib changes no settings)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=1.05,
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold",
                      "svg.hashsalt": "modlib", "pdf.fonttype": 42})


def _check_name(name: str) -> None:
    if not FIGURE_NAME.match(name):
        raise ValueError(f"figure name {name!r} is not allowed: use NN_slug, two digits (the "
                         "notebook's number) then lowercase letters, digits and underscores")


def savefig(fig: matplotlib.figure.Figure, name: str, formats=("png",),
            dpi: float | None = None) -> None:
    """Write ``fig`` to ``figures/<name>.<format>`` for each of ``formats`` (``FORMATS``), with
    fixed metadata and atomically, so that a rerun gives byte-identical files. ``name`` is
    ``NN_slug``, the notebook's two digits first (``figures/MANIFEST.json`` attributes figures by
    them); raster ``dpi`` defaults to the theme's 150. Raises ``ValueError`` for a bad name or
    format."""
    _check_name(name)
    formats = [formats] if isinstance(formats, str) else list(formats)
    for fmt in formats:
        check_choice("format", fmt, FORMATS)
    for fmt in formats:                 # dpi None: the theme's savefig.dpi
        store.atomic_write(paths.figures_dir() / f"{name}.{fmt}", lambda tmp, fmt=fmt: fig.savefig(
            tmp, format=fmt, metadata=_METADATA[fmt], bbox_inches="tight", dpi=dpi))


# Shared figure helpers ------------------------------------------------------------------------
def curves_by_depth(tables: dict, title: str = "", band: bool = True):
    """Modularity curves ``{label: curve DataFrame}`` (layers 1, 2, ...) on one axis against
    relative depth (probe point / number of probe points), each as :func:`curves_over_seeds` of
    one seed, with its ±1 std band when ``band``. Returns ``(fig, ax)``. Introduced in notebook
    05_modularity_curves."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, table in tables.items():
        curves_over_seeds(ax, [table], label, x="depth", spread="Q_std" if band else None)
    ax.set(xlabel="relative depth (probe point / number of probe points)",
           ylabel="modularity Q", title=title)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig, ax


def curves_over_seeds(ax, tables, label: str | None = None, color=None, x: str = "layer",
                      value: str = "Q_mean", spread: str | None = "Q_std",
                      confidence: float = 0.95, marker: str = "o", linestyle: str = "-"):
    """Curves of independently trained networks (seeds) drawn as their mean, with the
    ``confidence`` interval over seeds (``stats.mean_ci``, docs/claims.md) as a band and,
    lighter, ± the mean over seeds of the within-network ``spread`` column (e.g. ``Q_std``).

    Args:
        tables: a list (or dict, values used) of DataFrames, one per seed, with the same ``x``
            values in the same order (``x="depth"``: row i of n at relative depth i / n).
        value: the column averaged over seeds; ``spread``: None for no lighter band.

    Returns a DataFrame, one row per point: ``x``, ``mean``, ``low``, ``high`` (NaN with one
    seed), ``within`` (mean spread), ``n_seeds``. Raises ``ValueError`` for no tables or tables
    whose ``x`` values differ. Introduced in notebook 05_modularity_curves.
    """
    tables = list(tables.values()) if isinstance(tables, dict) else list(tables)
    if not tables:
        raise ValueError("tables is empty: give one curve DataFrame per seed")
    xs = [np.arange(1, len(t) + 1) / len(t) if x == "depth" else t[x].to_numpy() for t in tables]
    if any(len(v) != len(xs[0]) or not np.allclose(v, xs[0]) for v in xs):
        raise ValueError(f"the curves have different {x!r} values ({[list(v) for v in xs]}): "
                         "curves over seeds must share their points")
    values = np.stack([t[value].to_numpy(dtype=float) for t in tables])    # (seeds, points)
    intervals = [stats.mean_ci(values[:, j], confidence) for j in range(values.shape[1])]
    within = (np.stack([t[spread].to_numpy(dtype=float) for t in tables]).mean(0)
              if spread is not None else np.full(values.shape[1], np.nan))
    summary = pd.DataFrame({"x": xs[0], "mean": values.mean(0),
                            "low": [i.low for i in intervals], "high": [i.high for i in intervals],
                            "within": within, "n_seeds": len(tables)})
    line, = ax.plot(summary["x"], summary["mean"], marker=marker, markersize=4, label=label,
                    color=color, linestyle=linestyle)
    colour = line.get_color()
    if spread is not None:
        ax.fill_between(summary["x"], summary["mean"] - within, summary["mean"] + within,
                        alpha=0.12, color=colour, linewidth=0)
    if len(tables) > 1:
        ax.fill_between(summary["x"], summary["low"], summary["high"], alpha=0.3, color=colour,
                        linewidth=0)
    return summary


def sensitivity(sweep, k_ref: int, n_ref: int, title: str = ""):
    """Two panels of ``modularity.sensitivity_sweep`` output: Q per layer for every k at
    ``N = n_ref``, and for every N at ``k = k_ref`` (darker = smaller value). Returns
    ``(fig, (ax_k, ax_n))``. Introduced in notebook 05_modularity_curves."""
    fig, (ax_k, ax_n) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, vary, fixed, ref in ((ax_k, "k", "N", n_ref), (ax_n, "N", "k", k_ref)):
        values = sorted(sweep[vary].unique())
        for value, colour in zip(values, ramp(len(values), "viridis", start=0)):
            part = sweep[(sweep[fixed] == ref) & (sweep[vary] == value)]
            ax.plot(part["layer"], part["Q"], marker="o", markersize=3, label=f"{vary}={value}",
                    color=colour)
        ax.set(title=f"{title}: varying {vary} ({fixed}={ref})", xlabel="probe point (layer)")
        ax.legend(fontsize=9)
    ax_k.set_ylabel("modularity Q")
    fig.tight_layout()
    return fig, (ax_k, ax_n)


def unit_delta_q(ax, table, removed, threshold=None, title: str = "") -> None:
    """Bars of ΔQ per unit (``pruning.unit_table``) at the unit's probe-point position: red for
    the units in ``removed``, blue for the other removable ones, grey for the fixed ones; an
    optional dashed line at ``threshold``. Introduced in notebook 06_layer_pruning."""
    positions = np.arange(1, len(table) + 1)
    chosen = table["unit"].isin(list(removed)).to_numpy()
    colours = np.where(chosen, "tab:red", np.where(table["removable"], "tab:blue", "lightgrey"))
    ax.bar(positions, table["delta_q"].fillna(0).to_numpy(), color=colours)
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1,
                   label=f"threshold {threshold:g}")
        ax.legend(fontsize=9)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(positions, table["unit"].tolist(), rotation=90, fontsize=9)
    ax.set(ylabel="ΔQ of the unit", title=title)


def _layer_heatmap(ax, matrix, title: str, cmap: str, label: str, **limits) -> None:
    ticks = np.arange(1, len(matrix) + 1)
    sns.heatmap(matrix, ax=ax, cmap=cmap, square=True, xticklabels=ticks, yticklabels=ticks,
                cbar_kws={"label": label, "shrink": 0.8}, **limits)
    ax.set(xlabel="layer j", ylabel="layer i", title=title)


def difference_heatmap(ax, q, title: str = "") -> None:
    """Heatmap of the layer-difference matrix ``|Q_i − Q_j|`` (paper A's poster;
    ``docs/modularity_curves.md``), blue colour map, layers from 1."""
    q = np.asarray(q, dtype=float)
    _layer_heatmap(ax, np.abs(q[:, None] - q[None, :]), title, "Blues", r"$|Q_i - Q_j|$", vmin=0)


def ramp(n: int, cmap: str = "viridis_r", start: float = 0.15) -> list:
    """``n`` colours of ``cmap``, light to dark (epochs, budgets ε). Introduced in notebook 07."""
    return [plt.get_cmap(cmap)(start + (1 - start) * i / max(1, n - 1)) for i in range(n)]


def panels(nrows: int, ncols: int, width: float = 5.2, height: float = 3.8, **kwargs):
    """``(fig, axes)``, ``axes`` 2-D, panels of ``width × height`` inches; ``kwargs`` to
    ``plt.subplots``. Introduced in notebook 07_training_dynamics."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                        **kwargs)


def band_grid(frame, x: str, label: str, panel: str, row: str | None = None, colors=None,
              xlabel: str = "probe point (layer)", ylabel: str = "modularity Q",
              title_fmt: str = "{panel}", legend_fmt: str = "{}", xscale: str = "linear",
              sharey: bool = True, width: float = 5.2, height: float = 3.8):
    """Small multiples of curves with bands: a panel per value of column ``panel`` (a row per
    value of ``row``), titled ``title_fmt.format(panel=..., row=...)``, each with a curve and band
    per value of column ``label`` (in order of first appearance; ``colors = {value: colour}``,
    default :func:`ramp`) from the columns ``x``, ``mean``, ``low``, ``high`` of the tidy
    ``frame`` (e.g. ``stats.summarise`` over seeds; a NaN band draws the line alone). Returns
    ``(fig, axes)``, ``axes`` 2-D. Raises ``ValueError`` naming missing columns. Introduced in
    notebook 07_training_dynamics (also used by 09_adversarial_inputs)."""
    needed = [c for c in (x, label, panel, row, "mean", "low", "high") if c is not None]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the column(s) {missing}: band_grid needs {needed}")
    columns = list(dict.fromkeys(frame[panel]))
    rows = list(dict.fromkeys(frame[row])) if row is not None else [None]
    fig, axes = panels(len(rows), len(columns), width, height, sharey=sharey)
    for (i, r), (j, p) in itertools.product(enumerate(rows), enumerate(columns)):
        ax = axes[i, j]
        part = frame[(frame[panel] == p) & ((frame[row] == r) if row is not None else True)]
        keys = list(dict.fromkeys(part[label]))
        shades = colors if colors is not None else dict(zip(keys, ramp(len(keys))))
        for key in keys:
            curve = part[part[label] == key].sort_values(x)
            xs, mean, low, high = curve[[x, "mean", "low", "high"]].to_numpy(dtype=float).T
            line, = ax.plot(xs, mean, marker="o", markersize=3, color=shades.get(key),
                            label=legend_fmt.format(key))
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.18, linewidth=0)
        ax.set(xscale=xscale, xlabel=xlabel, title=title_fmt.format(panel=p, row=r))
        ax.set_ylabel(ylabel if j == 0 else "")
    axes[0, 0].legend(fontsize=9)
    fig.tight_layout()
    return fig, axes


def cka_heatmap(ax, matrix, title: str = "") -> None:
    """Heatmap of a layer × layer linear CKA matrix on [0, 1] (bright = alike), layers from 1.
    Introduced in notebook 07_training_dynamics."""
    _layer_heatmap(ax, np.asarray(matrix), title, "magma", "CKA", vmin=0, vmax=1)


def savegif(animation, name: str, fps: float = 1.0, dpi: float = 90) -> None:
    """Write a ``matplotlib.animation.Animation`` to ``figures/<name>.gif`` (``PillowWriter``,
    ``fps`` frames per second, looping), atomically; ``name`` and ``ValueError`` as
    :func:`savefig`."""
    _check_name(name)

    def write(tmp):
        gif = tmp.with_name(tmp.name + ".gif")      # Pillow picks the format from the suffix
        try:
            animation.save(gif, writer=PillowWriter(fps=fps), dpi=dpi)
            gif.replace(tmp)
        finally:
            gif.unlink(missing_ok=True)

    store.atomic_write(paths.figures_dir() / f"{name}.gif", write)


# Relationship graphs and similarity histograms (notebooks 02-04) ------------------------------
def class_palette(num_classes: int) -> list:
    """One distinct colour per class (matplotlib's ``tab10``, then ``tab20`` beyond 10)."""
    return sns.color_palette("tab10" if num_classes <= 10 else "tab20", num_classes)


def class_circle_layout(labels, radius: float | None = None) -> np.ndarray:
    """Positions ``(N, 2)`` of a circular layout grouped by class: one small circle per class
    (``radius`` default ``0.8 · sin(π / C)``), their centres on the unit circle in class order,
    so that intra-class edges show as chords (docs/similarity_graphs.md; notebooks 03, 04)."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    radius = 0.8 * np.sin(np.pi / max(len(classes), 2)) if radius is None else radius
    positions = np.empty((len(labels), 2))
    for c, cls in enumerate(classes):
        members = np.flatnonzero(labels == cls)
        centre = 2 * np.pi * c / len(classes)
        angles = centre + np.pi + 2 * np.pi * np.arange(len(members)) / len(members)
        positions[members] = (np.array([np.cos(centre), np.sin(centre)])
                              + radius * np.column_stack([np.cos(angles), np.sin(angles)]))
    return positions


def draw_graph(ax, adjacency, positions, labels, palette=None, node_size: float = 18,
               edge_width: float = 0.9, cmap: str = "Oranges") -> None:
    """Draw an undirected weighted graph as paper A's drawings: a symmetric ``(N, N)`` dense or
    sparse ``adjacency`` at ``positions`` ``(N, 2)``, nodes coloured by their ``(N,)`` integer
    ``labels``, edges darker the more similar (weights scaled to the graph's own min..max)."""
    labels = np.asarray(labels)
    positions = np.asarray(positions, dtype=float)
    palette = palette or class_palette(int(labels.max()) + 1)
    rows, cols, weights = graphs.edge_list(adjacency)
    upper = rows < cols
    rows, cols, weights = rows[upper].numpy(), cols[upper].numpy(), weights[upper].numpy()
    if len(weights):
        order = np.argsort(weights, kind="stable")          # strong edges drawn on top
        shade = 0.3 + 0.7 * (weights[order] - weights.min()) / (np.ptp(weights) or 1.0)
        segments = np.stack([positions[rows[order]], positions[cols[order]]], axis=1)
        ax.add_collection(LineCollection(segments, colors=plt.get_cmap(cmap)(shade),
                                         linewidths=edge_width, zorder=1))
    ax.scatter(positions[:, 0], positions[:, 1], s=node_size, c=[palette[c] for c in labels],
               edgecolors="white", linewidths=0.3, zorder=2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.autoscale_view()


def _class_legend(fig, class_names, suptitle: str = "", rect=(0, 0.08, 1, 0.97), **pads):
    """One coloured marker per class in a legend below the panels, the ``suptitle`` if any,
    then ``fig.tight_layout`` within ``rect``."""
    palette = class_palette(len(class_names))
    handles = [Line2D([], [], marker="o", linestyle="", color=palette[c], markersize=7,
                      label=name) for c, name in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(class_names), 5), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    if suptitle:
        fig.suptitle(suptitle, fontsize=13)
    fig.tight_layout(rect=rect, **pads)


def similarity_histograms(columns: dict):
    """Small multiples of ``columns = {model: {probe point: SimilarityHistogram}}``: a column
    per model, a row per probe point (numbered from 0), intra- and inter-class pairs overlaid,
    each as a fraction of its group's pairs per bin, every panel on its own y scale (paper B's
    first perspective, docs/similarity_graphs.md). Returns ``(fig, axes)``, unused cells hidden.
    Introduced in notebook 02_similarity_histograms."""
    nrows = max(len(h) for h in columns.values())
    height = 0.8 * nrows + 1.2
    fig, axes = plt.subplots(nrows, len(columns), figsize=(4.6 * len(columns), height),
                             sharex=True, squeeze=False)
    palette = sns.color_palette("colorblind")
    for col, (model, hists) in enumerate(columns.items()):
        for row, (layer, h) in enumerate(hists.items()):
            ax = axes[row, col]
            for group, colour in zip(("inter", "intra"), palette):
                counts = getattr(h, group)
                fraction = counts / max(counts.sum(), 1)
                ax.stairs(fraction, h.edges, fill=True, alpha=0.45, color=colour,
                          label=f"{group}-class pairs")
                ax.stairs(fraction, h.edges, color=colour, linewidth=0.9)
            ax.text(0.015, 0.88, f"{row} · {layer}", transform=ax.transAxes, fontsize=9,
                    va="top", ha="left")
            ax.set_ylim(0, None)
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(2))
            ax.tick_params(labelsize=8, pad=1)
            ax.grid(axis="y", visible=False)
        axes[0, col].set_title(model, fontsize=12)
        last = axes[len(hists) - 1, col]
        last.set_xlabel("cosine similarity $S_{ij}$")
        last.xaxis.set_tick_params(labelbottom=True)
        for ax in axes[len(hists):, col]:
            ax.set_visible(False)
    axes[0, 0].set_xlim(-1, 1)
    fig.supylabel("fraction of the group's pairs per bin", fontsize=11, x=0.005)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=2, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.9 / height, top=1 - 0.75 / height,
                        hspace=0.12, wspace=0.12)
    return fig, axes


# Grids of per-layer numbers, drawings and embeddings (notebooks 01-04) ------------------------
def depth_grid(table, ylabels: dict | None = None, ramp: bool = False, yscale: dict | None = None,
               hlines: dict | None = None, panel_width: float = 4.9, panel_height: float = 2.8,
               xlabel: str = "probe point (layer)"):
    """Numbers over depth, one column per model and one row per quantity, one line per series.

    Args:
        table: long ``DataFrame`` with columns ``model``, ``row`` (the quantity), ``series`` (one
            line), ``layer`` (x) and ``value`` (y, NaN leaves a gap), in order of appearance.
        ylabels, yscale, hlines: ``{row: y label}``, ``{row: "log"}``, ``{row: y of a dotted
            line}``; ``ramp``: colour lines along viridis (else the colour-blind palette).

    Returns ``(fig, axes)`` with ``axes[row, model]``, y shared along each row, a legend per
    row. Introduced in notebook 02_similarity_histograms.
    """
    models_, rows = list(dict.fromkeys(table["model"])), list(dict.fromkeys(table["row"]))
    palette = sns.color_palette("colorblind")
    colors = {s: palette[i % len(palette)] for i, s in enumerate(dict.fromkeys(table["series"]))}
    fig, axes = plt.subplots(len(rows), len(models_), sharey="row", squeeze=False,
                             figsize=(panel_width * len(models_) + 1.6, panel_height * len(rows)))
    for (r, row), (c, model) in itertools.product(enumerate(rows), enumerate(models_)):
        ax, part = axes[r, c], table[(table["row"] == row) & (table["model"] == model)]
        series = list(dict.fromkeys(part["series"]))
        for i, name in enumerate(series):
            line = part[part["series"] == name]
            colour = plt.get_cmap("viridis")(0.9 * i / max(1, len(series) - 1)) if ramp \
                else colors[name]
            ax.plot(line["layer"], line["value"], marker="o", ms=3.5, color=colour, label=name)
        if hlines and row in hlines:
            ax.axhline(hlines[row], color="grey", linestyle=":", linewidth=1.2)
        ax.set(yscale=(yscale or {}).get(row, "linear"))
        if part["layer"].nunique() <= 25:
            ax.set_xticks(sorted(part["layer"].unique()))
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(model if r == 0 else "", fontsize=11)
        ax.set_ylabel((ylabels or {}).get(row, row) if c == 0 else "")
        ax.set_xlabel(xlabel if r == len(rows) - 1 else "")
        if c == len(models_) - 1:
            ax.legend(fontsize=8.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig, axes


def similarity_heatmaps(columns: dict, vmin: float = 1e-5, vmax: float = 0.2):
    """Each model's similarity histograms (``columns`` as for :func:`similarity_histograms`) as
    one heat map, a row per probe point, fraction of all pairs per bin on a logarithmic colour
    scale from ``vmin`` to ``vmax``. Returns ``(fig, axes)``. Introduced in notebook
    02_similarity_histograms."""
    fig, axes = panels(1, len(columns), 5.0, 4.8)
    norm = matplotlib.colors.LogNorm(vmin=vmin, vmax=vmax)
    for ax, (model, hists) in zip(axes.flat, columns.items()):
        matrix = np.stack([h.counts / h.n_pairs for h in hists.values()])
        image = ax.imshow(np.where(matrix > 0, matrix, np.nan), aspect="auto", cmap="rocket_r",
                          norm=norm, extent=(-1, 1, len(matrix) - 0.5, -0.5),
                          interpolation="none")
        ax.set_yticks(range(len(matrix)))
        ax.set(xlabel="cosine similarity $S_{ij}$", title=model)
        ax.grid(False)
    axes.flat[0].set_ylabel("probe point (0 = input pixels)")
    fig.colorbar(image, ax=axes.ravel().tolist(), label="fraction of all pairs per bin (log)",
                 shrink=0.9, pad=0.015)
    return fig, axes


def _panel_grid(n: int, ncols: int, width: float, height: float):
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.6),
                             squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def graph_grid(adjacencies, positions, labels, titles, class_names, ncols: int = 5,
               suptitle: str = "", **draw_options):
    """Small multiples of ``(N, N)`` adjacencies drawn by :func:`draw_graph` (with
    ``draw_options``) on the same ``(N, 2)`` positions, one class legend below. Returns
    ``(fig, axes)`` (the visible panels). Introduced in notebook 04_community_visualisation."""
    size = (3.3, 3.9) if len(adjacencies) > 3 else (5.2, 5.4)
    fig, axes = _panel_grid(len(adjacencies), ncols, *size)
    for ax, adjacency, title in zip(axes, adjacencies, titles):
        draw_graph(ax, adjacency, positions, labels, **draw_options)
        ax.set_title(title, fontsize=10.5)
    _class_legend(fig, class_names, suptitle, h_pad=2.0)
    return fig, axes


def embedding_grid(embeddings: dict, labels, class_names, ncols: int = 5, suptitle: str = ""):
    """Scatter plots of 2-D embeddings ``{title: (N, 2)}``, points coloured by class, no ticks.
    Returns ``(fig, axes)`` (the visible panels). Introduced in notebook
    04_community_visualisation."""
    palette = class_palette(len(class_names))
    colours = [palette[c] for c in np.asarray(labels)]
    fig, axes = _panel_grid(len(embeddings), ncols, 3.3, 3.4)
    for ax, (title, points) in zip(axes, embeddings.items()):
        ax.scatter(points[:, 0], points[:, 1], s=5, c=colours, linewidths=0)
        ax.set_title(title, fontsize=10.5)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    _class_legend(fig, class_names, suptitle)
    return fig, axes


def graph_animation(adjacencies, layouts: dict, labels, class_names, titles):
    """An animation with one frame (and title) per graph, one panel per layout ``{name: (N,
    2)}``. Returns ``(fig, animation)``: write with :func:`savegif`, then close ``fig``.
    Introduced in notebook 04_community_visualisation."""
    fig, axes = panels(1, len(layouts), 5, 5.6)

    def frame(i):
        for ax, (name, positions) in zip(axes.flat, layouts.items()):
            ax.clear()
            draw_graph(ax, adjacencies[i], positions, labels)
            ax.set_title(name, fontsize=11)
        fig.suptitle(titles[i], fontsize=13)

    _class_legend(fig, class_names, rect=(0, 0.1, 1, 0.93))
    return fig, FuncAnimation(fig, frame, frames=len(adjacencies), blit=False)


def contingency_heatmap(classes, found, class_names, title: str = ""):
    """Images per (class, found community) of ``(N,)`` indices, communities renumbered by their
    majority class (then size), so that a partition matching the classes shows as a diagonal.
    Returns ``(fig, ax, table)``, the reordered contingency table. Introduced in notebook
    04_community_visualisation."""
    table = pd.crosstab(pd.Series([class_names[c] for c in np.asarray(classes)], name="class"),
                        pd.Series(np.asarray(found), name="community"))
    table = table.reindex([n for n in class_names if n in table.index])
    counts = table.to_numpy()
    table = table.iloc[:, np.lexsort((-counts.max(0), counts.argmax(0)))]
    table.columns = range(table.shape[1])
    fig, ax = plt.subplots(figsize=(0.55 * table.shape[1] + 3.2, 5.2))
    sns.heatmap(table, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                annot_kws={"fontsize": 9})
    ax.set(xlabel="community found (renumbered)", title=title)
    fig.tight_layout()
    return fig, ax, table


def sample_grid(split, per_class: int = 8):
    """The first ``per_class`` images of each class of a ``data.ImageSplit``, one row per class.
    Introduced in notebook 01_train_models."""
    fig, axes = panels(split.num_classes, per_class, 1.0, 1.0)
    for c, row in enumerate(axes):
        for ax, i in zip(row, np.flatnonzero(split.y.numpy() == c)[:per_class]):
            image = split.x[i].permute(1, 2, 0).numpy()
            image = (image - image.min()) / (np.ptp(image) or 1.0)     # back to [0, 1]
            ax.imshow(image.squeeze(), cmap="gray_r" if image.shape[-1] == 1 else None)
        for ax in row:
            ax.set_xticks([]), ax.set_yticks([])
        row[0].set_ylabel(split.classes[c], rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig, axes


# Weight graphs (notebook 08) ------------------------------------------------------------------
def accuracy_colours(n: int) -> list:
    """``n`` colours from green (lowest accuracy bin) to red (highest), as La Malfa et al.'s
    figures colour their bins."""
    cmap = matplotlib.colors.LinearSegmentedColormap.from_list(
        "green_red", ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"])
    return [cmap(x) for x in (np.linspace(0, 1, n) if n > 1 else [0.0])]


def kde_curves(ax, samples: dict, colours, seed: int = 0) -> None:
    """One Gaussian KDE line (``cnt.kde`` of at most 20,000 points) per sample (``{label: 1-D
    array}``) in its colour, on 300 points spanning the pooled 0.1 % to 99.9 % quantiles (so that a
    few extreme values do not squash every curve); samples with no spread are a vertical line."""
    if not samples:
        return
    pooled = np.concatenate([np.asarray(v, dtype=float).ravel() for v in samples.values()])
    lo, hi = np.quantile(pooled, (0.001, 0.999))
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    grid = np.linspace(lo, hi, 300)
    for (label, values), colour in zip(samples.items(), colours):
        values = np.asarray(values, dtype=float).ravel()
        if np.ptp(values) == 0:
            ax.axvline(values[0], color=colour, label=label, linewidth=1.4)
        else:
            ax.plot(grid, cnt.kde(values, grid, max_points=20_000, seed=seed),
                    color=colour, label=label, linewidth=1.4)


def divergence_heatmap(ax, matrix, labels, title: str = "", cmap: str = "hot") -> int:
    """A divergence matrix as a heatmap (``hot``, as the original); infinite cells are drawn at
    the largest finite value + 1, as the original does, and marked ``∞``. Returns the number of
    infinite cells."""
    m = np.array(matrix, dtype=float)
    inf = ~np.isfinite(m)
    finite = m[~inf]
    shown = np.where(inf, (finite.max() if finite.size else 0.0) + 1.0, m)
    image = ax.imshow(shown, cmap=cmap, origin="upper")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for i, j in zip(*np.nonzero(inf)):
        ax.text(j, i, "∞", ha="center", va="center", color="tab:blue", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=9)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.grid(False)
    ax.set_title(title, fontsize=10)
    return int(inf.sum())


def accuracy_histograms(histogram):
    """Checkpoints per test-accuracy bin (``histogram``: indexed by ``population.bin_labels()``,
    a column of counts per population), green to red as La Malfa et al. Returns the figure.
    Introduced in notebook 08_complex_networks."""
    fig, axes = panels(1, histogram.shape[1], 5.5, 3.4)
    colours = accuracy_colours(len(histogram))
    for ax, (name, counts) in zip(axes.flat, histogram.items()):
        ax.bar(range(len(counts)), counts.to_numpy(), color=colours)
        ax.set_xticks(range(len(counts)), counts.index, rotation=45, fontsize=9)
        ax.set(xlabel="test accuracy bin", ylabel="checkpoints", title=f"{name} population")
    fig.tight_layout()
    return fig


def ensemble_grid(rows: dict, layers, bin_names: dict, title: str = "", seed: int = 0):
    """La Malfa et al.'s ensemble figures: KDEs per accuracy bin, a row per quantity of ``rows =
    {quantity: {(layer, bin): 1-D sample}}`` (missing keys left out), a column per node layer;
    ``bin_names = {bin: label}`` in order of accuracy. Returns the figure. Introduced in
    notebook 08_complex_networks."""
    colours = dict(zip(bin_names, accuracy_colours(len(bin_names))))
    fig, axes = panels(len(rows), len(layers), 4.2, 2.8)
    for r, (name, samples) in enumerate(rows.items()):
        for c, layer in enumerate(layers):
            present = [b for b in bin_names if (layer, b) in samples]
            kde_curves(axes[r, c], {bin_names[b]: samples[layer, b] for b in present},
                       [colours[b] for b in present], seed=seed)
            axes[r, c].set(xlabel=name, ylabel="density", title=f"{title}, layer {layer}: {name}")
    axes[0, -1].legend(title="test accuracy", fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def divergence_grid(panels, kde: dict | None = None, width: float = 4.5, height: float = 4.3):
    """Divergence matrices as heat maps, ``panels`` rows of ``(matrix, labels, title)``, after a
    first panel of KDE curves of ``kde = {label: 1-D sample}`` if given (one row only). Returns
    ``(fig, infinite)``, ``infinite[r][c]`` the number of infinite cells of each matrix.
    Introduced in notebook 08_complex_networks."""
    ncols = max(len(row) for row in panels) + (kde is not None)
    fig, axes = plt.subplots(len(panels), ncols, squeeze=False,
                             figsize=(width * ncols, height * len(panels)))
    if kde is not None:
        colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(kde))).tolist()
        kde_curves(axes[0, 0], kde, colours)
        axes[0, 0].set(xlabel="node strength", ylabel="density", title="distribution per layer")
        axes[0, 0].legend(fontsize=8)
    skip = int(kde is not None)
    infinite = [[divergence_heatmap(axes[r, c + skip], m, labels, title=title)
                 for c, (m, labels, title) in enumerate(row)] for r, row in enumerate(panels)]
    fig.tight_layout()
    return fig, infinite


def scatter_grid(panels, colorbar: str = "", cmap: str = "RdYlGn_r", vmin: float = 0.0,
                 vmax: float = 1.0, width: float = 4.6, height: float = 4.0):
    """Scatter plots in a grid: ``panels`` rows of dicts with ``x``, ``y`` (1-D, equal length)
    and optionally ``c`` (colours on ``cmap``, a colour bar per row labelled ``colorbar``),
    ``labels`` (beside each point), ``title``, ``xlabel``, ``ylabel``, ``xscale`` (``"auto"``:
    log when positive x span over a decade). Returns ``(fig, axes)``. Introduced in notebook
    08_complex_networks."""
    ncols = max(len(row) for row in panels)
    fig, axes = plt.subplots(len(panels), ncols, squeeze=False,
                             figsize=(width * ncols, height * len(panels)))
    for r, row in enumerate(panels):
        points = None
        for c, panel in enumerate(row):
            ax, x, y = axes[r, c], np.asarray(panel["x"], float), np.asarray(panel["y"], float)
            colour = dict(c=panel["c"], cmap=cmap, vmin=vmin, vmax=vmax) if "c" in panel else {}
            points = ax.scatter(x, y, s=14 if "c" in panel else 30, **colour) if len(x) else None
            for label, xi, yi in zip(panel.get("labels", []), x, y):
                ax.annotate(str(label), (xi, yi), fontsize=9)
            xscale = panel.get("xscale", "linear")
            if xscale == "auto":
                xscale = "log" if len(x) and x.min() > 0 and x.max() > 10 * x.min() else "linear"
            ax.set(xscale=xscale, xlabel=panel.get("xlabel", ""), ylabel=panel.get("ylabel", ""),
                   title=panel.get("title", ""))
        if colorbar and points is not None and "c" in row[-1]:
            fig.colorbar(points, ax=axes[r, len(row) - 1], label=colorbar)
    fig.tight_layout()
    return fig, axes
