"""Weight-graph metrics of a network: link weights, node strength, layer fluctuation, divergences.

La Malfa et al. (ICTAI 2021, arXiv 2110.02628; code EmanueleLM/CNT-DNNs) read a trained network
as a directed, weighted graph of its units and weights; BatchNorm folding, pooling and residual
adds are our extensions (``SUPPORTED``), anything else raises ``ValueError``. Definitions, the
exact one-pass computation, extensions and divergences: docs/complex_networks.md.

Introduced in notebook 08_complex_networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from . import features, models
from .checks import check_choice, check_int, check_int_list

ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.Hardtanh,
               nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink, nn.Identity, nn.Dropout,
               nn.Dropout2d, nn.AlphaDropout)
SUPPORTED = ("nn.Sequential (nested), Conv2d (zero padding), Linear, elementwise activations "
             "(ReLU, Tanh, Sigmoid, GELU, ...), Flatten, Dropout, Identity; extensions: "
             "BatchNorm1d/2d right after Conv2d/Linear, AvgPool2d, AdaptiveAvgPool2d, MaxPool2d, "
             "and modlib.models' VGG, CifarResNet (BasicBlock residual add), MLP")
DTYPE = torch.float64


# The weight graph as node layers and edges ----------------------------------------------------
@dataclass
class _Op:
    """One step of an edge: ``fwd`` maps a (1, ...) tensor forward; ``backward`` maps a gradient
    back by autograd through ``relay`` (max pooling's sum pooling), else ``fwd`` (its transpose)."""

    fwd: callable
    in_shape: tuple
    relay: callable = None

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        x = torch.zeros((1, *self.in_shape), dtype=DTYPE, device=g.device, requires_grad=True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad((self.relay or self.fwd)(x), x, g)
        return grad


def _unsupported(module: nn.Module, name: str, why: str = "") -> ValueError:
    where = f" at {name!r}" if name else ""
    return ValueError(f"module {type(module).__name__}{where} is not supported by the weight "
                      f"graph{': ' + why if why else ''}; supported: {SUPPORTED}")


def _children(module: nn.Module, name: str):
    """The ordered (name, child) list of a module whose forward is a plain chain, else None."""
    prefix = f"{name}." if name else ""
    if isinstance(module, nn.Sequential):
        if type(module).forward is not nn.Sequential.forward:
            raise _unsupported(module, name, "a Sequential subclass with its own forward")
        return [(prefix + n, m) for n, m in module.named_children()]
    order = {models.VGG: ("features", "classifier"),
             models.MLP: ("flatten", "layers", "head"),
             models.CifarResNet: ("conv1", "bn1", "relu", "layer1", "layer2", "layer3", "pool",
                                  "flatten", "fc")}
    for cls, names in order.items():
        if type(module) is cls:
            return [(prefix + n, getattr(module, n)) for n in names]
    return None


class _Walker:
    """Walks a supported model once into its weight graph: per node layer ``shapes`` (no batch dim;
    ``None`` for ``input_shape=None``, which only collects the weight layers), ``biases`` ((C,) or
    None) and weight layer ``modules``, and the ``edges`` ``(src, dst, ops)``."""

    def __init__(self, absolute: bool, device, input_shape):
        self.absolute = absolute
        self.device = device
        self.shapes, self.biases, self.modules, self.edges = [input_shape], [None], [None], []

    def weight(self, w: torch.Tensor) -> torch.Tensor:
        w = w.detach().to(DTYPE)
        return w.abs() if self.absolute else w

    # state: (src node layer, pending parameter-free ops since it, current shape, fresh)
    def walk(self, module, name, state):
        children = _children(module, name)
        if children is not None:
            for child_name, child in children:
                state = self.walk(child, child_name, state)
            return state
        if isinstance(module, models.BasicBlock):
            return self.residual(module, name, state)
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return self.weight_layer(module, name, state)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.fold_batchnorm(module, name, state)
        if isinstance(module, nn.Identity):
            return state
        src, ops, shape, _ = state
        if isinstance(module, ELEMENTWISE):       # ignored, but BatchNorm cannot fold across it
            return src, ops, shape, False
        if isinstance(module, nn.Flatten) and (module.start_dim != 1 or module.end_dim != -1):
            raise _unsupported(module, name, "Flatten must use start_dim=1, end_dim=-1")
        if isinstance(module, (nn.Flatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            op = _Op(module, shape)
        elif isinstance(module, nn.MaxPool2d):
            op = _max_relay(module, name, shape)
        else:
            raise _unsupported(module, name)
        return src, [*ops, op], _shape_after(module, shape, self.device), False

    def weight_layer(self, module, name, state):
        src, ops, shape, _ = state
        w = self.weight(module.weight)
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros":
                raise _unsupported(module, name, f"padding_mode={module.padding_mode!r}; only "
                                   "'zeros' (padded positions are not nodes)")
            fwd = partial(F.conv2d, weight=w, stride=module.stride, padding=module.padding,
                          dilation=module.dilation, groups=module.groups)
        else:
            fwd = partial(F.linear, weight=w)
        try:
            out_shape = _shape_after(fwd, shape, self.device)
        except RuntimeError as err:
            raise ValueError(f"{type(module).__name__} at {name!r} does not accept input of "
                             f"shape {tuple(shape)}: {err}") from err
        self.shapes.append(out_shape)
        self.biases.append(None if module.bias is None else self.weight(module.bias))
        self.modules.append(module)
        self.edges.append((src, len(self.shapes) - 1, [*ops, _Op(fwd, shape)]))
        return len(self.shapes) - 1, [], out_shape, True

    def fold_batchnorm(self, module, name, state):
        src, ops, shape, fresh = state
        if not fresh or src == 0:
            raise _unsupported(module, name, "BatchNorm is supported only directly after a "
                               "Conv2d or Linear, into which it is folded")
        if module.running_mean is None:
            raise _unsupported(module, name, "BatchNorm without running statistics")
        sigma = torch.sqrt(module.running_var.detach().to(DTYPE) + module.eps)
        gamma = module.weight.detach().to(DTYPE) if module.affine else torch.ones_like(sigma)
        beta = module.bias.detach().to(DTYPE) if module.affine else torch.zeros_like(sigma)
        scale = gamma / sigma
        edge_ops = self.edges[-1][2]
        last, s = edge_ops[-1], self.weight(scale)

        def fwd(x):
            y = last.fwd(x)
            return y * s.view(1, -1, *(1,) * (y.dim() - 2))
        edge_ops[-1] = _Op(fwd, last.in_shape)
        layer = self.modules[src]
        raw_b = torch.zeros_like(sigma) if layer.bias is None else layer.bias.detach().to(DTYPE)
        mean = module.running_mean.detach().to(DTYPE)
        self.biases[src] = self.weight(scale * (raw_b - mean) + beta)
        return src, ops, shape, False

    def residual(self, block, name, state):
        src, ops, shape, _ = state
        branch = state
        for n in ("conv1", "bn1", "relu1", "conv2", "bn2"):
            branch = self.walk(getattr(block, n), f"{name}.{n}", branch)
        dst, _, out_shape, _ = branch
        if _shape_after(block.shortcut, shape, self.device) != out_shape:
            raise _unsupported(block, name, "the shortcut's output shape differs from the "
                               "residual branch's")
        self.edges.append((src, dst, [*ops, _Op(block.shortcut, shape)]))
        return dst, [], out_shape, False


def _max_relay(module: nn.MaxPool2d, name: str, shape) -> _Op:
    """Max pooling as a gain-1 relay: forward on ones gives ones, backward sums the pooled
    units' gradients over every window that covers a unit (sum pooling's transpose)."""
    if module.dilation not in (1, (1, 1)) or module.return_indices:
        raise _unsupported(module, name, "MaxPool2d needs dilation=1, return_indices=False")

    def sum_pool(x):
        return F.avg_pool2d(x, module.kernel_size, module.stride, module.padding,
                            module.ceil_mode, count_include_pad=True, divisor_override=1)
    return _Op(module, shape, relay=sum_pool)


def _shape_after(fn, shape, device) -> tuple | None:
    """``fn``'s output shape on one zero sample of ``shape`` (``None`` for ``shape=None``)."""
    if shape is None:
        return None
    with torch.no_grad():
        return tuple(fn(torch.zeros((1, *shape), dtype=DTYPE, device=device)).shape[1:])


def _build(model: nn.Module, input_shape, absolute: bool) -> _Walker:
    input_shape = tuple(check_int_list("input_shape", input_shape, low=1))
    with features.evaluating(model) as (device, dtype), torch.no_grad():
        try:
            out = model(torch.zeros((1, *input_shape), dtype=dtype, device=device))
        except RuntimeError as err:
            raise ValueError(f"input_shape={input_shape} does not fit {type(model).__name__}: "
                             f"{str(err).splitlines()[0]}") from err
    out_shape = tuple(out.shape[1:])
    walker = _Walker(absolute, device, input_shape)
    _, ops, _, _ = walker.walk(model, "", (0, [], input_shape, False))
    if len(walker.shapes) < 2:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer: its weight graph "
                         "has no edges")
    # a trailing Flatten renames no unit: the last node layer keeps its (C, H, W) order
    flat = math.prod(walker.shapes[-1]) == math.prod(out_shape)
    if any(not isinstance(op.fwd, nn.Flatten) for op in ops) or not flat:
        raise ValueError(f"{type(model).__name__} does not end with a weight layer (Conv2d or "
                         f"Linear, optionally followed by elementwise ops): its output "
                         f"{out_shape} is not the last node layer {walker.shapes[-1]}")
    return walker


# Public API -----------------------------------------------------------------------------------
def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The ``Conv2d`` and ``Linear`` modules of ``model``, in forward order; ``ValueError`` for
    a module the weight graph does not support."""
    walker = _Walker(False, None, None)
    walker.walk(model, "", (0, [], None, False))
    return walker.modules[1:]


def link_weights(model: nn.Module) -> list[torch.Tensor]:
    """Per weight layer, in forward order, its raw weights then biases as one
    ``(n_weights + n_biases,)`` float32 tensor, each kernel entry once and BatchNorm not folded
    (La Malfa et al. 2021, "Link-Weights"). Raises ``ValueError`` for an unsupported module.
    Introduced in notebook 08_complex_networks.
    """
    return [torch.cat([p.detach().float().cpu().flatten() for p in (m.weight, m.bias)
                       if p is not None]) for m in weight_layers(model)]


@torch.no_grad()
def node_strengths(model: nn.Module, input_shape, *, absolute: bool = False,
                   bias: bool = True) -> list[torch.Tensor]:
    """Node strength ``s_j = Σ_i w_ij (+ b_j) + Σ_k w_jk`` of every unit, one flat tensor per
    node layer, units in the model's ``(C, H, W)`` order (La Malfa et al. 2021, "Nodes
    Strength"; docs/complex_networks.md). Unlike the original code, no "+1" placeholder is added
    at the input and output boundaries.

    Args:
        model: an ``nn.Sequential`` of supported modules, or a VGG / CifarResNet / MLP of
            ``modlib.models``; BatchNorm uses its running statistics.
        input_shape: one sample's shape, e.g. ``(1, 28, 28)`` or ``(784,)``.
        absolute: use ``|w|`` (and ``|b|``) instead of signed values.
        bias: add each unit's (BatchNorm-folded) bias to its in-strength.

    Returns ``L + 1`` float64 tensors ``strengths[l]: (n_l,)`` on the model's device. Raises
    ``ValueError`` for an unsupported module (named, with what is supported) or an
    ``input_shape`` that does not fit, ``TypeError`` for one that is no list of integers.
    Introduced in notebook 08_complex_networks.
    """
    walker = _build(model, input_shape, absolute)
    strengths = [torch.zeros(shape, dtype=DTYPE, device=walker.device) for shape in walker.shapes]
    for s, b in zip(strengths, walker.biases):
        if bias and b is not None:
            s += b.view((-1,) + (1,) * (s.dim() - 1))
    for src, dst, ops in walker.edges:
        x = torch.ones((1, *walker.shapes[src]), dtype=DTYPE, device=walker.device)
        for op in ops:                            # in-strengths of dst: M·1
            x = op.fwd(x)
        strengths[dst] += x[0]
        g = torch.ones((1, *walker.shapes[dst]), dtype=DTYPE, device=walker.device)
        for op in reversed(ops):                  # out-strengths of src: Mᵀ·1
            g = op.backward(g)
        strengths[src] += g[0]
    return [s.flatten() for s in strengths]


def layer_fluctuation(strengths) -> np.ndarray:
    """Layer fluctuation ``Y_l = sqrt(1/N_l Σ_j (s_j − mean_l)²)`` (ddof = 0) of each of the
    ``L + 1`` node layers of ``strengths`` (:func:`node_strengths`), as the original's
    ``nodes_fluctuation`` (docs/complex_networks.md). Returns ``(L + 1,)`` float64; raises
    ``ValueError`` for no layers or an empty layer. Introduced in notebook 08_complex_networks.
    """
    strengths = list(strengths)
    if not strengths:
        raise ValueError("strengths=[] is not allowed: give at least one node layer")
    return np.array([_as_array(s, f"strengths[{l}]").std() for l, s in enumerate(strengths)])


def probe_node_layers(model: nn.Module) -> list[int]:
    """The node layer (index into :func:`node_strengths`) of every probe point's output units: a
    convolution's outputs, or a residual block's second convolution, where the residual sum lands
    (VGG-11: 1..8; ResNet-20: 1, 3, ..., 19). Raises ``ValueError`` for a model without
    ``probe_points()`` or a probe point that is no weight layer. Introduced in notebook
    07_training_dynamics."""
    if not hasattr(model, "probe_points"):
        raise ValueError(f"{type(model).__name__} has no probe_points(): give a network of "
                         "modlib.models")
    index = {id(m): i + 1 for i, m in enumerate(weight_layers(model))}
    modules = dict(model.named_modules())
    found = [getattr(modules[name], "conv2", modules[name]) for name in model.probe_points()]
    missing = [n for n, m in zip(model.probe_points(), found) if id(m) not in index]
    if missing:
        raise ValueError(f"probe points {missing} are no weight layers of the weight graph")
    return [index[id(m)] for m in found]


def probe_fluctuation(model: nn.Module, input_shape) -> np.ndarray:
    """``(n_probe_points,)`` layer fluctuation ``Y_l`` (signed strengths, biases included) at each
    probe point's node layer (:func:`probe_node_layers`), to set beside a modularity curve.
    Raises ``ValueError`` as those two functions. Introduced in notebook 07_training_dynamics."""
    return layer_fluctuation(node_strengths(model, input_shape))[probe_node_layers(model)]


# Distributions and divergences ----------------------------------------------------------------
def _as_array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"{name} is empty: give at least one value")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(x)).sum())} NaN or infinite values")
    return x


def kde(sample, grid, *, max_points: int = 20_000, seed: int = 0) -> np.ndarray:
    """Gaussian KDE (scipy ``gaussian_kde``, Scott's bandwidth) of ``sample`` evaluated on
    ``grid``, samples over ``max_points`` subsampled (seeded) first. Raises ``ValueError`` for
    an empty sample, non-finite values, or zero spread."""
    from scipy.stats import gaussian_kde

    x = _as_array(sample, "sample")
    max_points = check_int("max_points", max_points, low=2)
    if len(x) > max_points:
        x = np.random.default_rng(seed).choice(x, max_points, replace=False)
    if np.ptp(x) == 0:
        raise ValueError(f"sample has zero spread (all {len(x)} values equal {x[0]:g}): a KDE "
                         "needs at least two distinct values")
    return gaussian_kde(x).evaluate(np.asarray(grid, dtype=np.float64))


def common_grid(p, q, grid_size: int = 1000) -> np.ndarray:
    """``grid_size`` points from the minimum to the maximum of both samples (the original's
    evaluation grid)."""
    grid_size = check_int("grid_size", grid_size, low=2)
    p, q = _as_array(p, "p"), _as_array(q, "q")
    return np.linspace(min(p.min(), q.min()), max(p.max(), q.max()), grid_size)


def _kl_sum(a: np.ndarray, b: np.ndarray):
    """``Σ a log(a/b)`` over the grid points where ``a > 0`` (``inf`` where ``b`` is 0 there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, a * (np.log(a) - np.log(b)), 0.0).sum()


def jeffreys_divergence(p, q, *, grid_size: int = 1000, max_points: int = 20_000,
                        seed: int = 0) -> float:
    """The original's "Shannon divergence": the symmetrised KL (Jeffreys) divergence
    ``D = Σ_x P log(P/Q) + Σ_x Q log(Q/P)`` of the KDEs of two 1-D samples on ``grid_size``
    points between their joint minimum and maximum, summed without ``Δx`` (La Malfa et al. 2021;
    docs/complex_networks.md). Returns ``D >= 0``, or ``inf`` where one density underflows to 0
    and the other does not; raises ``ValueError`` as :func:`kde`. Introduced in notebook
    08_complex_networks.
    """
    grid = common_grid(p, q, grid_size)
    fp, fq = (kde(x, grid, max_points=max_points, seed=seed) for x in (p, q))
    return float(_kl_sum(fp, fq) + _kl_sum(fq, fp))


def js_divergence(p, q, *, grid_size: int = 1000, max_points: int = 20_000,
                  seed: int = 0) -> float:
    """Jensen–Shannon divergence ``½ KL(P‖M) + ½ KL(Q‖M)``, ``M = (P + Q)/2`` (natural log, in
    ``[0, ln 2]``) of the KDEs of two samples normalised over the grid of
    :func:`jeffreys_divergence` (Lin 1991; docs/complex_networks.md). Introduced in notebook
    08_complex_networks."""
    grid = common_grid(p, q, grid_size)
    fp, fq = (kde(x, grid, max_points=max_points, seed=seed) for x in (p, q))
    fp, fq = fp / fp.sum(), fq / fq.sum()
    m = 0.5 * (fp + fq)
    return float(min(max(0.5 * (_kl_sum(fp, m) + _kl_sum(fq, m)), 0.0), math.log(2)))


def wasserstein1(p, q) -> float:
    """Wasserstein-1 (earth mover's) distance between two 1-D samples, in the samples' units
    (``scipy.stats.wasserstein_distance``, exact on the empirical distributions)."""
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(_as_array(p, "p"), _as_array(q, "q")))


DIVERGENCES = {"jeffreys": jeffreys_divergence, "js": js_divergence, "wasserstein": wasserstein1}


def divergence_matrix(samples, kind: str = "js", **kwargs) -> np.ndarray:
    """``D[i, j]`` = divergence ``kind`` (``"jeffreys"``, ``"js"``, ``"wasserstein"``) between
    ``samples[i]`` and ``samples[j]``: ``(n, n)`` float64, symmetric, zero diagonal, may hold
    ``inf`` (Jeffreys)."""
    check_choice("kind", kind, DIVERGENCES)
    samples = [_as_array(s, f"samples[{i}]") for i, s in enumerate(samples)]
    n = len(samples)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = DIVERGENCES[kind](samples[i], samples[j], **kwargs)
    return out


def summary(strengths, weights=None, *, tail: float = 3.0) -> pd.DataFrame:
    """DataFrame, one row per node layer ``layer`` = 0..L (docs/complex_networks.md):
    ``units``, ``Y``, ``s_mean``, ``s_iqr``, ``s_tail`` (:func:`spread_stats`) of the strengths
    and, given ``weights`` (:func:`link_weights`), ``lw_std``, ``lw_iqr``, ``lw_tail`` of the
    links into the layer (NaN for layer 0)."""
    strengths = list(strengths)
    if weights is not None and len(weights) != len(strengths) - 1:
        raise ValueError(f"weights has {len(weights)} layers; strengths has "
                         f"{len(strengths)} node layers, so {len(strengths) - 1} expected")
    rows = []
    for l, s in enumerate(strengths):
        x = _as_array(s, f"strengths[{l}]")
        st = spread_stats(x, tail=tail)
        row = {"layer": l, "units": len(x), "Y": st["std"], "s_mean": float(x.mean()),
               "s_iqr": st["iqr"], "s_tail": st["tail"]}
        if weights is not None:
            lw = spread_stats(weights[l - 1], tail=tail) if l >= 1 else dict.fromkeys(st, np.nan)
            row.update({f"lw_{k}": v for k, v in lw.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def spread_stats(sample, *, quantiles=(0.05, 0.95), tail: float = 3.0) -> dict:
    """``{"std", "iqr", "tail"}`` of a sample: ``std`` (ddof = 0), ``iqr`` = q95 − q5, and the
    scale-free tail mass ``P(|x − median| > tail · MAD)`` (docs/complex_networks.md)."""
    x = _as_array(sample, "sample")
    lo, hi = np.quantile(x, quantiles)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    tail_mass = float(np.mean(np.abs(x - med) > tail * mad)) if mad > 0 else 0.0
    return {"std": float(x.std()), "iqr": float(hi - lo), "tail": tail_mass}
