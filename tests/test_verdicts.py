import pytest

from factories import observation, spec
from harness.verdicts import count_line, decide, group_cells


def obs(seed, a, b, cell="m-d", failed=(), claim="c"):
    return observation(seed, a, b, cell, claim, failed[0] if failed else None)


def cells_for(rows, **prereg):
    cells = group_cells(rows, {"c": spec(**prereg)})["c"]
    decide([cells])
    return {c.cell_id: c for c in cells}


def test_clear_win_is_supported():
    cell = cells_for([obs(s, 0.90 + 0.001 * s, 0.85) for s in range(5)])["m-d"]
    assert cell.verdict == "supported"
    assert cell.a == pytest.approx([90.0, 90.1, 90.2, 90.3, 90.4]) and cell.seeds == [0, 1, 2, 3, 4]
    assert "Holm p" in cell.reason and cell.decided_by == ("support",)
    low, high = cell.shown_interval
    assert 0 < low < high  # the lower bound of the test for the claim, the upper of the test against it


def test_clear_loss_is_refuted():
    cell = cells_for([obs(s, 0.80 - 0.001 * s, 0.85) for s in range(5)])["m-d"]
    assert cell.verdict == "refuted" and "other way" in cell.reason


def test_a_difference_below_the_margin_is_negligible_not_refuted():
    diffs = [0.0005, -0.0004, 0.0002, -0.0001, 0.0003, 0.0, -0.0002, 0.0001]  # |d| < 0.05 pt
    rows = [obs(s, 0.85 + d, 0.85) for s, d in enumerate(diffs)]
    assert cells_for(rows)["m-d"].verdict == "inconclusive"  # no margin: nothing to call negligible
    cell = cells_for(rows, margin=1.0)["m-d"]
    assert cell.verdict == "negligible" and "no effect of the 1.0 pt margin in the claimed direction" in cell.reason
    assert cell.shown_interval[1] < 1.0 and cell.decided_by == ("negligible",)


def test_a_real_but_small_effect_is_supported_and_says_so():
    diffs = [0.0030, 0.0031, 0.0029, 0.0030, 0.0032, 0.0028]  # +0.3 pt, tight: > 0 and < 1 pt
    cell = cells_for([obs(s, 0.85 + d, 0.85) for s, d in enumerate(diffs)], margin=1.0)["m-d"]
    assert cell.verdict == "supported" and "a real but small effect" in cell.reason
    low, high = cell.shown_interval
    assert 0 < low and high < 1.0


def test_noise_is_inconclusive_with_numbers():
    diffs = [0.01, -0.01, 0.005, -0.004, 0.002]
    cell = cells_for([obs(s, 0.85 + d, 0.85) for s, d in enumerate(diffs)])["m-d"]
    assert cell.verdict == "inconclusive"
    assert "bounds [" in cell.reason and "MDE" in cell.reason and "n = 5" in cell.reason
    low, high = cell.shown_interval
    assert low < 0 < high


def test_two_sided_superiority_checks_the_sign():
    up = cells_for([obs(s, 0.90 + 0.001 * s, 0.85) for s in range(5)], alternative="two-sided")["m-d"]
    down = cells_for([obs(s, 0.80 - 0.001 * s, 0.85) for s in range(5)], alternative="two-sided")["m-d"]
    assert (up.verdict, down.verdict) == ("supported", "refuted")


def test_equivalence_rules():
    tight = [obs(s, 0.85 + d, 0.85) for s, d in enumerate([0.001, -0.001, 0.002, -0.002, 0.0, 0.001])]
    far = [obs(s, 0.90 + 0.001 * s, 0.85) for s in range(6)]
    wide = [obs(s, 0.85 + d, 0.85) for s, d in enumerate([0.03, -0.03, 0.02, -0.025, 0.01, 0.0])]
    eq = dict(kind="equivalence", margin=1.0)
    assert cells_for(tight, **eq)["m-d"].verdict == "supported"
    far_cell = cells_for(far, **eq)["m-d"]
    assert far_cell.verdict == "refuted" and "outside ±1.0 pt" in far_cell.reason
    assert far_cell.shown_interval[0] > 1.0
    assert cells_for(wide, **eq)["m-d"].verdict == "inconclusive"


def test_noninferiority_rules():
    ni = dict(kind="noninferiority", margin=1.0)
    slightly_worse = [obs(s, 0.849 + 0.0002 * s, 0.85) for s in range(6)]  # -0.1 pt, tight
    much_worse = [obs(s, 0.80 + 0.001 * s, 0.85) for s in range(6)]
    assert cells_for(slightly_worse, **ni)["m-d"].verdict == "supported"
    assert cells_for(much_worse, **ni)["m-d"].verdict == "refuted"


def test_rank_tests_show_their_inverted_interval():
    cell = cells_for([obs(s, 0.90 + 0.001 * s, 0.85) for s in range(6)], test="wilcoxon")["m-d"]
    assert cell.verdict == "supported" and cell.p("support", adjusted=False) == pytest.approx(1 / 64)
    assert cell.shown_interval[0] > 0


def test_failed_run_makes_the_cell_invalid():
    rows = [obs(s, 0.9, 0.8) for s in range(4)] + [obs(4, None, 0.8, failed=["non-finite loss"])]
    cell = cells_for(rows)["m-d"]
    assert cell.verdict == "invalid" and "1 failed run(s): dataset: non-finite loss" in cell.reason


def test_too_few_seeds_is_inconclusive():
    cell = cells_for([obs(s, 0.9, 0.8) for s in range(2)])["m-d"]
    assert cell.verdict == "inconclusive" and "needs at least 3" in cell.reason


def test_holm_adjusts_across_cells():
    """A p-value just under alpha in one cell is not enough once there are several cells."""
    diffs = [0.004, 0.001, 0.006, -0.001, 0.005]  # one-sided p ~ 0.04 on its own
    rows = [obs(s, 0.85 + d, 0.85, cell=f"m-d{k}") for k in range(3) for s, d in enumerate(diffs)]
    for c in cells_for(rows).values():
        assert c.p("support", adjusted=False) < 0.05 and c.p("support") > 0.05 and c.verdict == "inconclusive"
        assert c.shown_interval[0] < 0  # the bound at the Holm level agrees


def test_session_wide_family_is_stricter_than_per_claim():
    diffs = [0.004, 0.001, 0.006, -0.001, 0.005]
    rows = [obs(s, 0.85 + d, 0.85, claim=name) for name in ("c1", "c2") for s, d in enumerate(diffs)]
    preregs = {"c1": spec("c1"), "c2": spec("c2")}
    per_claim = group_cells(rows, preregs)
    decide([per_claim["c1"], per_claim["c2"]])
    session = group_cells(rows, preregs)
    decide([session["c1"] + session["c2"]])
    assert per_claim["c1"][0].p("support") == pytest.approx(per_claim["c1"][0].p("support", adjusted=False))
    assert session["c1"][0].p("support") == pytest.approx(2 * session["c1"][0].p("support", adjusted=False))


def test_duplicate_seed_counts_once_and_count_line():
    rows = [obs(s, 0.9 + 0.01 * s, 0.8) for s in range(3)] + [obs(0, 0.9, 0.8)]
    cells = cells_for(rows)
    assert cells["m-d"].summary.n == 3
    assert count_line(list(cells.values())) == "1 supported of 1 cell(s)"


def test_non_finite_value_makes_the_cell_invalid():
    rows = [obs(s, 0.9, 0.8) for s in range(4)] + [obs(4, float("nan"), 0.8)]
    cell = cells_for(rows)["m-d"]
    assert cell.verdict == "invalid" and "non-finite value" in cell.reason


def test_arm_without_value_or_reason_makes_the_cell_invalid():
    rows = [obs(s, 0.9, 0.8) for s in range(4)] + [obs(4, None, 0.8)]
    cell = cells_for(rows)["m-d"]
    assert cell.verdict == "invalid" and "dataset: no value" in cell.reason


@pytest.mark.parametrize("test", ["paired_t", "wilcoxon", "permutation"])
@pytest.mark.parametrize("kind", ["superiority", "equivalence", "noninferiority"])
def test_the_shown_bounds_always_agree_with_the_verdict(kind, test):
    """On random cells (families of three), the bounds a cell shows exclude 0 or the margin exactly
    as its verdict says: no significant verdict beside an interval through 0, and no undecided cell
    whose interval clears the threshold."""
    import numpy as np

    rng = np.random.default_rng(11)
    m = 1.0
    claim = spec(kind=kind, test=test, margin=m if kind != "superiority" or rng.random() < 2 else None, min_seeds=3)
    for _ in range(40):
        rows = [obs(s, 0.85 + (shift + rng.normal(0, 1.0)) / 100, 0.85, cell=f"m-d{k}")
                for k, shift in enumerate(rng.normal(0, 1.5, 3)) for s in range(int(rng.integers(3, 9)))]
        cells = group_cells(rows, {"c": claim})["c"]
        decide([cells])
        for c in cells:
            low, high = c.shown_interval
            if kind == "superiority":
                assert (low > 0) == (c.verdict == "supported" and c.decided_by[0] == "support")
                assert (high < 0) == (c.verdict == "refuted") or c.verdict == "negligible"
            elif kind == "equivalence":
                assert (c.verdict == "supported") == (-m < low and high < m)
                if c.verdict != "supported":
                    assert (c.verdict == "refuted") == (low > m or high < -m)
            else:
                assert (c.verdict == "supported") == (low > -m)
                assert (c.verdict == "refuted") == (high < -m)
