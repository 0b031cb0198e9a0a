"""Range checks on what notebook 07_training_dynamics records under the smoke profile."""

import math

import numpy as np


def check(m):
    assert m["profile"] == "smoke" and m["recipe"] == "smoke"
    epochs, seeds = m["epochs"], m["seeds"]
    assert epochs == [0, 1, 2]                                   # the smoke recipe: 2 epochs + init
    assert seeds == [0, 1]
    expected_points = {"vgg11": 8, "resnet20": 10}
    assert set(m["models"]) == set(expected_points)
    # two claims per architecture, worded by stats from their intervals over the seeds
    ids = {c["id"] for c in m["claims"]}
    assert ids == {f"A-{slug}-{arch}" for arch in expected_points
                   for slug in ("rise-during-training", "deep-rise-exceeds-shallow")}
    for c in m["claims"]:
        assert c["n_seeds"] == len(seeds) and c["notebook"] == "07_training_dynamics"
        assert c["ci_low"] <= c["effect"] <= c["ci_high"], c
        side = ("supported" if c["ci_low"] > 0 else "refuted" if c["ci_high"] < 0
                else "inconclusive")
        assert c["verdict"] == side, c
    # at least one smoke model is trained well enough (mean over seeds) for the checks below
    assert max(np.mean(r["accuracy"], axis=0)[-1] for r in m["models"].values()) > 0.55
    for arch, record in m["models"].items():
        n_layers = expected_points[arch]
        assert len(record["layers"]) == n_layers
        accuracy = np.array(record["accuracy"])                  # seeds × epochs
        assert accuracy.shape == (len(seeds), len(epochs))
        assert ((accuracy[:, 0] >= 0.02) & (accuracy[:, 0] <= 0.25)).all(), (arch, accuracy)
        assert (accuracy[:, -1] > 0.3).all() and (accuracy[:, -1] > accuracy[:, 0] + 0.2).all()
        q, y = np.array(record["Q"]), np.array(record["Y"])      # epochs × layers, mean of seeds
        assert q.shape == y.shape == (len(epochs), n_layers), (arch, q.shape, y.shape)
        assert ((q >= -0.5) & (q < 0.9)).all(), (arch, q)         # below the 1 − 1/C ceiling
        assert (y > 0).all() and np.isfinite(y).all()
        if accuracy[:, -1].mean() > 0.55:                         # trained well enough to
            assert q[-1, -1] > q[0, -1], (arch, q[:, -1])         # separate the classes
        layers = record["layer_table"]
        assert layers["layer"] == list(range(1, n_layers + 1))
        # ΔQ per layer: the seeds' mean, inside its interval; the last layer's is the claim's
        delta = np.array(layers["mean"])
        assert np.allclose(delta, q[-1] - q[0], atol=1e-9)
        assert all(lo <= d <= hi for lo, d, hi in zip(layers["low"], delta, layers["high"]))
        rise = next(c for c in m["claims"] if c["id"] == f"A-rise-during-training-{arch}")
        assert abs(rise["effect"] - delta[-1]) < 1e-3
        assert set(layers["verdict"]) <= {"supported", "refuted", "inconclusive"}
        assert all(s >= 0 for s in layers["batch_std"])
        assert all(math.isnan(r) or -1 <= r <= 1 for r in layers["rho"])
        cka_final = np.array(record["cka_final"])
        assert cka_final.shape == (n_layers, n_layers)
        assert np.allclose(np.diag(cka_final), 1) and np.allclose(cka_final, cka_final.T)
        assert ((cka_final > -0.05) & (cka_final < 1 + 1e-9)).all()
        to_final = np.array(record["cka_to_final"])
        assert to_final.shape == (len(epochs), n_layers)
        assert np.allclose(to_final[-1], 1)                      # the last epoch against itself
        assert (to_final[0] < 0.999).any()                       # the initialisation differs
        assert len(record["settled_epoch"]) == n_layers
        assert all(epochs[0] <= e <= epochs[-1] for e in record["settled_epoch"])
        assert -1 <= record["cka_vs_q_difference_rho"] <= 1
