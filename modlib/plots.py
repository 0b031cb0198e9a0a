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

from . import paths, store

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
    """Heatmap of the layer-difference matrix ``|Q_i − Q_j|`` (spec §3.3), blue colour map."""
    q = np.asarray(q, dtype=float)
    diff = np.abs(q[:, None] - q[None, :])
    ticks = labels if labels is not None else np.arange(1, len(q) + 1)
    sns.heatmap(diff, ax=ax, cmap="Blues", vmin=0, square=True, xticklabels=ticks,
                yticklabels=ticks, cbar_kws={"label": r"$|Q_i - Q_j|$", "shrink": 0.8})
    ax.set_xlabel("layer j")
    ax.set_ylabel("layer i")
    if title:
        ax.set_title(title)
