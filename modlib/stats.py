"""Inference in one place: intervals over seeds, bootstrap CIs, paired comparisons, permutation
tests, and the verdict that words a claim ("supported", "refuted", "inconclusive").

A claim of a paper is tested over several **independently trained networks** (one per training
seed): the per-seed effects are the independent units, and their spread — not the spread over
test batches of one network — is what a rerun on another machine would see. This module turns
those per-seed numbers into an :class:`Interval` (the effect with its 95 % CI), and an interval
and a :class:`Rule` stated before the data into a verdict:

* ``"supported"`` iff the whole CI lies on the side of the threshold the claim names (strictly);
* ``"refuted"`` iff the whole CI lies on the other side;
* ``"inconclusive"`` otherwise (also with fewer than two seeds, when there is no interval).

Two reruns can therefore only turn "supported" into "refuted" if their two CIs are disjoint; the
usual disagreement between reruns moves a claim between a verdict and "inconclusive"
(``docs/claims.md``). :func:`claim` makes one row of the claims ledger that
``python -m modlib.companion.report`` merges into ``results/claims.json`` and the README.

Built on ``scipy.stats`` (``t``, ``bootstrap``, ``permutation_test``); NumPy and SciPy only
(pandas is imported lazily by :func:`spearman_bootstrap`, which takes a DataFrame).

References: Student-t intervals and prediction intervals, e.g. Hahn & Meeker, *Statistical
Intervals* (Wiley 1991), ch. 4; the bootstrap BCa interval, Efron & Tibshirani, *An Introduction to
the Bootstrap* (1993), ch. 14; permutation tests, Good, *Permutation Tests* (Springer 2000).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .checks import check_choice, check_float, check_int, check_seed

VERDICTS = ("supported", "refuted", "inconclusive")
DIRECTIONS = ("greater", "less")
DIGITS_JSON = 4          # decimals kept for the floats of a ledger row (claim)


# --------------------------------------------------------------------------------------------
# An estimate with its interval


@dataclass(frozen=True)
class Interval:
    """An estimate with its ``confidence`` interval.

    Attributes:
        mean: the point estimate (the effect).
        low, high: the interval's bounds (NaN when no interval can be estimated, e.g. one seed).
        n: number of independent units (seeds) behind the estimate.
        confidence: the interval's level, in (0, 1).
        method: how it was made, e.g. ``"t over seeds"``, ``"paired t"``, ``"bootstrap (BCa)"``.

    An Interval unpacks as ``mean, low, high = interval`` (the tuple the older helpers returned).

    Introduced in notebook 05_modularity_curves.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95
    method: str = ""

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
    """Student-t interval of ``values``: of their mean (``of="mean"``) or of one more draw
    (``of="draw"``), the engine behind :func:`mean_ci` and :func:`prediction_interval`.

    ``mean ± t_{n−1, (1+confidence)/2} · s · c`` with ``s`` the sample standard deviation
    (``ddof=1``), ``c = √(1/n)`` for the mean and ``c = √(1 + 1/n)`` for one more draw; quantile
    from ``scipy.stats.t``. ``bounds = (low, high)`` clips the interval to the range the quantity
    can take. Assumes independent, roughly normal values.

    Returns:
        :class:`Interval` (``method`` ``"t over seeds"`` or ``"t prediction"``); with one value
        ``low = high = nan`` (no interval, not an error).

    Raises:
        ValueError: no values, non-finite values (naming them), ``confidence`` outside (0, 1),
            ``of`` not ``"mean"``/``"draw"``, ``bounds`` not a pair ``(low, high)`` with
            ``low < high``.

    Reference: Hahn & Meeker (1991), §4.2 and §4.7. Introduced in notebook 06_layer_pruning.
    """
    from scipy import stats as st

    confidence = _confidence(confidence)
    check_choice("of", of, ("mean", "draw"))
    if bounds is not None:
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise ValueError(f"bounds={bounds!r} is not allowed: must be a pair (low, high) "
                             "with low < high")
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
    """Mean of ``values`` over independent units (seeds) and its Student-t confidence interval.

    ``mean ± t_{n−1, (1+confidence)/2} · s / √n``, ``s`` the sample standard deviation
    (``ddof=1``); quantile from ``scipy.stats.t`` (:func:`t_interval`). Assumes the ``n`` values
    are independent draws (one per independently trained network) from a distribution close
    enough to normal for the t interval (with 3–10 seeds a strongly skewed effect makes the
    interval approximate).

    Args:
        values: ``(n,)`` floats, one per unit.
        confidence: level of the interval, in (0, 1).

    Returns:
        :class:`Interval` with ``method="t over seeds"``; with ``n == 1`` ``low = high = nan``
        (no interval, not an error).

    Raises:
        ValueError: no values, non-finite values (naming them), ``confidence`` outside (0, 1).

    Reference: Hahn & Meeker (1991), §4.2. Introduced in notebook 05_modularity_curves.
    """
    return t_interval(values, confidence, "mean")


def paired_ci(a, b, confidence: float = 0.95) -> Interval:
    """Mean difference ``a − b`` over paired units (the same seed) and its t interval.

    The paired t interval of the differences ``d_i = a_i − b_i``: ``mean(d) ± t · s_d / √n``,
    equal to ``scipy.stats.ttest_rel(a, b).confidence_interval(confidence)``. Pairing removes
    the between-seed variation both quantities share (e.g. two curves of the same network).
    Assumes the pairs are independent and the differences roughly normal.

    Args:
        a, b: ``(n,)`` floats, ``a[i]`` and ``b[i]`` measured on the same unit.

    Returns:
        :class:`Interval` of the mean difference, ``method="paired t"`` (no interval for n = 1).

    Raises:
        ValueError: ``a`` and ``b`` of different lengths, empty, or with non-finite values.

    Reference: Hahn & Meeker (1991), §4.2 on the differences. Introduced in notebook
    05_modularity_curves.
    """
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a has {a.size} values and b has {b.size}: a paired comparison needs "
                         "one value of each per unit")
    interval = mean_ci(a - b, confidence)
    return Interval(interval.mean, interval.low, interval.high, interval.n, interval.confidence,
                    "paired t")


def bootstrap_ci(values, statistic=np.mean, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> Interval:
    """``statistic(values)`` with a bootstrap confidence interval (``scipy.stats.bootstrap``).

    The bias-corrected and accelerated (BCa) interval; where BCa is degenerate (e.g. all
    resampled statistics on one side of the estimate, or all values equal) the percentile
    interval is used instead and ``method`` says so. Assumes independent units; with few units
    (under about 10) the bootstrap interval is too narrow — prefer :func:`mean_ci` for a mean over
    a handful of seeds.

    Args:
        values: ``(n,)`` floats, one per unit.
        statistic: a function of a 1-D array (with an ``axis`` keyword it is vectorised).
        confidence: level in (0, 1).
        n_resamples: number of bootstrap resamples (>= 1).
        seed: seed of the resampling.

    Returns:
        :class:`Interval`, ``method`` ``"bootstrap (BCa)"`` or ``"bootstrap (percentile)"``;
        ``low = high = nan`` for one value.

    Raises:
        ValueError: empty or non-finite values, bad ``confidence``/``n_resamples``/``seed``.

    Reference: Efron & Tibshirani (1993), ch. 13–14. Introduced in notebook 05_modularity_curves.
    """
    from scipy import stats as st

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
    """Mean of ``values`` and the Student-t interval in which **one more draw** should fall.

    ``mean ± t_{n−1, (1+confidence)/2} · s · √(1 + 1/n)`` with ``s`` the sample standard
    deviation (``ddof=1``; :func:`t_interval`): the right interval to ask whether a *single*
    run (e.g. the guided removal) differs from a control repeated over seeds (random removal);
    wider than :func:`mean_ci` by ``√(n + 1)``. Assumes independent, roughly normal draws.
    ``bounds = (low, high)`` clips the interval to the range the quantity can take (``(0, 100)``
    for an accuracy in %).

    Returns:
        :class:`Interval` (``method="t prediction"``); unpacks as ``mean, low, high``. With one
        value ``low = high = nan``.

    Raises:
        ValueError: no values, non-finite values, ``confidence`` outside (0, 1), or ``bounds``
            not a pair ``(low, high)`` with ``low < high``.

    Reference: Hahn & Meeker (1991), §4.7 (``docs/pruning.md``). Introduced in notebook
    06_layer_pruning.
    """
    return t_interval(values, confidence, "draw", bounds)


# --------------------------------------------------------------------------------------------
# Rank correlations


def _ranks_centred(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    ranks = rankdata(values)
    return ranks - ranks.mean()


def spearman_permutation(x, y, n_resamples: int = 9999, seed: int = 0) -> dict:
    """Spearman ρ between ``x`` and ``y`` and its two-sided permutation p-value.

    ρ is Pearson's correlation of the ranks (ties get their average rank). The null
    distribution pairs ``x`` with permutations of ``y`` (``scipy.stats.permutation_test``,
    ``permutation_type="pairings"``): exact (all ``n!`` pairings) when ``n! <= n_resamples``,
    else ``n_resamples`` random ones, the observed pairing counted in, so ``p > 0``. Two-sided
    p as SciPy defines it: twice the smaller one-sided p, at most 1. Assumes only
    exchangeability of the pairs under "no relation" — no normality.

    Args:
        x, y: ``(n,)`` floats, ``n >= 3``.
        n_resamples: random pairings when the exact test is too large (>= 1).
        seed: seed of those pairings.

    Returns:
        ``{"rho": float, "p": float}``; both NaN if ``x`` or ``y`` is constant (no ranks to
        correlate).

    Raises:
        ValueError: lengths differ, fewer than 3 points, non-finite values, bad ``n_resamples``.

    Reference: Good (2000), ch. 3 (tests of association). Introduced in notebook
    10_architecture_metrics.
    """
    from scipy import stats as st

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
    """Spearman ρ between ``frame[x]`` and each ``frame[y]``, with percentile bootstrap
    intervals that resample whole groups (column ``group``; a member's checkpoints are not
    independent).

    The cluster bootstrap: each resample draws as many groups as there are, with replacement,
    and keeps all rows of each; the interval is the ``(1 ± level)/2`` quantiles of the resampled
    ρ (percentile method). Assumes the groups are independent; rows within a group may depend.

    Args:
        frame: a pandas DataFrame with columns ``x``, ``ys`` and ``group``.
        x: the column every ``y`` is correlated with.
        ys: column names.
        group: the column naming the independent unit.
        n_boot: number of resamples (>= 1).
        seed: seed of the resampling.
        level: level of the intervals, in (0, 1).

    Returns:
        ``(table, boot)``: ``table`` indexed by ``ys`` with ``rho``, ``lo``, ``hi``; ``boot`` the
        ``(n_boot, len(ys))`` resampled ρ (for paired comparisons of two statistics).

    Raises:
        ValueError: fewer than 3 rows or 2 groups, bad ``n_boot`` or ``level``.

    Reference: Davison & Hinkley, *Bootstrap Methods and their Application* (1997), §3.8
    (clustered data). Introduced in notebook 08_complex_networks.
    """
    import pandas as pd
    from scipy.stats import rankdata

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
        ranks = rankdata(values, axis=0)
        ranks -= ranks.mean(0)
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


# --------------------------------------------------------------------------------------------
# Rules, verdicts and the words every notebook uses


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Rule:
    """A rule stated before the data are seen: the claim says ``effect > threshold``
    (``direction="greater"``) or ``effect < threshold`` (``"less"``).

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

    def text(self, confidence: float = 0.95) -> str:
        """The rule in words, e.g. ``"supported if the 95 % CI over seeds lies above 0; refuted
        if it lies below 0; inconclusive otherwise"``."""
        confidence = _confidence(confidence)
        level = f"{100 * confidence:g} %"
        yes, no = ("above", "below") if self.direction == "greater" else ("below", "above")
        t = _number(self.threshold)
        return (f"supported if the {level} CI over seeds lies {yes} {t}; refuted if it lies "
                f"{no} {t}; inconclusive otherwise")


def verdict(interval: Interval, rule: Rule) -> str:
    """``"supported"``, ``"refuted"`` or ``"inconclusive"``: where the interval lies against the
    rule's threshold.

    ``"supported"`` iff the whole interval lies strictly on the claimed side of the threshold
    (``low > threshold`` for ``"greater"``, ``high < threshold`` for ``"less"``), ``"refuted"``
    iff it lies strictly on the other side, ``"inconclusive"`` otherwise — also when there is no
    interval (``n < 2`` or NaN bounds). A claim can therefore turn from supported into refuted
    between two reruns only if their two intervals are disjoint (``docs/claims.md``).

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
        interval: the effect and its interval.
        rule: the rule of the claim (gives the verdict through :func:`verdict`).
        unit: appended to each number, e.g. ``" pp"`` (percentage points).
        digits: decimals of the numbers (>= 0).

    Returns:
        ``"<verdict>: <effect><unit> (<level> % CI <low><unit> to <high><unit> over <n> seeds)"``;
        with one seed ``"inconclusive: <effect><unit> (1 seed: no interval)"``.

    Raises:
        TypeError: as :func:`verdict`, or ``digits`` not an integer.
        ValueError: as :func:`verdict`, or ``digits`` < 0.

    Introduced in notebook 05_modularity_curves.
    """
    digits = check_int("digits", digits, low=0)
    word = verdict(interval, rule)

    def fmt(value):
        return f"{value:+.{digits}f}{unit}"

    seeds = f"{interval.n} seed{'s' if interval.n != 1 else ''}"
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
        paper: ``"A"`` (arXiv 2111.12485), ``"B"`` (the class-separation paper) or ``"CNT"``
            (arXiv 2110.02628); ``id`` must start with ``"<paper>-"``.
        claim: the claim in words.
        notebook: the notebook that tests it, e.g. ``"05_modularity_curves"``.
        statistic: what the effect is, e.g. ``"Q(last) − Q(first), kNN graph"``.
        interval: the effect with its CI over seeds.
        rule: the rule stated before the data.

    Returns:
        ``{"id", "paper", "claim", "notebook", "statistic", "effect", "ci_low", "ci_high",
        "n_seeds", "verdict", "rule"}``; floats rounded to 4 decimals (``None`` for NaN, valid
        JSON), ``verdict`` from :func:`verdict`, ``rule`` from ``rule.text()``.

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
            "rule": rule.text(interval.confidence)}


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
    import pandas as pd

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
