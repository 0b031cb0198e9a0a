"""Range checks on what notebook 09_adversarial_inputs records under the smoke profile."""

import math


def check(m):
    assert m["profile"] == "smoke" and m["recipe"] == "smoke"
    eps, seeds = m["eps"], m["seeds"]
    assert eps == sorted(eps) and len(eps) >= 2 and all(0 < e <= 1 for e in eps)
    assert seeds == [0, 1]
    assert set(m["attacks"]) == {"fgsm", "pgd"}
    assert m["claim_attack"] in m["attacks"] and m["claim_eps"] in eps
    expected_points = {"vgg11": 8, "resnet20": 10}
    assert set(m["models"]) == set(expected_points)
    # one claim per architecture: Q(adversarial) − Q(clean) over seeds, supported if below 0
    assert {c["id"] for c in m["claims"]} == {f"A-drop-under-attack-{a}" for a in expected_points}
    for c in m["claims"]:
        assert c["n_seeds"] == len(seeds) and c["ci_low"] <= c["effect"] <= c["ci_high"], c
        side = ("supported" if c["ci_high"] < 0 else "refuted" if c["ci_low"] > 0
                else "inconclusive")
        assert c["verdict"] == side, c
        assert c["effect"] < 0, c                     # every smoke network loses Q under attack
    for arch, record in m["models"].items():
        assert record["layers"] == expected_points[arch]
        assert len(record["test_accuracy"]) == len(seeds)
        assert all(0.3 < a < 0.95 for a in record["test_accuracy"]), arch
        clean = record["clean_last_Q_true"]
        assert 0.1 < clean < 0.9, (arch, clean)                # trained: classes separate
        for name, sweep in record["sweep"].items():          # the first seed's sweep
            success = sweep["success"]
            assert sweep["eps"] == eps and len(success) == len(sweep["Q adv (true)"]) == len(eps)
            assert all(0 <= s <= 1 for s in success), (arch, name, success)
            # attack success rises with ε (a little slack for the noisy small batches)
            assert all(b >= a - 0.05 for a, b in zip(success, success[1:])), (arch, name, success)
            assert success[-1] > success[0] and success[-1] > 0.5, (arch, name, success)
            # the adversarial last-layer Q (true classes) is below the clean one at the largest ε
            assert sweep["Q adv (true)"][-1] < clean - 0.02, (arch, name, sweep, clean)
            assert sweep["ΔQ"][-1] < 0
            assert all(abs(d - (a - clean)) < 1e-9 for d, a in zip(sweep["ΔQ"], sweep["Q adv (true)"]))
            assert all(-0.5 <= q < 0.9 for q in sweep["Q adv (true)"] + sweep["Q adv (predicted)"])
            assert all(math.isfinite(s) and s >= 0 for s in sweep["batch std"])
