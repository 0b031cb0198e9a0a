"""Paper B's sparsifications of the dense graph (threshold, top fraction), the similarity
histogram and the graph statistics, against brute-force references and networkx."""

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse
import torch

from modlib import graphs, modularity, sparsification


def dense_similarity(features: np.ndarray) -> np.ndarray:
    """S = X̂ X̂ᵀ with NumPy, diagonal kept (the references below skip it themselves)."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-8)
    return x @ x.T


def brute_force_threshold(features: np.ndarray, tau: float) -> np.ndarray:
    s = dense_similarity(features)
    a = np.where(s >= tau, s, 0.0)
    np.fill_diagonal(a, 0.0)
    return a


def brute_force_top_fraction(features: np.ndarray, p: float) -> np.ndarray:
    """Sort all pairs i < j by (-S_ij, i, j) in Python and keep the first ceil(p·N(N-1)/2)."""
    s = dense_similarity(features)
    n = len(s)
    pairs = sorted(((i, j) for i in range(n) for j in range(i + 1, n)),
                   key=lambda ij: (-s[ij], ij[0], ij[1]))
    m = math.ceil(round(p * len(pairs), 9))
    a = np.zeros_like(s)
    for i, j in pairs[:m]:
        a[i, j] = a[j, i] = s[i, j]
    return a


def random_features(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d))     # float64: exact comparison


# (N, D, tile side): one tile per pair, ragged tiles, a single tile
SHAPES = [(9, 3, 1), (60, 5, 7), (203, 8, 16), (203, 8, 64), (203, 8, 1024)]


@pytest.mark.parametrize("n,d,block_size", SHAPES)
@pytest.mark.parametrize("tau", [-0.3, 0.0, 0.25, 0.6])
def test_threshold_graph_equals_brute_force(n, d, block_size, tau):
    features = random_features(n, d, seed=n + d)
    expected = brute_force_threshold(features, tau)
    got = sparsification.threshold_graph(features, tau, block_size=block_size, dense=True).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.array_equal(got != 0, expected != 0)
    # and the precomputed-similarity variant gives the same graph
    s = graphs.cosine_similarity(features)
    np.testing.assert_allclose(sparsification.threshold_graph_from_similarity(s, tau, dense=True).numpy(),
                               expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,d,block_size", SHAPES)
@pytest.mark.parametrize("p", [0.001, 0.02, 0.1, 0.5, 1.0])
def test_top_fraction_graph_equals_brute_force(n, d, block_size, p):
    features = random_features(n, d, seed=n * d)
    expected = brute_force_top_fraction(features, p)
    got = sparsification.top_fraction_graph(features, p, block_size=block_size, dense=True).numpy()
    assert np.array_equal(got != 0, expected != 0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    kept = int((got != 0).sum()) // 2
    assert kept == math.ceil(round(p * n * (n - 1) / 2, 9))
    s = graphs.cosine_similarity(features)
    from_s = sparsification.top_fraction_graph_from_similarity(s, p, dense=True).numpy()
    assert np.array_equal(from_s != 0, expected != 0)


def test_top_fraction_counts_and_cut():
    n = 100
    features = random_features(n, 6, seed=1)
    s = dense_similarity(features)[np.triu_indices(n, 1)]
    for p, m in [(0.01, 50), (0.07, 347), (0.0001, 1), (1.0, 4950)]:   # ceil(p · 4950)
        adjacency = sparsification.top_fraction_graph(features, p, dense=True).numpy()
        kept = adjacency[np.triu_indices(n, 1)]
        assert int((kept != 0).sum()) == m
        # every kept pair is at least as similar as every dropped one
        assert kept[kept != 0].min() >= s[kept == 0].max() if m < len(s) else True
    # p = 0.07: 0.07 * 4950 = 346.5 must round up, not down
    assert sparsification.graph_stats(sparsification.top_fraction_graph(features, 0.07))["edges"] == 347


def test_ties_go_to_the_lower_pair():
    # axis-aligned rows: every similarity is exactly 0 or 1 (or -1), so ties are everywhere
    axes = np.eye(3)
    scale = np.array([[1.0], [2], [3], [1], [5], [1], [2], [4]])
    features = axes[[0, 1, 0, 2, 1, 0, 2, 0]] * scale
    n = len(features)
    s = dense_similarity(features)
    ones = [(i, j) for i in range(n) for j in range(i + 1, n) if s[i, j] == 1]
    assert len(ones) == 6 + 1 + 1                                   # class 0: 4 rows, 1: 2, 2: 2
    p = 3 / (n * (n - 1) / 2)                                       # keep exactly three pairs
    for block_size in (1, 3, 100):
        adjacency = sparsification.top_fraction_graph(features, p, block_size=block_size, dense=True)
        kept = sorted(map(tuple, torch.nonzero(torch.triu(adjacency)).tolist()))
        assert kept == ones[:3] == [(0, 2), (0, 5), (0, 7)]
    # a threshold at exactly 1 keeps all tied pairs, and a threshold above every value keeps none
    assert sparsification.graph_stats(sparsification.threshold_graph(features, 1.0))["edges"] == len(ones)
    negative = np.array([[1.0, 0.0], [-1.0, 0.0], [-2.0, 0.0]])
    assert sparsification.graph_stats(sparsification.threshold_graph(negative, -1.0))["edges"] == 3
    assert sparsification.graph_stats(sparsification.threshold_graph(negative, -0.99))["edges"] == 1


def test_zero_rows_and_sparse_output():
    features = np.random.default_rng(2).random((30, 4)) + 0.1         # positive: all S > 0
    features[[4, 11]] = 0.0
    adjacency = sparsification.threshold_graph(features, 0.0)
    assert adjacency.is_sparse and adjacency.shape == (30, 30)
    dense = adjacency.to_dense()
    assert torch.equal(dense, dense.T) and torch.all(torch.diagonal(dense) == 0)
    assert torch.all(dense[[4, 11]] == 0)                            # S = 0: no edge
    stats = sparsification.graph_stats(adjacency)
    assert stats == {"nodes": 30, "edges": 28 * 27 // 2, "components": 3, "isolated": 2,
                     "largest_component": 28}
    full = sparsification.top_fraction_graph(features, 1.0)
    assert sparsification.graph_stats(full)["edges"] == 28 * 27 // 2        # 435 pairs kept, 57 are 0


@pytest.mark.parametrize("seed", range(4))
def test_stats_and_modularity_agree_with_networkx(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 150)
    centres = rng.standard_normal((4, 12))
    features = centres[labels] + 1.5 * rng.standard_normal((150, 12))
    for adjacency in (sparsification.threshold_graph(features, 0.65),
                      sparsification.top_fraction_graph(features, 0.01),
                      graphs.knn_graph(features, 2)):
        graph = graphs.to_networkx(adjacency)
        stats = sparsification.graph_stats(adjacency, labels)
        assert stats["edges"] == graph.number_of_edges()
        assert stats["components"] == nx.number_connected_components(graph)
        assert stats["isolated"] == nx.number_of_isolates(graph)
        assert stats["largest_component"] == max(map(len, nx.connected_components(graph)))
        same = [labels[i] == labels[j] for i, j in graph.edges]
        weight = np.array([w for _, _, w in graph.edges(data="weight")])
        assert stats["intra_edges"] == pytest.approx(np.mean(same), abs=1e-12)
        assert stats["intra_weight"] == pytest.approx(weight[same].sum() / weight.sum(),
                                                      abs=1e-12)
        communities = [np.flatnonzero(labels == c).tolist() for c in range(4)]
        expected = nx.community.modularity(graph, communities)
        assert modularity.modularity(adjacency, labels) == pytest.approx(expected, abs=1e-9)
    # the threshold graph of these features is fragmented: the check above saw isolated nodes
    assert sparsification.graph_stats(sparsification.threshold_graph(features, 0.65))["isolated"] > 0


def test_graph_stats_hand_made():
    a = np.zeros((7, 7))
    for i, j, w in [(0, 1, 1.0), (1, 2, 3.0), (4, 5, 2.0)]:          # a path, an edge, 2 alone
        a[i, j] = a[j, i] = w
    stats = sparsification.graph_stats(a, labels=[0, 0, 1, 1, 2, 2, 0])
    assert stats == {"nodes": 7, "edges": 3, "components": 4, "isolated": 2,
                     "largest_component": 3, "intra_edges": 2 / 3, "intra_weight": 3 / 6}


@pytest.mark.parametrize("n,block_size", [(40, 1024), (151, 16), (41, 1)])
@pytest.mark.parametrize("bins", [1, 10, 100])
def test_histogram_equals_numpy(n, block_size, bins):
    rng = np.random.default_rng(n + bins)
    features = rng.standard_normal((n, 5))
    labels = rng.integers(0, 3, n)
    s = dense_similarity(features)
    i, j = np.triu_indices(n, 1)
    values, same = s[i, j], labels[i] == labels[j]
    edges = np.linspace(-1, 1, bins + 1)
    h = sparsification.similarity_histogram(features, labels, bins=bins, block_size=block_size)
    np.testing.assert_array_equal(h.edges, edges)
    np.testing.assert_array_equal(h.intra, np.histogram(values[same], edges)[0])
    np.testing.assert_array_equal(h.inter, np.histogram(values[~same], edges)[0])
    assert h.n_pairs == n * (n - 1) // 2
    assert h.mean == pytest.approx(values.mean(), abs=1e-12)
    assert h.intra_mean == pytest.approx(values[same].mean(), abs=1e-12)
    assert h.inter_mean == pytest.approx(values[~same].mean(), abs=1e-12)
    for q in (0.1, 0.5, 0.9):
        assert abs(h.quantile(q) - np.quantile(values, q)) <= 2 / bins
    # q = 0 and q = 1: the outer edges of the first and last non-empty bins
    assert h.quantile(0) == pytest.approx(edges[np.searchsorted(edges, values.min(), "right") - 1])
    assert h.quantile(1) == pytest.approx(edges[np.searchsorted(edges, values.max(), "left")])
    if bins == 100:
        for tau in (-0.5, 0.0, 0.3, 0.5):
            assert h.fraction_at_least(tau) == pytest.approx((values >= tau).mean(), abs=1e-12)


def test_histogram_refuses_tau_between_edges_and_bad_input():
    features = random_features(20, 3, seed=0)
    h = sparsification.similarity_histogram(features, np.arange(20) % 2, bins=10)
    assert h.fraction_at_least(-1.0) == 1.0
    with pytest.raises(ValueError, match=r"tau=0.25 is not allowed: must be a bin edge"):
        h.fraction_at_least(0.25)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(20,\)"):
        sparsification.similarity_histogram(features, np.arange(19), bins=10)
    with pytest.raises(ValueError, match="bins=0 is not allowed"):
        sparsification.similarity_histogram(features, np.arange(20), bins=0)


@pytest.mark.parametrize("tau,message", [
    (1.5, r"tau=1.5 is not allowed: must lie in \[-1, 1\]"),
    (-1.01, r"tau=-1.01 is not allowed: must lie in \[-1, 1\]"),
    (float("nan"), "tau=nan is not allowed: must be a finite number"),
])
def test_bad_tau_is_refused(tau, message):
    with pytest.raises(ValueError, match=message):
        sparsification.threshold_graph(torch.randn(10, 3), tau)
    with pytest.raises(ValueError, match=message):
        sparsification.threshold_graph_from_similarity(torch.eye(10), tau)


@pytest.mark.parametrize("p,message", [
    (0, r"p=0.0 is not allowed: must lie in \(0, 1\]"),
    (-0.1, r"p=-0.1 is not allowed: must lie in \(0, 1\]"),
    (1.2, r"p=1.2 is not allowed: must lie in \(0, 1\]"),
])
def test_bad_p_is_refused(p, message):
    with pytest.raises(ValueError, match=message):
        sparsification.top_fraction_graph(torch.randn(10, 3), p)
    with pytest.raises(ValueError, match=message):
        sparsification.top_fraction_graph_from_similarity(torch.eye(10), p)


def test_other_bad_input_is_refused():
    with pytest.raises(TypeError, match="tau='0.5' must be a number"):
        sparsification.threshold_graph(torch.randn(10, 3), "0.5")
    with pytest.raises(ValueError, match=r"k=10 is not allowed: must be < number of samples N=10"):
        graphs.knn_graph(torch.randn(10, 3), 10)
    with pytest.raises(ValueError, match=r"k=12 is not allowed: must be < number of samples N=10"):
        graphs.knn_graph_from_similarity(torch.eye(10), 12)
    with pytest.raises(ValueError, match="square"):
        sparsification.top_fraction_graph_from_similarity(torch.randn(5, 4), 0.5)
    features = torch.randn(12, 3)
    features[7, 0] = float("inf")
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first rows: \[7\]\)"):
        sparsification.threshold_graph(features, 0.5)
    with pytest.raises(ValueError, match="block_size=0 is not allowed"):
        sparsification.top_fraction_graph(torch.randn(12, 3), 0.5, block_size=0)


def test_string_labels_and_scipy_adjacency():
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 3, 90)
    names = np.array(["bag", "boot", "shirt"])[codes]
    features = rng.standard_normal((3, 6))[codes] + rng.standard_normal((90, 6))
    by_code = sparsification.similarity_histogram(features, codes, bins=20)
    by_name = sparsification.similarity_histogram(features, list(names), bins=20)
    np.testing.assert_array_equal(by_code.intra, by_name.intra)
    np.testing.assert_array_equal(by_code.inter, by_name.inter)
    adjacency = sparsification.threshold_graph(features, 0.5)
    expected = sparsification.graph_stats(adjacency, codes)
    scipy_adjacency = scipy.sparse.csr_matrix(adjacency.to_dense().numpy())
    assert sparsification.graph_stats(scipy_adjacency, names) == expected
    assert expected["edges"] == nx.from_scipy_sparse_array(scipy_adjacency).number_of_edges()
