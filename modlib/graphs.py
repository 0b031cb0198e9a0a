"""Relationship graphs of samples: cosine similarity and the k-nearest-neighbour (kNN) graph.

Paper A's graph (spec §2.3) for one layer, given the layer's features ``X: (N, D)``:

1. normalise rows, ``x̂_i = x_i / max(‖x_i‖₂, 1e-8)``;
2. cosine similarity ``S = X̂ X̂ᵀ`` with the diagonal set to 0 (self-similarity ignored);
3. for every node ``i``, keep the ``k`` largest entries of row ``S_i`` — a directed graph with
   weights ``S_ij``;
4. symmetrise by averaging, ``A = (A_dir + A_dirᵀ) / 2``: a mutual pair keeps ``S_ij``, a one-way
   pair gets ``S_ij / 2``; zero weights are no edges.

:func:`knn_graph` computes this in tiles, so memory is ``O(block_size² + N · k)`` and the dense
``N × N`` similarity matrix never exists unless asked for. Ties in step 3 are broken
towards the lower column index (as ``heapq.nlargest`` in the original code), so results are
deterministic. An all-zero feature vector has similarity 0 to everything: its node gets no edges
of its own (it may still be isolated).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch

from .checks import check_int


def as_features(features, name: str = "features") -> torch.Tensor:
    """Validate ``(N, D)`` features and return them as a float tensor (float64 stays float64).

    Raises:
        ValueError: not 2-D, fewer than 2 rows, no columns, or NaN / infinite entries.
    """
    f = torch.as_tensor(features)
    if f.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {tuple(f.shape)}")
    if f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"{name} must have N >= 2 rows and D >= 1 columns, got "
                         f"{tuple(f.shape)}")
    if not f.is_floating_point():
        f = f.float()
    bad = ~torch.isfinite(f)
    if bad.any():
        rows = torch.nonzero(bad.any(1)).flatten()[:5].tolist()
        raise ValueError(f"{name} contain {int(bad.sum())} NaN or infinite values "
                         f"(first rows: {rows})")
    return f


def normalize_rows(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; rows with norm < 1e-8 are divided by 1e-8 (stay ~0)."""
    return features / features.norm(dim=1, keepdim=True).clamp_min(1e-8)


def cosine_similarity(features, zero_diagonal: bool = True) -> torch.Tensor:
    """Dense cosine similarity ``S = X̂ X̂ᵀ`` of the rows of ``features``.

    Args:
        features: ``(N, D)`` array or tensor.
        zero_diagonal: set ``S_ii = 0`` as the original code does (spec §2.3 step 3).

    Returns:
        ``(N, N)`` tensor in ``features``' float dtype, values in [-1, 1].

    Raises:
        ValueError: see :func:`as_features`.
    """
    x = normalize_rows(as_features(features))
    s = x @ x.T
    if zero_diagonal:
        s.fill_diagonal_(0.0)
    return s


def _top_k(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest entries of each row of ``s`` (B, M): ``(values, columns)``, both (B, k).

    Among equal values at the k-th place the lower column index wins (as ``heapq.nlargest``).
    ``torch.topk`` leaves that choice open, so rows where more than ``k`` entries reach the k-th
    value are redone with a stable sort, which keeps equal values in column order.
    """
    values, columns = s.topk(k, dim=1)
    crowded = (s >= values[:, -1:]).sum(1) > k
    if crowded.any():
        order = torch.sort(s[crowded], dim=1, descending=True, stable=True).indices[:, :k]
        columns[crowded] = order
        values[crowded] = s[crowded].gather(1, order)
    return values, columns


def _merge_top_k(values_a, columns_a, values_b, columns_b, k: int):
    """Top ``k`` of two candidate lists per row, ties to the lower column (sort by column, then
    stable sort by value)."""
    values = torch.cat([values_a, values_b], dim=1)
    columns = torch.cat([columns_a, columns_b], dim=1)
    by_column = columns.argsort(dim=1)
    values, columns = values.gather(1, by_column), columns.gather(1, by_column)
    by_value = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return values.gather(1, by_value), columns.gather(1, by_value)


def _symmetrise(rows, cols, values, n: int, dense: bool) -> torch.Tensor:
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    indices = torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])])
    adjacency = torch.sparse_coo_tensor(indices, torch.cat([values, values]) / 2, (n, n),
                                        check_invariants=False)
    adjacency = adjacency.coalesce()
    return adjacency.to_dense() if dense else adjacency


def knn_graph(features, k: int, block_size: int = 1024, dense: bool = False) -> torch.Tensor:
    """Paper A's symmetrised, weighted kNN graph of cosine similarities (spec §2.3).

    The similarity matrix is computed in ``block_size × block_size`` tiles. Because ``S`` is
    symmetric, each tile ``S[I, J]`` above the diagonal is computed once and serves both the rows
    of ``I`` and (transposed) the rows of ``J``; every row keeps a running top-k list that is
    merged with each new tile's top-k. This halves the matrix-product work, which dominates.

    Args:
        features: ``(N, D)`` array or tensor, one row per sample (float32; float64 is kept).
        k: neighbours per node, ``1 <= k < N``.
        block_size: tile side (memory ``O(block_size² + N·k)``).
        dense: return a dense ``(N, N)`` tensor instead of a sparse one.

    Returns:
        Symmetric adjacency ``A`` without self-loops, ``(N, N)`` torch sparse COO (coalesced) or
        dense, with between ``N·k/2`` and ``N·k`` undirected edges; ``A_ij = S_ij`` for mutual
        neighbours, ``S_ij / 2`` for one-way ones.

    Raises:
        ValueError: bad features (see :func:`as_features`) or ``k`` outside ``[1, N)``.
    """
    x = as_features(features)
    n = len(x)
    k = check_int("k", k, low=1)
    if k >= n:
        raise ValueError(f"k={k} is not allowed: must be < number of samples N={n}")
    block_size = check_int("block_size", block_size, low=1)
    x = normalize_rows(x)
    best_values = torch.full((n, k), -torch.inf, dtype=x.dtype)
    best_columns = torch.full((n, k), n, dtype=torch.long)

    def update(rows: slice, tile: torch.Tensor, column_offset: int) -> None:
        values, columns = _top_k(tile, min(k, tile.shape[1]))
        best_values[rows], best_columns[rows] = _merge_top_k(
            best_values[rows], best_columns[rows], values, columns + column_offset, k)

    starts = range(0, n, block_size)
    for i in starts:
        rows_i = slice(i, min(i + block_size, n))
        for j in starts[starts.index(i):]:
            rows_j = slice(j, min(j + block_size, n))
            tile = x[rows_i] @ x[rows_j].T
            if i == j:
                tile.fill_diagonal_(0.0)            # ignore self-similarity, as the paper's code
                update(rows_i, tile, j)
            else:
                update(rows_i, tile, j)
                update(rows_j, tile.T.contiguous(), i)
    rows = torch.arange(n).repeat_interleave(k)
    return _symmetrise(rows, best_columns.flatten(), best_values.flatten(), n, dense)


def knn_graph_from_similarity(similarity, k: int, dense: bool = False) -> torch.Tensor:
    """:func:`knn_graph` for a precomputed ``(N, N)`` similarity matrix (e.g. to sweep ``k``).

    The diagonal is ignored (treated as 0). Raises ``ValueError`` for a non-square matrix,
    NaN entries or ``k`` outside ``[1, N)``.
    """
    s = torch.as_tensor(similarity)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be a square (N, N) matrix, got {tuple(s.shape)}")
    s = as_features(s, "similarity").clone()
    n = len(s)
    k = check_int("k", k, low=1)
    if k >= n:
        raise ValueError(f"k={k} is not allowed: must be < number of samples N={n}")
    s.fill_diagonal_(0.0)
    values, columns = _top_k(s, k)
    rows = torch.arange(n).repeat_interleave(k)
    return _symmetrise(rows, columns.flatten(), values.flatten(), n, dense)


def edge_list(adjacency) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, cols, weights)`` of every non-zero entry of a dense or sparse ``(N, N)`` matrix.

    Both directions of an undirected edge are listed; weights come back as float64.
    """
    a = adjacency if isinstance(adjacency, torch.Tensor) else torch.as_tensor(np.asarray(adjacency))
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (N, N) matrix, got {tuple(a.shape)}")
    if a.is_sparse:
        a = a.coalesce()
        rows, cols = a.indices()
        weights = a.values().double()
        keep = weights != 0
        return rows[keep], cols[keep], weights[keep]
    rows, cols = torch.nonzero(a, as_tuple=True)
    return rows, cols, a[rows, cols].double()


def to_networkx(adjacency, labels=None) -> nx.Graph:
    """An undirected ``networkx.Graph`` with nodes ``0..N-1`` and edge attribute ``weight``.

    With ``labels`` (length N), each node gets the attribute ``label``. Equivalent to
    ``nx.from_numpy_array`` on the dense matrix, without building it.
    """
    n = adjacency.shape[0]
    rows, cols, weights = edge_list(adjacency)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    upper = rows <= cols
    graph.add_weighted_edges_from(zip(rows[upper].tolist(), cols[upper].tolist(),
                                      weights[upper].tolist()))
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != n:
            raise ValueError(f"labels has length {len(labels)}, expected N={n}")
        nx.set_node_attributes(graph, {i: labels[i].item() for i in range(n)}, "label")
    return graph
