"""The sequential plan's futility stop (harness.verdicts.futility_stop): an undecided cell stops at
an interim look when, at the trend so far, the rest of its plan would decide it with less than the
claim's `futility` chance. Through the public decision (group_cells + decide) and the functions the
session's look calls (futility_stop, conditional_power)."""
import numpy as np
import pytest

from factories import observation, spec
from harness.errors import UsageError
from harness.verdicts import conditional_power, decide, futility_stop, group_cells, sequential_rows

LOOKS = (3, 5, 8)
NO_TREND = [0.5, -0.4, 0.3, -0.6, 0.1, 0.9, -0.2, 0.4]  # points: a wobble around 0
TREND = [0.6, 0.2, 0.9, 0.5, 0.8, 0.4, 0.7, 0.6]  # points: a clear gain, not yet crossing at 3 seeds


def sequential_cell(diffs, family_size=2, **prereg):
    """One cell under the claim's group-sequential plan, decided as the report decides it."""
    rows = [observation(s, 0.5 + d / 100, 0.5) for s, d in enumerate(diffs)]
    c = group_cells(rows, {"c": spec(**{"looks": LOOKS, **prereg})})["c"][0]
    c.sequential_family = family_size
    decide([[c]])
    return c


def test_an_undecided_cell_without_a_trend_stops_at_its_first_look():
    """No effect, no margin: the plan could only decide it by chance, so it stops at 3 seeds and
    the report shows the tests of that look, on those seeds, whatever seeds the store has beyond."""
    c = sequential_cell(NO_TREND)
    assert c.verdict == "inconclusive" and c.look is None
    look, power = c.futile
    assert look == 0 and 0 <= power < 0.05
    assert (f"sequential plan {LOOKS}: stopped for futility at look 1 of 3 (3 seeds): at the trend so far, 8 seeds "
            f"would decide it with probability {power:.3f} (below 0.05)") in c.reason
    assert c.tests["support"].p_raw == sequential_rows(c.spec, c.diffs[None, :3], 2)[3]["support"][0]


def test_a_trend_the_plan_would_confirm_goes_on_to_its_verdict():
    c = sequential_cell(TREND)
    assert c.futile is None and c.verdict == "supported" and c.look in (1, 2)
    assert conditional_power(c.spec, c.diffs[:3], 2, c.step) > 0.5


def test_without_futility_the_cell_runs_to_its_last_look():
    c = sequential_cell(NO_TREND, futility=None)
    assert c.futile is None and c.verdict == "inconclusive" and "no boundary crossed by 8 seeds" in c.reason
    assert futility_stop(c.spec, c.diffs, 2, c.step) is None


def test_a_margin_the_trend_can_reach_keeps_the_cell_open():
    """The same wobble under an equivalence claim of +-1 point: TOST is likely to support it by 8
    seeds, so the cell goes on (and is supported), where the superiority claim stopped."""
    c = sequential_cell(NO_TREND, kind="equivalence", margin=1.0)
    assert c.futile is None and c.verdict == "supported"


def test_conditional_power_grows_with_the_trend_and_is_reproducible():
    claim = spec(looks=LOOKS)
    powers = [conditional_power(claim, np.array([0.5, -0.4, 0.3]) + shift, 2) for shift in (0.0, 0.4, 1.0, 3.0)]
    assert powers == sorted(powers) and powers[0] < 0.1 and powers[-1] > 0.95
    assert conditional_power(claim, np.array([0.5, -0.4, 0.3]), 2) == powers[0]  # a fixed random state


def test_no_spread_and_the_last_look_have_no_conditional_power():
    claim = spec(looks=LOOKS)
    assert np.isnan(conditional_power(claim, np.full(3, 0.4), 2))  # nothing to extrapolate: never futile
    assert futility_stop(claim, np.full(5, 0.4), 2) is None
    assert np.isnan(conditional_power(claim, np.array(NO_TREND), 2))  # nothing left to run


def test_a_cell_decided_at_a_look_is_never_called_futile():
    clear = [5.0, 5.1, 4.9, 5.2, 4.8, 5.0, 5.1, 4.9]
    assert futility_stop(spec(looks=LOOKS, futility=0.99), np.array(clear), 2) is None


def test_futility_stops_only_ever_replace_a_verdict_with_inconclusive():
    """On simulated cells of a small true effect, each with and without the futility stop: the
    stop never gives a verdict the plan without it would not, and it costs little power (the
    plan's chance of "supported", measured on the same cells)."""
    rng = np.random.default_rng(3)
    D = rng.normal(0.7, 1.0, (300, 8))
    claim, never = spec(looks=LOOKS), spec(looks=LOOKS, futility=None)
    plain, plain_stop, *_ = sequential_rows(never, D, 1)
    futile = [futility_stop(claim, d, 1) for d in D]
    stopped = np.array([f is not None for f in futile])
    futile_look = np.array([f[0] if f else 99 for f in futile])
    assert stopped.any() and ((plain_stop == -1) | (plain_stop > futile_look))[stopped].all()  # undecided there
    with_stop = np.where(stopped, "inconclusive", plain)
    loss = (plain == "supported").mean() - (with_stop == "supported").mean()
    assert 0 <= loss < 0.05


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan"), "0.1", True])
def test_a_futility_that_is_not_a_conditional_power_is_refused(value):
    from harness.claims import check_prereg

    with pytest.raises(UsageError, match=r"futility must be a conditional power in \[0, 1\) or None"):
        check_prereg(spec(looks=LOOKS, futility=value))


def test_conditional_power_is_the_chance_that_continuations_at_the_trend_get_a_verdict():
    """A reference computation: continuations drawn by hand from a normal with the first seeds'
    mean and SD, another random state, decided by the public plan; the two agree within Monte-Carlo
    error, at a trend where the chance is neither 0 nor 1 (so a wrong SD or mean would show)."""
    claim, d = spec(looks=LOOKS), np.array([0.9, 0.0, 0.6, 0.3, -0.1])
    rng = np.random.default_rng(99)
    paths = 20_000
    D = np.hstack([np.tile(d, (paths, 1)), d.mean() + d.std(ddof=1) * rng.standard_normal((paths, 3))])
    reference = float(np.mean(sequential_rows(claim, D, 2)[0] != "inconclusive"))
    assert 0.2 < reference < 0.8
    se = np.sqrt(reference * (1 - reference) * (1 / paths + 1 / 4000))
    assert abs(conditional_power(claim, d, 2) - reference) < 4 * se


def test_a_trend_towards_refutation_is_not_futile():
    """Any verdict counts: a cell heading for "refuted" goes on, and is refuted."""
    c = sequential_cell([-x for x in TREND])
    assert c.futile is None and c.verdict == "refuted"


def test_the_threshold_is_strict():
    claim = spec(looks=LOOKS)
    power = conditional_power(claim, np.array(NO_TREND[:3]), 2)
    at = futility_stop(spec(looks=LOOKS, futility=power), np.array(NO_TREND), 2)
    assert at is None or at[0] != 0  # power == futility is not below it
    assert futility_stop(spec(looks=LOOKS, futility=power + 1e-9), np.array(NO_TREND), 2) == (0, power)


def test_seeds_past_a_futility_stop_are_not_read():
    """Three seeds with nothing to find, then a run of gains that would carry the cell to
    "supported" at 8 seeds: the plan stopped at 3 (the session never trains the rest), so a store
    holding all 8 still gives the stopped cell's verdict, on its first 3 seeds."""
    late = NO_TREND[:3] + [2.0, 2.1, 1.9, 2.2, 2.0]
    assert sequential_cell(late, futility=None).verdict == "supported"
    c = sequential_cell(late)
    assert c.futile[0] == 0 and c.verdict == "inconclusive"
    assert c.tests["support"].p_raw == sequential_rows(c.spec, c.diffs[None, :3], 2)[3]["support"][0]
