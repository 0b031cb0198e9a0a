"""Linear centred kernel alignment (CKA): how similar two layers' representations are.

``CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))``, ``K = X Xᵀ``, ``L = Y Yᵀ`` (Kornblith
et al., ICML 2019, arXiv 1905.00414, §3), with the biased HSIC or the unbiased one of Song et al.
(JMLR 2012, eq. 5; Nguyen et al., ICLR 2021, arXiv 2010.15327), as the cosine between centred
float64 ``N × N`` Gram matrices. Method: ``docs/dynamics_and_robustness.md``.

Introduced in notebook 07_training_dynamics.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from . import features

__all__ = ["gram", "center_gram", "cka", "cka_from_grams", "layer_grams", "cka_matrix",
           "paired_cka"]


def _as_features(x, name: str) -> torch.Tensor:
    """``(N, ...)`` features as a flat ``(N, D)`` float64 tensor; errors name ``name``."""
    x = torch.as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"{name} must be a (N, D) feature matrix, got shape {tuple(x.shape)}")
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be real-valued, got dtype {x.dtype}")
    x = x.detach().reshape(len(x), -1).to(torch.float64)
    if len(x) < 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least 2 samples and 1 feature, got shape "
                         f"{tuple(x.shape)}")
    bad = ~torch.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name} contains {int(bad.sum())} non-finite values (NaN or inf), the "
                         f"first at {name}[{first[0]}, {first[1]}] = {x[first].item()}")
    return x


def gram(x) -> torch.Tensor:
    """Linear Gram matrix ``K = X_c X_cᵀ`` of column-centred ``(N, D)`` features (``(N, ...)`` is
    flattened), ``(N, N)`` float64; centring changes neither HSIC estimator.

    Raises:
        ValueError: fewer than 2 samples, or NaN / inf values (the message names the first).
    """
    x = _as_features(x, "x")
    x = x - x.mean(0, keepdim=True)
    return x @ x.T


def center_gram(k, unbiased: bool = False) -> torch.Tensor:
    """The centred ``(N, N)`` float64 Gram matrix ``K_c`` with ``⟨K_c, L_c⟩_F ∝ HSIC(K, L)``:
    ``H K H`` (biased) or U-centred (``unbiased``; Song et al. 2012, eq. 5), a new tensor.

    Raises:
        ValueError: ``k`` not square, non-finite, or too small for the estimator.
    """
    k = torch.as_tensor(k).to(torch.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"a Gram matrix must be square (N, N), got shape {tuple(k.shape)}")
    if not torch.isfinite(k).all():
        raise ValueError("the Gram matrix contains NaN or inf values")
    n, need = k.shape[0], 4 if unbiased else 2
    if n < need:
        raise ValueError(f"N={n} samples is not allowed: the {'unbiased' if unbiased else 'biased'}"
                         f" HSIC estimator needs N >= {need}")
    if unbiased:
        k = k.clone().fill_diagonal_(0.0)
        means = k.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
    else:
        means = k.mean(0)
        means = means - means.mean() / 2
    k = k - means[:, None] - means[None, :]
    return k.fill_diagonal_(0.0) if unbiased else k


def cka_from_grams(k, l, *, unbiased: bool = False) -> float:
    """Linear CKA from two ``(N, N)`` Gram matrices of the same N inputs.

    Raises:
        ValueError: different N, non-square or non-finite matrices, N too small for the
            estimator, or a constant representation (zero centred Gram).
    """
    k, l = torch.as_tensor(k), torch.as_tensor(l)
    if k.shape != l.shape:
        raise ValueError(f"Gram matrices of different shapes {tuple(k.shape)} and "
                         f"{tuple(l.shape)}: CKA compares two representations of the same inputs")
    kc, lc = center_gram(k, unbiased), center_gram(l.to(k.device), unbiased)
    norm_k, norm_l = torch.linalg.norm(kc), torch.linalg.norm(lc)
    if norm_k == 0 or norm_l == 0:
        raise ValueError(f"CKA is undefined for these Gram matrices: the "
                         f"{'first' if norm_k == 0 else 'second'} representation is constant "
                         "across samples (its centred Gram matrix is zero)")
    return float((kc * lc).sum() / (norm_k * norm_l))


def cka(x, y, *, unbiased: bool = False) -> float:
    """Linear CKA between ``(N, D1)`` features ``x`` and ``(N, D2)`` features ``y`` of the same
    inputs (Kornblith et al. 2019, §3; ``unbiased`` needs N >= 4): in [0, 1] for the biased
    estimator, the unbiased one can dip slightly below 0.

    Raises:
        ValueError: ``x`` and ``y`` with different N, fewer samples than the estimator needs,
            NaN / inf values (the message names the first), or a constant representation.

    Introduced in notebook 07_training_dynamics.
    """
    x, y = _as_features(x, "x"), _as_features(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x has N={len(x)} samples but y has N={len(y)}: CKA compares two "
                         "representations of the same inputs")
    return cka_from_grams(gram(x), gram(y), unbiased=unbiased)


def layer_grams(model, x, layers=None, batch_size: int = 500) -> dict[str, torch.Tensor]:
    """``{name: (N, N) float64}`` Gram matrices of every probe point for ``(N, C, H, W)`` inputs
    ``x``, from one ``features.probe`` pass, on the model's device.

    Raises:
        ValueError: empty ``x`` or unknown layers (from ``features``), non-finite activations.

    Introduced in notebook 07_training_dynamics.
    """
    outputs = features.probe(model, x, layers, batch_size=batch_size, device=None)
    return {name: gram(outputs.pop(name)) for name in list(outputs)}    # frees each as it goes


def _stack_centred(grams, unbiased: bool, name: str, like: torch.Tensor | None = None):
    """``(L, N²)``: each layer's centred Gram matrix, flattened and scaled to unit norm; with
    ``like``, on its device and checked to come from as many inputs."""
    if not isinstance(grams, Mapping):
        grams = {str(i): m for i, m in enumerate(grams)}
    if not grams:
        raise ValueError(f"{name} is empty: give at least one Gram matrix")
    shapes = {tuple(torch.as_tensor(m).shape) for m in grams.values()}
    if len(shapes) != 1:
        raise ValueError(f"{name} holds Gram matrices of different shapes {sorted(shapes)}: all "
                         "must be (N, N) for the same N inputs")
    rows = []
    for layer, m in grams.items():
        c = center_gram(m, unbiased).flatten()
        norm = torch.linalg.norm(c)
        if norm == 0:
            raise ValueError(f"CKA is undefined for layer {layer!r} of {name}: its "
                             "representation is constant across samples")
        rows.append(c / norm)
    stacked = torch.stack(rows)
    if like is not None and stacked.shape[1] != like.shape[1]:
        raise ValueError(f"grams_a and grams_b come from different numbers of inputs (N²="
                         f"{like.shape[1]} vs {stacked.shape[1]}): use the same inputs for both")
    return stacked if like is None else stacked.to(like.device)


def cka_matrix(grams_a, grams_b=None, *, unbiased: bool = False) -> np.ndarray:
    """Layer × layer linear CKA, ``(L_a, L_b)`` float64: ``M[i, j] = CKA(layer i of a, layer j of
    b)`` from ``{name: (N, N)}`` Gram matrices (:func:`layer_grams`) or lists of them; ``grams_b``
    (default ``grams_a``) must come from the *same* inputs.

    Raises:
        ValueError: empty inputs, different N, constant representations.

    Introduced in notebook 07_training_dynamics.
    """
    a = _stack_centred(grams_a, unbiased, "grams_a")
    b = a if grams_b is None else _stack_centred(grams_b, unbiased, "grams_b", like=a)
    return (a @ b.T).cpu().numpy()


def paired_cka(grams_a, grams_b, *, unbiased: bool = False) -> np.ndarray:
    """``(L,)`` float64 ``CKA(layer l of a, layer l of b)`` for every layer ``l``, the diagonal
    of :func:`cka_matrix`. Raises ``ValueError`` when the two hold different numbers of layers
    (or as :func:`cka_matrix`). Introduced in notebook 07_training_dynamics."""
    la, lb = len(grams_a), len(grams_b)
    if la != lb:
        raise ValueError(f"grams_a has {la} layers but grams_b has {lb}: paired CKA needs the "
                         "same probe points on both sides")
    a = _stack_centred(grams_a, unbiased, "grams_a")
    return (a * _stack_centred(grams_b, unbiased, "grams_b", like=a)).sum(1).cpu().numpy()
