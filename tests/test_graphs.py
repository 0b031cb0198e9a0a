"""kNN graph and cosine similarity against brute-force references."""

import heapq

import networkx as nx
import numpy as np
import pytest
import scipy.sparse
import torch

from modlib import graphs


def brute_force_knn(features: np.ndarray, k: int) -> np.ndarray:
    """The original recipe (paper A's released code): dense S, heapq per row, (A + Aᵀ)/2."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-8)
    return _directed_top_k_reference(x @ x.T, k)


@pytest.mark.parametrize("n,d,k", [(10, 3, 1), (57, 8, 3), (200, 16, 5), (301, 4, 11)])
@pytest.mark.parametrize("block_size", [7, 64, 1024])
def test_knn_graph_equals_brute_force(n, d, k, block_size):
    rng = np.random.default_rng(n * 1000 + k)
    features = rng.standard_normal((n, d))               # float64: exact comparison
    expected = brute_force_knn(features, k)
    got = graphs.knn_graph(features, k, block_size=block_size, dense=True).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_knn_graph_is_sparse_symmetric_without_self_loops():
    features = torch.randn(120, 10)
    adjacency = graphs.knn_graph(features, 4)
    assert adjacency.is_sparse and adjacency.shape == (120, 120)
    dense = adjacency.to_dense()
    assert torch.equal(dense, dense.T)
    assert torch.all(torch.diagonal(dense) == 0)
    undirected_edges = int((dense != 0).sum()) // 2
    assert 120 * 4 / 2 <= undirected_edges <= 120 * 4
    # a mutual pair keeps S_ij, a one-way pair gets S_ij / 2
    s = graphs.cosine_similarity(features)
    i, j = torch.nonzero(dense)[0]
    assert torch.isclose(dense[i, j], s[i, j]) or torch.isclose(dense[i, j], s[i, j] / 2)


def test_ties_go_to_the_lower_index():
    # node 0 is equally similar (cos = 1) to nodes 1..5: k=2 must pick 1 and 2, as heapq does
    features = np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 3)
    expected = brute_force_knn(features, 2)
    for block_size in (1, 4, 100):
        got = graphs.knn_graph(features, 2, block_size=block_size, dense=True).numpy()
        np.testing.assert_array_equal(got, expected)
    directed_row0 = np.flatnonzero(expected[0])
    assert set(directed_row0[:2]) == {1, 2}


def test_all_zero_rows_get_no_edges_of_their_own():
    features = np.random.default_rng(0).random((30, 5)) + 0.1   # positive: all cosines > 0
    features[[3, 17]] = 0.0
    adjacency = graphs.knn_graph(features, 3, dense=True).numpy()
    np.testing.assert_array_equal(adjacency[3], 0)
    np.testing.assert_array_equal(adjacency[17], 0)
    np.testing.assert_allclose(adjacency, brute_force_knn(features, 3), atol=1e-7)


def test_from_similarity_matches_features():
    features = torch.randn(80, 6, dtype=torch.float64)
    s = graphs.cosine_similarity(features)
    for k in (1, 3, 7):
        assert torch.equal(graphs.knn_graph_from_similarity(s, k, dense=True),
                           graphs.knn_graph(features, k, dense=True))


def test_cosine_similarity_values():
    features = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [-3.0, 0.0]])
    s = graphs.cosine_similarity(features, zero_diagonal=False)
    r = 2 ** -0.5
    expected = torch.tensor([[1, r, 0, -1], [r, 1, r, -r], [0, r, 1, 0], [-1, -r, 0, 1.0]])
    torch.testing.assert_close(s, expected)
    assert torch.all(torch.diagonal(graphs.cosine_similarity(features)) == 0)


def test_to_networkx_matches_from_numpy_array():
    adjacency = graphs.knn_graph(torch.randn(40, 5, dtype=torch.float64), 3)
    ours = graphs.to_networkx(adjacency)
    reference = nx.from_numpy_array(adjacency.to_dense().numpy())
    assert sorted(ours.edges(data="weight")) == sorted(reference.edges(data="weight"))


@pytest.mark.parametrize("k,message", [(0, "k=0"), (50, "k=50 is not allowed: must be < number "
                                                          "of samples N=50"), (-1, "k=-1")])
def test_bad_k_is_refused(k, message):
    with pytest.raises(ValueError, match=message):
        graphs.knn_graph(torch.randn(50, 3), k)


def test_bad_features_are_refused():
    features = torch.randn(20, 3)
    features[4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first rows: \[4\]\)"):
        graphs.knn_graph(features, 2)
    with pytest.raises(ValueError, match="2-D"):
        graphs.knn_graph(torch.randn(20), 2)
    with pytest.raises(TypeError, match="k=2.5 must be an integer"):
        graphs.knn_graph(torch.randn(20, 3), 2.5)
    with pytest.raises(ValueError, match="square"):
        graphs.knn_graph_from_similarity(torch.randn(5, 4), 2)


@pytest.mark.parametrize("scale", [1e20, 1e-30, 3e37])
def test_cosine_similarity_is_scale_free(scale):
    """Finite float32 features of any magnitude give the same cosines and the same graph (the
    row norms of 1e20-sized rows overflow float32, those of 1e-30-sized ones underflow)."""
    features = torch.randn(60, 16)
    reference = torch.from_numpy(
        brute_force_knn(features.double().numpy(), 3)).float()
    scaled = features * scale
    assert torch.isfinite(scaled).all()
    s = graphs.cosine_similarity(scaled)
    torch.testing.assert_close(s, graphs.cosine_similarity(features), atol=1e-6, rtol=0)
    assert s.abs().max() > 0.5                             # not the empty answer
    got = graphs.knn_graph(scaled, 3, dense=True)
    assert torch.equal(got != 0, reference != 0)
    torch.testing.assert_close(got, reference, atol=1e-6, rtol=0)


def test_tiny_rows_are_normalised_and_zero_rows_stay_zero():
    x = torch.tensor([[3e-9, 4e-9], [3.0, 4.0], [0.0, 0.0]], dtype=torch.float64)
    s = graphs.cosine_similarity(x, zero_diagonal=False)
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
                            dtype=torch.float64)
    torch.testing.assert_close(s, expected, atol=1e-15, rtol=0)


def test_feature_kinds():
    rng = np.random.default_rng(4)
    features = rng.standard_normal((30, 6))
    expected = graphs.knn_graph(features, 3, dense=True)
    sparse = scipy.sparse.csr_matrix(features)
    assert torch.equal(graphs.knn_graph(sparse, 3, dense=True), expected)
    assert torch.equal(graphs.knn_graph(torch.from_numpy(features).to_sparse(), 3, dense=True),
                       expected)
    for dtype in (np.complex64, np.complex128):
        with pytest.raises(TypeError, match=f"features must be real numbers, got complex dtype "
                                            f"torch.{np.dtype(dtype).name}"):
            graphs.knn_graph(features.astype(dtype), 3)
    with pytest.raises(TypeError, match="complex"):
        graphs.cosine_similarity(torch.randn(5, 3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="features must be a numeric .* got ndarray"):
        graphs.knn_graph(np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object), 1)


def test_adjacency_kinds():
    adjacency = graphs.knn_graph(torch.randn(25, 4, dtype=torch.float64), 3)
    dense = adjacency.to_dense().numpy()
    reference = sorted(nx.from_numpy_array(dense).edges(data="weight"))
    for matrix in (scipy.sparse.csr_matrix(dense), scipy.sparse.coo_array(dense), dense,
                   dense.tolist(), adjacency.to_sparse_csr()):
        assert sorted(graphs.to_networkx(matrix).edges(data="weight")) == reference
    rows, cols, weights = graphs.edge_list(scipy.sparse.csr_matrix(dense))
    assert len(rows) == int((dense != 0).sum())
    np.testing.assert_array_equal(weights.numpy(), dense[rows.numpy(), cols.numpy()])
    with pytest.raises(ValueError, match=r"square \(N, N\) matrix, got \(3, 4\)"):
        graphs.edge_list(scipy.sparse.csr_matrix(np.ones((3, 4))))


def _directed_top_k_reference(s: np.ndarray, k: int) -> np.ndarray:
    """Paper A's steps 3-4 on a given similarity matrix, heapq per row, in its own dtype."""
    s = s.copy()
    np.fill_diagonal(s, 0.0)
    directed = np.zeros_like(s)
    for i, row in enumerate(s):
        for j in heapq.nlargest(k, range(len(row)), key=row.__getitem__):
            directed[i, j] = row[j]
    return (directed + directed.T) / 2


@pytest.mark.parametrize("n,d,k,block_size", [(300, 64, 5, 64), (257, 33, 7, 100),
                                              (400, 512, 3, 1024)])
def test_ordinary_float32_weights_equal_plain_normalise_then_multiply_bit_for_bit(
        n, d, k, block_size):
    """For ordinary float32 features the tiled engine gives the weights of plain row
    normalisation followed by one matrix product, bit for bit (a mutual pair S_ij, a one-way
    pair S_ij / 2: both exact in float32)."""
    torch.manual_seed(n + d)
    features = torch.randn(n, d).relu() * 3.0            # post-ReLU-like, some zero entries
    plain = features / features.norm(dim=1, keepdim=True)
    assert torch.equal(graphs.normalise_rows(features), plain)
    s = (plain @ plain.T).numpy()
    expected = _directed_top_k_reference(s, k)
    assert expected.dtype == np.float32
    got = graphs.knn_graph(features, k, block_size=block_size, dense=True)
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), expected)
    assert torch.equal(graphs.cosine_similarity(features), torch.from_numpy(
        np.where(np.eye(n, dtype=bool), np.float32(0), s)))


def test_only_rows_that_overflow_or_underflow_take_the_rescaling_path():
    torch.manual_seed(1)
    features = torch.randn(40, 16)
    features[5] *= 1e20          # ‖x‖² overflows float32: the plain norm is inf
    features[9] *= 1e-30         # squares underflow: the plain norm is 0 or lost digits
    features[12] = 0.0
    plain = features / features.norm(dim=1, keepdim=True)
    assert torch.all(plain[5] == 0) and torch.isinf(plain[9]).all()   # x / inf, x / 0
    got = graphs.normalise_rows(features)
    ordinary = torch.ones(40, dtype=torch.bool)
    ordinary[[5, 9, 12]] = False
    assert torch.equal(got[ordinary], plain[ordinary])               # bit for bit
    reference = features.double() / features.double().norm(dim=1, keepdim=True)
    torch.testing.assert_close(got[[5, 9]].double(), reference[[5, 9]], atol=1e-7, rtol=0)
    assert torch.all(got[12] == 0)
    # the graph of such mixed features is the float64 graph
    expected = _directed_top_k_reference((reference @ reference.T).nan_to_num().numpy(), 3)
    np.testing.assert_allclose(graphs.knn_graph(features, 3, dense=True).numpy(), expected,
                               atol=1e-6, rtol=0)


def test_engine_is_device_agnostic_on_the_meta_device():
    """The normalisation and the tiles have no data-dependent branch: on the meta device
    (shapes and dtypes only) they run and keep shape, dtype and device."""
    x = torch.empty(70, 9, device="meta")
    x_hat = graphs.normalise_rows(x)
    assert x_hat.device.type == "meta" and x_hat.shape == (70, 9) and x_hat.dtype == x.dtype
    tiles = list(graphs.similarity_tiles(x_hat, 32))
    assert [(i, j, tuple(t.shape)) for i, j, t in tiles] == [
        (0, 0, (32, 32)), (0, 32, (32, 32)), (0, 64, (32, 6)), (32, 32, (32, 32)),
        (32, 64, (32, 6)), (64, 64, (6, 6))]
    assert all(t.device.type == "meta" for _, _, t in tiles)


def test_intra_class_weight_by_hand():
    # path 0-1-2-3 with weights 1, 2, 3; classes {0, 1} and {2, 3}: same-class weight 1 + 3 of 6
    a = torch.zeros(4, 4, dtype=torch.float64)
    for i, j, w in [(0, 1, 1.0), (1, 2, 2.0), (2, 3, 3.0)]:
        a[i, j] = a[j, i] = w
    rows, cols, weights = graphs.edge_list(a)
    share = graphs.intra_class_weight(rows, cols, weights, torch.tensor([0, 0, 1, 1]))
    assert float(share) == pytest.approx(4 / 6, abs=1e-15)
    assert float(graphs.intra_class_weight(rows, cols, weights, torch.tensor([0, 1, 0, 1]))) == 0
