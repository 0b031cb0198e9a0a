"""Populations: validation, seeded draws, initializers, backends, cache reloads and resumption.

Tiny populations on scikit-learn's 8x8 digits (offline, seconds)."""

import math
import os

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from modlib import cache, cnt, population as P, train


def tiny(**kwargs):
    settings = dict(arch="fc", size=4, hidden=6, dataset="digits", train_per_class=10,
                    test_per_class=10, max_epochs=3, seed=3)
    settings.update(kwargs)
    return P.PopulationConfig(**settings)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_validation_names_the_value_and_what_is_allowed():
    with pytest.raises(ValueError, match=r"initializers\[1\]='glorot' is not allowed.*"
                                         "'variance_scaling'"):
        P.PopulationConfig(initializers=("normal", "glorot"))
    with pytest.raises(ValueError, match="size=0 is not allowed"):
        P.PopulationConfig(size=0)
    with pytest.raises(ValueError, match="size=-3 is not allowed"):
        P.PopulationConfig(size=-3)
    with pytest.raises(ValueError, match="max_epochs=0 is not allowed"):
        P.PopulationConfig(max_epochs=0)
    with pytest.raises(ValueError, match="min_epochs=0 is not allowed"):
        P.PopulationConfig(min_epochs=0)
    with pytest.raises(ValueError, match="max_epochs=2 is not allowed: must be >= min_epochs=3"):
        P.PopulationConfig(min_epochs=3, max_epochs=2)
    with pytest.raises(ValueError, match="optimizers\\[0\\]='rmsprop'"):
        P.PopulationConfig(optimizers=["rmsprop"])
    with pytest.raises(ValueError, match=r"scales\[0\]=-0.5"):
        P.PopulationConfig(scales=[-0.5])
    with pytest.raises(ValueError, match="arch='rnn'"):
        P.PopulationConfig(arch="rnn")
    with pytest.raises(ValueError, match="n_jobs=0"):
        P.train_population(tiny(), n_jobs=0)


def test_member_draws_are_seeded_and_within_the_choices():
    config = P.PopulationConfig(seed=1)
    specs = [P.member_spec(config, i) for i in range(200)]
    assert specs[7] == P.member_spec(config, 7)
    assert specs[7] != P.member_spec(P.PopulationConfig(seed=2), 7)
    assert {s["initializer"] for s in specs} == set(P.INITIALIZERS)
    assert {s["optimizer"] for s in specs} == {"sgd", "adam"}
    assert {s["epochs"] for s in specs} == {1, 2, 3, 4, 5}
    assert {s["scale"] for s in specs} == {0.05, 0.5}
    for s in specs:
        assert s["lr"] == {"sgd": 0.01, "adam": 1e-3}[s["optimizer"]]
        assert (s["vs_mode"] is None) == (s["initializer"] != "variance_scaling")


def _init(initializer, scale, **extra):
    model = torch.nn.Sequential(torch.nn.Linear(400, 300))
    spec = {"initializer": initializer, "scale": scale, "vs_mode": None,
            "vs_distribution": None, **extra}
    P.initialise(model, spec, torch.Generator().manual_seed(0))
    return model[0].weight.detach(), model[0].bias.detach()


def test_initializers_follow_their_definitions():
    w, b = _init("normal", 0.5)
    assert w.std().item() == pytest.approx(0.5, rel=0.02)
    assert b.abs().sum() > 0                                   # biases initialised too
    w, _ = _init("uniform", 0.5)
    assert w.min() >= -0.5 and w.max() <= 0.5 and w.max() > 0.49
    w, _ = _init("truncated_normal", 0.5)
    assert w.abs().max() <= 1.0 and w.std().item() == pytest.approx(0.5 * 0.8796, rel=0.03)
    w, _ = _init("variance_scaling", 2.0, vs_mode="fan_in", vs_distribution="uniform")
    limit = math.sqrt(3 * 2.0 / 400)
    assert w.abs().max() <= limit and w.abs().max() > 0.98 * limit
    w, _ = _init("variance_scaling", 2.0, vs_mode="fan_avg", vs_distribution="normal")
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / 350), rel=0.03)


def test_bins():
    got = P.accuracy_bin([0.0, 0.05, 0.1, 0.3, 0.99, 1.0, float("nan")])
    np.testing.assert_array_equal(got[:6], [0, 0, 1, 3, 9, 9])
    assert np.isnan(got[6])
    assert P.bin_labels()[0] == "[0.0, 0.1)" and P.bin_labels()[-1] == "[0.9, 1.0]"


def test_probe_points_and_strengths_of_members():
    for arch, probes in (("fc", ["2", "4", "6"]), ("cnn", ["1", "3", "6"])):
        model = P.build(tiny(arch=arch), (1, 8, 8))
        assert P.probe_points(model) == probes
        strengths = cnt.node_strengths(model, (1, 8, 8))
        assert len(strengths) == 5 and strengths[-1].numel() == 10


def _weights(pop):
    return {(m, e): torch.cat([p.flatten() for p in pop.load(m, e).parameters()])
            for m, e in zip(pop.table.member, pop.table.epoch)}


@pytest.mark.slow
def test_backends_agree_and_reruns_load(fresh_cache, monkeypatch):
    config = tiny(arch="cnn")
    with joblib.parallel_config(backend="threading"):
        threaded = P.train_population(config, n_jobs=2, progress=False)
    assert threaded.trained_epochs == threaded.table.epoch.groupby(threaded.table.member).max().sum()
    assert len(threaded.table) == threaded.trained_epochs
    # the same members again, by processes (loky) into another cache folder
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(fresh_cache.parent / "other"))
    with joblib.parallel_config(backend="loky"):
        processes = P.train_population(config, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(threaded.table, processes.table)
    a, b = _weights(threaded), _weights(processes)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a rerun loads everything
    again = P.train_population(config, n_jobs=1, progress=False)
    assert again.trained_epochs == 0
    pd.testing.assert_frame_equal(again.table, processes.table)
    # the reloaded models have the recorded test accuracy
    _, test = P._subsets(config)
    row = again.table.iloc[-1]
    accuracy, _ = train.evaluate(again.load(int(row.member), int(row.epoch)), test)
    assert accuracy == pytest.approx(row.test_accuracy)
    assert set(again.histogram().index) == set(P.bin_labels())
    assert again.histogram().sum() == again.table["bin"].notna().sum()


def test_an_interrupted_member_resumes_from_its_last_checkpoint(fresh_cache):
    config = tiny(size=3, min_epochs=3, max_epochs=3)
    full = P.train_population(config, progress=False)
    before = _weights(full)
    # interrupt: member 1 lost its last two epochs, member 2 its last one
    for member, epochs in ((1, (2, 3)), (2, (3,))):
        for e in epochs:
            path = P._epoch_path(config.folder(), member, e)
            path.unlink()
            cache.digest_path(path).unlink()
    resumed = P.train_population(config, n_jobs=1, progress=False)
    assert resumed.trained_epochs == 3
    pd.testing.assert_frame_equal(full.table, resumed.table)
    after = _weights(resumed)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(os.listdir(config.folder())) == ["member_00000", "member_00001",
                                                   "member_00002"]


def test_weight_graph_stats(fresh_cache):
    config = tiny(size=3)
    pop = P.train_population(config, progress=False)
    table, pooled = P.weight_graph_stats(pop, pooled_per_checkpoint=5, seed=1)
    assert len(table) == 5 * len(pop.table)                       # 5 node layers per checkpoint
    row = pop.table.iloc[-1]
    model = pop.load(int(row.member), int(row.epoch))
    strengths = cnt.node_strengths(model, pop.in_shape)
    mine = table[(table.member == row.member) & (table.epoch == row.epoch)]
    np.testing.assert_allclose(mine["Y"], cnt.layer_fluctuation(strengths))
    assert set(pooled["strength"]) == {(l, int(b)) for l in range(5) for b in pop.table["bin"]}
    for (l, b), values in pooled["strength"].items():
        n = int((pop.table["bin"] == b).sum())
        assert len(values) == sum(min(5, len(strengths[l])) for _ in range(n))
    parallel, _ = P.weight_graph_stats(pop, pooled_per_checkpoint=5, seed=1, n_jobs=2)
    pd.testing.assert_frame_equal(table, parallel)


def _synthetic_stats(members=8, epochs=3, seed=0):
    """A weight_graph_stats-like table: Y tracks the accuracy, lw_std is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(members):
        for e in range(1, epochs + 1):
            acc = rng.uniform(0.1, 0.9)
            for layer in (1, 2):
                rows.append({"member": m, "epoch": e, "test_accuracy": acc, "layer": layer,
                             "scale": 0.05 if m % 2 else 0.5,
                             "Y": acc * layer + 0.01 * rng.normal(), "lw_std": rng.normal()})
    return pd.DataFrame(rows)


def test_last_checkpoints_keep_each_members_last_finite_epoch():
    table = pd.DataFrame({"member": [0, 0, 1, 1, 2], "epoch": [1, 2, 1, 2, 1],
                          "epochs": [2, 2, 2, 2, 1],
                          "finite": [True, True, True, False, True]})
    pop = P.Population(config=tiny(), table=table, trained_epochs=0, in_shape=(1, 8, 8),
                       classes=tuple(range(10)), folder="unused")
    last = pop.last_checkpoints()
    assert list(zip(last.member, last.epoch)) == [(0, 2), (2, 1)]     # member 1 diverged


def test_accuracy_correlations_against_scipy():
    from scipy.stats import spearmanr

    table = _synthetic_stats()
    found = P.accuracy_correlations(table, [1, 2], {"Y": "lw_std"}, n_boot=200, seed=1)
    assert len(found) == 4                                          # 2 scales x 2 layers
    row = found[(found.scale == 0.5) & (found.layer == 2)].iloc[0]
    part = table[(table.scale == 0.5) & (table.layer == 2)]
    assert row["rho_strength"] == pytest.approx(spearmanr(part.test_accuracy, part.Y).statistic)
    assert row["rho_weights"] == pytest.approx(spearmanr(part.test_accuracy, part.lw_std).statistic)
    assert row["members"] == 4 and row["n"] == 12
    assert row["lo_s"] <= row["rho_strength"] <= row["hi_s"] and row["diff_lo"] > 0
    with pytest.raises(ValueError, match=r"columns \['s_iqr'\]"):
        P.accuracy_correlations(table, [1], {"s_iqr": "lw_std"})


def test_strength_advantage_against_scipy():
    from scipy.stats import spearmanr

    table = _synthetic_stats(members=10)
    interval = P.strength_advantage(table, [1, 2], n_boot=300, seed=2)
    expected = np.mean([abs(spearmanr(p.test_accuracy, p.Y).statistic)
                        - abs(spearmanr(p.test_accuracy, p.lw_std).statistic)
                        for _, p in table.groupby("layer")])
    assert interval.mean == pytest.approx(expected)
    assert interval.n == 10 and interval.over == "members"          # members are the units
    assert 0 < interval.low <= interval.high <= 1 + 1e-12           # Y tracks, lw_std is noise
    # one layer reduces to that layer's difference
    one = P.strength_advantage(table, [2], n_boot=50, seed=2)
    p = table[table.layer == 2]
    assert one.mean == pytest.approx(abs(spearmanr(p.test_accuracy, p.Y).statistic)
                                     - abs(spearmanr(p.test_accuracy, p.lw_std).statistic))
    with pytest.raises(ValueError, match=r"layers \[7\] are not in the table"):
        P.strength_advantage(table, [7])
    with pytest.raises(ValueError, match="layers=\\[\\] is not allowed"):
        P.strength_advantage(table, [])
