"""Every notebook runs headless through the driver in the smoke profile, and the numbers it
records are checked against sane ranges. Also: the driver's failures on bad parameters."""

import json
import os
import subprocess
import sys

import pytest

from modlib import paths, run, store

NOTEBOOKS = [p.stem for p in run.all_notebooks()]


def drive(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "modlib.run", *args], capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy(), cwd=paths.root())


def check_01(m):
    assert m["profile"] == "smoke" and m["dataset"] == "fashion-mnist"
    assert set(m["models"]) == {"vgg11", "resnet20"}
    for arch, record in m["models"].items():
        # two epochs on 2,000 images: far above chance (0.1), far below a full run
        assert 0.3 < record["test_accuracy"] < 0.95, arch
        assert 0 < record["final_train_loss"] < 2.3, arch


def check_05(m):
    assert m["profile"] == "smoke"
    example = m["example"]
    assert example["Q_modlib"] == pytest.approx(example["Q_networkx"], abs=1e-9)
    assert 0 <= example["P_intra"] <= 1
    # Q ≈ P_intra − 1/C (spec §6), within a few hundredths for balanced classes
    assert example["Q_modlib"] == pytest.approx(example["P_intra"] - 0.1, abs=0.08)
    expected_points = {"vgg11": 8, "resnet20": 10}
    for arch, record in m["models"].items():
        q = record["Q_mean"]
        assert len(q) == len(record["Q_std"]) == len(record["layers"]) == expected_points[arch]
        assert all(-0.5 <= v < 0.9 for v in q), (arch, q)     # below the 1 − 1/C ceiling
        assert all(s >= 0 for s in record["Q_std"])
        assert q[-1] > 0.2, (arch, q)                          # trained: classes separate
    assert 0 <= m["sensitivity"]["max_spread_over_k"] < 0.5
    assert 0 <= m["sensitivity"]["max_spread_over_N"] < 0.5


def check_06(m):
    assert m["profile"] == "smoke" and m["init"] == "inherit"
    # structural check of paper A's ResNet-56 row (spec §8.3): −43.0 % parameters, −60.3 % FLOPs
    assert m["paper_resnet56_check"]["params_reduction"] == pytest.approx(42.9, abs=0.05)
    assert m["paper_resnet56_check"]["macs_reduction"] == pytest.approx(60.2, abs=0.05)
    rows = {(r["model"], r["variant"]): r for r in m["summary"]}
    assert {a for a, _ in rows} == {"resnet20"}
    for arch in ("resnet20",):
        variants = {v for a, v in rows if a == arch}
        assert variants == {"original", "guided", "random", "highest ΔQ", "baseline (fine-tuned)"}
        original, guided = rows[(arch, "original")], rows[(arch, "guided")]
        assert rows[(arch, "random")]["seeds"] == 2
        assert guided["units removed"] == len(m["guided_units"][arch])
        n = guided["units removed"]
        assert rows[(arch, "random")]["units removed"] == n
        assert rows[(arch, "highest ΔQ")]["units removed"] == n
        if n:
            assert guided["parameters"] < original["parameters"]
            assert 0 < guided["MACs ↓ (%)"] < 100 and 0 < guided["parameters ↓ (%)"] < 100
        for row in (r for (a, _), r in rows.items() if a == arch):
            assert 0 <= row["test accuracy (%)"] <= 100
            assert 0 <= row["accuracy before fine-tuning (%)"] <= 100
        assert rows[(arch, "baseline (fine-tuned)")]["parameters"] == original["parameters"]
    assert all(-0.5 <= q < 0.9 for q in m["pruned_final_Q"].values())
    assert set(m["sweep"]["guided"]) == set(m["sweep"]["random_mean"])
    assert all(0 <= a <= 1 for a in m["sweep"]["guided"].values())


def check_02(m):
    assert m["profile"] == "smoke" and m["bins"] == 20
    expected_points = {"vgg11": 8, "resnet20": 10}
    assert set(m["models"]) == set(expected_points)
    pixels = m["input_pixels"]
    assert 0 < pixels["inter_mean"] < pixels["intra_mean"] < 1    # same-class images look alike
    for arch, record in m["models"].items():
        n = expected_points[arch]
        assert record["pairs"] == 100 * 99 // 2
        for key in ("mean", "median", "intra_mean", "inter_mean", "share_at_least_tau",
                    "mean_post_relu", "lowest_bin_edge", "layers"):
            assert len(record[key]) == n, (arch, key)
        assert all(-1 <= v <= 1 for v in record["mean"] + record["median"])
        assert all(0 <= v <= 1 for v in record["share_at_least_tau"])
        # intra-class pairs are more similar than inter-class pairs at every probe point
        assert all(a > b for a, b in zip(record["intra_mean"], record["inter_mean"])), arch
        # the first probe point is a raw convolution of normalised pixels: negative cosines
        assert record["lowest_bin_edge"][0] < 0, arch
    resnet = m["models"]["resnet20"]
    # ResNet block outputs are taken after the ReLU: no negative cosine, and the post-activation
    # probe points are the same modules, so the same numbers
    assert all(edge >= 0 for edge in resnet["lowest_bin_edge"][1:])
    assert resnet["mean_post_relu"][1:] == pytest.approx(resnet["mean"][1:], abs=1e-12)
    assert resnet["mean_post_relu"][0] > resnet["mean"][0]       # ReLU removes negative parts


def check_03(m):
    assert m["profile"] == "smoke" and m["graph_size"] == 100
    assert m["check"]["Q_modlib"] == pytest.approx(m["check"]["Q_networkx"], abs=1e-9)
    for arch, record in m["models"].items():
        rules = record["rules"]
        assert set(rules) == {"kNN", "threshold", "top fraction"}
        assert set(rules["kNN"]) == {"3", "5"} and set(rules["top fraction"]) == {"0.05", "0.1"}
        n = len(record["layers"])
        knn = rules["kNN"]["3"]
        assert all(150 <= e <= 300 for e in knn["edges"]), knn["edges"]   # N·k/2 .. N·k
        assert knn["isolated"] == [0] * n                      # every node has k neighbours
        assert rules["top fraction"]["0.05"]["edges"] == [248] * n     # ceil(0.05 · 4950)
        assert rules["top fraction"]["0.1"]["edges"] == [495] * n
        low, high = rules["threshold"]["0.5"]["edges"], rules["threshold"]["0.8"]["edges"]
        assert all(h <= lo for h, lo in zip(high, low))        # a higher τ keeps fewer pairs
        for graph in (g for rule in rules.values() for g in rule.values()):
            for q, p_intra, q_intra, edges in zip(graph["Q"], graph["P_intra"],
                                                  graph["Q_intra_edges_only"], graph["edges"]):
                if edges == 0:
                    assert q is None and q_intra is None
                    continue
                assert 0 <= p_intra <= 1
                assert -0.5 <= q <= p_intra + 1e-12             # Q = P_intra − Σ a_c² (spec §6)
                # the intra-class edges alone: Q = 1 − Σ a_c² ≤ 1 − 1/C with C = 10 classes
                assert q_intra is None or 0 <= q_intra <= 0.9 + 1e-12
        assert knn["Q"][-1] > 0.2, (arch, knn["Q"])            # trained: classes separate


def check_04(m):
    from PIL import Image

    assert m["profile"] == "smoke" and m["draw_arch"] == "vgg11" and m["draw_size"] == 40
    assert len(m["drawn_Q"]) == m["gif_frames"] == 8           # one frame per VGG-11 probe point
    assert all(-0.5 <= q < 0.9 for q in m["drawn_Q"])
    with Image.open(paths.figures_dir() / "04_knn_graph_layers.gif") as gif:
        assert gif.n_frames == 8
    expected_points = {"vgg11": 8, "resnet20": 10}
    for arch, record in m["models"].items():
        n = expected_points[arch]
        assert len(record["layers"]) == len(record["NMI"]) == len(record["ARI"]) == n
        assert all(0 <= v <= 1 for v in record["NMI"])
        assert all(-0.5 <= v <= 1 for v in record["ARI"])
        assert all(2 <= c <= 50 for c in record["communities"])
        # Louvain maximises Q: its partition beats the class partition on the same graph
        assert all(lv > cl for lv, cl in zip(record["Q_louvain"], record["Q_class"])), arch
        assert record["NMI"][-1] > 0.3, (arch, record["NMI"])   # communities relate to classes


CHECKS = {"01_train_models": check_01, "02_similarity_histograms": check_02,
          "03_graph_sparsification": check_03, "04_community_visualisation": check_04,
          "05_modularity_curves": check_05,
          "06_layer_pruning": check_06}


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_smoke_run(notebook):
    result = drive(notebook, "--profile", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    executed = paths.build_dir() / "notebooks" / f"{notebook}.ipynb"
    assert executed.is_file()
    assert notebook in CHECKS, f"add range checks for {notebook}'s metrics"
    CHECKS[notebook](store.read_metrics(notebook))
    manifest = json.loads((paths.figures_dir() / "MANIFEST.json").read_text())
    figures = [name for name, e in manifest.items() if e["notebook"].endswith(f"{notebook}.ipynb")]
    assert figures and all((paths.figures_dir() / name).is_file() for name in figures)


@pytest.mark.notebooks
def test_bad_value_fails_with_a_clear_message():
    result = drive("05_modularity_curves", "--profile", "smoke", "-p", "k", "0")
    assert result.returncode == 1
    assert "05_modularity_curves failed in cell" in result.stderr
    assert "k=0 is not allowed: must be an integer in [1, 49]" in result.stderr


def test_unknown_name_fails_before_running():
    result = drive("05_modularity_curves", "--profile", "smoke", "-p", "kk", "5", timeout=60)
    assert result.returncode == 1
    assert "unknown parameter 'kk' for 05_modularity_curves" in result.stderr
    assert "[smoke]" not in result.stdout                      # nothing was started
