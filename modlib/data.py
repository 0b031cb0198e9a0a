"""Datasets: loading, integrity checks, class-balanced seeded subsets, normalisation.

Fashion-MNIST is the default and is real data. :func:`ensure_fashion_mnist` looks for it, in order,

1. decompressed in ``data/cache/FashionMNIST/raw/`` (torchvision's layout),
2. gzipped in ``/usr/share/datasets/fashion-mnist/`` (Debian package ``dataset-fashion-mnist``,
   installed by ``make data``), which it decompresses into the cache,
3. through torchvision's download (when the machine reaches the internet),

and verifies every decompressed file by SHA-256 before torchvision reads it. MNIST, CIFAR-10/100
and SVHN load through torchvision when they are already under ``data/cache/`` (or with
``download=True``). scikit-learn's ``digits`` (8x8 images) and a seeded ``synthetic`` set work
offline and serve the tests.

Every split comes back as an :class:`ImageSplit` of normalised float32 tensors held in memory: the
datasets are small, and plain tensors keep training loops simple and fast on a CPU.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import paths, store
from .checks import check_choice, check_int, check_seed

DATASETS = ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn", "digits", "synthetic")
SPLITS = ("train", "test")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# SHA-256 of the *decompressed* IDX files (the gzip wrappers differ between mirrors, the content
# does not). Sizes: 47,040,016 / 60,008 / 7,840,016 / 10,008 bytes.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

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
}


class DataIntegrityError(ValueError):
    """A dataset file on disk does not have the expected SHA-256 checksum."""


@dataclass(frozen=True)
class ImageSplit:
    """One split of an image dataset, normalised and held in memory.

    Attributes:
        x: ``(N, C, H, W) float32`` images, normalised per channel (``NORMALISATION``).
        y: ``(N,) int64`` class labels in ``[0, num_classes)``.
        classes: class names, ``classes[c]`` names label ``c``.
        name: ``"<dataset>/<split>"``, used in messages and cache keys.
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


# --------------------------------------------------------------------------------------------
# Fashion-MNIST: finding, decompressing and verifying the files


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_fashion_mnist(raw_dir: Path) -> None:
    """Check the four decompressed IDX files in ``raw_dir`` against ``FASHION_MNIST_SHA256``.

    Raises:
        FileNotFoundError: a file is missing.
        DataIntegrityError: a file's SHA-256 differs (the message names the file, both checksums,
            and how to recover).
    """
    for name, expected in FASHION_MNIST_SHA256.items():
        path = raw_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"Fashion-MNIST file {name} is missing from {raw_dir}")
        actual = sha256(path)
        if actual != expected:
            raise DataIntegrityError(
                f"Fashion-MNIST file {path} is corrupt or not the original: SHA-256 {actual}, "
                f"expected {expected}. Delete it and run `make data` to restore it.")


def ensure_fashion_mnist(download: bool = True) -> Path:
    """Make sure verified Fashion-MNIST IDX files are in the cache; return the cache root.

    The returned folder is the ``root`` that ``torchvision.datasets.FashionMNIST`` expects (the
    files sit in ``<root>/FashionMNIST/raw/``). Sources, in order: the cache, Debian's package,
    torchvision's download (only when ``download`` is true).

    Raises:
        DataIntegrityError: a file in the cache or in Debian's folder fails its SHA-256 check.
        FileNotFoundError: no source had the data; the message says how to get it.
    """
    root = paths.cache_dir()
    raw = root / "FashionMNIST" / "raw"
    if all((raw / name).is_file() for name in FASHION_MNIST_SHA256):
        verify_fashion_mnist(raw)
        return root
    if all((DEBIAN_FASHION_MNIST / f"{name}.gz").is_file() for name in FASHION_MNIST_SHA256):
        for name in FASHION_MNIST_SHA256:
            if not (raw / name).is_file():
                _gunzip(DEBIAN_FASHION_MNIST / f"{name}.gz", raw / name)
        verify_fashion_mnist(raw)
        return root
    if download:
        try:
            import torchvision

            torchvision.datasets.FashionMNIST(root, train=True, download=True)
            torchvision.datasets.FashionMNIST(root, train=False, download=True)
            verify_fashion_mnist(raw)
            return root
        except (OSError, RuntimeError):
            pass  # no network: fall through to the instructions below
    raise FileNotFoundError(
        "Fashion-MNIST was not found. Install it with `make data` (on Debian/Ubuntu this runs "
        "`apt-get install dataset-fashion-mnist`), or put the four IDX files "
        f"({', '.join(FASHION_MNIST_SHA256)}) into {raw}.")


def _gunzip(source: Path, target: Path) -> None:
    def write(tmp: Path) -> None:
        with gzip.open(source, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)

    store.atomic_write(target, write)


# --------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class DatasetInfo:
    """What is known of a dataset without loading it: split sizes, classes, image shape.

    Attributes:
        train_size, test_size: samples per split.
        num_classes: number of classes.
        shape: one image's ``(C, H, W)``.
    """

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
}


def info(name: str) -> DatasetInfo:
    """Split sizes, classes and image shape of ``name`` without loading it (so that a notebook can
    check its parameters before any work, also for data that is not on this machine).

    Raises:
        ValueError: unknown ``name``.

    Introduced in notebook 01_train_models.
    """
    check_choice("dataset", name, DATASETS)
    return _INFO[name]


def load(name: str, split: str = "test", download: bool = False) -> ImageSplit:
    """Load one split of a dataset as normalised in-memory tensors.

    Args:
        name: one of ``DATASETS``.
        split: ``"train"`` or ``"test"``.
        download: allow torchvision to download MNIST / CIFAR / SVHN (and Fashion-MNIST when
            neither the cache nor Debian's package has it). Off by default; never used by the smoke
            profile.

    Returns:
        An :class:`ImageSplit`; Fashion-MNIST gives ``x: (60000 | 10000, 1, 28, 28)``.

    Raises:
        ValueError: unknown ``name`` or ``split``.
        FileNotFoundError: the dataset is not on disk (the message says how to get it).
        DataIntegrityError: a Fashion-MNIST file fails its SHA-256 check.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    train = split == "train"
    if name == "digits":
        images, labels, classes = _digits(train)
    elif name == "synthetic":
        return synthetic(n_per_class=200 if train else 100, seed=0 if train else 1,
                         name=f"synthetic/{split}")
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
        return ds.data.unsqueeze(1), ds.targets, FASHION_MNIST_CLASSES
    root = paths.cache_dir()
    try:
        if name == "mnist":
            ds = tvd.MNIST(root, train=train, download=download)
            return ds.data.unsqueeze(1), ds.targets, [str(c) for c in range(10)]
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            ds = cls(root, train=train, download=download)
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
    """A seeded image set with class structure, for tests that must not touch real data.

    Each class has a smooth random prototype image; a sample is its class prototype plus
    independent Gaussian pixel noise of std ``noise``. Returns ``x: (n_per_class * num_classes,
    channels, size, size) float32``, samples ordered by class.
    """
    check_int("n_per_class", n_per_class, low=1)
    check_int("num_classes", num_classes, low=2)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    coarse = torch.randn(num_classes, channels, 4, 4, generator=g)
    prototypes = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                                 align_corners=False)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = prototypes[y] + noise * torch.randn(len(y), channels, size, size, generator=g)
    return ImageSplit(x, y, tuple(f"class {c}" for c in range(num_classes)), name)


# --------------------------------------------------------------------------------------------
# Labels and sampling


def class_indices(labels, n: int | None = None, name: str = "labels") -> torch.Tensor:
    """Class labels as ``(N,) int64`` indices ``0..C-1``, the distinct labels in sorted order.

    Any discrete labels are accepted: integers (any values), booleans, strings, or other
    hashable objects (a list, NumPy array, torch tensor or pandas Series). Labels that cannot be
    sorted together (mixed types) are numbered in order of first appearance.

    Args:
        labels: ``(N,)`` class of each sample.
        n: the number of samples they must label, if known.
        name: the argument's name, for messages.

    Raises:
        ValueError: not one-dimensional, or not ``n`` labels.
        TypeError: floating-point or complex labels (a class is a name, not a measurement:
            convert with ``.astype(int)`` if the values are whole numbers), or unhashable ones.

    Introduced in notebook 05_modularity_curves.
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
        order = {}
        for v in array.tolist():
            order.setdefault(v, len(order))
    return torch.tensor([order[v] for v in array.tolist()], dtype=torch.long)


# --------------------------------------------------------------------------------------------
# Sampling


def balanced_subset(split: ImageSplit, n_per_class: int, seed: int = 0) -> ImageSplit:
    """A class-balanced, seeded sample: ``n_per_class`` samples of every class.

    Samples are drawn without replacement with a ``torch.Generator`` seeded by ``seed`` and returned
    in their original order, so the result depends only on ``(split, n_per_class, seed)``.

    Raises:
        ValueError: ``n_per_class < 1``, or a class has fewer than ``n_per_class`` samples.
    """
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
    """Split sample indices into ``n_batches`` disjoint, class-balanced batches of ``batch_size``.

    Each class's indices are shuffled (seeded), then all samples are dealt round-robin across
    classes, so every run of ``batch_size`` consecutive samples holds ``batch_size / C`` of each
    class whenever the classes are large enough.

    Returns:
        list of ``n_batches`` ``(batch_size,) int64`` index tensors.

    Raises:
        ValueError: fewer than ``n_batches * batch_size`` samples.
    """
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
