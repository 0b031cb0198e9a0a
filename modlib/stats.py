"""Inference over seeds: t and bootstrap intervals, paired comparisons, permutation tests, and
the verdict that words a claim ("supported", "refuted", "inconclusive"; ``docs/claims.md``).

The unit is the independently trained network (one per seed). Statistical references (Hahn &
Meeker 1991; Efron & Tibshirani 1993; Good 2000; Davison & Hinkley 1997): ``docs/references.md``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as st

from .checks import check_choice, check_float, check_int, check_seed

VERDICTS = ("supported", "refuted", "inconclusive")
DIRECTIONS = ("greater", "less")
DIGITS_JSON = 4          # decimals kept for the floats of a ledger row (claim)


# An estimate with its interval ---------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """An estimate ``mean`` with its ``confidence`` interval ``[low, high]`` (NaN bounds without
    an interval, e.g. one seed) over ``n`` independent units, named by ``over`` (``"seeds"``, or
    ``"members"`` of a population); unpacks as ``mean, low, high = interval``.

    Introduced in notebook 05_modularity_curves.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95
    method: str = ""
    over: str = "seeds"

    def __iter__(self):
        return iter((self.mean, self.low, self.high))

    @property
    def half_width(self) -> float:
        """``(high - low) / 2`` (NaN without an interval)."""
        return (self.high - self.low) / 2


def _values(name: str, values, min_size: int = 1) -> np.ndarray:
    """``values`` as a 1-D float array, refusing empty input and NaNs."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} has shape {array.shape}: must be one-dimensional "
                         "(one value per independent unit, e.g. per seed)")
    if array.size < min_size:
        raise ValueError(f"{name}={array.tolist()} is not allowed: need at least {min_size} "
                         f"value{'s' if min_size > 1 else ''}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name}={array.tolist()} holds non-finite values at positions "
                         f"{np.flatnonzero(bad).tolist()}: every unit needs a finite value")
    return array


def _confidence(confidence) -> float:
    return check_float("confidence", confidence, low=0.0, high=1.0, low_open=True,
                       high_open=True)


def t_interval(values, confidence: float = 0.95, of: str = "mean", bounds=None) -> Interval:
    """Student-t interval of the mean of ``values`` (``of="mean"``) or of one more draw
    (``of="draw"``): ``mean ± t_{n−1, (1+confidence)/2} · s · c``, ``s`` with ``ddof=1``,
    ``c = √(1/n)`` or ``√(1 + 1/n)``; ``bounds = (low, high)`` clips it.

    Returns:
        :class:`Interval`; with one value ``low = high = nan`` (no interval, not an error).

    Raises:
        ValueError: no values, non-finite values (naming them), ``confidence`` outside (0, 1),
            ``of`` not ``"mean"``/``"draw"``, ``bounds`` not a pair ``(low, high)`` with
            ``low < high``.

    Reference: Hahn & Meeker (1991), §4.2 and §4.7. Introduced in notebook 06_layer_pruning.
    """
    confidence = _confidence(confidence)
    check_choice("of", of, ("mean", "draw"))
    if bounds is not None and (len(bounds) != 2 or not bounds[0] < bounds[1]):
        raise ValueError(f"bounds={bounds!r} is not allowed: must be a pair (low, high) with "
                         "low < high")
    values = _values("values", values)
    n, mean = values.size, float(values.mean())
    method = "t over seeds" if of == "mean" else "t prediction"
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, confidence, method)
    scale = math.sqrt(1 / n) if of == "mean" else math.sqrt(1 + 1 / n)
    half = float(st.t.ppf((1 + confidence) / 2, n - 1) * values.std(ddof=1) * scale)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high, n, confidence, method)


def mean_ci(values, confidence: float = 0.95) -> Interval:
    """Mean of ``(n,)`` ``values`` (one per seed) and its Student-t interval,
    ``mean ± t_{n−1, (1+confidence)/2} · s / √n``: :func:`t_interval`'s :class:`Interval`
    (``"t over seeds"``; with ``n == 1`` ``low = high = nan``).

    Raises:
        ValueError: no values, non-finite values (naming them), ``confidence`` outside (0, 1).

    Reference: Hahn & Meeker (1991), §4.2. Introduced in notebook 05_modularity_curves.
    """
    return t_interval(values, confidence, "mean")


def median_ci(values, confidence: float = 0.95) -> Interval:
    """Median of ``(n,)`` ``values`` (one per seed) and its distribution-free interval: order
    statistics, by inverting the sign test (``scipy.stats.quantile_test(...).confidence_interval``),
    for effects of a discrete choice, whose t interval can be too narrow (``docs/claims.md``).
    ``[min, max]`` covers ``1 − 2 · 0.5^n``; below ``confidence`` (n ≤ 5 at 95 %) both bounds
    are NaN.

    Returns:
        :class:`Interval` with the median in ``mean`` (``"sign test over seeds"``).

    Raises:
        ValueError: as :func:`mean_ci`.

    Reference: Hahn & Meeker (1991), §5.2. Introduced in notebook 06_layer_pruning.
    """
    values = _values("values", values)
    confidence = _confidence(confidence)
    found = st.quantile_test(values, q=float(np.median(values)), p=0.5)
    bounds = found.confidence_interval(confidence_level=confidence)
    return Interval(float(np.median(values)), float(bounds.low), float(bounds.high), values.size,
                    confidence, "sign test over seeds")


def paired_ci(a, b, confidence: float = 0.95) -> Interval:
    """Mean difference ``a − b`` of ``(n,)`` values paired by unit (seed) and its paired t
    interval, as ``scipy.stats.ttest_rel(a, b).confidence_interval``: :func:`mean_ci` of the
    differences, ``method`` ``"paired t"``.

    Raises:
        ValueError: ``a`` and ``b`` of different lengths, empty, or with non-finite values.

    Reference: Hahn & Meeker (1991), §4.2 on the differences. Introduced in notebook
    05_modularity_curves.
    """
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a has {a.size} values and b has {b.size}: a paired comparison needs "
                         "one value of each per unit")
    return replace(mean_ci(a - b, confidence), method="paired t")


def bootstrap_ci(values, statistic=np.mean, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> Interval:
    """``statistic(values)`` of ``(n,)`` values with a BCa bootstrap interval
    (``scipy.stats.bootstrap``; percentile where BCa is degenerate). Too narrow under ~10 units:
    prefer :func:`mean_ci` for a handful of seeds.

    Returns:
        :class:`Interval`, ``method`` ``"bootstrap (BCa)"`` or ``"bootstrap (percentile)"``;
        ``low = high = nan`` for one value.

    Raises:
        ValueError: empty or non-finite values, bad ``confidence``/``n_resamples``/``seed``.

    Reference: Efron & Tibshirani (1993), ch. 13–14. Introduced in notebook 05_modularity_curves.
    """
    confidence = _confidence(confidence)
    values = _values("values", values)
    check_int("n_resamples", n_resamples, low=1)
    seed = check_seed("seed", seed)
    estimate = float(statistic(values))
    if values.size < 2:
        return Interval(estimate, math.nan, math.nan, values.size, confidence, "bootstrap")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")    # DegenerateDataWarning: handled by the fallback
            result = st.bootstrap((values,), statistic, confidence_level=confidence,
                                  n_resamples=n_resamples, method=method,
                                  rng=np.random.default_rng(seed))
        low, high = (float(v) for v in result.confidence_interval)
        if np.isfinite(low) and np.isfinite(high):
            break
    if not (np.isfinite(low) and np.isfinite(high)):   # every resample equal: a point
        low = high = estimate
    return Interval(estimate, low, high, values.size, confidence, f"bootstrap ({method})")


def prediction_interval(values, confidence: float = 0.95, bounds=None) -> Interval:
    """Mean of ``values`` and the Student-t interval for **one more draw**,
    ``mean ± t · s · √(1 + 1/n)``, clipped to ``bounds``: does a single run differ from a control
    repeated over seeds? :func:`t_interval`'s :class:`Interval` (``"t prediction"``).

    Raises:
        ValueError: as :func:`t_interval`.

    Reference: Hahn & Meeker (1991), §4.7 (``docs/pruning.md``). Introduced in notebook
    06_layer_pruning.
    """
    return t_interval(values, confidence, "draw", bounds)


# Rank correlations ---------------------------------------------------------------------------
def _ranks_centred(values: np.ndarray) -> np.ndarray:
    ranks = st.rankdata(values, axis=0)
    return ranks - ranks.mean(0)


def spearman_permutation(x, y, n_resamples: int = 9999, seed: int = 0) -> dict:
    """Spearman ρ between ``(n,)`` ``x`` and ``y`` (``n >= 3``) and its two-sided permutation
    p-value (``scipy.stats.permutation_test`` over pairings; exact when ``n! <= n_resamples``).

    Returns:
        ``{"rho": float, "p": float}``; both NaN if ``x`` or ``y`` is constant.

    Raises:
        ValueError: lengths differ, fewer than 3 points, non-finite values, bad ``n_resamples``.

    Reference: Good (2000), ch. 3 (tests of association). Introduced in notebook
    10_architecture_metrics.
    """
    x, y = _values("x", x, min_size=3), _values("y", y, min_size=3)
    if x.shape != y.shape:
        raise ValueError(f"x has {x.size} values and y has {y.size}: a correlation needs pairs")
    check_int("n_resamples", n_resamples, low=1)
    seed = check_seed("seed", seed)
    rx, ry = _ranks_centred(x), _ranks_centred(y)
    if not rx.any() or not ry.any():
        return {"rho": math.nan, "p": math.nan}
    norm = math.sqrt((rx ** 2).sum() * (ry ** 2).sum())

    def statistic(ranks, axis=-1):
        return np.clip((ranks * rx).sum(axis=axis) / norm, -1.0, 1.0)

    result = st.permutation_test((ry,), statistic, permutation_type="pairings",
                                 n_resamples=n_resamples, alternative="two-sided",
                                 vectorized=True, rng=np.random.default_rng(seed))
    return {"rho": float(result.statistic), "p": float(result.pvalue)}


def spearman_bootstrap(frame, x: str, ys, *, group: str = "member", n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95):
    """Spearman ρ between ``frame[x]`` and each column in ``ys``, with percentile intervals of a
    cluster bootstrap that resamples whole groups (column ``group``, the independent unit).

    Returns:
        ``(table, boot)``: ``table`` indexed by ``ys`` with ``rho``, ``lo``, ``hi``; ``boot`` the
        ``(n_boot, len(ys))`` resampled ρ (for paired comparisons of two statistics).

    Raises:
        ValueError: fewer than 3 rows or 2 groups, bad ``n_boot`` or ``level``.

    Reference: Davison & Hinkley (1997), §3.8 (clustered data). Introduced in notebook
    08_complex_networks.
    """
    ys = list(ys)
    check_int("n_boot", n_boot, low=1)
    check_float("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    data_ = frame[[x, *ys]].to_numpy(dtype=np.float64)
    groups = frame[group].to_numpy()
    members = np.unique(groups)
    if len(data_) < 3 or len(members) < 2:
        raise ValueError(f"{len(data_)} rows in {len(members)} groups: a Spearman correlation "
                         "with a bootstrap needs at least 3 rows and 2 groups")
    rows_of = [np.flatnonzero(groups == m) for m in members]

    def rho(values):
        ranks = _ranks_centred(values)
        norm = np.sqrt((ranks ** 2).sum(0))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (ranks[:, 1:] * ranks[:, :1]).sum(0) / (norm[1:] * norm[0])
        return np.clip(r, -1.0, 1.0)             # rounding can step past ±1

    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, len(ys)))
    for b in range(n_boot):
        pick = rng.integers(len(members), size=len(members))
        boot[b] = rho(data_[np.concatenate([rows_of[i] for i in pick])])
    alpha = (1 - level) / 2
    table = pd.DataFrame({"rho": rho(data_), "lo": np.nanquantile(boot, alpha, axis=0),
                          "hi": np.nanquantile(boot, 1 - alpha, axis=0)}, index=ys)
    return table, boot


# Rules, verdicts and the words every notebook uses -------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A rule stated before the data: the claim says ``effect > threshold`` (``"greater"``) or
    ``effect < threshold`` (``"less"``).

    Raises:
        ValueError: ``direction`` not one of ``"greater"``, ``"less"``, or a non-finite
            ``threshold``.

    Introduced in notebook 05_modularity_curves (``docs/claims.md``).
    """

    threshold: float = 0.0
    direction: str = "greater"

    def __post_init__(self):
        check_choice("direction", self.direction, DIRECTIONS)
        check_float("threshold", self.threshold)

    def text(self, confidence: float = 0.95, over: str = "seeds") -> str:
        """The rule in words, e.g. ``"supported if the 95 % CI over seeds lies above 0; refuted
        if it lies below 0; inconclusive otherwise"`` (``over``: the interval's units)."""
        confidence = _confidence(confidence)
        level = f"{100 * confidence:g} %"
        yes, no = ("above", "below") if self.direction == "greater" else ("below", "above")
        t = f"{self.threshold:g}"
        return (f"supported if the {level} CI over {over} lies {yes} {t}; refuted if it lies "
                f"{no} {t}; inconclusive otherwise")


def verdict(interval: Interval, rule: Rule) -> str:
    """``"supported"`` iff the whole interval lies strictly on the claimed side of the rule's
    threshold, ``"refuted"`` iff strictly on the other, else (or without an interval)
    ``"inconclusive"`` (``docs/claims.md``).

    Raises:
        TypeError: ``interval`` not an :class:`Interval` or ``rule`` not a :class:`Rule`.

    Introduced in notebook 05_modularity_curves.
    """
    if not isinstance(interval, Interval):
        raise TypeError(f"interval={interval!r} must be a stats.Interval")
    if not isinstance(rule, Rule):
        raise TypeError(f"rule={rule!r} must be a stats.Rule")
    low, high = interval.low, interval.high
    if interval.n < 2 or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    above, below = low > rule.threshold, high < rule.threshold
    if rule.direction == "less":
        above, below = below, above
    return "supported" if above else "refuted" if below else "inconclusive"


def describe(interval: Interval, rule: Rule, unit: str = "", digits: int = 3) -> str:
    """The words every notebook uses for a tested claim, e.g.
    ``"supported: +0.153 (95 % CI +0.120 to +0.186 over 5 seeds)"``.

    Args:
        unit: appended to each number, e.g. ``" pp"``.
        digits: decimals of the numbers (>= 0).

    Returns:
        ``"<verdict>: <effect> (<level> % CI <low> to <high> over <n> seeds)"``, or
        ``"inconclusive: <effect> (1 seed: no interval)"``.

    Raises:
        TypeError: as :func:`verdict`, or ``digits`` not an integer.
        ValueError: as :func:`verdict`, or ``digits`` < 0.

    Introduced in notebook 05_modularity_curves.
    """
    digits = check_int("digits", digits, low=0)
    word = verdict(interval, rule)

    def fmt(value):
        return f"{value:+.{digits}f}{unit}"

    seeds = f"{interval.n} {interval.over if interval.n != 1 else interval.over[:-1]}"
    if not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        return f"{word}: {fmt(interval.mean)} ({seeds}: no interval)"
    level = f"{100 * interval.confidence:g} %"
    return (f"{word}: {fmt(interval.mean)} ({level} CI {fmt(interval.low)} to "
            f"{fmt(interval.high)} over {seeds})")


def _json_float(value: float):
    value = float(value)
    return round(value, DIGITS_JSON) if math.isfinite(value) else None


def claim(id: str, paper: str, claim: str, notebook: str, statistic: str,
          interval: Interval, rule: Rule) -> dict:
    """One row of the claims ledger (``results/claims.json``, the README and the book).

    Args:
        id: ``<paper>-<short-slug>[-<arch>]``, e.g. ``"A-curve-rises-vgg11"``.
        paper: ``"A"`` (arXiv 2111.12485), ``"B"`` or ``"CNT"`` (arXiv 2110.02628).

    Returns:
        ``{"id", "paper", "claim", "notebook", "statistic", "effect", "ci_low", "ci_high",
        "n_seeds", "verdict", "rule"}``; floats rounded to 4 decimals (``None`` for NaN).

    Raises:
        ValueError: an empty text field or an ``id`` that does not start with ``"<paper>-"``.
        TypeError: as :func:`verdict`.

    Introduced in notebook 05_modularity_curves (``docs/claims.md``).
    """
    texts = dict(id=id, paper=paper, claim=claim, notebook=notebook, statistic=statistic)
    for name, value in texts.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}={value!r} is not allowed: must be a non-empty string")
    if not id.startswith(f"{paper}-"):
        raise ValueError(f"id={id!r} is not allowed: must start with the paper, {paper + '-'!r} "
                         "(ids are '<paper>-<short-slug>[-<arch>]')")
    word = verdict(interval, rule)
    return {**texts, "effect": _json_float(interval.mean), "ci_low": _json_float(interval.low),
            "ci_high": _json_float(interval.high), "n_seeds": int(interval.n), "verdict": word,
            "rule": rule.text(interval.confidence, interval.over)}


def summarise(frame, by, value: str, confidence: float = 0.95, rule: Rule | None = None):
    """:func:`mean_ci` of column ``value`` within each group of ``frame.groupby(by)``, one row per
    unit (seed) in each group, e.g. a curve's mean over seeds at every (model, layer).

    Returns:
        DataFrame: the ``by`` columns (groups in order of first appearance), ``mean``, ``low``,
        ``high``, ``n``, and ``verdict`` (:func:`verdict`) when a ``rule`` is given.

    Raises:
        ValueError: a missing column, or as :func:`mean_ci`.

    Introduced in notebook 07_training_dynamics (also used by 09_adversarial_inputs).
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, value] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the column(s) {missing}: summarise needs {[*by, value]}")
    rows = []
    for key, group in frame.groupby(by, sort=False):          # key: a tuple (by is a list)
        i = mean_ci(group[value].to_numpy(dtype=float), confidence)
        rows.append({**dict(zip(by, key)), "mean": i.mean, "low": i.low, "high": i.high, "n": i.n,
                     **({"verdict": verdict(i, rule)} if rule is not None else {})})
    return pd.DataFrame(rows)
