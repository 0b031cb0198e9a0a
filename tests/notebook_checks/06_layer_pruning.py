"""Range checks on what notebook 06_layer_pruning records under the smoke profile."""

import pytest


def check(m):
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
