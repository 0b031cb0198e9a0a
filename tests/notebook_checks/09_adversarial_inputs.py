"""Range checks on what notebook 09_adversarial_inputs records under the smoke profile."""

import math


def check(m):
    assert m["profile"] == "smoke" and m["recipe"] == "smoke"
    eps = m["eps"]
    assert eps == sorted(eps) and len(eps) >= 2 and all(0 < e <= 1 for e in eps)
    assert set(m["attacks"]) == {"fgsm", "pgd"}
    expected_points = {"vgg11": 8, "resnet20": 10}
    assert set(m["models"]) == set(expected_points)
    for arch, record in m["models"].items():
        assert record["layers"] == expected_points[arch]
        assert 0.3 < record["test_accuracy"] < 0.95, arch
        clean = record["clean_last_Q_true"]
        assert 0.1 < clean < 0.9, (arch, clean)                # trained: classes separate
        for name, attack in record["attacks"].items():
            success = attack["success_mean"]
            assert len(success) == len(attack["last_Q_true"]) == len(eps)
            assert all(0 <= s <= 1 for s in success), (arch, name, success)
            # attack success rises with ε (a little slack for the noisy small batches)
            assert all(b >= a - 0.05 for a, b in zip(success, success[1:])), (arch, name, success)
            assert success[-1] > success[0] and success[-1] > 0.5, (arch, name, success)
            # the adversarial last-layer Q (true classes) is below the clean one at the largest ε
            assert attack["last_Q_true"][-1] < clean - 0.02, (arch, name, attack, clean)
            assert attack["last_Q_drop"][-1] > 0
            assert all(-0.5 <= q < 0.9 for q in attack["last_Q_true"] + attack["last_Q_predicted"])
            assert all(math.isfinite(c) and c >= 0 for c in attack["last_Q_drop_ci"])
