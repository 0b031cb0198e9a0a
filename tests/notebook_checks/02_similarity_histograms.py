"""Range checks on what notebook 02_similarity_histograms records under the smoke profile."""

import pytest


def check(m):
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
