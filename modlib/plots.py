"""Figures: the house style, ``savefig`` (the one way a figure reaches ``figures/``), and the
figure helpers that more than one notebook uses.

``savefig`` writes with fixed metadata (no creation date, a fixed "Software" tag) and atomically,
so rerunning a notebook with the same parameters gives byte-identical files and an interrupted run
never leaves half a PNG behind. Figure names start with the notebook's number
(``05_modularity_curves``), which is how the driver attributes them in ``figures/MANIFEST.json``.
"""

from __future__ import annotations

import re
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.animation import PillowWriter
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from . import graphs, paths, store

FIGURE_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
FORMATS = ("png", "pdf", "svg")
_METADATA = {
    "png": {"Software": "modlib"},
    "pdf": {"Creator": "modlib", "Producer": "modlib", "CreationDate": None},
    "svg": {"Creator": "modlib", "Date": None},
}


def set_theme() -> None:
    """The house style: seaborn's ``whitegrid`` with readable font sizes, colour-blind palette.

    Call it once at the top of a notebook (importing modlib changes no settings).
    """
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=1.05,
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold",
                      "svg.hashsalt": "modlib", "pdf.fonttype": 42})


def savefig(fig: matplotlib.figure.Figure, name: str, formats=("png",)) -> None:
    """Write ``fig`` to ``figures/<name>.<format>`` for each format.

    Args:
        fig: the figure.
        name: ``NN_slug`` (two digits = the notebook's number, then lowercase letters, digits and
            underscores), e.g. ``"05_modularity_curves"``.
        formats: any of ``"png"``, ``"pdf"``, ``"svg"``.

    Raises:
        ValueError: a bad name or format.
    """
    if not FIGURE_NAME.match(name):
        raise ValueError(f"figure name {name!r} is not allowed: use NN_slug, two digits (the "
                         "notebook's number) then lowercase letters, digits and underscores")
    formats = [formats] if isinstance(formats, str) else list(formats)
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r} is not allowed: choose from {FORMATS}")
    for fmt in formats:
        target = paths.figures_dir() / f"{name}.{fmt}"
        store.atomic_write(target, lambda tmp, fmt=fmt: fig.savefig(
            tmp, format=fmt, metadata=_METADATA[fmt], bbox_inches="tight"))


# --------------------------------------------------------------------------------------------
# Shared figure helpers


def curve(ax, table, label: str | None = None, color=None, x: str = "layer") -> None:
    """Draw one modularity curve on ``ax``: mean Q with a ±1 std band over batches.

    ``table`` is a ``modularity.modularity_curve`` DataFrame (columns ``layer``, ``Q_mean``,
    ``Q_std``).
    """
    xs = table[x].to_numpy()
    mean, std = table["Q_mean"].to_numpy(), table["Q_std"].to_numpy()
    line, = ax.plot(xs, mean, marker="o", markersize=4, label=label, color=color)
    ax.fill_between(xs, mean - std, mean + std, alpha=0.25, color=line.get_color(), linewidth=0)
    ax.set_xlabel("probe point (layer)")
    ax.set_ylabel("modularity Q")


def curves_grid(tables: dict, ncols: int = 3, title_fmt: str = "{name}", sharey: bool = True):
    """One panel per model, ``tables = {name: curve DataFrame}``; returns ``(fig, axes)``."""
    n = len(tables)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), sharey=sharey,
                             squeeze=False)
    for ax, (name, table) in zip(axes.flat, tables.items()):
        curve(ax, table)
        ax.set_title(title_fmt.format(name=name))
        ax.set_xticks(table["layer"].to_numpy())
        if len(table) > 16:
            ax.set_xticks(table["layer"].to_numpy()[::2])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig, axes


def difference_heatmap(ax, q, title: str = "", labels=None) -> None:
    """Heatmap of the layer-difference matrix ``|Q_i − Q_j|`` (paper A), blue colour map."""
    q = np.asarray(q, dtype=float)
    diff = np.abs(q[:, None] - q[None, :])
    ticks = labels if labels is not None else np.arange(1, len(q) + 1)
    sns.heatmap(diff, ax=ax, cmap="Blues", vmin=0, square=True, xticklabels=ticks,
                yticklabels=ticks, cbar_kws={"label": r"$|Q_i - Q_j|$", "shrink": 0.8})
    ax.set_xlabel("layer j")
    ax.set_ylabel("layer i")
    if title:
        ax.set_title(title)


def savegif(animation, name: str, fps: float = 1.0, dpi: float = 90) -> None:
    """Write a ``matplotlib.animation.Animation`` to ``figures/<name>.gif`` with ``PillowWriter``,
    ``fps`` frames per second at ``dpi`` dots per inch, looping.

    Atomic like :func:`savefig`: the GIF is written to a temporary file in ``figures/``, then
    renamed.
    ``name`` follows the ``NN_slug`` rule of :func:`savefig` (notebook ``04``'s drawings).

    Raises:
        ValueError: a bad name.
    """
    if not FIGURE_NAME.match(name):
        raise ValueError(f"figure name {name!r} is not allowed: use NN_slug, two digits (the "
                         "notebook's number) then lowercase letters, digits and underscores")

    def write(tmp):
        gif = tmp.with_name(tmp.name + ".gif")      # Pillow picks the format from the suffix
        try:
            animation.save(gif, writer=PillowWriter(fps=fps), dpi=dpi)
            gif.replace(tmp)
        finally:
            gif.unlink(missing_ok=True)

    store.atomic_write(paths.figures_dir() / f"{name}.gif", write)


# --------------------------------------------------------------------------------------------
# Relationship graphs and similarity histograms (notebooks 02-04)


def class_palette(num_classes: int) -> list:
    """One distinct colour per class (matplotlib's ``tab10``, then ``tab20`` beyond 10)."""
    return sns.color_palette("tab10" if num_classes <= 10 else "tab20", num_classes)


def class_circle_layout(labels, radius: float | None = None) -> np.ndarray:
    """Positions ``(N, 2)`` of a circular layout grouped by class: one small circle per class,
    the circles' centres on the unit circle in class order.

    Paper A's drawings (its released code) put all nodes on one circle; there an intra-class
    edge is a short chord hidden under the nodes. On its own circle, each class shows its intra-class edges
    as chords, and inter-class edges run between the circles (notebooks 03, 04).
    ``radius`` of the class circles defaults to ``0.8 · sin(π / C)``, so that neighbouring
    circles do not touch.
    """
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
    """Draw an undirected weighted graph (as paper A's drawings): nodes coloured by class, edges shaded by
    weight, darker = more similar (weights normalised to the graph's own min..max).

    Args:
        ax: the axes (its frame and ticks are turned off).
        adjacency: symmetric ``(N, N)`` dense or sparse tensor (``graphs.knn_graph``,
            ``sparsification.threshold_graph`` & co).
        positions: ``(N, 2)`` node coordinates, e.g. :func:`class_circle_layout` or
            ``networkx.spring_layout``; keep them fixed to compare graphs.
        labels: ``(N,)`` integer class of each node.
        palette: one colour per class (default :func:`class_palette`).
    """
    labels = np.asarray(labels)
    positions = np.asarray(positions, dtype=float)
    palette = palette or class_palette(int(labels.max()) + 1)
    rows, cols, weights = graphs.edge_list(adjacency)
    upper = rows < cols
    rows, cols, weights = rows[upper].numpy(), cols[upper].numpy(), weights[upper].numpy()
    if len(weights):
        order = np.argsort(weights, kind="stable")          # strong edges drawn on top
        span = np.ptp(weights) or 1.0
        shade = 0.3 + 0.7 * (weights[order] - weights.min()) / span
        segments = np.stack([positions[rows[order]], positions[cols[order]]], axis=1)
        ax.add_collection(LineCollection(segments, colors=plt.get_cmap(cmap)(shade),
                                         linewidths=edge_width, zorder=1))
    ax.scatter(positions[:, 0], positions[:, 1], s=node_size, c=[palette[c] for c in labels],
               edgecolors="white", linewidths=0.3, zorder=2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.autoscale_view()


def class_legend(fig, class_names, palette=None, **kwargs):
    """A figure legend with one coloured marker per class; ``kwargs`` go to ``fig.legend``."""
    palette = palette or class_palette(len(class_names))
    handles = [Line2D([], [], marker="o", linestyle="", color=palette[c], markersize=7,
                      label=name) for c, name in enumerate(class_names)]
    options = {"loc": "lower center", "ncol": min(len(class_names), 5), "frameon": False}
    return fig.legend(handles=handles, **{**options, **kwargs})


def similarity_histograms(columns: dict, log: bool = False, row_height: float = 0.8,
                          column_width: float = 4.6):
    """Small multiples of :class:`sparsification.SimilarityHistogram` s: one column per model,
    one row per probe point (depth increases downwards), intra- and inter-class pairs overlaid, each
    normalised to its own total (y = fraction of that group's pairs per bin). Every panel has
    its own y scale, so that shapes stay visible. Paper B's histograms; notebook 02.

    Args:
        columns: ``{model: {probe point: SimilarityHistogram}}`` (ordered); the rows are numbered
            from 0.
        log: logarithmic y axis.

    Returns:
        ``(fig, axes)``; unused cells (a model with fewer probe points) are hidden.
    """
    nrows = max(len(h) for h in columns.values())
    ncols = len(columns)
    height = row_height * nrows + 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(column_width * ncols, height), sharex=True,
                             squeeze=False)
    palette = sns.color_palette("colorblind")
    groups = (("inter-class pairs", palette[0], "inter"),
              ("intra-class pairs", palette[1], "intra"))
    for col, (model, hists) in enumerate(columns.items()):
        for row, (layer, h) in enumerate(hists.items()):
            ax = axes[row, col]
            for label, colour, attribute in groups:
                counts = getattr(h, attribute)
                fraction = counts / max(counts.sum(), 1)
                ax.stairs(fraction, h.edges, fill=True, alpha=0.45, color=colour, label=label)
                ax.stairs(fraction, h.edges, color=colour, linewidth=0.9)
            ax.text(0.015, 0.88, f"{row} · {layer}", transform=ax.transAxes, fontsize=9,
                    va="top", ha="left")
            if log:
                ax.set_yscale("log")
            else:
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


# --------------------------------------------------------------------------------------------
# Weight graphs (notebook 08)


def accuracy_colours(n: int) -> list:
    """``n`` colours from green (lowest accuracy bin) to red (highest), as La Malfa et al.'s
    figures colour their bins."""
    cmap = matplotlib.colors.LinearSegmentedColormap.from_list(
        "green_red", ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"])
    return [cmap(x) for x in (np.linspace(0, 1, n) if n > 1 else [0.0])]


def kde_curves(ax, samples: dict, colours=None, grid_size: int = 300, max_points: int = 20_000,
               seed: int = 0, quantiles=(0.001, 0.999)) -> None:
    """One Gaussian KDE line per sample (``{label: 1-D array}``), on a common grid spanning the
    pooled ``quantiles`` (so that a few extreme values do not squash every curve); samples with
    no spread are drawn as a vertical line."""
    from . import cnt

    if not samples:
        return
    colours = colours or accuracy_colours(len(samples))
    pooled = np.concatenate([np.asarray(v, dtype=float).ravel() for v in samples.values()])
    lo, hi = np.quantile(pooled, quantiles)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    grid = np.linspace(lo, hi, grid_size)
    for (label, values), colour in zip(samples.items(), colours):
        values = np.asarray(values, dtype=float).ravel()
        if np.ptp(values) == 0:
            ax.axvline(values[0], color=colour, label=label, linewidth=1.4)
        else:
            ax.plot(grid, cnt.kde(values, grid, max_points=max_points, seed=seed),
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
