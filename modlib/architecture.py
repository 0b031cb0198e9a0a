"""Architecture-only measures: what a network's structure alone says about capacity and compression.

Local measures of each ``torch.fx``-traced operation (parameters, MACs, ``D = C·H·W``, depth, the
receptive field of Araujo, Norris & Sim, Distill 2019, doi:10.23915/distill.00021), folded over
the graph by :func:`compose_series` and :func:`compose_parallel`, and a capacity index
(:func:`vc_bounds`, Bartlett et al., arXiv 1703.02930): stand-ins for the layer algebra of Badías
& Banerjee (arXiv 2107.01081), whose formulas we could not obtain (docs/architecture.md).

Introduced in notebook 10_architecture_metrics.
"""

from __future__ import annotations

import copy
import math
import operator
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.utils.flop_counter import FlopCounterMode

from . import features
from .checks import check_choice, check_int, check_int_list

JOINS = ("add", "concat")


class TraceFailure(RuntimeError):
    """``torch.fx`` could not trace a module; the message names it and what to do."""


# The algebra ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of a feature map along one spatial axis (Araujo et al. 2019).

    ``size`` ``r``: input pixels covered by one output unit (padding included); ``jump`` ``j``:
    the effective stride between neighbouring units; ``start`` ``u``: input coordinate of the
    first pixel covered by unit 0 (``−u`` is Araujo et al.'s effective padding). Unit ``i`` covers
    input pixels ``[u + i·j, u + i·j + r − 1]``. Introduced in notebook 10_architecture_metrics.
    """

    size: float = 1.0
    jump: float = 1.0
    start: float = 0.0

    @classmethod
    def layer(cls, kernel: int = 1, stride: float = 1, padding: float = 0,
              dilation: int = 1) -> ReceptiveField:
        """One layer: ``(r, j, u) = (d·(k − 1) + 1, s, −p)`` (Araujo et al., section "Single-path
        networks"). ``padding`` is the padding on the low (left / top) side."""
        return cls(float(dilation * (kernel - 1) + 1), float(stride), -float(padding))


def rf_series(a: ReceptiveField, b: ReceptiveField) -> ReceptiveField:
    """``a`` then ``b``: ``r = r_a + (r_b − 1)·j_a``, ``j = j_a·j_b``, ``u = u_a + u_b·j_a``
    (Araujo et al. 2019, recursions of section "Single-path networks")."""
    return ReceptiveField(a.size + (b.size - 1) * a.jump, a.jump * b.jump,
                          a.start + b.start * a.jump)


def rf_parallel(branches) -> ReceptiveField:
    """Branches reading one input, joined (added or concatenated) on one output grid: the
    bounding interval of the union, ``u = min u_b``, ``r = max(u_b + r_b) − u``
    (docs/architecture.md). Raises ``ValueError`` for no branch or unequal jumps."""
    branches = list(branches)
    if not branches:
        raise ValueError("rf_parallel needs at least one branch")
    if any(math.isnan(b.jump) for b in branches):
        return ReceptiveField(math.nan, math.nan, math.nan)
    jumps = {b.jump for b in branches}
    if len(jumps) > 1 and not np.allclose(list(jumps), branches[0].jump):
        raise ValueError(f"branches with jumps {sorted(jumps)} cannot be joined unit by unit: "
                         "parallel composition needs one output grid (equal effective strides)")
    start = min(b.start for b in branches)
    return ReceptiveField(max(b.start + b.size for b in branches) - start, branches[0].jump, start)


@dataclass(frozen=True)
class Block:
    """Architecture-only measures of a piece of network between one input and one output.

    ``params`` (weights, biases, norm scales and shifts), ``macs`` (of one forward pass of one
    input), ``depth`` (weight layers on the longest path), ``d_in`` and ``d_out`` (``D = C·H·W``
    per sample), ``rf`` (receptive field per axis ``(height, width)``). Compose with
    :func:`compose_series` and :func:`compose_parallel`; :meth:`conv` builds one convolution.
    Introduced in notebook 10_architecture_metrics.
    """

    params: int = 0
    macs: int = 0
    depth: int = 0
    d_in: int = 1
    d_out: int = 1
    rf: tuple = field(default_factory=lambda: (ReceptiveField(), ReceptiveField()))

    @property
    def compression(self) -> float:
        """``D_out / D_in``: below 1 the piece compresses its input, above 1 it expands it."""
        return self.d_out / self.d_in

    @classmethod
    def conv(cls, c_in: int, c_out: int, size_in: int, kernel: int = 3, stride: int = 1,
             padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True) -> Block:
        """A square 2-D convolution on a ``c_in × size_in × size_in`` input (a worked example):
        ``params = c_out·(c_in/groups)·k² (+ c_out)``, ``MACs = params_w · H_out·W_out``,
        ``H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1`` (PyTorch ``Conv2d`` docs)."""
        size_out = (size_in + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        weights = c_out * (c_in // groups) * kernel * kernel
        rf = ReceptiveField.layer(kernel, stride, padding, dilation)
        return cls(weights + (c_out if bias else 0), weights * size_out * size_out, 1,
                   c_in * size_in * size_in, c_out * size_out * size_out, (rf, rf))


def compose_series(a: Block, b: Block) -> Block:
    """``a`` then ``b``: parameters, MACs and depth add; compression multiplies; receptive fields
    compose by :func:`rf_series` (docs/architecture.md). Raises ``ValueError`` when
    ``a.d_out != b.d_in``. Introduced in notebook 10_architecture_metrics."""
    if a.d_out != b.d_in:
        raise ValueError(f"cannot compose in series: the first piece outputs D={a.d_out} but "
                         f"the second expects D={b.d_in}")
    return Block(a.params + b.params, a.macs + b.macs, a.depth + b.depth, a.d_in, b.d_out,
                 tuple(rf_series(x, y) for x, y in zip(a.rf, b.rf)))


def compose_parallel(branches, join: str = "add") -> Block:
    """Branches reading one input, joined by elementwise addition or channel concatenation.

    Parameters and MACs add, depth is the maximum, ``d_out`` is the common (``add``) or summed
    (``concat``) output dimension, receptive fields join by :func:`rf_parallel`
    (docs/architecture.md); an identity shortcut is ``Block(d_in=D, d_out=D)``. Raises
    ``ValueError`` for no branches, an unknown ``join``, branches with different ``d_in``, or
    (``add``) different ``d_out``. Introduced in notebook 10_architecture_metrics.
    """
    check_choice("join", join, JOINS)
    branches = list(branches)
    if not branches:
        raise ValueError("compose_parallel needs at least one branch")
    d_in = {b.d_in for b in branches}
    if len(d_in) > 1:
        raise ValueError(f"branches read inputs of different dimensions {sorted(d_in)}: "
                         "parallel branches must share one input")
    d_out = [b.d_out for b in branches]
    if join == "add" and len(set(d_out)) > 1:
        raise ValueError(f"join='add' needs equal output dimensions, got {d_out}")
    rf = tuple(rf_parallel([b.rf[axis] for b in branches]) for axis in range(len(branches[0].rf)))
    return Block(sum(b.params for b in branches), sum(b.macs for b in branches),
                 max(b.depth for b in branches), branches[0].d_in,
                 d_out[0] if join == "add" else sum(d_out), rf)


def vc_bounds(parameters: int, depth: int) -> dict:
    """Orders of the VC dimension of piecewise-linear networks with ``W`` parameters and ``L``
    layers: ``upper = W·L·log2 W`` and ``lower = W·L·log2(W/L)``, the bounds ``O(W·L·log W)``
    (Theorem 7) and ``Ω(W·L·log(W/L))`` (Theorem 3) of Bartlett, Harvey, Liaw & Mehrabian
    (JMLR 20(63), 2019, arXiv 1703.02930) with every hidden constant set to 1, orders of
    magnitude only (docs/architecture.md); ``L`` counts weight layers on the longest path.

    Returns ``{"vc_upper": float, "vc_lower": float, "log10_vc_upper": float}``; raises
    ``ValueError`` when ``W < 2`` or ``L < 1`` (``TypeError`` for non-integers). Introduced in
    notebook 10_architecture_metrics.
    """
    w = check_int("parameters", parameters, low=2)
    depth = check_int("depth", depth, low=1)
    upper = w * depth * math.log2(w)
    lower = w * depth * math.log2(w / depth) if w > depth else 0.0
    return {"vc_upper": float(upper), "vc_lower": float(lower),
            "log10_vc_upper": math.log10(upper)}


# Tracing --------------------------------------------------------------------------------------
class _Tracer(fx.Tracer):
    """Keeps ``leaf_modules`` (paths or classes) whole; records which module is being traced (for
    error messages) and each module's output."""

    def __init__(self, leaf_modules=()):
        super().__init__()
        self.leaves = tuple(leaf_modules)
        self.leaf_types = tuple(t for t in self.leaves if isinstance(t, type))
        self.stack, self.outputs = [], {}          # module paths; module path -> node name

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return (qualname in self.leaves or isinstance(m, self.leaf_types)
                or super().is_leaf_module(m, qualname))

    def call_module(self, m, forward, args, kwargs):
        name = self.path_of_module(m)
        self.stack.append(name)
        result = super().call_module(m, forward, args, kwargs)
        self.stack.pop()
        if isinstance(result, fx.Proxy):
            self.outputs[name] = result.node.name
        return result


class _Measure(ShapeProp):
    """Shape propagation that also counts the FLOPs of every node (batch of one)."""

    def run_node(self, n):
        counter = FlopCounterMode(display=False)
        with counter:
            result = super().run_node(n)
        n.meta["flops"] = int(counter.get_total_flops())
        return result


def _shape(node: fx.Node) -> tuple | None:
    shape = getattr(node.meta.get("tensor_meta"), "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


def _pair(value, n: int = 2) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


_NAN = ReceptiveField(math.nan, math.nan, math.nan)
_ELEMENTWISE_FUNCTIONS = {operator.add, operator.iadd, operator.mul, operator.imul, torch.add,
                          torch.mul, operator.sub, torch.sub, operator.truediv}
_FUNCTION_KINDS = {operator.add: "add", operator.iadd: "add", torch.add: "add", torch.cat: "concat",
                   operator.getitem: "getitem", torch.flatten: "flatten"}
_MODULE_KINDS = [((nn.Conv1d, nn.Conv2d, nn.Conv3d), "conv"),
                 ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), "conv_transpose"),
                 ((nn.Linear, nn.Bilinear), "linear"),
                 ((nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm), "norm"),
                 ((nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool1d, nn.AvgPool1d), "pool"),
                 ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "adaptive_pool"),
                 ((nn.Flatten,), "flatten"), ((nn.Dropout, nn.Dropout2d, nn.Identity), "identity"),
                 ((nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.GELU, nn.SiLU,
                   nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.ELU), "activation")]
_WEIGHT_KINDS = ("conv", "conv_transpose", "linear", "function:conv2d", "function:linear")
# the positional arguments after the input of the functional windows
_WINDOW_ARGS = {"function:conv2d": ("weight", "bias", "stride", "padding", "dilation"),
                "function:max_pool2d": ("kernel_size", "stride", "padding", "dilation"),
                "function:avg_pool2d": ("kernel_size", "stride", "padding")}


def _kind(node: fx.Node, modules: dict) -> str:
    if node.op == "call_module":
        m = modules[node.target]
        return next((kind for types, kind in _MODULE_KINDS if isinstance(m, types)),
                    f"module:{type(m).__name__}")
    if node.op == "call_function":
        name = getattr(node.target, "__name__", node.target)
        return _FUNCTION_KINDS.get(node.target, f"function:{name}")
    return f"method:{node.target}" if node.op == "call_method" else node.op


class Architecture:
    """A traced network (build with :func:`trace`): its leaf operations with shapes and measures.

    ``ops``: DataFrame, one row per operation in execution order: ``name`` (fx node), ``kind``,
    ``target``, ``inputs``, ``in_shape``, ``out_shape`` (batch of one), ``params``, ``macs``,
    ``d_in``, ``d_out``, ``compression`` (local ``D_out / D_in``), ``weight_layer``, ``depth``
    (weight layers on the longest path to this op), ``rf_h``, ``rf_w``, ``jump_h``, ``jump_w``,
    ``start_h``, ``start_w`` (in input pixels), ``cum_params``, ``cum_macs`` (over every op the
    output depends on), ``cum_compression`` (``d_out`` over the input's) and
    ``cum_log10_vc_upper`` (:func:`vc_bounds` of the sub-network up to this op).
    ``input_shape``: ``(C, H, W)``; ``module_outputs``: module path → fx node of its output.
    Introduced in notebook 10_architecture_metrics.
    """

    def __init__(self, ops: pd.DataFrame, input_shape: tuple, module_outputs: dict,
                 total_parameters: int, unused_parameters: int, name: str):
        self.ops, self.input_shape = ops, tuple(input_shape)
        self.module_outputs, self.name = module_outputs, name
        self.total_parameters, self.unused_parameters = total_parameters, unused_parameters

    def __repr__(self) -> str:
        return f"Architecture({self.name}, input {self.input_shape}, {len(self.ops)} ops)"

    def row(self, module: str) -> pd.Series:
        """The op whose output is the output of module ``module`` (a probe point); raises
        ``ValueError`` when ``module`` was not called in the traced forward pass."""
        if module not in self.module_outputs:
            raise ValueError(f"module={module!r} is not a module called in the traced forward "
                             f"pass of {self.name}; known: {sorted(self.module_outputs)[:8]}...")
        return self.ops.set_index("name").loc[self.module_outputs[module]]

    def at(self, modules) -> pd.DataFrame:
        """Rows of :meth:`row` for several modules (e.g. ``model.probe_points()``), indexed by
        module path, with ``layer`` = 1-based position."""
        rows = pd.DataFrame([self.row(m) for m in modules], index=list(modules))
        rows.insert(0, "layer", np.arange(1, len(rows) + 1))
        return rows

    def _maps(self) -> pd.Series:
        """Which ops output a ``(C, H, W)`` feature map."""
        return self.ops["out_shape"].map(len, na_action="ignore") == 3

    def by_depth(self) -> pd.DataFrame:
        """The profile over depth of the weight layers with a ``(C, H, W)`` output: a DataFrame
        indexed by ``depth`` with ``rf``, the largest receptive field (height axis, pixels) at
        that depth, and ``compression``, the running minimum of ``cum_compression`` (empty
        without a spatial map). Introduced in notebook 10_architecture_metrics."""
        layers = self.ops[self.ops["weight_layer"] & self._maps()]
        table = layers.groupby("depth").agg(rf=("rf_h", "max"),
                                            compression=("cum_compression", "min"))
        return table.assign(compression=table["compression"].cummin())

    def summary(self) -> dict:
        """Global values: ``parameters``, ``macs``, ``depth``, ``receptive_field`` (pixels, height
        axis, at the last feature map: the last ``(C, H, W)`` output that is not a global pooling,
        where Araujo et al. report receptive fields), ``rf_coverage`` (that over the input height,
        may exceed 1), ``compression`` (``D`` of the last feature map over the input's; NaN
        without a spatial map) and :func:`vc_bounds` of (parameters, depth)."""
        ops = self.ops
        params, depth = int(ops["params"].sum()), int(ops["depth"].max())
        maps = ops[self._maps() & ~ops["kind"].str.contains("adaptive")]
        last = maps.iloc[-1] if len(maps) else {"rf_h": math.nan, "cum_compression": math.nan}
        rf = float(last["rf_h"])
        result = {"parameters": params, "macs": int(ops["macs"].sum()), "depth": depth,
                  "receptive_field": rf, "rf_coverage": rf / self.input_shape[1],
                  "compression": float(last["cum_compression"])}
        if params >= 2 and depth >= 1:
            result.update(vc_bounds(params, depth))
        return result


def _window_rf(kernel_size, stride=None, padding=0, dilation=1, **_) -> tuple:
    """Fields (height, width) of a 2-D convolution or pooling window; a string padding is
    PyTorch's ``"same"`` (low side ``⌊d·(k − 1)/2⌋``) or ``"valid"`` (none)."""
    k, d = _pair(kernel_size), _pair(dilation)
    if isinstance(padding, str):
        padding = [di * (ki - 1) // 2 if padding == "same" else 0 for ki, di in zip(k, d)]
    return tuple(ReceptiveField.layer(*layer)
                 for layer in zip(k, _pair(stride or k), _pair(padding), d))


def _local_rf(node: fx.Node, kind: str, modules: dict, in_shape, out_shape):
    """Receptive field (height, width) of one op relative to its (first) input's grid, or None
    for an op that does not change the grid (docs/architecture.md)."""
    if in_shape is None or len(in_shape) != 4:
        return None
    spatial_out = out_shape is not None and len(out_shape) == 4
    m = modules[node.target] if node.op == "call_module" else None
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return _window_rf(m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1))
    if kind in _WINDOW_ARGS:
        given = dict(zip(_WINDOW_ARGS[kind], node.args[1:]), **node.kwargs)
        if kind == "function:conv2d":
            given["kernel_size"] = _shape(given["weight"])[2:]
        return _window_rf(**given)
    if kind in ("adaptive_pool", "function:adaptive_avg_pool2d", "function:adaptive_max_pool2d"):
        # the widest of the windows [⌊i·n/o⌋, ⌈(i+1)·n/o⌉) and the mean jump n/o
        return tuple(ReceptiveField(float(max(math.ceil((i + 1) * n / o) - math.floor(i * n / o)
                                              for i in range(o))), n / o, 0.0)
                     for n, o in zip(in_shape[2:], out_shape[2:]))
    if kind == "getitem" and spatial_out and isinstance(node.args[1], tuple):
        items = [*node.args[1][2:4], slice(None), slice(None)][:2]
        if not all(isinstance(item, slice) for item in items):
            return (_NAN, _NAN)
        ranges = [item.indices(n) for item, n in zip(items, in_shape[2:])]
        return tuple(ReceptiveField(1.0, float(step), float(start)) for start, _, step in ranges)
    if kind == "function:pad":
        pad = list(node.args[1] if len(node.args) > 1 else node.kwargs["pad"]) + [0] * 4
        # F.pad lists (left, right, top, bottom, ...) from the last axis backwards
        return (ReceptiveField(1.0, 1.0, -float(pad[2])), ReceptiveField(1.0, 1.0, -float(pad[0])))
    if not spatial_out:
        # flatten, global pooling, reshape to (N, D): one output position sees the whole grid
        return tuple(ReceptiveField(float(n), float(n), 0.0) for n in in_shape[2:])
    if in_shape[2:] != out_shape[2:]:
        return (_NAN, _NAN)                           # changes the grid by a rule we do not know
    return None


def trace(model: nn.Module, input_shape, leaf_modules=(), name: str | None = None) -> Architecture:
    """Trace ``model`` with ``torch.fx`` (in ``eval()`` mode) and measure every leaf operation
    for one input of shape ``input_shape`` ``(C, H, W)`` (docs/architecture.md).

    Args:
        leaf_modules: module paths (``"layer1.0"``) or classes kept as single operations
            (docs/architecture.md, "The graph").
        name: a label for messages (default: the model's class name).

    Returns an :class:`Architecture`. Raises ``ValueError`` when ``input_shape`` is not three
    positive integers, :class:`TraceFailure` (naming the innermost module being traced and the
    ways out) when ``torch.fx`` cannot trace a module. Introduced in notebook
    10_architecture_metrics.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape} is not allowed: give (C, H, W) of one input")
    check_int_list("input_shape", input_shape, low=1)
    name = name or getattr(model, "arch", type(model).__name__)
    tracer = _Tracer(leaf_modules)
    try:
        graph = tracer.trace(model)
    except Exception as error:
        where = tracer.stack[-1] if tracer.stack else ""
        label = (f"module {where!r} ({type(model.get_submodule(where)).__name__})" if where
                 else f"the top-level module ({type(model).__name__})")
        raise TraceFailure(
            f"torch.fx cannot trace {label} of {name}: {type(error).__name__}: {error}. "
            f"Keep it as one operation with trace(model, input_shape, leaf_modules="
            f"[{where or type(model).__name__!r}]) or trace a submodule instead "
            f"(e.g. trace(model.get_submodule('...'), shape)); data-dependent control flow "
            f"cannot be traced symbolically.") from error
    graph_module = fx.GraphModule(tracer.root, graph)          # calls the model's submodules
    with features.evaluating(model) as (device, dtype), torch.no_grad():
        _Measure(graph_module).propagate(torch.zeros(1, *input_shape, dtype=dtype, device=device))
    ops = _measure(graph_module, dict(graph_module.named_modules()), input_shape)
    total = sum(p.numel() for p in model.parameters())
    unused = total - int(ops["params"].sum())
    if unused:
        warnings.warn(f"{unused} parameters of {name} are not used in the traced forward pass")
    return Architecture(ops, input_shape, dict(tracer.outputs), total, unused, name)


def _measure(gm: fx.GraphModule, modules: dict, input_shape: tuple) -> pd.DataFrame:
    """Walk the graph in execution order and fold the local measures (the algebra over a DAG):
    the fields reaching an op from its inputs join in parallel, then its own follows in series;
    then the cumulative measures of the sub-network up to each op."""
    identity = (ReceptiveField(), ReceptiveField())
    state = {}                 # node name -> (rf per axis, depth) of each feature map
    seen: set[int] = set()     # ids of the parameters counted so far
    rows = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            state[node.name] = (identity, 0)
        if node.op in ("placeholder", "output"):
            continue
        inputs = [a for a in node.all_input_nodes if state.get(a.name) is not None]
        in_shapes = [s for s in map(_shape, inputs) if s is not None]
        first, out_shape = (in_shapes or [None])[0], _shape(node)
        kind = _kind(node, modules)
        weight_layer = kind in _WEIGHT_KINDS
        depth = max((state[a.name][1] for a in inputs), default=0) + int(weight_layer)
        incoming = [state[a.name][0] for a in inputs] or [identity]
        try:
            joined = (incoming[0] if len(incoming) == 1 else
                      tuple(rf_parallel([rf[axis] for rf in incoming]) for axis in range(2)))
        except ValueError:                         # inputs on different grids
            joined = (_NAN, _NAN)
        local = _local_rf(node, kind, modules, first, out_shape)
        rf = joined if local is None else tuple(map(rf_series, joined, local))
        # a fetched parameter or buffer is not a feature map: it joins no receptive field
        state[node.name] = None if node.op == "get_attr" else (rf, depth)
        dims = [math.prod(s[1:]) if s else 0 for s in in_shapes]      # D per sample
        d_in = max(dims, default=0) if node.target in _ELEMENTWISE_FUNCTIONS else sum(dims)
        d_out = math.prod(out_shape[1:]) if out_shape else 0
        rows.append({"name": node.name, "kind": kind,
                     "target": getattr(node.target, "__name__", str(node.target)),
                     "inputs": [a.name for a in inputs],
                     "in_shape": first[1:] if first else None,
                     "out_shape": out_shape[1:] if out_shape else None,
                     "params": _new_params(node, gm, modules, seen),
                     "macs": node.meta.get("flops", 0) // 2, "d_in": d_in, "d_out": d_out,
                     "compression": d_out / d_in if d_in else math.nan,
                     "weight_layer": weight_layer, "depth": depth,
                     "rf_h": rf[0].size, "rf_w": rf[1].size, "jump_h": rf[0].jump,
                     "jump_w": rf[1].jump, "start_h": rf[0].start, "start_w": rf[1].start})
    ops = pd.DataFrame(rows)
    # parameters and MACs summed over each op's ancestors (itself included)
    position = {name: i for i, name in enumerate(ops["name"])}
    ancestors = np.eye(len(ops), dtype=bool)
    for i, inputs in enumerate(ops["inputs"]):
        ancestors[i] |= ancestors[[position[a] for a in inputs if a in position]].any(0)
    ops["cum_params"], ops["cum_macs"] = (ancestors @ ops[["params", "macs"]].to_numpy()).T
    ops["cum_compression"] = ops["d_out"] / math.prod(input_shape)
    ops["cum_log10_vc_upper"] = [
        vc_bounds(int(w), int(depth))["log10_vc_upper"] if w >= 2 and depth >= 1 else math.nan
        for w, depth in zip(ops["cum_params"], ops["depth"])]
    return ops


def _new_params(node: fx.Node, gm: fx.GraphModule, modules: dict, seen: set[int]) -> int:
    """Parameters first used by ``node``: a module's own (recursively for leaf modules), or an
    attribute fetched; each tensor is counted once over the walk (``seen`` holds their ids)."""
    if node.op == "call_module":
        tensors = list(modules[node.target].parameters())
    else:
        value = operator.attrgetter(node.target)(gm) if node.op == "get_attr" else None
        tensors = [value] if isinstance(value, nn.Parameter) else []
    fresh = [p for p in tensors if id(p) not in seen]
    seen.update(id(p) for p in fresh)
    return sum(p.numel() for p in fresh)


def empirical_receptive_field(model: nn.Module, input_shape, module: str | None = None,
                              unit: tuple[int, int] | None = None, seed: int = 0) -> dict:
    """Measure the receptive field of one unit as the support of its input gradient, on a
    float64 copy of ``model`` with positive weights, average instead of max pooling and an
    all-ones input of shape ``(C, H, W)`` (docs/architecture.md, "The empirical check").

    Args:
        module: module path whose ``(C, H, W)`` output holds the unit (default: the model's last
            probe point).
        unit: ``(row, column)`` of the unit in that feature map (default: the centre).
        seed: drives the random positive weights (uniform in [0.5, 1] over the fan-in).

    Returns ``{"module", "unit", "map_shape", "rows": (first, last), "cols": (first, last)}``,
    the input pixels of the gradient's support (inclusive). Raises ``ValueError`` for no module
    and no probe points, or a unit outside the map. Introduced in notebook
    10_architecture_metrics.
    """
    if module is None:
        if not hasattr(model, "probe_points"):
            raise ValueError("module=None needs a model with probe_points(); name a module")
        module = model.probe_points()[-1]
    net = copy.deepcopy(model).double().eval()
    generator = torch.Generator().manual_seed(seed)
    for path, m in list(net.named_modules()):
        if isinstance(m, nn.MaxPool2d):
            net.set_submodule(path, nn.AvgPool2d(m.kernel_size, m.stride, m.padding,
                                                 ceil_mode=m.ceil_mode))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()                     # mean 0, variance 1
            for p_name, p in m.named_parameters(recurse=False):
                values = torch.rand(p.shape, generator=generator, dtype=torch.float64) * 0.5 + 0.5
                if p_name == "weight" and p.ndim > 1:
                    values /= p[0].numel()
                p.copy_(values)
    caught = {}
    net.get_submodule(module).register_forward_hook(lambda m, i, o: caught.update(out=o))
    x = torch.ones(1, *input_shape, dtype=torch.float64, requires_grad=True)
    net(x)
    out = caught["out"]
    if out.ndim != 4:
        raise ValueError(f"module {module!r} outputs shape {tuple(out.shape)}, not (N, C, H, W)")
    h, w = out.shape[2:]
    unit = (h // 2, w // 2) if unit is None else tuple(unit)
    if not (0 <= unit[0] < h and 0 <= unit[1] < w):
        raise ValueError(f"unit={unit} is outside the {h}x{w} feature map of {module!r}")
    out[0, :, unit[0], unit[1]].sum().backward()
    support = (x.grad[0].abs().sum(0) > 0).numpy()
    rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
    return {"module": module, "unit": unit, "map_shape": (int(h), int(w)),
            "rows": (int(rows[0]), int(rows[-1])), "cols": (int(cols[0]), int(cols[-1]))}

