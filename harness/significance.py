"""Paired significance tests: pure functions over per-seed results, thin over scipy.stats.

Inputs are 1-D arrays of equal length n, one entry per seed: a[i] and b[i] are the two arms'
accuracies (in points) under seed i. Differences d = a - b (shape (n,)). Every test states its
alternative: "greater" (H1: d tends to be > 0), "less" or "two-sided".

The three tests in TESTS answer slightly different questions:

paired_t     H0: mean(d) = 0 (or <= / >= 0 one-sided); exact for normal d, approximate otherwise.
wilcoxon     H0: d is symmetric about 0 (signed-rank test); exact null distribution for small n.
permutation  H0: d is symmetric about 0, i.e. the arm labels are exchangeable within each seed
             (sign-flip test of the mean); exact enumeration for small n.

Degenerate data are handled the same way by all three: a set of differences that are all zero
carries no evidence either way and gives p = 1 two-sided and p = 0.5 one-sided. Empty input
(and, for the t-test, n < 2) gives NaN, as does any NaN among the differences.

Every function here is deterministic: resampling uses a fixed random state.
The private ``_*_rows`` functions take a (k, n) array (k independent sets of differences) and
return k p-values; the public scalar functions are those applied to one row, so the vectorised
calibration tests (tests/test_calibration.py) exercise exactly the code the verdicts use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TESTS = ("paired_t", "wilcoxon", "permutation")
ALTERNATIVES = ("greater", "less", "two-sided")

EXACT_MAX_N = 16  # 2**16 sign patterns: exact enumeration is still cheap (a 65536 x 16 matrix)
WILCOXON_EXACT_MAX_N = 50  # scipy's own limit for its exact signed-rank distribution ("auto")
DEFAULT_RESAMPLES = 9999  # Monte Carlo sign flips when exact enumeration is too large


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


# ----------------------------------------------------------------------------------------------
# input checks


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _check_test(test: str) -> None:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; available tests: {', '.join(TESTS)}")


def _diffs(d) -> np.ndarray:
    """d as a float array of shape (n,)."""
    d = np.asarray(d, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"paired differences must be 1-D (one value per seed), got shape {d.shape}")
    return d


def _rows(D) -> np.ndarray:
    """D as a float array of shape (k, n)."""
    D = np.asarray(D, dtype=float)
    if D.ndim != 2:
        raise ValueError(f"expected a (k, n) array of k sets of differences, got shape {D.shape}")
    return D


def _degenerate(D: np.ndarray, out: np.ndarray, alternative: str) -> np.ndarray:
    """Overwrite out (k,) for the rows of D (k, n) that are all zero (no evidence: 1 two-sided,
    0.5 one-sided) or contain NaN (NaN), so every test treats them alike."""
    if D.shape[1] > 0:
        out[(D == 0).all(axis=1)] = 1.0 if alternative == "two-sided" else 0.5
    out[np.isnan(D).any(axis=1)] = np.nan
    return out


# ----------------------------------------------------------------------------------------------
# the three tests, row-wise: (k, n) -> (k,)


def _t_rows(D, alternative: str) -> np.ndarray:
    """Paired t-test p-values for each row of D (k, n) -> (k,).

    Rows with zero spread have no t statistic; they give p = 0 or 1 by the sign of the mean
    (a constant nonzero difference is as strong as evidence gets), 0.5 one-sided / 1 two-sided
    if all zero. n < 2 gives NaN (no variance estimate)."""
    from scipy import stats

    D = _rows(D)
    k, n = D.shape
    out = np.full(k, np.nan)
    if n < 2:
        return out
    spread = np.ptp(D, axis=1)
    live = spread > 0
    if live.any():
        out[live] = stats.ttest_1samp(D[live], 0.0, axis=1, alternative=alternative).pvalue
    flat = spread == 0
    m = D[flat, 0]
    hit = {"greater": m > 0, "less": m < 0, "two-sided": m != 0}[alternative]
    out[flat] = np.where(hit, 0.0, 1.0)
    return _degenerate(D, out, alternative)


@lru_cache(maxsize=8)
def _all_signs(n: int) -> np.ndarray:
    """All 2**n sign patterns as a read-only (2**n, n) array of +-1.0; row 0 is all +1."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    signs = 1.0 - 2.0 * bits
    signs.flags.writeable = False
    return signs


def _sign_flip_rows(X, alternative: str, n_resamples: int | None = None, random_state=0) -> np.ndarray:
    """Sign-flip test of the row sums of X (k, n) -> p (k,).

    Null: the signs of the entries of each row are independent fair coins (X symmetric about 0).
    Exact over all 2**n patterns when n_resamples is None and n <= EXACT_MAX_N, or when
    2**n <= n_resamples; otherwise Monte Carlo over n_resamples random patterns (default
    DEFAULT_RESAMPLES) drawn from np.random.default_rng(random_state), the same patterns for every
    row. The observed arrangement is always counted (exact: it is one of the 2**n; Monte Carlo:
    p = (1 + hits) / (1 + n_resamples)), so p is never 0."""
    X = _rows(X)
    k, n = X.shape
    if n_resamples is None:
        exact = n <= EXACT_MAX_N
        n_resamples = DEFAULT_RESAMPLES
    else:
        if int(n_resamples) < 1:
            raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
        n_resamples = int(n_resamples)
        exact = n <= 62 and 2**n <= n_resamples
    if exact:
        signs = _all_signs(n)
    else:
        rng = np.random.default_rng(random_state)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(n_resamples, n))
    obs = X.sum(axis=1)
    # The same numbers summed in another order (the matrix product below) can differ in the last
    # bits; without a tolerance the observed arrangement could fail to count as "as extreme".
    tol = 1e-12 * np.abs(X).sum(axis=1)
    hits = np.empty(k)
    step = max(1, 2**21 // len(signs))  # bound the (rows, patterns) block to ~16 MB
    for s in range(0, k, step):
        null = X[s:s + step] @ signs.T
        o, t = obs[s:s + step, None], tol[s:s + step, None]
        if alternative == "greater":
            hit = null >= o - t
        elif alternative == "less":
            hit = null <= o + t
        else:  # the sign-flip distribution is symmetric about 0, so |sum| orders extremeness
            hit = np.abs(null) >= np.abs(o) - t
        hits[s:s + step] = hit.sum(axis=1)
    if exact:
        return hits / len(signs)
    return (hits + 1.0) / (n_resamples + 1.0)


def _permutation_rows(D, alternative: str, n_resamples: int | None = None, random_state=0) -> np.ndarray:
    """Paired sign-flip permutation test of the mean for each row of D (k, n) -> (k,)."""
    D = _rows(D)
    k, n = D.shape
    out = np.full(k, np.nan)
    if n == 0:
        return out
    ok = ~np.isnan(D).any(axis=1)
    if ok.any():
        out[ok] = _sign_flip_rows(D[ok], alternative, n_resamples, random_state)
    return _degenerate(D, out, alternative)


def _wilcoxon_rows(D, alternative: str) -> np.ndarray:
    """Wilcoxon signed-rank p-values for each row of D (k, n) -> (k,); see `wilcoxon`."""
    from scipy import stats

    D = _rows(D)
    k, n = D.shape
    out = np.full(k, np.nan)
    if n == 0:
        return out
    ok = ~np.isnan(D).any(axis=1)
    nonzero = D != 0
    m = nonzero.sum(axis=1)
    mags = np.sort(np.where(nonzero, np.abs(D), np.nan), axis=1)
    tied = (np.diff(mags, axis=1) == 0).any(axis=1)  # NaN (zero) slots never compare equal
    clean = ok & (m == n) & ~tied
    if clean.any():
        # No zeros, no ties: scipy's exact signed-rank distribution (or its normal approximation,
        # with continuity correction, beyond WILCOXON_EXACT_MAX_N).
        method = "exact" if n <= WILCOXON_EXACT_MAX_N else "asymptotic"
        out[clean] = stats.wilcoxon(D[clean], axis=1, method=method, correction=True,
                                    alternative=alternative).pvalue
    messy = ok & ~clean & (m > 0)
    for mm in np.unique(m[messy]):
        rows = np.flatnonzero(messy & (m == mm))
        if mm <= EXACT_MAX_N:
            # Zeros dropped (Wilcoxon's rule), ties given their average rank; the exact
            # conditional null then flips the signs of the signed ranks (2**mm patterns).
            # scipy's method="exact" would use the no-ties table here, which is not exact.
            vals = D[rows][nonzero[rows]].reshape(len(rows), mm)
            signed = np.sign(vals) * stats.rankdata(np.abs(vals), axis=1)
            out[rows] = _sign_flip_rows(signed, alternative)
        else:
            out[rows] = stats.wilcoxon(D[rows], axis=1, zero_method="wilcox", method="asymptotic",
                                       correction=True, alternative=alternative).pvalue
    return _degenerate(D, out, alternative)


def _p_rows(test: str, D, alternative: str) -> np.ndarray:
    """p-values of `test` for each row of D (k, n) -> (k,); the row-wise form of `p_value`."""
    _check_test(test)
    _check_alternative(alternative)
    if test == "paired_t":
        return _t_rows(D, alternative)
    if test == "wilcoxon":
        return _wilcoxon_rows(D, alternative)
    return _permutation_rows(D, alternative)


def _check_margin(margin: float, *, allow_zero: bool) -> float:
    margin = float(margin)
    if not math.isfinite(margin) or margin < 0 or (margin == 0 and not allow_zero):
        raise ValueError(f"margin must be a finite {'non-negative' if allow_zero else 'positive'} "
                         f"number of accuracy points, got {margin!r}")
    return margin


def _tost_rows(D, margin: float, test: str = "paired_t") -> np.ndarray:
    """TOST p-values for each row of D (k, n) -> (k,); see `tost`."""
    margin = _check_margin(margin, allow_zero=False)
    D = _rows(D)
    # np.maximum, not max: a NaN from either side must give NaN
    return np.maximum(_p_rows(test, D + margin, "greater"), _p_rows(test, D - margin, "less"))


def _noninferiority_rows(D, margin: float, test: str = "paired_t") -> np.ndarray:
    """Non-inferiority p-values for each row of D (k, n) -> (k,); see `noninferiority`."""
    margin = _check_margin(margin, allow_zero=True)
    return _p_rows(test, _rows(D) + margin, "greater")


# ----------------------------------------------------------------------------------------------
# public scalar API: d has shape (n,)


def paired_t(d, alternative: str) -> float:
    """p-value of the paired t-test on differences d (shape (n,)), alternative 'greater', 'less' or 'two-sided'.
    A zero-variance set of differences gives p = 0 or 1 by the sign of the mean (0.5 if all zero;
    1 two-sided). n < 2 gives NaN."""
    _check_alternative(alternative)
    return float(_t_rows(_diffs(d)[None, :], alternative)[0])


def wilcoxon(d, alternative: str) -> float:
    """p-value of the Wilcoxon signed-rank test on differences d (shape (n,)).

    H0: d is symmetric about 0. (It is a test of the centre of symmetry, not of the mean: on
    skewed differences it can reject while mean(d) = 0.)
    - No zeros and no tied |d|: scipy's exact null distribution for n <= 50 (normal approximation
      with continuity correction beyond).
    - Zeros are dropped (Wilcoxon's rule; they carry no sign) and tied |d| get their average rank.
      The p-value is then the exact conditional one, over all 2**m sign patterns of the m nonzero
      signed ranks, for m <= 16 (normal approximation with tie-corrected variance beyond).
    - All d zero: p = 1 two-sided, 0.5 one-sided (as paired_t). Empty d or any NaN: NaN.
    A single nonzero difference is a valid (if weak) test: p = 0.5 one-sided at best."""
    _check_alternative(alternative)
    return float(_wilcoxon_rows(_diffs(d)[None, :], alternative)[0])


def permutation(d, alternative: str, n_resamples: int | None = None, random_state=0) -> float:
    """p-value of the paired sign-flip permutation test of the mean of d (shape (n,)).

    H0: the arm labels are exchangeable within each seed, i.e. each d[i] is as likely to carry
    either sign. The statistic is sum(d) (equivalently the mean). With n_resamples None, all 2**n
    sign patterns are enumerated when n <= 16 (exact p, a multiple of 2**-n); beyond, or when
    n_resamples < 2**n, n_resamples (default 9999) random patterns are drawn with the fixed
    random_state and p = (1 + #as extreme) / (1 + n_resamples). The observed arrangement always
    counts, so p is never 0. Two-sided compares |sum|. All d zero: 1 two-sided, 0.5 one-sided
    (as paired_t). Empty d or any NaN: NaN."""
    _check_alternative(alternative)
    return float(_permutation_rows(_diffs(d)[None, :], alternative, n_resamples, random_state)[0])


def p_value(test: str, d, alternative: str) -> float:
    """p-value of the test named `test` (one of TESTS) on differences d (shape (n,)).
    Unknown names raise ValueError listing the available tests."""
    _check_test(test)
    _check_alternative(alternative)
    return float(_p_rows(test, _diffs(d)[None, :], alternative)[0])


def tost(d, margin: float, test: str = "paired_t") -> float:
    """Equivalence p-value on differences d (shape (n,)): H1: -margin < mean(d) < margin.

    Two one-sided tests on shifted differences: p(d + margin, 'greater') and p(d - margin, 'less');
    the result is the larger of the two (equivalence needs both). For the rank and sign-flip tests
    the shifted hypotheses are about the centre of symmetry of d rather than its mean.
    margin: positive, in accuracy points; otherwise ValueError."""
    return float(_tost_rows(_diffs(d)[None, :], margin, test)[0])


def noninferiority(d, margin: float, test: str = "paired_t") -> float:
    """Non-inferiority p-value on differences d (shape (n,)): H1: mean(d) > -margin, by the one-sided
    test of d + margin. margin in accuracy points, >= 0 (0 is the plain superiority test);
    negative or non-finite margins raise ValueError."""
    return float(_noninferiority_rows(_diffs(d)[None, :], margin, test)[0])


def t_interval(d, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean of d (shape (n,))."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    n = d.size
    if n < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def bca_interval(d, confidence: float = 0.95, n_resamples: int = 9999, random_state=0) -> tuple[float, float]:
    """Two-sided BCa bootstrap confidence interval of the mean of d (shape (n,)), resampling seeds
    (the pairs) with replacement; scipy.stats.bootstrap with np.random.default_rng(random_state),
    so the interval is deterministic.

    n < 2 (or a NaN in d): (nan, nan). Zero spread: (mean, mean), since every resample has that
    mean (scipy would warn and return NaN). With very few seeds the bootstrap distribution is
    coarse and the interval undercovers; prefer t_interval for n < ~10."""
    from scipy import stats

    d = _diffs(d)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if d.size < 2 or np.isnan(d).any():
        return float("nan"), float("nan")
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    res = stats.bootstrap((d,), _mean, vectorized=True, n_resamples=int(n_resamples),
                          confidence_level=confidence, method="BCa",
                          rng=np.random.default_rng(random_state))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def min_attainable_p(test: str, n: int, alternative: str) -> float:
    """The smallest p-value `test` can return with n seeds (differences without zeros), so a claim
    whose alpha is below it can never be supported, whatever the data.

    paired_t     0.0 for n >= 2 (continuous statistic; a constant nonzero d gives exactly 0).
                 1.0 for n < 2: the test returns NaN there and no alpha < 1 is reachable; 1.0
                 (not NaN) so that a `min_attainable_p(...) > alpha` guard fires.
    wilcoxon     exact range (n <= 50): 2**-n one-sided, 2 * 2**-n two-sided, capped at 1;
                 e.g. n = 5 two-sided gives 0.0625 > 0.05. Beyond: the normal approximation's
                 p for all differences of one sign.
    permutation  n <= 16 (exact): as wilcoxon. Beyond (Monte Carlo, default resamples):
                 1 / (1 + 9999), either alternative.
    """
    _check_test(test)
    _check_alternative(alternative)
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    if test == "paired_t":
        return 0.0 if n >= 2 else 1.0
    exact_limit = WILCOXON_EXACT_MAX_N if test == "wilcoxon" else EXACT_MAX_N
    if n <= exact_limit:
        return min(1.0, (2.0 if alternative == "two-sided" else 1.0) * 0.5**n)
    if test == "permutation":
        return 1.0 / (1.0 + DEFAULT_RESAMPLES)
    extreme = np.arange(1.0, n + 1.0) * (-1.0 if alternative == "less" else 1.0)
    return wilcoxon(extreme, alternative)


def prob_greater(d) -> float:
    """Share of seeds with d > 0 (d shape (n,)), ties (d == 0) counting half; NaN if n = 0."""
    d = _diffs(d)
    if d.size == 0:
        return float("nan")
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


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
        prob_a_wins=prob_greater(d),
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
