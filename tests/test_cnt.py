"""Weight-graph metrics against unrolled dense matrices, hand-computed networks and known
distributions."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from modlib import cnt, models


def unrolled_conv(conv: nn.Conv2d, h: int, w: int) -> np.ndarray:
    """The dense matrix M (rows: output units, columns: input units, both (C, H, W) order) of a
    bias-free Conv2d, by an explicit loop over output positions and kernel taps."""
    k = conv.weight.detach().double().numpy()
    c_out, c_in_g, kh, kw = k.shape
    (sh, sw), (ph, pw), (dh, dw), g = conv.stride, conv.padding, conv.dilation, conv.groups
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    c_in = c_in_g * g
    m = np.zeros((c_out * oh * ow, c_in * h * w))
    out_per_group = c_out // g
    for co in range(c_out):
        group = co // out_per_group
        for i in range(oh):
            for j in range(ow):
                row = (co * oh + i) * ow + j
                for cl in range(c_in_g):
                    ci = group * c_in_g + cl
                    for n in range(kh):
                        for q in range(kw):
                            y, x = i * sh - ph + n * dh, j * sw - pw + q * dw
                            if 0 <= y < h and 0 <= x < w:   # padded positions are not nodes
                                m[row, (ci * h + y) * w + x] += k[co, cl, n, q]
    return m


CONV_CASES = [  # (c_in, c_out, kernel, stride, padding, dilation, groups)
    (2, 3, 3, 1, 0, 1, 1),
    (2, 3, 3, 2, 0, 1, 1),
    (2, 4, 3, 1, 1, 1, 1),
    (3, 2, (3, 2), (2, 1), (2, 1), 1, 1),
    (2, 3, 3, 1, 1, 2, 1),
    (4, 6, 3, 2, 1, 1, 2),
    (4, 4, 3, 1, 1, 1, 4),
    (2, 2, 5, 3, 2, (1, 2), 2),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("absolute", [False, True])
def test_conv_strengths_equal_unrolled_matrix(case, absolute):
    c_in, c_out, k, s, p, d, g = case
    torch.manual_seed(1)
    h, w = 7, 6
    conv = nn.Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g)
    m = unrolled_conv(conv, h, w)
    n_out = m.shape[0]
    lin = nn.Linear(n_out, 3)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin)
    strengths = cnt.node_strengths(model, (c_in, h, w), absolute=absolute)
    f = np.abs if absolute else (lambda a: a)
    m = f(m)
    b = f(conv.bias.detach().double().numpy()).repeat(n_out // c_out)
    wl, bl = f(lin.weight.detach().double().numpy()), f(lin.bias.detach().double().numpy())
    assert [len(t) for t in strengths] == [c_in * h * w, n_out, 3]
    np.testing.assert_allclose(strengths[0].numpy(), m.sum(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(strengths[1].numpy(), m.sum(1) + b + wl.sum(0),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(strengths[2].numpy(), wl.sum(1) + bl, rtol=1e-10, atol=1e-12)


def test_two_stacked_convs_and_no_bias():
    torch.manual_seed(2)
    c1, c2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 2, 3, stride=2)
    model = nn.Sequential(c1, nn.Tanh(), c2, nn.Flatten())
    m1, m2 = unrolled_conv(c1, 6, 6), unrolled_conv(c2, 6, 6)
    s = cnt.node_strengths(model, (1, 6, 6), bias=False)
    np.testing.assert_allclose(s[0].numpy(), m1.sum(0), rtol=1e-10)
    np.testing.assert_allclose(s[1].numpy(), m1.sum(1) + m2.sum(0), rtol=1e-10)
    np.testing.assert_allclose(s[2].numpy(), m2.sum(1), rtol=1e-10)


def _set(linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return linear


def test_hand_made_dense_network():
    a = _set(nn.Linear(2, 2), [[1, 2], [3, 4]], [0.5, -1])
    b = _set(nn.Linear(2, 1), [[1, -1]], [2])
    model = nn.Sequential(a, nn.ReLU(), nn.Dropout(), b)
    s = cnt.node_strengths(model, (2,))
    # inputs: out-strengths 1+3, 2+4; hidden: (1+2+0.5) + 1, (3+4-1) - 1; output: 1-1+2
    assert [t.tolist() for t in s] == [[4.0, 6.0], [4.5, 5.0], [2.0]]
    s = cnt.node_strengths(model, (2,), bias=False)
    assert [t.tolist() for t in s] == [[4.0, 6.0], [4.0, 6.0], [0.0]]
    s = cnt.node_strengths(model, (2,), absolute=True)
    assert [t.tolist() for t in s] == [[4.0, 6.0], [4.5, 9.0], [4.0]]
    np.testing.assert_allclose(cnt.layer_fluctuation(s), [1.0, 2.25, 0.0])


def test_hand_made_conv_counts_windows():
    conv = nn.Conv2d(1, 1, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.25)
    s = cnt.node_strengths(nn.Sequential(conv), (1, 3, 3))
    # each input pixel: number of 2x2 windows covering it (corners 1, edges 2, centre 4)
    assert s[0].tolist() == [1, 2, 1, 2, 4, 2, 1, 2, 1]
    assert s[1].tolist() == [4.25] * 4


def _pool_model(pool, pooled_units=1):
    conv = nn.Conv2d(1, 1, 1)
    lin = nn.Linear(pooled_units, 1)
    with torch.no_grad():
        conv.weight.fill_(2.0)
        conv.bias.fill_(0.0)
        lin.weight.fill_(3.0)
        lin.bias.fill_(1.0)
    return nn.Sequential(conv, nn.ReLU(), pool, nn.Flatten(), lin)


def test_max_pool_is_a_gain_one_relay_and_avg_pool_is_linear():
    s = cnt.node_strengths(_pool_model(nn.MaxPool2d(2)), (1, 2, 2))
    assert s[0].tolist() == [2.0] * 4
    assert s[1].tolist() == [2.0 + 3.0] * 4       # in 2, out: every unit relays the 3
    assert s[2].tolist() == [3.0 + 1.0]
    s = cnt.node_strengths(_pool_model(nn.AvgPool2d(2)), (1, 2, 2))
    assert s[1].tolist() == [2.0 + 0.75] * 4      # out: 3 / 4 per unit
    assert s[2].tolist() == [3.0 + 1.0]
    s = cnt.node_strengths(_pool_model(nn.AdaptiveAvgPool2d(1)), (1, 2, 2))
    assert s[1].tolist() == [2.0 + 0.75] * 4


def test_overlapping_max_pool_sums_windows():
    # 3 inputs in a row, kernel 2 stride 1: the middle unit sits in both windows
    s = cnt.node_strengths(_pool_model(nn.MaxPool2d((1, 2), stride=1), 2), (1, 1, 3))
    assert s[1].tolist() == [2.0 + 3.0, 2.0 + 6.0, 2.0 + 3.0]
    assert s[2].tolist() == [6.0 + 1.0]


def test_batchnorm_folds_into_the_conv():
    torch.manual_seed(3)
    conv, bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(-2, 2)
        bn.bias.uniform_(-1, 1)
    lin = nn.Linear(3 * 5 * 5, 4)
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.Flatten(), lin).eval()
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        folded.bias.copy_(scale * (conv.bias - bn.running_mean) + bn.bias)
    reference = nn.Sequential(folded, nn.ReLU(), nn.Flatten(), lin)
    for absolute in (False, True):
        got = cnt.node_strengths(model, (2, 5, 5), absolute=absolute)
        want = cnt.node_strengths(reference, (2, 5, 5), absolute=absolute)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_residual_block_sums_both_branches(stride):
    torch.manual_seed(4)
    c_in, c_out, size = 2, 2 * stride, 4
    block = models.BasicBlock(c_in, c_out, stride).eval()
    for bn in (block.bn1, block.bn2):
        with torch.no_grad():
            bn.running_var.fill_(1.0 - bn.eps)        # scale exactly 1, shift 0
    model = nn.Sequential(block, nn.Flatten(), nn.Linear(c_out * (size // stride) ** 2, 2))
    s = cnt.node_strengths(model, (c_in, size, size))
    m1 = unrolled_conv(block.conv1, size, size)
    o = size // stride
    m2 = unrolled_conv(block.conv2, o, o)
    # the shortcut as a 0/1 matrix: subsample by stride, new channels zero-padded (option A)
    short = np.zeros((c_out * o * o, c_in * size * size))
    pad = (c_out - c_in) // 2
    for c in range(c_in):
        for i in range(o):
            for j in range(o):
                short[((c + pad) * o + i) * o + j, (c * size + i * stride) * size + j * stride] = 1
    wl = model[2].weight.detach().double().numpy()
    np.testing.assert_allclose(s[0].numpy(), m1.sum(0) + short.sum(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s[1].numpy(), m1.sum(1) + m2.sum(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s[2].numpy(), m2.sum(1) + short.sum(1) + wl.sum(0),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("arch", ["vgg11", "resnet20", "mlp"])
def test_models_of_the_companion(arch):
    model = models.build(arch, width=0.25).eval()
    s = cnt.node_strengths(model, (1, 28, 28))
    lw = cnt.link_weights(model)
    layers = cnt.weight_layers(model)
    assert len(s) == len(lw) + 1 == len(layers) + 1
    assert s[0].numel() == 784 and s[-1].numel() == 10
    assert all(torch.isfinite(t).all() for t in s)
    for w, m in zip(lw, layers):
        assert w.numel() == m.weight.numel() + (0 if m.bias is None else m.bias.numel())
    # the logits' in-strength is the head's row sums plus its bias
    head = layers[-1]
    np.testing.assert_allclose(s[-1].numpy(), (head.weight.sum(1) + head.bias).detach().numpy(),
                               rtol=1e-5)


@pytest.mark.parametrize("arch, expected", [
    ("vgg11", [1, 2, 3, 4, 5, 6, 7, 8]),                 # one probe point per convolution
    ("resnet20", [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]),   # the stem, then each block's conv2
])
def test_probe_points_meet_their_node_layers(arch, expected):
    model = models.build(arch, width=0.25).eval()
    assert cnt.probe_node_layers(model) == expected
    # the node layer's units are the probe point's output units
    shapes = [s.numel() for s in cnt.node_strengths(model, (1, 28, 28))]
    x = torch.zeros(1, 1, 28, 28)
    from modlib import features
    outputs = features.probe(model, x)
    assert [shapes[i] for i in expected] == [f.shape[1] for f in outputs.values()]
    y_all = cnt.layer_fluctuation(cnt.node_strengths(model, (1, 28, 28)))
    np.testing.assert_array_equal(cnt.probe_fluctuation(model, (1, 28, 28)), y_all[expected])


def test_probe_node_layers_refuses_models_without_probe_points():
    with pytest.raises(ValueError, match="no probe_points"):
        cnt.probe_node_layers(nn.Sequential(nn.Linear(3, 2)))


def test_link_weights_order_and_content():
    a, b = nn.Linear(3, 2), nn.Linear(2, 1, bias=False)
    lw = cnt.link_weights(nn.Sequential(a, nn.ReLU(), b))
    np.testing.assert_array_equal(lw[0].numpy(),
                                  torch.cat([a.weight.flatten(), a.bias]).detach().numpy())
    np.testing.assert_array_equal(lw[1].numpy(), b.weight.flatten().detach().numpy())


def test_fluctuation_is_population_std():
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=n) for n in (5, 17, 1)]
    np.testing.assert_allclose(cnt.layer_fluctuation(layers), [np.std(x) for x in layers])
    np.testing.assert_allclose(cnt.layer_fluctuation([torch.tensor([1.0, 3.0])]), [1.0])
    with pytest.raises(ValueError, match="empty"):
        cnt.layer_fluctuation([np.array([])])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="Softmax at '1'.*supported"):
        cnt.node_strengths(nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=1)), (3,))
    with pytest.raises(ValueError, match="LSTM"):
        cnt.link_weights(nn.Sequential(nn.LSTM(3, 3)))
    with pytest.raises(ValueError, match=r"input_shape=\(3, 8, 8\) does not fit"):
        cnt.node_strengths(nn.Sequential(nn.Conv2d(1, 2, 3)), (3, 8, 8))
    with pytest.raises(TypeError, match="input_shape=-1"):
        cnt.node_strengths(nn.Sequential(nn.Linear(3, 3)), -1)
    with pytest.raises(ValueError, match=r"input_shape\[0\]=0"):
        cnt.node_strengths(nn.Sequential(nn.Linear(3, 3)), (0,))
    with pytest.raises(ValueError, match="directly after"):
        cnt.node_strengths(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3)).eval(),
                           (3,))
    with pytest.raises(ValueError, match="padding_mode"):
        cnt.node_strengths(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1,
                                                   padding_mode="reflect")), (1, 5, 5))


# --------------------------------------------------------------------------------------------
# Divergences on known distributions


def test_wasserstein_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20000), rng.normal(1.5, 1, 20000)
    assert cnt.wasserstein1(a, b) == pytest.approx(1.5, abs=0.03)
    assert cnt.wasserstein1([0.0, 1.0], [3.0, 4.0]) == pytest.approx(3.0)


def test_jeffreys_matches_the_gaussian_formula():
    # J(N(0,1), N(1,1)) = (mu1 - mu2)^2 / sigma^2 = 1; the original's plain sum is J / dx.
    # A Scott-bandwidth KDE widens each variance by h^2, h = n^(-1/5).
    rng = np.random.default_rng(1)
    n = 20000
    a, b = rng.normal(0, 1, n), rng.normal(1, 1, n)
    grid = cnt.common_grid(a, b)
    dx = grid[1] - grid[0]
    expected = 1.0 / (1.0 + n ** (-0.4))
    assert cnt.jeffreys_divergence(a, b) * dx == pytest.approx(expected, rel=0.05)
    assert cnt.jeffreys_divergence(a, a) == pytest.approx(0.0, abs=1e-12)


def test_jeffreys_reports_infinity():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 0.01, 500), rng.normal(100, 0.01, 500)
    assert cnt.jeffreys_divergence(a, b) == math.inf


def test_js_bounded_and_matches_integration():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 20000), rng.normal(2, 1, 20000)
    p, q = stats.norm(0, 1).pdf, stats.norm(2, 1).pdf

    def integrand(x):
        m = 0.5 * (p(x) + q(x))
        return 0.5 * p(x) * np.log(p(x) / m) + 0.5 * q(x) * np.log(q(x) / m)

    exact = integrate.quad(integrand, -12, 14)[0]
    assert cnt.js_divergence(a, b) == pytest.approx(exact, abs=0.01)
    far = cnt.js_divergence(rng.normal(0, 0.01, 500), rng.normal(100, 0.01, 500))
    assert far <= math.log(2) and far == pytest.approx(math.log(2), abs=1e-6)
    assert cnt.js_divergence(a, a) == pytest.approx(0.0, abs=1e-12)


def test_divergence_matrix_and_stats():
    rng = np.random.default_rng(4)
    samples = [rng.normal(mu, 1, 500) for mu in (0, 1, 3)]
    d = cnt.divergence_matrix(samples, "wasserstein")
    assert d.shape == (3, 3) and np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert d[0, 1] < d[0, 2]
    with pytest.raises(ValueError, match="kind='kl'"):
        cnt.divergence_matrix(samples, "kl")
    with pytest.raises(ValueError, match="zero spread"):
        cnt.js_divergence([1.0, 1.0], [1.0, 1.0])
    st = cnt.spread_stats(np.arange(101.0))
    assert st["iqr"] == pytest.approx(90.0) and st["tail"] == 0.0
    assert st["std"] == pytest.approx(np.std(np.arange(101.0)))
    # median 0, MAD 0.5: only the ten values at 50 lie beyond 3 * MAD
    heavy = np.r_[np.repeat([-1.0, -0.5, 0.0, 0.5, 1.0], 18), np.full(10, 50.0)]
    assert cnt.spread_stats(heavy)["tail"] == pytest.approx(0.1)


def test_summary_pairs_node_layers_with_incoming_links():
    a = _set(nn.Linear(2, 2), [[1, 2], [3, 4]], [0.5, -1])
    b = _set(nn.Linear(2, 1), [[1, -1]], [2])
    model = nn.Sequential(a, nn.ReLU(), b)
    table = cnt.summary(cnt.node_strengths(model, (2,)), cnt.link_weights(model))
    assert table["layer"].tolist() == [0, 1, 2] and table["units"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(table["Y"], [1.0, 0.25, 0.0])
    assert np.isnan(table.loc[0, "lw_std"])
    np.testing.assert_allclose(table.loc[1, "lw_std"], np.std([1, 2, 3, 4, 0.5, -1]))
    np.testing.assert_allclose(table.loc[2, "lw_std"], np.std([1, -1, 2]))
    with pytest.raises(ValueError, match="3 node layers, so 2 expected"):
        cnt.summary(cnt.node_strengths(model, (2,)), cnt.link_weights(model)[:1])
