"""Newman's modularity Q of a weighted graph under a partition, and modularity curves of models.

For a symmetric weighted adjacency ``A`` without self-loops and a partition ``c`` (by default the
ground-truth class of each sample), paper A (Lu et al., *Understanding the Dynamics of DNNs
Using Graph Modularity*, ECCV 2022, arXiv:2111.12485; the formula as on its poster) uses::

    Q = 1/(2W) · Σ_ij [ A_ij − s_i s_j / (2W) ] · δ(c_i, c_j)

with node strength ``s_i = Σ_j A_ij`` and total weight ``2W = Σ_ij A_ij``. Summing over classes
gives the form networkx evaluates (``networkx.community.modularity``, resolution 1)::

    Q = Σ_c [ e_c − a_c² ],   e_c = (weight inside class c) / (2W),   a_c = (strength of c) / (2W)

This module computes it from the edge list in float64, in ``O(edges + N)`` time and memory; the
tests check it against networkx to 1e-9.

The *modularity curve* of a model is ``Q_1 … Q_L`` over its probe points, each ``Q_l`` the
modularity of the kNN graph (``graphs.knn_graph``) of layer ``l``'s features under the class
partition, averaged over disjoint class-balanced batches (paper A's protocol).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from .progress import bar as progress_bar

from . import data, features, graphs
from .checks import check_int, check_seed


def modularity(adjacency, labels) -> float:
    """Newman's weighted modularity ``Q`` of the partition ``labels`` (formula above; paper A,
    Lu et al., ECCV 2022, arXiv:2111.12485, and its released code).

    Args:
        adjacency: symmetric ``(N, N)`` weights without self-loops: a dense or sparse torch
            tensor, a NumPy array or a SciPy sparse matrix. Zero entries are no edges.
        labels: ``(N,)`` community (class) of each node: integers, strings or any hashable
            values; empty classes are fine.

    Returns:
        ``Q`` as a Python float, in ``[-1/2, 1)`` for non-negative weights.

    Raises:
        ValueError: non-square or asymmetric adjacency, self-loops, NaN or infinite weights, a
            total weight of 0 (no edges, or positive and negative weights that cancel), or
            labels of the wrong length.
        TypeError: complex weights, or float / complex labels.

    Introduced in notebook 05_modularity_curves.
    """
    adjacency = graphs.as_adjacency(adjacency)
    rows, cols, weights = graphs.edge_list(adjacency)
    n = adjacency.shape[0]
    y = data.class_indices(labels, n)
    bad = ~torch.isfinite(weights)
    if bad.any():
        i, j = int(rows[bad][0]), int(cols[bad][0])
        raise ValueError(f"adjacency contains {int(bad.sum())} non-finite weights (NaN or "
                         f"infinite), e.g. A[{i}, {j}]={float(weights[bad][0])}: modularity "
                         "needs finite weights")
    if (rows == cols).any():
        raise ValueError(f"adjacency has {int((rows == cols).sum())} self-loops (non-zero "
                         "diagonal entries); modularity here is defined for graphs without them")
    _check_symmetric(rows, cols, weights, n)
    total = weights.sum()
    if len(weights) == 0:
        raise ValueError("the graph has no edges (total weight 0): modularity is undefined")
    if total == 0:
        positive = float(weights[weights > 0].sum()) / 2
        raise ValueError(f"the total edge weight is 0: positive weights ({positive:g}) and "
                         f"negative ones ({-positive:g}) cancel, so modularity (which divides "
                         "by it) is undefined")
    intra = weights[y[rows] == y[cols]].sum()
    strength = torch.zeros(n, dtype=torch.float64).index_add_(0, rows, weights)
    class_strength = torch.zeros(int(y.max()) + 1, dtype=torch.float64).index_add_(0, y, strength)
    return float(intra / total - ((class_strength / total) ** 2).sum())


def _check_symmetric(rows, cols, weights, n: int) -> None:
    """Every entry (i, j, w) must have its mirror (j, i, w): compare the entries sorted by
    (i, j) with those sorted by (j, i)."""
    forward, backward = (rows * n + cols).numpy(), (cols * n + rows).numpy()
    by_forward, by_backward = np.argsort(forward), np.argsort(backward)
    w = weights.numpy()
    same = (np.array_equal(forward[by_forward], backward[by_backward])
            and np.allclose(w[by_forward], w[by_backward], rtol=1e-6, atol=1e-12))
    if not same:
        raise ValueError("adjacency is not symmetric: modularity here is for undirected graphs "
                         "(symmetrise with (A + A.T) / 2)")


def knn_modularity(layer_features, labels, k: int = 3) -> float:
    """``Q`` of the kNN graph of ``(N, D)`` features under ``labels`` (one point of a curve)."""
    return modularity(graphs.knn_graph(layer_features, k), labels)


def modularity_curve(model, x, y, k: int = 3, n_batches: int = 5, batch_size: int = 500,
                     seed: int = 0, layers=None, stream: bool = False,
                     progress: bool = True) -> pd.DataFrame:
    """Modularity of every probe point's kNN graph, mean ± std over disjoint batches.

    Paper A's protocol (arXiv:2111.12485 and its released code): ``n_batches`` disjoint batches
    of ``batch_size`` samples, one kNN graph per batch and layer, ``Q`` under the ground-truth classes, mean and (population)
    standard deviation over batches. Our batches are class-balanced and seeded
    (``data.stratified_batches``) rather than the first test images in file order.

    Args:
        model: a network from ``modlib.models`` (or any module, with ``layers`` given).
        x: ``(N, C, H, W)`` inputs, ``N >= n_batches * batch_size``.
        y: ``(N,)`` class labels (integers, strings or any hashable values).
        k: neighbours per node, ``1 <= k < batch_size``.
        n_batches, batch_size: the batches (paper: 5 × 500).
        seed: drives the batches.
        layers: module names; default ``model.probe_points()``.
        stream: hold one layer's activations at a time (``features.iter_probe``).
        progress: show a progress bar over batches.

    Returns:
        DataFrame, one row per probe point, columns ``layer`` (1-based position), ``name``,
        ``Q_mean``, ``Q_std``, and ``Q_b0 … Q_b{n_batches-1}`` (per batch).

    Raises:
        ValueError: bad ``k``, ``n_batches`` or ``batch_size``, too few samples, ``x`` and ``y``
            of different lengths, or unknown layers.
    """
    n_batches = check_int("n_batches", n_batches, low=1)
    batch_size = check_int("batch_size", batch_size, low=2)
    k = check_int("k", k, low=1)
    if k >= batch_size:
        raise ValueError(f"k={k} is not allowed: must be < batch_size={batch_size} (the number "
                         "of samples in each graph)")
    check_seed("seed", seed)
    x, y = torch.as_tensor(x), data.class_indices(y, name="y")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels")
    names = features.resolve_layers(model, layers)
    batches = data.stratified_batches(y, n_batches, batch_size, seed)
    q = np.zeros((len(names), n_batches))
    for b, idx in enumerate(progress_bar(batches, desc="modularity curve", unit="batch",
                                         disable=not progress)):
        xb, yb = x[idx], y[idx]
        outputs = (features.iter_probe(model, xb, names) if stream
                   else features.probe(model, xb, names).items())
        for l, (_, layer_features) in enumerate(outputs):
            q[l, b] = knn_modularity(layer_features, yb, k)
    table = pd.DataFrame({"layer": np.arange(1, len(names) + 1), "name": names,
                          "Q_mean": q.mean(1), "Q_std": q.std(1)})
    for b in range(n_batches):
        table[f"Q_b{b}"] = q[:, b]
    return table


def delta_q(q) -> np.ndarray:
    """``ΔQ_l = Q_l − Q_{l−1}`` for ``l = 2..L`` (paper A's layer-to-layer change); returns
    ``(L − 1,)``."""
    q = np.asarray(q, dtype=np.float64)
    return np.diff(q)


def layer_difference(q) -> np.ndarray:
    """The layer-difference matrix ``D_ij = |Q_i − Q_j|`` of a curve (paper A); ``(L, L)``."""
    q = np.asarray(q, dtype=np.float64)
    return np.abs(q[:, None] - q[None, :])
