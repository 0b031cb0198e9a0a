"""Range checks on what notebook 06_layer_pruning records under the smoke profile."""

import pytest

RULES = ("A-guided", "B-guided", "B natural cut", "highest ΔQ")


def check(m):
    assert m["profile"] == "smoke" and m["init"] == "inherit" and m["recipe"] == "smoke"
    assert m["finetune"] == {"epochs": 1, "lr": 0.02, "train_per_class": 50, "init": "inherit",
                             "seed": 0}
    # paper A's ResNet-56 row (its poster; docs/pruning.md): −43.0 % parameters, −60.3 % FLOPs
    assert m["paper_resnet56_check"]["params_reduction"] == pytest.approx(42.9, abs=0.05)
    assert m["paper_resnet56_check"]["macs_reduction"] == pytest.approx(60.2, abs=0.05)
    rows = {(r["model"], r["variant"]): r for r in m["summary"]}
    assert {a for a, _ in rows} == {"resnet20"} == set(m["selections"])
    for arch, chosen in m["selections"].items():
        variants = {v for a, v in rows if a == arch}
        assert variants == {"original", "random", "baseline (fine-tuned)", *RULES}
        original = rows[(arch, "original")]
        n = len(chosen["A-guided"])
        # the B-guided variant is recorded, at the same budget as paper A's rule
        assert len(chosen["B-guided"]) == len(chosen["B (τ curve)"]) == n
        assert rows[(arch, "B-guided")]["units removed"] == n
        assert rows[(arch, "B natural cut")]["units removed"] == len(chosen["B natural cut"])
        assert rows[(arch, "random")]["runs"] == 2
        assert rows[(arch, "random")]["units removed"] == rows[(arch, "highest ΔQ")]["units removed"] == n
        assert rows[(arch, "baseline (fine-tuned)")]["parameters"] == original["parameters"]
        for rule in RULES:
            row = rows[(arch, rule)]
            assert (row["parameters"] < original["parameters"]) == (row["units removed"] > 0)
            assert 0 <= row["parameters ↓ (%)"] < 100 and 0 <= row["MACs ↓ (%)"] < 100
        for (a, _), row in rows.items():
            if a == arch:
                assert 0 <= row["test accuracy (%)"] <= 100
                assert 0 <= row["accuracy before fine-tuning (%)"] <= 100
        random = rows[(arch, "random")]
        assert random["interval low (%)"] <= random["test accuracy (%)"] <= random["interval high (%)"]
        claim = m["claims"][arch]
        assert claim["verdict"] in ("supports", "contradicts", "mixed")
        assert claim["params_cut_b"] == rows[(arch, "B-guided")]["parameters ↓ (%)"]
    assert all(-0.5 <= q < 0.9 for q in m["pruned_final_Q"].values())
    assert all(0 <= a <= 100 for a in m["sweep"]["mean"].values())
    assert {key.rsplit(" ", 1)[0] for key in m["sweep"]["mean"]} == {"A lowest ΔQ", "B lowest ΔQ",
                                                                       "random"}
