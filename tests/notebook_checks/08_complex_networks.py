"""Range checks on what notebook 08_complex_networks records under the smoke profile."""

import math

import pytest

# node layers = weight layers + 1: VGG-11 has 8 convs and 3 linear layers, ResNet-20 19 convs
# and one linear layer
NODE_LAYERS = {"vgg11": 12, "vgg16": 17, "resnet20": 21}


def _interval(record):
    for key in ("rho_strength", "rho_weights"):
        assert -1 <= record[key] <= 1
    assert -1 <= record["lo_s"] <= record["hi_s"] <= 1
    assert -1 <= record["lo_w"] <= record["hi_w"] <= 1
    assert -2 <= record["diff_lo"] <= record["diff_hi"] <= 2
    assert 3 <= record["members"] <= record["n"]


def check(m):
    assert m["profile"] == "smoke" and m["dataset"] == "fashion-mnist"    # the smoke recipe's
    # the worked examples: by hand and the unrolled conv agree with cnt.node_strengths
    assert m["example"]["by_hand_max_abs_diff"] < 1e-9
    assert m["example"]["conv_max_abs_diff"] < 1e-9
    assert set(m["populations"]) == {"fc", "cnn"}
    for arch, p in m["populations"].items():
        assert p["size"] == {"fc": 12, "cnn": 6}[arch]
        # every member has 1..5 epochs, one checkpoint each
        assert p["size"] <= p["checkpoints"] <= 5 * p["size"]
        assert sum(p["histogram"]) == p["finite"] <= p["checkpoints"]
        assert len(p["histogram"]) == 10
        low, median, high = p["accuracy"]
        assert 0 <= low <= median <= high <= 1
        assert high > 0.3, (arch, high)          # some members learn something
        assert p["correlations"], arch
        for per_layer in p["correlations"].values():
            assert set(per_layer) <= {"1", "2", "3"}
            for record in per_layer.values():
                _interval(record)
        assert set(p["bridge"]) == {"1", "2", "3"}
        for record in p["bridge"].values():
            assert record["rho_Y"] is None or -1 <= record["rho_Y"] <= 1
        assert p["jeffreys_infinite_cells"] >= 0
        assert 0 <= p["js_max"] <= math.log(2) + 1e-12
    individual = m["individual"]
    assert len(individual["Y"]) == 5 and all(y >= 0 for y in individual["Y"])
    for arch, r in m["models"].items():
        assert len(r["Y"]) == len(r["Y_untrained"]) == NODE_LAYERS[arch]
        assert all(y > 0 and math.isfinite(y) for y in r["Y"] + r["Y_untrained"])
        assert 0.1 < r["test_accuracy"] <= 1
    assert m["models"]["vgg11"]["Y"] != pytest.approx(m["models"]["vgg11"]["Y_untrained"])
    # the ledger rows: one per population and initialisation scale with >= 3 members; the
    # independent units are the members, and the interval is a bootstrap over them
    assert m["claims"]
    sizes = {"fc": 12, "cnn": 6}
    for claim in m["claims"]:
        assert claim["id"].startswith("CNT-strength-beats-weights-") and claim["paper"] == "CNT"
        arch = claim["id"].split("-")[4]
        assert 3 <= claim["n_seeds"] <= sizes[arch]
        assert -1 <= claim["ci_low"] <= claim["ci_high"] <= 1 and -1 <= claim["effect"] <= 1, claim
        assert claim["verdict"] in ("supported", "refuted", "inconclusive")
        assert "members" in claim["statistic"]
