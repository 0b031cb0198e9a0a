"""Weight-graph metrics of a network: link weights, node strength, layer fluctuation, divergences.

La Malfa et al., *Characterizing Learning Dynamics of Deep Neural Networks via Complex Networks*
(ICTAI 2021, arXiv 2110.02628; code EmanueleLM/CNT-DNNs) read a trained network as a directed,
weighted graph whose nodes are its units and whose edges are its weights (``docs/complex_networks.md``):

* **node layers** ``l = 0..L``: layer 0 is the input units, layer ``l`` the output units of weight
  layer ``l`` (every ``Conv2d`` and ``Linear``, in forward order), so the last is the logits.
  Units are flattened in the model's own ``(C, H, W)`` order. A conv layer is its unrolled sparse
  matrix ``M`` (rows: output units, columns: input units; padded positions are not nodes).
* **link weights** of weight layer ``l``: its parameters (kernel once, not once per unrolled edge)
  and its biases, as one sample.
* **node strength** of unit ``j``: ``s_j = Σ_i w_ij + b_j + Σ_k w_jk`` (signed incoming weights plus
  the unit's own bias, plus signed outgoing weights; ``|w|`` with ``absolute=True``).
* **layer fluctuation** ``Y_l = std_j(s_j)`` (population standard deviation, ddof = 0).

Node strengths are computed exactly and vectorised (no loop over units or kernel taps): for the
linear map ``M`` of a weight layer, the in-strengths of its outputs are ``M·1 + b`` (one forward
pass of an all-ones input) and the out-strengths of its inputs are ``Mᵀ·1`` (one backward pass of
an all-ones gradient). Autograd gives ``Mᵀ·1`` for any stride, padding, dilation and groups.

Supported modules: any ``nn.Sequential`` (nested, and subclasses that keep ``Sequential.forward``)
of ``Conv2d`` (zero padding), ``Linear``, elementwise activations, ``Flatten``, ``Dropout``,
``Identity``; and, as **our extensions (not in the paper)**, used for the VGG and ResNet models of
``modlib.models``:

* ``BatchNorm1d/2d`` directly after a ``Conv2d``/``Linear`` is folded into it:
  ``W' = γ W / σ``, ``b' = γ (b − μ) / σ + β`` with ``σ = sqrt(running_var + eps)``;
* ``AvgPool2d`` / ``AdaptiveAvgPool2d`` are linear maps (weights ``1/k²``) composed into the next
  weight layer's edges;
* ``MaxPool2d`` is treated like ReLU: a gain-1 relay, as if every unit were active. A pooled unit's
  in-strength is that of one of its window's units, and each unit of a window inherits the
  outgoing strength of the pooled unit (summed over the windows that cover it);
* a residual add (``models.BasicBlock``) sums the in-strengths of both branches: the shortcut is an
  edge of weight 1 from each block-input unit to the block-output unit it lands on (option-A
  shortcuts subsample and zero-pad channels: padded channels receive no shortcut edge).

Anything else raises ``ValueError`` naming the module and what is supported.

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


# --------------------------------------------------------------------------------------------
# The weight graph as node layers and edges


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
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros":
                raise _unsupported(module, name, f"padding_mode={module.padding_mode!r}; only "
                                   "'zeros' (padded positions are not nodes)")
            w = self.weight(module.weight)

            def fwd(x, w=w, m=module):
                return F.conv2d(x, w, None, m.stride, m.padding, m.dilation, m.groups)
        else:
            w = self.weight(module.weight)

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


# --------------------------------------------------------------------------------------------
# Public API


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The ``Conv2d`` and ``Linear`` modules of ``model``, in forward order.

    Raises:
        ValueError: a module the weight graph does not support (see the module docstring).
    """
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
    """Per weight layer (every ``Conv2d`` and ``Linear``, in forward order), its raw weights and
    then its biases as one 1-D tensor (La Malfa et al. 2021, "Link-Weights"; the original pools
    ``W`` and ``b`` the same way). A conv kernel counts each parameter once, not once per unrolled
    edge. BatchNorm is not folded here: these are the parameters as trained.

    Returns:
        list of ``(n_weights + n_biases,)`` float32 tensors, one per weight layer.

    Raises:
        ValueError: a module the weight graph does not support.

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
    """Node strength of every unit, one flat tensor per node layer.

    Node layer 0 is the input units, node layer ``l`` the output units of weight layer ``l``
    (so ``L`` weight layers give ``L + 1`` node layers; the last is the logits), flattened in the
    model's own ``(C, H, W)`` order. The strength of unit ``j`` is
    ``s_j = Σ_i w_ij (+ b_j) + Σ_k w_jk`` (La Malfa et al. 2021, "Nodes Strength";
    ``docs/complex_networks.md``): signed incoming weights plus the unit's bias, plus signed
    outgoing weights. The input layer has only outgoing links and the output layer only incoming
    ones; **unlike the original code, no "+1" placeholder is added at either boundary** (the
    original sets the missing side to 1, which shifts those two layers by exactly 1).

    Computed exactly with one forward pass (``M·1 + b``) and one backward pass (``Mᵀ·1``) per
    weight layer, in float64; any ``Conv2d`` stride, padding, dilation and groups; zero-padded
    positions are not nodes. BatchNorm folding, pooling and residual adds are our extensions (see
    the module docstring).

    Args:
        model: an ``nn.Sequential`` of supported modules, or a VGG / CifarResNet / MLP of
            ``modlib.models``; BatchNorm uses its running statistics.
        input_shape: one sample's shape, e.g. ``(1, 28, 28)`` or ``(784,)``.
        absolute: use ``|w|`` (and ``|b|``) instead of signed values (classic weighted-network
            strength).
        bias: add each unit's bias (BatchNorm-folded where applicable) to its in-strength.

    Returns:
        ``L + 1`` float64 tensors, ``strengths[l]: (n_l,)``, on the model's device (a model on
        a GPU is unrolled there).

    Raises:
        ValueError: an unsupported module (named, with what is supported), or an ``input_shape``
            that does not fit the model.

    Introduced in notebook 08_complex_networks.
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
    """Layer fluctuation ``Y_l = sqrt(1/N_l Σ_j (s_j − mean_l)²)`` of each node layer: the
    population standard deviation (ddof = 0) of its node strengths, as the original's
    ``nodes_fluctuation`` (``docs/complex_networks.md``).

    Args:
        strengths: ``L + 1`` 1-D tensors or arrays (e.g. from :func:`node_strengths`).

    Returns:
        ``(L + 1,)`` float64.

    Raises:
        ValueError: no layers, or an empty layer.

    Introduced in notebook 08_complex_networks.
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


# --------------------------------------------------------------------------------------------
# Distributions and divergences


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
    ``grid``; samples larger than ``max_points`` are subsampled (seeded) first.

    Raises:
        ValueError: an empty sample, non-finite values, or a sample with zero spread (a KDE needs
            at least two distinct values).
    """
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


def jeffreys_divergence(p, q, *, grid_size: int = 1000, max_points: int = 20_000,
                        seed: int = 0) -> float:
    """The original's "Shannon divergence": the symmetrised KL (Jeffreys) divergence of the
    KDEs of two samples on a common grid, as a plain sum over grid points (no ``Δx``):
    ``D = Σ_x P(x) log(P(x)/Q(x)) + Σ_x Q(x) log(Q(x)/P(x))``, a term kept only where the density
    in front is non-zero (La Malfa et al. 2021; ``docs/complex_networks.md``).

    Its scale depends on the grid and the units of the samples, and it is **infinite** when one
    density underflows to 0 where the other does not: the infinity is returned, not hidden.

    Args:
        p, q: 1-D samples (arrays or tensors), each with some spread.
        grid_size: evaluation points between the joint minimum and maximum (original: 1000).
        max_points, seed: each sample is subsampled to ``max_points`` values (seeded) for the KDE.

    Returns:
        ``D >= 0`` or ``inf``.

    Introduced in notebook 08_complex_networks.
    """
    grid = common_grid(p, q, grid_size)
    fp = kde(p, grid, max_points=max_points, seed=seed)
    fq = kde(q, grid, max_points=max_points, seed=seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(fp > 0, fp * (np.log(fp) - np.log(fq)), 0.0)
        b = np.where(fq > 0, fq * (np.log(fq) - np.log(fp)), 0.0)
    return float(a.sum() + b.sum())


def js_divergence(p, q, *, grid_size: int = 1000, max_points: int = 20_000,
                  seed: int = 0) -> float:
    """Jensen–Shannon divergence (natural log) between the KDEs of two samples on a common grid,
    each density weighted by ``Δx`` and normalised to a distribution over the grid:
    ``JS = ½ KL(P‖M) + ½ KL(Q‖M)``, ``M = (P + Q)/2``. Finite and in ``[0, ln 2]``
    (our addition beside the original's Jeffreys divergence; ``docs/complex_networks.md``).

    Introduced in notebook 08_complex_networks.
    """
    grid = common_grid(p, q, grid_size)
    fp = kde(p, grid, max_points=max_points, seed=seed)
    fq = kde(q, grid, max_points=max_points, seed=seed)
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
    ``samples[i]`` and ``samples[j]``; zero diagonal, symmetric, may hold ``inf`` (Jeffreys).

    Returns:
        ``(n, n)`` float64.
    """
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
    """Per node layer, the statistics the reproduction compares (``docs/complex_networks.md``):
    ``units``, ``Y`` (layer fluctuation), ``s_mean``, ``s_iqr`` and ``s_tail`` (see
    :func:`spread_stats`) of the node strengths, and, for layers ``l >= 1`` when ``weights``
    (from :func:`link_weights`) is given, ``lw_std``, ``lw_iqr``, ``lw_tail`` of the link weights
    of weight layer ``l`` (the links into node layer ``l``); NaN for layer 0.

    Returns:
        DataFrame, one row per node layer, column ``layer`` = 0..L.
    """
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
            row.update({"lw_std": lw["std"] if lw else np.nan,
                        "lw_iqr": lw["iqr"] if lw else np.nan,
                        "lw_tail": lw["tail"] if lw else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def spread_stats(sample, *, quantiles=(0.05, 0.95), tail: float = 3.0) -> dict:
    """Spread of a sample, as the reproduction targets need: ``std`` (ddof = 0), the
    inter-quantile range ``iqr`` = q95 − q5 (default), and the ``tail`` mass
    ``P(|x − median| > tail · MAD)`` (MAD: median absolute deviation, so the tail mass is
    scale-free and comparable between strengths and raw weights).

    Returns:
        ``{"std", "iqr", "tail"}`` floats.
    """
    x = _as_array(sample, "sample")
    lo, hi = np.quantile(x, quantiles)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    tail_mass = float(np.mean(np.abs(x - med) > tail * mad)) if mad > 0 else 0.0
    return {"std": float(x.std()), "iqr": float(hi - lo), "tail": tail_mass}
