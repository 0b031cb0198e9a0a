"""Training with a checkpoint cache (``docs/cache.md``): ``load_or_train(config)`` trains once,
deterministically on ``TRAIN_THREADS`` threads (``docs/training.md``), then loads the same model.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler
from .progress import bar as progress_bar

from . import cache, data, features, models, paths
from .checks import check_choice, check_float, check_int, check_seed

CODE_VERSION = 2      # 2: every CPU run trains on TRAIN_THREADS threads
TRAIN_THREADS = 1
SCHEDULES = ("onecycle", "multistep", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (and so its cache key).

    Attributes:
        arch, dataset: names from ``models.ARCHITECTURES`` and ``data.DATASETS``.
        lr: peak (``onecycle``) or initial (``multistep``, ``constant``) learning rate of SGD.
        schedule: ``onecycle``, ``multistep`` (decays by ``gamma`` at epochs ``milestones``) or
            ``constant``.
        augment: 4-pixel-shift crops and flips (paper A's CIFAR recipe, arXiv 2111.12485).
        train_per_class: a balanced seeded subset of this many per class; 0: the whole split.
        test_per_class: the test accuracy of the history on a balanced subset of this many test
            images per class (:func:`evaluation_split`); 0: the whole test split.
        remove: ``models.Unit`` names removed before training (``modlib.pruning``).
        parent: fine-tune from ``parent``'s trained weights with ``remove`` removed.
        seed: drives initialisation, batch order and the subset.
    """

    arch: str
    dataset: str = "fashion-mnist"
    width: float = 0.25
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    milestones: tuple[int, ...] = field(default_factory=tuple)
    gamma: float = 0.1
    augment: bool = False
    train_per_class: int = 0
    test_per_class: int = 0
    seed: int = 0
    remove: tuple[str, ...] = ()
    parent: TrainConfig | None = None

    def __post_init__(self):
        # stored as plain Python numbers: one cache key for 3, np.int64(3), ...
        def put(name, value):
            object.__setattr__(self, name, value)

        check_choice("arch", self.arch, models.ARCHITECTURES)
        check_choice("dataset", self.dataset, data.DATASETS)
        put("width", check_float("width", self.width, low=0.0, high=4.0, low_open=True))
        put("epochs", check_int("epochs", self.epochs, low=1))
        put("batch_size", check_int("batch_size", self.batch_size, low=1))
        put("lr", check_float("lr", self.lr, low=0.0, low_open=True))
        put("momentum", check_float("momentum", self.momentum, low=0.0, high=1.0, high_open=True))
        put("weight_decay", check_float("weight_decay", self.weight_decay, low=0.0))
        check_choice("schedule", self.schedule, SCHEDULES)
        if isinstance(self.milestones, (str, bytes)) or not isinstance(self.milestones, Iterable):
            raise TypeError(f"milestones={self.milestones!r} must be a list of epochs (integers)")
        put("milestones", tuple(check_int(f"milestones[{i}]", m, low=1)
                                for i, m in enumerate(self.milestones)))
        put("gamma", check_float("gamma", self.gamma, low=0.0, high=1.0, low_open=True))
        if not isinstance(self.augment, (bool, np.bool_)):
            raise TypeError(f"augment={self.augment!r} must be True or False")
        put("augment", bool(self.augment))
        put("train_per_class", check_int("train_per_class", self.train_per_class, low=0))
        put("test_per_class", check_int("test_per_class", self.test_per_class, low=0))
        put("seed", check_seed("seed", self.seed))
        if isinstance(self.remove, (str, bytes)) or not isinstance(self.remove, Iterable):
            raise TypeError(f"remove={self.remove!r} must be a list of unit names "
                            "(models.Unit names)")
        put("remove", tuple(str(u) for u in self.remove))
        if self.parent is not None:
            if not isinstance(self.parent, TrainConfig):
                raise TypeError(f"parent must be a TrainConfig or None, got "
                                f"{type(self.parent).__name__}")
            same = (self.parent.arch, self.parent.width, self.parent.dataset)
            if same != (self.arch, self.width, self.dataset):
                raise ValueError(f"parent trains {same}, which does not match this config's "
                                 f"{(self.arch, self.width, self.dataset)}")

    def key(self) -> str:
        """12 hex digits of SHA-256 over the config and ``CODE_VERSION``."""
        fields = asdict(self)
        del fields["remove"], fields["parent"], fields["test_per_class"]
        # fields added later enter the hash only when set, so earlier models kept their keys
        if self.test_per_class:
            fields["test_per_class"] = self.test_per_class
        if self.remove:
            fields["remove"] = list(self.remove)
        if self.parent is not None:
            fields["parent"] = self.parent.key()
        payload = json.dumps({**fields, "code_version": CODE_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def checkpoint_path(self) -> Path:
        """``data/cache/checkpoints/<arch>[-pruned]-<dataset>-<key>.pt``."""
        arch = f"{self.arch}-pruned" if self.remove else self.arch
        return paths.cache_dir() / "checkpoints" / f"{arch}-{self.dataset}-{self.key()}.pt"


@dataclass
class TrainedModel:
    """A trained ``model`` (eval mode, CPU) with its ``config``, checkpoint ``path``,
    ``from_cache`` and ``history``: one dict per epoch, ``epoch``, ``train_loss``,
    ``train_accuracy``, ``test_loss``, ``test_accuracy`` (fractions), ``seconds``."""

    model: nn.Module
    config: TrainConfig
    history: list[dict]
    path: Path
    from_cache: bool

    @property
    def test_accuracy(self) -> float:
        """Test accuracy after the last epoch (the last epoch's model is kept, not the best one)."""
        return self.history[-1]["test_accuracy"]


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random`` with one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; other strings pass to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(config: TrainConfig, split: data.ImageSplit) -> nn.Module:
    """The untrained model of ``config`` (with ``config.remove`` removed), sized for ``split``'s
    images and classes."""
    model = models.build(config.arch, num_classes=split.num_classes,
                         in_channels=split.in_channels, width=config.width,
                         image_size=split.x.shape[-1])
    return models.remove_units(model, config.remove) if config.remove else model


@torch.inference_mode()
def evaluate(model: nn.Module, split: data.ImageSplit, batch_size: int = 1000,
             device: str | torch.device = "cpu") -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``model`` on ``split``, in eval mode (float64 sums
    on the device, one synchronisation at the end)."""
    device = torch.device(device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    loss = torch.zeros((), dtype=torch.float64, device=device)
    with features.evaluating(model):
        for start in range(0, len(split), batch_size):
            yb = split.y[start:start + batch_size].to(device)
            logits = model(split.x[start:start + batch_size].to(device))
            loss += nn.functional.cross_entropy(logits, yb, reduction="sum").double()
            correct += (logits.argmax(1) == yb).sum()
    return correct.item() / len(split), loss.item() / len(split)


def _augment(xb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crops after 4-pixel zero padding, and random horizontal flips (one per image)."""
    n, _, h, w = xb.shape
    padded = nn.functional.pad(xb, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=g)
    dx = torch.randint(0, 9, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    out = torch.empty_like(xb)
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def fit(model: nn.Module, train: data.ImageSplit, test: data.ImageSplit, config: TrainConfig,
        device: str | torch.device = "cpu", progress: bool = True,
        epoch_callback=None) -> list[dict]:
    """Train ``model`` in place with SGD as ``config`` says; return the per-epoch history.
    ``epoch_callback(epoch, model)`` runs after each epoch (channels-last layout). The model ends
    in ``eval()`` mode, contiguous, without gradients (``docs/training.md``)."""
    device = torch.device(device)
    # channels-last layout speeds up CPU convolutions by ~30% and changes no number's meaning
    model.to(device=device, memory_format=torch.channels_last).train()
    g = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = -(-len(train) // config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    if config.schedule == "onecycle":
        scheduler = lr_scheduler.OneCycleLR(optimizer, config.lr, config.epochs * steps_per_epoch)
    elif config.schedule == "multistep":
        milestones = [m * steps_per_epoch for m in config.milestones]
        scheduler = lr_scheduler.MultiStepLR(optimizer, milestones, config.gamma)
    else:
        scheduler = lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    history = []
    bar = progress_bar(total=config.epochs * steps_per_epoch, disable=not progress,
                       desc=f"{config.arch} on {config.dataset}", unit="step")
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        # sums on the device: no synchronisation per step (float64, as Python's float would be)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        order = torch.randperm(len(train), generator=g)
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            xb = train.x[idx]
            if config.augment:
                xb = _augment(xb, g)
            xb = xb.to(device=device, memory_format=torch.channels_last)
            yb = train.y[idx].to(device)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
            bar.update()
            if progress and step % 10 == 0:     # .item() waits for the device: not every step
                bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
        test_accuracy, test_loss = evaluate(model, test, device=device)     # back in train mode
        history.append({"epoch": epoch, "train_loss": loss_sum.item() / len(train),
                        "train_accuracy": correct.item() / len(train), "test_loss": test_loss,
                        "test_accuracy": test_accuracy,
                        "seconds": round(time.perf_counter() - start, 2)})
        bar.set_postfix(epoch=epoch, test_acc=f"{test_accuracy:.4f}")
        if epoch_callback is not None:
            epoch_callback(epoch, model)
    bar.close()
    # contiguous, as a loaded model: channels-last convolutions round differently (~1e-6)
    model.to(memory_format=torch.contiguous_format).eval()
    model.zero_grad(set_to_none=True)
    return history


def epoch_checkpoint_path(config: TrainConfig, epoch: int) -> Path:
    """Where :func:`load_or_train` keeps the weights after ``epoch`` (0: the initialisation):
    ``data/cache/checkpoints/<name>/epoch_<epoch>.pt`` beside the final checkpoint."""
    return config.checkpoint_path().with_suffix("") / f"epoch_{epoch:03d}.pt"


def checkpoint_identity(config: TrainConfig, epoch: int | None = None) -> dict:
    """What a checkpoint of ``config`` claims to be (``cache.load`` compares it): the full
    configuration (``test_per_class`` only when set, as in the key), ``CODE_VERSION`` and, for a
    per-epoch checkpoint, the epoch."""
    def fields(c: TrainConfig | None):
        if c is None:
            return None
        found = {**asdict(c), "parent": fields(c.parent)}
        if not c.test_per_class:
            del found["test_per_class"]
        return found

    identity = {"config": fields(config), "code_version": CODE_VERSION}
    if epoch is not None:
        identity["epoch"] = epoch
    return identity


def load_or_train(config: TrainConfig, device: str = "auto", progress: bool = True) -> TrainedModel:
    """Load the verified cached model of ``config``, or train it (under its lock, saving every
    epoch for :func:`load_epoch`) and cache it; a damaged checkpoint is moved aside and retrained
    (``docs/cache.md``). The global random state is left as it was. ``device`` (``"auto"``,
    ``"cpu"`` or ``"cuda"``) is for training only: the model is rebuilt from its checkpoint,
    float32, eval mode, on the CPU.

    Raises:
        FileNotFoundError: the dataset is missing (see ``data.load``).
        cache.CacheError: a damaged checkpoint under strict mode.

    Introduced in notebook 01_train_models.
    """
    model, history, from_cache = _load_or_train(config, None, device, progress)
    return TrainedModel(model, config, history, config.checkpoint_path(), from_cache)


def load_epoch(config: TrainConfig, epoch: int, device: str = "auto",
               progress: bool = True) -> nn.Module:
    """The model of ``config`` after ``epoch`` epochs (0: its initialisation), eval mode, CPU,
    from :func:`load_or_train`'s per-epoch checkpoints (retrained if one is missing or damaged).

    Raises:
        ValueError: ``epoch`` outside ``0..config.epochs`` (the message names both).
        cache.CacheError: a damaged checkpoint under strict mode.

    Introduced in notebook 01_train_models.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) \
            or not 0 <= epoch <= config.epochs:
        raise ValueError(f"epoch={epoch!r} is not available: this config trains "
                         f"{config.epochs} epochs, so epochs 0..{config.epochs} are kept "
                         "(0 is the initialisation)")
    return _load_or_train(config, int(epoch), device, progress)[0]


def _load_or_train(config: TrainConfig, epoch: int | None, device: str, progress: bool):
    """``(model, history, from_cache)`` of the checkpoint of ``config`` (final, or ``epoch``),
    trained under its lock if it is missing (``history`` is ``None`` for an epoch's). Torch's,
    NumPy's and ``random``'s global random state is restored on exit."""
    states = (torch.get_rng_state(), np.random.get_state(), random.getstate(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None)
    try:
        test = data.load(config.dataset, "test")
        found = _load_checkpoint(config, test, epoch)
        if found is None:
            with cache.lock(config.checkpoint_path()):
                found = _load_checkpoint(config, test, epoch)     # trained meanwhile?
                if found is None:
                    history = _train(config, test, device, progress)
                    return _load_checkpoint(config, test, epoch, strict=True)[0], history, False
        return found[0], found[1].get("history"), True
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


def _load_checkpoint(config: TrainConfig, test: data.ImageSplit, epoch: int | None = None,
                     strict: bool | None = None) -> tuple[nn.Module, dict] | None:
    """``(model, record)`` from the verified checkpoint of ``config`` (final, or ``epoch``), or
    ``None`` when it is absent or was rejected."""
    path = config.checkpoint_path() if epoch is None else epoch_checkpoint_path(config, epoch)
    record = cache.load(path, identity=checkpoint_identity(config, epoch), strict=strict)
    if record is None:
        return None
    model = build_model(config, test)
    try:
        model.load_state_dict(record["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return cache.reject(path, f"its weights do not fit {config.arch} at width "
                                  f"{config.width}: {first_line}", strict=strict)
    return model.eval(), record


def evaluation_split(config: TrainConfig, test: data.ImageSplit) -> data.ImageSplit:
    """The test images ``config``'s history is measured on: ``test`` itself, or its balanced
    subset of ``config.test_per_class`` images per class (seed 0, the same for every seed; the
    smoke recipe's shortcut). Introduced in notebook 01_train_models."""
    return (data.balanced_subset(test, config.test_per_class, seed=0) if config.test_per_class
            else test)


def _train(config: TrainConfig, test: data.ImageSplit, device: str, progress: bool) -> list:
    """Train ``config`` and save every checkpoint (epochs 0..E and the final one); return the
    history. The caller holds the checkpoint's lock."""
    train = data.load(config.dataset, "train")
    if config.train_per_class:
        train = data.balanced_subset(train, config.train_per_class, seed=config.seed)
    if config.parent is not None:        # fine-tuning: start from the parent's trained weights
        parent = load_or_train(config.parent, device=device, progress=progress).model
    seed_everything(config.seed)         # after the parent, which may have trained and re-seeded
    model = (models.remove_units(parent, config.remove) if config.parent is not None
             else build_model(config, test))      # built after seeding: the init is seeded too

    def save_epoch(epoch, m):
        _save(epoch_checkpoint_path(config, epoch), m, checkpoint_identity(config, epoch), {})

    save_epoch(0, model)
    device, threads = resolve_device(device), torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS if device.type == "cpu" else threads)
    try:
        history = fit(model, train, evaluation_split(config, test), config, device, progress,
                      save_epoch)
    finally:
        torch.set_num_threads(threads)
    _save(config.checkpoint_path(), model, checkpoint_identity(config), {"history": history})
    return history


def load_or_train_many(configs, n_jobs: int = -1, device: str = "auto",
                       progress: bool = True) -> list[TrainedModel]:
    """:func:`load_or_train` for many configurations, the uncached ones trained first in
    parallel (:func:`train_uncached`): one :class:`TrainedModel` per config, in order.

    Raises:
        TypeError: an item that is not a :class:`TrainConfig`.
        ValueError: ``n_jobs`` is 0.

    Introduced in notebook 01_train_models.
    """
    configs = list(configs)
    train_uncached(configs, n_jobs, device, progress)
    return [load_or_train(c, device=device, progress=progress) for c in configs]


def train_uncached(configs, n_jobs: int = -1, device: str = "auto", progress: bool = True) -> int:
    """Train into the cache those of ``configs`` that it does not hold yet, on the CPU one per
    joblib worker (``n_jobs``, ``-1``: one per core), with the weights :func:`load_or_train`
    would give, bit for bit; loads nothing. With fewer than two to train, one worker or a GPU it
    does nothing, and :func:`load_or_train` trains each one when asked for it. Returns how many
    networks it trained.

    Raises:
        TypeError: an item that is not a :class:`TrainConfig`.
        ValueError: ``n_jobs`` is 0.

    Introduced in notebook 06_layer_pruning.
    """
    configs = list(configs)
    for i, config in enumerate(configs):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"configs[{i}]={config!r} is not a modlib.train.TrainConfig")
    if check_int("n_jobs", n_jobs) == 0:
        raise ValueError("n_jobs=0 is not allowed: use a positive count or -1 (every core)")
    missing = list({c.key(): c for c in configs if not c.checkpoint_path().exists()}.values())
    import joblib
    workers = min(len(missing), joblib.effective_n_jobs(n_jobs))
    if workers < 2 or resolve_device(device).type != "cpu":
        return 0
    cache_dir = str(paths.cache_dir())      # a reused worker may have started elsewhere
    runner = joblib.Parallel(n_jobs=workers, return_as="generator_unordered")
    with progress_bar(total=len(missing), disable=not progress, unit="network",
                      desc=f"training {len(missing)} networks, {workers} at a time") as bar:
        for _ in runner(joblib.delayed(_train_quietly)(c, device, cache_dir) for c in missing):
            bar.update()
    release_workers()
    return len(missing)


def release_workers() -> None:
    """Stop the worker processes that joblib's default ``loky`` backend keeps alive for the next
    parallel call, and delete their shared-memory folders; other backends (threads, Dask, Ray)
    have nothing to stop. This package calls it after each of its parallel runs: a Jupyter kernel
    shut down while loky's workers are alive is killed with them, and loky then reports "leaked
    semlock objects" and "leaked folder objects" on the driver's terminal. Introduced in notebook
    01_train_models."""
    from joblib.externals.loky import reusable_executor

    # joblib keeps one executor and offers no public handle to it; if a later joblib moves it,
    # this does nothing and only the warnings come back
    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None and hasattr(executor, "terminate"):
        executor.terminate()          # joblib's: shut the workers down, then clean the folders


def _train_quietly(config: TrainConfig, device: str, cache_dir: str) -> str:
    """A joblib task: load or train ``config`` into ``cache_dir``; return its key."""
    os.environ["MODLIB_CACHE_DIR"] = cache_dir
    load_or_train(config, device=device, progress=False)
    return config.key()


def _save(path: Path, model: nn.Module, identity: dict, extra: dict) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    cache.save(path, {"state_dict": state, **extra}, identity=identity)


# --------------------------------------------------------------------------------------------
# Named training recipes: what a notebook asks for instead of a dozen training knobs


@dataclass(frozen=True)
class Recipe:
    """A way of training the companion's CNNs, a value of ``RECIPES``: ``widths`` per
    architecture (``default_width`` else) and the :class:`TrainConfig` ``settings`` they share."""

    description: str
    widths: dict
    default_width: float
    settings: dict

    def config(self, arch: str, seed: int = 0) -> TrainConfig:
        """The :class:`TrainConfig` of ``arch`` under this recipe (validated, nothing trained)."""
        width = self.widths.get(arch, self.default_width)
        return TrainConfig(arch=arch, width=width, seed=seed, **self.settings)


RECIPES = {
    "cpu-3epoch": Recipe(
        "Fashion-MNIST, 3,000 training images per class, 3 epochs of one-cycle SGD (peak lr 0.05), "
        "VGG at width 0.25 and ResNet at 0.5: minutes on a laptop CPU",
        widths=dict.fromkeys(("resnet20", "resnet32", "resnet44", "resnet56", "resnet110"), 0.5),
        default_width=0.25,
        settings=dict(dataset="fashion-mnist", epochs=3, train_per_class=3000, batch_size=128,
                      lr=0.05, weight_decay=5e-4, schedule="onecycle")),
    "smoke": Recipe(
        "Fashion-MNIST, 100 training images per class, 2 epochs, width 0.25, test accuracy on 100 "
        "test images per class: seconds, for CI",
        widths={}, default_width=0.25,
        settings=dict(dataset="fashion-mnist", epochs=2, train_per_class=100, batch_size=32,
                      lr=0.05, weight_decay=5e-4, schedule="onecycle", test_per_class=100)),
    "paper-cifar10": Recipe(
        "paper A's recipe: CIFAR-10 (must be in data/cache/), full width, 150 epochs of SGD "
        "(lr 0.01, divided by 10 at epochs 50 and 100), batch 256, crops and flips: a GPU",
        widths={}, default_width=1.0,
        settings=dict(dataset="cifar10", epochs=150, train_per_class=0, batch_size=256, lr=0.01,
                      weight_decay=5e-3, schedule="multistep", milestones=(50, 100), augment=True)),
    "paper-synthetic": Recipe(
        "for tests of the paper profile only: paper A's optimiser, schedule and augmentation on "
        "the synthetic CIFAR-10 stand-in (generated images, not CIFAR-10), 20 images per class, "
        "2 epochs, width 0.125: seconds, the numbers mean nothing",
        widths={}, default_width=0.125,
        settings=dict(dataset="cifar10-synthetic", epochs=2, train_per_class=20, batch_size=32,
                      lr=0.01, weight_decay=5e-3, schedule="multistep", milestones=(1,),
                      augment=True)),
}


def recipe_configs(recipe: str, archs, seed: int = 0) -> list[TrainConfig]:
    """One :class:`TrainConfig` per architecture in ``archs`` (no repeats) under the recipe
    ``RECIPES[recipe]``, in order; nothing is trained.

    Raises:
        ValueError: an unknown recipe or architecture, an empty or repeated ``archs``, a bad seed.

    Introduced in notebook 01_train_models.
    """
    check_choice("recipe", recipe, RECIPES)
    if isinstance(archs, str) or not archs:
        raise ValueError(f"archs={archs!r} is not allowed: give a non-empty list of names from "
                         f"{models.ARCHITECTURES}")
    archs = list(archs)
    for i, arch in enumerate(archs):
        check_choice(f"archs[{i}]", arch, models.ARCHITECTURES)
    if len(set(archs)) != len(archs):
        raise ValueError(f"archs={archs} is not allowed: each architecture at most once")
    return [RECIPES[recipe].config(arch, seed=seed) for arch in archs]
