"""The architectures, each exposing its ordered probe points and its removable units.

:class:`VGG` (CIFAR-style VGG-BN as in paper A's code, ceil-mode pooling), :class:`CifarResNet`
(He et al. 2016, arXiv 1512.03385, section 4.2, in akamaster's layout) and :class:`MLP`, all with
a width multiplier. *Probe points* are the modules whose outputs make the points of a modularity
curve, in forward order (``kind="paper"``: paper A's hooks; ``"post-activation"``: an ablation);
*units* are what layer pruning can remove. Models, probe points and decisions: docs/training.md.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from .checks import check_choice, check_float, check_int

VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
RESNET_BLOCKS = {
    "resnet20": [3, 3, 3],
    "resnet32": [5, 5, 5],
    "resnet44": [7, 7, 7],
    "resnet56": [9, 9, 9],
    "resnet110": [18, 18, 18],
}
ARCHITECTURES = (*VGG_CONFIGS, *RESNET_BLOCKS, "mlp")
PROBE_KINDS = ("paper", "post-activation")


@dataclass(frozen=True)
class Unit:
    """A removable unit of a model (docs/pruning.md).

    Attributes:
        name: the unit's module path, e.g. ``"features.4"`` (VGG) or ``"layer2.0"`` (ResNet).
        stage: 1-based stage (VGG: between max-pools; ResNet: ``layer1..3``).
        probe: the probe point (paper kind) at the unit's output.
        removable: its output has the shape of its input, so it can be removed with every other
            weight reused.
        index_in_stage: 0-based position inside its stage (``first_in_stage`` when 0).
            Introduced in notebook 06_layer_pruning.
    """

    name: str
    stage: int
    first_in_stage: bool
    probe: str
    removable: bool
    index_in_stage: int = 0


def _channels(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal conv weights (fan-out), zero conv biases; BatchNorm's defaults are 1 and 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ConvBlock(nn.Sequential):
    """3x3 conv (with bias, as in the paper's code) → BatchNorm → ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()


class VGG(nn.Module):
    """CIFAR-style VGG-BN, the layout of paper A's code (Simonyan & Zisserman, arXiv 1409.1556;
    docs/training.md). ``config``: channel counts and ``"M"`` (max-pool), e.g.
    ``VGG_CONFIGS["vgg11"]`` (a pruned network is a shorter config); ``width`` multiplies every
    channel count and the 512-wide classifier. Input ``(N, in_channels, H, W)``, output
    ``(N, num_classes)`` logits.
    """

    def __init__(self, config: list, num_classes: int = 10, in_channels: int = 1,
                 width: float = 1.0):
        super().__init__()
        self.config = list(config)
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            else:
                out = _channels(item, width)
                layers.append(ConvBlock(channels, out))
                channels = out
        self.features = nn.Sequential(*layers)
        hidden = _channels(512, width)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(), nn.Linear(channels, hidden), nn.ReLU(),
            nn.Dropout(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def units(self) -> list[Unit]:
        """The conv blocks, in forward order."""
        units, stage, position = [], 1, 0
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.MaxPool2d):
                stage, position = stage + 1, 0
            else:
                same_shape = layer.conv.in_channels == layer.conv.out_channels
                units.append(Unit(f"features.{i}", stage, position == 0, f"features.{i}.conv",
                                  same_shape, position))
                position += 1
        return units

    def probe_points(self, kind: str = "paper") -> list[str]:
        """Module paths whose outputs form the curve: each conv (``paper``) or its ReLU."""
        check_choice("kind", kind, PROBE_KINDS)
        leaf = "conv" if kind == "paper" else "relu"
        return [f"{u.name}.{leaf}" for u in self.units()]


class ShortcutA(nn.Module):
    """Option-A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pad_front = (out_channels - in_channels) // 2
        self.pad_back = out_channels - in_channels - self.pad_front

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or option-A) shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (ShortcutA(in_channels, out_channels, stride)
                         if stride != 1 or in_channels != out_channels else nn.Identity())
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for small images (He et al. 2016, section 4.2; akamaster layout, docs/training.md):
    ``num_blocks`` per stage, e.g. ``[9, 9, 9]`` for ResNet-56 (a pruned network: ``[2, 3, 6]``;
    ``ValueError`` unless three stages of at least one block), channels 16/32/64 × ``width``."""

    def __init__(self, num_blocks: list[int], num_classes: int = 10, in_channels: int = 1,
                 width: float = 1.0):
        super().__init__()
        if len(num_blocks) != 3 or min(num_blocks) < 1:
            raise ValueError(f"num_blocks={num_blocks} is not allowed: need three stages with at "
                             "least one block each")
        self.num_blocks = list(num_blocks)
        self.num_classes, self.in_channels, self.width = num_classes, in_channels, width
        widths = [_channels(c, width) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        channels = widths[0]
        for s, (n, out) in enumerate(zip(num_blocks, widths), start=1):
            blocks = [BasicBlock(channels, out, stride=2 if s > 1 else 1)]
            blocks += [BasicBlock(out, out) for _ in range(n - 1)]
            self.add_module(f"layer{s}", nn.Sequential(*blocks))
            channels = out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))

    def units(self) -> list[Unit]:
        """The residual blocks, in forward order."""
        return [Unit(f"layer{s}.{b}", s, b == 0, f"layer{s}.{b}",
                     isinstance(self.get_submodule(f"layer{s}.{b}").shortcut, nn.Identity), b)
                for s, n in enumerate(self.num_blocks, start=1) for b in range(n)]

    def probe_points(self, kind: str = "paper") -> list[str]:
        """The stem (raw conv for ``paper``, its ReLU otherwise), then every block output."""
        check_choice("kind", kind, PROBE_KINDS)
        return ["conv1" if kind == "paper" else "relu"] + [u.name for u in self.units()]


class MLP(nn.Module):
    """Flatten → hidden blocks (``linear``, ``relu``) → Linear; probes: each hidden Linear."""

    def __init__(self, in_features: int, hidden: list[int], num_classes: int = 10):
        super().__init__()
        self.hidden = list(hidden)
        self.num_classes, self.in_features = num_classes, in_features
        self.flatten = nn.Flatten()
        sizes = [in_features, *hidden]
        self.layers = nn.Sequential(*[
            nn.Sequential(OrderedDict(linear=nn.Linear(a, b), relu=nn.ReLU()))
            for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.flatten(x)))

    def units(self) -> list[Unit]:
        sizes = [self.in_features, *self.hidden]
        return [Unit(f"layers.{i}", 1, i == 0, f"layers.{i}.linear", sizes[i] == sizes[i + 1], i)
                for i in range(len(self.hidden))]

    def probe_points(self, kind: str = "paper") -> list[str]:
        check_choice("kind", kind, PROBE_KINDS)
        leaf = "linear" if kind == "paper" else "relu"
        return [f"{u.name}.{leaf}" for u in self.units()]


def build(arch: str, num_classes: int = 10, in_channels: int = 1, width: float = 1.0,
          image_size: int = 28) -> nn.Module:
    """Build an untrained model by name (``ARCHITECTURES``) with channel multiplier ``width``
    in ``(0, 4]``; ``image_size`` is used only by the MLP (hidden sizes ``[512, 256, 128] ×
    width``). Raises ``ValueError`` for an unknown ``arch`` or out-of-range numbers."""
    check_choice("arch", arch, ARCHITECTURES)
    check_int("num_classes", num_classes, low=2)
    check_int("in_channels", in_channels, low=1)
    check_float("width", width, low=0.0, high=4.0, low_open=True)
    if arch in VGG_CONFIGS:
        model = VGG(VGG_CONFIGS[arch], num_classes, in_channels, width)
    elif arch in RESNET_BLOCKS:
        model = CifarResNet(RESNET_BLOCKS[arch], num_classes, in_channels, width)
    else:
        check_int("image_size", image_size, low=1)
        hidden = [_channels(h, width) for h in (512, 256, 128)]
        model = MLP(in_channels * image_size * image_size, hidden, num_classes)
    model.arch = arch
    return model


def remove_units(model: nn.Module, names) -> nn.Module:
    """A shallower copy of a :class:`VGG`, :class:`CifarResNet` or :class:`MLP` without the units
    ``names`` (from ``model.units()``; empty: an exact copy), as paper A's pruned networks: the
    surviving units keep their order and weights (docs/pruning.md). Returns a new model of the
    same class, in the same train/eval mode. Raises ``ValueError`` for a name that is not a
    unit, a unit that is not removable, or a removal that would leave a stage without units.
    """
    units = model.units()
    by_name = {u.name: u for u in units}
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"{unknown} are not units of {type(model).__name__}; its units are "
                         f"{[u.name for u in units]}")
    fixed = [n for n in names if not by_name[n].removable]
    if fixed:
        raise ValueError(f"unit {fixed[0]!r} cannot be removed: it changes the width or "
                         "resolution of its input, so the next layer's weights would not fit")
    kept = [u for u in units if u.name not in names]
    emptied = sorted({u.stage for u in units} - {u.stage for u in kept})
    if emptied:
        raise ValueError(f"removing {names} would leave stage {emptied[0]} without units: every "
                         "stage keeps at least one")
    if isinstance(model, VGG):
        keep = iter(u in kept for u in units)
        config = [c for c in model.config if c == "M" or next(keep)]
        new = VGG(config, model.num_classes, model.in_channels, model.width)
    elif isinstance(model, CifarResNet):
        blocks = [sum(1 for u in kept if u.stage == s) for s in (1, 2, 3)]
        new = CifarResNet(blocks, model.num_classes, model.in_channels, model.width)
    elif isinstance(model, MLP):
        hidden = [h for h, u in zip(model.hidden, units) if u in kept]
        new = MLP(model.in_features, hidden, model.num_classes)
    else:
        raise ValueError(f"remove_units does not know {type(model).__name__}")
    new.arch = getattr(model, "arch", type(model).__name__.lower())
    # new unit i takes the weights of the i-th surviving old unit; everything else keeps its name
    state = model.state_dict()
    for n, o in zip(new.units(), kept):
        state.update({f"{n.name}.{key}": value
                      for key, value in model.get_submodule(o.name).state_dict().items()})
    new.load_state_dict({key: state[key] for key in new.state_dict()})
    return new.train(model.training)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters: weights, biases, BN scales and shifts, not BN running statistics
    (a 3x3 conv block: ``9 c_in c_out + 3 c_out``). Raises ``TypeError`` for a non-module.
    Introduced in notebook 01_train_models."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters())
