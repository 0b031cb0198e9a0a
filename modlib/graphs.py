"""Relationship graphs of samples: cosine similarity and paper A's kNN graph (Lu et al., ECCV
2022, arXiv 2111.12485, and its code): normalise rows, ``S = X̂ X̂ᵀ`` with a zero diagonal, keep
each row's ``k`` largest entries (ties to the lower column), symmetrise by averaging.
Method: ``docs/modularity_curves.md`` (steps 1–3) and ``docs/similarity_graphs.md``.
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx
import numpy as np
import scipy.sparse
import torch

from .checks import check_int


def as_features(features, name: str = "features") -> torch.Tensor:
    """``(N, D)`` features as a dense float tensor (float64 kept, integers to float32).

    Raises:
        TypeError: complex numbers (the message names the dtype), or not numbers at all.
        ValueError: not 2-D, fewer than 2 rows, no columns, or NaN / infinite entries.
    """
    if scipy.sparse.issparse(features):
        features = features.toarray()
    try:
        f = torch.as_tensor(features)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be a numeric (N, D) array or tensor, got "
                        f"{type(features).__name__} ({error})") from None
    if f.layout != torch.strided:
        f = f.to_dense()
    if f.is_complex():
        raise TypeError(f"{name} must be real numbers, got complex dtype {f.dtype}: take "
                        ".real, .imag or .abs() explicitly")
    if f.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {tuple(f.shape)}")
    if f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"{name} must have N >= 2 rows and D >= 1 columns, got {tuple(f.shape)}")
    if not f.is_floating_point():
        f = f.float()
    bad = ~torch.isfinite(f)
    if bad.any():
        rows = torch.nonzero(bad.any(1)).flatten()[:5].tolist()
        raise ValueError(f"{name} contain {int(bad.sum())} NaN or infinite values "
                         f"(first rows: {rows})")
    return f


def as_similarity(similarity) -> torch.Tensor:
    """A precomputed ``(N, N)`` similarity matrix as a float tensor.

    Raises:
        TypeError: complex or non-numeric entries.
        ValueError: not square, N < 2, or NaN / infinite entries.
    """
    s = as_features(similarity, "similarity")
    if s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be a square (N, N) matrix, got {tuple(s.shape)}")
    return s


def _check_k(k, n: int) -> int:
    """``k`` neighbours for ``n`` samples: an integer with ``1 <= k < n``."""
    k = check_int("k", k, low=1)
    if k >= n:
        raise ValueError(f"k={k} is not allowed: must be < number of samples N={n}")
    return k


def normalise_rows(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm, ``x̂_i = x_i / ‖x_i‖₂``; all-zero rows stay zero.

    Plain division bit for bit, except rows whose norm overflows or is below ``tiny^(1/4)``:
    those are first divided by their largest absolute entry (``docs/modularity_curves.md``).
    """
    norm = features.norm(dim=1, keepdim=True)
    plain = torch.isfinite(norm) & (norm >= torch.finfo(features.dtype).tiny ** 0.25)
    one = torch.ones_like(norm)
    scale = features.abs().amax(dim=1, keepdim=True)
    scaled = features / torch.where(scale > 0, scale, one)
    scaled_norm = scaled.norm(dim=1, keepdim=True)      # >= 1 for any non-zero row
    rescaled = scaled / torch.where(scaled_norm > 0, scaled_norm, one)
    return torch.where(plain, features / torch.where(plain, norm, one), rescaled)


def cosine_similarity(features, zero_diagonal: bool = True) -> torch.Tensor:
    """Dense cosine similarity ``S = X̂ X̂ᵀ`` of the rows of ``features``: an ``(N, N)`` tensor
    in their float dtype, in [-1, 1]; ``S_ii = 0`` if ``zero_diagonal`` (as paper A's code).

    Raises:
        ValueError, TypeError: see :func:`as_features`.

    Introduced in notebook 02_similarity_histograms.
    """
    x = normalise_rows(as_features(features))
    s = x @ x.T
    if zero_diagonal:
        s.fill_diagonal_(0.0)
    return s


def similarity_tiles(x: torch.Tensor, block_size: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(i0, j0, S[i0:i0 + b, j0:j0 + b])`` for the tiles of ``S = x xᵀ`` on and above
    the block diagonal (``i0 == j0``: a diagonal tile); each tile is a fresh tensor."""
    for i in range(0, len(x), block_size):
        rows = x[i:i + block_size]
        for j in range(i, len(x), block_size):
            yield i, j, rows @ x[j:j + block_size].T


def symmetric_adjacency(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int,
                        dense: bool = False) -> torch.Tensor:
    """The symmetric ``(N, N)`` matrix with ``A_ij = A_ji =`` the sum of ``values`` listed for
    the pair ``{i, j}`` in either direction; pairs summing to 0 are no edges. Paper A's
    ``(A_dir + A_dirᵀ) / 2`` is this with ``values / 2``. Returns torch sparse COO (coalesced),
    or dense with ``dense=True``, in ``values``' dtype and on its device."""
    device = values.device
    rows, cols, values = rows.cpu(), cols.cpu(), values.cpu()
    lo, hi = torch.minimum(rows, cols), torch.maximum(rows, cols)
    keys, inverse = np.unique((lo * n + hi).numpy(), return_inverse=True)
    summed = torch.zeros(len(keys), dtype=values.dtype).index_add_(
        0, torch.from_numpy(inverse.reshape(-1)), values)
    keep = summed != 0
    keys, summed = torch.from_numpy(keys)[keep], summed[keep]
    lo, hi = keys // n, keys % n
    off = lo != hi                                      # a self-loop is listed once
    both_rows, both_cols = torch.cat([lo, hi[off]]), torch.cat([hi, lo[off]])
    both_values = torch.cat([summed, summed[off]])
    order = torch.from_numpy(np.argsort((both_rows * n + both_cols).numpy(), kind="stable"))
    adjacency = torch.sparse_coo_tensor(torch.stack([both_rows[order], both_cols[order]]),
                                        both_values[order], (n, n), check_invariants=False,
                                        is_coalesced=True).to(device)
    return adjacency.to_dense() if dense else adjacency


def _top_k(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, columns)``, both ``(B, k)``: each row's ``k`` largest entries, ties to the
    lower column (rows tied at the cut are redone with a stable sort)."""
    values, columns = s.topk(min(k + 1, s.shape[1]), dim=1)
    if values.shape[1] <= k:                    # every column taken: no cut to be tied at
        return values, columns
    crowded = values[:, k - 1] == values[:, k]
    values, columns = values[:, :k].contiguous(), columns[:, :k].contiguous()
    if crowded.any():
        order = torch.sort(s[crowded], dim=1, descending=True, stable=True).indices[:, :k]
        columns[crowded] = order
        values[crowded] = s[crowded].gather(1, order)
    return values, columns


def _merge_top_k(values_a, columns_a, values_b, columns_b, k: int):
    """Top ``k`` of two candidate lists per row, ties to the lower column."""
    values = torch.cat([values_a, values_b], dim=1)
    columns = torch.cat([columns_a, columns_b], dim=1)
    by_column = columns.argsort(dim=1)
    values, columns = values.gather(1, by_column), columns.gather(1, by_column)
    by_value = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return values.gather(1, by_value), columns.gather(1, by_value)


def knn_graph(features, k: int, block_size: int = 1024, dense: bool = False) -> torch.Tensor:
    """Paper A's symmetrised, weighted kNN graph of the cosine similarities of ``(N, D)``
    features, ``1 <= k < N``, computed in tiles (memory ``O(block_size² + N·k)``): a symmetric
    ``(N, N)`` adjacency without self-loops, sparse COO (coalesced) or ``dense``, on the
    features' device, ``A_ij = S_ij`` for mutual neighbours, ``S_ij / 2`` for one-way ones.

    Raises:
        ValueError: bad features (see :func:`as_features`) or ``k`` outside ``[1, N)``.
        TypeError: complex features, or a non-integer ``k``.

    Introduced in notebook 05_modularity_curves.
    """
    x = as_features(features)
    n = len(x)
    k = _check_k(k, n)
    block_size = check_int("block_size", block_size, low=1)
    best_values = torch.full((n, k), -torch.inf, dtype=x.dtype, device=x.device)
    best_columns = torch.full((n, k), n, dtype=torch.long, device=x.device)

    def update(rows: slice, tile: torch.Tensor, column_offset: int) -> None:
        values, columns = _top_k(tile, min(k, tile.shape[1]))
        best_values[rows], best_columns[rows] = _merge_top_k(
            best_values[rows], best_columns[rows], values, columns + column_offset, k)

    for i0, j0, tile in similarity_tiles(normalise_rows(x), block_size):
        if i0 == j0:
            tile.fill_diagonal_(0.0)            # ignore self-similarity, as the paper's code
        update(slice(i0, i0 + tile.shape[0]), tile, j0)
        if i0 != j0:
            update(slice(j0, j0 + tile.shape[1]), tile.T.contiguous(), i0)
    rows = torch.arange(n, device=x.device).repeat_interleave(k)
    return symmetric_adjacency(rows, best_columns.flatten(), best_values.flatten() / 2, n, dense)


def knn_graph_from_similarity(similarity, k: int, dense: bool = False) -> torch.Tensor:
    """:func:`knn_graph` for a precomputed ``(N, N)`` similarity matrix (diagonal ignored).
    Raises ``ValueError`` for a non-square matrix, NaN entries or ``k`` outside ``[1, N)``."""
    s = as_similarity(similarity).clone()
    n = len(s)
    k = _check_k(k, n)
    s.fill_diagonal_(0.0)
    values, columns = _top_k(s, k)
    rows = torch.arange(n, device=s.device).repeat_interleave(k)
    return symmetric_adjacency(rows, columns.flatten(), values.flatten() / 2, n, dense)


def as_adjacency(adjacency) -> torch.Tensor:
    """A square ``(N, N)`` adjacency as a torch tensor: dense stays dense, torch or SciPy sparse
    becomes coalesced sparse COO.

    Raises:
        TypeError: complex or non-numeric weights (the message names the dtype).
        ValueError: not a square 2-D matrix.
    """
    if scipy.sparse.issparse(adjacency):
        coo = scipy.sparse.coo_matrix(adjacency)
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        a = torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data),
                                    coo.shape, check_invariants=True).coalesce()
    elif isinstance(adjacency, torch.Tensor):
        a = adjacency
    else:
        try:
            a = torch.as_tensor(np.asarray(adjacency))
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"adjacency must be a numeric (N, N) matrix, got "
                            f"{type(adjacency).__name__} ({error})") from None
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (N, N) matrix, got {tuple(a.shape)}")
    if a.is_complex():
        raise TypeError(f"adjacency must have real weights, got complex dtype {a.dtype}")
    return a if a.layout in (torch.strided, torch.sparse_coo) else a.to_sparse_coo()  # CSR, CSC


def edge_list(adjacency) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, cols, float64 weights)`` of every non-zero entry of an adjacency (both directions
    of an undirected edge)."""
    a = as_adjacency(adjacency)
    if a.is_sparse:
        a = a.coalesce()
        rows, cols = a.indices()
        weights = a.values().double()
        keep = weights != 0
        return rows[keep], cols[keep], weights[keep]
    rows, cols = torch.nonzero(a, as_tuple=True)
    return rows, cols, a[rows, cols].double()


def intra_class_weight(rows: torch.Tensor, cols: torch.Tensor, weights: torch.Tensor,
                       classes: torch.Tensor) -> torch.Tensor:
    """``P_intra``, the first term of ``Q = Σ_c (e_c − a_c²)`` (``docs/modularity_curves.md``):
    the share of the total weight of an edge list (as :func:`edge_list` gives it) that joins two
    nodes of the same class, ``classes`` ``(N,)`` integers on its device. Returns a 0-dim
    float64 tensor (NaN for a total weight of 0: callers check first).

    Introduced in notebook 05_modularity_curves.
    """
    return weights[classes[rows] == classes[cols]].sum() / weights.sum()


def to_networkx(adjacency) -> nx.Graph:
    """An undirected ``networkx.Graph`` with nodes ``0..N-1`` and edge attribute ``weight``."""
    adjacency = as_adjacency(adjacency)
    rows, cols, weights = edge_list(adjacency)
    graph = nx.Graph()
    graph.add_nodes_from(range(adjacency.shape[0]))
    upper = rows <= cols
    graph.add_weighted_edges_from(zip(rows[upper].tolist(), cols[upper].tolist(),
                                      weights[upper].tolist()))
    return graph
