"""Paper B's dense relationship graph (which builds on paper A, arXiv 2111.12485): its similarity
histogram and its sparsifications by threshold or top fraction, read tile by tile. Method and our
choices where paper B is silent: ``docs/similarity_graphs.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
from scipy.sparse.csgraph import connected_components

from .checks import check_float, check_int
from .data import class_indices
from .graphs import (as_adjacency, as_features, as_similarity, edge_list, intra_class_weight,
                     normalise_rows, similarity_tiles, symmetric_adjacency)


def _feature_tiles(features, block_size: int):
    """``(N, tiles)`` of the features' cosine similarities, every pair once."""
    x = as_features(features)
    block_size = check_int("block_size", block_size, low=1)
    return len(x), similarity_tiles(normalise_rows(x), block_size)


def _similarity_tiles(similarity):
    """A precomputed ``(N, N)`` similarity matrix as one diagonal "tile"."""
    s = as_similarity(similarity)
    return len(s), [(0, 0, s)]


def _pairs(i0: int, j0: int, tile: torch.Tensor, keep: torch.Tensor):
    """``(rows, cols, values)`` of ``tile`` where ``keep`` holds, in global indices, every pair
    once (``i < j`` in a diagonal tile)."""
    r, c = torch.nonzero(keep.triu(1) if i0 == j0 else keep, as_tuple=True)
    return r + i0, c + j0, tile[r, c]


def _check_tau(tau) -> float:
    return check_float("tau", tau, low=-1.0, high=1.0)


def _threshold(tau: float, n: int, tiles, dense: bool) -> torch.Tensor:
    found = [_pairs(i0, j0, tile, tile >= tau) for i0, j0, tile in tiles]
    rows, cols, values = (torch.cat(parts) for parts in zip(*found))
    return symmetric_adjacency(rows, cols, values, n, dense)


def threshold_graph(features, tau: float, block_size: int = 1024,
                    dense: bool = False) -> torch.Tensor:
    """Paper B's "important relationship subgraph" by a global threshold: ``A_ij = S_ij`` if
    ``S_ij >= tau`` (``tau`` in ``[-1, 1]``; ``S_ij = 0`` is never an edge) for ``(N, D)``
    features, read in tiles (memory ``O(block_size² + kept edges)``): a symmetric ``(N, N)``
    adjacency without self-loops, sparse COO (coalesced) or ``dense``.

    Raises:
        ValueError: bad features (:func:`modlib.graphs.as_features`) or ``tau`` outside [-1, 1].
        TypeError: ``tau`` is not a number.
    """
    return _threshold(_check_tau(tau), *_feature_tiles(features, block_size), dense)


def threshold_graph_from_similarity(similarity, tau: float, dense: bool = False) -> torch.Tensor:
    """:func:`threshold_graph` for a precomputed symmetric ``(N, N)`` similarity matrix. Raises
    ``ValueError`` for a non-square matrix, NaN entries or ``tau`` outside ``[-1, 1]``."""
    return _threshold(_check_tau(tau), *_similarity_tiles(similarity), dense)


def _top_fraction(p, n: int, tiles, dense: bool) -> torch.Tensor:
    p = check_float("p", p, low=0.0, high=1.0, low_open=True)
    n_pairs = n * (n - 1) // 2
    # ceil(p · N(N-1)/2), forgiving float error (0.07 * 100 = 7.000000000000001 must give 7)
    m = max(1, min(n_pairs, math.ceil(p * n_pairs - 1e-9)))
    values, keys = None, np.empty(0, dtype=np.int64)    # keys i * N + j order pairs as (i, j)
    for i0, j0, tile in tiles:
        full = values is not None and len(values) == m    # only ties or better can enter
        keep = tile >= float(values[-1]) if full else torch.ones(tile.shape, dtype=torch.bool)
        rows, cols, new = _pairs(i0, j0, tile, keep)
        values = new.numpy() if values is None else np.concatenate([values, new.numpy()])
        keys = np.concatenate([keys, (rows * n + cols).numpy()])
        best = np.lexsort((keys, -values))[:m]          # by value descending, then by (i, j)
        values, keys = values[best], keys[best]
    keys = torch.from_numpy(keys)
    return symmetric_adjacency(keys // n, keys % n, torch.from_numpy(values), n, dense)


def top_fraction_graph(features, p: float, block_size: int = 1024,
                       dense: bool = False) -> torch.Tensor:
    """Paper B's "important relationship subgraph" as the ``m = ceil(p · N(N-1)/2)`` most similar
    pairs of ``(N, D)`` features, ``p`` in ``(0, 1]``, ties to the lower pair (our per-layer
    quantile rule); read in tiles, memory ``O(block_size² + m)``. Returns a symmetric ``(N, N)``
    adjacency without self-loops, sparse COO (coalesced) or ``dense``, with ``m`` edges of weight
    ``S_ij`` (minus any of weight 0).

    Raises:
        ValueError: bad features (:func:`modlib.graphs.as_features`) or ``p`` outside (0, 1].
        TypeError: ``p`` is not a number.
    """
    return _top_fraction(p, *_feature_tiles(features, block_size), dense)


def top_fraction_graph_from_similarity(similarity, p: float, dense: bool = False) -> torch.Tensor:
    """:func:`top_fraction_graph` for a precomputed symmetric ``(N, N)`` similarity matrix.
    Raises ``ValueError`` for a non-square matrix, NaN entries or ``p`` outside ``(0, 1]``."""
    return _top_fraction(p, *_similarity_tiles(similarity), dense)


@dataclass(frozen=True)
class SimilarityHistogram:
    """Counts of the pairwise cosine similarities, split by class agreement: ``(bins,)`` int64
    ``intra`` and ``inter`` on ``(bins + 1,)`` ``edges`` over ``[-1, 1]``, and the exact sums
    ``intra_sum``, ``inter_sum`` of ``S_ij`` over each group.
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

    def fraction_at_least(self, tau: float) -> float:
        """Fraction of the pairs with ``S_ij >= tau``; exact when ``tau`` is a bin edge.

        Raises:
            ValueError: ``tau`` is not one of ``edges`` (within 1e-9).
        """
        tau = _check_tau(tau)
        b = int(np.argmin(np.abs(self.edges - tau)))
        if abs(self.edges[b] - tau) > 1e-9:
            raise ValueError(f"tau={tau!r} is not allowed: must be a bin edge (multiples of "
                             f"{self.edges[1] - self.edges[0]:g} from -1)")
        return float(self.counts[b:].sum() / self.n_pairs)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile of ``S_ij``, linearly interpolated inside its bin: accurate to one
        bin width. ``q = 0`` gives the lower edge of the first non-empty bin, ``q = 1`` the upper
        edge of the last one.

        Raises:
            ValueError: ``q`` outside ``[0, 1]``.
        """
        q = check_float("q", q, low=0.0, high=1.0)
        counts = self.counts
        cumulative = np.cumsum(counts) / counts.sum()
        if q == 0:
            return float(self.edges[np.flatnonzero(counts)[0]])
        b = min(int(np.searchsorted(cumulative, q, side="left")), len(counts) - 1)
        below = cumulative[b - 1] if b else 0.0
        inside = (q - below) / (cumulative[b] - below)          # bin b is not empty here
        return float(self.edges[b] + inside * (self.edges[b + 1] - self.edges[b]))


def similarity_histogram(features, labels, bins: int = 100,
                         block_size: int = 1024) -> SimilarityHistogram:
    """Histogram of the ``N(N-1)/2`` cosine similarities of ``(N, D)`` features on ``bins`` equal
    bins of ``[-1, 1]``, split by ``(N,)`` ``labels``: a :class:`SimilarityHistogram` (paper
    B's first perspective; read in tiles, memory ``O(block_size² + bins)``).

    Raises:
        ValueError: bad features, labels of the wrong shape, or ``bins < 1``.
    """
    n, tiles = _feature_tiles(features, block_size)
    bins = check_int("bins", bins, low=1)
    y = class_indices(labels, n)
    counts = torch.zeros(2, bins, dtype=torch.long)      # intra, inter
    sums = [0.0, 0.0]
    for i0, j0, tile in tiles:
        same = y[i0:i0 + tile.shape[0], None] == y[None, j0:j0 + tile.shape[1]]
        index = ((tile.double() + 1) * (bins / 2)).floor_().long().clamp_(0, bins - 1)
        for slot, group in enumerate((same, ~same)):
            mask = group.triu(1) if i0 == j0 else group
            counts[slot] += torch.bincount(index[mask], minlength=bins)
            sums[slot] += float(tile[mask].double().sum())
    return SimilarityHistogram(np.linspace(-1.0, 1.0, bins + 1), *counts.numpy(), *sums)


def graph_stats(adjacency, labels=None) -> dict:
    """Size and connectivity of an undirected ``(N, N)`` graph (notebooks 03, 04):
    ``{"nodes", "edges", "components", "isolated", "largest_component"}`` (ints; an isolated node
    is a component), with ``(N,)`` ``labels`` also the shares of edges (``"intra_edges"``) and of
    edge weight (``"intra_weight"``) inside classes (NaN without edges).

    Raises:
        ValueError: non-square adjacency, or labels of the wrong length.
    """
    adjacency = as_adjacency(adjacency)
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
        y = class_indices(labels, n)
        r, c, w = rows[off_diagonal], cols[off_diagonal], weights[off_diagonal]
        stats["intra_edges"] = float((y[r] == y[c]).double().mean())     # NaN without edges
        stats["intra_weight"] = float(intra_class_weight(r, c, w, y))
    return stats
