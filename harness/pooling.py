"""A claim's evidence across its cells, beside the per-cell verdicts: one pooled effect.

Cells differ (models, datasets), so their true differences may differ too: the pooled effect is a
random-effects mean of the cells' mean differences (DerSimonian-Laird between-cell variance) with
the Hartung-Knapp interval, whose t quantile with k - 1 degrees of freedom keeps its coverage with
few cells. P(a > b) is the share of all paired seeds where arm a won (ties half), with a Wilson
interval that treats the seeds as independent. Both describe; neither is a verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pooled:
    cells: int
    seeds: int
    effect: float  # pooled mean difference a - b, points
    low: float  # 95% Hartung-Knapp interval
    high: float
    tau: float  # between-cell standard deviation of the true differences (DerSimonian-Laird)
    prob_a_wins: float  # share of paired seeds with a > b, ties counting half
    prob_low: float  # 95% Wilson interval
    prob_high: float


def pooled_effect(diffs_per_cell: list[np.ndarray]) -> Pooled | None:
    """Pool cells given by their per-seed differences (points); None with fewer than 2 cells of
    at least 2 seeds each with some spread."""
    from scipy import stats

    cells = [np.asarray(d, dtype=float) for d in diffs_per_cell]
    cells = [d for d in cells if d.size >= 2 and np.isfinite(d).all() and d.std(ddof=1) > 0]
    k = len(cells)
    if k < 2:
        return None
    y = np.array([d.mean() for d in cells])
    v = np.array([d.var(ddof=1) / d.size for d in cells])  # squared standard errors
    w = 1 / v
    fixed = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - fixed) ** 2)
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w_star = 1 / (v + tau2)
    mu = float(np.sum(w_star * y) / np.sum(w_star))
    hk = np.sum(w_star * (y - mu) ** 2) / ((k - 1) * np.sum(w_star))
    half = float(stats.t.ppf(0.975, k - 1) * math.sqrt(hk))
    all_d = np.concatenate(cells)
    wins = float((all_d > 0).sum() + 0.5 * (all_d == 0).sum())
    low, high = wilson(wins, all_d.size)
    return Pooled(k, int(all_d.size), mu, mu - half, mu + half, math.sqrt(tau2), wins / all_d.size, low, high)


def wilson(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
