import math

import numpy as np
import pytest
from scipy import stats

from harness.significance import (
    TESTS, _noninferiority_rows, _p_rows, _tost_rows, bca_interval, holm, min_attainable_p, minimum_detectable_effect,
    noninferiority, p_value, paired_t, permutation, prob_greater, summarize, t_interval, tost, wilcoxon,
)


def test_paired_t_by_hand():
    d = np.array([1.0, 2.0, 3.0])  # mean 2, sd 1, t = 2 / (1 / sqrt 3) = sqrt 12, df 2
    t = math.sqrt(12)
    p = 0.5 * (1 - t / math.sqrt(t * t + 2))  # Student's t survival function for df = 2, closed form
    assert p == pytest.approx(0.0370900, abs=1e-7)
    assert paired_t(d, "greater") == pytest.approx(p, abs=1e-12)
    assert paired_t(d, "less") == pytest.approx(1 - p, abs=1e-12)
    assert paired_t(d, "two-sided") == pytest.approx(2 * p, abs=1e-12)


def test_paired_t_degenerate_differences():
    assert paired_t([0.5, 0.5, 0.5], "greater") == 0.0
    assert paired_t([0.5, 0.5, 0.5], "less") == 1.0
    assert paired_t([0.0, 0.0], "greater") == 0.5
    assert math.isnan(paired_t([1.0], "greater"))


def test_t_interval_by_hand():
    low, high = t_interval([1.0, 2.0, 3.0])  # 2 -+ t(0.975, 2) * 1 / sqrt 3, t(0.975, 2) = 4.302653
    assert (low, high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), abs=1e-5)


def test_summary_of_a_small_paired_set():
    s = summarize([90.0, 91.0, 92.0], [89.0, 89.0, 89.0])
    assert (s.n, s.mean_a, s.mean_b, s.mean_diff) == (3, 91.0, 89.0, 2.0)
    assert s.sd_a == pytest.approx(1.0) and s.sd_b == 0.0 and s.sd_diff == pytest.approx(1.0)
    assert s.prob_a_wins == 1.0
    assert s.p_greater == pytest.approx(0.0370900, abs=1e-7)


def test_prob_a_wins_counts_ties_half():
    assert summarize([1, 2, 3, 4], [1, 1, 4, 4]).prob_a_wins == pytest.approx((1 + 0.5 + 0.5) / 4)


def test_summary_rejects_unpaired_arms():
    with pytest.raises(ValueError):
        summarize([1, 2, 3], [1, 2])


def test_holm_by_hand():
    adj = holm([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm([np.nan, 0.01])[0]) and holm([np.nan, 0.01])[1] == pytest.approx(0.01)


def test_mde_matches_noncentral_t_power():
    sd, n = 1.0, 5
    mde = minimum_detectable_effect(sd, n)
    crit = stats.t.ppf(0.95, n - 1)
    assert stats.nct.sf(crit, n - 1, mde * math.sqrt(n) / sd) == pytest.approx(0.8, abs=1e-6)
    assert minimum_detectable_effect(2 * sd, n) == pytest.approx(2 * mde)
    assert minimum_detectable_effect(sd, 20) < mde


def test_wilcoxon_exact_by_hand():
    # no zeros, no ties: T+ = sum of the ranks of the positive differences, 2**5 = 32 sign patterns
    d = [1.0, 2.0, 3.0, 4.0, 5.0]  # T+ = 15, the maximum: only the all-positive pattern reaches it
    assert wilcoxon(d, "greater") == pytest.approx(1 / 32, abs=1e-15)
    assert wilcoxon(d, "two-sided") == pytest.approx(2 / 32, abs=1e-15)
    assert wilcoxon(d, "less") == pytest.approx(1.0, abs=1e-15)
    # T+ = 1 + 3 + 4 + 5 = 13: subsets of {1..5} with sum >= 13 are the complements of {}, {1}, {2}
    d = [1.0, -2.0, 3.0, 4.0, 5.0]
    assert wilcoxon(d, "greater") == pytest.approx(3 / 32, abs=1e-15)
    assert wilcoxon(d, "two-sided") == pytest.approx(6 / 32, abs=1e-15)
    assert wilcoxon(d, "less") == pytest.approx(30 / 32, abs=1e-15)  # 1 - P(T+ >= 14) = 1 - 2/32


def test_wilcoxon_drops_zeros_and_averages_tied_ranks():
    # zero dropped -> [1, -2, 2, 3]; |d| ranks 1, 2.5, 2.5, 4 (total 10); T+ = 1 + 2.5 + 4 = 7.5.
    # Of the 16 sign patterns, T+ >= 7.5 for {all}, {minus 1}, {minus either 2.5}: 4.
    # T+ <= 2.5 for {}, {1}, {either 2.5}: 4, so two-sided 8/16; T+ > 7.5 only for 10 and 9.
    d = [0.0, 1.0, -2.0, 2.0, 3.0]
    assert wilcoxon(d, "greater") == pytest.approx(4 / 16, abs=1e-15)
    assert wilcoxon(d, "two-sided") == pytest.approx(8 / 16, abs=1e-15)
    assert wilcoxon(d, "less") == pytest.approx(14 / 16, abs=1e-15)
    # all |d| tied: each pattern of signs is its own T+, the observed (all +) is 1 of 8
    assert wilcoxon([0.5, 0.5, 0.5], "greater") == pytest.approx(1 / 8, abs=1e-15)


def test_wilcoxon_degenerate_inputs_match_paired_t():
    assert wilcoxon([0.0, 0.0, 0.0], "greater") == paired_t([0.0, 0.0, 0.0], "greater") == 0.5
    assert wilcoxon([0.0, 0.0, 0.0], "two-sided") == paired_t([0.0, 0.0, 0.0], "two-sided") == 1.0
    assert wilcoxon([0.5], "greater") == 0.5  # one seed: exact, just weak
    assert math.isnan(wilcoxon([], "greater"))
    assert math.isnan(wilcoxon([1.0, np.nan, 2.0], "greater"))


def test_wilcoxon_is_scipy_exact_without_ties():
    d = np.random.default_rng(3).standard_normal(12)
    for alt in ("greater", "less", "two-sided"):
        assert wilcoxon(d, alt) == pytest.approx(stats.wilcoxon(d, method="exact", alternative=alt).pvalue, rel=1e-12)


def test_permutation_exact_by_hand():
    # sums of +-1 +-2 +-3 over the 8 patterns: 6, 4, 2, 0, 0, -2, -4, -6
    assert permutation([1.0, 2.0, 3.0], "greater") == 1 / 8  # observed 6: only itself
    assert permutation([1.0, 2.0, 3.0], "two-sided") == 2 / 8
    assert permutation([1.0, -2.0, 3.0], "greater") == 3 / 8  # observed 2: 6, 4, 2
    assert permutation([1.0, -2.0, 3.0], "less") == 6 / 8  # 2, 0, 0, -2, -4, -6
    assert permutation([1.0, -2.0, 3.0], "two-sided") == 6 / 8  # |sum| >= 2
    assert permutation([1.0, 2.0, 3.0, 4.0, 5.0], "greater") == 1 / 32


def test_permutation_counts_rounding_ties_as_ties():
    # 0.1 + 0.2 - 0.3 is 5.6e-17 in floating point, its mirror image -5.6e-17: both are the exact
    # tie at 0 and must count. Exact sums: 0.6, 0.4, 0.2, 0, 0, -0.2, -0.4, -0.6 -> 5 of 8 are >= 0.
    assert permutation([0.1, 0.2, -0.3], "greater") == 5 / 8
    assert permutation([0.1, 0.2, -0.3], "less") == 5 / 8
    assert permutation([0.1, 0.2, -0.3], "two-sided") == 1.0


def test_permutation_degenerate_inputs_match_paired_t():
    assert permutation([0.0, 0.0], "greater") == 0.5 and permutation([0.0, 0.0], "two-sided") == 1.0
    assert permutation([0.0, 0.0, 1.0], "greater") == 0.5  # zeros flip to themselves: 4 of 8 patterns
    assert math.isnan(permutation([], "greater")) and math.isnan(permutation([np.nan, 1.0], "greater"))


def test_permutation_monte_carlo_is_deterministic_and_never_zero():
    d = np.arange(1.0, 21.0)  # n = 20 > 16: Monte Carlo with 9999 resamples
    assert permutation(d, "greater") == pytest.approx(1 / 10000)
    assert permutation(d, "greater", n_resamples=999) == pytest.approx(1 / 1000)
    x = np.random.default_rng(5).standard_normal(17) + 0.3
    assert permutation(x, "greater") == permutation(x, "greater")
    assert permutation(x, "greater", random_state=1) != permutation(x, "greater", random_state=2)
    exact = permutation(x, "greater", n_resamples=2**17)  # enough resamples to enumerate: exact
    assert exact * 2**17 == pytest.approx(round(exact * 2**17))
    mc = permutation(x, "greater", n_resamples=20000)
    assert abs(mc - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000)
    # fewer resamples than patterns at small n: Monte Carlo, p a multiple of 1/(1 + 100)
    p = permutation(x[:10], "greater", n_resamples=100)
    assert p * 101 == pytest.approx(round(p * 101))


def test_p_value_dispatches_by_name():
    d = [1.0, -2.0, 3.0, 4.0, 5.0]
    for alt in ("greater", "less", "two-sided"):
        assert p_value("paired_t", d, alt) == paired_t(d, alt)
        assert p_value("wilcoxon", d, alt) == wilcoxon(d, alt)
        assert p_value("permutation", d, alt) == permutation(d, alt)
    assert TESTS == ("paired_t", "wilcoxon", "permutation")
    with pytest.raises(ValueError, match="paired_t, wilcoxon, permutation"):
        p_value("sign_test", d, "greater")
    with pytest.raises(ValueError, match="alternative"):
        p_value("paired_t", d, "bigger")
    with pytest.raises(ValueError, match="alternative"):
        paired_t(d, "bigger")
    with pytest.raises(ValueError, match="1-D"):
        p_value("paired_t", [[1.0, 2.0], [3.0, 4.0]], "greater")


def test_tost_and_noninferiority_by_hand():
    d = [-1.0, 0.0, 1.0]  # mean 0, sd 1, se 1/sqrt 3, df 2
    t = math.sqrt(12)  # shifted by the margin 2: t = 2 / (1/sqrt 3) = sqrt 12, either side
    p = 0.5 * (1 - t / math.sqrt(t * t + 2))  # Student's t survival function for df = 2
    assert tost(d, 2.0) == pytest.approx(p, abs=1e-12)
    assert noninferiority(d, 2.0) == pytest.approx(p, abs=1e-12)
    assert noninferiority(d, 0.0) == pytest.approx(0.5, abs=1e-12)  # t = 0: the superiority test
    # asymmetric: d = [1, 2, 3] (mean 2), margin 3: lower side t = 5 sqrt 3 (tiny p), upper t = -sqrt 3
    t = math.sqrt(3)
    assert tost([1.0, 2.0, 3.0], 3.0) == pytest.approx(0.5 * (1 - t / math.sqrt(t * t + 2)), abs=1e-12)
    # rank and sign-flip versions: d + 2 = [1, 2, 3] and d - 2 = [-3, -2, -1]: 1/8 each side
    assert tost(d, 2.0, "wilcoxon") == pytest.approx(1 / 8) and tost(d, 2.0, "permutation") == 1 / 8
    assert noninferiority(d, 2.0, "permutation") == 1 / 8


def test_tost_and_noninferiority_reject_bad_margins():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="margin"):
            tost([1.0, 2.0, 3.0], bad)
    with pytest.raises(ValueError, match="margin"):
        noninferiority([1.0, 2.0, 3.0], -0.5)
    with pytest.raises(ValueError, match="available tests"):
        tost([1.0, 2.0, 3.0], 1.0, "z_test")


def test_bca_interval_properties():
    d = np.array([0.3, -0.2, 1.1, 0.8, 0.4, 0.9, -0.5, 0.6, 1.4, 0.2])
    low, high = bca_interval(d)
    assert low < d.mean() < high
    assert d.min() < low and high < d.max()  # narrower than the range of the seeds
    assert (low, high) == bca_interval(d)  # fixed random state: deterministic
    assert bca_interval(d, random_state=1) != (low, high)
    assert bca_interval(d, random_state=1) == pytest.approx((low, high), abs=0.05)
    low50, high50 = bca_interval(d, confidence=0.5)
    assert low < low50 < high50 < high
    t_low, t_high = t_interval(d)
    assert (low, high) == pytest.approx((t_low, t_high), abs=0.15)  # near-normal data: close to t


def test_bca_interval_degenerate_inputs():
    assert all(math.isnan(x) for x in bca_interval([1.0]))
    assert bca_interval([0.7, 0.7, 0.7]) == (0.7, 0.7)  # every resample has the same mean
    with pytest.raises(ValueError):
        bca_interval([1.0, 2.0], confidence=1.5)


def test_min_attainable_p_values():
    assert min_attainable_p("paired_t", 5, "greater") == 0.0
    assert min_attainable_p("paired_t", 1, "greater") == 1.0
    assert min_attainable_p("wilcoxon", 5, "two-sided") == 0.0625  # never reaches alpha = 0.05
    assert min_attainable_p("wilcoxon", 5, "greater") == 1 / 32
    assert min_attainable_p("permutation", 4, "greater") == 1 / 16
    assert min_attainable_p("permutation", 1, "two-sided") == 1.0  # capped
    assert min_attainable_p("permutation", 20, "two-sided") == pytest.approx(1 / 10000)
    with pytest.raises(ValueError, match="available tests"):
        min_attainable_p("t", 5, "greater")
    with pytest.raises(ValueError):
        min_attainable_p("wilcoxon", -1, "greater")


@pytest.mark.parametrize("test", ["paired_t", "wilcoxon", "permutation"])
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_min_attainable_p_is_attained_by_the_most_extreme_data(test, alternative):
    for n in (2, 3, 5, 8, 20, 60):
        if test == "permutation" and n == 60:
            continue
        sign = -1.0 if alternative == "less" else 1.0
        # rank and sign-flip tests: all one sign; the t-test: a constant nonzero difference
        d = sign * (np.ones(n) if test == "paired_t" else np.arange(1.0, n + 1))
        assert p_value(test, d, alternative) == pytest.approx(min_attainable_p(test, n, alternative), rel=1e-9, abs=1e-300)


def test_prob_greater_counts_ties_half():
    assert prob_greater([1.0, 0.0, -1.0, 2.0]) == pytest.approx(2.5 / 4)
    assert math.isnan(prob_greater([]))


def test_row_wise_forms_match_the_scalar_functions():
    # the calibration tests simulate through the (k, n) forms; they must be the scalar functions
    rng = np.random.default_rng(7)
    for n in (1, 2, 6):
        D = np.round(rng.standard_normal((24, n)), 0)  # many ties and zeros
        D[0] = 0.0
        D[1, 0] = np.nan
        D[2] = 1.5
        for test in TESTS:
            for alt in ("greater", "less", "two-sided"):
                rows = _p_rows(test, D, alt)
                assert np.array_equal(rows, [p_value(test, d, alt) for d in D], equal_nan=True), (n, test, alt)
            assert np.array_equal(_tost_rows(D, 0.7, test), [tost(d, 0.7, test) for d in D], equal_nan=True)
            assert np.array_equal(_noninferiority_rows(D, 0.7, test), [noninferiority(d, 0.7, test) for d in D],
                                  equal_nan=True)
