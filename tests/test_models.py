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
