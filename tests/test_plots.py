"""Figures are written reproducibly, under checked names."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from modlib import paths, plots  # noqa: E402


def make_figure():
    table = pd.DataFrame({"layer": [1, 2, 3], "Q_mean": [0.1, 0.4, 0.8], "Q_std": [0.01] * 3})
    fig, axes = plots.curves_grid({"toy": table})
    return fig


def test_savefig_is_byte_reproducible():
    plots.set_theme()
    written = [paths.figures_dir() / f"99_toy.{fmt}" for fmt in ("png", "pdf", "svg")]
    plots.savefig(make_figure(), "99_toy", formats=("png", "pdf", "svg"))
    first = [p.read_bytes() for p in written]
    plt.close("all")
    plots.savefig(make_figure(), "99_toy", formats=("png", "pdf", "svg"))
    assert [p.read_bytes() for p in written] == first
    plt.close("all")


def test_bad_names_and_formats():
    fig = plt.figure()
    with pytest.raises(ValueError, match="figure name 'curves' is not allowed"):
        plots.savefig(fig, "curves")
    with pytest.raises(ValueError, match="format 'jpg'"):
        plots.savefig(fig, "99_x", formats=("jpg",))
    plt.close(fig)
