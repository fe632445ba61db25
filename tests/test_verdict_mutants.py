"""Rules of harness.verdicts (and harness.significance beneath them) that mutation testing
(mutmut 3 over the statistical tests) found unchecked by the other tests.

Each test states one rule of the verdicts, a boundary or an invariant the report relies on, and
goes through the public functions (group_cells + decide, judge_rows, holm_rows, outlier_seeds,
count_line; p_value, interval, holm, summarize, ...). Differences are in accuracy points;
`cell_of` turns them into paired observations.
"""
import math

import numpy as np
import pytest
from scipy import stats

from factories import observation, spec
from harness import verdicts
from harness.significance import (
    attainable, holm, interval, min_attainable_p, minimum_detectable_effect, noninferiority, p_value, permutation,
    prob_greater, summarize, tost, wilcoxon,
)
from harness.verdicts import count_line, decide, group_cells, holm_rows, judge_rows, outlier_seeds, sequential_rows

ALPHA = 0.05


def cells_of(diffs_by_cell: dict[str, list[float]], **prereg):
    """One claim's cells from {cell id: differences in points}, decided as one Holm family."""
    rows = [observation(s, 0.5 + d / 100, 0.5, cell_id=cell_id)
            for cell_id, diffs in diffs_by_cell.items() for s, d in enumerate(diffs)]
    cells = group_cells(rows, {"c": spec(**prereg)})["c"]
    decide([cells])
    return {c.cell_id: c for c in cells}


def cell_of(diffs, **prereg):
    return cells_of({"m-d": list(diffs)}, **prereg)["m-d"]


def excludes(claim, name: str, low: float, high: float) -> bool:
    """Whether the bounds (low, high) of test `name` exclude that test's threshold: the bound
    shows the test significant."""
    m = claim.margin
    if claim.kind == "superiority":
        if name == "negligible":
            return high < m
        if claim.alternative == "two-sided":
            return not low <= 0 <= high
        return low > 0 if name == "support" else high < 0
    if claim.kind == "equivalence":
        return (-m < low and high < m) if name == "support" else (low > m or high < -m)
    return low > -m if name == "support" else high < -m


# Noise of eight seeds (sd ~ 0.8 pt, se ~ 0.28 pt); shifted across a grid it carries every test's
# p-value through the band between level / 2 and level, where a one-sided bound and a two-sided one
# (or a p-value and its double) disagree.
NOISE = np.array([-1.3, -0.6, -0.2, 0.1, 0.35, 0.7, 1.1, -0.15])
CLAIMS = {
    "superiority, one-sided, margin": dict(margin=1.0),
    "superiority, two-sided, margin": dict(alternative="two-sided", margin=1.0),
    "equivalence": dict(kind="equivalence", margin=1.0),
    "noninferiority": dict(kind="noninferiority", margin=1.0),
}


def shifted(shifts, prereg) -> list:
    rows = [observation(s, 0.5 + d / 100, 0.5, cell_id=f"m-d{i}")
            for i, shift in enumerate(shifts) for s, d in enumerate(shift + NOISE)]
    return group_cells(rows, {"c": spec(**prereg)})["c"]


@pytest.mark.parametrize("prereg", CLAIMS.values(), ids=CLAIMS.keys())
def test_every_bound_excludes_its_threshold_exactly_when_its_test_is_significant(prereg):
    """The report's promise: a reader never sees a significant test beside bounds through its
    threshold, nor bounds clear of it beside a test that is not significant, for every test a
    cell shows (one-sided claims: one-sided bounds; two-sided: two-sided; equivalence: TOST for
    support, the two-sided interval for the doubled p against)."""
    claim = spec(**prereg)
    cells = shifted(np.round(np.arange(-1.8, 1.8001, 0.1), 2), prereg)
    decide([[c] for c in cells])  # each cell its own family: level = alpha
    in_band = 0
    for c in cells:
        for name, t in c.tests.items():
            assert t.level == pytest.approx(ALPHA)
            assert excludes(claim, name, t.low, t.high) == (t.p_adjusted < ALPHA), (c.cell_id, name, t)
            in_band += ALPHA / 2 < t.p_raw < ALPHA
    assert in_band >= 2  # the grid did reach the band where the mutants of the rules differ


@pytest.mark.parametrize("prereg", CLAIMS.values(), ids=CLAIMS.keys())
def test_p_values_and_levels_are_probabilities(prereg):
    """In one Holm family of 13 cells: raw and adjusted p-values lie in [0, 1] (equivalence
    doubles a one-sided p, Holm multiplies by up to 13: both capped at 1), no level exceeds
    alpha, and each bound still matches its test at the cell's Holm level."""
    claim = spec(**prereg)
    cells = shifted(np.linspace(-1.8, 1.8, 13), prereg)
    decide([cells])
    for c in cells:
        for name, t in c.tests.items():
            assert 0 <= t.p_raw <= 1 and t.p_raw <= t.p_adjusted <= 1 and 0 < t.level <= ALPHA
            assert excludes(claim, name, t.low, t.high) == (t.p_adjusted < ALPHA), (c.cell_id, name, t)


def test_raw_p_values_are_those_of_the_claims_own_tests():
    d = list(0.6 + NOISE)
    one = cell_of(d, margin=1.0)
    assert one.p("support", adjusted=False) == pytest.approx(p_value("paired_t", d, "greater"), rel=1e-9)
    assert one.p("against", adjusted=False) == pytest.approx(p_value("paired_t", d, "less"), rel=1e-9)
    assert one.p("negligible", adjusted=False) == pytest.approx(
        p_value("paired_t", [x - 1.0 for x in d], "less"), rel=1e-9)
    two = cell_of(d, alternative="two-sided")
    for name in ("support", "against"):
        assert two.p(name, adjusted=False) == pytest.approx(p_value("paired_t", d, "two-sided"), rel=1e-9)
    assert math.isnan(two.p("negligible"))  # no margin: no such test
    eq = cell_of(d, kind="equivalence", margin=1.0)
    over = p_value("paired_t", [x - 1.0 for x in d], "greater")  # H1: d > m
    under = p_value("paired_t", [x + 1.0 for x in d], "less")  # H1: d < -m
    assert eq.p("against", adjusted=False) == pytest.approx(min(1.0, 2 * min(over, under)), rel=1e-9)


def test_a_one_sided_result_does_not_support_a_two_sided_claim():
    """One-sided p ~ 0.035, two-sided p ~ 0.07: a one-sided claim is supported, a two-sided one is
    not (the same data refute the mirrored one-sided claim likewise)."""
    d = list(0.56 + NOISE)
    p1 = p_value("paired_t", d, "greater")
    assert ALPHA / 2 < p1 < ALPHA
    assert cell_of(d).verdict == "supported"
    assert cell_of(d, alternative="two-sided").verdict == "inconclusive"
    assert cell_of([-x for x in d]).verdict == "refuted"
    assert cell_of([-x for x in d], alternative="two-sided").verdict == "inconclusive"


def test_two_sided_claim_takes_its_direction_from_its_own_test():
    """Wilcoxon tests the centre of symmetry: eleven small gains and one large loss reject it
    two-sided (p ~ 0.034) with a mean of exactly 0. The direction is the test's own (the signed
    ranks lean to d > 0), never the mean's, so the verdict agrees with the inverted interval."""
    d = list(range(1, 12)) + [-66]
    assert np.mean(d) == 0
    up = cell_of(d, test="wilcoxon", alternative="two-sided", min_seeds=2)
    down = cell_of([-x for x in d], test="wilcoxon", alternative="two-sided", min_seeds=2)
    assert up.verdict == "supported" and up.shown_interval[0] > 0
    assert down.verdict == "refuted" and down.shown_interval[1] < 0
    one = spec(test="wilcoxon", min_seeds=2)
    assert judge_rows([(one, np.array([d], dtype=float))])[0][0, 0] == "supported"
    assert judge_rows([(one, -np.array([d], dtype=float))])[0][0, 0] == "refuted"


def test_equivalence_inside_the_lower_margin_is_not_refuted():
    """Mean -0.8 pt with a 1 pt margin and wide noise: TOST cannot show -1 < d, and nothing shows
    d < -1 either: inconclusive. (d - m < 0 holds clearly, but that is no refutation.)"""
    rng = np.random.default_rng(0)
    d = list(-0.8 + 0.8 * rng.standard_normal(10))
    c = cell_of(d, kind="equivalence", margin=1.0)
    assert c.verdict == "inconclusive" and c.p("against") > 0.5


# ------------------------------------------------------------ p = alpha is not significant
def test_a_p_value_equal_to_alpha_is_not_significant():
    """The sign-flip test of four seeds has p = 1/16 exactly at best: with alpha = 1/16 nothing
    is decided, whichever way the data point (significance is p < alpha, as the bounds read it)."""
    sixteenth = dict(test="permutation", alpha=1 / 16)
    up = cell_of([1.0, 2.0, 3.0, 4.0], **sixteenth)
    assert up.p("support") == 1 / 16 and up.verdict == "inconclusive" and up.shown_interval[0] <= 0
    down = cell_of([-1.0, -2.0, -3.0, -4.0], **sixteenth)
    assert down.p("against") == 1 / 16 and down.verdict == "inconclusive"
    small = cell_of([0.1, 0.2, 0.3, 0.4], margin=1.0, **sixteenth)
    assert small.p("negligible") == 1 / 16 and small.verdict == "inconclusive"
    assert not verdicts.Test("support", 1 / 16, 1 / 16).significant(1 / 16)
    assert verdicts.Test("support", 0.0624, 0.0624).significant(1 / 16)


def test_supported_effect_is_small_only_when_negligible_is_significant():
    """Five seeds all positive (sign-flip p = 1/32 < alpha = 1/16), but the test of d < 10 has
    p = 1/16 = alpha exactly: supported, and not "a real but small effect"."""
    c = cell_of([5.0, 6.0, 7.0, 8.0, 11.0], test="permutation", alpha=1 / 16, margin=10.0)
    assert c.verdict == "supported" and c.p("negligible") == 1 / 16
    assert c.decided_by == ("support",) and "small effect" not in c.reason
    tight = cell_of([0.30, 0.31, 0.29, 0.30, 0.32, 0.28], margin=1.0)
    assert tight.verdict == "supported" and tight.decided_by == ("support", "negligible")
    low, high = tight.shown_interval
    assert (low, high) == (tight.tests["support"].low, tight.tests["negligible"].high)


def test_decided_by_names_the_deciding_tests():
    assert cell_of([-5.0, -5.1, -4.9, -5.2, -4.8]).decided_by == ("against",)
    far = cell_of([5.0, 5.1, 4.9, 5.2, 4.8], kind="equivalence", margin=1.0)
    assert far.verdict == "refuted" and far.decided_by == ("against",)
    assert far.shown_interval == (far.tests["against"].low, far.tests["against"].high)
    assert cell_of([0.1, -0.1, 0.05, -0.05, 0.0, 0.02], margin=1.0).decided_by == ("negligible",)
    assert cell_of([0.5, -0.4, 0.3, -0.6, 0.1]).decided_by == ()


# ------------------------------------------------------------ Holm
def test_holm_rows_caps_at_one_and_works_along_the_last_axis():
    assert holm_rows(np.array([[0.6, 0.7]])).tolist() == [[1.0, 1.0]]
    assert holm_rows(np.array([[0.01, 0.04, 0.3]])) == pytest.approx(np.array([[0.03, 0.08, 0.3]]))
    rng = np.random.default_rng(1)
    P = rng.uniform(0, 0.6, (3, 4, 5))
    P[0, 0, 2] = np.nan
    expected = np.array([[holm(row) for row in block] for block in P])
    assert np.allclose(holm_rows(P), expected, equal_nan=True)  # (sessions, families, cells)
    assert np.allclose(holm_rows(P[1, 2]), holm(P[1, 2]))  # one family as a vector
    assert np.nanmax(holm_rows(P)) <= 1.0


def test_overwhelming_evidence_gives_p_zero_and_the_cell_is_still_decided():
    """40 seeds of +10 pt that differ by 1e-9 pt: the t-test's p underflows to 0. The cell is
    supported, its level is alpha and its bound is finite."""
    c = cell_of([10.0 + 1e-9 * (s % 2) for s in range(40)])
    assert c.p("support") == 0.0 and c.verdict == "supported"
    assert c.tests["support"].level == ALPHA and 9.9 < c.shown_interval[0] < 10.1


# ------------------------------------------------------------ seeds, failures, bookkeeping
def test_two_seeds_suffice_where_the_claim_asks_for_two():
    c = cell_of([5.0, 5.1], min_seeds=2)
    assert c.verdict == "supported" and c.summary.n == 2
    one = cell_of([5.0], min_seeds=2)
    assert one.verdict == "inconclusive" and one.reason == "only 1 seed(s); this claim needs at least 2"


def test_a_cell_whose_statistics_fail_is_invalid_and_the_family_is_still_decided():
    rows = [observation(s, 0.5 + d / 100, 0.5, claim=name)
            for name in ("good", "bad") for s, d in enumerate([5.0, 5.1, 4.9, 5.2])]
    cells = group_cells(rows, {"good": spec("good"), "bad": spec("bad", test="no_such_test")})
    decide([cells["good"] + cells["bad"]])
    good, bad = cells["good"][0], cells["bad"][0]
    assert good.verdict == "supported"
    assert bad.verdict == "invalid" and "deciding the cell failed: ValueError: unknown test" in bad.reason
    assert bad.failures[0].startswith("deciding the cell failed: ValueError:")


def test_group_cells_keeps_labels_and_runs():
    rows = [observation(s, 0.9, 0.8, a_label="imagenet", b_label="none") for s in range(3)]
    rows.append(observation(3, None, 0.8, failed="diverged", a_label="imagenet", b_label="none"))
    c = group_cells(rows, {"c": spec()})["c"][0]
    assert (c.a_label, c.b_label) == ("imagenet", "none")
    assert len(c.runs) == 1 and c.runs[0].reason == "diverged"
    assert c.seeds == [0, 1, 2] and c.failures == ["imagenet: diverged"]


def test_cell_statistics_use_the_claims_alpha_and_test():
    d = [0.5, -0.4, 0.3, -0.6, 0.1, 0.9]
    c = cell_of(d, alpha=0.01, test="wilcoxon")
    sd = float(np.std(c.diffs, ddof=1))
    assert c.summary.mde == pytest.approx(minimum_detectable_effect(sd, 6, 0.01))
    assert c.summary.mde > minimum_detectable_effect(sd, 6, 0.05)
    assert c.ci95 == interval("wilcoxon", c.diffs, 0.95, "two-sided")
    assert c.tests["support"].name == "support" and set(c.tests) == {"support", "against"}
    assert f"MDE {c.summary.mde:.2f} pt at n = 6" in c.reason


def test_count_line():
    assert count_line([]) == "no verdicts of 0 cell(s)"
    cells = [cell_of([5.0, 5.1, 4.9]), cell_of([-5.0, -5.1, -4.9]), cell_of([5.0, 5.1, 4.9])]
    assert count_line(cells) == "2 supported, 1 refuted of 3 cell(s)"


# ------------------------------------------------------------ outliers
BASE = [-2.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 2.0]  # median 0 and MAD 1 with one more value beyond 2


def test_outliers_are_flagged_above_a_modified_z_of_3_5():
    seeds = list(range(9))
    # z = 0.6745 |d - median| / MAD: 5.4 -> 3.64, flagged; 5.0 -> 3.37, not
    assert outlier_seeds(seeds, np.array(BASE + [5.4])) == [8]
    assert outlier_seeds(seeds, np.array(BASE + [5.0])) == []
    # the same about median 10 with MAD 2
    assert outlier_seeds(seeds, 10 + 2 * np.array(BASE + [-5.4])) == [8]
    assert outlier_seeds(seeds, 10 + 2 * np.array(BASE + [-5.0])) == []
    assert outlier_seeds([0, 1, 2], np.array([1.0, 1.1, 10.0])) == [2]  # three seeds are enough
    assert outlier_seeds([0, 1], np.array([1.0, 10.0])) == []


def test_outlier_seeds_are_named_in_the_reason():
    d = [-2.0, -1.0, 30.0, 0.0, 0.0, -40.0, 1.0, 1.0, 2.0]
    c = cell_of(d)
    assert c.outliers == [2, 5]
    assert c.reason.startswith(f"{c.summary.mean_diff:+.2f} pt, n = 9")
    assert c.reason.endswith("; outlier seed(s) 2, 5 (a collapsed run?)")


# ------------------------------------------------------------ reasons: the decisive numbers
def bound(t: verdicts.Test, side: str) -> str:
    return f"{side} bound {t.low if side == 'lower' else t.high:+.2f} at level {t.level:.3g}"


def numbers(c) -> str:
    return f"{c.summary.mean_diff:+.2f} pt, n = {c.summary.n}"


def test_reasons_show_the_bounds_that_decide():
    win = cell_of([5.0, 5.1, 4.9, 5.2, 4.8])
    assert win.reason.startswith(numbers(win) + "; ") and bound(win.tests["support"], "lower") + " > 0" in win.reason
    loss = cell_of([-5.0, -5.1, -4.9, -5.2, -4.8])
    assert loss.reason.startswith(numbers(loss)) and bound(loss.tests["against"], "upper") + " < 0" in loss.reason
    small = cell_of([0.30, 0.31, 0.29, 0.30, 0.32, 0.28], margin=1.0)
    assert small.reason.startswith(numbers(small) + ": a real but small effect")
    assert bound(small.tests["support"], "lower") in small.reason
    assert bound(small.tests["negligible"], "upper") in small.reason
    negligible = cell_of([0.1, -0.1, 0.05, -0.05, 0.0, 0.02], margin=1.0)
    assert bound(negligible.tests["negligible"], "upper") + " < 1.0" in negligible.reason


def test_equivalence_and_noninferiority_reasons():
    eq = dict(kind="equivalence", margin=1.0)
    inside = cell_of([0.1, -0.1, 0.05, -0.05, 0.0, 0.02], **eq)
    assert inside.verdict == "supported" and "within ±1.0 pt; TOST Holm p" in inside.reason
    wide = cell_of([3.0, -3.0, 2.0, -2.5, 1.0, 0.0], **eq)
    assert wide.verdict == "inconclusive" and " overlaps the margin ±1.0 pt; " in wide.reason
    assert "; TOST Holm p = " in wide.reason
    ni = dict(kind="noninferiority", margin=1.0)
    ok = cell_of([-0.1, -0.12, -0.08, -0.1, -0.11, -0.09], **ni)
    assert ok.verdict == "supported" and ok.reason.startswith(numbers(ok) + "; ")
    assert bound(ok.tests["support"], "lower") + " > -1.0; Holm p" in ok.reason
    bad = cell_of([-5.0, -5.1, -4.9, -5.2, -4.8, -5.0], **ni)
    assert bad.verdict == "refuted" and bad.reason.startswith(numbers(bad) + ": below -1.0 pt; ")
    assert bound(bad.tests["against"], "upper") + " < -1.0" in bad.reason
    unsure = cell_of([0.5, -1.4, 0.3, -1.6, 0.1, -0.9], **ni)
    assert unsure.verdict == "inconclusive" and " reaches below -1.0 pt; bounds [" in unsure.reason


def test_inconclusive_reason_for_superiority():
    c = cell_of([0.5, -0.4, 0.3, -0.6, 0.1])
    low, high = c.shown_interval
    assert c.reason.startswith(f"{numbers(c)}; bounds [{low:+.2f}, {high:+.2f}] at the Holm levels; Holm p = ")
    assert "TOST" not in c.reason and c.reason.endswith(f"; MDE {c.summary.mde:.2f} pt at n = 5")


def test_identical_differences_under_a_rank_test_have_no_mde():
    """Wilcoxon on three identical gains: p = 1/8, no verdict, and no spread to size an MDE by."""
    c = cell_of([0.5, 0.5, 0.5], test="wilcoxon")
    assert c.verdict == "inconclusive" and c.p("support", adjusted=False) == 1 / 8
    assert c.reason.endswith("MDE undefined (no spread) at n = 3")


# ------------------------------------------------------------ group-sequential cells
LOOKS = (3, 5, 8)


def sequential(diffs_by_cell: dict[str, list[float]], family_size: int = 2, **prereg):
    """Cells under the claim's group-sequential plan, as the report marks them, decided together."""
    rows = [observation(s, 0.5 + d / 100, 0.5, cell_id=cell_id)
            for cell_id, diffs in diffs_by_cell.items() for s, d in enumerate(diffs)]
    cells = group_cells(rows, {"c": spec(**{"looks": LOOKS, **prereg})})["c"]
    for c in cells:
        c.sequential_family = family_size
    decide([cells])
    return {c.cell_id: c for c in cells}


def levels(family_size: int = 2, looks=LOOKS) -> tuple:
    return spec(looks=looks).plan(family_size).nominal_levels()


def test_a_sequential_cell_is_decided_at_the_first_look_it_crosses():
    """A clear effect crosses at look 1 (3 seeds), a weaker one at look 2 (5 seeds): each shows
    the tests of its deciding look, on that look's seeds and at its nominal level (p-values
    scaled to alpha and capped at 1), and says where it stopped."""
    early, later = [5.0, 5.1, 4.9, 5.2, 4.8, 5.0, 5.1, 4.9], [0.3, 0.5, 0.2, 0.6, 0.4, 0.2]
    cells = sequential({"m-d0": early, "m-d1": later})
    for c, look, d in ((cells["m-d0"], 0, early), (cells["m-d1"], 1, later)):
        n = LOOKS[look]
        assert c.verdict == "supported" and c.look == look and c.decided_by == ("support",)
        support = c.tests["support"]
        assert support.p_raw == pytest.approx(p_value("paired_t", c.diffs[:n], "greater"), rel=1e-9)
        assert support.level == pytest.approx(levels()[look])
        assert support.p_adjusted == pytest.approx(support.p_raw * ALPHA / levels()[look])
        assert support.low == pytest.approx(interval("paired_t", c.diffs[:n], 1 - support.level, "greater")[0])
        assert c.tests["against"].p_adjusted == 1.0  # p near 1, scaled: capped
        assert c.reason.startswith(numbers(c) + "; ")
        assert f"; sequential plan {LOOKS}: stopped at look {look + 1} of 3 ({n} seeds), alpha 0.05 / 2 cells" in c.reason


def test_a_sequential_cell_that_crosses_no_boundary_shows_its_last_look():
    """(Without the futility stop, which would end this wobble at its first look: tests/test_futility.py.)"""
    noise = [0.5, -0.4, 0.3, -0.6, 0.1, 0.9, -0.2, 0.4]
    cells = sequential({"m-d0": noise, "m-d1": noise[:7]}, futility=None)
    for c, n, shown in ((cells["m-d0"], 8, 8), (cells["m-d1"], 7, 5)):
        assert c.verdict == "inconclusive" and c.look is None
        assert c.tests["support"].p_raw == pytest.approx(p_value("paired_t", c.diffs[:shown], "greater"), rel=1e-9)
        assert c.reason.startswith(numbers(c) + "; ") and f"no boundary crossed by {n} seeds" in c.reason


def test_a_sequential_cell_short_of_its_first_look_is_inconclusive_and_the_others_are_decided():
    cells = sequential({"m-d0": [5.0, 5.1, 4.9], "m-d1": [5.0, 5.1, 4.9, 5.2]}, looks=(4, 6), min_seeds=3)
    short, ready = cells["m-d0"], cells["m-d1"]
    assert short.verdict == "inconclusive" and short.reason == "only 3 seed(s); the first look is at 4"
    assert short.look is None and short.tests == {}
    assert ready.verdict == "supported" and ready.look == 0


def test_sequential_rows_reports_no_look_as_minus_one():
    claim = spec(looks=LOOKS)
    D = np.array([[5.0, 5.1, 4.9, 5.2, 4.8], [0.5, -0.4, 0.3, -0.6, 0.1]])
    verdict, stop, shown, raw, adjusted = sequential_rows(claim, D, 2)
    assert verdict.tolist() == ["supported", "inconclusive"]
    assert stop.tolist() == [0, -1] and shown.tolist() == [0, 1]
    assert raw["support"][1] == pytest.approx(p_value("paired_t", D[1], "greater"))
    verdict, stop, shown, raw, _ = sequential_rows(claim, D[:, :2], 2)
    assert verdict.tolist() == ["inconclusive"] * 2 and stop.tolist() == [-1, -1] and shown.tolist() == [-1, -1]


def test_more_seeds_than_the_design_are_exploratory():
    rows = [observation(s, 0.5 + d / 100, 0.5) for s, d in enumerate([5.0, 5.1, 4.9, 5.2])]
    c = group_cells(rows, {"c": spec(seeds=3)})["c"][0]
    c.exploratory = True
    decide([[c]])
    assert c.verdict == "supported" and c.reason.startswith(numbers(c) + "; ")
    assert c.reason.endswith("; exploratory: 4 seeds, more than the design's")


# ============================================================ harness.significance
# The p-values and intervals under the verdicts, where their own tests leave a branch or a
# boundary unchecked.


def pratt_normal(d, alternative: str) -> float:
    """The signed-rank test's normal approximation by hand: Pratt ranks (zeros ranked, then left
    out), average ranks for ties, the conditional mean and variance of T+ (sum r / 2, sum r^2 / 4)
    and a continuity correction of 1/2."""
    d = np.asarray(d, dtype=float)
    r = stats.rankdata(np.abs(d))
    nonzero = d != 0
    diff = r[d > 0].sum() - r[nonzero].sum() / 2
    sd = math.sqrt((r[nonzero] ** 2).sum() / 4)
    if alternative == "greater":
        return float(stats.norm.sf((diff - 0.5) / sd))
    if alternative == "less":
        return float(stats.norm.cdf((diff + 0.5) / sd))
    return float(2 * stats.norm.sf(max(abs(diff) - 0.5, 0) / sd))


def pratt_exact(d, alternative: str) -> float:
    """The exact conditional signed-rank p by brute force over all 2**m signs of the m nonzero
    Pratt ranks."""
    d = np.asarray(d, dtype=float)
    r = stats.rankdata(np.abs(d))[d != 0]
    obs = r[d[d != 0] > 0].sum()
    m = len(r)
    plus = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) @ r  # T+ of every sign pattern
    centre = r.sum() / 2
    if alternative == "greater":
        return float((plus >= obs - 1e-9).mean())
    if alternative == "less":
        return float((plus <= obs + 1e-9).mean())
    return float((np.abs(plus - centre) >= abs(obs - centre) - 1e-9).mean())


# 18 seeds at 0.1 pt resolution: two zeros, ties; 16 nonzero with the first 18, 17 with all 19
TIED = np.array([0.0, 0.0, 1.0, 0.4, 0.1, -1.4, -1.4, 0.4, -0.3, 3.9, 0.8, 0.2, 0.3, -0.1, -0.5, 0.2, 1.1, 1.6, 0.6])


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_wilcoxon_with_ties_and_zeros_is_exact_up_to_16_nonzero_then_normal(alternative):
    sixteen, seventeen = TIED[:18], TIED
    assert (sixteen != 0).sum() == 16 and (seventeen != 0).sum() == 17
    assert wilcoxon(sixteen, alternative) == pytest.approx(pratt_exact(sixteen, alternative), rel=1e-12)
    assert wilcoxon(seventeen, alternative) == pytest.approx(pratt_normal(seventeen, alternative), rel=1e-9)
    assert pratt_exact(sixteen, alternative) != pytest.approx(pratt_normal(sixteen, alternative), rel=1e-3)


def test_wilcoxon_without_ties_is_exact_to_50_seeds_then_normal():
    for alternative in ("greater", "two-sided"):
        assert wilcoxon(np.arange(1.0, 51), alternative) == min_attainable_p("wilcoxon", 50, alternative)
    assert wilcoxon(np.arange(1.0, 51), "greater") == 0.5**50
    assert wilcoxon(np.arange(1.0, 52), "greater") == pytest.approx(pratt_normal(np.arange(1.0, 52), "greater"))
    assert min_attainable_p("permutation", 16, "greater") == 0.5**16
    assert min_attainable_p("permutation", 17, "greater") == pytest.approx(1e-4)


def test_rank_test_rows_are_judged_each_on_its_own():
    """judge_rows on many sessions at once: a row with ties must not send an untied row of the
    same batch to the tie-handling branch, nor tied rows be pooled (20 seeds: exact for the
    untied row, the normal approximation for each tied one)."""
    rng = np.random.default_rng(2)
    clean = rng.normal(0.5, 1.0, 20)
    tied = rng.integers(1, 4, (2, 20)) * rng.choice([-1.0, 1.0], (2, 20), p=[0.3, 0.7])  # no zeros, many ties
    D = np.vstack([clean, tied])
    _, raw, _ = judge_rows([(spec(test="wilcoxon", min_seeds=2), D)])
    assert raw[0]["support"].tolist() == [p_value("wilcoxon", d, "greater") for d in D]
    assert raw[0]["support"][1] == pytest.approx(pratt_normal(tied[0], "greater"), rel=1e-9)


def test_wilcoxon_interval_is_hodges_lehmann_beyond_exact_sign_enumeration():
    """20 seeds: the signed-rank interval is still an order statistic of the Walsh averages (the
    null distribution of T+ by convolution), although the sign-flip test is Monte Carlo there."""
    n = 20
    counts = np.array([1.0])
    for r in range(1, n + 1):  # T+ = sum of the ranks with a + sign
        counts = np.concatenate([counts, np.zeros(r)]) + np.concatenate([np.zeros(r), counts])
    sf = counts[::-1].cumsum()[::-1] / 2**n  # sf[c] = P(T+ >= c)
    d = np.random.default_rng(3).normal(0.5, 1.0, n)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)])
    c = int(np.flatnonzero(sf < 0.05)[0])
    low, _ = interval("wilcoxon", d, 0.95, "greater")
    assert low == pytest.approx(walsh[len(walsh) - c], rel=1e-12)


def test_holm_caps_at_one():
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    assert holm([0.3, 0.01, 0.04]) == pytest.approx([0.3, 0.03, 0.08])


def test_summary_of_two_seeds_and_of_one():
    two = summarize([0.9, 0.8], [0.7, 0.7])
    assert two.sd_diff == pytest.approx(math.sqrt(0.005)) and two.sd_a == pytest.approx(math.sqrt(0.005))
    assert math.isfinite(two.mde)  # n = 2 has one degree of freedom: an MDE exists
    one = summarize([0.9], [0.7])
    assert one.n == 1 and math.isnan(one.sd_diff) and math.isnan(one.sd_a) and math.isnan(one.mde)
    with pytest.raises(ValueError, match="equal length"):
        summarize([0.9, 0.8, 0.7], [0.7])  # would broadcast


def test_minimum_detectable_effect_scales_with_sd():
    base = minimum_detectable_effect(1.0, 2)
    assert math.isfinite(base)
    crit = stats.t.ppf(0.95, 1)
    assert stats.nct.sf(crit, 1, base * math.sqrt(2)) == pytest.approx(0.8, abs=1e-6)  # 80% power
    for sd in (1e-6, 50.0):
        assert minimum_detectable_effect(sd, 5) == pytest.approx(sd * minimum_detectable_effect(1.0, 5), rel=1e-6)


def test_prob_greater_of_one_seed():
    assert prob_greater([2.0]) == 1.0 and prob_greater([0.0]) == 0.5
    assert math.isnan(prob_greater([]))


def test_attainable_at_the_boundary():
    """Attainable means the smallest p times the family can fall strictly below alpha: four
    sign-flip seeds reach 1/16 at best, which is not below alpha = 1/16 (see the verdict test of
    p = alpha above). alpha = 1 is allowed."""
    assert not attainable("permutation", 4, "greater", 1 / 16)
    assert attainable("permutation", 4, "greater", 0.0626)
    assert not attainable("wilcoxon", 5, "greater", 1 / 16, family_size=2)
    assert attainable("paired_t", 3, "greater", 1.0)


def test_min_attainable_p_of_no_seeds():
    for test in ("wilcoxon", "permutation"):
        for alternative in ("greater", "two-sided"):
            assert min_attainable_p(test, 0, alternative) == 1.0


def test_defaults_agree_with_the_dispatcher():
    """permutation() beyond exact enumeration (20 seeds, Monte Carlo) with its default random
    state is the p that p_value, and so the verdicts, use; tost and noninferiority default to the
    t-test."""
    d = np.random.default_rng(4).normal(0.3, 1.0, 20)
    for alternative in ("greater", "two-sided"):
        assert permutation(d, alternative) == p_value("permutation", d, alternative)
    assert tost(d, 1.0) == tost(d, 1.0, "paired_t")
    assert noninferiority(d, 1.0) == noninferiority(d, 1.0, "paired_t")


@pytest.mark.parametrize("test", ["wilcoxon", "permutation"])
def test_a_low_confidence_interval_still_holds_the_point_estimate(test):
    """The two-sided p of the rank and sign-flip tests peaks at their point estimate (the
    Hodges-Lehmann estimate; the mean, where the sign-flip p is 1): however low the confidence,
    the interval is not empty and holds it."""
    d = np.array([0.2, 0.3, 0.35, 0.5, 0.9, 2.4, 4.0])  # skewed: the mean lies far from the HL estimate
    walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
    estimate = float(np.median(walsh)) if test == "wilcoxon" else float(d.mean())
    for confidence in (0.05, 0.5, 0.95):
        low, high = interval(test, d, confidence, "two-sided")
        assert low <= estimate <= high, (confidence, low, high)


def test_sign_flip_enumeration_is_exact_through_16_seeds():
    assert p_value("permutation", np.arange(1.0, 17), "greater") == 0.5**16
    monte_carlo = p_value("permutation", np.arange(1.0, 18), "greater")  # (1 + hits) / 10000
    assert monte_carlo >= 1e-4 and monte_carlo * 10000 == pytest.approx(round(monte_carlo * 10000))


def test_interval_rejects_confidence_outside_0_1():
    for confidence in (0.0, 1.0):
        with pytest.raises(ValueError, match="confidence"):
            interval("paired_t", [1.0, 2.0, 3.0], confidence)
