"""The claim-level pooled effect: random effects with the Hartung-Knapp interval, and P(a > b)."""
import numpy as np
import pytest

from harness.pooling import pooled_effect, wilson


def test_identical_cells_pool_to_their_common_effect():
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 1.0, 10)
    p = pooled_effect([d, d, d])
    assert p.effect == pytest.approx(d.mean()) and p.tau == 0.0 and p.cells == 3 and p.seeds == 30
    assert p.low < d.mean() < p.high


def test_heterogeneous_cells_widen_the_interval():
    rng = np.random.default_rng(1)
    same = [rng.normal(1.0, 1.0, 8) for _ in range(4)]
    spread = [rng.normal(mu, 1.0, 8) for mu in (-3.0, 0.0, 2.0, 5.0)]
    a, b = pooled_effect(same), pooled_effect(spread)
    assert b.tau > 1.0 > a.tau and (b.high - b.low) > 2 * (a.high - a.low)


def test_coverage_of_the_pooled_effect_with_few_cells():
    """Four cells whose true effects scatter around 0.5: the interval covers 0.5 in about 95% of
    simulated claims (Hartung-Knapp keeps its level with few cells where a z interval would not)."""
    rng = np.random.default_rng(2)
    covered = 0
    trials = 1500
    for _ in range(trials):
        cells = [rng.normal(rng.normal(0.5, 0.7), 1.0, 6) for _ in range(4)]
        p = pooled_effect(cells)
        covered += p.low <= 0.5 <= p.high
    assert covered / trials >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / trials)


def test_too_few_cells_pool_to_nothing_and_wilson_bounds():
    assert pooled_effect([np.array([1.0, 2.0])]) is None
    assert pooled_effect([np.array([1.0, 2.0]), np.array([1.0, 1.0])]) is None  # no spread in one
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
