"""The synthetic CIFAR-10 stand-in (``cifar10-synthetic``) that the tests write for
``modlib.data.load``: generated images in CIFAR-10's archive layout, labelled synthetic everywhere.
"""

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import filelock
import numpy as np
import torch

from modlib import data, paths, store
from modlib.checks import check_int, check_seed


def write_synthetic_cifar10(archive: Path, train_per_class: int = 200, test_per_class: int = 100,
                            seed: int = 0) -> Path:
    """Write a synthetic stand-in for CIFAR-10 in the real archive's layout (atomically) and
    return ``archive``: ten classes, each a smooth random colour prototype plus pixel noise with
    CIFAR-10's channel statistics, in the folder ``cifar10-synthetic-batches-py``, labelled
    synthetic everywhere; the bytes depend only on the arguments. Raises ``ValueError`` for a
    count below 1 or a bad seed, before anything is written."""
    check_int("train_per_class", train_per_class, low=1)
    check_int("test_per_class", test_per_class, low=1)
    rng = np.random.default_rng(check_seed("seed", seed))
    mean = np.array(data.NORMALISATION["cifar10"][0]).reshape(1, 3, 1, 1)
    std = np.array(data.NORMALISATION["cifar10"][1]).reshape(1, 3, 1, 1)
    coarse = torch.from_numpy(rng.standard_normal((10, 3, 4, 4)))
    prototypes = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear",
                                                 align_corners=False).numpy()

    def images(per_class):
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        pixels = prototypes[labels] * 0.7 + 0.7 * rng.standard_normal((len(labels), 3, 32, 32))
        pixels = np.clip(255 * (mean + std * pixels), 0, 255).round().astype(np.uint8)
        return pixels.reshape(len(labels), 3072), labels

    # the README's text names the writer's former home, modlib.data: kept, so that the archive's
    # bytes (and the caches holding it) stay the same
    members = {"README": ("SYNTHETIC stand-in for CIFAR-10 written by modlib.data."
                          "write_synthetic_cifar10: generated images in CIFAR-10's file layout, "
                          "for tests. Not CIFAR-10; no real image is in it.\n").encode()}
    members["batches.meta"] = pickle.dumps(
        {b"label_names": [f"synthetic {c}".encode() for c in range(10)],
         b"num_cases_per_batch": 2 * train_per_class, b"num_vis": 3072}, protocol=2)
    x, y = images(train_per_class)
    for i, (part_x, part_y) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5))):
        members[data.CIFAR10_TRAIN_BATCHES[i]] = _cifar_batch(
            f"synthetic training batch {i + 1} of 5 (not CIFAR-10)", part_x, part_y)
    members[data.CIFAR10_TEST_BATCH] = _cifar_batch(
        "synthetic testing batch 1 of 1 (not CIFAR-10)", *images(test_per_class))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb",
                                                   mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w") as tar:
            for name, payload in members.items():
                entry = tarfile.TarInfo(f"{data.SYNTHETIC_CIFAR10_FOLDER}/{name}")
                entry.size, entry.mtime = len(payload), 0
                tar.addfile(entry, io.BytesIO(payload))

    return store.atomic_write(archive, write)


def _cifar_batch(label: str, x: np.ndarray, y: np.ndarray) -> bytes:
    return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in y],
                         b"data": np.ascontiguousarray(x),
                         b"filenames": [f"synthetic_{i:05d}.png".encode() for i in range(len(y))]},
                        protocol=2)


def ensure_synthetic_cifar10() -> Path:
    """The stand-in's archive where ``data.load("cifar10-synthetic")`` reads it,
    ``<cache>/cifar10-synthetic/`` (never the real set's path), written on first use
    (200 training and 100 test images per class, seed 0; ``data.info`` has these sizes)."""
    archive = paths.cache_dir() / data.SYNTHETIC_CIFAR10 / data.SYNTHETIC_CIFAR10_ARCHIVE
    if not archive.is_file():
        archive.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(archive.parent / f"{archive.name}.lock"):
            if not archive.is_file():
                write_synthetic_cifar10(archive, 200, 100, seed=0)
    return archive
