"""Range checks on what notebook 05_modularity_curves records under the smoke profile."""

import pytest


def check(m):
    assert m["profile"] == "smoke" and m["seeds"] == [0, 1]
    example = m["example"]
    assert example["Q_modlib"] == pytest.approx(example["Q_networkx"], abs=1e-9)
    assert 0 <= example["P_intra"] <= 1
    # Q ≈ P_intra − 1/C (docs/modularity_curves.md), within a few hundredths for balanced classes
    assert example["Q_modlib"] == pytest.approx(example["P_intra"] - 0.1, abs=0.08)
    null = example["null"]
    assert null["q"] == pytest.approx(example["Q_modlib"], abs=1e-9)
    assert abs(null["null_mean"]) < 0.1 and null["null_std"] > 0      # shuffled labels: Q ≈ 0
    assert null["z"] > 3 and null["p"] == pytest.approx(1 / (1 + m["null_permutations"]))
    expected_points = {"vgg11": 8, "resnet20": 10}
    for arch, record in m["models"].items():
        assert len(record["layers"]) == len(record["Q_mean"]) == expected_points[arch]
        assert 0.3 < record["test_accuracy"] <= 1                 # mean over seeds
        per_seed = record["per_seed"]
        for seed in ("0", "1"):
            q, q0 = per_seed["Q_mean"][seed], per_seed["Q_untrained"][seed]
            assert len(q) == len(q0) == len(per_seed["Q_std"][seed]) == expected_points[arch]
            assert all(-0.5 <= v < 0.9 for v in q + q0), (arch, q, q0)   # below 1 − 1/C
            assert all(s >= 0 for s in per_seed["Q_std"][seed])
            assert q[-1] > 0.2, (arch, q)                          # trained: classes separate
            assert all(abs(v) < 0.1 for v in per_seed["Q_null_mean"][seed])
        means = [(a + b) / 2 for a, b in zip(per_seed["Q_mean"]["0"], per_seed["Q_mean"]["1"])]
        assert record["Q_mean"] == pytest.approx(means, abs=1e-9)
        assert len(record["last_null_z"]) == 2 and all(z > 3 for z in record["last_null_z"])
    assert 0 <= m["sensitivity"]["max_spread_over_k"] < 0.5
    assert 0 <= m["sensitivity"]["max_spread_over_N"] < 0.5
    claims = {c["id"]: c for c in m["claims"]}
    slugs = ("curve-rises", "plateau", "learned-structure")
    assert set(claims) == {f"A-{s}-{a}" for s in slugs for a in expected_points}
    for c in claims.values():
        assert c["paper"] == "A" and c["notebook"] == "05_modularity_curves"
        assert c["n_seeds"] == 2 and c["verdict"] in ("supported", "refuted", "inconclusive")
        assert c["ci_low"] <= c["effect"] <= c["ci_high"]
    for arch, record in m["models"].items():
        q = record["per_seed"]["Q_mean"]
        rise = [q[s][-1] - q[s][0] for s in ("0", "1")]
        assert claims[f"A-curve-rises-{arch}"]["effect"] == pytest.approx(sum(rise) / 2, abs=1e-4)
