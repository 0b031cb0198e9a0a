"""Modularity-guided layer pruning (paper A, Lu et al., ECCV 2022, arXiv 2111.12485, its poster's
"Guiding Layer Pruning"; and paper B's variant), its controls, and cost counts.

A unit is removed when ``ΔQ(unit) = Q(after) − Q(before) < threshold``, under structural rules
that keep the pruned network well-formed with inherited weights. Rules, controls, the paired
design and our thresholds: ``docs/pruning.md``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import cka, data, features, models, stats, train
from .checks import check_choice, check_float, check_int
from .models import count_parameters
from .modularity import GRAPH_KINDS

CURVE_KINDS = GRAPH_KINDS
"""The curves a unit table can be built from (``modularity.GRAPH_KINDS``)."""

NATURAL_THRESHOLD = 0.0
"""Paper B's rule at its own cut, ``ΔQ < 0`` (our choice, ``docs/pruning.md``)."""


def unit_table(model: nn.Module, curve, kind: str = "knn") -> pd.DataFrame:
    """ΔQ of every unit of ``model`` from a per-layer modularity ``curve`` of kind ``kind``
    (:data:`CURVE_KINDS`): ``modularity.modularity_curve`` at ``model.probe_points()``, or one
    ``Q`` per probe point (NaN allowed). Returns a DataFrame, one row per unit in forward order:
    ``unit``, ``stage``, ``removable``, ``probe``, ``Q_before``, ``Q_after``, ``delta_q`` (NaN
    without a "before"), ``curve`` (``kind``).

    Raises:
        ValueError: an unknown ``kind``; the curve's probe points are not the model's, or a
            sequence whose length is not the number of probe points.

    Introduced in notebook 06_layer_pruning.
    """
    check_choice("curve kind", kind, CURVE_KINDS)
    points = list(model.probe_points())
    if isinstance(curve, pd.DataFrame):
        names = list(curve["name"])
        if names != points:
            raise ValueError(f"the curve does not match the model: it has probe points {names}, "
                             f"the model {points}")
        values = curve["Q_mean"].to_numpy(dtype=float)
    else:
        values = np.asarray(curve, dtype=float)
        if values.ndim != 1 or len(values) != len(points):
            raise ValueError(f"a {kind} curve of shape {values.shape} is not allowed: "
                             f"{type(model).__name__} has {len(points)} probe points, so the "
                             f"curve needs {len(points)} values")
    rows = []
    for unit in model.units():
        position = points.index(unit.probe)
        before = values[position - 1] if position > 0 else np.nan
        rows.append({"unit": unit.name, "stage": unit.stage, "removable": unit.removable,
                     "probe": unit.probe, "Q_before": before, "Q_after": values[position],
                     "delta_q": values[position] - before, "curve": kind})
    return pd.DataFrame(rows)


def _respecting_stages(table: pd.DataFrame, order: list[str], n: int | None = None) -> list[str]:
    """Removable units of ``order`` that leave every stage one, at most ``n`` (an integer up to
    :func:`max_removable`), in forward order."""
    if n is not None:
        check_int("n", n, low=0, high=max_removable(table))
    left = table.groupby("stage")["unit"].count().to_dict()
    stage_of = dict(zip(table["unit"], table["stage"]))
    removable = set(table.loc[table["removable"], "unit"])
    chosen = set()
    for unit in order:
        if n is not None and len(chosen) == n:
            break
        if unit in removable and left[stage_of[unit]] > 1:
            chosen.add(unit)
            left[stage_of[unit]] -= 1
    return [u for u in table["unit"] if u in chosen]


def max_removable(table: pd.DataFrame) -> int:
    """How many units can go at most under the structural rules."""
    return len(_respecting_stages(table, list(table["unit"])))


def select_by_threshold(table: pd.DataFrame, threshold: float = 0.03) -> list[str]:
    """Paper A's rule: the removable units with ``ΔQ < threshold``, every stage keeping its unit
    with the largest ΔQ (``docs/pruning.md``).

    Raises:
        ValueError: ``threshold`` outside [-1, 1].
    """
    threshold = check_float("threshold", threshold, low=-1.0, high=1.0)
    candidates = table[table["delta_q"] < threshold].sort_values("delta_q", kind="stable")
    return _respecting_stages(table, list(candidates["unit"]))


def select_lowest(table: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` removable units with the smallest ΔQ (guided removal of a fixed size); units
    without a ΔQ are taken only when no other is left."""
    return _select_ordered(table, n, ascending=True)


def select_highest(table: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` removable units with the largest ΔQ (the paper's control: non-redundant ones)."""
    return _select_ordered(table, n, ascending=False)


def select_random(table: pd.DataFrame, n: int, seed: int = 0) -> list[str]:
    """``n`` removable units in a seeded random order, skipping any that would empty a stage."""
    order = np.random.default_rng(seed).permutation(table["unit"].to_numpy()).tolist()
    return _respecting_stages(table, order, n)


def select_equal_budget(table: pd.DataFrame, reference) -> list[str]:
    """The lowest-ΔQ units of ``table``, as many as ``reference`` (unit names or a count) holds:
    paper B's rule at paper A's budget (``docs/pruning.md``).

    Raises:
        ValueError: ``reference`` names units that are not in ``table`` (another model), or asks
            for more units than the structural rules allow or than have a ΔQ.

    Introduced in notebook 06_layer_pruning.
    """
    if isinstance(reference, (int, np.integer)):
        return select_lowest(table, int(reference))
    reference = list(reference)
    unknown = sorted(set(reference) - set(table["unit"]))
    if unknown:
        raise ValueError(f"reference units {unknown} are not units of this table's model: "
                         f"its units are {list(table['unit'])}")
    return select_lowest(table, len(reference))


def _select_ordered(table, n, ascending, column="delta_q"):
    """Units ranked by ``column`` (ΔQ); units without a value (NaN: no evidence) come last."""
    ranked = table.sort_values(column, ascending=ascending, kind="stable", na_position="last")
    return _respecting_stages(table, list(ranked["unit"]), n)


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one ``(C, H, W)`` input: convolutions and
    matrix products by ``torch.utils.flop_counter``, FLOPs / 2."""
    with features.evaluating(model) as (device, dtype), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, dtype=dtype, device=device))
    return counter.get_total_flops() // 2


# --------------------------------------------------------------------------------------------
# Removal + fine-tuning, cached like any model


INITS = ("inherit", "scratch")

FINETUNE_RECIPES = {
    "cpu-3epoch": dict(epochs=1, lr=0.01, train_per_class=200),
    "smoke": dict(epochs=1, lr=0.02, train_per_class=50),
    "paper-cifar10": dict(epochs=150, lr=0.01, train_per_class=0),
    "paper-synthetic": dict(epochs=1, lr=0.01, train_per_class=10),
}
"""The training after a removal for each training recipe, the same for every variant
(``paper-cifar10``: paper A's schedule, meant with ``init="scratch"``; ``docs/pruning.md``).
Introduced in notebook 06_layer_pruning."""


def finetune_settings(recipe: str, init: str = "inherit", seed: int = 0) -> dict:
    """Keyword arguments of :func:`pruned_config` / :func:`evaluate_removal` for ``recipe``.

    Raises:
        ValueError: an unknown recipe or ``init``.

    Introduced in notebook 06_layer_pruning.
    """
    check_choice("recipe", recipe, FINETUNE_RECIPES)
    check_choice("init", init, INITS)
    return dict(FINETUNE_RECIPES[recipe], init=init, seed=check_int("seed", seed, low=0))


def measure_original(model: nn.Module, test_accuracy: float, input_shape) -> dict:
    """The unpruned network as an :func:`evaluate_removal` row of kind ``"original"``;
    ``input_shape`` is one input's ``(C, H, W)``. Introduced in notebook 06_layer_pruning."""
    return {"variant": "original", "kind": "original", "control_seed": None, "removed": 0,
            "units": [], "accuracy_before": test_accuracy, "test_accuracy": test_accuracy,
            "parameters": count_parameters(model), "MACs": count_macs(model, tuple(input_shape)),
            "network": model}


def pruned_config(parent: train.TrainConfig, remove, epochs: int = 1, lr: float = 0.01,
                  train_per_class: int = 1000, init: str = "inherit",
                  seed: int = 0) -> train.TrainConfig:
    """The training configuration of ``parent``'s network without the units ``remove``:
    fine-tuned from the parent's weights (``init="inherit"``) or trained from scratch, as paper
    A's code does (``docs/pruning.md``)."""
    check_choice("init", init, INITS)
    return dataclasses.replace(parent, epochs=epochs, lr=lr, train_per_class=train_per_class,
                               seed=seed, remove=tuple(remove),
                               parent=parent if init == "inherit" else None)


def evaluate_removal(parent: train.TrainConfig, remove, label: str, device: str = "auto",
                     kind: str | None = None, control_seed: int | None = None,
                     before: bool = True, progress: bool = True, **finetune) -> dict:
    """Remove ``remove`` from ``parent``'s model, fine-tune (cached), and measure it.

    ``finetune`` goes to :func:`pruned_config`. Returns a dict: ``variant`` (``label``), ``kind``
    (default ``label``), ``control_seed``, ``removed``, ``units``, ``accuracy_before`` (before
    fine-tuning; NaN with ``before=False``), ``test_accuracy``, ``parameters``, ``MACs``,
    ``network``.

    Introduced in notebook 06_layer_pruning.
    """
    config = pruned_config(parent, remove, **finetune)
    test = data.load(parent.dataset, "test")
    accuracy_before = float("nan")
    if before:
        parent_model = train.load_or_train(parent, device=device, progress=progress).model
        accuracy_before = train.evaluate(models.remove_units(parent_model, remove),
                                         train.evaluation_split(parent, test))[0]
    result = train.load_or_train(config, device=device, progress=progress)
    return {"variant": label, "kind": kind or label, "control_seed": control_seed,
            "removed": len(config.remove), "units": list(config.remove),
            "accuracy_before": accuracy_before, "test_accuracy": result.test_accuracy,
            "parameters": count_parameters(result.model),
            "MACs": count_macs(result.model, tuple(test.x.shape[1:])), "network": result.model}


# --------------------------------------------------------------------------------------------
# Summaries with intervals (the verdicts are worded by modlib.stats)


def summary_table(runs, level: float = 0.95) -> pd.DataFrame:
    """One row per (model, kind) of :func:`evaluate_removal` ``runs`` (with ``model``, one of
    kind ``"original"`` per model), reductions vs the original; the interval is the one of one
    more draw at ``level`` (``stats.t_interval``, clipped to 0–100). Returns a DataFrame indexed
    by ``(model, variant)`` with ``units removed``, ``runs``,
    ``accuracy before fine-tuning (%)``, ``test accuracy (%)``, ``interval low (%)``,
    ``interval high (%)``, ``parameters``, ``parameters ↓ (%)``, ``MACs (M)``, ``MACs ↓ (%)``.

    Raises:
        ValueError: a model without an ``"original"`` row.

    Introduced in notebook 06_layer_pruning.
    """
    runs = pd.DataFrame(runs)
    rows = []
    for (arch, kind), group in runs.groupby(["model", "kind"], sort=False):
        originals = runs[(runs["model"] == arch) & (runs["kind"] == "original")]
        if originals.empty:
            raise ValueError(f"model {arch!r} has no 'original' row: the reductions need it")
        original = originals.iloc[0]
        mean, low, high = stats.t_interval(100 * group["test_accuracy"], level, "draw", (0, 100))
        rows.append({
            "model": arch, "variant": kind, "units removed": int(group["removed"].iloc[0]),
            "runs": len(group),
            "accuracy before fine-tuning (%)": round(100 * group["accuracy_before"].mean(), 2),
            "test accuracy (%)": round(mean, 2),
            "interval low (%)": round(low, 2), "interval high (%)": round(high, 2),
            "parameters": int(group["parameters"].mean()),
            "parameters ↓ (%)": round(100 * (1 - group["parameters"].mean()
                                             / original["parameters"]), 1),
            "MACs (M)": round(group["MACs"].mean() / 1e6, 2),
            "MACs ↓ (%)": round(100 * (1 - group["MACs"].mean() / original["MACs"]), 1),
        })
    return pd.DataFrame(rows).set_index(["model", "variant"])


def side_by_side(tables: dict, selections: dict) -> pd.DataFrame:
    """The units of one model with their ΔQ under several curves (``tables``:
    ``{label: unit_table(...)}``) and which rule removes them (``selections``:
    ``{rule: [units]}``): a DataFrame indexed by ``unit`` with ``stage``, ``removable``, one
    ``ΔQ (<label>)`` column per table and one boolean column per rule.

    Raises:
        ValueError: tables of different models, or a selection naming an unknown unit.

    Introduced in notebook 06_layer_pruning.
    """
    first = next(iter(tables.values()))
    units = list(first["unit"])
    out = first.set_index("unit")[["stage", "removable"]].copy()
    for label, table in tables.items():
        if list(table["unit"]) != units:
            raise ValueError(f"table {label!r} has units {list(table['unit'])}, not {units}: "
                             "side_by_side compares curves of one model")
        out[f"ΔQ ({label})"] = table["delta_q"].to_numpy()
    for rule, chosen in selections.items():
        unknown = sorted(set(chosen) - set(units))
        if unknown:
            raise ValueError(f"selection {rule!r} names {unknown}, which are not units {units}")
        out[rule] = [u in set(chosen) for u in units]
    return out


# --------------------------------------------------------------------------------------------
# A label-free control: the units whose output is most like their input (linear CKA)


def unit_similarity(model: nn.Module, x, batch_size: int = 500) -> pd.DataFrame:
    """Linear CKA (Kornblith et al., ICML 2019, arXiv 1905.00414) between each unit's input and
    output (post-activation probe points) on ``(N, C, H, W)`` inputs ``x``, ``N >= 2``: the
    label-free control (arXiv 2410.14720's spirit; ``docs/pruning.md``). Returns a DataFrame,
    one row per unit in forward order: ``unit``, ``stage``, ``removable``, ``probe``, ``cka``
    (in [0, 1]).

    Raises:
        ValueError: fewer than 2 inputs, or a layer whose output is constant over the inputs
            (CKA undefined).

    Introduced in notebook 06_layer_pruning.
    """
    x = torch.as_tensor(x)
    if x.ndim < 2 or len(x) < 2:
        raise ValueError(f"x of shape {tuple(x.shape)} is not allowed: unit_similarity needs "
                         "a batch of at least 2 inputs (N, C, H, W)")
    paper, after = list(model.probe_points()), list(model.probe_points("post-activation"))
    grams = cka.layer_grams(model, x, after, batch_size=batch_size)
    grams_in = [cka.gram(x)] + [grams[name] for name in after[:-1]]
    rows = []
    for unit in model.units():
        position = paper.index(unit.probe)
        rows.append({"unit": unit.name, "stage": unit.stage, "removable": unit.removable,
                     "probe": after[position],
                     "cka": cka.cka_from_grams(grams_in[position], grams[after[position]])})
    return pd.DataFrame(rows)


def select_most_similar(table: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` removable units with the highest input-output CKA (:func:`unit_similarity`),
    every stage keeping one: the label-free control rule. Returns unit names in forward order.

    Raises:
        ValueError: a table without a ``cka`` column, or ``n`` above :func:`max_removable`.

    Introduced in notebook 06_layer_pruning.
    """
    if "cka" not in table:
        raise ValueError(f"table has columns {list(table.columns)}: select_most_similar needs "
                         "the 'cka' column of pruning.unit_similarity")
    return _select_ordered(table, n, ascending=False, column="cka")


def paired_differences(runs, rule: str, control: str, value: str = "test_accuracy",
                       by=("model", "base_seed")) -> pd.DataFrame:
    """Per base network (columns ``by``), ``rule``'s ``value`` minus the mean of ``control``'s
    on that base (``runs``: rows with the columns ``by``, ``kind`` and ``value``): the paired
    design of ``docs/pruning.md``. Returns a DataFrame, one row per base (sorted by ``by``): the
    ``by`` columns, ``rule``, ``control`` (mean), ``control_runs`` and ``difference``.

    Raises:
        ValueError: a missing column, a base where ``rule`` has no run or more than one, or a
            base without ``control`` runs.

    Introduced in notebook 06_layer_pruning.
    """
    runs, by = pd.DataFrame(runs), list(by)
    missing = sorted(set(by + ["kind", value]) - set(runs.columns))
    if missing:
        raise ValueError(f"runs lack the columns {missing}: paired_differences needs {by}, "
                         f"'kind' and {value!r}")
    rows = []
    for base, group in runs.groupby(by, sort=True):
        mine, theirs = group[group["kind"] == rule], group[group["kind"] == control]
        if len(mine) != 1 or theirs.empty:
            raise ValueError(f"base {dict(zip(by, base))} has {len(mine)} runs of {rule!r} and "
                             f"{len(theirs)} of {control!r}: a paired difference needs exactly "
                             "one of the rule and at least one of the control")
        a, b = float(mine[value].iloc[0]), float(theirs[value].mean())
        rows.append({**dict(zip(by, base)), "rule": a, "control": b,
                     "control_runs": len(theirs), "difference": a - b})
    return pd.DataFrame(rows)
