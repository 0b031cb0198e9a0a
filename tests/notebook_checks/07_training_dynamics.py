"""Range checks on what notebook 07_training_dynamics records under the smoke profile."""

import math

import numpy as np


def check(m):
    assert m["profile"] == "smoke" and m["recipe"] == "smoke"
    epochs = m["epochs"]
    assert epochs == [0, 1, 2]                                   # the smoke recipe: 2 epochs + init
    expected_points = {"vgg11": 8, "resnet20": 10}
    assert set(m["models"]) == set(expected_points)
    # the smoke ResNet-20 stays near 50 % after two epochs and its last-layer Q need not rise;
    # at least one smoke model is trained well enough for the check below to apply
    assert max(r["accuracy"][-1] for r in m["models"].values()) > 0.55
    for arch, record in m["models"].items():
        n_layers = expected_points[arch]
        assert len(record["layers"]) == n_layers
        accuracy = record["accuracy"]
        assert len(accuracy) == len(epochs)
        assert 0.02 <= accuracy[0] <= 0.25, (arch, accuracy)     # the initialisation: near chance
        assert accuracy[-1] > 0.3 and accuracy[-1] > accuracy[0] + 0.2, (arch, accuracy)
        q, y = np.array(record["Q"]), np.array(record["Y"])
        assert q.shape == y.shape == (len(epochs), n_layers), (arch, q.shape, y.shape)
        assert ((q >= -0.5) & (q < 0.9)).all(), (arch, q)         # below the 1 − 1/C ceiling
        assert (y > 0).all() and np.isfinite(y).all()
        if accuracy[-1] > 0.55:                                      # trained well enough to
            assert q[-1, -1] > q[0, -1], (arch, q[:, -1])            # separate the classes
        for name in ("spearman_rho", "delta_Q", "delta_Q_ci", "trend", "settled_epoch"):
            assert len(record[name]) == n_layers, (arch, name)
        assert all(math.isnan(r) or -1 <= r <= 1 for r in record["spearman_rho"])
        assert all(c >= 0 for c in record["delta_Q_ci"])
        assert set(record["trend"]) <= {"rises", "flat", "falls"}
        # ΔQ is the last epoch's Q minus the initialisation's (paired over the same batches)
        assert abs(record["delta_Q"][-1] - (q[-1, -1] - q[0, -1])) < 1e-9
        cka_final = np.array(record["cka_final"])
        assert cka_final.shape == (n_layers, n_layers)
        assert np.allclose(np.diag(cka_final), 1) and np.allclose(cka_final, cka_final.T)
        assert ((cka_final > -0.05) & (cka_final < 1 + 1e-9)).all()
        to_final = np.array(record["cka_to_final"])
        assert to_final.shape == (len(epochs), n_layers)
        assert np.allclose(to_final[-1], 1)                      # the last epoch against itself
        assert (to_final[0] < 0.999).any()                       # the initialisation differs
        assert set(record["settled_epoch"]) <= set(epochs)
        assert -1 <= record["cka_vs_q_difference_rho"] <= 1
