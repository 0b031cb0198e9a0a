"""Weight-graph metrics of a network: link weights, node strength, layer fluctuation, divergences.

La Malfa et al. (ICTAI 2021, arXiv 2110.02628; code EmanueleLM/CNT-DNNs) read a trained network
as a directed, weighted graph of its units and weights. Node layer 0 is the input, node layer
``l`` the outputs of weight layer ``l`` (every ``Conv2d`` and ``Linear``); strengths are exact,
one forward (``M·1``) and one backward (``Mᵀ·1``) pass per weight layer. BatchNorm folding,
pooling and residual adds are our extensions (``SUPPORTED``); anything else raises
``ValueError``. Definitions, extensions and divergences: docs/complex_networks.md.

Introduced in notebook 08_complex_networks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .checks import check_int

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
    """One step of an edge: ``fwd`` maps a (1, ...) tensor forward, ``bwd`` maps a gradient back.
    For a linear map ``bwd`` is its transpose (by autograd); for max pooling it is the relay."""

    fwd: callable
    in_shape: tuple
    bwd: callable = None
    reshape: bool = False      # Flatten: same units, another shape

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        if self.bwd is not None:
            return self.bwd(g)
        x = torch.zeros((1, *self.in_shape), dtype=DTYPE, device=g.device, requires_grad=True)
        with torch.enable_grad():
            y = self.fwd(x)
            (grad,) = torch.autograd.grad(y, x, g)
        return grad


@dataclass
class _Edge:
    src: int
    dst: int
    ops: list


@dataclass
class _Graph:
    shapes: list = field(default_factory=list)     # per node layer, without the batch dim
    biases: list = field(default_factory=list)     # per node layer: (C,) tensor or None
    edges: list = field(default_factory=list)
    modules: list = field(default_factory=list)    # per weight layer: the Conv2d / Linear

    def add_layer(self, shape, bias, module) -> int:
        self.shapes.append(tuple(shape))
        self.biases.append(bias)
        self.modules.append(module)
        return len(self.shapes) - 1


def _unsupported(module: nn.Module, name: str, why: str = "") -> ValueError:
    where = f" at {name!r}" if name else ""
    return ValueError(f"module {type(module).__name__}{where} is not supported by the weight "
                      f"graph{': ' + why if why else ''}; supported: {SUPPORTED}")


def _children(module: nn.Module, name: str):
    """The ordered (name, child) list of a module whose forward is a plain chain, else None."""
    from . import models

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
    """Walks a supported model once, building the node layers and edges of its weight graph."""

    def __init__(self, absolute: bool, shapes: bool = True, device=None):
        self.absolute = absolute
        self.device = torch.device("cpu") if device is None else device
        self.graph = _Graph()
        self.with_shapes = shapes

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
        from . import models

        src, ops, shape, fresh = state
        if isinstance(module, models.BasicBlock):
            return self.residual(module, name, state)
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return self.weight_layer(module, name, state)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.fold_batchnorm(module, name, state)
        if isinstance(module, nn.Identity):
            return state
        if isinstance(module, ELEMENTWISE):       # ignored, but BatchNorm cannot fold across it
            return src, ops, shape, False
        if isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise _unsupported(module, name, "Flatten must use start_dim=1, end_dim=-1")
            return self.parameter_free(module, state, _Op(module, shape, reshape=True))
        if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            return self.parameter_free(module, state, _Op(module, shape))
        if isinstance(module, nn.MaxPool2d):
            return self.parameter_free(module, state, self.max_relay(module, name, shape))
        raise _unsupported(module, name)

    def parameter_free(self, module, state, op):
        src, ops, shape, _ = state
        out_shape = _shape_after(op.fwd, shape, self.device)
        return src, [*ops, op], out_shape, False

    def max_relay(self, module, name, shape):
        """Max pooling as a gain-1 relay: forward on ones gives ones, backward sums the pooled
        units' gradients over every window that covers a unit (sum pooling's transpose)."""
        if module.dilation not in (1, (1, 1)) or module.return_indices:
            raise _unsupported(module, name, "MaxPool2d needs dilation=1, return_indices=False")

        def sum_pool(x):
            return F.avg_pool2d(x, module.kernel_size, module.stride, module.padding,
                                module.ceil_mode, count_include_pad=True, divisor_override=1)

        relay = _Op(sum_pool, shape)
        return _Op(module, shape, bwd=relay.backward)

    def weight_layer(self, module, name, state):
        src, ops, shape, _ = state
        w = self.weight(module.weight)
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros":
                raise _unsupported(module, name, f"padding_mode={module.padding_mode!r}; only "
                                   "'zeros' (padded positions are not nodes)")

            def fwd(x, w=w, m=module):
                return F.conv2d(x, w, None, m.stride, m.padding, m.dilation, m.groups)
        else:
            def fwd(x, w=w):
                return F.linear(x, w)
        op = _Op(fwd, shape)
        try:
            out_shape = _shape_after(fwd, shape, self.device)
        except RuntimeError as err:
            raise ValueError(f"{type(module).__name__} at {name!r} does not accept input of "
                             f"shape {tuple(shape)}: {err}") from err
        bias = None if module.bias is None else self.weight(module.bias)
        dst = self.graph.add_layer(out_shape, bias, module)
        self.graph.edges.append(_Edge(src, dst, [*ops, op]))
        return dst, [], out_shape, True

    def fold_batchnorm(self, module, name, state):
        src, ops, shape, fresh = state
        if not fresh or src == 0:
            raise _unsupported(module, name, "BatchNorm is supported only directly after a "
                               "Conv2d or Linear, into which it is folded")
        if module.running_mean is None:
            raise _unsupported(module, name, "BatchNorm without running statistics")
        sigma = torch.sqrt(module.running_var.detach().to(DTYPE) + module.eps)
        gamma = (module.weight.detach().to(DTYPE) if module.affine
                 else torch.ones_like(sigma))
        beta = module.bias.detach().to(DTYPE) if module.affine else torch.zeros_like(sigma)
        scale = gamma / sigma
        mean = module.running_mean.detach().to(DTYPE)
        edge = self.graph.edges[-1]
        last = edge.ops[-1]
        s = scale.abs() if self.absolute else scale
        view = (1, -1) + (1,) * (len(shape) - 1)

        def fwd(x, f=last.fwd, s=s, view=view):
            return f(x) * s.view(view)
        edge.ops[-1] = _Op(fwd, last.in_shape)
        module_w = self.graph.modules[src]
        raw_b = (module_w.bias.detach().to(DTYPE) if module_w.bias is not None
                 else torch.zeros_like(mean))
        b = scale * (raw_b - mean) + beta
        self.graph.biases[src] = b.abs() if self.absolute else b
        return src, ops, shape, False

    def residual(self, block, name, state):
        src, ops, shape, _ = state
        inner = [(f"{name}.{n}", getattr(block, n))
                 for n in ("conv1", "bn1", "relu1", "conv2", "bn2")]
        branch = state
        for child_name, child in inner:
            branch = self.walk(child, child_name, branch)
        dst, _, out_shape, _ = branch
        shortcut = _Op(block.shortcut, shape)
        if _shape_after(shortcut.fwd, shape, self.device) != out_shape:
            raise _unsupported(block, name, "the shortcut's output shape differs from the "
                               "residual branch's")
        self.graph.edges.append(_Edge(src, dst, [*ops, shortcut]))
        return dst, [], out_shape, False


def _shape_after(fn, shape, device) -> tuple:
    with torch.no_grad():
        return tuple(fn(torch.zeros((1, *shape), dtype=DTYPE, device=device)).shape[1:])


def _device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_input_shape(model: nn.Module, input_shape) -> tuple:
    if (isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__")
            or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
                       for d in input_shape) or len(tuple(input_shape)) == 0):
        raise ValueError(f"input_shape={input_shape!r} is not allowed: give one sample's shape "
                         "as positive integers, e.g. (1, 28, 28) or (784,)")
    input_shape = tuple(int(d) for d in input_shape)
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros((1, *input_shape), dtype=dtype, device=_device(model)))
    except RuntimeError as err:
        raise ValueError(f"input_shape={input_shape} does not fit {type(model).__name__}: "
                         f"{str(err).splitlines()[0]}") from err
    finally:
        model.train(was_training)
    return input_shape, tuple(out.shape[1:])


def _build(model: nn.Module, input_shape, absolute: bool) -> _Graph:
    input_shape, out_shape = _check_input_shape(model, input_shape)
    walker = _Walker(absolute, device=_device(model))
    walker.graph.add_layer(input_shape, None, None)
    src, ops, shape, _ = walker.walk(model, "", (0, [], input_shape, False))
    graph = walker.graph
    if len(graph.shapes) < 2:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer: its weight graph "
                         "has no edges")
    # a trailing Flatten renames no unit: the last node layer keeps its (C, H, W) order
    flat = math.prod(graph.shapes[-1]) == math.prod(out_shape)
    if any(not op.reshape for op in ops) or src != len(graph.shapes) - 1 or not flat:
        raise ValueError(f"{type(model).__name__} does not end with a weight layer (Conv2d or "
                         f"Linear, optionally followed by elementwise ops): its output "
                         f"{out_shape} is not the last node layer {graph.shapes[-1]}")
    return graph


# Public API -----------------------------------------------------------------------------------
def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The ``Conv2d`` and ``Linear`` modules of ``model``, in forward order; ``ValueError`` for
    a module the weight graph does not support."""
    found = []

    def visit(module, name):
        from . import models

        children = _children(module, name)
        if children is not None:
            for child_name, child in children:
                visit(child, child_name)
        elif isinstance(module, models.BasicBlock):
            for n in ("conv1", "conv2"):
                found.append(getattr(module, n))
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            found.append(module)
        elif not isinstance(module, (*ELEMENTWISE, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d,
                                     nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d)):
            raise _unsupported(module, name)

    visit(model, "")
    return found


def link_weights(model: nn.Module) -> list[torch.Tensor]:
    """Per weight layer, in forward order, its raw weights then biases as one
    ``(n_weights + n_biases,)`` float32 tensor, each kernel entry once and BatchNorm not folded
    (La Malfa et al. 2021, "Link-Weights"). Raises ``ValueError`` for an unsupported module.
    Introduced in notebook 08_complex_networks.
    """
    out = []
    for m in weight_layers(model):
        parts = [m.weight.detach().flatten()]
        if m.bias is not None:
            parts.append(m.bias.detach().flatten())
        out.append(torch.cat(parts).float().cpu())
    return out


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
    ``input_shape`` that does not fit. Introduced in notebook 08_complex_networks.
    """
    graph = _build(model, input_shape, absolute)
    device = _device(model)
    strengths = [torch.zeros(graph.shapes[l], dtype=DTYPE, device=device)
                 for l in range(len(graph.shapes))]
    for l, b in enumerate(graph.biases):
        if bias and b is not None:
            view = (-1,) + (1,) * (len(graph.shapes[l]) - 1)
            strengths[l] += b.view(view)
    for edge in graph.edges:
        x = torch.ones((1, *graph.shapes[edge.src]), dtype=DTYPE, device=device)
        for op in edge.ops:                       # in-strengths of dst: M·1
            x = op.fwd(x)
        strengths[edge.dst] += x[0]
        g = torch.ones((1, *graph.shapes[edge.dst]), dtype=DTYPE, device=device)
        for op in reversed(edge.ops):             # out-strengths of src: Mᵀ·1
            g = op.backward(g)
        strengths[edge.src] += g[0]
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
    out = np.empty(len(strengths))
    for l, s in enumerate(strengths):
        s = _as_array(s, f"strengths[{l}]")
        out[l] = s.std()
    return out


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


def _subsample(x: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    if len(x) <= max_points:
        return x
    return np.random.default_rng(seed).choice(x, max_points, replace=False)


def kde(sample, grid, *, max_points: int = 20_000, seed: int = 0) -> np.ndarray:
    """Gaussian KDE (scipy ``gaussian_kde``, Scott's bandwidth) of ``sample`` evaluated on
    ``grid``, samples over ``max_points`` subsampled (seeded) first. Raises ``ValueError`` for
    an empty sample, non-finite values, or zero spread."""
    from scipy.stats import gaussian_kde

    x = _subsample(_as_array(sample, "sample"), check_int("max_points", max_points, low=2), seed)
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


def _grid_kdes(p, q, grid_size: int, max_points: int, seed: int):
    grid = common_grid(p, q, grid_size)
    return (kde(p, grid, max_points=max_points, seed=seed),
            kde(q, grid, max_points=max_points, seed=seed))


def jeffreys_divergence(p, q, *, grid_size: int = 1000, max_points: int = 20_000,
                        seed: int = 0) -> float:
    """The original's "Shannon divergence": the symmetrised KL (Jeffreys) divergence
    ``D = Σ_x P log(P/Q) + Σ_x Q log(Q/P)`` of the KDEs of two 1-D samples on ``grid_size``
    points between their joint minimum and maximum, summed without ``Δx`` (La Malfa et al. 2021;
    docs/complex_networks.md). Returns ``D >= 0``, or ``inf`` where one density underflows to 0
    and the other does not; raises ``ValueError`` as :func:`kde`. Introduced in notebook
    08_complex_networks.
    """
    fp, fq = _grid_kdes(p, q, grid_size, max_points, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(fp > 0, fp * (np.log(fp) - np.log(fq)), 0.0)
        b = np.where(fq > 0, fq * (np.log(fq) - np.log(fp)), 0.0)
    return float(a.sum() + b.sum())


def js_divergence(p, q, *, grid_size: int = 1000, max_points: int = 20_000,
                  seed: int = 0) -> float:
    """Jensen–Shannon divergence ``½ KL(P‖M) + ½ KL(Q‖M)``, ``M = (P + Q)/2`` (natural log, in
    ``[0, ln 2]``) of the KDEs of two samples normalised over the grid of
    :func:`jeffreys_divergence` (Lin 1991; docs/complex_networks.md). Introduced in notebook
    08_complex_networks."""
    fp, fq = _grid_kdes(p, q, grid_size, max_points, seed)
    fp, fq = fp / fp.sum(), fq / fq.sum()
    m = 0.5 * (fp + fq)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(fp > 0, fp * (np.log(fp) - np.log(m)), 0.0).sum()
        kl_q = np.where(fq > 0, fq * (np.log(fq) - np.log(m)), 0.0).sum()
    return float(min(max(0.5 * (kl_p + kl_q), 0.0), math.log(2)))


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
    if kind not in DIVERGENCES:
        raise ValueError(f"kind={kind!r} is not allowed: choose one of {list(DIVERGENCES)}")
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
    rows = []
    for l, s in enumerate(strengths):
        st = spread_stats(s, tail=tail)
        row = {"layer": l, "units": len(_as_array(s, "s")), "Y": st["std"],
               "s_mean": float(_as_array(s, "s").mean()), "s_iqr": st["iqr"],
               "s_tail": st["tail"]}
        if weights is not None:
            if len(weights) != len(strengths) - 1:
                raise ValueError(f"weights has {len(weights)} layers; strengths has "
                                 f"{len(strengths)} node layers, so {len(strengths) - 1} expected")
            lw = spread_stats(weights[l - 1], tail=tail) if l >= 1 else None
            row.update({f"lw_{k}": lw[k] if lw else np.nan for k in ("std", "iqr", "tail")})
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
