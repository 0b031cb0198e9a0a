"""Training: determinism, the checkpoint cache, atomic writes, config validation."""

import dataclasses

import pytest
import torch

from modlib import store, train

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
    final = train.load_or_train(config, device="cpu", progress=False, save_every_epoch=True)
    last = train.load_epoch(config, 2)
    for key, value in final.model.state_dict().items():
        assert torch.equal(value, last.state_dict()[key])
    with pytest.raises(FileNotFoundError, match="epoch 3"):
        train.load_epoch(config, 3)


def test_cache_key_covers_every_field():
    base = train.TrainConfig("vgg11")
    changes = {"arch": "vgg16", "dataset": "mnist", "width": 0.5, "epochs": 4, "batch_size": 64,
               "lr": 0.1, "momentum": 0.5, "weight_decay": 0.0, "schedule": "multistep",
               "milestones": (1,), "gamma": 0.5, "augment": True, "train_per_class": 10,
               "seed": 1, "remove": ("features.1",),
               "parent": train.TrainConfig("vgg11", seed=5)}
    assert set(changes) == {f.name for f in dataclasses.fields(train.TrainConfig)}
    keys = {base.key()} | {dataclasses.replace(base, **{k: v}).key() for k, v in changes.items()}
    assert len(keys) == len(changes) + 1
    # recorded before the pruning fields existed: unset, they leave ordinary keys (and so the
    # users' caches) alone; only a CODE_VERSION bump may change this value
    default_vgg11 = train.TrainConfig("vgg11", width=0.25, epochs=3, train_per_class=3000)
    assert default_vgg11.key() == "7d02e94a3205"


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="arch='alexnet'"):
        train.TrainConfig("alexnet")
    with pytest.raises(ValueError, match="epochs=0"):
        train.TrainConfig("vgg11", epochs=0)
    with pytest.raises(ValueError, match="schedule='cosine'"):
        train.TrainConfig("vgg11", schedule="cosine")
    with pytest.raises(ValueError, match=r"archs=\['vgg11'\] and widths=\[0.25, 0.5\]"):
        train.configs_for(["vgg11"], [0.25, 0.5])


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
