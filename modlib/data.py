"""Datasets: loading, integrity checks, class-balanced seeded subsets, normalisation.

Fashion-MNIST (the default, real data) and CIFAR-10 are verified by SHA-256 before they are read;
``digits``, ``synthetic`` and ``cifar10-synthetic`` are offline stand-ins for the tests. Every
split comes back as an :class:`ImageSplit` of normalised float32 tensors in memory. Sources and
stand-ins: docs/training.md, "Data".
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import paths, store
from .checks import check_choice, check_int, check_seed

DATASETS = ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "digits", "synthetic",
            "cifar10-synthetic")
SPLITS = ("train", "test")

# SHA-256 of the *decompressed* IDX files (the gzip wrappers differ between mirrors, the content
# does not). Sizes: 47,040,016 / 60,008 / 7,840,016 / 10,008 bytes.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# CIFAR-10, python version: the archive as published (170,498,071 bytes), verified whole.
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"           # the folder inside the archive
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

# The synthetic stand-in (the tests write it: tests/cifar_standin.py): the same file layout under
# names that cannot be taken for the real set.
SYNTHETIC_CIFAR10 = "cifar10-synthetic"
SYNTHETIC_CIFAR10_ARCHIVE = "cifar10-synthetic-python.tar.gz"
SYNTHETIC_CIFAR10_FOLDER = "cifar10-synthetic-batches-py"

# Per-channel mean and std used to normalise each dataset (train-set statistics; CIFAR values as in
# paper A's code, docs/training.md).
NORMALISATION = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "digits": ((0.3036,), (0.3819,)),
    "synthetic": ((0.0,), (1.0,)),
    # CIFAR-10's values: the stand-in is generated with these channel statistics
    "cifar10-synthetic": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


class DataIntegrityError(ValueError):
    """A dataset file on disk does not have the expected SHA-256 checksum."""


@dataclass(frozen=True)
class ImageSplit:
    """One split of an image dataset, normalised and held in memory: ``x`` ``(N, C, H, W)
    float32`` (normalised per channel, ``NORMALISATION``), ``y`` ``(N,) int64`` labels in
    ``[0, num_classes)``, ``classes[c]`` the name of label ``c``, ``name`` ``"<dataset>/<split>"``.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    name: str

    def __post_init__(self):
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: x must be (N, C, H, W) and y (N,), got "
                             f"{tuple(self.x.shape)} and {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.x.shape[1]

    def subset(self, indices) -> ImageSplit:
        """The samples at ``indices`` (a sequence or tensor of ints), in that order."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ImageSplit(self.x[indices], self.y[indices], self.classes, self.name)


# Fashion-MNIST: finding, decompressing and verifying the files --------------------------------
def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_fashion_mnist(raw_dir: Path) -> None:
    """Check the four decompressed IDX files in ``raw_dir`` against ``FASHION_MNIST_SHA256``;
    ``FileNotFoundError`` for a missing file, ``DataIntegrityError`` for a wrong checksum."""
    for name, expected in FASHION_MNIST_SHA256.items():
        path = raw_dir / name
        actual = sha256(path)
        if actual != expected:
            raise DataIntegrityError(
                f"Fashion-MNIST file {path} is corrupt or not the original: SHA-256 {actual}, "
                f"expected {expected}. Delete it and run `make data` to restore it.")


def ensure_fashion_mnist(download: bool = True) -> Path:
    """Make sure verified Fashion-MNIST IDX files are in the cache; return the cache root, the
    ``root`` of ``torchvision.datasets.FashionMNIST`` (sources: docs/training.md, "Data").
    Raises ``DataIntegrityError`` for a file failing its SHA-256 check, ``FileNotFoundError``
    (saying how to get the data) when no source has it."""
    root = paths.cache_dir()
    raw = root / "FashionMNIST" / "raw"
    missing = [name for name in FASHION_MNIST_SHA256 if not (raw / name).is_file()]
    if missing and all((DEBIAN_FASHION_MNIST / f"{name}.gz").is_file()
                       for name in FASHION_MNIST_SHA256):
        for name in missing:
            gz = DEBIAN_FASHION_MNIST / f"{name}.gz"
            store.write_bytes(raw / name, gzip.decompress(gz.read_bytes()))
    elif missing and download:
        try:
            import torchvision

            for train in (True, False):
                torchvision.datasets.FashionMNIST(root, train=train, download=True)
        except (OSError, RuntimeError):
            pass  # no network: fall through to the instructions below
    if all((raw / name).is_file() for name in FASHION_MNIST_SHA256):
        verify_fashion_mnist(raw)
        return root
    raise FileNotFoundError(
        "Fashion-MNIST was not found. Install it with `make data` (on Debian/Ubuntu this runs "
        "`apt-get install dataset-fashion-mnist`), or put the four IDX files "
        f"({', '.join(FASHION_MNIST_SHA256)}) into {raw}.")


# CIFAR-10 and its synthetic stand-in: one archive layout, read by one function ----------------
_VERIFIED: set = set()          # archives verified in this process (path, size, mtime)


def ensure_cifar10(download: bool = False) -> Path:
    """The path of the CIFAR-10 archive ``data/cache/cifar-10-python.tar.gz`` (where
    torchvision's download leaves it), fetched first with ``download``, after checking the whole
    archive against ``CIFAR10_SHA256`` (once per process). Raises ``DataIntegrityError`` for a
    wrong SHA-256, ``FileNotFoundError`` (saying where to put it) for no archive."""
    archive = paths.cache_dir() / CIFAR10_ARCHIVE
    if not archive.is_file() and download:
        from torchvision.datasets.utils import download_url

        try:
            download_url(CIFAR10_URL, str(archive.parent), CIFAR10_ARCHIVE)
        except (OSError, RuntimeError):
            pass  # no network: fall through to the instructions below
    if not archive.is_file():
        raise FileNotFoundError(
            f"dataset 'cifar10' was not found: put the original archive {CIFAR10_ARCHIVE} "
            f"(SHA-256 {CIFAR10_SHA256}) into {archive.parent}, or call "
            "modlib.data.load('cifar10', download=True) on a machine with internet access.")
    stat = archive.stat()
    if (archive, stat.st_size, stat.st_mtime_ns) not in _VERIFIED:
        actual = sha256(archive)
        if actual != CIFAR10_SHA256:
            raise DataIntegrityError(
                f"CIFAR-10 archive {archive} is corrupt or not the original: SHA-256 {actual}, "
                f"expected {CIFAR10_SHA256}. Delete it and fetch it again ({CIFAR10_URL}).")
        _VERIFIED.add((archive, stat.st_size, stat.st_mtime_ns))
    return archive


def read_cifar_archive(archive: Path, folder: str, train: bool):
    """Images, labels and class names of one split of an archive in CIFAR-10's python layout
    (``<folder>/data_batch_1..5``, ``test_batch``: pickled ``b"data"`` ``(n, 3072) uint8`` rows
    and ``b"labels"``; ``batches.meta``). Read only verified or self-written archives: pickles
    are trusted by their source.

    Returns:
        ``(images: (N, 3, 32, 32) uint8 tensor, labels: (N,) int64 tensor, classes: list[str])``.
    """
    import pickle
    import tarfile

    names = CIFAR10_TRAIN_BATCHES if train else (CIFAR10_TEST_BATCH,)
    wanted = {f"{folder}/{name}": name for name in ("batches.meta", *names)}
    found = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:                      # one pass: a gzip stream is read front to back
            if member.name in wanted:
                with tar.extractfile(member) as f:
                    found[wanted[member.name]] = pickle.load(f, encoding="bytes")
    missing = [name for name in wanted.values() if name not in found]
    if missing:
        raise DataIntegrityError(f"{archive} lacks {folder}/{missing[0]}: not an archive in "
                                 "CIFAR-10's python layout")
    classes = [c.decode() for c in found["batches.meta"][b"label_names"]]
    batches = [found[name] for name in names]
    images = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    return torch.from_numpy(images.copy()), torch.from_numpy(labels), classes


# Loading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """What is known of a dataset without loading it: ``train_size`` and ``test_size``
    (samples), ``num_classes`` and ``shape``, one image's ``(C, H, W)``."""

    train_size: int
    test_size: int
    num_classes: int
    shape: tuple[int, int, int]


_INFO = {
    "fashion-mnist": DatasetInfo(60000, 10000, 10, (1, 28, 28)),
    "mnist": DatasetInfo(60000, 10000, 10, (1, 28, 28)),
    "cifar10": DatasetInfo(50000, 10000, 10, (3, 32, 32)),
    "cifar100": DatasetInfo(50000, 10000, 100, (3, 32, 32)),
    "svhn": DatasetInfo(73257, 26032, 10, (3, 32, 32)),
    "digits": DatasetInfo(1347, 450, 10, (1, 8, 8)),
    "synthetic": DatasetInfo(800, 400, 4, (1, 16, 16)),
    "cifar10-synthetic": DatasetInfo(2000, 1000, 10, (3, 32, 32)),     # as the tests write it
}


def info(name: str) -> DatasetInfo:
    """Split sizes, classes and image shape of ``name`` without loading it (also for data not on
    this machine). Raises ``ValueError`` for an unknown ``name``. Introduced in notebook
    01_train_models."""
    check_choice("dataset", name, DATASETS)
    return _INFO[name]


def load(name: str, split: str = "test", download: bool = False) -> ImageSplit:
    """Load one split (``"train"`` or ``"test"``) of dataset ``name`` (``DATASETS``) as normalised
    in-memory tensors; ``download`` lets torchvision fetch what is not on disk (off by default).

    Returns an :class:`ImageSplit` (Fashion-MNIST: ``x: (60000 | 10000, 1, 28, 28)``). Raises
    ``ValueError`` for an unknown ``name`` or ``split``, ``FileNotFoundError`` (saying how to get
    it) for data not on disk, ``DataIntegrityError`` for a file failing its SHA-256 check.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    train = split == "train"
    if name == "digits":
        images, labels, classes = _digits(train)
    elif name == "synthetic":
        return synthetic(n_per_class=200 if train else 100, seed=0 if train else 1,
                         name=f"synthetic/{split}")
    elif name == "cifar10":
        images, labels, classes = read_cifar_archive(ensure_cifar10(download), CIFAR10_FOLDER,
                                                     train)
    elif name == SYNTHETIC_CIFAR10:
        archive = paths.cache_dir() / SYNTHETIC_CIFAR10 / SYNTHETIC_CIFAR10_ARCHIVE
        if not archive.is_file():
            raise FileNotFoundError(f"dataset {name!r} was not found at {archive}: it is a "
                                    "stand-in that the tests generate (`make test-paper`)")
        images, labels, classes = read_cifar_archive(archive, SYNTHETIC_CIFAR10_FOLDER, train)
    else:
        images, labels, classes = _torchvision(name, train, download)
    mean, std = NORMALISATION[name]
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return ImageSplit(x.contiguous(), labels.long(), tuple(classes), f"{name}/{split}")


def _torchvision(name: str, train: bool, download: bool):
    import torchvision.datasets as tvd

    if name == "fashion-mnist":
        ds = tvd.FashionMNIST(ensure_fashion_mnist(download), train=train, download=False)
        return ds.data.unsqueeze(1), ds.targets, ds.classes
    root = paths.cache_dir()
    try:
        if name == "mnist":
            ds = tvd.MNIST(root, train=train, download=download)
            return ds.data.unsqueeze(1), ds.targets, [str(c) for c in range(10)]
        if name == "cifar100":
            ds = tvd.CIFAR100(root, train=train, download=download)
            images = torch.from_numpy(ds.data).permute(0, 3, 1, 2)
            return images, torch.tensor(ds.targets), ds.classes
        ds = tvd.SVHN(root / "svhn", split="train" if train else "test", download=download)
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels), [str(c) for c in range(10)]
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(
            f"dataset {name!r} was not found under {root} ({err}). Put it there in torchvision's "
            f"layout, or call modlib.data.load({name!r}, download=True) on a machine with internet "
            "access.") from err


def _digits(train: bool):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(digits.target)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=0.25,
                                           stratify=digits.target, random_state=0)
    idx = torch.from_numpy(np.sort(idx_train if train else idx_test))
    return images[idx], labels[idx], [str(c) for c in range(10)]


def synthetic(n_per_class: int = 100, num_classes: int = 4, size: int = 16, channels: int = 1,
              noise: float = 1.0, seed: int = 0, name: str = "synthetic") -> ImageSplit:
    """A seeded image set with class structure, for tests: each sample is its class's smooth
    random prototype plus Gaussian pixel noise of std ``noise``. Returns ``x: (n_per_class *
    num_classes, channels, size, size) float32``, samples ordered by class."""
    check_int("n_per_class", n_per_class, low=1)
    check_int("num_classes", num_classes, low=2)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    coarse = torch.randn(num_classes, channels, 4, 4, generator=g)
    prototypes = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                                 align_corners=False)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = prototypes[y] + noise * torch.randn(len(y), channels, size, size, generator=g)
    return ImageSplit(x, y, tuple(f"class {c}" for c in range(num_classes)), name)


# Labels and sampling --------------------------------------------------------------------------
def class_indices(labels, n: int | None = None, name: str = "labels") -> torch.Tensor:
    """Class labels as ``(N,) int64`` indices ``0..C-1``, the distinct labels in sorted order.

    ``labels`` ``(N,)`` may be any discrete, hashable names (integers, booleans, strings) in a
    list, array, tensor or Series; names that cannot be sorted together are numbered in order of
    first appearance. ``n``: the number of samples they must label, if known.

    Raises ``ValueError`` for labels not ``(n,)``, ``TypeError`` for unhashable, floating-point
    or complex labels (a class is a name, not a measurement). Introduced in notebook
    05_modularity_curves.
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, (list, tuple)) and not any(isinstance(v, (list, np.ndarray))
                                                     for v in labels):
        array = np.empty(len(labels), dtype=object)     # NumPy would turn [1, "1"] into strings
        array[:] = labels                               # and tuples into rows
    else:
        array = np.asarray(labels)
    if array.ndim != 1 or (n is not None and len(array) != n):
        expected = f"(N,) = ({n},)" if n is not None else "(N,)"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    numeric = (float, complex, np.floating, np.complexfloating)
    bad = (f"dtype {array.dtype}" if array.dtype.kind in "fc" else next(
        (f"{type(v).__name__} label {v!r}" for v in array if isinstance(v, numeric)), None)
        if array.dtype.kind == "O" else None)
    if bad is not None:
        raise TypeError(f"{name} must be integers, strings or other hashable class names, got "
                        f"{bad}")
    if array.dtype.kind != "O":
        return torch.from_numpy(np.unique(array, return_inverse=True)[1].reshape(-1)).long()
    try:
        order = {v: i for i, v in enumerate(sorted(set(array.tolist())))}
    except TypeError as error:
        if "unhashable" in str(error):
            raise TypeError(f"{name} must be hashable class names: {error}") from None
        order = {v: i for i, v in enumerate(dict.fromkeys(array.tolist()))}
    return torch.tensor([order[v] for v in array.tolist()], dtype=torch.long)


def balanced_subset(split: ImageSplit, n_per_class: int, seed: int = 0) -> ImageSplit:
    """A class-balanced, seeded sample: ``n_per_class`` samples of every class, drawn without
    replacement and returned in their original order (depends only on the arguments).
    Raises ``ValueError`` when ``n_per_class < 1`` or a class has fewer samples."""
    check_int("n_per_class", n_per_class, low=1)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    chosen = []
    for c in range(split.num_classes):
        members = torch.nonzero(split.y == c).flatten()
        if len(members) < n_per_class:
            raise ValueError(f"n_per_class={n_per_class} is not allowed: class {c} "
                             f"({split.classes[c]!r}) of {split.name} has only {len(members)} "
                             "samples")
        chosen.append(members[torch.randperm(len(members), generator=g)[:n_per_class]])
    return split.subset(torch.sort(torch.cat(chosen)).values)


def stratified_batches(y: torch.Tensor, n_batches: int, batch_size: int,
                       seed: int = 0) -> list[torch.Tensor]:
    """Split sample indices into ``n_batches`` disjoint, class-balanced batches of ``batch_size``:
    each class shuffled (seeded), then dealt round-robin across classes. Returns ``n_batches``
    ``(batch_size,) int64`` index tensors; ``ValueError`` for fewer than ``n_batches *
    batch_size`` samples."""
    n_batches = check_int("n_batches", n_batches, low=1)
    batch_size = check_int("batch_size", batch_size, low=2)
    check_seed("seed", seed)
    y = class_indices(y, name="y")
    if n_batches * batch_size > len(y):
        raise ValueError(f"n_batches * batch_size = {n_batches} * {batch_size} = "
                         f"{n_batches * batch_size} is not allowed: only {len(y)} samples")
    g = torch.Generator().manual_seed(seed)
    rank = torch.empty(len(y), dtype=torch.long)
    for c in torch.unique(y):
        members = torch.nonzero(y == c).flatten()
        rank[members[torch.randperm(len(members), generator=g)]] = torch.arange(len(members))
    order = torch.from_numpy(np.lexsort((y.numpy(), rank.numpy())))
    return [order[b * batch_size:(b + 1) * batch_size] for b in range(n_batches)]


if __name__ == "__main__":  # `python -m modlib.data`: used by `make data`
    import sys

    try:
        location = ensure_fashion_mnist(download="--download" in sys.argv)
    except (FileNotFoundError, DataIntegrityError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"Fashion-MNIST verified in {location / 'FashionMNIST' / 'raw'}")
