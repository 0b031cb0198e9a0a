"""modlib.architecture: counts against independent references, receptive fields against the closed
form and against the input gradient's support, the series/parallel algebra, tracing errors."""

import math

import pytest
import torch
import torchvision
from torch import nn

from modlib import architecture as A
from modlib import models, pruning

RF = A.ReceptiveField

# ---------------------------------------------------------------------------------------------
# Parameters and MACs against sum(p.numel()) and pruning.count_macs

MODLIB_MODELS = [("vgg11", 0.25), ("vgg16", 0.25), ("resnet20", 0.5)]
TORCHVISION_MODELS = ["vgg11", "resnet18", "resnet50", "densenet121", "mobilenet_v2"]


@pytest.mark.parametrize("arch,width", MODLIB_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_counts_modlib_models(arch, width, shape):
    model = models.build(arch, width=width, in_channels=shape[0])
    summary = A.trace(model, shape).summary()
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert summary["macs"] == pruning.count_macs(model, shape)


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_counts_torchvision_models(name):
    model = getattr(torchvision.models, name)(weights=None)
    summary = A.trace(model, (3, 32, 32)).summary()
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert summary["macs"] == pruning.count_macs(model, (3, 32, 32))


def test_mlp_has_counts_but_no_receptive_field():
    model = models.build("mlp", width=0.25)
    summary = A.trace(model, (1, 28, 28)).summary()
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert summary["macs"] == pruning.count_macs(model, (1, 28, 28))
    assert summary["depth"] == 4                         # three hidden layers and the head
    assert math.isnan(summary["receptive_field"]) and math.isnan(summary["compression"])


@pytest.mark.slow
def test_known_depths_and_receptive_fields_at_224():
    # depths by the usual naming; receptive fields at the last feature map as published for
    # these layouts (VGG-16: 212, Araujo et al. 2019, Table 1; ResNet-50 v1.5 (torchvision,
    # stride in the 3x3 conv): 427)
    vgg = A.trace(torchvision.models.vgg16(weights=None), (3, 224, 224)).summary()
    resnet = A.trace(torchvision.models.resnet50(weights=None), (3, 224, 224)).summary()
    assert (vgg["depth"], vgg["receptive_field"]) == (16, 212)
    assert (resnet["depth"], resnet["receptive_field"]) == (50, 427)
    assert A.trace(torchvision.models.densenet121(weights=None), (3, 32, 32)).summary()[
        "depth"] == 121


def test_cumulative_counts_follow_ancestors():
    model = models.build("resnet20", width=0.5)
    arch = A.trace(model, (1, 28, 28))
    ops = arch.ops
    # the output depends on every op: cumulative values there are the totals
    assert ops["cum_params"].iloc[-1] == ops["params"].sum()
    assert ops["cum_macs"].iloc[-1] == ops["macs"].sum()
    # a block output depends on the stem and that block's branch, not on later blocks
    stem_and_first = sum(p.numel() for m in (model.conv1, model.bn1, model.layer1[0])
                         for p in m.parameters())
    assert arch.row("layer1.0")["cum_params"] == stem_and_first
    assert arch.row("layer1.0")["d_out"] == 8 * 28 * 28
    assert arch.row("layer3.2")["cum_compression"] == pytest.approx(32 * 7 * 7 / 784)
    w, depth = arch.row("layer1.0")["cum_params"], arch.row("layer1.0")["depth"]
    assert depth == 3
    assert arch.row("layer1.0")["cum_log10_vc_upper"] == pytest.approx(
        math.log10(w * depth * math.log2(w)))


# ---------------------------------------------------------------------------------------------
# Receptive fields: closed form and empirical


def expected_support(rf, unit, size):
    """Input pixels ``[u + i·j, u + i·j + r − 1]`` of output unit ``i``, clipped to the image."""
    first = rf.start + unit * rf.jump
    return max(0, int(math.floor(first))), min(size - 1, int(math.ceil(first + rf.size - 1)))


def closed_form(layers):
    """Araujo et al.'s closed forms for a chain of (k, s, p, d) layers:
    r = 1 + Σ (k'_l − 1) Π_{i<l} s_i, j = Π s_l, u = −Σ p_l Π_{i<l} s_i, k' = d(k − 1) + 1."""
    r, j, u = 1, 1, 0
    for k, s, p, d in layers:
        r += (d * (k - 1)) * j
        u -= p * j
        j *= s
    return r, j, u


STACKS = {
    "strides": [nn.Conv2d(1, 2, 3, 1, 1), nn.Conv2d(2, 2, 3, 2, 1), nn.Conv2d(2, 2, 5, 2, 2)],
    "dilation": [nn.Conv2d(1, 2, 3, 1, 0, dilation=2), nn.ReLU(), nn.Conv2d(2, 2, 3, 1, 3, 3)],
    "pooling": [nn.Conv2d(1, 2, 3, 1, 1), nn.MaxPool2d(2, 2), nn.Conv2d(2, 2, 3, 1, 1),
                nn.AvgPool2d(3, 2, 1), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 1)],
}
STACK_PARAMS = {  # (k, s, p, d) of each layer that touches the grid, in order
    "strides": [(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 2, 1)],
    "dilation": [(3, 1, 0, 2), (3, 1, 3, 3)],
    "pooling": [(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1), (1, 1, 0, 1)],
}


@pytest.mark.parametrize("name", list(STACKS))
def test_receptive_field_closed_form(name):
    net = nn.Sequential(*STACKS[name])
    last = A.trace(net, (1, 40, 40)).ops.iloc[-1]
    r, j, u = closed_form(STACK_PARAMS[name])
    assert (last["rf_h"], last["jump_h"], last["start_h"]) == (r, j, u)
    assert (last["rf_w"], last["jump_w"], last["start_w"]) == (r, j, u)


def test_receptive_field_hand_computed():
    # conv3 p1 → conv3 s2 p1 → maxpool2 s2 → conv3 dilation 2 p2:
    # r = 3, 5, 7, 7 + 4·4 = 23; j = 1, 2, 4, 4; u = −1, −2, −2, −2 − 2·4 = −10
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, 2, 1),
                        nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=2, dilation=2))
    ops = A.trace(net, (1, 32, 32)).ops
    assert ops["rf_h"].tolist() == [3, 5, 7, 23]
    assert ops["jump_h"].tolist() == [1, 2, 4, 4]
    assert ops["start_h"].tolist() == [-1, -2, -2, -10]


def test_receptive_field_rectangular_kernels_and_stride():
    net = nn.Sequential(nn.Conv2d(1, 1, (1, 5), stride=(1, 2), padding=(0, 2)),
                        nn.Conv2d(1, 1, (3, 1), padding=(1, 0)))
    last = A.trace(net, (1, 16, 16)).ops.iloc[-1]
    assert (last["rf_h"], last["jump_h"], last["start_h"]) == (3, 1, -1)
    assert (last["rf_w"], last["jump_w"], last["start_w"]) == (5, 2, -2)


@pytest.mark.parametrize("name", list(STACKS))
def test_hand_made_stacks_empirically(name):
    net = nn.Sequential(*STACKS[name])
    arch = A.trace(net, (1, 40, 40))
    row = arch.ops.iloc[-1]
    module = str(len(STACKS[name]) - 1)
    h = row["out_shape"][1]
    for unit in [(0, 0), (h // 2, h // 3), (h - 1, h - 1)]:
        found = A.empirical_receptive_field(net, (1, 40, 40), module, unit)
        assert found["rows"] == expected_support(RF(row.rf_h, row.jump_h, row.start_h),
                                                   unit[0], 40)
        assert found["cols"] == expected_support(RF(row.rf_w, row.jump_w, row.start_w),
                                                   unit[1], 40)


@pytest.mark.parametrize("arch,width", MODLIB_MODELS)
def test_default_models_receptive_field_matches_gradient_support(arch, width):
    model = models.build(arch, width=width)
    traced = A.trace(model, (1, 28, 28))
    checked_inside = 0
    for probe in model.probe_points():
        row = traced.row(probe)
        h, w = row["out_shape"][1:]
        for unit in [(0, 0), (h // 2, w // 2), (h - 1, w - 1)]:
            found = A.empirical_receptive_field(model, (1, 28, 28), probe, unit)
            rows = expected_support(RF(row.rf_h, row.jump_h, row.start_h), unit[0], 28)
            cols = expected_support(RF(row.rf_w, row.jump_w, row.start_w), unit[1], 28)
            assert (found["rows"], found["cols"]) == (rows, cols), (probe, unit)
            checked_inside += rows != (0, 27)
    assert checked_inside >= 3           # some supports end inside the image, not only clipped


def test_empirical_receptive_field_errors():
    model = models.build("vgg11", width=0.25)
    with pytest.raises(ValueError, match="outside"):
        A.empirical_receptive_field(model, (1, 28, 28), "features.0.conv", (28, 0))
    with pytest.raises(ValueError, match="probe_points"):
        A.empirical_receptive_field(nn.Conv2d(1, 1, 3), (1, 8, 8))


# ---------------------------------------------------------------------------------------------
# The algebra


def test_rf_series_matches_closed_form_and_is_associative():
    a, b, c = RF.layer(3, 1, 1), RF.layer(3, 2, 1), RF.layer(5, 2, 2, dilation=2)
    left, right = A.rf_series(A.rf_series(a, b), c), A.rf_series(a, A.rf_series(b, c))
    assert left == right
    r, j, u = closed_form([(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 2, 2)])
    assert (left.size, left.jump, left.start) == (r, j, u) == (21, 4, -6)
    assert A.rf_series(RF(), a) == a == A.rf_series(a, RF())        # identity is neutral
    assert expected_support(left, 2, 100) == (-6 + 8, -6 + 8 + 20)


def test_rf_parallel_union():
    centred = A.rf_parallel([RF(5, 2, -2), RF(1, 2, 0)])           # residual: conv path + identity
    assert centred == RF(5, 2, -2)
    shifted = A.rf_parallel([RF(3, 1, -1), RF(1, 1, 2)])           # off-centre branch: [−1, 2]
    assert shifted == RF(4, 1, -1)
    with pytest.raises(ValueError, match="jumps"):
        A.rf_parallel([RF(3, 1, 0), RF(3, 2, 0)])
    with pytest.raises(ValueError, match="at least one"):
        A.rf_parallel([])


def test_compose_series_of_two_convolutions():
    first = A.Block.conv(1, 4, 16, kernel=3, stride=1, padding=1)
    second = A.Block.conv(4, 8, 16, kernel=3, stride=2, padding=1)
    both = A.compose_series(first, second)
    assert both.params == (4 * 9 + 4) + (8 * 4 * 9 + 8)
    assert both.macs == 4 * 9 * 16 * 16 + 8 * 4 * 9 * 8 * 8
    assert both.depth == 2
    assert both.compression == pytest.approx(8 * 8 * 8 / (16 * 16))
    assert both.compression == pytest.approx(first.compression * second.compression)
    assert both.rf[0] == RF(5, 2, -2)
    # the same network traced gives the same numbers
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, 2, 1))
    summary, last = A.trace(net, (1, 16, 16)).summary(), A.trace(net, (1, 16, 16)).ops.iloc[-1]
    assert (summary["parameters"], summary["macs"], summary["depth"]) == (
        both.params, both.macs, both.depth)
    assert (last["rf_h"], last["jump_h"], last["start_h"]) == (5, 2, -2)
    with pytest.raises(ValueError, match="outputs D=512 but the second expects D=256"):
        A.compose_series(second, first)


class Residual(nn.Module):
    def __init__(self, join):
        super().__init__()
        self.join = join
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        long = self.b(self.a(x))
        return long + self.c(x) if self.join == "add" else torch.cat([long, self.c(x)], 1)


@pytest.mark.parametrize("join", ["add", "concat"])
def test_compose_parallel_equals_traced_branches(join):
    conv3 = A.Block.conv(4, 4, 8, kernel=3, padding=1)
    long = A.compose_series(conv3, conv3)
    short = A.Block.conv(4, 4, 8, kernel=1)
    block = A.compose_parallel([long, short], join)
    assert block.params == 2 * (144 + 4) + (16 + 4)
    assert block.depth == 2 and block.rf[0] == RF(5, 1, -2)
    assert block.d_out == (4 * 64 if join == "add" else 8 * 64)
    traced = A.trace(Residual(join), (4, 8, 8))
    summary, last = traced.summary(), traced.ops.iloc[-1]
    assert (summary["parameters"], summary["macs"], summary["depth"]) == (
        block.params, block.macs, block.depth)
    assert (last["rf_h"], last["start_h"], last["d_out"]) == (5, -2, block.d_out)


def test_compose_parallel_identity_and_errors():
    conv = A.Block.conv(4, 4, 8, kernel=3, padding=1)
    identity = A.Block(d_in=256, d_out=256)
    block = A.compose_parallel([conv, identity], "add")
    assert (block.params, block.depth, block.compression) == (conv.params, 1, 1.0)
    with pytest.raises(ValueError, match="join='mul'"):
        A.compose_parallel([conv, identity], "mul")
    with pytest.raises(ValueError, match="equal output"):
        A.compose_parallel([conv, A.Block.conv(4, 8, 8, kernel=3, padding=1)], "add")
    with pytest.raises(ValueError, match="one input"):
        A.compose_parallel([conv, A.Block(d_in=10, d_out=256)], "add")
    assert A.compose_parallel([conv, A.Block.conv(4, 8, 8, 3, padding=1)], "concat").d_out == 768


def test_vc_bounds_values():
    bounds = A.vc_bounds(1024, 4)
    assert bounds["vc_upper"] == 1024 * 4 * 10
    assert bounds["vc_lower"] == 1024 * 4 * 8
    assert bounds["log10_vc_upper"] == pytest.approx(math.log10(40960))
    with pytest.raises(ValueError, match="parameters=1"):
        A.vc_bounds(1, 4)
    with pytest.raises(ValueError, match="depth=0"):
        A.vc_bounds(100, 0)


# ---------------------------------------------------------------------------------------------
# Tracing errors and leaves


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        if x.sum() > 0:                                  # control flow on data: fx cannot trace
            return self.conv(x)
        return self.conv(-x)


def test_untraceable_module_is_named_with_a_remedy():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), DataDependent(), nn.ReLU())
    with pytest.raises(A.TraceFailure, match=r"module '1' \(DataDependent\)") as error:
        A.trace(net, (1, 8, 8))
    assert "leaf_modules=['1']" in str(error.value)
    # the remedy works: the module becomes one operation, its parameters and MACs kept
    traced = A.trace(net, (1, 8, 8), leaf_modules=["1"])
    assert traced.summary()["parameters"] == sum(p.numel() for p in net.parameters())
    assert traced.summary()["macs"] == pruning.count_macs(net, (1, 8, 8))
    assert math.isnan(traced.ops.iloc[-1]["rf_h"])       # its grid changes by an unknown rule
    assert A.trace(net, (1, 8, 8), leaf_modules=[DataDependent]).ops["kind"].tolist()[1] == \
        "module:DataDependent"


def test_bad_input_shape_and_unknown_module():
    with pytest.raises(ValueError, match="input_shape"):
        A.trace(nn.Conv2d(1, 1, 3), (8, 8))
    traced = A.trace(models.build("vgg11", width=0.25), (1, 28, 28))
    with pytest.raises(ValueError, match="module='nope'"):
        traced.row("nope")


def test_by_depth_profile_hand_computed():
    # conv3 p1 (8 ch) → conv3 s2 p1 (2 ch) → conv1 (16 ch) → flatten → linear, on 1×8×8:
    # depth 1: r = 3, D = 8·64 = 512 → 8; depth 2: r = 5, D = 2·16 = 32 → 0.5;
    # depth 3: r = 5, D = 16·16 = 256 → 4, but the running minimum keeps 0.5; the linear layer
    # (depth 4) has no spatial grid and is left out
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 2, 3, 2, 1),
                        nn.Conv2d(2, 16, 1), nn.Flatten(), nn.Linear(256, 3))
    table = A.trace(net, (1, 8, 8)).by_depth()
    assert table.index.tolist() == [1, 2, 3]
    assert table["rf"].tolist() == [3, 5, 5]
    assert table["compression"].tolist() == pytest.approx([8.0, 0.5, 0.5])
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    assert A.trace(mlp, (1, 8, 8)).by_depth().empty
