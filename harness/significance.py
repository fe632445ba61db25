"""Paired significance tests: pure functions over per-seed results, thin over scipy.stats.

Inputs are 1-D arrays of equal length n, one entry per seed: a[i] and b[i] are the two arms'
accuracies (in points) under seed i. Differences d = a - b (shape (n,)). Every test states its
alternative: "greater" (H1: d tends to be > 0), "less" or "two-sided".

The three tests in TESTS answer slightly different questions:

paired_t     H0: mean(d) = 0 (or <= / >= 0 one-sided); exact for normal d, approximate otherwise.
wilcoxon     H0: d is symmetric about 0 (signed-rank test); exact null distribution for small n.
permutation  H0: d is symmetric about 0, i.e. the arm labels are exchangeable within each seed
             (sign-flip test of the mean); exact enumeration for small n.

`interval` gives the confidence interval that matches each test (the t interval; the inverted
signed-rank and sign-flip tests), so a verdict's p-value and its interval never disagree about 0.

Degenerate data: a set of differences that are all zero carries no evidence either way and gives
p = 1 two-sided and p = 0.5 one-sided in all three tests. Identical nonzero differences have no
spread, so the t-test has no statistic and gives NaN (one seed that changes nothing must not
"prove" an effect); the rank and sign-flip tests keep their exact p (2**-n one-sided for n
identical positive differences, which is valid). Empty input (and, for the t-test, n < 2) gives
NaN, as does any NaN among the differences; a NaN p-value stays NaN in every function here.

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

    Rows with zero spread have no t statistic: NaN if the common value is nonzero (no variance
    estimate, so no evidence the test can weigh), 0.5 one-sided / 1 two-sided if all zero (no
    evidence either way, as in the other tests). n < 2 gives NaN (no variance estimate)."""
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
    return _degenerate(D, out, alternative)  # zero spread: NaN unless all zero


@lru_cache(maxsize=8)
def _all_signs(n: int) -> np.ndarray:
    """All 2**n sign patterns as a read-only (2**n, n) array of +-1.0; row 0 is all +1."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    signs = 1.0 - 2.0 * bits
    signs.flags.writeable = False
    return signs


def _sign_patterns(n: int, n_resamples: int | None = None, random_state=0) -> tuple[np.ndarray, bool]:
    """The sign patterns the sign-flip test of n values uses, as ((r, n) array of +-1.0, exact).

    Exact (all 2**n patterns) when n_resamples is None and n <= EXACT_MAX_N, or when
    2**n <= n_resamples; otherwise n_resamples random patterns (default DEFAULT_RESAMPLES) drawn
    from np.random.default_rng(random_state)."""
    if n_resamples is None:
        exact = n <= EXACT_MAX_N
        n_resamples = DEFAULT_RESAMPLES
    else:
        if int(n_resamples) < 1:
            raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
        n_resamples = int(n_resamples)
        exact = n <= 62 and 2**n <= n_resamples
    if exact:
        return _all_signs(n), True
    rng = np.random.default_rng(random_state)
    return 1.0 - 2.0 * rng.integers(0, 2, size=(n_resamples, n)), False


def _sign_flip_rows(X, alternative: str, n_resamples: int | None = None, random_state=0) -> np.ndarray:
    """Sign-flip test of the row sums of X (k, n) -> p (k,).

    Null: the signs of the entries of each row are independent fair coins (X symmetric about 0).
    Exact or Monte Carlo over the patterns of `_sign_patterns`, the same patterns for every row.
    The observed arrangement is always counted (exact: it is one of the 2**n; Monte Carlo:
    p = (1 + hits) / (1 + n_resamples)), so p is never 0."""
    X = _rows(X)
    k, n = X.shape
    signs, exact = _sign_patterns(n, n_resamples, random_state)
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
    return (hits + 1.0) / (len(signs) + 1.0)


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
            # Pratt's rule: |d| ranked with the zeros included (ties get their average rank),
            # then the zeros' ranks left out; the exact conditional null flips the signs of the
            # mm nonzero signed ranks (2**mm patterns). scipy's method="exact" would use the
            # no-ties table here, which is not exact.
            ranks = stats.rankdata(np.abs(D[rows]), axis=1)
            signed = (np.sign(D[rows]) * ranks)[nonzero[rows]].reshape(len(rows), mm)
            out[rows] = _sign_flip_rows(signed, alternative)
        else:
            out[rows] = stats.wilcoxon(D[rows], axis=1, zero_method="pratt", method="asymptotic",
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
# confidence intervals that match the tests, row-wise: (k, n) -> (low (k,), high (k,))


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    return confidence


def _t_bound_rows(D, tail: float, side: str) -> np.ndarray:
    """One-sided t confidence bound on the mean for each row of D (k, n): the lower bound at level
    1 - tail for side 'greater', the upper for 'less'. NaN where the t-test gives NaN (n < 2, zero
    spread, a NaN in the row)."""
    from scipy import stats

    k, n = D.shape
    out = np.full(k, np.nan)
    if n < 2:
        return out
    mean, sd = D.mean(axis=1), D.std(axis=1, ddof=1)
    live = np.ptp(D, axis=1) > 0  # False for NaN rows too
    # isf, the inverse of the sf that gives the t-test's p: the bound excludes 0 exactly when p < tail
    half = stats.t.isf(tail, n - 1) * sd / math.sqrt(n)
    out[live] = (mean - half if side == "greater" else mean + half)[live]
    return out


def _breakpoints(test: str, D: np.ndarray, alternative: str) -> np.ndarray:
    """The shifts delta (k, B) at which the p-value of `test` on d - delta can change, per row.

    wilcoxon     the Walsh averages (d_i + d_j) / 2, i <= j: where a sign (i = j) or the order of
                 two |d - delta| changes.
    permutation  the means of the subsets S that the sign patterns flip: sum(d - delta) is matched
                 by the pattern flipping S exactly when delta = mean(d[S]). Two-sided, |sum| is also
                 matched by minus the sum where delta is the mean of the unflipped rest; with all
                 2**n patterns those are flipped subsets too, with Monte Carlo patterns they are not."""
    n = D.shape[1]
    if test == "wilcoxon":
        i, j = np.triu_indices(n)
        return (D[:, i] + D[:, j]) / 2
    signs, exact = _sign_patterns(n)
    subsets = [signs < 0] if exact or alternative != "two-sided" else [signs < 0, signs > 0]
    means = []
    for members in subsets:
        size = members.sum(axis=1)
        means.append((D @ members[size > 0].T) / size[size > 0])
    return np.concatenate(means, axis=1)


def _centre(test: str, D: np.ndarray) -> np.ndarray:
    """Where the two-sided p of `test` on d - delta peaks, per row: the Hodges-Lehmann estimate
    (median Walsh average) for wilcoxon, the mean for the sign-flip test (p = 1 there). The mean is
    taken about the smallest value so that identical values give that value exactly: the peak is
    then a single point, and a mean rounded off it would be rejected."""
    if test == "wilcoxon":
        return np.median(_breakpoints(test, D, "two-sided"), axis=1)
    base = D.min(axis=1)
    return base + (D - base[:, None]).mean(axis=1)


def _shift_end_rows(test: str, D: np.ndarray, level: float, alternative: str, end: str) -> np.ndarray:
    """One end ('low' or 'high') of {delta: p(test, d - delta, alternative) >= level} for each row d
    of D (k, n), rows without NaN; an infinite end where no shift on that side is rejected.

    The p-value is a step function of delta, constant between consecutive breakpoints
    (`_breakpoints`), and monotone: p(d - delta, 'greater') grows with delta, 'less' falls, and the
    two-sided p falls on either side of its peak (`_centre`). So the set is an interval, and a
    binary search finds each end among the candidates: each breakpoint, 0, the peak, and one shift
    inside every gap between them (and beyond both ends). The search evaluates the test itself,
    so ties, zeros and floating-point rounding are treated exactly as p_value treats them, and it
    evaluates 0 first: 0 is outside exactly when p(d) < level, even where an approximate p-value
    (ties with more than 16 seeds) is not quite monotone.

    An end that is not in the set (the gap inside it is accepted but the breakpoint is not) is
    returned as the next float inwards, so [low, high] read as closed is the set itself."""
    k = D.shape[0]
    rows = np.arange(k)
    extra = [np.zeros(k)] + ([_centre(test, D)] if alternative == "two-sided" else [])
    points = np.sort(np.column_stack([_breakpoints(test, D, alternative), *extra]), axis=1)
    span = (points[:, -1] - points[:, 0] + 1.0)[:, None]
    gaps = np.concatenate([points[:, :1] - span, (points[:, 1:] + points[:, :-1]) / 2, points[:, -1:] + span], axis=1)
    cand = np.empty((k, 2 * points.shape[1] + 1))
    cand[:, 0::2], cand[:, 1::2] = gaps, points  # ascending; odd positions are points, even are gaps
    last = cand.shape[1] - 1
    zero = 2 * (points < 0).sum(axis=1) + 1  # cand[zero] == 0
    # top: a candidate known to be accepted, the far end of this end's search
    if alternative == "two-sided":
        top = 2 * (points < extra[1][:, None]).sum(axis=1) + 1  # the peak
    else:
        top = np.full(k, last if alternative == "greater" else 0)
    outward = -np.inf
    if end == "high":  # walk from the high side instead: acceptance again grows along the array
        cand, zero, top, outward = cand[:, ::-1], last - zero, last - top, np.inf

    def accepted(r, idx):
        return _p_rows(test, D[r] - cand[r, idx][:, None], alternative) >= level  # NaN: not accepted

    # invariant: cand[lo] is rejected, cand[hi] accepted
    empty = ~accepted(rows, top)  # not even the peak is accepted (only at very low confidence)
    lo, hi = np.zeros(k, dtype=int), top.copy()
    probe = np.flatnonzero(~empty & (zero < top))  # 0 lies on this end's side of the peak
    at_zero = accepted(probe, zero[probe])
    hi[probe[at_zero]], lo[probe[~at_zero]] = zero[probe[at_zero]], zero[probe[~at_zero]]
    unbounded = np.zeros(k, dtype=bool)
    check = np.flatnonzero(~empty & (lo == 0))
    unbounded[check] = accepted(check, lo[check])  # not even the most extreme shift is rejected
    active = ~empty & ~unbounded & (hi - lo > 1)
    while active.any():
        r = np.flatnonzero(active)
        mid = (lo[r] + hi[r]) // 2
        ok = accepted(r, mid)
        hi[r[ok]], lo[r[~ok]] = mid[ok], mid[~ok]
        active[r] = hi[r] - lo[r] > 1
    bound = np.where(hi % 2 == 1, cand[rows, hi], np.nextafter(cand[rows, np.maximum(hi - 1, 0)], -outward))
    bound[unbounded] = outward
    bound[empty] = np.nan
    return bound


def _interval_rows(test: str, D, confidence: float = 0.95, alternative: str = "two-sided"):
    """`interval` for each row of D (k, n) -> (low (k,), high (k,))."""
    _check_test(test)
    _check_alternative(alternative)
    confidence = _check_confidence(confidence)
    D = _rows(D)
    k, n = D.shape
    # 1 - 0.95 is 0.050000000000000044 in floating point: rounded, so that a p-value of exactly
    # 0.05 (possible with Monte Carlo sign flips) is judged as a verdict at alpha = 0.05 judges it
    alpha = round(1.0 - confidence, 12)
    low, high = np.full(k, -np.inf), np.full(k, np.inf)
    ok = ~np.isnan(D).any(axis=1) & (n > 0)
    for end, out, side in (("low", low, "greater"), ("high", high, "less")):
        if alternative in (side, "two-sided"):
            if test == "paired_t":  # two-sided t: the one-sided bounds at alpha / 2 (p is 2 x one-sided)
                out[:] = _t_bound_rows(D, alpha / 2 if alternative == "two-sided" else alpha, side)
            elif ok.any():
                out[ok] = _shift_end_rows(test, D[ok], alpha, alternative, end)
    low[~ok], high[~ok] = np.nan, np.nan
    if test == "paired_t":  # a NaN bound (no t statistic) makes the whole interval NaN
        low[np.isnan(high)], high[np.isnan(low)] = np.nan, np.nan
    return low, high


# ----------------------------------------------------------------------------------------------
# public scalar API: d has shape (n,)


def paired_t(d, alternative: str) -> float:
    """p-value of the paired t-test on differences d (shape (n,)), alternative 'greater', 'less' or 'two-sided'.
    Identical nonzero differences have no spread and give NaN (no t statistic); all zero gives
    0.5 one-sided, 1 two-sided. n < 2 gives NaN."""
    _check_alternative(alternative)
    return float(_t_rows(_diffs(d)[None, :], alternative)[0])


def wilcoxon(d, alternative: str) -> float:
    """p-value of the Wilcoxon signed-rank test on differences d (shape (n,)).

    H0: d is symmetric about 0. (It is a test of the centre of symmetry, not of the mean: on
    skewed differences it can reject while mean(d) = 0.)
    - No zeros and no tied |d|: scipy's exact null distribution for n <= 50 (normal approximation
      with continuity correction beyond).
    - Zeros follow Pratt's rule: they are ranked with the rest (smallest |d|) and then carry no
      sign; tied |d| get their average rank. The p-value is the exact conditional one, over all
      2**m sign patterns of the m nonzero signed ranks, for m <= 16 (normal approximation with
      Cureton's zero and the tie correction beyond). Pratt's rule, not Wilcoxon's (drop the zeros,
      then rank), because it keeps p monotone in a shift of d: with zeros dropped, moving a zero
      difference to slightly below 0, against a 'greater' claim, can make that claim's p smaller
      (Pratt 1959; d = [5, 0, -16, 6, 1] gives 7/16, d - 0.25 gives 13/32), and the test could
      not be inverted into an interval (see `interval`).
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


def interval(test: str, d, confidence: float = 0.95, alternative: str = "two-sided") -> tuple[float, float]:
    """Confidence interval (low, high) for the location shift of d (shape (n,)) that matches `test`:
    the set of shifts delta that the test does not reject on d - delta at level 1 - confidence.
    Read as closed; 0 lies outside it exactly when p_value(test, d, alternative) < 1 - confidence
    (taken to 12 decimals: confidence 0.95 means alpha 0.05 exactly), so a verdict never shows a
    significant p next to an interval through 0, nor the other way round.

    paired_t     the t interval of the mean. NaN where the t-test gives NaN (n < 2, identical
                 differences: no spread, no interval rather than a zero-width one).
    wilcoxon     the inverted signed-rank test: for data without ties, the Hodges-Lehmann interval
                 between order statistics of the Walsh averages (d_i + d_j) / 2 at the exact
                 null distribution; with ties and zeros, the inversion of the exact conditional
                 test that `wilcoxon` computes.
    permutation  the inverted sign-flip test of the mean: its ends are means of subsets of d.
    alternative  'greater': (low, +inf), the one-sided bound at `confidence`; 'less': (-inf, high);
                 'two-sided': the inverted two-sided test. Where that test's p is twice the smaller
                 one-sided p (the t-test; the exact rank and sign-flip tests), this is the pair of
                 one-sided bounds at (1 + confidence) / 2.
    Where no shift at all can be rejected at that level (e.g. wilcoxon with n = 2, whose smallest
    one-sided p is 1/4), the ends are infinite. Empty d or a NaN in d: (nan, nan).
    The rank and sign-flip intervals are exact (valid for any symmetric d) where the test is exact;
    see `_shift_end_rows` for how they are found."""
    low, high = _interval_rows(test, _diffs(d)[None, :], confidence, alternative)
    return float(low[0]), float(high[0])


def t_interval(d, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean of d (shape (n,)): interval('paired_t', d, confidence).
    n < 2, zero spread or a NaN: (nan, nan)."""
    return interval("paired_t", d, confidence, "two-sided")


def min_attainable_p(test: str, n: int, alternative: str) -> float:
    """The smallest p-value `test` can return with n seeds (differences without zeros), so a claim
    whose alpha is below it can never be supported, whatever the data.

    paired_t     0.0 for n >= 2: the t statistic is unbounded, so any alpha > 0 can be reached (0 is
                 an infimum, not attained: identical differences give NaN, not 0).
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


def attainable(test: str, n: int, alternative: str, alpha: float, family_size: int = 1) -> bool:
    """Whether a claim tested by `test` with n seeds can reach alpha at all inside a Holm family of
    family_size hypotheses: Holm's first step compares the smallest p times family_size with alpha,
    so the claim is attainable when min_attainable_p(test, n, alternative) * family_size < alpha.
    False means no data can support it (e.g. wilcoxon, n = 5, one-sided: 1/32 * 2 > 0.05)."""
    alpha = float(alpha)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
    if isinstance(family_size, bool) or int(family_size) != family_size or family_size < 1:
        raise ValueError(f"family_size must be a positive integer, got {family_size!r}")
    return min_attainable_p(test, n, alternative) * int(family_size) < alpha


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


def holm_rows(P: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values along the last axis of P (k, m) -> (k, m); a NaN is no
    hypothesis: it stays NaN and does not count in m."""
    P = np.asarray(P, dtype=float)
    valid = ~np.isnan(P)
    order = np.argsort(np.where(valid, P, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(P, order, axis=-1)
    multiplier = valid.sum(axis=-1, keepdims=True) - np.arange(P.shape[-1])
    steps = np.minimum(1.0, multiplier * ranked)
    adjusted = np.maximum.accumulate(np.where(np.isnan(steps), -np.inf, steps), axis=-1)
    out = np.empty_like(P)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return np.where(valid, out, np.nan)


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (shape (m,) -> (m,)); NaNs stay NaN and are not counted."""
    return holm_rows(np.asarray(pvalues, dtype=float)[None, :])[0]
