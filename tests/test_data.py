"""Datasets: integrity checks, loading, balanced subsets and batches."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from modlib import data, paths

from cifar_standin import ensure_synthetic_cifar10, write_synthetic_cifar10


def test_integrity_failure_is_reported(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    contents = {name: f"content of {name}".encode() for name in data.FASHION_MNIST_SHA256}
    for name, payload in contents.items():
        (raw / name).write_bytes(payload)
    import hashlib
    checksums = {name: hashlib.sha256(p).hexdigest() for name, p in contents.items()}
    monkeypatch.setattr(data, "FASHION_MNIST_SHA256", checksums)
    data.verify_fashion_mnist(raw)                           # intact: no error
    victim = "train-labels-idx1-ubyte"
    (raw / victim).write_bytes(b"tampered")
    with pytest.raises(data.DataIntegrityError) as caught:
        data.verify_fashion_mnist(raw)
    message = str(caught.value)
    assert victim in message and checksums[victim] in message and "make data" in message
    (raw / victim).unlink()
    with pytest.raises(FileNotFoundError, match=victim):
        data.verify_fashion_mnist(raw)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="make data"):
        data.ensure_fashion_mnist(download=False)


def test_debian_gzip_files_are_decompressed_and_verified(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    debian.mkdir()
    import hashlib
    checksums = {}
    for name in data.FASHION_MNIST_SHA256:
        payload = f"idx {name}".encode()
        checksums[name] = hashlib.sha256(payload).hexdigest()
        with gzip.open(debian / f"{name}.gz", "wb") as f:
            f.write(payload)
    monkeypatch.setattr(data, "FASHION_MNIST_SHA256", checksums)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "cache"))
    root = data.ensure_fashion_mnist(download=False)
    raw = Path(root) / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(checksums)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == b"idx t10k-labels-idx1-ubyte"


def test_fashion_mnist_loads_and_is_verified():
    test = data.load("fashion-mnist", "test")
    assert test.x.shape == (10000, 1, 28, 28) and test.x.dtype == torch.float32
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert test.classes[9] == "Ankle boot"
    # normalised with the training statistics: test mean ~0, std ~1
    assert abs(test.x.mean().item()) < 0.05 and abs(test.x.std().item() - 1) < 0.05
    raw = paths.cache_dir() / "FashionMNIST" / "raw"
    assert data.sha256(raw / "t10k-labels-idx1-ubyte") == \
        data.FASHION_MNIST_SHA256["t10k-labels-idx1-ubyte"]


def test_digits_and_synthetic():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.x.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    synthetic = data.synthetic(n_per_class=5, num_classes=3, size=6, channels=2, seed=4)
    assert synthetic.x.shape == (15, 2, 6, 6) and synthetic.y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert torch.equal(synthetic.x, data.synthetic(5, 3, 6, 2, seed=4).x)


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="dataset='imagenet' is not allowed: choose one of"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="split='val'"):
        data.load("digits", "val")


def test_torchvision_dataset_missing_gives_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load("cifar10", "test")
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load("svhn", "test")


def test_synthetic_cifar10_has_the_real_layout_and_says_it_is_synthetic(tmp_path, monkeypatch):
    import tarfile

    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="the tests generate .*make test-paper"):
        data.load("cifar10-synthetic")
    archive = tmp_path / "cifar10-synthetic" / "cifar10-synthetic-python.tar.gz"
    assert ensure_synthetic_cifar10() == archive and archive.is_file()
    train, test = data.load("cifar10-synthetic", "train"), data.load("cifar10-synthetic", "test")
    # written only below cifar10-synthetic/, never at the real set's paths
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10-synthetic"]
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == sorted(f"cifar10-synthetic-batches-py/{n}" for n in (
        "README", "batches.meta", "test_batch", *(f"data_batch_{i}" for i in range(1, 6))))
    assert train.x.shape == (2000, 3, 32, 32) and test.x.shape == (1000, 3, 32, 32)
    assert torch.bincount(train.y).tolist() == [200] * 10
    assert torch.bincount(test.y).tolist() == [100] * 10
    assert train.classes == tuple(f"synthetic {c}" for c in range(10))
    assert train.name == "cifar10-synthetic/train"
    # pixels near CIFAR-10's channel statistics, so its normalisation applies: mean near 0
    assert train.x.mean(dim=(0, 2, 3)).abs().max() < 0.2
    assert 0.5 < float(train.x.std()) < 1.5
    # the same bytes every time
    again = write_synthetic_cifar10(tmp_path / "again.tar.gz")
    assert data.sha256(again) == data.sha256(archive)


def test_cifar_archive_reader_follows_the_documented_byte_order(tmp_path):
    import pickle
    import tarfile

    archive = write_synthetic_cifar10(tmp_path / "s.tar.gz", 2, 1, seed=5)
    with tarfile.open(archive) as tar:
        batch = pickle.load(tar.extractfile("cifar10-synthetic-batches-py/data_batch_1"),
                            encoding="bytes")
    images, labels, classes = data.read_cifar_archive(archive, data.SYNTHETIC_CIFAR10_FOLDER,
                                                      train=True)
    assert images.dtype == torch.uint8 and images.shape == (20, 3, 32, 32)
    row = batch[b"data"][0]                          # red plane, then green, then blue
    assert images[0, 1, 0, :].tolist() == row[1024:1056].tolist()
    assert images[0, 2, 31, 31] == row[3071]
    assert labels[:4].tolist() == batch[b"labels"]   # 20 images in 5 batches of 4
    assert classes[9] == "synthetic 9"
    with pytest.raises(data.DataIntegrityError, match="lacks cifar-10-batches-py/batches.meta"):
        data.read_cifar_archive(archive, data.CIFAR10_FOLDER, train=False)
    with pytest.raises(ValueError, match="train_per_class=0 is not allowed"):
        write_synthetic_cifar10(tmp_path / "bad.tar.gz", 0)
    assert not (tmp_path / "bad.tar.gz").exists()


def test_cifar10_archive_is_verified_by_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    # an archive in the real layout (the stand-in's bytes under CIFAR-10's folder name)
    monkeypatch.setattr(data, "SYNTHETIC_CIFAR10_FOLDER", data.CIFAR10_FOLDER)
    fake = write_synthetic_cifar10(tmp_path / data.CIFAR10_ARCHIVE, 2, 1)
    digest = data.sha256(fake)
    with pytest.raises(data.DataIntegrityError) as caught:
        data.load("cifar10", "test")
    assert digest in str(caught.value) and data.CIFAR10_SHA256 in str(caught.value)
    monkeypatch.setattr(data, "CIFAR10_SHA256", digest)        # as if it were the original
    test = data.load("cifar10", "test")
    assert test.x.shape == (10, 3, 32, 32) and test.name == "cifar10/test"
    assert data.CIFAR10_SHA256 == digest and len(data.CIFAR10_SHA256) == 64


def test_balanced_subset():
    split = data.load("digits", "test")
    subset = data.balanced_subset(split, 20, seed=1)
    assert torch.bincount(subset.y).tolist() == [20] * 10
    assert torch.equal(subset.x, data.balanced_subset(split, 20, seed=1).x)
    assert not torch.equal(subset.x, data.balanced_subset(split, 20, seed=2).x)
    with pytest.raises(ValueError, match="n_per_class=100 is not allowed: class 0"):
        data.balanced_subset(split, 100)


def test_stratified_batches_are_disjoint_and_balanced():
    y = torch.arange(10).repeat(100)                          # 1000 samples, 100 per class
    batches = data.stratified_batches(y, n_batches=5, batch_size=200, seed=0)
    assert len(batches) == 5
    all_indices = torch.cat(batches)
    assert len(torch.unique(all_indices)) == 1000
    for batch in batches:
        assert torch.bincount(y[batch], minlength=10).tolist() == [20] * 10
    # prefixes of a batch are balanced too (used by the N sweep)
    assert torch.bincount(y[batches[0][:50]], minlength=10).tolist() == [5] * 10
    with pytest.raises(ValueError, match="only 1000 samples"):
        data.stratified_batches(y, n_batches=6, batch_size=200)
    assert [b.tolist() for b in batches] == \
        [b.tolist() for b in data.stratified_batches(y, 5, 200, seed=0)]


@pytest.mark.parametrize("name", ["fashion-mnist", "digits", "synthetic", "cifar10-synthetic"])
def test_info_matches_the_loaded_data(name):
    if name == "cifar10-synthetic":
        ensure_synthetic_cifar10()                  # written by the tests, in the test cache
    info = data.info(name)
    train, test = data.load(name, "train"), data.load(name, "test")
    assert (info.train_size, info.test_size) == (len(train), len(test))
    assert info.num_classes == test.num_classes and info.shape == tuple(test.x.shape[1:])


def test_info_of_an_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='imagenet' is not allowed"):
        data.info("imagenet")


def test_class_indices_accepts_any_discrete_labels():
    import pandas as pd
    expected = [1, 0, 2, 0]
    for labels in ([5, -3, 9, -3], np.array(["dog", "cat", "eel", "cat"]),
                   ["dog", "cat", "eel", "cat"], torch.tensor([5, -3, 9, -3]),
                   pd.Series(["dog", "cat", "eel", "cat"]),
                   [(1, "b"), (0, "a"), (2, "c"), (0, "a")]):
        got = data.class_indices(labels)
        assert got.dtype == torch.int64 and got.tolist() == expected, labels
    assert data.class_indices([True, False, True]).tolist() == [1, 0, 1]
    assert data.class_indices(["b", 1, "b", 2]).tolist() == [0, 1, 0, 2]   # unsortable: order seen
    with pytest.raises(TypeError, match="labels must be integers, strings .* got dtype float64"):
        data.class_indices(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="got float label 1.7"):
        data.class_indices([0, 1.7])
    with pytest.raises(TypeError, match="labels must be integers, strings"):
        data.class_indices(["a", 1.5])
    with pytest.raises(TypeError, match="hashable"):
        data.class_indices(np.array([{1}, {2}], dtype=object))
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) = \(3,\), got \(2,\)"):
        data.class_indices([1, 2], n=3, name="y")


def test_string_labels_and_seeds_in_sampling():
    names = np.array(["shirt", "boot", "bag"])[np.arange(60) % 3]
    batches = data.stratified_batches(names, 2, 30, seed=4)
    codes = data.class_indices(names)
    for b, ref in zip(batches, data.stratified_batches(codes, 2, 30, seed=4)):
        assert torch.equal(b, ref)
        assert np.bincount(codes[b].numpy()).tolist() == [10, 10, 10]
    with pytest.raises(TypeError, match="y must be integers, strings"):
        data.stratified_batches(np.linspace(0, 2, 60), 2, 30)
    for bad in (-1, 2**32):
        with pytest.raises(ValueError, match=rf"seed={bad} is not allowed"):
            data.stratified_batches(codes, 2, 30, seed=bad)
        with pytest.raises(ValueError, match=rf"seed={bad} is not allowed"):
            data.synthetic(seed=bad)
