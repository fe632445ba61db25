"""Group-sequential plans for adding seeds: look at the evidence after n_1 < n_2 < ... < n_K seeds
and stop at the first look whose one-sided p-value is below that look's nominal level.

Testing at alpha at every look would inflate the false-rejection rate (at looks 3, 5, 8, 12 and
alpha = 0.05, a z-test rejects a true null about 12% of the time). An alpha-spending function
alpha(t) fixes how much of the overall one-sided alpha may be spent by information fraction
t = n_k / n_K, and each look's boundary c_k is set so that, under H0,

    P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = alpha(t_k) - alpha(t_{k-1}),

for the canonical joint normal distribution of the z-statistics, corr(Z_j, Z_k) = sqrt(n_j / n_k)
(Lan and DeMets 1983). The nominal level of look k is 1 - Phi(c_k): the p-value threshold.

Spending functions (one-sided):
obrien_fleming  alpha(t) = 1 - Phi(z_{1-alpha} / sqrt(t)): the one-sided form of Lan-DeMets'
                O'Brien-Fleming-type 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)). Spends almost nothing
                early, so the last look's level stays close to alpha.
pocock          alpha(t) = alpha * log(1 + (e - 1) t): spends evenly; early stops come cheaper, the
                last look pays for them.

The boundaries are exact for z-statistics: the joint distribution is integrated numerically,
look by look, on the scale of the score S_k = Z_k sqrt(t_k) (a Brownian motion at the times t_k,
with independent increments), as in Jennison and Turnbull (2000), chapter 19.

Those boundaries are for z-statistics. The claims test with the paired t-test (or a rank or
sign-flip test) at a handful of seeds, whose statistics at different looks are not jointly normal
(each look carries its own variance estimate): the z levels applied to the t-test's p-values give
a false-rejection rate of about 0.054 (O'Brien-Fleming) and 0.056 (Pocock) at looks (3, 5, 8,
12), above alpha. So a plan for a named test (`statistic`) calibrates its levels for that test:
under H0 the p-values of these tests on symmetric normal differences do not depend on the scale,
so CALIBRATION_PATHS simulated null paths (a fixed random state) give the joint null law of the
looks' p-values, and level_k is set, look by look, so that the paths stopping first at look k are
at most the spending function's increment (the t-test's p is continuous, so "at most" is "equal"
up to Monte-Carlo error; a discrete test's levels sit at its attainable values, conservatively).
tests/test_sequential.py measures the rate on independent paths: alpha within Monte-Carlo error.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SPENDING = ("obrien_fleming", "pocock")
STATISTICS = ("z", "paired_t", "wilcoxon", "permutation")  # "z": the exact normal boundaries
CALIBRATION_PATHS = 400_000  # null paths per calibration: SE of a 0.05 rate about 0.00034
CALIBRATION_SEED = 20261205

_FLOOR = 10.0  # the integration grids start 10 SD below 0 under H0: the mass left out is ~1e-23
_STEP = 0.02  # grid step at most 0.02 SD of S_k ...
_KERNEL_STEPS = 10  # ... and at least 10 steps per SD of the increments into and out of look k
_BLOCK = 2**22  # bound on the (new grid x old grid) kernel block held at once, in entries


def _spent(spending: str, alpha: float, t: float) -> float:
    """Cumulative one-sided alpha spent by information fraction t in (0, 1]; exactly alpha at t = 1."""
    from scipy import stats

    if t >= 1.0:
        return alpha
    if spending == "obrien_fleming":
        return float(stats.norm.sf(stats.norm.isf(alpha) / math.sqrt(t)))
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


def _simpson(lower: float, upper: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of Simpson's rule on [lower, upper] with spacing at most `step`."""
    intervals = 2 * max(1, math.ceil((upper - lower) / (2 * step)))
    x = np.linspace(lower, upper, intervals + 1)
    w = np.full(intervals + 1, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return x, w * (x[1] - x[0]) / 3.0


@lru_cache(maxsize=64)
def _nominal_levels(t: tuple[float, ...], increments: tuple[float, ...]) -> tuple[float, ...]:
    """One-sided nominal levels 1 - Phi(c_k) of the boundaries c_k that spend `increments` at the
    information fractions t (increasing, the last 1) under H0.

    Works on the score S_k = Z_k sqrt(t_k): S_k - S_{k-1} ~ N(0, t_k - t_{k-1}), independent of the
    past. `mass` holds the density of S_{k-1} on its continuation region (no earlier crossing),
    times Simpson weights, on the grid x; the crossing probability at look k is then one sum, and
    the next density one convolution."""
    from scipy import optimize, stats

    levels = [increments[0]]  # P(Z_1 >= c_1) is the first increment itself
    sd = np.sqrt(np.asarray(t))
    gaps = np.sqrt(np.diff(t))  # SD of each increment
    bound = stats.norm.isf(increments[0]) * sd[0]  # on the S scale
    x = mass = None
    for k in range(1, len(t)):
        # the grid of S_{k-1} must resolve its density (a convolution with the increment into
        # look k - 1, if any) and the kernel of the increment out of it
        into = gaps[k - 2] if k >= 2 else math.inf
        step = min(_STEP * sd[k - 1], gaps[k - 1] / _KERNEL_STEPS, into / _KERNEL_STEPS)
        y, w = _simpson(-_FLOOR * sd[k - 1], bound, step)
        if x is None:
            density = stats.norm.pdf(y, scale=sd[0])
        else:
            density = np.empty(y.size)
            rows = max(1, _BLOCK // x.size)
            for s in range(0, y.size, rows):
                density[s:s + rows] = stats.norm.pdf(y[s:s + rows, None] - x[None, :], scale=gaps[k - 2]) @ mass
        x, mass = y, w * density

        def crossing(b, x=x, mass=mass, gap=gaps[k - 1]):
            return float(mass @ stats.norm.sf((b - x) / gap))  # P(no stop before look k, S_k >= b)

        hi = x[-1] + gaps[k - 1]
        while crossing(hi) > increments[k]:
            hi += 4.0 * gaps[k - 1]
        bound = optimize.brentq(lambda b: crossing(b) - increments[k], x[0], hi, xtol=1e-13, rtol=1e-13)
        levels.append(float(stats.norm.sf(bound / sd[k])))
    return tuple(levels)


@lru_cache(maxsize=8)
def _null_pvalues(statistic: str, looks: tuple[int, ...]) -> np.ndarray:
    """One-sided ('greater') p-values of `statistic` at each look on CALIBRATION_PATHS null paths
    of standard normal differences (a fixed random state): (paths, looks), read-only."""
    from harness.significance import _p_rows

    rng = np.random.default_rng(CALIBRATION_SEED)
    D = rng.standard_normal((CALIBRATION_PATHS, looks[-1]))
    P = np.column_stack([_p_rows(statistic, D[:, :n], "greater") for n in looks])
    P.flags.writeable = False
    return P


@lru_cache(maxsize=64)
def _calibrated_levels(statistic: str, looks: tuple[int, ...], increments: tuple[float, ...]) -> tuple[float, ...]:
    """Levels for `statistic` at `looks` that stop at most increments[k] of the null paths first
    at look k: reject at look k when p_k < level_k."""
    P = _null_pvalues(statistic, looks)
    paths = len(P)
    still_open = np.ones(paths, dtype=bool)
    levels = []
    for k, increment in enumerate(increments):
        p = np.sort(P[still_open, k])
        allowed = int(math.floor(increment * paths + 1e-9))  # paths this look may stop
        level = float(p[allowed]) if allowed < len(p) else 1.0  # p < level: at most `allowed` of them
        levels.append(level)
        still_open &= ~(P[:, k] < level)
    return tuple(levels)


@dataclass(frozen=True)
class SequentialPlan:
    """Looks after `looks` seeds (strictly increasing integers >= 2), overall one-sided `alpha`,
    the alpha-spending function `spending` (one of SPENDING) and the `statistic` whose p-values
    the levels are for (one of STATISTICS: "z" gives the exact normal boundaries, a test's name
    levels calibrated for that test)."""

    looks: tuple[int, ...] = (3, 5, 8, 12)
    alpha: float = 0.05
    spending: str = "obrien_fleming"
    statistic: str = "z"

    def __post_init__(self):
        looks = tuple(self.looks) if isinstance(self.looks, (tuple, list)) else None
        if not looks:
            raise ValueError(f"looks must be a non-empty tuple of seed counts, got {self.looks!r}")
        for n in looks:
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
                raise ValueError(f"each look must be an integer number of seeds >= 2 (a paired test "
                                 f"needs two), got {n!r} in {self.looks!r}")
        if any(b <= a for a, b in zip(looks, looks[1:])):
            raise ValueError(f"looks must be strictly increasing, got {self.looks!r}")
        object.__setattr__(self, "looks", tuple(int(n) for n in looks))
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a number in (0, 1), got {self.alpha!r}")
        object.__setattr__(self, "alpha", float(self.alpha))
        if self.spending not in SPENDING:
            raise ValueError(f"unknown spending {self.spending!r}; available: {', '.join(SPENDING)}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {self.statistic!r}; available: {', '.join(STATISTICS)}")

    def information(self) -> tuple[float, ...]:
        """Information fractions t_k = n_k / n_K (the last is 1)."""
        return tuple(n / self.looks[-1] for n in self.looks)

    def alpha_spent(self) -> tuple[float, ...]:
        """Cumulative alpha(t_k) at each look: the probability under H0 of having stopped by look k."""
        return tuple(_spent(self.spending, self.alpha, t) for t in self.information())

    def nominal_levels(self) -> tuple[float, ...]:
        """One-sided p-value threshold of each look: reject at the first look k with p_k < level_k."""
        spent = (0.0,) + self.alpha_spent()
        increments = tuple(b - a for a, b in zip(spent, spent[1:]))
        if self.statistic == "z":
            return _nominal_levels(self.information(), increments)
        return _calibrated_levels(self.statistic, self.looks, increments)

    def look_index(self, n: int) -> int | None:
        """Index (0-based, into looks and nominal_levels()) of the look taken after n seeds, None if
        n seeds is not a look."""
        try:
            return self.looks.index(n)
        except ValueError:
            return None
