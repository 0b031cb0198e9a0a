"""Activations at the probe points, caught by forward hooks and flattened per sample in (C, H, W)
order, without pooling or centring, as paper A's code does (Lu et al., ECCV 2022, arXiv
2111.12485; ``docs/modularity_curves.md``, step 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .checks import check_int


class _StopForward(Exception):
    """Ends a forward pass once the wanted layer has fired."""


def flatten(output: torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` → ``(N, D)`` float32, channel-major, contiguous, detached."""
    return output.detach().reshape(len(output), -1).float().contiguous()


def resolve_layers(model: nn.Module, layers) -> list[str]:
    """Module names to probe: ``layers`` (a name or a list) checked against the model, or
    ``model.probe_points()`` when ``None``. Raises ``ValueError`` for unknown names."""
    if layers is None:
        if not hasattr(model, "probe_points"):
            raise ValueError("layers=None needs a model with probe_points() (see modlib.models); "
                             "pass the module names to probe instead")
        return list(model.probe_points())
    names = [layers] if isinstance(layers, str) else list(layers)
    known = dict(model.named_modules())
    unknown = [n for n in names if n not in known]
    if unknown:
        hint = (f"; its probe points are {model.probe_points()}"
                if hasattr(model, "probe_points") else "")
        raise ValueError(f"layers={unknown} are not modules of {type(model).__name__}{hint}")
    return names


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[tuple[torch.device, torch.dtype]]:
    """Hold ``model`` in eval mode for the ``with`` block, then restore its train/eval mode.
    Yields ``(device, dtype)`` of its parameters (the CPU and float32 for a model without any)."""
    parameter = next(model.parameters(), None)
    was_training = model.training
    model.eval()
    try:
        yield ((parameter.device, parameter.dtype) if parameter is not None
               else (torch.device("cpu"), torch.float32))
    finally:
        model.train(was_training)


def _check_inputs(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got shape {tuple(x.shape)}")
    return x


def probe(model: nn.Module, x: torch.Tensor, layers=None, batch_size: int = 500,
          device: str | torch.device | None = "cpu") -> dict[str, torch.Tensor]:
    """Outputs of the probe points (default ``model.probe_points()``) for ``(N, C, H, W)`` inputs,
    in eval mode under ``torch.inference_mode``; ``device=None`` returns them on the model's.

    Returns:
        ``{name: (N, D_name) float32}`` on ``device``, in the order of ``layers``.

    Raises:
        ValueError: empty ``x``, or a name that is not a module of ``model``.
    """
    x = _check_inputs(x)
    check_int("batch_size", batch_size, low=1)
    names = resolve_layers(model, layers)
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    with evaluating(model) as (model_device, _), torch.inference_mode():
        out = model_device if device is None else torch.device(device)
        handles = [model.get_submodule(name).register_forward_hook(
            lambda module, inputs, output, name=name: chunks[name].append(flatten(output).to(out)))
            for name in names]
        try:
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size].to(model_device))
        finally:
            for handle in handles:
                handle.remove()
    return {name: torch.cat(chunks[name]) for name in names}


@torch.no_grad()
def iter_probe(model: nn.Module, x: torch.Tensor, layers=None,
               device: str | torch.device | None = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, (N, D) float32)`` for each probe point, one layer in memory at a time (each
    pass stops at its layer); ``device`` as in :func:`probe`.

    Raises:
        ValueError: empty ``x``, or a name that is not a module of ``model``.
    """
    x = _check_inputs(x)
    names = resolve_layers(model, layers)
    with evaluating(model) as (model_device, _):
        out = model_device if device is None else torch.device(device)
        for name in names:
            caught = {}

            def hook(module, inputs, output):
                caught["output"] = flatten(output).to(out)
                raise _StopForward

            handle = model.get_submodule(name).register_forward_hook(hook)
            try:
                model(x.to(model_device))
            except _StopForward:
                pass
            finally:
                handle.remove()
            yield name, caught.pop("output")
