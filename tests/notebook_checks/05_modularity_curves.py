"""Range checks on what notebook 05_modularity_curves records under the smoke profile."""

import pytest


def check(m):
    assert m["profile"] == "smoke"
    example = m["example"]
    assert example["Q_modlib"] == pytest.approx(example["Q_networkx"], abs=1e-9)
    assert 0 <= example["P_intra"] <= 1
    # Q ≈ P_intra − 1/C (docs/modularity_curves.md), within a few hundredths for balanced classes
    assert example["Q_modlib"] == pytest.approx(example["P_intra"] - 0.1, abs=0.08)
    expected_points = {"vgg11": 8, "resnet20": 10}
    for arch, record in m["models"].items():
        q = record["Q_mean"]
        assert len(q) == len(record["Q_std"]) == len(record["layers"]) == expected_points[arch]
        assert all(-0.5 <= v < 0.9 for v in q), (arch, q)     # below the 1 − 1/C ceiling
        assert all(s >= 0 for s in record["Q_std"])
        assert q[-1] > 0.2, (arch, q)                          # trained: classes separate
    assert 0 <= m["sensitivity"]["max_spread_over_k"] < 0.5
    assert 0 <= m["sensitivity"]["max_spread_over_N"] < 0.5
