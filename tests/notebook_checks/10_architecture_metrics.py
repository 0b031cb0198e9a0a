"""Range checks on what notebook 10_architecture_metrics records under the smoke profile."""

import math

import pytest


def check(m: dict) -> None:
    assert m["profile"] == "smoke"
    # worked examples: the rules give what the trace gives
    series = m["worked_series"]
    assert series["params"] == series["traced_params"] == (8 * 9 + 8) + (16 * 8 * 9 + 16)
    assert series["macs"] == series["traced_macs"] == 8 * 9 * 28 * 28 + 16 * 8 * 9 * 14 * 14
    assert series["rf"] == series["traced_rf"] == 5 and series["jump"] == 2
    assert m["worked_residual"]["rules"] == m["worked_residual"]["trace"]
    # the table: smoke has the two recipe models at 28 px and resnet18 / mobilenet_v2 at 32 px
    rows = {(r["model"], r["input"]): r for r in m["table"]}
    assert set(rows) == {("vgg11 ×0.25", 28), ("resnet20 ×0.25", 28), ("resnet18", 32),
                         ("mobilenet_v2", 32)}
    resnet18 = rows[("resnet18", 32)]
    assert resnet18["parameters"] == 11_689_512 and resnet18["depth"] == 18
    assert resnet18["receptive_field"] == 435            # torchvision ResNet-18, last feature map
    assert resnet18["macs"] == pytest.approx(1.8e9 * (32 / 224) ** 2, rel=0.05)
    assert rows[("mobilenet_v2", 32)]["parameters"] == 3_504_872
    vgg = rows[("vgg11 ×0.25", 28)]
    assert vgg["depth"] == 11 and vgg["receptive_field"] == 150
    for r in m["table"]:
        assert 0 < r["compression"] < 20 and r["rf_coverage"] > 0
        assert r["vc_lower"] <= r["vc_upper"]
        assert r["log10_vc_upper"] == pytest.approx(math.log10(r["vc_upper"]))
    # trained models beside their curves
    assert set(m["trained"]) == {"vgg11", "resnet20"}
    for arch, t in m["trained"].items():
        n = {"vgg11": 8, "resnet20": 10}[arch]
        assert len(t["Q"]) == len(t["coverage"]) == len(t["compression"]) == n
        assert all(-0.5 <= q < 0.9 for q in t["Q"])
        assert all(b >= a for a, b in zip(t["coverage"], t["coverage"][1:]))   # grows with depth
        assert 1 <= t["first_full_coverage"] <= n
        gain, first = t["Q"][-1] - t["Q"][0], t["first_full_coverage"]
        if gain > 0:
            assert t["share_before_cover"] == pytest.approx((t["Q"][first - 1] - t["Q"][0]) / gain)
        assert t["coverage"][t["first_full_coverage"] - 1] >= 1
        for key in ("rho_coverage", "rho_compression"):
            assert t[key] is None or -1 <= t[key] <= 1
        for key in ("p_coverage", "p_compression"):
            assert t[key] is None or 0 < t[key] <= 1
        assert 0.1 < t["test_accuracy"] <= 1
