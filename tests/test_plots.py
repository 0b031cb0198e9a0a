"""Figures are written reproducibly, under checked names."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from modlib import paths, plots  # noqa: E402


def make_figure():
    table = pd.DataFrame({"layer": [1, 2, 3], "Q_mean": [0.1, 0.4, 0.8], "Q_std": [0.01] * 3})
    fig, _ = plots.curves_by_depth({"toy": table})
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
    with pytest.raises(ValueError, match="format='jpg' is not allowed"):
        plots.savefig(fig, "99_x", formats=("jpg",))
    plt.close(fig)


def test_depth_grid_layout_and_lines():
    import numpy as np

    rows = []
    for model in ("a", "b"):
        for quantity in ("Q", "edges"):
            for series in ("kNN", "threshold", "top"):
                for layer in (1, 2, 3):
                    rows.append({"model": model, "row": quantity, "series": series,
                                 "layer": layer, "value": layer * 0.1})
    table = pd.DataFrame(rows)
    table.loc[0, "value"] = np.nan                        # a gap is allowed
    fig, axes = plots.depth_grid(table, ylabels={"Q": "modularity Q"}, yscale={"edges": "log"},
                                 hlines={"Q": 0.9})
    assert axes.shape == (2, 2)
    assert len(axes[0, 0].get_lines()) == 3 + 1          # three series and the dotted line
    assert axes[0, 0].get_ylabel() == "modularity Q" and axes[1, 0].get_ylabel() == "edges"
    assert axes[1, 1].get_yscale() == "log" and axes[0, 1].get_title() == "b"
    assert list(axes[1, 0].get_lines()[1].get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    plt.close(fig)


def test_grids_of_graphs_embeddings_and_contingency():
    import numpy as np
    import torch

    labels = np.array([0, 0, 1, 1, 2, 2])
    a = torch.zeros(6, 6)
    a[0, 1] = a[1, 0] = a[2, 3] = a[3, 2] = 1.0
    positions = plots.class_circle_layout(labels)
    fig, axes = plots.graph_grid([a, a, a, a], positions, labels, ["1", "2", "3", "4"],
                                 ["x", "y", "z"], ncols=3)
    assert len(axes) == 4 and axes[3].get_title() == "4"
    assert len(axes[0].collections[0].get_segments()) == 2          # two undirected edges
    plt.close(fig)
    fig, axes = plots.embedding_grid({"p": np.zeros((6, 2)), "q": np.ones((6, 2))}, labels,
                                     ["x", "y", "z"])
    assert [ax.get_title() for ax in axes] == ["p", "q"]
    plt.close(fig)
    # community 0 holds class 2, community 1 classes 0 and 1: renumbered by majority class
    fig, ax, table = plots.contingency_heatmap(labels, [1, 1, 1, 1, 0, 0], ["x", "y", "z"])
    assert table.to_numpy().tolist() == [[2, 0], [2, 0], [0, 2]]


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


def test_savefig_dpi_sets_the_png_size(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("MODLIB_FIGURES_DIR", str(tmp_path))
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1], [0, 1])
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    plots.savefig(fig, "99_small", dpi=50)
    with Image.open(tmp_path / "99_small.png") as image:
        assert image.size == (210, 110)        # 4 x 2 in at 50 dpi + 0.1 in tight-bbox padding
    plt.close(fig)


def test_weight_graph_figures():
    import numpy as np

    histogram = pd.DataFrame({"fc": [0, 3, 5], "cnn": [1, 0, 2]}, index=["a", "b", "c"])
    fig = plots.accuracy_histograms(histogram)
    axes = fig.axes
    assert len(axes) == 2 and [p.get_height() for p in axes[1].patches] == [1, 0, 2]
    plt.close(fig)
    rng = np.random.default_rng(0)
    rows = {"node strength": {(1, 0): rng.normal(size=50), (1, 2): rng.normal(size=50),
                              (2, 0): rng.normal(size=50)}}
    fig = plots.ensemble_grid(rows, [1, 2], {0: "low", 2: "high"}, title="fc")
    assert len(fig.axes[0].get_lines()) == 2 and len(fig.axes[1].get_lines()) == 1
    assert fig.axes[1].get_title() == "fc, layer 2: node strength"
    plt.close(fig)
    matrix = np.array([[0.0, np.inf], [1.0, 0.0]])
    fig, infinite = plots.divergence_grid([[(matrix, ["a", "b"], "m")] * 2],
                                          kde={"x": rng.normal(size=20)})
    assert infinite == [[1, 1]] and len(fig.axes) == 3 + 2     # three panels, two colour bars
    plt.close(fig)


def test_scatter_grid():
    fig, axes = plots.scatter_grid(
        [[{"x": [1, 10, 100], "y": [1, 2, 3], "c": [0.1, 0.5, 0.9], "xscale": "auto",
           "title": "t"}],
         [{"x": [1, 2], "y": [3, 4], "labels": ["p", "q"], "xlabel": "x"}]],
        colorbar="accuracy")
    assert axes.shape == (2, 1) and axes[0, 0].get_xscale() == "log"
    assert axes[1, 0].get_xscale() == "linear"
    assert [t.get_text() for t in axes[1, 0].texts] == ["p", "q"]
    assert len(fig.axes) == 3                                    # one colour bar, first row
    plt.close(fig)


def test_curves_over_seeds_draws_the_between_seed_interval_and_the_within_band():
    from scipy import stats as sps

    q = [[0.1, 0.4, 0.8], [0.2, 0.5, 0.7], [0.0, 0.6, 0.9]]        # three seeds, three points
    tables = [pd.DataFrame({"layer": [1, 2, 3], "Q_mean": v, "Q_std": [0.01, 0.02, 0.03]})
              for v in q]
    fig, ax = plt.subplots()
    summary = plots.curves_over_seeds(ax, tables, label="m")
    half = sps.t.ppf(0.975, 2) * pd.DataFrame(q).std(ddof=1) / 3 ** 0.5
    assert summary["mean"].tolist() == pytest.approx([0.1, 0.5, 0.8])
    assert summary["low"].tolist() == pytest.approx((summary["mean"] - half).tolist())
    assert summary["high"].tolist() == pytest.approx((summary["mean"] + half).tolist())
    assert summary["within"].tolist() == pytest.approx([0.01, 0.02, 0.03])
    assert [l.get_label() for l in ax.get_lines()] == ["m"] and len(ax.collections) == 2
    one = plots.curves_over_seeds(ax, tables[:1], x="depth")          # one seed: no interval
    assert one["x"].tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert one["low"].isna().all() and len(ax.collections) == 3
    with pytest.raises(ValueError, match="different 'layer' values"):
        plots.curves_over_seeds(ax, [tables[0], tables[1].iloc[:2]])
    with pytest.raises(ValueError, match="tables is empty"):
        plots.curves_over_seeds(ax, [])
    plt.close(fig)


def test_band_grid_draws_one_curve_and_band_per_label():
    frame = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "epoch": [0, 0, 1, 1] * 2,
                          "layer": [1, 2] * 4, "mean": [0.1, 0.2, 0.3, 0.6] * 2})
    frame["low"], frame["high"] = frame["mean"] - 0.05, frame["mean"] + 0.05
    fig, axes = plots.band_grid(frame, x="layer", label="epoch", panel="model",
                                legend_fmt="epoch {}")
    assert axes.shape == (1, 2)
    ax = axes[0, 0]
    assert [line.get_label() for line in ax.get_lines()] == ["epoch 0", "epoch 1"]
    assert list(ax.get_lines()[1].get_ydata()) == [0.3, 0.6]
    assert len(ax.collections) == 2                             # one band per curve
    band = ax.collections[1].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.25) and band.max() == pytest.approx(0.65)
    assert ax.get_title() == "a"
    assert plots.ramp(3)[0] != plots.ramp(3)[-1]
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['seed'\]"):
        plots.band_grid(frame, x="layer", label="epoch", panel="model", row="seed")
    plt.close("all")


def test_band_grid_rows_and_cka_heatmap():
    frame = pd.DataFrame({"arch": ["a"] * 4, "part": ["true", "true", "pred", "pred"],
                          "eps": [0.1, 0.2] * 2, "setting": ["x"] * 4, "mean": [0.5, 0.4, 0.3, 0.2],
                          "low": [float("nan")] * 4, "high": [float("nan")] * 4})
    fig, axes = plots.band_grid(frame, x="eps", label="setting", panel="arch", row="part",
                                xscale="log", title_fmt="{panel}, {row}")
    assert axes.shape == (2, 1) and axes[1, 0].get_title() == "a, pred"
    assert axes[0, 0].get_xscale() == "log"
    fig, axes = plots.panels(1, 1)
    plots.cka_heatmap(axes[0, 0], [[1.0, 0.5], [0.5, 1.0]], title="t")
    assert axes[0, 0].get_title() == "t"
    plt.close("all")
