"""Architectures: shapes, probe points (the layers paper A's official code hooks; see
docs/training.md), units, errors."""

import pytest
import torch

from modlib import models

# number of probe points per architecture in paper A's official code (docs/training.md)
PAPER_PROBE_POINTS = {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16, "resnet20": 10,
                      "resnet32": 16, "resnet44": 22, "resnet56": 28, "resnet110": 55}


@pytest.mark.parametrize("arch", models.ARCHITECTURES)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (8, 1)])


def test_forward_shapes(arch, size, channels):
    model = models.build(arch, num_classes=7, in_channels=channels, width=0.125,
                         image_size=size).eval()
    assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


@pytest.mark.parametrize("arch,count", PAPER_PROBE_POINTS.items())


def test_probe_points_follow_the_paper(arch, count):
    model = models.build(arch, width=0.25)
    points = model.probe_points()
    assert len(points) == count
    modules = dict(model.named_modules())
    if arch.startswith("vgg"):
        assert all(isinstance(modules[p], torch.nn.Conv2d) for p in points)
    else:
        assert points[0] == "conv1" and isinstance(modules["conv1"], torch.nn.Conv2d)
        assert all(isinstance(modules[p], models.BasicBlock) for p in points[1:])
    assert len(model.probe_points("post-activation")) == count


def test_units():
    vgg = models.build("vgg11")
    units = vgg.units()
    assert [u.stage for u in units] == [1, 2, 3, 3, 4, 4, 5, 5]
    assert [u.first_in_stage for u in units] == [True, True, True, False, True, False, True, False]
    resnet = models.build("resnet56")
    blocks = resnet.units()
    assert len(blocks) == 27 and blocks[9].name == "layer2.0" and blocks[9].first_in_stage
    assert [u.probe for u in blocks] == resnet.probe_points()[1:]


def test_width_multiplier_and_pruned_configs():
    assert models.build("vgg16", width=0.25).features[0].conv.out_channels == 16
    assert models.build("resnet20", width=0.5).conv1.out_channels == 8
    pruned = models.CifarResNet([2, 3, 6], width=0.5)
    assert len(pruned.units()) == 11
    with pytest.raises(ValueError, match="at least one block"):
        models.CifarResNet([2, 0, 6])


def test_bad_arguments():
    with pytest.raises(ValueError, match="arch='vgg99' is not allowed: choose one of 'vgg11'"):
        models.build("vgg99")
    with pytest.raises(ValueError, match=r"width=0.0 is not allowed: must lie in \(0, 4\]"):
        models.build("vgg11", width=0.0)
    with pytest.raises(ValueError, match="kind='relu'"):
        models.build("vgg11").probe_points("relu")


def test_count_parameters_by_hand():
    # VGG-11 at width 1 on 1-channel 28x28 images: convs 1-64-128-256-256-512-512-512-512,
    # each 9·c_in·c_out + c_out (bias) + 2·c_out (BN); classifier 512-512-512-10
    channels = [1, 64, 128, 256, 256, 512, 512, 512, 512]
    convs = sum(9 * a * b + 3 * b for a, b in zip(channels, channels[1:]))
    classifier = (512 * 512 + 512) * 2 + 512 * 10 + 10
    model = models.build("vgg11", num_classes=10, in_channels=1, width=1.0, image_size=28)
    assert models.count_parameters(model) == convs + classifier
    # ResNet-20 stem only: a 3x3 conv without bias and a BN
    resnet = models.build("resnet20", num_classes=10, in_channels=3, width=1.0)
    assert models.count_parameters(resnet.conv1) == 9 * 3 * 16
    with pytest.raises(TypeError, match="torch.nn.Module"):
        models.count_parameters([torch.zeros(3)])


def test_index_in_stage():
    vgg = models.build("vgg16", width=0.25)
    assert [u.index_in_stage for u in vgg.units()] == [0, 1, 0, 1, 0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert all(u.first_in_stage == (u.index_in_stage == 0) for u in vgg.units())
    resnet = models.build("resnet56")
    keep = {1: 2, 2: 3, 3: 6}
    drop = [u.name for u in resnet.units() if u.index_in_stage >= keep[u.stage]]
    assert drop[:2] == ["layer1.2", "layer1.3"] and len(drop) == 27 - 11
    assert models.remove_units(resnet, drop).num_blocks == [2, 3, 6]
