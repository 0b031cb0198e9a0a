"""Range checks on what notebook 02_similarity_histograms records under the smoke profile."""

import pytest


def check(m):
    assert m["profile"] == "smoke" and m["bins"] == 20 and m["tau_sweep"] == [0.5, 0.8]
    expected_points = {"vgg11": 8, "resnet20": 10}
    assert set(m["models"]) == set(expected_points)
    pixels = m["input_pixels"]
    assert 0 < pixels["inter_mean"] < pixels["intra_mean"] < 1    # same-class images look alike
    # a higher threshold keeps a smaller share of the pairs
    assert 0 <= pixels["share_at_least"]["0.8"] <= pixels["share_at_least"]["0.5"] <= 1
    for arch, record in m["models"].items():
        n = expected_points[arch]
        assert record["pairs"] == 100 * 99 // 2
        for key in ("mean", "median", "intra_mean", "inter_mean", "mean_post_relu",
                    "lowest_bin_edge", "layers"):
            assert len(record[key]) == n, (arch, key)
        assert all(-1 <= v <= 1 for v in record["mean"] + record["median"])
        low, high = record["share_at_least"]["0.5"], record["share_at_least"]["0.8"]
        assert len(low) == len(high) == n
        assert all(0 <= h <= lo <= 1 for lo, h in zip(low, high)), arch
        # intra-class pairs are more similar than inter-class pairs at every probe point
        assert all(a > b for a, b in zip(record["intra_mean"], record["inter_mean"])), arch
        # the first probe point is a raw convolution of normalised pixels: negative cosines
        assert record["lowest_bin_edge"][0] < 0, arch
        assert set(m["verdict"][arch]) == {"mass moves down", "sparser", "gap grows"}
    resnet = m["models"]["resnet20"]
    # ResNet block outputs are taken after the ReLU: no negative cosine, and the post-activation
    # probe points are the same modules, so the same numbers
    assert all(edge >= 0 for edge in resnet["lowest_bin_edge"][1:])
    assert resnet["mean_post_relu"][1:] == pytest.approx(resnet["mean"][1:], abs=1e-12)
    assert resnet["mean_post_relu"][0] > resnet["mean"][0]       # ReLU removes negative parts
    # the claim, tested over the training seeds of the smoke profile
    assert m["seeds"] == [0, 1]
    gains = m["separation_gain"]
    assert len(gains["gain"]) == 2 * len(expected_points) and set(gains["seed"]) == {0, 1}
    assert [c["id"] for c in m["claims"]] == [f"B-histogram-shift-{a}" for a in ("vgg11", "resnet20")]
    for claim in m["claims"]:
        arch = claim["id"].rsplit("-", 1)[1]
        mine = [g for g, a in zip(gains["gain"], gains["model"]) if a == arch]
        assert claim["n_seeds"] == 2 and claim["effect"] == pytest.approx(sum(mine) / 2, abs=1e-3)
        assert claim["ci_low"] <= claim["effect"] <= claim["ci_high"]
        assert claim["verdict"] in ("supported", "refuted", "inconclusive")
        assert -2 < claim["effect"] < 2
