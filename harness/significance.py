"""Paired significance tests: pure functions over per-seed results, thin over scipy.stats.

Inputs are 1-D arrays of equal length n, one entry per seed: a[i] and b[i] are the two arms'
accuracies (in points) under seed i. Differences d = a - b. Every test states its alternative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedSummary:
    n: int
    mean_a: float
    sd_a: float
    mean_b: float
    sd_b: float
    mean_diff: float  # mean of a - b
    sd_diff: float
    ci_low: float  # two-sided 95% t interval of the mean difference
    ci_high: float
    p_greater: float  # one-sided paired t-test, H1: mean(a - b) > 0
    p_less: float  # one-sided paired t-test, H1: mean(a - b) < 0
    prob_a_wins: float  # share of seeds with a > b (ties count half)
    mde: float  # smallest true difference the one-sided test detects with 80% power, given sd_diff and n


def paired_t(d, alternative: str) -> float:
    """p-value of the paired t-test on differences d (shape (n,)), alternative 'greater', 'less' or 'two-sided'.
    A zero-variance set of differences gives p = 0 or 1 by the sign of the mean (0.5 if all zero)."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return float("nan")
    if np.ptp(d) == 0:
        m = d[0]
        if m == 0:
            return 1.0 if alternative == "two-sided" else 0.5
        hit = {"greater": m > 0, "less": m < 0, "two-sided": True}[alternative]
        return 0.0 if hit else 1.0
    return float(stats.ttest_1samp(d, 0.0, alternative=alternative).pvalue)


def t_interval(d, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean of d (shape (n,))."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    n = d.size
    if n < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference a one-sided one-sample t-test at `alpha` detects with `power`,
    for differences with standard deviation `sd` over n seeds (noncentral-t, solved numerically)."""
    from scipy import optimize, stats

    if n < 2 or not sd > 0:
        return float("nan")
    df = n - 1
    crit = stats.t.ppf(1 - alpha, df)

    def shortfall(delta):
        return stats.nct.sf(crit, df, delta * math.sqrt(n) / sd) - power

    return float(optimize.brentq(shortfall, 1e-9 * sd, 100 * sd))


def summarize(a, b, alpha: float = 0.05) -> PairedSummary:
    """Per-arm and paired statistics of a and b (each shape (n,))."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired arms must be 1-D and of equal length, got {a.shape} and {b.shape}")
    d = a - b
    n = d.size
    sd = lambda x: float(x.std(ddof=1)) if x.size > 1 else float("nan")  # noqa: E731
    low, high = t_interval(d)
    return PairedSummary(
        n=n,
        mean_a=float(a.mean()), sd_a=sd(a), mean_b=float(b.mean()), sd_b=sd(b),
        mean_diff=float(d.mean()), sd_diff=sd(d), ci_low=low, ci_high=high,
        p_greater=paired_t(d, "greater"), p_less=paired_t(d, "less"),
        prob_a_wins=float(((d > 0).sum() + 0.5 * (d == 0).sum()) / n) if n else float("nan"),
        mde=minimum_detectable_effect(sd(d), n, alpha),
    )


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (shape (m,) -> (m,)); NaNs stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out
