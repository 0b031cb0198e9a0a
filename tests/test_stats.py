"""modlib.stats against scipy.stats and hand-computed cases; the verdict rule on resampled seeds."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from modlib import stats

T_975_4 = 2.7764451051977987          # t quantile (0.975, 4 degrees of freedom), from tables


def test_mean_ci_by_hand():
    iv = stats.mean_ci([1, 2, 3, 4, 5])    # mean 3, s = sqrt(2.5), n = 5
    half = T_975_4 * math.sqrt(2.5) / math.sqrt(5)
    assert iv.mean == 3.0 and iv.n == 5 and iv.confidence == 0.95
    assert iv.low == pytest.approx(3 - half, rel=1e-12)
    assert iv.high == pytest.approx(3 + half, rel=1e-12)
    assert (iv.low, iv.high) == pytest.approx((1.036757, 4.963243), abs=1e-6)
    assert iv.half_width == pytest.approx(half)
    mean, low, high = iv                                   # unpacks as the old tuples did
    assert (mean, low, high) == (iv.mean, iv.low, iv.high)
    narrow = stats.mean_ci([1, 2, 3, 4, 5], confidence=0.5)
    assert narrow.high - narrow.low < iv.high - iv.low


def test_mean_ci_single_value_and_errors():
    one = stats.mean_ci([0.7])
    assert one.mean == 0.7 and one.n == 1 and math.isnan(one.low) and math.isnan(one.high)
    with pytest.raises(ValueError, match=r"values=\[1.0, nan\] holds non-finite values at "
                                         r"positions \[1\]"):
        stats.mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"values=\[\] is not allowed"):
        stats.mean_ci([])
    with pytest.raises(ValueError, match="confidence=1.5 is not allowed"):
        stats.mean_ci([1, 2], confidence=1.5)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        stats.mean_ci([[1, 2], [3, 4]])


def test_paired_ci_equals_ttest_rel():
    rng = np.random.default_rng(3)
    a = rng.normal(1.0, 1.0, size=7)
    b = a - 0.4 + rng.normal(0, 0.3, size=7)
    iv = stats.paired_ci(a, b)
    ref = st.ttest_rel(a, b).confidence_interval(0.95)
    assert iv.mean == pytest.approx(np.mean(a - b))
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert iv.method == "paired t" and iv.n == 7
    ref90 = st.ttest_rel(a, b).confidence_interval(0.9)
    assert stats.paired_ci(a, b, 0.9).low == pytest.approx(ref90.low)
    with pytest.raises(ValueError, match="a has 3 values and b has 2"):
        stats.paired_ci([1, 2, 3], [1, 2])


def test_prediction_interval_by_hand():
    values = [80.0, 82.0, 84.0]                   # mean 82, s = 2, n = 3, t(0.975, 2) = 4.303
    iv = stats.prediction_interval(values)
    half = 4.302653 * 2.0 * np.sqrt(1 + 1 / 3)
    assert iv.mean == 82.0 and iv.low == pytest.approx(82 - half, rel=1e-6)
    assert iv.high == pytest.approx(82 + half, rel=1e-6)
    assert iv.method == "t prediction"
    # wider than the interval of the mean by sqrt(n + 1)
    assert iv.half_width == pytest.approx(stats.mean_ci(values).half_width * 2.0)
    assert tuple(stats.prediction_interval(values, bounds=(75, 90))) == (82.0, 75, 90)
    assert np.isnan(stats.prediction_interval([1.0]).low)
    row = pd.Series(stats.prediction_interval(values), index=["mean", "low", "high"])
    assert row["low"] == pytest.approx(82 - half, rel=1e-6)      # notebook 06's use
    with pytest.raises(ValueError, match=r"values=\[\] is not allowed"):
        stats.prediction_interval([])
    with pytest.raises(ValueError, match=r"bounds=\(5, 1\) is not allowed"):
        stats.prediction_interval(values, bounds=(5, 1))
    with pytest.raises(ValueError, match="of='median' is not allowed"):
        stats.t_interval(values, of="median")


def test_bootstrap_ci_against_scipy():
    values = np.random.default_rng(1).exponential(size=30)
    iv = stats.bootstrap_ci(values, n_resamples=999, seed=4)
    ref = st.bootstrap((values,), np.mean, n_resamples=999, method="BCa",
                       rng=np.random.default_rng(4)).confidence_interval
    assert iv.method == "bootstrap (BCa)" and iv.mean == pytest.approx(values.mean())
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high))
    assert iv.low < values.mean() < iv.high
    med = stats.bootstrap_ci(values, statistic=np.median, n_resamples=500, seed=0)
    assert med.mean == pytest.approx(np.median(values)) and med.low <= med.mean <= med.high
    # all values equal: BCa is degenerate, the fallback gives the point
    flat = stats.bootstrap_ci([2.0, 2.0, 2.0, 2.0])
    assert (flat.low, flat.high) == (2.0, 2.0) and flat.method == "bootstrap (percentile)"
    assert math.isnan(stats.bootstrap_ci([1.0]).low)
    with pytest.raises(ValueError, match="n_resamples=0 is not allowed"):
        stats.bootstrap_ci(values, n_resamples=0)


def test_spearman_permutation_against_scipy():
    x = np.array([1.0, 2, 3, 4, 5, 6])
    y = np.array([2.0, 1, 4, 3, 6, 5])
    found = stats.spearman_permutation(x, y)
    assert found["rho"] == pytest.approx(st.spearmanr(x, y).statistic)
    # exact test (6! = 720 pairings): count by hand
    import itertools
    null = np.array([np.corrcoef(x, p)[0, 1] for p in itertools.permutations(y)])
    greater = np.mean(null >= found["rho"] - 1e-12)
    less = np.mean(null <= found["rho"] + 1e-12)
    assert found["p"] == pytest.approx(min(1.0, 2 * min(greater, less)))
    # a strong monotone relation on 30 points: rho 1, p at its floor 1 / (n_resamples + 1)
    big = stats.spearman_permutation(np.arange(30), np.arange(30) ** 3, n_resamples=999)
    assert big["rho"] == pytest.approx(1.0) and big["p"] == pytest.approx(2 / 1000)
    flat = stats.spearman_permutation([1, 1, 1], [1, 2, 3])
    assert math.isnan(flat["rho"]) and math.isnan(flat["p"])
    with pytest.raises(ValueError, match="x has 3 values and y has 4"):
        stats.spearman_permutation([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="need at least 3 values"):
        stats.spearman_permutation([1, 2], [1, 2])


def test_spearman_bootstrap_against_scipy():
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"member": np.repeat(np.arange(20), 3), "a": rng.normal(size=n)})
    frame["b"] = frame["a"] + rng.normal(size=n)               # positively related
    frame["c"] = -frame["a"]                                   # perfectly reversed
    frame["d"] = rng.normal(size=n)                            # unrelated
    table, boot = stats.spearman_bootstrap(frame, "a", ["b", "c", "d"], n_boot=300, seed=1)
    for col in ("b", "c", "d"):
        assert table.loc[col, "rho"] == pytest.approx(st.spearmanr(frame["a"], frame[col])[0])
    assert table.loc["b", "lo"] > 0 and table.loc["c", "rho"] == pytest.approx(-1.0)
    assert table.loc["d", "lo"] < 0 < table.loc["d", "hi"]
    assert boot.shape == (300, 3) and np.all(np.abs(boot) <= 1)
    with pytest.raises(ValueError, match="2 groups"):
        stats.spearman_bootstrap(frame[frame.member == 0], "a", ["b"])


def _iv(low, high, n=5):
    return stats.Interval((low + high) / 2, low, high, n)


def test_verdict_cases():
    up, down = stats.Rule(), stats.Rule(0.5, "less")
    assert stats.verdict(_iv(0.1, 0.3), up) == "supported"
    assert stats.verdict(_iv(-0.3, -0.1), up) == "refuted"
    assert stats.verdict(_iv(-0.1, 0.3), up) == "inconclusive"
    assert stats.verdict(_iv(0.0, 0.3), up) == "inconclusive"        # touching: not strictly
    assert stats.verdict(_iv(0.1, 0.3, n=1), up) == "inconclusive"   # one seed
    assert stats.verdict(stats.mean_ci([0.4]), up) == "inconclusive"
    assert stats.verdict(_iv(0.1, 0.3), down) == "supported"
    assert stats.verdict(_iv(0.6, 0.9), down) == "refuted"
    assert stats.verdict(_iv(0.4, 0.6), down) == "inconclusive"
    assert stats.verdict(stats.mean_ci([0.9, 1.0, 1.1]), stats.Rule(0.5)) == "supported"
    with pytest.raises(ValueError, match="direction='above' is not allowed"):
        stats.Rule(0.0, "above")
    with pytest.raises(ValueError, match="threshold=nan is not allowed"):
        stats.Rule(float("nan"))
    with pytest.raises(TypeError, match="must be a stats.Interval"):
        stats.verdict((0.1, 0.2, 0.3), up)


def test_rule_text_and_describe_wording():
    assert stats.Rule().text() == ("supported if the 95 % CI over seeds lies above 0; refuted "
                                   "if it lies below 0; inconclusive otherwise")
    assert stats.Rule(0.03, "less").text(0.9) == (
        "supported if the 90 % CI over seeds lies below 0.03; refuted if it lies above 0.03; "
        "inconclusive otherwise")
    iv = stats.Interval(0.153, 0.120, 0.186, 5)
    assert stats.describe(iv, stats.Rule()) == \
        "supported: +0.153 (95 % CI +0.120 to +0.186 over 5 seeds)"
    assert stats.describe(stats.Interval(-1.25, -2.5, 0.0, 3), stats.Rule(), unit=" pp",
                          digits=1) == \
        "inconclusive: -1.2 pp (95 % CI -2.5 pp to +0.0 pp over 3 seeds)"
    assert stats.describe(stats.mean_ci([0.2]), stats.Rule()) == \
        "inconclusive: +0.200 (1 seed: no interval)"
    with pytest.raises(ValueError, match="digits=-1 is not allowed"):
        stats.describe(iv, stats.Rule(), digits=-1)
    # an interval over another unit (a population's members) says so in every wording
    members = stats.Interval(0.2245, 0.1527, 0.304, 156, over="members")
    assert stats.describe(members, stats.Rule()) == \
        "supported: +0.225 (95 % CI +0.153 to +0.304 over 156 members)"
    assert stats.describe(stats.Interval(0.2, math.nan, math.nan, 1, over="members"),
                          stats.Rule()) == "inconclusive: +0.200 (1 member: no interval)"
    row = stats.claim("CNT-x", "CNT", "c", "08_x", "s", members, stats.Rule())
    assert row["rule"].startswith("supported if the 95 % CI over members lies above 0;")
    assert row["n_seeds"] == 156


def test_claim_row_keys_and_rounding():
    iv = stats.mean_ci([0.101234567, 0.151234567, 0.201234567])
    row = stats.claim("A-curve-rises-vgg11", "A", "Q rises with depth", "05_modularity_curves",
                      "Q(last) - Q(first)", iv, stats.Rule())
    assert list(row) == ["id", "paper", "claim", "notebook", "statistic", "effect", "ci_low",
                         "ci_high", "n_seeds", "verdict", "rule"]
    assert row["effect"] == 0.1512 and row["n_seeds"] == 3
    assert row["ci_low"] == round(iv.low, 4) and row["ci_high"] == round(iv.high, 4)
    assert row["verdict"] == "supported" and row["rule"] == stats.Rule().text()
    one = stats.claim("B-x", "B", "c", "03_x", "s", stats.mean_ci([1.0]), stats.Rule())
    assert one["ci_low"] is None and one["verdict"] == "inconclusive"
    assert json.loads(json.dumps(one, allow_nan=False)) == one           # valid JSON
    with pytest.raises(ValueError, match="id='curve-rises' is not allowed: must start with"):
        stats.claim("curve-rises", "A", "c", "05_x", "s", iv, stats.Rule())
    with pytest.raises(ValueError, match="claim='' is not allowed"):
        stats.claim("A-x", "A", "", "05_x", "s", iv, stats.Rule())


def test_verdict_on_resampled_seeds_never_flips():
    """Many reruns of 5 seeds each: the verdict moves between a verdict and inconclusive, never
    from supported to refuted (that needs two disjoint CIs, improbable at 95 %)."""
    rng = np.random.default_rng(0)
    rule = stats.Rule(0.0, "greater")
    # per-seed effects: a true effect of 0.02 (e.g. a gain in Q) and training-seed noise 0.02
    population = 0.02 + 0.02 * rng.standard_normal(1000)
    verdicts = []
    for _ in range(2000):
        seeds = rng.choice(population, size=5, replace=False)
        verdicts.append(stats.verdict(stats.mean_ci(seeds), rule))
    counts = {v: verdicts.count(v) for v in stats.VERDICTS}
    assert counts["supported"] > 0 and counts["inconclusive"] > 0    # both occur
    assert counts["refuted"] == 0                                     # never the opposite
    # the argument itself: pairs of reruns with opposite verdicts have disjoint intervals
    for _ in range(500):
        a = stats.mean_ci(0.01 * rng.standard_normal(5))
        b = stats.mean_ci(0.01 * rng.standard_normal(5))
        if {stats.verdict(a, rule), stats.verdict(b, rule)} == {"supported", "refuted"}:
            assert a.high < b.low or b.high < a.low


def test_summarise_gives_one_interval_per_group():
    import pandas as pd
    from scipy import stats as sps

    frame = pd.DataFrame({"model": ["a", "b", "a", "b", "a", "b", "c"], "layer": 1,
                          "q": [0.3, -0.3, 0.35, -0.2, 0.4, -0.4, 0.5]})
    table = stats.summarise(frame, ["model", "layer"], "q", rule=stats.Rule(0.0, "greater"))
    assert table.columns.tolist() == ["model", "layer", "mean", "low", "high", "n", "verdict"]
    a = table.set_index("model").loc["a"]
    expected = sps.ttest_1samp([0.3, 0.35, 0.4], 0).confidence_interval(0.95)
    assert a["mean"] == pytest.approx(0.35) and a["n"] == 3
    assert (a["low"], a["high"]) == pytest.approx((expected.low, expected.high))
    assert table["verdict"].tolist() == ["supported", "refuted", "inconclusive"]   # c: one seed
    assert np.isnan(table.set_index("model").loc["c", "low"])
    plain = stats.summarise(frame, "model", "q")
    assert "verdict" not in plain.columns and plain["model"].tolist() == ["a", "b", "c"]
    assert stats.summarise(frame.iloc[::-1], "model", "q")["model"].tolist() == ["c", "b", "a"]
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['seed'\]"):
        stats.summarise(frame, "seed", "q")


def test_median_ci_is_the_order_statistic_interval_of_the_sign_test():
    x = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 7.0, 6.0, 8.0, 9.0, 10.0])
    # n = 10 at 95 %: [x(2), x(9)] covers 1 - 2 * P(Bin(10, 1/2) <= 1) = 1 - 22/1024 = 0.979
    ci = stats.median_ci(x)
    assert (ci.mean, ci.low, ci.high, ci.n) == (5.5, 2.0, 9.0, 10)
    assert tuple(stats.median_ci(x[:6], 0.95))[1:] == (1.0, 7.0)      # [min, max]: 0.969
    five = stats.median_ci(x[:5])                                     # [min, max] only 0.9375
    assert five.mean == 3.0 and np.isnan(five.low) and np.isnan(five.high)
    assert stats.verdict(five, stats.Rule()) == "inconclusive"
    with pytest.raises(ValueError, match="non-finite values at positions"):
        stats.median_ci([1.0, np.nan])


def test_two_valued_effects_flip_under_the_t_rule_but_not_under_the_median_rule():
    """An effect of a discrete choice (e.g. parameters saved when a rule picks this unit or
    that one) is a two-valued mixture over seeds: the t interval of five such values says
    "supported" in some reruns and "refuted" in others; the sign-test interval never does."""
    rng = np.random.default_rng(0)
    draws = rng.choice([15.0, -10.0], size=(2000, 5)) + rng.normal(0, 0.5, size=(2000, 5))
    rule = stats.Rule()
    assert {"supported", "refuted"} <= {stats.verdict(stats.mean_ci(d), rule) for d in draws}
    assert {stats.verdict(stats.median_ci(d), rule) for d in draws} == {"inconclusive"}
