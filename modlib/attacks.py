"""Adversarial inputs: FGSM (Goodfellow et al., ICLR 2015, arXiv 1412.6572, §3) and L∞ PGD
(Madry et al., ICLR 2018, arXiv 1706.06083, §2.1), untargeted, in pixel space ([0, 1]) with the
normalisation inside the model. Decisions: ``docs/dynamics_and_robustness.md``.

Introduced in notebook 09_adversarial_inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import data, features
from .checks import check_choice, check_float, check_int

ATTACKS = ("fgsm", "pgd")


def _mean_std(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    check_choice("dataset", dataset, data.NORMALISATION)
    return tuple(torch.tensor(v).view(1, -1, 1, 1) for v in data.NORMALISATION[dataset])


def to_pixels(x: torch.Tensor, dataset: str) -> torch.Tensor:
    """Undo ``data.load``'s normalisation: ``(N, C, H, W)`` inputs → pixels clipped to [0, 1]."""
    x = torch.as_tensor(x)
    mean, std = (t.to(x.device) for t in _mean_std(dataset))
    return (x * std + mean).clamp_(0.0, 1.0)


def normalise(pixels: torch.Tensor, dataset: str) -> torch.Tensor:
    """Pixels in [0, 1] → the normalised inputs the models were trained on."""
    pixels = torch.as_tensor(pixels)
    mean, std = (t.to(pixels.device) for t in _mean_std(dataset))
    return (pixels - mean) / std


class PixelSpaceModel(nn.Module):
    """``model`` (kept as ``.model``) with ``dataset``'s normalisation as its first step: takes
    ``(N, C, H, W)`` pixels in [0, 1], returns the logits."""

    def __init__(self, model: nn.Module, dataset: str):
        super().__init__()
        mean, std = _mean_std(dataset)
        self.model, self.dataset = model, dataset
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0]


def _fgsm(model, x, y, eps, **_):
    return (x + eps * _input_gradient(model, x, y).sign()).clamp(0.0, 1.0).detach()


def _pgd(model, x, y, eps, steps, step_size, random_start, generator):
    adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
        adv = (x + eps * noise.to(x.device)).clamp(0.0, 1.0)
    for _ in range(steps):
        adv = adv + step_size * _input_gradient(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    return adv


def attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
           steps: int = 10, step_size: float | None = None, random_start: bool = True,
           seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Adversarial versions of pixel images ``x`` under an L∞ budget ``eps``.

    Args:
        name: ``"fgsm"`` or ``"pgd"``.
        model: a pixel-space classifier (:class:`PixelSpaceModel`), run in eval mode.
        x: ``(N, C, H, W)`` pixels in [0, 1]; y: ``(N,)`` true labels.
        eps: L∞ radius in pixel units, in [0, 1].
        steps, step_size, random_start, seed: PGD's; ``step_size`` defaults to
            ``2.5 · eps / steps``.

    Returns:
        ``(N, C, H, W)`` float32 pixels with ``|x' − x|_∞ <= eps`` and ``0 <= x' <= 1``, on
        ``x``'s device.

    Raises:
        ValueError: an unknown ``name`` (listing ``ATTACKS``), ``eps`` outside [0, 1], inputs
            outside [0, 1], mismatched ``y``, bad ``steps`` / ``step_size`` / ``batch_size``.

    Introduced in notebook 09_adversarial_inputs.
    """
    check_choice("attack", name, ATTACKS)
    eps = check_float("eps", eps, low=0.0, high=1.0)
    steps = check_int("steps", steps, low=1)
    step_size = 2.5 * eps / steps if step_size is None else check_float(
        "step_size", step_size, low=0.0, low_open=True)
    batch_size = check_int("batch_size", batch_size, low=1)
    x, y = features._check_inputs(x), torch.as_tensor(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must hold one label per input, shape ({len(x)},), got "
                         f"{tuple(y.shape)}")
    low, high = float(x.min()), float(x.max())              # NaN if x holds one
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"x must be pixels in [0, 1], got values in [{low:.3f}, {high:.3f}]: "
                         "convert normalised images with attacks.to_pixels(x, dataset)")
    x, y = x.float(), y.long()
    if eps == 0:
        return x.clone()
    run = _fgsm if name == "fgsm" else _pgd
    generator = torch.Generator().manual_seed(seed)
    out = []
    with features.evaluating(model) as (device, _):
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            out.append(run(model, xb.to(device), yb.to(device), eps, steps=steps,
                           step_size=step_size, random_start=random_start,
                           generator=generator).to(x.device))
    return torch.cat(out)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``(N,)`` int64 predicted classes of ``model`` for inputs ``x`` (eval mode), on ``x``'s
    device (the passes run on the model's)."""
    x = torch.as_tensor(x)
    with features.evaluating(model) as (device, _):
        return torch.cat([model(xb.to(device)).argmax(1).to(x.device)
                          for xb in x.split(batch_size)])


def success_rate(clean_pred, adv_pred, y) -> float:
    """Share of the inputs classified correctly when clean (``(N,)`` ``clean_pred``, ``y``) that
    the attack made misclassified (``adv_pred``); ``nan`` if none was correct.

    Raises:
        ValueError: the three are not all ``(N,)``.

    Introduced in notebook 09_adversarial_inputs.
    """
    clean_pred, adv_pred, y = (torch.as_tensor(t) for t in (clean_pred, adv_pred, y))
    if not clean_pred.shape == adv_pred.shape == y.shape or y.ndim != 1:
        raise ValueError(f"clean_pred, adv_pred and y must all be (N,), got "
                         f"{tuple(clean_pred.shape)}, {tuple(adv_pred.shape)}, {tuple(y.shape)}")
    correct = clean_pred == y
    if not correct.any():
        return float("nan")
    return float((adv_pred[correct] != y[correct]).float().mean())


def batch_success(clean_pred, adv_pred, y, graph_size: int) -> np.ndarray:
    """``(N // graph_size,)`` :func:`success_rate` of each consecutive batch (NaN where none was
    classified correctly). Raises ``ValueError`` unless ``N`` is a positive multiple of
    ``graph_size``. Introduced in notebook 09_adversarial_inputs."""
    graph_size = check_int("graph_size", graph_size, low=1)
    n = len(y)
    if n == 0 or n % graph_size:
        raise ValueError(f"y has {n} labels: must be a positive multiple of "
                         f"graph_size={graph_size} (consecutive batches)")
    return np.array([success_rate(clean_pred[b:b + graph_size], adv_pred[b:b + graph_size],
                                  y[b:b + graph_size]) for b in range(0, n, graph_size)])
