"""Modularity Q against networkx and hand-made graphs; curves on a synthetic model."""

import networkx as nx
import pandas as pd
import scipy.sparse
import numpy as np
import pytest
import torch

from modlib import data, features, graphs, models, modularity, sparsification


def networkx_q(adjacency: np.ndarray, labels: np.ndarray) -> float:
    graph = nx.from_numpy_array(adjacency)
    communities = [np.flatnonzero(labels == c).tolist() for c in np.unique(labels)]
    return nx.community.modularity(graph, communities)


def random_graph(rng, n, density, weighted):
    upper = np.triu(rng.random((n, n)) < density, k=1)
    weights = rng.uniform(0.01, 5.0, (n, n)) if weighted else np.ones((n, n))
    a = np.where(upper, weights, 0.0)
    return a + a.T


@pytest.mark.parametrize("seed", range(8))


@pytest.mark.parametrize("n,density,classes", [(12, 0.4, 2), (60, 0.1, 3), (150, 0.05, 10),
                                               (400, 0.02, 7)])


def test_equals_networkx_on_random_graphs(seed, n, density, classes):
    rng = np.random.default_rng(seed)
    adjacency = random_graph(rng, n, density, weighted=seed % 2 == 0)
    labels = rng.integers(0, classes, n)
    expected = networkx_q(adjacency, labels)
    assert modularity.modularity(adjacency, labels) == pytest.approx(expected, abs=1e-9)
    sparse = torch.from_numpy(adjacency).to_sparse()
    assert modularity.modularity(sparse, labels) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))


def test_equals_networkx_on_knn_graphs(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 300)
    features = rng.standard_normal((5, 20))[labels] + rng.standard_normal((300, 20))
    adjacency = graphs.knn_graph(features.astype(np.float32), k=3)
    expected = networkx_q(adjacency.to_dense().double().numpy(), labels)
    assert modularity.modularity(adjacency, labels) == pytest.approx(expected, abs=1e-9)


def test_hand_made_graphs():
    # two triangles joined by one edge: 7 edges, each triangle has 3 inside, degrees 2,2,3 | 3,2,2
    # Q = 2 * [3/7 - (7/14)^2] = 6/7 - 1/2
    a = np.zeros((6, 6))
    for i, j in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]:
        a[i, j] = a[j, i] = 1.0
    assert modularity.modularity(a, [0, 0, 0, 1, 1, 1]) == pytest.approx(6 / 7 - 1 / 2, abs=1e-15)
    # one community: Q = 1 - 1 = 0
    assert modularity.modularity(a, [0] * 6) == pytest.approx(0.0, abs=1e-15)
    # singletons: Q = -sum_i (d_i / 2m)^2 = -(4*4 + 2*9) / 196
    assert modularity.modularity(a, range(6)) == pytest.approx(-34 / 196, abs=1e-15)
    # two disjoint weighted edges, each its own class: Q = 2 * (1/2 - 1/4) = 1/2
    b = np.zeros((4, 4))
    b[0, 1] = b[1, 0] = 2.5
    b[2, 3] = b[3, 2] = 2.5
    assert modularity.modularity(b, [7, 7, -1, -1]) == pytest.approx(0.5, abs=1e-15)


def test_scale_invariance_and_label_renaming():
    rng = np.random.default_rng(3)
    a = random_graph(rng, 50, 0.2, weighted=True)
    labels = rng.integers(0, 4, 50)
    q = modularity.modularity(a, labels)
    assert modularity.modularity(7.0 * a, labels) == pytest.approx(q, abs=1e-12)
    assert modularity.modularity(a, labels * 10 + 3) == pytest.approx(q, abs=1e-12)


def test_bad_input_is_refused():
    a = np.ones((4, 4)) - np.eye(4)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(4,\), got \(3,\)"):
        modularity.modularity(a, [0, 1, 0])
    with pytest.raises(TypeError, match="labels must be integers"):
        modularity.modularity(a, [0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="self-loops"):
        modularity.modularity(np.ones((4, 4)), [0, 1, 0, 1])
    asymmetric = a.copy()
    asymmetric[0, 1] = 3.0
    with pytest.raises(ValueError, match="not symmetric"):
        modularity.modularity(asymmetric, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="no edges"):
        modularity.modularity(np.zeros((4, 4)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="square"):
        modularity.modularity(np.ones((3, 4)), [0, 1, 0])


def test_delta_q_and_layer_difference():
    q = [0.1, 0.3, 0.25, 0.8]
    np.testing.assert_allclose(modularity.delta_q(q), [0.2, -0.05, 0.55])
    d = modularity.layer_difference(q)
    assert d.shape == (4, 4)
    np.testing.assert_allclose(d[0, 3], 0.7)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0)


def test_curve_on_an_untrained_model():
    images = data.synthetic(n_per_class=40, num_classes=4, size=8, noise=0.5, seed=0)
    model = models.build("resnet20", num_classes=4, width=0.25).eval()
    table = modularity.modularity_curve(model, images.x, images.y, k=3, n_batches=2,
                                        graph_size=60, seed=0, progress=False)
    assert list(table.columns[:4]) == ["layer", "name", "Q_mean", "Q_std"]
    assert table["name"].tolist() == model.probe_points()
    assert len(table) == 10 and {"Q_b0", "Q_b1"} <= set(table.columns)
    np.testing.assert_allclose(table["Q_mean"], (table["Q_b0"] + table["Q_b1"]) / 2)
    # prototypes + moderate noise cluster by class already at the input side: Q well above 0
    assert table["Q_mean"].iloc[0] > 0.3
    assert (table["Q_mean"] < 1 - 1 / 4).all()
    # streaming one layer at a time gives the same numbers
    streamed = modularity.modularity_curve(model, images.x, images.y, k=3, n_batches=2,
                                           graph_size=60, seed=0, stream=True, progress=False)
    np.testing.assert_allclose(streamed["Q_mean"], table["Q_mean"], atol=1e-6)


def test_batch_curves_match_the_curve_and_score_every_partition():
    images = data.synthetic(n_per_class=40, num_classes=4, size=8, noise=0.5, seed=0)
    model = models.build("vgg11", num_classes=4, width=0.125).eval()
    table = modularity.modularity_curve(model, images.x, images.y, k=3, n_batches=2,
                                        graph_size=60, seed=3, progress=False)
    order = torch.cat(data.stratified_batches(images.y, 2, 60, seed=3))
    shuffled = images.y[order][torch.randperm(120, generator=torch.Generator().manual_seed(0))]
    q = modularity.batch_curves(model, images.x[order], {"true": images.y[order],
                                                          "other": shuffled}, graph_size=60, k=3)
    assert set(q) == {"true", "other"} and q["true"].shape == (len(model.probe_points()), 2)
    # the same batches under the true classes: modularity_curve's per-batch columns
    np.testing.assert_allclose(q["true"], table[["Q_b0", "Q_b1"]].to_numpy(), atol=1e-12)
    # another partition of the same graph: Q computed directly
    last = model.probe_points()[-1]
    f = features.probe(model, images.x[order][60:], [last])[last]
    expected = modularity.modularity(graphs.knn_graph(f, 3), shuffled[60:])
    np.testing.assert_allclose(q["other"][-1, 1], expected, atol=1e-12)
    assert q["other"][-1, 1] < q["true"][-1, 1]          # shuffled labels: less modular


def test_batch_curves_refuse_bad_input():
    images = data.synthetic(n_per_class=10, num_classes=2, size=8)
    model = models.build("vgg11", num_classes=2, width=0.125)
    with pytest.raises(ValueError, match="x has 20 samples: must be a positive multiple of "
                                         "graph_size=15"):
        modularity.batch_curves(model, images.x, {"true": images.y}, graph_size=15)
    with pytest.raises(ValueError, match=r"partitions\['p'\] must have shape \(N,\) = \(20,\), "
                                         r"got \(19,\)"):
        modularity.batch_curves(model, images.x, {"p": images.y[:-1]}, graph_size=10)
    with pytest.raises(ValueError, match="at least one"):
        modularity.batch_curves(model, images.x, {}, graph_size=10)


def test_curve_refuses_bad_input():
    images = data.synthetic(n_per_class=10, num_classes=2, size=8)
    model = models.build("vgg11", num_classes=2, width=0.125)
    with pytest.raises(ValueError, match="k=20 is not allowed: must be < graph_size=20"):
        modularity.modularity_curve(model, images.x, images.y, k=20, n_batches=1, graph_size=20)
    with pytest.raises(ValueError, match="only 20 samples"):
        modularity.modularity_curve(model, images.x, images.y, n_batches=3, graph_size=10)
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) = \(20,\), got \(19,\)"):
        modularity.modularity_curve(model, images.x, images.y[:-1], n_batches=1, graph_size=10)


def test_scipy_sparse_adjacency_and_string_labels_are_accepted():
    rng = np.random.default_rng(11)
    adjacency = random_graph(rng, 80, 0.1, weighted=True)
    classes = np.array(["cat", "dog", "bird"])
    names = classes[rng.integers(0, 3, 80)]
    codes = np.unique(names, return_inverse=True)[1]
    expected = networkx_q(adjacency, codes)
    for matrix in (scipy.sparse.csr_matrix(adjacency), scipy.sparse.coo_array(adjacency),
                   adjacency.tolist()):
        assert modularity.modularity(matrix, names) == pytest.approx(expected, abs=1e-9)
    # labels of any hashable kind: strings in a list, a pandas Series, tuples
    assert modularity.modularity(adjacency, list(names)) == pytest.approx(expected, abs=1e-9)
    assert modularity.modularity(adjacency, pd.Series(names)) == pytest.approx(expected, abs=1e-9)
    tuples = [("class", int(c)) for c in codes]
    assert modularity.modularity(adjacency, tuples) == pytest.approx(expected, abs=1e-9)
    # SciPy sums duplicate COO entries: two halves of each weight give the same graph
    coo = scipy.sparse.coo_matrix(adjacency)
    halves = scipy.sparse.coo_matrix((np.r_[coo.data, coo.data] / 2,
                                      (np.r_[coo.row, coo.row], np.r_[coo.col, coo.col])),
                                     shape=coo.shape)
    assert modularity.modularity(halves, codes) == pytest.approx(expected, abs=1e-9)


def test_non_finite_complex_and_cancelling_weights_are_refused():
    a = np.ones((4, 4)) - np.eye(4)
    labels = [0, 1, 0, 1]
    for bad in (np.inf, np.nan):
        b = a.copy()
        b[0, 1] = b[1, 0] = bad
        with pytest.raises(ValueError, match=rf"2 non-finite weights .*A\[0, 1\]={bad}"):
            modularity.modularity(b, labels)
        with pytest.raises(ValueError, match="non-finite"):
            modularity.modularity(scipy.sparse.csr_matrix(b), labels)
    signed = np.zeros((4, 4))
    signed[0, 1] = signed[1, 0] = 1.0
    signed[2, 3] = signed[3, 2] = -1.0
    with pytest.raises(ValueError, match=r"total edge weight is 0: positive weights \(1\) and "
                                         r"negative ones \(-1\) cancel"):
        modularity.modularity(signed, labels)
    with pytest.raises(TypeError, match="real weights, got complex dtype torch.complex128"):
        modularity.modularity(a + 1j * a, labels)
    with pytest.raises(TypeError, match="labels must be integers, strings .* got dtype complex"):
        modularity.modularity(a, np.array(labels) + 0j)


def test_louvain_communities_match_networkx():
    # the same seed gives networkx's own partition, renumbered by smallest member
    rng = np.random.default_rng(5)
    a = random_graph(rng, 60, 0.1, weighted=True)
    for resolution in (0.5, 1.0, 2.0):
        found = modularity.louvain_communities(a, resolution=resolution, seed=3)
        expected = nx.community.louvain_communities(nx.from_numpy_array(a), weight="weight",
                                                    resolution=resolution, seed=3)
        assert {frozenset(np.flatnonzero(found == c)) for c in np.unique(found)} == \
            {frozenset(members) for members in expected}
        assert found.dtype == np.int64 and found[0] == 0
        firsts = [np.flatnonzero(found == c).min() for c in range(found.max() + 1)]
        assert firsts == sorted(firsts)                 # numbered by smallest member
        # and Q of that partition equals networkx's modularity of the same partition
        assert modularity.modularity(a, found) == pytest.approx(
            nx.community.modularity(nx.from_numpy_array(a), expected), abs=1e-12)


def test_louvain_finds_planted_cliques():
    # three 5-cliques joined in a ring by single edges: Louvain recovers the three cliques
    a = np.zeros((15, 15))
    for c in range(3):
        members = range(5 * c, 5 * c + 5)
        for i in members:
            for j in members:
                if i != j:
                    a[i, j] = 1.0
    for i, j in [(4, 5), (9, 10), (14, 0)]:
        a[i, j] = a[j, i] = 1.0
    found = modularity.louvain_communities(torch.tensor(a).to_sparse(), seed=0)
    assert found.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    # 33 edges, 10 inside each clique, each clique's strength 22: Q = 3 (10/33 - (22/66)^2)
    assert modularity.modularity(a, found) == pytest.approx(30 / 33 - 1 / 3, abs=1e-12)
    # an isolated node is a community of its own
    b = np.zeros((16, 16))
    b[:15, :15] = a
    assert modularity.louvain_communities(b, seed=0)[15] == 3


def test_louvain_refuses_bad_input():
    a = np.ones((4, 4)) - np.eye(4)
    with pytest.raises(ValueError, match="resolution=0"):
        modularity.louvain_communities(a, resolution=0)
    with pytest.raises(ValueError, match="square"):
        modularity.louvain_communities(np.ones((3, 4)))


def test_intra_class_share_against_a_loop():
    rng = np.random.default_rng(3)
    a = random_graph(rng, 40, 0.2, weighted=True)
    labels = rng.integers(0, 4, 40)
    inside = sum(a[i, j] for i in range(40) for j in range(40) if labels[i] == labels[j])
    assert modularity.intra_class_share(a, labels) == pytest.approx(inside / a.sum(), rel=1e-12)
    # Q = P_intra − Σ_c a_c²
    strength = a.sum(1)
    a_c = np.array([strength[labels == c].sum() for c in range(4)]) / a.sum()
    assert modularity.modularity(a, labels) == pytest.approx(
        modularity.intra_class_share(a, labels) - (a_c ** 2).sum(), abs=1e-12)
    assert modularity.intra_class_share(a, labels) == pytest.approx(
        sparsification.graph_stats(torch.as_tensor(a), torch.as_tensor(labels))["intra_weight"])
    with pytest.raises(ValueError, match="no edges"):
        modularity.intra_class_share(np.zeros((3, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="labels must have shape"):
        modularity.intra_class_share(a, labels[:5])


@pytest.mark.parametrize("builder,value", [
    (graphs.knn_graph, 3), (sparsification.top_fraction_graph, 0.05),
    (sparsification.threshold_graph, 0.2)])
def test_modularity_of_each_graph_kind_equals_networkx(builder, value):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    x = torch.as_tensor(rng.normal(size=(60, 8)) + 2 * np.eye(8)[labels], dtype=torch.float32)
    adjacency = builder(x, value)
    dense = (adjacency.to_dense() if adjacency.is_sparse else adjacency).double().numpy()
    assert modularity.modularity(adjacency, labels) == pytest.approx(networkx_q(dense, labels),
                                                                     abs=1e-9)


def test_curves_of_paper_b_graphs():
    d = data.synthetic(n_per_class=40, seed=0)
    model = models.build("vgg11", width=0.125, in_channels=d.x.shape[1]).eval()
    knn = modularity.modularity_curve(model, d.x, d.y, k=3, n_batches=2, graph_size=60,
                                      progress=False)
    top = modularity.modularity_curve(model, d.x, d.y, n_batches=2, graph_size=60,
                                      progress=False, graph="top-fraction", p=0.05)
    assert top["name"].tolist() == knn["name"].tolist() == model.probe_points()
    assert np.isfinite(top["Q_mean"]).all() and not np.allclose(top["Q_mean"], knn["Q_mean"])
    with pytest.raises(ValueError, match=r"p=0.0 is not allowed: must lie in \(0, 1\]"):
        modularity.modularity_curve(model, d.x, d.y, graph="top-fraction", p=0.0)
    with pytest.raises(ValueError, match="graph='dense' is not allowed"):
        modularity.modularity_curve(model, d.x, d.y, graph="dense")
    # a threshold no pair reaches: no edge in any batch's graph, so Q is NaN
    empty = modularity.modularity_curve(model, d.x, d.y, n_batches=2, graph_size=60,
                                        progress=False, graph="threshold", tau=1.0)
    assert np.isnan(empty["Q_mean"]).all()


def test_sensitivity_sweep_reuses_one_balanced_sample():
    d = data.synthetic(n_per_class=40, seed=1)
    model = models.build("resnet20", width=0.25, in_channels=d.x.shape[1]).eval()
    sweep = modularity.sensitivity_sweep(model, d.x, d.y, [3, 5], [40, 80], seed=2,
                                         progress=False)
    assert len(sweep) == len(model.probe_points()) * 4
    order = data.stratified_batches(d.y, 1, 80, seed=2)[0]
    last = model.probe_points()[-1]
    f = features.probe(model, d.x[order[:40]], [last])[last]
    expected = modularity.knn_modularity(f, d.y[order[:40]], 5)
    got = sweep[(sweep["name"] == last) & (sweep["N"] == 40) & (sweep["k"] == 5)]["Q"].item()
    assert got == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="k_values"):
        modularity.sensitivity_sweep(model, d.x, d.y, [40], [40], progress=False)


# --------------------------------------------------------------------------------------------
# The permutation null


def test_permutation_null_of_a_hand_made_graph():
    # two disjoint edges 0-1 and 2-3, labels [0, 0, 1, 1]: Q = 1/2. Of the 6 distinct
    # relabellings (2 nodes per class) 2 keep both edges inside a class (Q = 1/2) and 4 cut both
    # (Q = 0 - 2 * (1/2)^2 = -1/2): the null has mean -1/6, std sqrt(8)/6 and P(Q >= 1/2) = 1/3
    a = np.zeros((4, 4))
    a[0, 1] = a[1, 0] = a[2, 3] = a[3, 2] = 1.0
    found = modularity.permutation_null(a, [0, 0, 1, 1], n_permutations=4000, seed=0,
                                        return_null=True)
    assert found["q"] == pytest.approx(0.5)
    assert set(np.round(found["null"], 12)) == {0.5, -0.5}
    assert found["null_mean"] == pytest.approx(-1 / 6, abs=0.02)
    assert found["null_std"] == pytest.approx(np.sqrt(8) / 6, abs=0.01)
    assert found["p"] == pytest.approx(1 / 3, abs=0.02)
    null = found["null"]
    assert found["p"] == (1 + np.sum(null >= 0.5 - 1e-12)) / (1 + 4000)
    assert found["z"] == pytest.approx((0.5 - null.mean()) / null.std(ddof=1))


def test_permuted_q_equals_modularity_of_the_permuted_labels():
    rng = np.random.default_rng(5)
    a = random_graph(rng, 40, 0.15, weighted=True)
    labels = rng.integers(0, 4, size=40)
    found = modularity.permutation_null(a, labels, n_permutations=30, seed=7, return_null=True)
    perms = np.random.default_rng(7).permuted(np.tile(labels, (30, 1)), axis=1)
    # data.class_indices maps labels to 0..C-1 in sorted order: the same partitions
    expected = [networkx_q(a, p) for p in perms]
    np.testing.assert_allclose(found["null"], expected, atol=1e-9)
    assert found["q"] == pytest.approx(networkx_q(a, labels), abs=1e-9)


def test_z_of_random_labels_is_chance():
    """kNN graphs of random features with random labels: |z| <= 3 in >= 95 % of 200 trials."""
    inside = 0
    for trial in range(200):
        rng = np.random.default_rng(trial)
        feats = rng.normal(size=(60, 8)).astype(np.float32)
        labels = rng.integers(0, 3, size=60)
        found = modularity.null_modularity(feats, labels, k=3, n_permutations=100, seed=trial)
        inside += abs(found["z"]) <= 3
        assert 1 / 101 <= found["p"] <= 1
    assert inside >= 190


def test_class_structure_gives_a_large_z_and_p_never_zero():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 40)
    feats = rng.normal(size=(200, 16)) + 4.0 * np.eye(16)[labels * 3]
    found = modularity.null_modularity(feats, labels, k=5, n_permutations=200, seed=1)
    assert found["q"] == pytest.approx(
        modularity.modularity(graphs.knn_graph(feats, 5), labels), abs=1e-9)
    assert found["z"] > 10 and found["q"] > 0.5
    assert found["p"] == 1 / 201                        # never 0: the floor 1 / (1 + n)
    assert abs(found["null_mean"]) < 0.05


def test_null_refuses_bad_input():
    feats = np.random.default_rng(0).normal(size=(20, 4))
    labels = np.arange(20) % 2
    with pytest.raises(ValueError, match="n_permutations=1 is not allowed"):
        modularity.null_modularity(feats, labels, n_permutations=1)
    with pytest.raises(ValueError, match="k=20"):
        modularity.null_modularity(feats, labels, k=20)
    with pytest.raises(ValueError, match="seed=-1 is not allowed"):
        modularity.null_modularity(feats, labels, seed=-1)
    with pytest.raises(ValueError):
        modularity.null_modularity(feats, labels[:-1])
    images = data.synthetic(n_per_class=10, num_classes=2, size=8)
    model = models.build("vgg11", num_classes=2, width=0.125)
    with pytest.raises(ValueError, match="null_permutations=1 is not allowed"):
        modularity.modularity_curve(model, images.x, images.y, n_batches=1, graph_size=10,
                                    null_permutations=1)


def test_curve_with_its_null():
    images = data.synthetic(n_per_class=30, num_classes=3, size=8, noise=0.5, seed=0)
    model = models.build("vgg11", num_classes=3, width=0.125).eval()
    kwargs = dict(k=3, n_batches=2, graph_size=30, seed=0, progress=False)
    plain = modularity.modularity_curve(model, images.x, images.y, **kwargs)
    table = modularity.modularity_curve(model, images.x, images.y, null_permutations=50,
                                        **kwargs)
    pd.testing.assert_frame_equal(table[plain.columns], plain)         # Q itself unchanged
    assert {"Q_null_mean", "Q_null_std", "Q_z", "Q_p"} <= set(table.columns)
    np.testing.assert_allclose(table["Q_z"], (table["Q_mean"] - table["Q_null_mean"])
                               / table["Q_null_std"])
    assert (table["Q_p"] >= 1 / 51).all() and (table["Q_p"] <= 1).all()
    assert (table["Q_null_mean"].abs() < 0.1).all()
    # the input side of prototypes + noise is clustered by class: far from the null
    assert table["Q_z"].iloc[0] > 5 and table["Q_p"].iloc[0] == 1 / 51
    # one layer, one batch by hand: the batch-mean null with 1 batch is that batch's null
    one = modularity.modularity_curve(model, images.x, images.y, null_permutations=50,
                                      layers=[model.probe_points()[0]], **{**kwargs,
                                                                          "n_batches": 1})
    batch = data.stratified_batches(data.class_indices(images.y), 1, 30, 0)[0]
    f = features.probe(model, images.x[batch], [model.probe_points()[0]])
    ref = modularity.permutation_null(graphs.knn_graph(next(iter(f.values())), 3),
                                      images.y[batch], 50, np.random.SeedSequence([0, 0, 0]))
    assert one["Q_null_mean"].iloc[0] == pytest.approx(ref["null_mean"])
    assert one["Q_z"].iloc[0] == pytest.approx(ref["z"])
