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

Paper B's view (spec §4) starts from the *dense* relationship graph, every pair ``i < j`` with
weight ``S_ij``, and sparsifies it by similarity rather than by neighbour count:
:func:`threshold_graph` keeps pairs with ``S_ij >= tau``, :func:`top_fraction_graph` keeps the
most similar fraction ``p`` of all pairs. :func:`similarity_histogram` bins all ``N(N-1)/2``
similarities, split into intra- and inter-class pairs, and :func:`graph_stats` counts edges,
connected components and isolated nodes. All of them read ``S`` tile by tile, like
:func:`knn_graph`; the ``*_from_similarity`` variants take a precomputed ``S`` to sweep a rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse
import torch
from scipy.sparse.csgraph import connected_components

from .checks import check_choice, check_float, check_int


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


def as_similarity(similarity) -> torch.Tensor:
    """Validate a precomputed square ``(N, N)`` similarity matrix and return it as a tensor.

    Raises:
        ValueError: not square, N < 2, or NaN / infinite entries.
    """
    s = torch.as_tensor(similarity)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be a square (N, N) matrix, got {tuple(s.shape)}")
    return as_features(s, "similarity")


def _check_k(k, n: int) -> int:
    """``k`` neighbours for ``n`` samples: an integer with ``1 <= k < n``."""
    k = check_int("k", k, low=1)
    if k >= n:
        raise ValueError(f"k={k} is not allowed: must be < number of samples N={n}")
    return k


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
    ``torch.topk`` leaves that choice open, so rows whose k-th and (k+1)-th largest values are
    equal (a tie at the cut) are redone with a stable sort, which keeps equal values in column
    order.
    """
    values, columns = s.topk(min(k + 1, s.shape[1]), dim=1)
    if values.shape[1] > k:
        crowded = values[:, k - 1] == values[:, k]
        values, columns = values[:, :k].contiguous(), columns[:, :k].contiguous()
    else:
        crowded = torch.zeros(len(s), dtype=torch.bool)
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
    k = _check_k(k, n)
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
    s = as_similarity(similarity).clone()
    n = len(s)
    k = _check_k(k, n)
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


# --------------------------------------------------------------------------------------------
# Paper B: the dense relationship graph, its similarity histogram and its sparsifications


def _upper_tiles(x: torch.Tensor,
                 block_size: int) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor | None]]:
    """Tiles of ``S = x xᵀ`` (``x`` row-normalised) that cover every pair ``i < j`` once.

    Yields ``(row_offset, column_offset, tile, upper)``: ``tile`` is ``S[I, J]`` for blocks
    ``I <= J``; ``upper`` is the mask of entries with ``i < j`` on diagonal tiles and ``None``
    off the diagonal (where every entry has ``i < j``).
    """
    n = len(x)
    starts = range(0, n, block_size)
    for i in starts:
        rows = slice(i, min(i + block_size, n))
        for j in starts[starts.index(i):]:
            tile = x[rows] @ x[j:min(j + block_size, n)].T
            upper = (torch.ones(tile.shape, dtype=torch.bool).triu_(1) if i == j else None)
            yield i, j, tile, upper


def _similarity_tiles(similarity):
    """A precomputed ``(N, N)`` similarity matrix as one "tile" covering the pairs ``i < j``."""
    s = as_similarity(similarity)
    return len(s), [(0, 0, s, torch.ones(s.shape, dtype=torch.bool).triu_(1))]


def _feature_tiles(features, block_size: int):
    x = as_features(features)
    block_size = check_int("block_size", block_size, low=1)
    return len(x), _upper_tiles(normalize_rows(x), block_size)


def _pairs(i0: int, j0: int, tile: torch.Tensor, keep: torch.Tensor):
    """``(rows, cols, values)`` of the entries of ``tile`` where ``keep`` holds (global indices)."""
    r, c = torch.nonzero(keep, as_tuple=True)
    return r + i0, c + j0, tile[r, c]


def _undirected(rows, cols, values, n: int, dense: bool) -> torch.Tensor:
    """Symmetric ``(N, N)`` adjacency from pairs ``i < j`` with weight ``values`` (zeros dropped).

    The pairs are unique, so both directions are sorted once (NumPy's sort: torch's CPU sort
    and ``coalesce`` are ~10x slower) and the tensor is built as already coalesced.
    """
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    both_rows, both_cols = torch.cat([rows, cols]), torch.cat([cols, rows])
    order = torch.from_numpy(np.argsort((both_rows * n + both_cols).numpy(), kind="stable"))
    indices = torch.stack([both_rows[order], both_cols[order]])
    adjacency = torch.sparse_coo_tensor(indices, torch.cat([values, values])[order], (n, n),
                                        check_invariants=False, is_coalesced=True)
    return adjacency.to_dense() if dense else adjacency


def _check_tau(tau) -> float:
    return check_float("tau", tau, low=-1.0, high=1.0)


def _check_p(p) -> float:
    return check_float("p", p, low=0.0, high=1.0, low_open=True)


def _threshold(n: int, tiles, tau: float, dense: bool) -> torch.Tensor:
    found = []
    for i0, j0, tile, upper in tiles:
        keep = tile >= tau
        found.append(_pairs(i0, j0, tile, keep if upper is None else keep & upper))
    rows, cols, values = (torch.cat(parts) for parts in zip(*found))
    return _undirected(rows, cols, values, n, dense)


def threshold_graph(features, tau: float, block_size: int = 1024,
                    dense: bool = False) -> torch.Tensor:
    """Paper B's "important relationship subgraph" by a global similarity threshold (spec §4).

    Keeps every pair ``i != j`` whose cosine similarity reaches the threshold,
    ``A_ij = S_ij if S_ij >= tau else 0`` (notebook ``03_graph_sparsification``). ``S`` is read
    in ``block_size × block_size`` tiles above the diagonal, so memory is
    ``O(block_size² + kept edges)``. A pair with ``S_ij = 0`` exactly (e.g. an all-zero feature
    vector) is no edge even when ``tau <= 0``; with ``tau < 0`` negative weights can be kept.

    Args:
        features: ``(N, D)`` array or tensor, one row per sample (float32; float64 is kept).
        tau: similarity threshold in ``[-1, 1]``.
        block_size: tile side.
        dense: return a dense ``(N, N)`` tensor instead of a sparse one.

    Returns:
        Symmetric adjacency without self-loops, ``(N, N)`` torch sparse COO (coalesced) or dense,
        with weight ``S_ij`` on each kept pair (not halved: every kept pair is mutual).

    Raises:
        ValueError: bad features (see :func:`as_features`) or ``tau`` outside ``[-1, 1]``.
        TypeError: ``tau`` is not a number.
    """
    tau = _check_tau(tau)
    n, tiles = _feature_tiles(features, block_size)
    return _threshold(n, tiles, tau, dense)


def threshold_graph_from_similarity(similarity, tau: float, dense: bool = False) -> torch.Tensor:
    """:func:`threshold_graph` for a precomputed ``(N, N)`` similarity matrix.

    Only the entries above the diagonal are read (``S`` is assumed symmetric). Raises
    ``ValueError`` for a non-square matrix, NaN entries or ``tau`` outside ``[-1, 1]``.
    """
    tau = _check_tau(tau)
    n, tiles = _similarity_tiles(similarity)
    return _threshold(n, tiles, tau, dense)


def _top_fraction(n: int, tiles, p: float, dense: bool) -> torch.Tensor:
    n_pairs = n * (n - 1) // 2
    # ceil(p · N(N-1)/2), forgiving float error (0.07 * 100 = 7.000000000000001 must give 7)
    m = max(1, min(n_pairs, math.ceil(p * n_pairs - 1e-9)))
    values, keys = None, np.empty(0, dtype=np.int64)    # keys i * N + j order pairs as (i, j)
    for i0, j0, tile, upper in tiles:
        keep = upper if upper is not None else torch.ones(tile.shape, dtype=torch.bool)
        if values is not None and len(values) == m:     # full: only ties or better can enter
            keep = keep & (tile >= float(values[-1]))
        rows, cols, new = _pairs(i0, j0, tile, keep)
        values = new.numpy() if values is None else np.concatenate([values, new.numpy()])
        keys = np.concatenate([keys, (rows * n + cols).numpy()])
        best = np.lexsort((keys, -values))[:m]          # by value descending, then by (i, j)
        values, keys = values[best], keys[best]
    keys = torch.from_numpy(keys)
    return _undirected(keys // n, keys % n, torch.from_numpy(values), n, dense)


def top_fraction_graph(features, p: float, block_size: int = 1024,
                       dense: bool = False) -> torch.Tensor:
    """Paper B's "important relationship subgraph" as the most similar fraction of all pairs.

    A per-layer quantile rule (spec §4, our choice for B's unknown threshold): of the
    ``N(N-1)/2`` pairs ``i < j``, keep the ``m = ceil(p · N(N-1)/2)`` with the largest cosine
    similarity ``S_ij``, as edges of weight ``S_ij``. Ties at the cut go to the lower pair
    ``(i, j)`` in lexicographic order, so the result is deterministic. Unlike a fixed threshold,
    the rule keeps the same number of edges at every layer, whatever the scale of ``S``.

    ``S`` is read in ``block_size × block_size`` tiles; a running candidate set of at most ``m``
    pairs is merged with each tile, so memory is ``O(block_size² + m)``. A kept pair with
    ``S_ij = 0`` exactly is no edge, so the graph can have fewer than ``m`` edges.

    Args:
        features: ``(N, D)`` array or tensor, one row per sample (float32; float64 is kept).
        p: fraction of pairs to keep, in ``(0, 1]`` (``p = 1`` keeps the dense graph).
        block_size: tile side.
        dense: return a dense ``(N, N)`` tensor instead of a sparse one.

    Returns:
        Symmetric adjacency without self-loops, ``(N, N)`` torch sparse COO (coalesced) or dense,
        with ``m`` undirected edges of weight ``S_ij`` (minus any of weight 0).

    Raises:
        ValueError: bad features (see :func:`as_features`) or ``p`` outside ``(0, 1]``.
        TypeError: ``p`` is not a number.
    """
    p = _check_p(p)
    n, tiles = _feature_tiles(features, block_size)
    return _top_fraction(n, tiles, p, dense)


def top_fraction_graph_from_similarity(similarity, p: float, dense: bool = False) -> torch.Tensor:
    """:func:`top_fraction_graph` for a precomputed ``(N, N)`` similarity matrix.

    Only the entries above the diagonal are read (``S`` is assumed symmetric). Raises
    ``ValueError`` for a non-square matrix, NaN entries or ``p`` outside ``(0, 1]``.
    """
    p = _check_p(p)
    n, tiles = _similarity_tiles(similarity)
    return _top_fraction(n, tiles, p, dense)


@dataclass(frozen=True)
class SimilarityHistogram:
    """Counts of the pairwise cosine similarities of ``N`` samples, split by class agreement.

    Bin ``b`` holds the pairs with ``edges[b] <= S_ij < edges[b + 1]`` (the last bin includes
    ``S_ij = 1``), up to float rounding at the edges.

    Attributes:
        edges: ``(bins + 1,)`` float64 bin edges, equally spaced on ``[-1, 1]``.
        intra: ``(bins,)`` int64 counts of intra-class pairs (same label).
        inter: ``(bins,)`` int64 counts of inter-class pairs.
        intra_sum, inter_sum: exact sums of ``S_ij`` over each group (for exact means).
    """

    edges: np.ndarray
    intra: np.ndarray
    inter: np.ndarray
    intra_sum: float
    inter_sum: float

    @property
    def counts(self) -> np.ndarray:
        """``(bins,)`` counts of all pairs."""
        return self.intra + self.inter

    @property
    def n_pairs(self) -> int:
        """``N(N-1)/2``."""
        return int(self.counts.sum())

    @property
    def mean(self) -> float:
        """Exact mean of ``S_ij`` over all pairs."""
        return (self.intra_sum + self.inter_sum) / self.n_pairs

    @property
    def intra_mean(self) -> float:
        """Exact mean over intra-class pairs (NaN when there are none)."""
        total = int(self.intra.sum())
        return self.intra_sum / total if total else float("nan")

    @property
    def inter_mean(self) -> float:
        """Exact mean over inter-class pairs (NaN when there are none)."""
        total = int(self.inter.sum())
        return self.inter_sum / total if total else float("nan")

    def _counts(self, which: str) -> np.ndarray:
        check_choice("which", which, ("all", "intra", "inter"))
        return {"all": self.counts, "intra": self.intra, "inter": self.inter}[which]

    def fraction_at_least(self, tau: float, which: str = "all") -> float:
        """Fraction of the pairs (of ``which``: ``all``, ``intra`` or ``inter``) with
        ``S_ij >= tau``; exact when ``tau`` is a bin edge.

        Raises:
            ValueError: ``tau`` is not one of ``edges`` (within 1e-9), or an unknown ``which``.
        """
        tau = _check_tau(tau)
        b = int(np.argmin(np.abs(self.edges - tau)))
        if abs(self.edges[b] - tau) > 1e-9:
            raise ValueError(f"tau={tau!r} is not allowed: must be a bin edge (multiples of "
                             f"{self.edges[1] - self.edges[0]:g} from -1)")
        counts = self._counts(which)
        return float(counts[b:].sum() / counts.sum())

    def quantile(self, q: float, which: str = "all") -> float:
        """The ``q``-quantile of ``S_ij`` (``which``: ``all``, ``intra`` or ``inter``), linearly
        interpolated inside its bin: accurate to one bin width. ``q = 0`` gives the lower edge of
        the first non-empty bin, ``q = 1`` the upper edge of the last one.

        Raises:
            ValueError: ``q`` outside ``[0, 1]``, an unknown ``which``, or no pairs in the group.
        """
        q = check_float("q", q, low=0.0, high=1.0)
        counts = self._counts(which)
        if counts.sum() == 0:
            raise ValueError(f"no {which} pairs: the quantile is undefined")
        cumulative = np.cumsum(counts) / counts.sum()
        if q == 0:
            return float(self.edges[np.flatnonzero(counts)[0]])
        b = min(int(np.searchsorted(cumulative, q, side="left")), len(counts) - 1)
        below = cumulative[b - 1] if b else 0.0
        inside = (q - below) / (cumulative[b] - below)          # bin b is not empty here
        return float(self.edges[b] + inside * (self.edges[b + 1] - self.edges[b]))


def similarity_histogram(features, labels, bins: int = 100,
                         block_size: int = 1024) -> SimilarityHistogram:
    """Histogram of the ``N(N-1)/2`` cosine similarities ``S_ij, i < j`` of the dense graph.

    Paper B's first perspective (spec §4, item 3): one histogram per layer on bins shared by all
    layers, equally spaced on ``[-1, 1]``, split into intra-class pairs (``labels[i] ==
    labels[j]``) and inter-class pairs. ``S`` is read in tiles (memory ``O(block_size² + bins)``);
    nothing of size ``N²`` is kept (notebook ``02_similarity_histograms``).

    Args:
        features: ``(N, D)`` array or tensor.
        labels: ``(N,)`` integer class of each sample.
        bins: number of equal bins on ``[-1, 1]``, >= 1.
        block_size: tile side.

    Returns:
        A :class:`SimilarityHistogram`.

    Raises:
        ValueError: bad features, labels of the wrong shape, or ``bins < 1``.
    """
    n, tiles = _feature_tiles(features, block_size)
    bins = check_int("bins", bins, low=1)
    y = torch.as_tensor(np.asarray(labels))
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must have shape (N,) = ({n},), got {tuple(y.shape)}")
    intra = torch.zeros(bins, dtype=torch.long)
    inter = torch.zeros(bins, dtype=torch.long)
    sums = [0.0, 0.0]
    for i0, j0, tile, upper in tiles:
        same = y[i0:i0 + tile.shape[0], None] == y[None, j0:j0 + tile.shape[1]]
        index = ((tile.double() + 1) * (bins / 2)).floor_().long().clamp_(0, bins - 1)
        for group, counts, slot in ((same, intra, 0), (~same, inter, 1)):
            mask = group if upper is None else group & upper
            counts += torch.bincount(index[mask], minlength=bins)
            sums[slot] += float(tile[mask].double().sum())
    return SimilarityHistogram(np.linspace(-1.0, 1.0, bins + 1), intra.numpy(), inter.numpy(),
                               sums[0], sums[1])


def graph_stats(adjacency, labels=None) -> dict:
    """Size and connectivity of an undirected graph (notebooks 03, 04).

    Args:
        adjacency: symmetric ``(N, N)`` weights, dense or sparse torch tensor or NumPy array;
            zero entries are no edges.
        labels: optional ``(N,)`` classes; adds the intra-class shares.

    Returns:
        ``{"nodes", "edges", "components", "isolated", "largest_component"}`` (ints: undirected
        edges without self-loops, connected components counted by
        ``scipy.sparse.csgraph.connected_components`` with every isolated node a component of its
        own, nodes without edges, size of the largest component), and with ``labels`` also
        ``"intra_edges"`` (fraction of edges joining same-class nodes) and ``"intra_weight"``
        (``P_intra``, the fraction of edge weight inside classes, spec §6; NaN without edges).

    Raises:
        ValueError: non-square adjacency, or labels of the wrong length.
    """
    rows, cols, weights = edge_list(adjacency)
    n = adjacency.shape[0]
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows.numpy(), cols.numpy())),
                                    shape=(n, n)).tocsr()
    n_components, component = connected_components(graph, directed=False)
    degree = np.bincount(rows.numpy(), minlength=n)
    off_diagonal = rows != cols
    stats = {"nodes": int(n), "edges": int(off_diagonal.sum()) // 2,
             "components": int(n_components), "isolated": int((degree == 0).sum()),
             "largest_component": int(np.bincount(component).max())}
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != (n,):
            raise ValueError(f"labels must have shape (N,) = ({n},), got {y.shape}")
        r, c, w = rows[off_diagonal].numpy(), cols[off_diagonal].numpy(), weights[off_diagonal]
        same = torch.from_numpy(y[r] == y[c])
        stats["intra_edges"] = float(same.double().mean()) if len(r) else float("nan")
        stats["intra_weight"] = float(w[same].sum() / w.sum()) if len(r) else float("nan")
    return stats
