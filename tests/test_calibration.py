"""Calibration of the paired tests on simulated seeds: false-positive rates under null data, the
t-test's power against noncentral-t theory, TOST at its margin, and a meta-test showing that the
same checkers fail deliberately mis-specified tests.

All simulations are vectorised over trials through the row-wise forms of the tests
(harness.significance._p_rows and friends; the public scalar functions are those applied to one
row, see test_significance.test_row_wise_forms_match_the_scalar_functions) and use fixed numpy
random states, so every run sees the same numbers. Rejection means p < alpha, as in
harness.verdicts. Monte Carlo tolerance is 3 binomial standard errors.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pytest
from scipy import stats

from harness.significance import TESTS, _noninferiority_rows, _p_rows, _tost_rows

ALPHA = 0.05
TRIALS = 6000  # MC SE of a rate near 0.05 is 0.0028; alpha + 3 SE = 0.058
# The t-test's power is compared with exact theory (a band on both sides): more trials (cheap,
# vectorised) so the 3 SE band is tight (+-0.004 to 0.007) and not at the mercy of one unlucky stream.
POWER_TRIALS = 50000
SEED = 20240611

PFun = Callable[[np.ndarray], np.ndarray]  # (trials, n) differences -> (trials,) p-values
Sampler = Callable[[np.random.Generator, int, int], np.ndarray]  # (rng, trials, n) -> (trials, n)


# ----------------------------------------------------------------------------------------------
# checkers: the real checks and the meta-test run exactly these


class Check(NamedTuple):
    ok: bool
    rate: float  # observed rejection rate
    target: float  # the bound (false positives) or the theoretical value (power)
    tolerance: float  # 3 Monte Carlo standard errors

    def __str__(self) -> str:
        return f"rate {self.rate:.4f} vs {self.target:.4f} (tolerance {self.tolerance:.4f})"


def mc_se(p: float, trials: int) -> float:
    return math.sqrt(p * (1 - p) / trials)


def rejection_rate(pfun: PFun, sampler: Sampler, n: int, trials: int, rng, alpha: float = ALPHA) -> float:
    return float(np.mean(pfun(sampler(rng, trials, n)) < alpha))


def false_positive_rate(pfun: PFun, sampler: Sampler, n: int, trials: int, rng, alpha: float = ALPHA) -> Check:
    """Rejection rate on data where H0 holds must stay within alpha + 3 MC SE."""
    rate = rejection_rate(pfun, sampler, n, trials, rng, alpha)
    tol = 3 * mc_se(alpha, trials)
    return Check(rate <= alpha + tol, rate, alpha, tol)


def t_power_theory(effect: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the one-sided ('greater') one-sample t-test at `alpha`, effect in sd units."""
    df = n - 1
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, effect * math.sqrt(n)))


def power_matches_theory(pfun: PFun, effect: float, n: int, trials: int, rng, alpha: float = ALPHA) -> Check:
    """Rejection rate on normal differences with mean `effect` sd must match noncentral-t power."""
    theory = t_power_theory(effect, n, alpha)
    rate = rejection_rate(pfun, normal_with_mean(effect), n, trials, rng, alpha)
    tol = 3 * mc_se(theory, trials)
    return Check(abs(rate - theory) <= tol, rate, theory, tol)


def greater(test: str) -> PFun:
    """The p-value a one-sided claim 'a > b' uses."""
    return lambda D: _p_rows(test, D, "greater")


# ----------------------------------------------------------------------------------------------
# null samplers: (rng, trials, n) -> (trials, n) paired differences


def normal(rng, trials, n):
    return rng.standard_normal((trials, n))


def student_t3(rng, trials, n):
    return rng.standard_t(3, (trials, n))  # heavy tails; variance 3, mean 0


def skewed_arms(rng, trials, n):
    # Each arm's per-seed accuracy is strongly skewed (lognormal, skewness ~6), but the arm label has
    # no effect: a and b are exchangeable within a seed, so d = a - b is symmetric about 0. This is
    # the sharp null of a paired comparison and it is exactly the null of the sign-flip and rank
    # tests (each d's sign is a fair coin); the mean is 0 too, so it is the t-test's null as well.
    return rng.lognormal(0.0, 1.0, (trials, n)) - rng.lognormal(0.0, 1.0, (trials, n))


def skewed_right_centred(rng, trials, n):
    # Differences that are themselves skewed (centred exponential: mean 0, skewness +2, long tail
    # towards a > b). H0 of the t-test (mean 0) holds. The sign-flip and rank tests' null
    # (symmetry about 0) does NOT hold for any skewed d, so this is a t-test null only.
    return rng.exponential(1.0, (trials, n)) - 1.0


def skewed_left_centred(rng, trials, n):
    # Mirror image: mean 0, skewness -2; most seeds favour a slightly, a few lose badly (a run that
    # diverged). Again only the t-test's null holds.
    return 1.0 - rng.exponential(1.0, (trials, n))


def normal_with_mean(mu: float) -> Sampler:
    return lambda rng, trials, n: mu + rng.standard_normal((trials, n))


SYMMETRIC_NULLS = {"normal": normal, "student_t3": student_t3, "skewed_arms": skewed_arms}


# ----------------------------------------------------------------------------------------------
# false positives


@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize("null", list(SYMMETRIC_NULLS))
@pytest.mark.parametrize("test", TESTS)
def test_false_positive_rate_under_symmetric_nulls(test, null, n):
    """Normal, heavy-tailed t3 and exchangeable skewed arms: H0 of all three tests holds."""
    check = false_positive_rate(greater(test), SYMMETRIC_NULLS[null], n, TRIALS, np.random.default_rng(SEED))
    assert check.ok, f"{test} on {null}, n={n}: {check}"


@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize("test", TESTS)
def test_false_positive_rate_inside_the_one_sided_null(test, n):
    # A one-sided claim's H0 is composite (mean d <= 0), not just the boundary 0. A test must also
    # stay below alpha well inside it; this is what catches a test computed in the wrong direction,
    # which is exactly calibrated at the boundary of a symmetric null.
    check = false_positive_rate(greater(test), normal_with_mean(-0.5), n, TRIALS, np.random.default_rng(SEED))
    assert check.ok, f"{test}, mean -0.5 sd, n={n}: {check}"


@pytest.mark.parametrize("n", [5, 10])
def test_t_test_false_positive_rate_on_skew_towards_the_claim(n):
    # Skewed d centred at its mean: the t-test's H0 (mean 0) holds. With the long tail on the side
    # the claim points to, the one-sided t-test is conservative (~0.009 at n = 5, ~0.014 at 10).
    check = false_positive_rate(greater("paired_t"), skewed_right_centred, n, TRIALS, np.random.default_rng(SEED))
    assert check.ok, f"n={n}: {check}"


def test_t_test_is_anti_conservative_on_skew_against_the_claim():
    # Known, documented failure, not hidden: with the long tail on the other side (mean-zero
    # d = 1 - Exp(1), skewness -2), the one-sided t-test rejects 'mean > 0' far more often than
    # alpha: ~0.155 at n = 5, ~0.13 at n = 10, ~0.087 at n = 40 (mean and sd estimates are
    # correlated in skewed samples; the CLT fixes this only slowly). The checker flags it. What we
    # can defend, and assert: the excess is bounded (< 4 alpha from n = 5) and shrinks with n.
    # Practical reading: a 'd > 0' claim on seeds with an occasional collapsed run of arm a is not
    # protected at the nominal alpha by any of the three tests (see the next test).
    rates = {}
    for n in (5, 10, 40):
        check = false_positive_rate(greater("paired_t"), skewed_left_centred, n, TRIALS, np.random.default_rng(SEED))
        assert not check.ok, f"n={n}: the documented excess disappeared: {check}"
        assert check.rate < 4 * ALPHA, f"n={n}: {check}"
        rates[n] = check.rate
    se = mc_se(4 * ALPHA, TRIALS)
    assert rates[5] > rates[10] + 2 * se and rates[10] > rates[40] + 2 * se, rates


def test_rank_and_sign_flip_tests_are_not_tests_of_the_mean_on_skewed_differences():
    # On mean-zero left-skewed d, the sign-flip and rank tests' null (d symmetric about 0) is false:
    # these rejections are not false positives for their own hypotheses, but they are for a claim
    # about the MEAN accuracy difference. The sign-flip test of the mean behaves like the t-test
    # (~0.095 at n = 5, ~0.13 at n = 10, bounded by 4 alpha); Wilcoxon tests the centre of
    # symmetry / pseudo-median, which is positive here, so its rejection rate grows with n
    # (~0.13 at 10, ~0.28 at 40): a consistent test of a different hypothesis.
    for test in ("permutation", "wilcoxon"):
        for n in (5, 10):
            rate = rejection_rate(greater(test), skewed_left_centred, n, TRIALS, np.random.default_rng(SEED))
            assert ALPHA + 3 * mc_se(ALPHA, TRIALS) < rate < 4 * ALPHA, (test, n, rate)
    rate_40 = rejection_rate(greater("wilcoxon"), skewed_left_centred, 40, TRIALS, np.random.default_rng(SEED))
    assert rate_40 > 4 * ALPHA, rate_40


# ----------------------------------------------------------------------------------------------
# power


@pytest.mark.parametrize("effect", [0.5, 1.0])
@pytest.mark.parametrize("n", [5, 10])
def test_t_test_power_matches_noncentral_t(n, effect):
    check = power_matches_theory(greater("paired_t"), effect, n, POWER_TRIALS, np.random.default_rng(SEED))
    assert check.ok, f"n={n}, effect={effect} sd: {check}"


@pytest.mark.parametrize("test", ["wilcoxon", "permutation"])
def test_rank_and_sign_flip_power_is_close_to_the_t_test_on_normal_data(test):
    # No closed-form power for these; on normal data their efficiency relative to the t-test is
    # 0.955 (Wilcoxon) and -> 1 (sign flip), minus what discreteness costs at n = 10 (the largest
    # attainable level below 0.05 is 0.042 for Wilcoxon). A floor of 85% of the t-test's theory.
    theory = t_power_theory(1.0, 10)
    rate = rejection_rate(greater(test), normal_with_mean(1.0), 10, TRIALS, np.random.default_rng(SEED))
    assert 0.85 * theory <= rate <= theory + 3 * mc_se(theory, TRIALS), (rate, theory)


# ----------------------------------------------------------------------------------------------
# TOST and non-inferiority


MARGIN = 0.5  # in sd units of d


@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("edge", [MARGIN, -MARGIN])
def test_tost_at_the_margin_stays_below_alpha(test, n, edge):
    # True mean exactly at +-margin: the boundary of TOST's H0 (|mean| >= margin).
    check = false_positive_rate(lambda D: _tost_rows(D, MARGIN, test), normal_with_mean(edge), n, TRIALS,
                                np.random.default_rng(SEED))
    assert check.ok, f"{test}, mean {edge}, n={n}: {check}"


def test_tost_at_the_margin_is_close_to_alpha_for_many_seeds():
    # With n = 60 the far one-sided test always rejects (t ~ 7.7), so TOST's size is the near
    # one's: exactly alpha for the t-test on normal data.
    tol = 3 * mc_se(ALPHA, TRIALS)
    rate = rejection_rate(lambda D: _tost_rows(D, MARGIN, "paired_t"), normal_with_mean(MARGIN), 60, TRIALS,
                          np.random.default_rng(SEED))
    assert abs(rate - ALPHA) <= tol, rate


def test_tost_power_well_inside_the_margin():
    # True mean 0, margin 1 sd, n = 20: each one-sided test has noncentral-t power p1, and
    # P(both reject) >= 2 p1 - 1 (union bound).
    n, margin = 20, 1.0
    p1 = t_power_theory(margin, n)
    rate = rejection_rate(lambda D: _tost_rows(D, margin, "paired_t"), normal, n, TRIALS,
                          np.random.default_rng(SEED))
    assert rate >= 2 * p1 - 1 - 3 * mc_se(2 * p1 - 1, TRIALS) and rate > 0.9, (rate, p1)


@pytest.mark.parametrize("test", TESTS)
def test_noninferiority_at_the_margin(test):
    check = false_positive_rate(lambda D: _noninferiority_rows(D, MARGIN, test), normal_with_mean(-MARGIN), 10,
                                TRIALS, np.random.default_rng(SEED))
    assert check.ok, f"{test}: {check}"


# ----------------------------------------------------------------------------------------------
# meta-test: the checkers have teeth


def test_checkers_catch_a_two_sided_p_used_for_a_one_sided_claim():
    # Used as the verdict rule does for two-sided claims (p < alpha and mean d > 0), a two-sided p
    # has size alpha/2 for the one-sided claim: conservative, so the false-positive checks pass
    # and only the power check can see it (power 0.14 instead of 0.24 at n = 5, 0.5 sd).
    sign_aware = lambda D: np.where(D.mean(axis=1) > 0, _p_rows("paired_t", D, "two-sided"), 1.0)  # noqa: E731
    assert false_positive_rate(sign_aware, normal, 10, TRIALS, np.random.default_rng(SEED)).ok
    assert false_positive_rate(sign_aware, normal_with_mean(-0.5), 10, TRIALS, np.random.default_rng(SEED)).ok
    for n, effect in [(5, 0.5), (10, 0.5), (10, 1.0)]:
        check = power_matches_theory(sign_aware, effect, n, POWER_TRIALS, np.random.default_rng(SEED))
        assert not check.ok and check.rate < check.target, f"n={n}, effect={effect}: {check}"
    # Used blind to the sign, it counts significant effects the wrong way as support: size alpha
    # at the boundary, but the check inside the composite null catches it.
    sign_blind = lambda D: _p_rows("paired_t", D, "two-sided")  # noqa: E731
    assert false_positive_rate(sign_blind, normal, 10, TRIALS, np.random.default_rng(SEED)).ok
    assert not false_positive_rate(sign_blind, normal_with_mean(-0.5), 10, TRIALS, np.random.default_rng(SEED)).ok


@pytest.mark.parametrize("test", TESTS)
def test_checkers_catch_a_halved_one_sided_p(test):
    halved = lambda D: 0.5 * _p_rows(test, D, "greater")  # noqa: E731
    check = false_positive_rate(halved, normal, 10, TRIALS, np.random.default_rng(SEED))
    assert not check.ok, check
    if test == "paired_t":
        assert not power_matches_theory(halved, 0.5, 10, POWER_TRIALS, np.random.default_rng(SEED)).ok


@pytest.mark.parametrize("test", TESTS)
def test_checkers_catch_a_one_sided_p_in_the_wrong_direction(test):
    wrong = lambda D: _p_rows(test, D, "less")  # noqa: E731
    # At the boundary of a symmetric null the wrong tail has size alpha too: not detectable there...
    assert false_positive_rate(wrong, normal, 10, TRIALS, np.random.default_rng(SEED)).ok
    # ...but inside the composite null (mean -0.5 sd) it rejects ~40% of the time.
    check = false_positive_rate(wrong, normal_with_mean(-0.5), 10, TRIALS, np.random.default_rng(SEED))
    assert not check.ok, check


def test_checkers_catch_tost_taking_the_smaller_one_sided_p():
    wrong_tost = lambda D: np.minimum(_p_rows("paired_t", D + MARGIN, "greater"),  # noqa: E731
                                      _p_rows("paired_t", D - MARGIN, "less"))
    check = false_positive_rate(wrong_tost, normal_with_mean(MARGIN), 10, TRIALS, np.random.default_rng(SEED))
    assert not check.ok, check
