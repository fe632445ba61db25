"""Group-sequential plans: validation, the boundaries against scipy's multivariate normal, and the
overall false-rejection rate of "reject at the first look where p_k < level_k" under the null.

The simulations are vectorised over trials (one row of 12 seeds per trial, looks are prefixes),
with a fixed numpy random state. Tolerance is 3 binomial Monte Carlo standard errors.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.sequential import CALIBRATION_PATHS, SPENDING, SequentialPlan
from harness.significance import _p_rows

ALPHA = 0.05
LOOKS = (3, 5, 8, 12)
TRIALS = 200_000  # SE of a rate near 0.05 is 0.0005: 3 SE = 0.0015, tight enough to see 0.053 vs 0.05
SEED = 20240611


def mc_se(p: float, trials: int = TRIALS) -> float:
    return math.sqrt(p * (1 - p) / trials)


@pytest.fixture(scope="module")
def null_seeds() -> np.ndarray:
    """(TRIALS, 12) standard normal paired differences: H0 holds (mean 0)."""
    return np.random.default_rng(SEED).standard_normal((TRIALS, LOOKS[-1]))


def z_pvalues(D: np.ndarray, looks) -> np.ndarray:
    """One-sided p of the z-test with known variance 1 at each look: (trials, K)."""
    return np.column_stack([stats.norm.sf(D[:, :n].sum(axis=1) / math.sqrt(n)) for n in looks])


def t_pvalues(D: np.ndarray, looks) -> np.ndarray:
    """One-sided ('greater') paired t-test p at each look, through the harness's own test: (trials, K)."""
    return np.column_stack([_p_rows("paired_t", D[:, :n], "greater") for n in looks])


def rejection_rate(p: np.ndarray, levels) -> float:
    """Share of trials that reject at some look: p_k < level_k for at least one k."""
    return float((p < np.asarray(levels)).any(axis=1).mean())


# ----------------------------------------------------------------------------------------------
# construction and validation


def test_defaults_and_look_index():
    plan = SequentialPlan()
    assert (plan.looks, plan.alpha, plan.spending) == (LOOKS, 0.05, "obrien_fleming")
    assert [plan.look_index(n) for n in (2, 3, 4, 5, 8, 12, 13)] == [None, 0, None, 1, 2, 3, None]
    assert plan.information() == pytest.approx((0.25, 5 / 12, 2 / 3, 1.0))
    assert SequentialPlan(looks=[4, np.int64(6)]).looks == (4, 6)  # any integers, stored as a tuple of int
    with pytest.raises(AttributeError):
        plan.alpha = 0.1  # frozen


@pytest.mark.parametrize("looks, match", [
    ((), "non-empty"),
    ((1, 3), ">= 2"),
    ((3, 3), "strictly increasing"),
    ((5, 3), "strictly increasing"),
    ((3, 4.5), "integer"),
    ((3.0, 5), "integer"),
    (("3", 5), "integer"),
    ((True, 5), "integer"),
    (5, "tuple"),
])
def test_invalid_looks_are_refused(looks, match):
    with pytest.raises(ValueError, match=match):
        SequentialPlan(looks=looks)


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, float("nan"), "0.05", True])
def test_invalid_alpha_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha must be a number in"):
        SequentialPlan(alpha=alpha)


def test_unknown_spending_is_refused():
    with pytest.raises(ValueError, match="obrien_fleming, pocock"):
        SequentialPlan(spending="haybittle")


# ----------------------------------------------------------------------------------------------
# the boundaries


@pytest.mark.parametrize("spending", SPENDING)
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_one_look_is_the_plain_test(spending, alpha):
    assert SequentialPlan((10,), alpha, spending).nominal_levels() == (alpha,)
    assert SequentialPlan((10,), alpha, spending).alpha_spent() == (alpha,)


def test_spending_functions_by_hand():
    t = np.array([3, 5, 8, 12]) / 12
    obf = 1 - stats.norm.cdf(stats.norm.ppf(1 - ALPHA) / np.sqrt(t))
    pocock = ALPHA * np.log(1 + (math.e - 1) * t)
    assert SequentialPlan(spending="obrien_fleming").alpha_spent() == pytest.approx(obf, rel=1e-12)
    assert SequentialPlan(spending="pocock").alpha_spent() == pytest.approx(pocock, rel=1e-12)
    assert SequentialPlan().alpha_spent()[-1] == ALPHA  # exactly, not up to rounding


@pytest.mark.parametrize("spending", SPENDING)
def test_boundaries_spend_alpha_exactly_under_the_joint_normal(spending):
    # P(some Z_j >= c_j, j <= k) must equal alpha(t_k) at every look, for the canonical joint
    # distribution corr(Z_j, Z_k) = sqrt(n_j / n_k); scipy's multivariate normal cdf (quasi Monte
    # Carlo, fixed rng) is an independent computation of the same probability.
    plan = SequentialPlan(LOOKS, ALPHA, spending)
    c = stats.norm.isf(plan.nominal_levels())
    n = np.array(LOOKS, dtype=float)
    cov = np.sqrt(np.minimum.outer(n, n) / np.maximum.outer(n, n))
    for k, spent in enumerate(plan.alpha_spent(), start=1):
        stopped = 1 - stats.multivariate_normal.cdf(c[:k], np.zeros(k), cov[:k, :k], abseps=1e-8, releps=1e-8,
                                                    maxpts=10**6, rng=np.random.default_rng(0))
        assert stopped == pytest.approx(spent, abs=2e-6), (k, stopped, spent)


def test_nominal_levels_shape():
    obf = SequentialPlan(spending="obrien_fleming").nominal_levels()
    pocock = SequentialPlan(spending="pocock").nominal_levels()
    for levels in (obf, pocock):
        assert len(levels) == len(LOOKS) and all(0 < x < ALPHA for x in levels)
        assert sum(levels) > ALPHA  # the looks overlap: levels are not a split of alpha
    assert list(obf) == sorted(obf) and obf[0] < 0.001  # O'Brien-Fleming: almost nothing early...
    assert obf[-1] > 0.8 * ALPHA  # ...so the last look keeps most of alpha (0.0414)
    assert pocock[0] > 10 * obf[0] and pocock[-1] < obf[-1]  # Pocock spends early and pays at the end


# ----------------------------------------------------------------------------------------------
# false rejections under the null, by simulation


@pytest.mark.parametrize("spending", SPENDING)
def test_z_test_error_rate_is_alpha(null_seeds, spending):
    # Exact boundaries for z-statistics: the rate is alpha itself, not merely below it (a check
    # on both sides, so a wastefully conservative boundary fails too).
    rate = rejection_rate(z_pvalues(null_seeds, LOOKS), SequentialPlan(LOOKS, ALPHA, spending).nominal_levels())
    assert abs(rate - ALPHA) <= 3 * mc_se(ALPHA), rate


def test_the_checks_catch_naive_and_wasteful_plans(null_seeds):
    # The same rate check fails testing at alpha at every look (~0.12) and Bonferroni's alpha / K
    # at every look (~0.03, valid but wasteful).
    z = z_pvalues(null_seeds, LOOKS)
    assert rejection_rate(z, [ALPHA] * len(LOOKS)) > 2 * ALPHA
    assert rejection_rate(z, [ALPHA / len(LOOKS)] * len(LOOKS)) < ALPHA - 3 * mc_se(ALPHA)


@pytest.mark.parametrize("spending, measured", [("obrien_fleming", 0.0533), ("pocock", 0.0556)])
def test_z_levels_are_too_liberal_for_the_t_test(null_seeds, spending, measured):
    # Why a plan calibrates for its test: the z boundaries applied to the paired t-test's p-values
    # (the nominal-p approach) on normal seeds reject a true null more often than alpha (1M-trial
    # estimates 0.0533 O'Brien-Fleming, 0.0556 Pocock at looks 3, 5, 8, 12), because each look's
    # variance estimate differs and the t-statistics are not jointly normal.
    levels = SequentialPlan(LOOKS, ALPHA, spending).nominal_levels()
    rate = rejection_rate(t_pvalues(null_seeds, LOOKS), levels)
    assert abs(rate - measured) <= 3 * mc_se(measured), rate
    assert rate > ALPHA + 3 * mc_se(ALPHA), rate


@pytest.mark.parametrize("spending", SPENDING)
@pytest.mark.parametrize("looks", [LOOKS, (3, 5, 8)])
def test_levels_calibrated_for_the_t_test_keep_alpha(null_seeds, spending, looks):
    # The plan of a claim tested by the t-test: measured on paths independent of the calibration's,
    # the rate is alpha within the Monte-Carlo error of both simulations (on both sides: a
    # wastefully conservative calibration fails too), and each look spends its increment.
    plan = SequentialPlan(looks, ALPHA, spending, "paired_t")
    t = t_pvalues(null_seeds, looks)
    levels = plan.nominal_levels()
    tol = 3 * math.hypot(mc_se(ALPHA), mc_se(ALPHA, CALIBRATION_PATHS))
    assert abs(rejection_rate(t, levels) - ALPHA) <= tol
    spent = (0.0,) + plan.alpha_spent()
    for k in range(len(looks)):
        stopped_by_k = rejection_rate(t[:, :k + 1], levels[:k + 1])
        assert abs(stopped_by_k - spent[k + 1]) <= 3 * math.hypot(mc_se(spent[k + 1]), mc_se(spent[k + 1], CALIBRATION_PATHS))


def independent_null_pvalues(plan: SequentialPlan, paths: int = 50_000) -> np.ndarray:
    """The plan's test's one-sided p at each look on null paths independent of its calibration's."""
    D = np.random.default_rng(SEED + 1).standard_normal((paths, plan.looks[-1]))
    return np.column_stack([_p_rows(plan.statistic, D[:, :n], "greater") for n in plan.looks])


@pytest.mark.parametrize("statistic", ["wilcoxon", "permutation"])
def test_levels_for_discrete_tests_never_exceed_alpha(statistic):
    # A rank or sign-flip test's p takes few values at these n: its calibrated levels sit at
    # attainable values and stop no more than alpha of independent null paths.
    plan = SequentialPlan((3, 5, 8), ALPHA, "obrien_fleming", statistic)
    p = independent_null_pvalues(plan)
    assert rejection_rate(p, plan.nominal_levels()) <= ALPHA + 3 * mc_se(ALPHA, 50_000)


def test_unknown_statistic_is_refused():
    with pytest.raises(ValueError, match="z, paired_t, wilcoxon, permutation"):
        SequentialPlan(statistic="t")
    assert SequentialPlan().statistic == "z"


@pytest.mark.parametrize("statistic", ["wilcoxon", "permutation"])
def test_a_discrete_tests_levels_spend_at_most_each_looks_increment(statistic):
    # The calibration's rule, look by look: the paths that stop first at look k are at most the
    # spending function's increment there. Pocock at looks (3, 5, 8): the first two looks cannot
    # spend (the smallest attainable p is 1/8, then 1/32), and the last must still keep to its own
    # 0.0135; levels from another test's calibration let 5/256 through and stop about 0.0195.
    plan = SequentialPlan((3, 5, 8), ALPHA, "pocock", statistic)
    p = independent_null_pvalues(plan)
    spent = (0.0,) + plan.alpha_spent()
    levels = plan.nominal_levels()
    for k in range(len(plan.looks)):
        stopped_before = rejection_rate(p[:, :k], levels[:k]) if k else 0.0
        first_at_k = rejection_rate(p[:, :k + 1], levels[:k + 1]) - stopped_before
        increment = spent[k + 1] - spent[k]
        assert first_at_k <= increment + 3 * mc_se(increment, 50_000), (k, first_at_k, increment)
