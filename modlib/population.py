"""Populations of small networks trained by La Malfa et al.'s protocol, binned by test accuracy.

La Malfa et al. (ICTAI 2021, arXiv 2110.02628; code EmanueleLM/CNT-DNNs, ``train_vision.py``)
compare the weight graphs of many networks that differ only in how they were initialised and
trained. This module follows their protocol scaled to a CPU; members are independent joblib
tasks with their own seeded generators. Protocol, cache layout and cluster use:
docs/complex_networks.md, "Populations".

Introduced in notebook 08_complex_networks.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from torch import nn

from . import cache, cnt, data, paths, stats, train
from .checks import check_choice, check_float_list, check_int
from .progress import bar

CODE_VERSION = 2
ARCHS = ("fc", "cnn")
INITIALIZERS = ("normal", "uniform", "truncated_normal", "variance_scaling")
OPTIMIZERS = {"sgd": 0.01, "adam": 1e-3}
VS_MODES = ("fan_in", "fan_out", "fan_avg")
VS_DISTRIBUTIONS = ("normal", "uniform")
BIN_WIDTH = 0.1
DEFAULT_HIDDEN = {"fc": 32, "cnn": 6}


@dataclass(frozen=True)
class PopulationConfig:
    """What defines a population (everything but ``size`` enters its cache key, so a larger
    population reuses the members of a smaller one; docs/complex_networks.md, "Populations").

    Attributes:
        arch: ``"fc"`` or ``"cnn"`` (:func:`build`).
        hidden: FC: width of the two first hidden layers; CNN: channels of both convs. ``None``:
            ``DEFAULT_HIDDEN[arch]``.
        scales, initializers, optimizers: the choices each member draws from.
        min_epochs, max_epochs: the range of the drawn number of epochs.
        train_per_class, test_per_class: class-balanced images per class of each subset.
        seed: drives every member's draw, initialisation and batch order, and the subsets.
    """

    arch: str = "fc"
    size: int = 200
    hidden: int | None = None
    scales: tuple = (0.05, 0.5)
    initializers: tuple = INITIALIZERS
    optimizers: tuple = ("sgd", "adam")
    min_epochs: int = 1
    max_epochs: int = 5
    batch_size: int = 64
    train_per_class: int = 200
    test_per_class: int = 100
    dataset: str = "fashion-mnist"
    seed: int = 0

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHS)
        if self.hidden is None:
            object.__setattr__(self, "hidden", DEFAULT_HIDDEN[self.arch])
        for name in ("size", "hidden", "min_epochs", "max_epochs", "batch_size",
                     "train_per_class", "test_per_class"):
            check_int(name, getattr(self, name), low=1)
        check_float_list("scales", self.scales, low=0.0, low_open=True)
        object.__setattr__(self, "scales", tuple(self.scales))
        for name, allowed in (("initializers", INITIALIZERS), ("optimizers", OPTIMIZERS)):
            object.__setattr__(self, name, _choices(name, getattr(self, name), allowed))
        if self.max_epochs < self.min_epochs:
            raise ValueError(f"max_epochs={self.max_epochs} is not allowed: must be >= "
                             f"min_epochs={self.min_epochs}")
        check_choice("dataset", self.dataset, data.DATASETS)
        check_int("seed", self.seed, low=0)

    def identity(self) -> dict:
        """The fields that define every member (all but ``size``) and the code version."""
        fields = asdict(self)
        del fields["size"]
        return {**fields, "code_version": CODE_VERSION}

    def key(self) -> str:
        """12 hex digits of SHA-256 over :meth:`identity`."""
        payload = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def folder(self) -> Path:
        """``data/cache/population/<arch>-<dataset>-<key>/``."""
        return paths.cache_dir() / "population" / f"{self.arch}-{self.dataset}-{self.key()}"


def _choices(name, values, allowed) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}={values!r} must be a list")
    values = tuple(values)
    if not values:
        raise ValueError(f"{name}=() is not allowed: give at least one value")
    return tuple(check_choice(f"{name}[{i}]", v, allowed) for i, v in enumerate(values))


# Members --------------------------------------------------------------------------------------
def member_spec(config: PopulationConfig, index: int) -> dict:
    """The seeded draw of member ``index``: ``seed``, ``initializer``, ``scale``, ``vs_mode``,
    ``vs_distribution`` (variance scaling only, else ``None``), ``optimizer``, ``lr``,
    ``epochs``. Depends only on ``(config.seed, index)`` and the choice lists."""
    check_int("index", index, low=0)
    rng = np.random.default_rng([config.seed, index])
    init = str(rng.choice(config.initializers))
    vs = init == "variance_scaling"
    mode, dist = str(rng.choice(VS_MODES)), str(rng.choice(VS_DISTRIBUTIONS))
    optimizer = str(rng.choice(config.optimizers))
    return {"seed": int(rng.integers(2**31 - 1)), "initializer": init,
            "scale": float(rng.choice(config.scales)),
            "vs_mode": mode if vs else None, "vs_distribution": dist if vs else None,
            "optimizer": optimizer, "lr": OPTIMIZERS[optimizer],
            "epochs": int(rng.integers(config.min_epochs, config.max_epochs + 1))}


def build(config: PopulationConfig, in_shape=(1, 28, 28), num_classes: int = 10) -> nn.Sequential:
    """The untrained ``nn.Sequential`` of ``config.arch`` for inputs ``in_shape`` (C, H, W):
    ``"fc"`` Flatten → Linear(h) → ReLU → Linear(h) → ReLU → Linear(200) → ReLU → Linear;
    ``"cnn"`` two 3×3 valid Conv2d(h) with ReLU → Flatten → Linear(200) → ReLU → Linear."""
    c, h, w = in_shape
    k = config.hidden
    if config.arch == "fc":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k), nn.ReLU(), nn.Linear(k, k),
                             nn.ReLU(), nn.Linear(k, 200), nn.ReLU(), nn.Linear(200, num_classes))
    return nn.Sequential(nn.Conv2d(c, k, 3), nn.ReLU(), nn.Conv2d(k, k, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(k * (h - 4) * (w - 4), 200), nn.ReLU(),
                         nn.Linear(200, num_classes))


def probe_points(model: nn.Sequential) -> list[str]:
    """Names of the ReLUs after each hidden weight layer (node layers ``1..L-1``): the outputs
    whose kNN graphs give the modularity of each hidden layer."""
    children = list(model.named_children())
    return [name for (_, module), (name, _) in zip(children, children[1:])
            if isinstance(module, (nn.Conv2d, nn.Linear))]


@torch.no_grad()
def initialise(model: nn.Module, spec: dict, generator: torch.Generator) -> None:
    """Draw every weight and bias of ``model`` from the member's initializer (Keras
    definitions; a bias's fans are its length, as Keras computes them for a 1-D shape)."""
    for p in model.parameters():
        kind, s = spec["initializer"], spec["scale"]
        if kind == "variance_scaling":     # as a truncated normal or a uniform of its own scale
            fan_in, fan_out = ((p.numel(),) * 2 if p.ndim == 1
                               else nn.init._calculate_fan_in_and_fan_out(p))
            fan = {"fan_in": fan_in, "fan_out": fan_out,
                   "fan_avg": (fan_in + fan_out) / 2}[spec["vs_mode"]]
            if spec["vs_distribution"] == "normal":   # Keras: truncated at 2 std, rescaled
                kind, s = "truncated_normal", math.sqrt(s / fan) / 0.87962566103423978
            else:
                kind, s = "uniform", math.sqrt(3.0 * s / fan)
        if kind == "normal":
            p.normal_(0.0, s, generator=generator)
        elif kind == "uniform":
            p.uniform_(-s, s, generator=generator)
        else:
            nn.init.trunc_normal_(p, 0.0, s, -2 * s, 2 * s, generator=generator)


def _epoch_path(folder: Path, index: int, epoch: int, suffix: str = ".pt") -> Path:
    """The weights file of a member's epoch; ``suffix=".optimizer.pt"``: its optimizer state."""
    return folder / f"member_{index:05d}" / f"epoch_{epoch}{suffix}"


def _identity(config: PopulationConfig, index: int, spec: dict, epoch: int) -> dict:
    return {"population": config.identity(), "member": index, "spec": spec, "epoch": epoch}


def _train_member(config: PopulationConfig, index: int, folder: str, xtr, ytr, xte, yte,
                  classes) -> dict:
    """Train (or load, or resume) member ``index`` inside a joblib worker; return its
    per-epoch rows and how many epochs were trained now."""
    # one thread per member: parallelism is across members, and a member's weights must not
    # depend on how many threads its worker had (loky workers, threads and the main process differ)
    torch.set_num_threads(1)
    folder = Path(folder)
    spec = member_spec(config, index)
    train_split = data.ImageSplit(torch.tensor(xtr), torch.tensor(ytr), classes, "train")
    test_split = data.ImageSplit(torch.tensor(xte), torch.tensor(yte), classes, "test")
    with cache.lock(_epoch_path(folder, index, spec["epochs"])):
        start, history = 0, []
        for epoch in range(spec["epochs"], 0, -1):
            identity = _identity(config, index, spec, epoch)
            record = cache.load(_epoch_path(folder, index, epoch), identity=identity)
            if record is not None and epoch == spec["epochs"]:
                return {"index": index, "spec": spec, "history": record["history"], "trained": 0}
            opt = None if record is None else cache.load(   # resuming needs the optimizer too
                _epoch_path(folder, index, epoch, ".optimizer.pt"), identity=identity)
            if opt is not None:
                start = epoch
                break
        model = build(config, tuple(train_split.x.shape[1:]), len(classes))
        initialise(model, spec, torch.Generator().manual_seed(spec["seed"]))
        optimizer_class = torch.optim.Adam if spec["optimizer"] == "adam" else torch.optim.SGD
        optimizer = optimizer_class(model.parameters(), lr=spec["lr"])
        if start:
            model.load_state_dict(record["state_dict"])
            optimizer.load_state_dict(opt["optimizer"])
            history = list(record["history"])
        n = len(train_split)
        for epoch in range(start + 1, spec["epochs"] + 1):
            model.train()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(
                spec["seed"] + 7919 * epoch))
            loss_sum = 0.0
            for begin in range(0, n, config.batch_size):
                idx = order[begin:begin + config.batch_size]
                loss = nn.functional.cross_entropy(model(train_split.x[idx]), train_split.y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(idx)
            finite = all(torch.isfinite(p).all() for p in model.parameters())
            accuracy, test_loss = train.evaluate(model, test_split)
            history.append({"epoch": epoch, "train_loss": loss_sum / n,
                            "test_accuracy": accuracy if finite else float("nan"),
                            "test_loss": test_loss, "finite": bool(finite)})
            identity = _identity(config, index, spec, epoch)
            # the optimizer state (needed only to resume) first, in a file of its own, so that
            # reading a checkpoint's weights stays cheap; the weights file marks the epoch done
            cache.save(_epoch_path(folder, index, epoch, ".optimizer.pt"),
                       {"optimizer": optimizer.state_dict()}, identity=identity)
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            cache.save(_epoch_path(folder, index, epoch),
                       {"state_dict": state, "history": history}, identity=identity)
        return {"index": index, "spec": spec, "history": history,
                "trained": spec["epochs"] - start}


# The population -------------------------------------------------------------------------------
def accuracy_bin(accuracy, width: float = BIN_WIDTH):
    """Bin index ``floor(accuracy / width)`` (accuracy 1.0 joins the top bin); NaN stays NaN."""
    a = np.asarray(accuracy, dtype=float)
    top = math.ceil(1.0 / width) - 1
    return np.where(np.isfinite(a), np.clip(np.floor(a / width + 1e-9), 0, top), np.nan)


@dataclass
class Population:
    """A trained population.

    Attributes:
        table: one row per checkpoint (member × epoch): ``member``, ``epoch``, ``epochs`` (the
            member's total), ``initializer``, ``scale``, ``vs_mode``, ``vs_distribution``,
            ``optimizer``, ``train_loss``, ``test_accuracy`` (fraction; NaN when the weights
            diverged), ``finite``, ``bin`` (``floor(accuracy / 0.1)``, NaN when diverged).
        trained_epochs: epochs trained by this call (0 when everything came from the cache).
        folder: where the checkpoints are (fixed when trained, for workers in other
            environments).
    """

    config: PopulationConfig
    table: pd.DataFrame
    trained_epochs: int
    in_shape: tuple
    classes: tuple
    folder: Path

    def load(self, member: int, epoch: int) -> nn.Sequential:
        """The model of ``member`` after ``epoch`` (from the verified cache), in eval mode;
        ``ValueError`` for no such member or epoch, ``FileNotFoundError`` for a lost checkpoint."""
        if not ((self.table.member == member) & (self.table.epoch == epoch)).any():
            raise ValueError(f"member={member}, epoch={epoch} is not in this population")
        spec = member_spec(self.config, member)
        path = _epoch_path(Path(self.folder), member, epoch)
        record = cache.load(path, identity=_identity(self.config, member, spec, epoch))
        if record is None:
            raise FileNotFoundError(f"checkpoint {path} is missing or unusable: rerun "
                                    "train_population to recreate it")
        model = build(self.config, self.in_shape, len(self.classes))
        model.load_state_dict(record["state_dict"])
        return model.eval()

    def last_checkpoints(self) -> pd.DataFrame:
        """The rows of :attr:`table` of every member's last epoch, one per member whose weights
        stayed finite. Introduced in notebook 08_complex_networks."""
        return self.table[self.table["finite"] & (self.table["epoch"] == self.table["epochs"])]

    def histogram(self) -> pd.Series:
        """Number of finite checkpoints per accuracy bin, indexed by bin labels
        ``"[0.0, 0.1)"`` ... (every bin, empty ones included)."""
        top = math.ceil(1.0 / BIN_WIDTH)
        counts = self.table["bin"].dropna().astype(int).value_counts()
        return pd.Series([int(counts.get(b, 0)) for b in range(top)], index=bin_labels())


def bin_labels(width: float = BIN_WIDTH) -> list[str]:
    """``["[0.0, 0.1)", ..., "[0.9, 1.0]"]``."""
    top = math.ceil(1.0 / width)
    return [f"[{b * width:.1f}, {(b + 1) * width:.1f}{']' if b == top - 1 else ')'}"
            for b in range(top)]


def accuracy_correlations(table: pd.DataFrame, layers, pairs: dict, *, n_boot: int = 1000,
                          seed: int = 0, min_members: int = 3) -> pd.DataFrame:
    """Spearman ρ of the test accuracy with a statistic of the node strengths and with its
    link-weight counterpart, per initialisation scale and node layer, with bootstrap intervals
    over members (``stats.spearman_bootstrap``) and that of the difference ρ(strength) −
    ρ(weights). ``pairs``: ``{strength statistic: link-weight statistic}``, columns of
    ``weight_graph_stats``'s ``table`` (e.g. ``{"Y": "lw_std"}``); a (scale, layer) with fewer
    than ``min_members`` members is skipped.

    Returns one row per scale, layer and strength statistic: ``scale``, ``layer``,
    ``statistic``, ``n`` (checkpoints), ``members``, ``rho_strength``, ``lo_s``, ``hi_s``,
    ``rho_weights``, ``lo_w``, ``hi_w``, ``diff_lo``, ``diff_hi`` (95 % percentile intervals).
    Raises ``ValueError`` for a column of ``pairs`` missing from ``table``.

    Source: La Malfa et al. (arXiv 2110.02628) compare the distributions by eye; the rank
    correlation is this companion's test of their claim (docs/complex_networks.md).
    Introduced in notebook 08_complex_networks.
    """
    _check_present("columns", {*pairs, *pairs.values()}, table.columns)
    ys, rows = [*pairs, *pairs.values()], []
    for scale in sorted(table["scale"].unique()):
        for layer in layers:
            part = table[(table["layer"] == layer) & (table["scale"] == scale)]
            if part["member"].nunique() < min_members:
                continue
            rho, boot = stats.spearman_bootstrap(part, "test_accuracy", ys, n_boot=n_boot,
                                                 seed=seed)
            for i, (s, w) in enumerate(pairs.items()):
                diff = np.nanquantile(boot[:, i] - boot[:, i + len(pairs)], [0.025, 0.975])
                rows.append({"scale": scale, "layer": layer, "statistic": s, "n": len(part),
                             "members": part["member"].nunique(),
                             **dict(zip(("rho_strength", "lo_s", "hi_s"), rho.loc[s])),
                             **dict(zip(("rho_weights", "lo_w", "hi_w"), rho.loc[w])),
                             "diff_lo": diff[0], "diff_hi": diff[1]})
    return pd.DataFrame(rows)


def strength_advantage(table: pd.DataFrame, layers, *, strength: str = "Y",
                       weights: str = "lw_std", n_boot: int = 1000, seed: int = 0,
                       confidence: float = 0.95):
    """How much more closely a node-strength statistic tracks the test accuracy than its
    link-weight counterpart: ``effect = mean over l in layers of |ρ(accuracy, strength_l)| −
    |ρ(accuracy, weights_l)|`` (Spearman ρ over the checkpoints in ``table``), with a percentile
    bootstrap interval over members (docs/complex_networks.md, "The ledger row"); ``table``:
    ``weight_graph_stats``'s, restricted to what is compared (one scale).

    Returns a ``stats.Interval``. Raises ``ValueError`` for no layer, a column or layer missing
    from ``table``, or fewer than 2 members.

    Source: La Malfa et al. (arXiv 2110.02628): strengths and fluctuations separate accurate
    networks while the raw weights look alike; this statistic is ours. Introduced in notebook
    08_complex_networks.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layers=[] is not allowed: give at least one node layer")
    _check_present("columns", (strength, weights), table.columns)
    _check_present("layers", layers, table["layer"].unique().tolist())
    wide = table[table["layer"].isin(layers)].pivot(
        index=["member", "epoch", "test_accuracy"], columns="layer", values=[strength, weights])
    wide.columns = [f"{name}@{layer}" for name, layer in wide.columns]
    wide = wide.reset_index()
    ys = [f"{strength}@{l}" for l in layers] + [f"{weights}@{l}" for l in layers]
    rho, boot = stats.spearman_bootstrap(wide, "test_accuracy", ys, n_boot=n_boot, seed=seed)
    n = len(layers)
    r = np.abs(rho["rho"].to_numpy())
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # a resample with constant ranks
        per_resample = np.nanmean(np.abs(boot[:, :n]) - np.abs(boot[:, n:]), axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(per_resample, [alpha, 1 - alpha])
    return stats.Interval(mean=float(np.mean(r[:n] - r[n:])), low=float(low), high=float(high),
                          n=int(wide["member"].nunique()), confidence=confidence,
                          method="percentile bootstrap over members", over="members")


def _check_present(name: str, values, allowed) -> None:
    missing = sorted(set(values) - set(allowed))
    if missing:
        raise ValueError(f"{name} {missing} are not in the table; allowed: {sorted(allowed)}")


def _subsets(config: PopulationConfig):
    return [data.balanced_subset(data.load(config.dataset, split), per_class, seed=config.seed)
            for split, per_class in (("train", config.train_per_class),
                                     ("test", config.test_per_class))]


def train_population(config: PopulationConfig, n_jobs: int = 1,
                     progress: bool = True) -> Population:
    """Train, load or resume every member of ``config`` as joblib tasks under the active
    backend (docs/complex_networks.md); ``n_jobs`` as joblib's (``-1``: all cores). Returns a
    :class:`Population`. Raises ``ValueError`` for ``n_jobs == 0`` or classes with fewer than
    ``train_per_class`` / ``test_per_class`` samples, ``FileNotFoundError`` for missing data.
    Introduced in notebook 08_complex_networks.
    """
    if not isinstance(config, PopulationConfig):
        raise TypeError(f"config must be a PopulationConfig, got {type(config).__name__}")
    n_jobs = check_int("n_jobs", n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs=0 is not allowed: use a positive number of workers or -1 for "
                         "all cores")
    train_split, test_split = _subsets(config)
    folder = str(config.folder())
    arrays = [t.numpy() for split in (train_split, test_split) for t in (split.x, split.y)]
    tasks = (joblib.delayed(_train_member)(config, i, folder, *arrays, test_split.classes)
             for i in range(config.size))
    runner = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    threads = torch.get_num_threads()      # members run single-threaded (see _train_member)
    try:
        results = list(bar(runner(tasks), total=config.size, desc=f"population {config.arch}",
                           unit="member", disable=not progress))
    finally:
        torch.set_num_threads(threads)
        train.release_workers()
    spec_columns = ["epochs", "initializer", "scale", "vs_mode", "vs_distribution", "optimizer"]
    table = pd.DataFrame([{"member": r["index"], **h, **{k: r["spec"][k] for k in spec_columns}}
                          for r in sorted(results, key=lambda r: r["index"])
                          for h in r["history"]],
                         columns=["member", "epoch", *spec_columns, "train_loss", "test_accuracy",
                                  "finite"])
    table["bin"] = accuracy_bin(table["test_accuracy"])
    return Population(config, table, sum(r["trained"] for r in results),
                      tuple(train_split.x.shape[1:]), test_split.classes, Path(folder))


# Analysis helpers -----------------------------------------------------------------------------
def _checkpoint_stats(pop: Population, member: int, epoch: int, per_checkpoint: int,
                      seed: int) -> tuple[pd.DataFrame, dict]:
    model = pop.load(member, epoch)
    strengths = cnt.node_strengths(model, pop.in_shape)
    weights = cnt.link_weights(model)
    rng = np.random.default_rng([seed, member, epoch])
    samples = {}          # weights[l - 1] are the links into node layer l
    for kind, layers in (("strength", enumerate(strengths)), ("weights", enumerate(weights, 1))):
        for l, values in layers:
            values = np.asarray(values.numpy(), dtype=np.float64)
            if len(values) > per_checkpoint:
                values = rng.choice(values, per_checkpoint, replace=False)
            samples[kind, l] = values
    return cnt.summary(strengths, weights), samples


def weight_graph_stats(pop: Population, *, pooled_per_checkpoint: int = 500, seed: int = 0,
                       n_jobs: int = 1) -> tuple[pd.DataFrame, dict]:
    """The CNT statistics of every finite checkpoint, and samples pooled by accuracy bin (at
    most ``pooled_per_checkpoint`` values per checkpoint and layer, seeded).

    Returns ``(table, pooled)``: ``table`` has one row per checkpoint and node layer with
    ``member``, ``epoch``, ``test_accuracy``, ``bin``, ``scale``, ``optimizer`` and the columns
    of ``cnt.summary``; ``pooled["strength" | "weights"][(layer, bin)]`` are 1-D float64 arrays
    (``weights`` from layer 1: the links into that node layer).
    """
    check_int("pooled_per_checkpoint", pooled_per_checkpoint, low=1)
    entries = pop.table[pop.table["finite"]]
    results = joblib.Parallel(n_jobs=n_jobs)(
        joblib.delayed(_checkpoint_stats)(pop, int(e.member), int(e.epoch),
                                          pooled_per_checkpoint, seed)
        for e in entries.itertuples())
    train.release_workers()
    frames, pooled = [], {"strength": {}, "weights": {}}
    for entry, (frame, samples) in zip(entries.itertuples(), results):
        for column in ("member", "epoch", "test_accuracy", "bin", "scale", "optimizer"):
            frame.insert(0, column, getattr(entry, column))
        frames.append(frame)
        for (kind, l), values in samples.items():
            pooled[kind].setdefault((l, int(entry.bin)), []).append(values)
    pooled = {kind: {key: np.concatenate(parts) for key, parts in sorted(d.items())}
              for kind, d in pooled.items()}
    return pd.concat(frames, ignore_index=True), pooled
