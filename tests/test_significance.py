import math

import numpy as np
import pytest
from scipy import stats

from harness.significance import holm, minimum_detectable_effect, paired_t, summarize, t_interval


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


def test_false_positive_rate_on_null_data_stays_at_alpha():
    rng = np.random.default_rng(0)
    trials, n = 4000, 5
    d = rng.standard_normal((trials, n))
    p = np.array([paired_t(row, "greater") for row in d])
    rate = (p < 0.05).mean()
    se = math.sqrt(0.05 * 0.95 / trials)
    assert rate < 0.05 + 3 * se
