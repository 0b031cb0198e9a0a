"""Linear CKA on its defining properties and against direct NumPy evaluations of the formulas."""

import numpy as np
import pytest
import torch

from modlib import cka, data, models


def _rng(seed=0):
    return np.random.default_rng(seed)


def numpy_cka(x, y):
    """Feature-space form of linear CKA (Kornblith et al. 2019, eq. 2) on centred columns."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return (np.linalg.norm(y.T @ x, "fro") ** 2
            / (np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")))


def numpy_hsic_unbiased(k, l):
    """Song et al. 2012, eq. 5, term by term."""
    n = len(k)
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ kt @ lt @ one)) / (n * (n - 3))


def numpy_hsic_biased(k, l):
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_feature_space_formula(seed):
    rng = _rng(seed)
    x = rng.normal(size=(40, 7)) + 3.0                       # non-zero means: centring matters
    y = x @ rng.normal(size=(7, 12)) + 0.5 * rng.normal(size=(40, 12))
    assert cka.cka(x, y) == pytest.approx(numpy_cka(x, y), rel=1e-10)
    z = rng.normal(size=(40, 300))                            # D > N: still O(N²)
    assert cka.cka(x, z) == pytest.approx(numpy_cka(x, z), rel=1e-10)


def test_biased_hsic_trace_form():
    rng = _rng(3)
    x, y = rng.normal(size=(25, 5)), rng.normal(size=(25, 9))
    k, l = x @ x.T, y @ y.T
    expected = numpy_hsic_biased(k, l) / np.sqrt(numpy_hsic_biased(k, k) * numpy_hsic_biased(l, l))
    assert cka.cka(x, y) == pytest.approx(expected, rel=1e-10)


def test_unbiased_against_song_formula():
    rng = _rng(4)
    x = rng.normal(size=(30, 6)) + 1.0
    y = np.tanh(x @ rng.normal(size=(6, 8))) + 0.3 * rng.normal(size=(30, 8))
    k, l = x @ x.T, y @ y.T                                  # raw (uncentred) features
    expected = numpy_hsic_unbiased(k, l) / np.sqrt(numpy_hsic_unbiased(k, k)
                                                   * numpy_hsic_unbiased(l, l))
    assert cka.cka(x, y, unbiased=True) == pytest.approx(expected, rel=1e-9)
    # the centred Gram inner product is N(N-3) times the unbiased HSIC
    inner = (cka.center_gram(k, unbiased=True) * cka.center_gram(l, unbiased=True)).sum()
    assert float(inner) == pytest.approx(30 * 27 * numpy_hsic_unbiased(k, l), rel=1e-9)


@pytest.mark.parametrize("unbiased", [False, True])
def test_identity_symmetry_invariances(unbiased):
    rng = _rng(5)
    x = rng.normal(size=(50, 20))
    y = np.maximum(x @ rng.normal(size=(20, 30)), 0)
    assert cka.cka(x, x, unbiased=unbiased) == pytest.approx(1.0, abs=1e-12)
    forward = cka.cka(x, y, unbiased=unbiased)
    assert 0 < forward < 1
    assert cka.cka(y, x, unbiased=unbiased) == pytest.approx(forward, rel=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))         # a random orthogonal matrix
    assert cka.cka(x, y @ q, unbiased=unbiased) == pytest.approx(forward, rel=1e-9)
    assert cka.cka(7.5 * x, y, unbiased=unbiased) == pytest.approx(forward, rel=1e-12)
    assert cka.cka(x + 4.0, y - 2.0, unbiased=unbiased) == pytest.approx(forward, rel=1e-9)


def test_not_invariant_to_anisotropic_scaling():
    rng = _rng(6)
    x, y = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    y = x + 0.5 * y
    stretched = y * np.array([10.0, 1.0, 1.0, 1.0])
    assert abs(cka.cka(x, stretched) - cka.cka(x, y)) > 0.05


def test_unbiased_removes_the_small_sample_bias():
    # independent wide random features: biased CKA is far above 0, unbiased close to it
    rng = _rng(7)
    biased, unbiased = [], []
    for _ in range(5):
        x, y = rng.normal(size=(40, 500)), rng.normal(size=(40, 500))
        biased.append(cka.cka(x, y))
        unbiased.append(cka.cka(x, y, unbiased=True))
    assert np.mean(biased) > 0.5
    assert abs(np.mean(unbiased)) < 0.05


def test_matrix_matches_pairwise_and_paired():
    rng = _rng(8)
    base = rng.normal(size=(32, 10))
    layers = {f"l{i}": np.tanh(base @ rng.normal(size=(10, 5 + 3 * i))) for i in range(4)}
    other = {f"l{i}": v + 0.3 * rng.normal(size=v.shape) for i, v in enumerate(layers.values())}
    grams_a = {n: cka.gram(v) for n, v in layers.items()}
    grams_b = {n: cka.gram(v) for n, v in other.items()}
    for unbiased in (False, True):
        m = cka.cka_matrix(grams_a, unbiased=unbiased)
        assert m.shape == (4, 4)
        np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-12)
        np.testing.assert_allclose(m, m.T, atol=1e-12)
        cross = cka.cka_matrix(grams_a, grams_b, unbiased=unbiased)
        names = list(layers)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                assert cross[i, j] == pytest.approx(
                    cka.cka(layers[a], other[b], unbiased=unbiased), rel=1e-9)
        np.testing.assert_allclose(cka.paired_cka(grams_a, grams_b, unbiased=unbiased),
                                   np.diag(cross), rtol=1e-12)


def test_layer_grams_of_a_model():
    split = data.synthetic(n_per_class=5, num_classes=4, size=16)
    torch.manual_seed(0)
    model = models.build("resnet20", num_classes=4, width=0.25)
    grams = cka.layer_grams(model, split.x)
    assert list(grams) == model.probe_points()
    from modlib import features
    outputs = features.probe(model, split.x)
    for name, g in grams.items():
        assert g.shape == (20, 20) and g.dtype == torch.float64
        assert float(cka.cka_from_grams(g, cka.gram(outputs[name]))) == pytest.approx(1.0)
    last = model.probe_points()[-1]
    assert cka.cka_matrix(grams)[0, -1] == pytest.approx(
        cka.cka(outputs[model.probe_points()[0]], outputs[last]), rel=1e-9)


def test_bad_input_names_the_value():
    rng = _rng(9)
    x = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"x has N=10 samples but y has N=12"):
        cka.cka(x, rng.normal(size=(12, 3)))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"y contains 1 non-finite .* y\[2, 1\] = nan"):
        cka.cka(x, bad)
    with pytest.raises(ValueError, match=r"N=3 samples .* unbiased .* N >= 4"):
        cka.cka(x[:3], x[:3], unbiased=True)
    with pytest.raises(ValueError, match="constant"):
        cka.cka(x, np.ones((10, 4)))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        cka.cka(x[:, 0], x)
    with pytest.raises(ValueError, match="grams_a has 2 layers but grams_b has 1"):
        cka.paired_cka([cka.gram(x), cka.gram(x)], [cka.gram(x)])
    with pytest.raises(ValueError, match="different numbers of inputs"):
        cka.cka_matrix([cka.gram(x)], [cka.gram(x[:5])])
