"""Modularity-guided layer pruning (paper A, spec §8), its controls, and cost counts.

Paper A's rule: a unit (a VGG conv block, a ResNet block) whose modularity gain is small or
negative is redundant. With ``Q`` the modularity curve at the probe points,

    ΔQ(unit) = Q(probe point at the unit's output) − Q(probe point before it)

(for a ResNet block: Q at its output minus Q at its input, spec §8.1), and a unit is removed when
``ΔQ < threshold`` (paper: 0.03 reproduces its ResNet-56 result). Two structural rules keep the
pruned network well-formed with inherited weights:

* only units whose output has the shape of their input can go (``models.Unit.removable``): the
  first conv of a VGG stage that widens the channels and the first, downsampling block of a
  ResNet stage always stay (spec §8.1);
* every stage keeps at least one unit; if all of a stage's units fall below the threshold, the one
  with the largest ΔQ stays.

The controls the paper lacks: the same number of units removed at random (seeded) and the units
with the *highest* ΔQ removed (paper A's "non-redundant layers" control, spec §8.3).

Costs: :func:`count_parameters` and :func:`count_macs` (multiply-accumulates of one forward pass,
from ``torch.utils.flop_counter``: convolutions and linear layers, as the paper's FLOPs column).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import data, models, train
from .checks import check_choice, check_float, check_int
from .models import count_parameters  # noqa: F401  (moved to models; kept importable here)


def unit_table(model: nn.Module, curve: pd.DataFrame) -> pd.DataFrame:
    """ΔQ of every unit of ``model`` from its modularity curve.

    Args:
        model: a network from ``modlib.models``.
        curve: ``modularity.modularity_curve(model, ...)`` computed at ``model.probe_points()``.

    Returns:
        DataFrame, one row per unit in forward order: ``unit``, ``stage``, ``removable``,
        ``probe``, ``Q_before``, ``Q_after``, ``delta_q`` (NaN for a unit at the first probe
        point, which has no "before").

    Raises:
        ValueError: the curve's probe points are not the model's.
    """
    points = list(model.probe_points())
    names = list(curve["name"])
    if names != points:
        raise ValueError(f"the curve does not match the model: it has probe points {names}, "
                         f"the model {points}")
    q = dict(zip(names, curve["Q_mean"].astype(float)))
    rows = []
    for unit in model.units():
        position = points.index(unit.probe)
        before = q[points[position - 1]] if position > 0 else np.nan
        rows.append({"unit": unit.name, "stage": unit.stage, "removable": unit.removable,
                     "probe": unit.probe, "Q_before": before, "Q_after": q[unit.probe],
                     "delta_q": q[unit.probe] - before})
    return pd.DataFrame(rows)


def _respecting_stages(table: pd.DataFrame, order: list[str], n: int | None) -> list[str]:
    """Walk ``order`` and take each removable unit unless it would empty its stage; stop at n."""
    left = table.groupby("stage")["unit"].count().to_dict()
    stage_of = dict(zip(table["unit"], table["stage"]))
    removable = set(table.loc[table["removable"], "unit"])
    chosen = []
    for unit in order:
        if n is not None and len(chosen) == n:
            break
        if unit in removable and left[stage_of[unit]] > 1:
            chosen.append(unit)
            left[stage_of[unit]] -= 1
    return chosen


def max_removable(table: pd.DataFrame) -> int:
    """How many units can go at most under the structural rules."""
    return len(_respecting_stages(table, list(table["unit"]), None))


def select_by_threshold(table: pd.DataFrame, threshold: float = 0.03) -> list[str]:
    """Paper A's rule: the removable units with ``ΔQ < threshold``, every stage keeping one.

    Among a stage's candidates the units with the smallest ΔQ go first, so a stage that would be
    emptied keeps its unit with the largest ΔQ. Units without a ΔQ (first probe point) stay.

    Raises:
        ValueError: ``threshold`` outside [-1, 1].
    """
    threshold = check_float("threshold", threshold, low=-1.0, high=1.0)
    candidates = table[table["delta_q"] < threshold].sort_values("delta_q", kind="stable")
    chosen = set(_respecting_stages(table, list(candidates["unit"]), None))
    return [u for u in table["unit"] if u in chosen]           # forward order


def select_lowest(table: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` removable units with the smallest ΔQ (guided removal of a fixed size)."""
    return _select_ordered(table, n, ascending=True)


def select_highest(table: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` removable units with the largest ΔQ (the paper's control: non-redundant ones)."""
    return _select_ordered(table, n, ascending=False)


def select_random(table: pd.DataFrame, n: int, seed: int = 0) -> list[str]:
    """``n`` removable units in a seeded random order, skipping any that would empty a stage."""
    _check_count(table, n)
    order = np.random.default_rng(seed).permutation(table["unit"].to_numpy()).tolist()
    chosen = set(_respecting_stages(table, order, n))
    return [u for u in table["unit"] if u in chosen]


def _select_ordered(table, n, ascending):
    _check_count(table, n)
    ranked = table.dropna(subset=["delta_q"]).sort_values("delta_q", ascending=ascending,
                                                          kind="stable")
    chosen = set(_respecting_stages(table, list(ranked["unit"]), n))
    if len(chosen) < n:
        raise ValueError(f"n={n} is not allowed: only {len(chosen)} units with a ΔQ can be removed")
    return [u for u in table["unit"] if u in chosen]


def _check_count(table, n):
    check_int("n", n, low=0, high=max_removable(table))


# --------------------------------------------------------------------------------------------
# Costs


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one input of shape ``input_shape`` (C, H, W).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products;
    BN, ReLU and pooling are not counted), divided by 2 (one MAC = two FLOPs).
    """
    was_training = model.training
    model.eval()
    parameter = next(model.parameters())
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, *input_shape, dtype=parameter.dtype, device=parameter.device))
    model.train(was_training)
    return counter.get_total_flops() // 2


# --------------------------------------------------------------------------------------------
# Removal + fine-tuning, cached like any model


INITS = ("inherit", "scratch")


def pruned_config(parent: train.TrainConfig, remove, epochs: int = 1, lr: float = 0.01,
                  train_per_class: int = 1000, init: str = "inherit",
                  seed: int = 0) -> train.TrainConfig:
    """The training configuration of ``parent``'s network without the units ``remove``.

    ``init="inherit"`` fine-tunes from the parent's trained weights (the survivors keep theirs,
    ``models.remove_units``); ``"scratch"`` trains the shallower network from a random
    initialisation, as paper A's code does (spec §8.1). Everything else (architecture, width,
    dataset, optimiser) is the parent's, so all variants get the same budget.
    """
    check_choice("init", init, INITS)
    return dataclasses.replace(parent, epochs=epochs, lr=lr, train_per_class=train_per_class,
                               seed=seed, remove=tuple(remove),
                               parent=parent if init == "inherit" else None)


def evaluate_removal(parent: train.TrainConfig, remove, label: str, device: str = "auto",
                     **finetune) -> dict:
    """Remove ``remove`` from ``parent``'s model, fine-tune (cached), and measure it.

    ``finetune`` goes to :func:`pruned_config`. Returns a dict with ``variant`` (``label``),
    ``removed`` (count), ``units``, ``accuracy_before`` (test accuracy right after the removal,
    with the inherited weights and no training), ``test_accuracy`` (after fine-tuning),
    ``parameters``, ``MACs`` and the trained ``network``.
    """
    config = pruned_config(parent, remove, **finetune)
    test = data.load(parent.dataset, "test")
    shallower = models.remove_units(train.load_or_train(parent, device=device).model, remove)
    result = train.load_or_train(config, device=device)
    return {"variant": label, "removed": len(config.remove), "units": list(config.remove),
            "accuracy_before": train.evaluate(shallower, test)[0],
            "test_accuracy": result.test_accuracy,
            "parameters": count_parameters(result.model),
            "MACs": count_macs(result.model, tuple(test.x.shape[1:])), "network": result.model}
