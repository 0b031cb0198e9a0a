"""Newman's modularity Q of a weighted graph under a partition, and modularity curves of models.

``Q = 1/(2W) · Σ_ij [A_ij − s_i s_j / (2W)] · δ(c_i, c_j)`` (Newman, Phys. Rev. E 70, 056131,
2004; paper A, Lu et al., ECCV 2022, arXiv 2111.12485), computed from the edge list in float64.
Method, curves and the null: ``docs/modularity_curves.md``.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import torch
from .progress import bar as progress_bar

from . import data, features, graphs, sparsification
from .checks import check_choice, check_float, check_int, check_int_list, check_seed


def modularity(adjacency, labels) -> float:
    """Newman's weighted modularity ``Q`` of the partition ``labels`` (formula above;
    ``docs/modularity_curves.md``, step 4). ``adjacency``: symmetric ``(N, N)`` weights without
    self-loops (torch, NumPy or SciPy, dense or sparse); ``labels``: ``(N,)`` hashable classes.
    Returns ``Q``, in ``[-1/2, 1)`` for non-negative weights.

    Raises:
        ValueError: a non-square or asymmetric adjacency, self-loops, non-finite weights, a
            total weight of 0, or labels of the wrong length.
        TypeError: complex weights, or float / complex labels.

    Introduced in notebook 05_modularity_curves.
    """
    adjacency = graphs.as_adjacency(adjacency)
    rows, cols, weights = graphs.edge_list(adjacency)
    n = adjacency.shape[0]
    y = data.class_indices(labels, n).to(rows.device)    # a CUDA graph is summed on its GPU
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
    strength = torch.zeros(n, dtype=torch.float64, device=rows.device).index_add_(0, rows, weights)
    class_strength = torch.zeros(int(y.max()) + 1, dtype=torch.float64,
                                 device=rows.device).index_add_(0, y, strength)
    p_intra = graphs.intra_class_weight(rows, cols, weights, y)
    return float(p_intra - ((class_strength / total) ** 2).sum())


def _check_symmetric(rows, cols, weights, n: int) -> None:
    """Raise unless every entry (i, j, w) has its mirror (j, i, w)."""
    rows, cols, weights = rows.cpu(), cols.cpu(), weights.cpu()      # NumPy's sort
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


def intra_class_share(adjacency, labels) -> float:
    """``P_intra = Σ_c e_c``: the share of the total edge weight inside classes, in ``[0, 1]``
    for non-negative weights (``Q ≈ P_intra − 1/C``, ``docs/modularity_curves.md``), of
    ``adjacency`` and ``labels`` as :func:`modularity` takes them.

    Raises:
        ValueError: labels of the wrong length, NaN weights, or a graph without edges.
        TypeError: non-integer labels.

    Introduced in notebook 05_modularity_curves.
    """
    adjacency = graphs.as_adjacency(adjacency)
    rows, cols, weights = graphs.edge_list(adjacency)
    y = data.class_indices(labels, adjacency.shape[0]).to(rows.device)
    if torch.isnan(weights).any():
        raise ValueError("adjacency contains NaN weights")
    if weights.sum() == 0:
        raise ValueError("the graph has no edges (total weight 0): P_intra is undefined")
    return float(graphs.intra_class_weight(rows, cols, weights, y))


# --------------------------------------------------------------------------------------------
# The permutation null: is Q more than chance?

_NULL_CHUNK = 4_000_000          # (permutations × edge entries) evaluated at once


def _q_of_labelings(rows, cols, weights, labelings: np.ndarray, n_classes: int) -> np.ndarray:
    """``(P,)`` ``Q`` of one graph under each row of ``labelings`` ``(P, N)``, in chunks."""
    n = labelings.shape[1]
    total = weights.sum()
    strength = np.bincount(rows, weights=weights, minlength=n)
    chunk = max(1, _NULL_CHUNK // max(len(weights), n))
    out = np.empty(len(labelings))
    for start in range(0, len(labelings), chunk):
        y = labelings[start:start + chunk]
        intra = (y[:, rows] == y[:, cols]) @ weights
        offsets = y + n_classes * np.arange(len(y))[:, None]
        class_strength = np.bincount(offsets.ravel(), weights=np.tile(strength, len(y)),
                                     minlength=len(y) * n_classes).reshape(len(y), n_classes)
        out[start:start + chunk] = intra / total - ((class_strength / total) ** 2).sum(1)
    return out


def _null_summary(q: float, null: np.ndarray) -> dict:
    """q, the null's mean and standard deviation (ddof=1), z and the permutation p-value."""
    mean, std = float(null.mean()), float(null.std(ddof=1)) if len(null) > 1 else float("nan")
    z = (q - mean) / std if std > 0 else float("nan")
    # ties: a relabelling that reproduces the partition gives the same Q up to rounding
    exceed = int((null >= q - 1e-12 * max(1.0, abs(q))).sum())
    return {"q": float(q), "null_mean": mean, "null_std": std, "z": float(z),
            "p": (1 + exceed) / (1 + len(null))}


def permutation_null(adjacency, labels, n_permutations: int = 200, seed=0,
                     return_null: bool = False) -> dict:
    """``Q`` of a graph under ``labels`` against ``Q`` of the same graph under permuted labels.

    ``z = (Q − mean(Q_π)) / std(Q_π)`` (ddof=1) and the one-sided Monte-Carlo p-value
    ``p = (1 + #{π : Q_π >= Q}) / (1 + n_permutations)``, never 0 (Phipson & Smyth, Stat. Appl.
    Genet. Mol. Biol. 9, 2010; ``docs/modularity_curves.md``, "Is a small Q chance?"). Returns
    ``{"q", "null_mean", "null_std", "z", "p"}`` (``z`` NaN for a constant null), and with
    ``return_null`` the ``(n_permutations,)`` permuted ``Q`` under ``"null"``.

    Raises:
        ValueError: as :func:`modularity` (bad adjacency or labels), ``n_permutations < 2``.

    Introduced in notebook 05_modularity_curves.
    """
    n_permutations = check_int("n_permutations", n_permutations, low=2)
    if not isinstance(seed, np.random.SeedSequence):
        seed = check_seed("seed", seed)
    adjacency = graphs.as_adjacency(adjacency)
    modularity(adjacency, labels)                    # validates the graph and the labels
    rows, cols, weights = (t.numpy() for t in graphs.edge_list(adjacency))    # float64 weights
    y = data.class_indices(labels, adjacency.shape[0]).numpy()
    n_classes = int(y.max()) + 1
    q = float(_q_of_labelings(rows, cols, weights, y[None, :], n_classes)[0])
    rng = np.random.default_rng(seed)
    null = _q_of_labelings(rows, cols, weights,
                           rng.permuted(np.tile(y, (n_permutations, 1)), axis=1), n_classes)
    found = _null_summary(q, null)
    return {**found, "null": null} if return_null else found


def null_modularity(layer_features, labels, k: int = 3, n_permutations: int = 200,
                    seed: int = 0) -> dict:
    """:func:`permutation_null` of the kNN graph (``k`` neighbours) of ``(N, D)`` features:
    ``{"q", "null_mean", "null_std", "z", "p"}``.

    Raises:
        ValueError: bad ``k``, ``n_permutations`` or ``seed``, labels of the wrong length.

    Introduced in notebook 05_modularity_curves.
    """
    return permutation_null(graphs.knn_graph(layer_features, k), labels, n_permutations, seed)


GRAPH_KINDS = ("knn", "top-fraction", "threshold")
"""Graph kinds of a curve (paper A's kNN graph, paper B's top-fraction or threshold subgraph)."""


def _layer_graph(layer_features, graph: str, k: int, p: float, tau: float):
    """The graph of kind ``graph`` of one layer; ``None`` for an empty non-kNN graph."""
    if graph == "knn":
        return graphs.knn_graph(layer_features, k)
    adjacency = (sparsification.top_fraction_graph(layer_features, p) if graph == "top-fraction"
                 else sparsification.threshold_graph(layer_features, tau))
    return None if graphs.edge_list(adjacency)[2].sum() == 0 else adjacency


def modularity_curve(model, x, y, k: int = 3, n_batches: int = 5, graph_size: int = 500,
                     seed: int = 0, layers=None, stream: bool = False,
                     progress: bool = True, graph: str = "knn", p: float = 0.01,
                     tau: float = 0.9, null_permutations: int = 0) -> pd.DataFrame:
    """Modularity of every probe point's graph of ``(N, C, H, W)`` inputs ``x`` under ``(N,)``
    labels ``y``, mean ± (population) std over ``n_batches`` disjoint class-balanced batches of
    ``graph_size`` samples, ``N >= n_batches * graph_size`` (paper A's protocol, 5 × 500;
    ``docs/modularity_curves.md``, step 5). ``graph``: paper A's ``"knn"`` graph
    (``k < graph_size``) or paper B's ``"top-fraction"`` (``p``) or ``"threshold"`` (``tau``)
    subgraph (``docs/similarity_graphs.md``); ``stream`` holds one layer's activations at a time
    (``features.iter_probe``); ``null_permutations``: 0, or >= 2 label permutations per batch
    (:func:`permutation_null`).

    Returns a DataFrame, one row per probe point: ``layer`` (1-based), ``name``, ``Q_mean``,
    ``Q_std``, ``Q_b0 … Q_b{n_batches-1}``; with a null also ``Q_null_mean``, ``Q_null_std``,
    ``Q_z``, ``Q_p``, the null of the batch mean (each draw relabels every batch). NaN where a
    batch's graph has no edge.

    Raises:
        ValueError: bad ``k``, ``n_batches``, ``graph_size``, ``graph``, ``p``, ``tau`` or
            ``null_permutations`` (0, or an integer >= 2), too few samples, ``x`` and ``y`` of
            different lengths, or unknown layers.

    Introduced in notebook 05_modularity_curves.
    """
    n_batches = check_int("n_batches", n_batches, low=1)
    graph_size = check_int("graph_size", graph_size, low=2)
    k = check_int("k", k, low=1)
    check_choice("graph", graph, GRAPH_KINDS)
    p = check_float("p", p, low=0.0, high=1.0, low_open=True)
    tau = check_float("tau", tau, low=-1.0, high=1.0)
    if k >= graph_size:
        raise ValueError(f"k={k} is not allowed: must be < graph_size={graph_size} (the number "
                         "of samples in each graph)")
    check_seed("seed", seed)
    null_permutations = check_int("null_permutations", null_permutations, low=0)
    if null_permutations == 1:
        raise ValueError("null_permutations=1 is not allowed: use 0 (no null) or >= 2 (a null "
                         "needs a spread)")
    x = torch.as_tensor(x)
    y = data.class_indices(y, len(x), name="y")
    names = features.resolve_layers(model, layers)
    batches = data.stratified_batches(y, n_batches, graph_size, seed)
    q = np.zeros((len(names), n_batches))
    null = np.full((len(names), n_batches, null_permutations), np.nan)
    for b, idx in enumerate(progress_bar(batches, desc=f"modularity curve ({graph})",
                                         unit="batch", disable=not progress)):
        xb, yb = x[idx], y[idx]
        outputs = (features.iter_probe(model, xb, names, device=None) if stream  # model's device
                   else features.probe(model, xb, names, device=None).items())
        for l, (_, layer_features) in enumerate(outputs):
            adjacency = _layer_graph(layer_features, graph, k, p, tau)
            q[l, b] = np.nan if adjacency is None else modularity(adjacency, yb)
            if null_permutations and adjacency is not None:
                null[l, b] = permutation_null(adjacency, yb, null_permutations,
                                              np.random.SeedSequence([seed, l, b]),
                                              return_null=True)["null"]
    table = pd.DataFrame({"layer": np.arange(1, len(names) + 1), "name": names,
                          "Q_mean": q.mean(1), "Q_std": q.std(1)})
    if null_permutations:
        summaries = [_null_summary(m, draws) if np.isfinite(m)
                     else dict.fromkeys(("null_mean", "null_std", "z", "p"), np.nan)
                     for m, draws in zip(q.mean(1), null.mean(1))]
        for key in ("null_mean", "null_std", "z", "p"):
            table[f"Q_{key}"] = [found[key] for found in summaries]
    return table.assign(**{f"Q_b{b}": q[:, b] for b in range(n_batches)})


def batch_curves(model, x, partitions: dict, graph_size: int, k: int = 3,
                 layers=None) -> dict[str, np.ndarray]:
    """``Q`` of every probe point's kNN graph of each consecutive batch of ``x``, one graph scored
    under every partition (``docs/dynamics_and_robustness.md``): ``x`` is
    ``(n_batches · graph_size, C, H, W)``, ``partitions`` ``{name: (len(x),) labels}``. Returns
    ``{name: (L, n_batches) float64}``, ``[l, b]`` batch ``b``'s Q at probe point ``l + 1``.

    Raises:
        ValueError: no partition, lengths that differ or are no multiple of ``graph_size``,
            bad ``k`` / ``graph_size``.

    Introduced in notebook 09_adversarial_inputs.
    """
    graph_size = check_int("graph_size", graph_size, low=2)
    k = check_int("k", k, low=1, high=graph_size - 1)
    if not partitions:
        raise ValueError("partitions={} is not allowed: give at least one {name: labels}")
    x = torch.as_tensor(x)
    if len(x) == 0 or len(x) % graph_size:
        raise ValueError(f"x has {len(x)} samples: must be a positive multiple of "
                         f"graph_size={graph_size} (consecutive batches)")
    labels = {name: data.class_indices(y, len(x), name=f"partitions[{name!r}]")
              for name, y in partitions.items()}
    names = features.resolve_layers(model, layers)
    q = {name: np.zeros((len(names), len(x) // graph_size)) for name in labels}
    for b in range(len(x) // graph_size):
        part = slice(b * graph_size, (b + 1) * graph_size)
        for l, layer_features in enumerate(features.probe(model, x[part], names).values()):
            graph = graphs.knn_graph(layer_features, k)
            for name, y in labels.items():
                q[name][l, b] = modularity(graph, y[part])
    return q


def sensitivity_sweep(model, x, y, k_values, n_values, seed: int = 0,
                      progress: bool = True) -> pd.DataFrame:
    """``Q`` of every probe point's kNN graph for every ``k`` in ``k_values`` (each
    ``< min(n_values)``) and ``N`` in ``n_values`` (paper A's poster ablation; one balanced graph
    per (layer, N, k), ``docs/modularity_curves.md``) of ``(M, C, H, W)`` inputs ``x``,
    ``M >= max(n_values)``, with ``(M,)`` integer labels ``y``. Returns a DataFrame with columns
    ``layer`` (1-based), ``name``, ``N``, ``k``, ``Q``.

    Raises:
        ValueError: empty or out-of-range ``k_values`` / ``n_values``, too few samples.

    Introduced in notebook 05_modularity_curves.
    """
    n_values = check_int_list("n_values", n_values, low=2, high=len(y))
    k_values = check_int_list("k_values", k_values, low=1, high=min(n_values) - 1)
    order = data.stratified_batches(torch.as_tensor(y), 1, max(n_values), seed=seed)[0]
    labels = torch.as_tensor(y)[order]
    rows = []
    outputs = features.probe(model, torch.as_tensor(x)[order])
    for layer, (name, f) in enumerate(progress_bar(outputs.items(), desc="k / N sweep",
                                                   unit="layer", disable=not progress), start=1):
        for n in n_values:
            similarity = graphs.cosine_similarity(f[:n])
            for k in k_values:
                q = modularity(graphs.knn_graph_from_similarity(similarity, k), labels[:n])
                rows.append({"layer": layer, "name": name, "N": n, "k": k, "Q": q})
    return pd.DataFrame(rows)


def delta_q(q) -> np.ndarray:
    """``ΔQ_l = Q_l − Q_{l−1}`` for ``l = 2..L`` (paper A's pruning signal, ``docs/pruning.md``);
    returns ``(L − 1,)``."""
    return np.diff(np.asarray(q, dtype=np.float64))


def layer_difference(q) -> np.ndarray:
    """The layer-difference matrix ``D_ij = |Q_i − Q_j|`` of a curve (paper A's poster,
    ``docs/modularity_curves.md``); ``(L, L)``."""
    q = np.asarray(q, dtype=np.float64)
    return np.abs(q[:, None] - q[None, :])


def louvain_communities(adjacency, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Communities of a weighted graph found without labels by the Louvain method (Blondel et
    al., J. Stat. Mech. 2008, arXiv 0803.0476; networkx), resolution ``γ > 0``
    (``docs/similarity_graphs.md``, "Communities"). Returns the ``(N,) int64`` community of
    each node, numbered by each community's smallest node.

    Raises:
        ValueError: a non-square adjacency, ``resolution <= 0`` or a bad seed.

    Introduced in notebook 04_community_visualisation.
    """
    resolution = check_float("resolution", resolution, low=0.0, low_open=True)
    seed = check_int("seed", seed, low=0)
    graph = graphs.to_networkx(adjacency)
    communities = nx.community.louvain_communities(graph, weight="weight",
                                                   resolution=resolution, seed=seed)
    found = np.empty(graph.number_of_nodes(), dtype=np.int64)
    for c, members in enumerate(sorted(communities, key=min)):
        found[sorted(members)] = c
    return found
