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


def test_curves_by_depth_puts_models_of_any_depth_on_one_axis():
    short = pd.DataFrame({"layer": [1, 2], "Q_mean": [0.2, 0.6], "Q_std": [0.0, 0.1]})
    long = pd.DataFrame({"layer": [1, 2, 3, 4], "Q_mean": [0.1, 0.3, 0.5, 0.7],
                         "Q_std": [0.01] * 4})
    fig, ax = plots.curves_by_depth({"short": short, "long": long}, title="t")
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == ["short", "long"]
    assert list(lines[0].get_xdata()) == [0.5, 1.0]
    assert list(lines[1].get_xdata()) == [0.25, 0.5, 0.75, 1.0]
    assert len(ax.collections) == 2 and ax.get_title() == "t"
    plt.close(fig)


def test_unit_delta_q_colours_removed_units():
    table = pd.DataFrame({"unit": ["a", "b", "c"], "removable": [False, True, True],
                          "delta_q": [float("nan"), 0.01, 0.2]})
    fig, ax = plt.subplots()
    plots.unit_delta_q(ax, table, ["b"], threshold=0.05, title="t")
    bars = ax.patches
    assert [b.get_height() for b in bars] == [0.0, 0.01, 0.2]
    colours = [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars]
    assert colours == [matplotlib.colors.to_hex(c) for c in ("lightgrey", "tab:red", "tab:blue")]
    plt.close(fig)
