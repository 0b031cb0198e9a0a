"""Training: determinism, the checkpoint cache, atomic writes, config validation."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modlib import cache, data, features, store, train

TINY = dict(dataset="digits", width=0.125, epochs=2, batch_size=64, lr=0.05, seed=3)


def test_training_is_deterministic_and_cached(tmp_path, monkeypatch):
    config = train.TrainConfig("resnet20", **TINY)
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "a"))
    first = train.load_or_train(config, device="cpu", progress=False)
    assert not first.from_cache and first.path.is_file()
    assert [h["epoch"] for h in first.history] == [1, 2]
    assert 0.0 <= first.test_accuracy <= 1.0
    again = train.load_or_train(config, device="cpu", progress=False)
    assert again.from_cache and again.history == first.history
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "b"))
    second = train.load_or_train(config, device="cpu", progress=False)
    assert not second.from_cache
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert [h["train_loss"] for h in second.history] == [h["train_loss"] for h in first.history]


def test_training_learns_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    result = train.load_or_train(train.TrainConfig("mlp", **{**TINY, "width": 0.25, "epochs": 10}),
                                 device="cpu", progress=False)
    assert result.test_accuracy > 0.8          # chance is 0.1
    accuracy, loss = train.evaluate(result.model, train.data.load("digits", "test"))
    assert accuracy == pytest.approx(result.test_accuracy)


def test_epoch_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    config = train.TrainConfig("vgg11", **{**TINY, "width": 0.0625})
    final = train.load_or_train(config, device="cpu", progress=False)
    assert_same_weights(train.load_epoch(config, 2), final.model)
    # epoch 0 is the seeded initialisation
    train.seed_everything(config.seed)
    init = train.build_model(config, data.load("digits", "test"))
    assert_same_weights(train.load_epoch(config, 0), init)
    assert not any(torch.equal(a, b) for a, b in zip(init.state_dict().values(),
                                                     final.model.state_dict().values())
                   if a.is_floating_point())
    epoch_1 = train.load_epoch(config, 1)
    for bad in (3, -1, 1.5, True):
        with pytest.raises(ValueError, match=rf"epoch={bad!r} is not available.*epochs 0..2"):
            train.load_epoch(config, bad)
    # a missing per-epoch checkpoint (an older cache, or one moved aside) is trained again
    train.epoch_checkpoint_path(config, 1).unlink()
    assert_same_weights(train.load_epoch(config, 1), epoch_1)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def probe_all(model):
    x = data.synthetic(n_per_class=8, num_classes=10, size=8, seed=5).x
    return features.probe(model, x)


def test_trained_and_loaded_models_are_identical(tmp_path, monkeypatch):
    """The first run (trains) and later runs (load) give bit-identical features and leave the
    global random state alone."""
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    config = train.TrainConfig("resnet20", **TINY)
    torch.manual_seed(123)
    trained = train.load_or_train(config, device="cpu", progress=False)
    after_training = torch.rand(3)
    torch.manual_seed(123)
    loaded = train.load_or_train(config, device="cpu", progress=False)
    after_loading = torch.rand(3)
    assert not trained.from_cache and loaded.from_cache
    assert torch.equal(after_training, after_loading)
    for result in (trained, loaded):
        model = result.model
        assert not model.training
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            assert p.device.type == "cpu" and p.is_contiguous(), name
            assert p.dtype in (torch.float32, torch.int64), name
        assert all(p.grad is None for p in model.parameters())
    a, b = probe_all(trained.model), probe_all(loaded.model)
    assert list(a) == list(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def corrupt(path, how):
    payload = path.read_bytes()
    if how == "flipped":
        middle = len(payload) // 2
        payload = payload[:middle] + bytes(b ^ 0xFF for b in payload[middle:middle + 16]) \
            + payload[middle + 16:]
    elif how == "truncated":
        payload = payload[:len(payload) // 3]
    else:
        payload = b""
    path.write_bytes(payload)


@pytest.mark.parametrize("how", ["flipped", "truncated", "empty"])
def test_damaged_checkpoint_is_moved_aside_and_retrained(tmp_path, monkeypatch, how):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(cache.STRICT_ENV, raising=False)
    config = train.TrainConfig("mlp", **TINY)
    clean = train.load_or_train(config, device="cpu", progress=False)
    corrupt(clean.path, how)
    with pytest.warns(cache.CacheWarning, match=str(clean.path)):
        again = train.load_or_train(config, device="cpu", progress=False)
    assert not again.from_cache
    assert [h["test_loss"] for h in again.history] == [h["test_loss"] for h in clean.history]
    assert_same_weights(again.model, clean.model)
    assert clean.path.with_name(clean.path.name + ".corrupt-1").is_file()
    assert train.load_or_train(config, device="cpu", progress=False).from_cache
    # strict mode: an error naming the file, nothing retrained or moved
    corrupt(clean.path, how)
    monkeypatch.setenv(cache.STRICT_ENV, "1")
    with pytest.raises(cache.CacheError, match=str(clean.path)):
        train.load_or_train(config, device="cpu", progress=False)
    assert not clean.path.with_name(clean.path.name + ".corrupt-2").exists()


def test_wrong_architecture_under_a_models_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(cache.STRICT_ENV, raising=False)
    config = train.TrainConfig("resnet20", **TINY)
    other = train.load_or_train(train.TrainConfig("mlp", **TINY), device="cpu", progress=False)
    # a copied file (with its digest): another configuration
    config.checkpoint_path().parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(other.path, config.checkpoint_path())
    shutil.copy(cache.digest_path(other.path), cache.digest_path(config.checkpoint_path()))
    with pytest.warns(cache.CacheWarning, match="config.arch: stored 'mlp', asked 'resnet20'"):
        result = train.load_or_train(config, device="cpu", progress=False)
    assert not result.from_cache
    # the right identity but weights of another architecture (models changed, CODE_VERSION not)
    cache.save(config.checkpoint_path(), {"state_dict": other.model.state_dict(), "history": []},
               identity=train.checkpoint_identity(config))
    with pytest.warns(cache.CacheWarning, match="weights do not fit resnet20"):
        again = train.load_or_train(config, device="cpu", progress=False)
    assert not again.from_cache
    assert_same_weights(again.model, result.model)


CONCURRENT = """
import json, time
from modlib import train
fit = train.fit
def slow_fit(*args, **kwargs):      # a training long enough for the other run to arrive
    time.sleep(3)
    return fit(*args, **kwargs)
train.fit = slow_fit
config = train.TrainConfig("mlp", dataset="digits", width=0.25, epochs=5, batch_size=64, seed=3)
result = train.load_or_train(config, device="cpu", progress=False)
print(json.dumps({"from_cache": result.from_cache, "acc": result.test_accuracy}))
"""


@pytest.mark.slow
def test_concurrent_runs_train_once(tmp_path):
    env = {**os.environ, "MODLIB_CACHE_DIR": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(train.__file__).resolve().parent.parent)}
    runs = [subprocess.Popen([sys.executable, "-c", CONCURRENT], env=env, text=True,
                             stdout=subprocess.PIPE) for _ in range(2)]
    outputs = [json.loads(run.communicate(timeout=300)[0].strip().splitlines()[-1])
               for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert sorted(o["from_cache"] for o in outputs) == [False, True]
    assert outputs[0]["acc"] == outputs[1]["acc"]


def test_cache_key_covers_every_field():
    base = train.TrainConfig("vgg11")
    changes = {"arch": "vgg16", "dataset": "mnist", "width": 0.5, "epochs": 4, "batch_size": 64,
               "lr": 0.1, "momentum": 0.5, "weight_decay": 0.0, "schedule": "multistep",
               "milestones": (1,), "gamma": 0.5, "augment": True, "train_per_class": 10,
               "seed": 1, "remove": ("features.1",), "test_per_class": 10,
               "parent": train.TrainConfig("vgg11", seed=5)}
    assert set(changes) == {f.name for f in dataclasses.fields(train.TrainConfig)}
    keys = {base.key()} | {dataclasses.replace(base, **{k: v}).key() for k, v in changes.items()}
    assert len(keys) == len(changes) + 1
    # recorded before the pruning fields existed: unset, they leave ordinary keys (and so the
    # users' caches) alone; only a CODE_VERSION bump may change this value (2: one thread)
    default_vgg11 = train.TrainConfig("vgg11", width=0.25, epochs=3, train_per_class=3000)
    assert default_vgg11.key() == "58d1ceec4daf"    # CODE_VERSION 2


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="arch='alexnet'"):
        train.TrainConfig("alexnet")
    with pytest.raises(ValueError, match="epochs=0"):
        train.TrainConfig("vgg11", epochs=0)
    with pytest.raises(ValueError, match="schedule='cosine'"):
        train.TrainConfig("vgg11", schedule="cosine")
    with pytest.raises(TypeError, match=r"milestones\[0\]=1.7 must be an integer"):
        train.TrainConfig("vgg11", schedule="multistep", milestones=(1.7,))
    with pytest.raises(TypeError, match=r"milestones\[1\]='a' must be an integer"):
        train.TrainConfig("vgg11", schedule="multistep", milestones=[1, "a"])
    with pytest.raises(TypeError, match="milestones='12' must be a list"):
        train.TrainConfig("vgg11", milestones="12")
    with pytest.raises(ValueError, match=r"milestones\[0\]=0 is not allowed"):
        train.TrainConfig("vgg11", milestones=[0])
    assert train.TrainConfig("vgg11", milestones=[2, 1]).milestones == (2, 1)
    for seed in (2**32, -1):
        with pytest.raises(ValueError, match=rf"seed={seed} is not allowed: must be an integer "
                                             r"in \[0, 4294967295\]"):
            train.TrainConfig("vgg11", seed=seed)
    assert train.TrainConfig("vgg11", seed=2**32 - 1).seed == 2**32 - 1


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "checkpoint.pt"
    store.write_bytes(target, b"old")

    def crash(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    with pytest.raises(ValueError):
        store.write_json(tmp_path / "m.json", {"q": float("nan")})


def test_metrics_are_made_json_safe():
    import numpy as np
    converted = store.jsonable({"q": np.float64("nan"), 3: (np.int64(7), [float("nan"), 0.5]),
                                "a": np.array([1, 2])})
    assert converted == {"q": None, "3": [7, [None, 0.5]], "a": [1, 2]}
    assert type(converted["3"][0]) is int


def test_config_values_are_normalised_and_checked():
    import numpy as np
    plain = train.TrainConfig("vgg11", width=0.5, epochs=3, lr=1.0, seed=2)
    spelled = train.TrainConfig("vgg11", width=np.float32(0.5), epochs=np.int64(3), lr=1,
                                seed=np.uint32(2))
    assert spelled == plain and spelled.key() == plain.key()
    assert type(spelled.epochs) is int and type(spelled.lr) is float
    with pytest.raises(TypeError, match="augment='no' must be True or False"):
        train.TrainConfig("vgg11", augment="no")
    with pytest.raises(ValueError, match="gamma=nan is not allowed"):
        train.TrainConfig("vgg11", gamma=float("nan"))
    with pytest.raises(TypeError, match="remove='features.1' must be a list of unit names"):
        train.TrainConfig("vgg11", remove="features.1")


@pytest.mark.slow
def test_training_many_in_parallel_gives_the_sequential_weights(tmp_path, monkeypatch):
    configs = [train.TrainConfig(arch, **{**TINY, "seed": seed})
               for arch, seed in [("resnet20", 3), ("vgg11", 3), ("resnet20", 4)]]
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "parallel"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)       # training runs on TRAIN_THREADS whatever the caller's setting
    try:
        assert train.train_uncached(configs + configs[:1], n_jobs=2, progress=False) == 3
        assert torch.get_num_threads() == 2
        parallel = train.load_or_train_many(configs + configs[:1], n_jobs=2, progress=False)
        assert all(found.from_cache for found in parallel)       # trained once, loaded here
    finally:
        torch.set_num_threads(threads)
    assert len(parallel) == 4 and parallel[3].history == parallel[0].history
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "sequential"))
    for config, found in zip(configs, parallel):
        alone = train.load_or_train(config, device="cpu", progress=False)
        assert not alone.from_cache
        assert [h["train_loss"] for h in alone.history] == [h["train_loss"] for h in found.history]
        assert_same_weights(alone.model, found.model)
    with pytest.raises(TypeError, match=r"configs\[1\]='vgg11' is not a modlib.train.TrainConfig"):
        train.load_or_train_many([configs[0], "vgg11"])
    with pytest.raises(ValueError, match="n_jobs=0 is not allowed"):
        train.train_uncached(configs, n_jobs=0)


def test_history_measures_on_the_evaluation_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    config = train.TrainConfig("mlp", **{**TINY, "width": 0.25, "test_per_class": 5})
    result = train.load_or_train(config, device="cpu", progress=False)
    test = data.load("digits", "test")
    subset = train.evaluation_split(config, test)
    assert len(subset) == 5 * test.num_classes and train.evaluation_split(
        dataclasses.replace(config, test_per_class=0), test) is test
    assert result.test_accuracy == train.evaluate(result.model, subset)[0]
    assert result.test_accuracy != train.evaluate(result.model, test)[0]
    # unset, the field is not part of the identity either: checkpoints from before it still load
    plain = dataclasses.replace(config, test_per_class=0)
    assert "test_per_class" not in train.checkpoint_identity(plain)["config"]
    child = dataclasses.replace(plain, parent=plain)
    assert "test_per_class" not in train.checkpoint_identity(child)["config"]["parent"]
    assert train.checkpoint_identity(config)["config"]["test_per_class"] == 5


@pytest.mark.slow
def test_release_workers_stops_the_loky_workers():
    # loky keeps its workers for the next parallel call; a kernel shut down with them alive
    # leaves "leaked semlock" warnings, so every parallel run of modlib ends by stopping them
    import joblib

    pids = set(joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(os.getpid)() for _ in range(4))) - {os.getpid()}
    assert pids                                          # ran in worker processes
    train.release_workers()
    for pid in pids:
        with pytest.raises(ProcessLookupError):          # stopped and reaped
            os.kill(pid, 0)
    train.release_workers()                               # nothing left to stop: no error
