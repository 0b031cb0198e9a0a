"""Range checks on what notebook 06_layer_pruning records under the smoke profile."""

import pytest

RULES = ("A-guided", "B-guided", "highest ΔQ", "CKA (label-free)")
CLAIMS = ("A-guided-beats-random", "B-guided-beats-random", "A-highest-dq-below-random",
          "A-cka-rule-beats-random", "A-modularity-beats-cka", "A-no-cost",
          "B-saves-more-parameters", "B-no-accuracy-loss")


def check(m):
    assert m["profile"] == "smoke" and m["init"] == "inherit" and m["recipe"] == "smoke"
    assert m["finetune"] == {"epochs": 1, "lr": 0.02, "train_per_class": 50, "init": "inherit",
                             "seed": 0}
    assert m["seeds"] == [0, 1] and m["random_draws"] == 2
    # paper A's ResNet-56 row (its poster; docs/pruning.md): −43.0 % parameters, −60.3 % FLOPs
    assert m["paper_resnet56_check"]["params_reduction"] == pytest.approx(42.9, abs=0.05)
    assert m["paper_resnet56_check"]["macs_reduction"] == pytest.approx(60.2, abs=0.05)
    assert set(m["selections"]) == {"resnet20/0", "resnet20/1"}
    runs = m["runs"]
    for base, chosen in m["selections"].items():
        arch, seed = base.split("/")
        mine = [r for r in runs if r["model"] == arch and r["base_seed"] == int(seed)]
        kinds = [r["kind"] for r in mine]
        assert sorted(set(kinds)) == sorted({"original", "baseline (fine-tuned)", "random", *RULES})
        assert kinds.count("random") == 2 and all(kinds.count(k) == 1 for k in RULES)
        n = len(chosen["A-guided"])
        assert all(len(chosen[rule]) == n for rule in RULES)        # the same budget
        original = next(r for r in mine if r["kind"] == "original")
        for r in mine:
            assert 0 <= r["test_accuracy"] <= 1
            assert r["removed"] == (0 if r["kind"] in ("original", "baseline (fine-tuned)") else n)
            assert (r["parameters"] < original["parameters"]) == (r["removed"] > 0)
    rows = {(r["model"], r["variant"]): r for r in m["summary"]}
    assert rows[("resnet20", "random")]["runs"] == 4 and rows[("resnet20", "A-guided")]["runs"] == 2
    for rule in RULES:
        assert 0 <= rows[("resnet20", rule)]["parameters ↓ (%)"] < 100
    claims = {c["id"]: c for c in m["claims"]}
    assert set(claims) == {f"{c}-resnet20" for c in CLAIMS}
    for c in claims.values():
        assert c["paper"] == c["id"][0] and c["notebook"] == "06_layer_pruning"
        assert c["n_seeds"] == 2 and c["verdict"] in ("supported", "refuted", "inconclusive")
        assert -100 <= c["effect"] <= 100
        assert c["ci_low"] is None or c["ci_low"] <= c["effect"] <= c["ci_high"]
    # the paired effect is the mean over bases of (rule − mean of that base's random draws), in pp
    by = {}
    for r in runs:
        by.setdefault((r["base_seed"], r["kind"]), []).append(100 * r["test_accuracy"])
    diffs = [by[(s, "A-guided")][0] - sum(by[(s, "random")]) / 2 for s in (0, 1)]
    assert claims["A-guided-beats-random-resnet20"]["effect"] == pytest.approx(sum(diffs) / 2,
                                                                              abs=1e-3)
    assert "non-inferiority" in claims["A-no-cost-resnet20"]["claim"]
    assert "below -1" in claims["A-no-cost-resnet20"]["rule"]
    assert all(-0.5 <= q < 0.9 for q in m["pruned_final_Q"].values())
    assert all(0 <= a <= 100 for a in m["sweep"]["mean"].values())
    assert {key.rsplit(" ", 1)[0] for key in m["sweep"]["mean"]} == {"A lowest ΔQ", "B lowest ΔQ",
                                                                       "random"}
