"""The rules on the numbers runs really produce: accuracies are counts (k correct of n evaluated
images), so paired differences sit on a grid of 100 / n points, with ties, zeros and zero spread.

Every test builds its inputs as the harness does (accuracies k / n from a test set's size, the
difference 100 a - 100 b computed in floats) and goes through the public decision path: group_cells
and decide for single cells, judge_rows and sequential_rows (what decide runs) for simulated
sessions. Each pins one way float differences or a shrinking family used to mislead a verdict.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from factories import cell, spec
from harness.observations import Arm, Observation
from harness.significance import p_value, wilcoxon
from harness.verdicts import decide, group_cells, judge_rows, sequential_rows

ALPHA = 0.05
TEST_IMAGES = 1000  # Fashion-MNIST's test subset in the cpu profile: a grid of 0.1 point
STEP = 100 / TEST_IMAGES


def se(p: float, trials: int) -> float:
    return math.sqrt(p * (1 - p) / trials)


def decided(counts_a, counts_b, images: int = TEST_IMAGES, cell_id: str = "m-d", **prereg):
    """One cell decided from correct counts per seed, each arm k / images as a run's accuracy is."""
    rows = [Observation("c", cell(cell_id), s, Arm("a", ka / images, (), None, images),
                        Arm("b", kb / images, (), None, images))
            for s, (ka, kb) in enumerate(zip(counts_a, counts_b))]
    cells = group_cells(rows, {"c": spec(**prereg)})["c"]
    decide([cells])
    return cells[0]


def harness_floats(ka: np.ndarray, kb: np.ndarray, images: int = TEST_IMAGES) -> np.ndarray:
    """Differences in points as group_cells computes them from two arms' counts: 100 a - 100 b."""
    return 100 * (ka / images) - 100 * (kb / images)


def test_the_grid_travels_with_a_runs_accuracy():
    from factories import record

    arm = Arm.of_run(record("dataset", 0.874))
    assert arm.denominator == 1000  # the factory's run was evaluated on 1,000 images
    assert Arm.constant("stated share", 0.5).denominator == 2
    c = decided([874, 861], [870, 857])
    assert c.step == pytest.approx(0.1) and c.diffs.tolist() == [4 * (100 / 1000)] * 2


def test_wilcoxon_on_real_accuracies_is_the_exact_tie_aware_p():
    """Differences of a few counts tie often; in floats (0.874 - 0.871 against 0.912 - 0.909) the
    ties vanish and the no-ties table gives another p, on either side of alpha."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        kb = rng.binomial(TEST_IMAGES, 0.88, 8)
        ka = kb + rng.integers(-2, 6, 8)
        c = decided(ka, kb, test="wilcoxon", min_seeds=2)
        assert c.tests["support"].p_raw == wilcoxon((ka - kb).astype(float), "greater")


def test_identical_differences_from_real_accuracies_decide_nothing():
    """Five seeds that each gain exactly 4 of 1,000 images: no spread, no t statistic. In floats
    they spread by 1e-15 and the t-test 'supported' them at p ~ 1e-56."""
    kb = np.array([874, 861, 900, 855, 868])
    superiority = decided(kb + 4, kb)
    assert superiority.verdict == "inconclusive" and "no spread" in superiority.reason
    equivalence = decided(kb + 4, kb, kind="equivalence", margin=1.0)
    assert equivalence.verdict == "inconclusive"
    assert all(math.isnan(x) for x in equivalence.shown_interval)


@pytest.mark.parametrize("test", ["wilcoxon", "permutation", "paired_t"])
def test_a_shift_by_the_margin_keeps_ties_so_both_sides_are_alike(test):
    """Non-inferiority at its margin, with differences symmetric about -m on the grid: the rules
    must support and refute alike (mirror images), each at most alpha. Shifting floats by m broke
    the ties on one side only: the Wilcoxon test refuted 0.049 and supported 0.029 here."""
    trials, n = 40_000, 12
    rng = np.random.default_rng(11)
    kb = rng.binomial(TEST_IMAGES, 0.9, (trials, n))
    ka = kb + np.rint(rng.normal(-10, 1.0, (trials, n))).astype(int)  # -10 counts: -1 point, the margin
    claim = spec(kind="noninferiority", test=test, margin=1.0, min_seeds=2)
    v = judge_rows([(claim, harness_floats(ka, kb), STEP)])[0][:, 0]
    refuted, supported = np.mean(v == "refuted"), np.mean(v == "supported")
    assert refuted <= ALPHA + 3 * se(ALPHA, trials) and supported <= ALPHA + 3 * se(ALPHA, trials)
    assert abs(refuted - supported) <= 4 * math.hypot(se(refuted, trials), se(supported, trials)), (refuted, supported)


@pytest.mark.parametrize("test", ["wilcoxon", "permutation", "paired_t"])
def test_a_two_sided_verdict_agrees_with_its_interval(test):
    """Eleven seeds gain (or lose) 1 to 3 points and, mostly, one collapses the other way: the rank
    test leans with the eleven while the mean may lean with the collapse. The verdict takes the test's own side, so a 'refuted' never stands beside an
    interval above 0 (83 of 800 such cells did, with the direction taken from the mean)."""
    rng = np.random.default_rng(3)
    decisive = 0
    for _ in range(150):
        kb = rng.binomial(TEST_IMAGES, 0.9, 12)
        collapse = -rng.integers(100, 400) if rng.random() < 0.7 else rng.integers(-5, 20)
        gain = np.append(rng.integers(10, 31, 11), collapse) * rng.choice([-1, 1])
        c = decided(kb + gain, kb, test=test, alternative="two-sided", min_seeds=2)
        low, high = c.shown_interval
        if c.verdict == "supported":
            assert low > 0, (c.diffs, c.shown_interval)
        elif c.verdict == "refuted":
            assert high < 0, (c.diffs, c.shown_interval)
        decisive += c.verdict in ("supported", "refuted")
    assert decisive >= 30  # the check is not vacuous


def family(p_like_counts: list[list[int]], failed: int = 0, registered: int | None = None):
    """One claim's cells from per-cell count gains over a fixed baseline; `failed` more cells with
    a failed run; `registered` the family size collection recorded (None: the cells given)."""
    from factories import observation

    rows = []
    for i, gains in enumerate(p_like_counts):
        rows += [Observation("c", cell(f"m-d{i}"), s, Arm("a", (850 + g) / TEST_IMAGES, (), None, TEST_IMAGES),
                             Arm("b", 850 / TEST_IMAGES, (), None, TEST_IMAGES)) for s, g in enumerate(gains)]
    for j in range(failed):
        rows += [observation(s, 0.5, 0.5, cell_id=f"m-f{j}", failed="diverged") for s in range(3)]
    cells = group_cells(rows, {"c": spec()})["c"]
    for c in cells:
        c.family_size = registered
    decide([cells])
    return {c.cell_id: c for c in cells}


def test_a_failed_cell_counts_in_the_holm_family_with_p_one():
    """Four cells registered, one fails: the other three are still adjusted as four (p = 1 for the
    failed one), so a failure cannot turn 'inconclusive' into 'supported'."""
    gains = [[30, 5, 18, 9, 22], [15, 2, 11, 4, 21], [12, 3, 14, 8, 19]]
    whole = family(gains + [[0, 1, -1, 0, 1]])  # the fourth cell tested, p ~ 1
    broken = family(gains, failed=1)
    for i in range(3):
        w, b = whole[f"m-d{i}"], broken[f"m-d{i}"]
        assert b.tests["support"].p_adjusted == pytest.approx(w.tests["support"].p_adjusted)
        assert b.verdict == w.verdict and b.untested == 1
        assert "4 registered cells, 1 of them without a test (counted as p = 1)" in b.reason
    assert broken["m-f0"].verdict == "invalid"
    # a cell collection registered that never reported counts as well
    unseen = family(gains, registered=4)
    assert [unseen[f"m-d{i}"].tests["support"].p_adjusted for i in range(3)] == \
        pytest.approx([broken[f"m-d{i}"].tests["support"].p_adjusted for i in range(3)])
    smaller = family(gains)  # three registered: the family it is
    assert smaller["m-d0"].untested == 0
    assert smaller["m-d0"].tests["support"].p_adjusted < broken["m-d0"].tests["support"].p_adjusted


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_sequential_false_support_on_real_accuracies_is_at_most_alpha(spending):
    """A/A cells of a sequential claim on accuracies that differ by about one count, where three
    equal differences are common: they have no spread and never stop a cell (in floats they did,
    at the first look), and the plan's false support stays within alpha."""
    trials = 40_000
    rng = np.random.default_rng(5)
    kb = rng.binomial(TEST_IMAGES, 0.9, (trials, 8))
    counts = np.rint(rng.normal(0, 1.0, (trials, 8))).astype(int)
    claim = spec(looks=(3, 5, 8), spending=spending)
    verdict, stop, *_ = sequential_rows(claim, harness_floats(kb + counts, kb), 1, STEP)
    assert np.mean(verdict == "supported") <= ALPHA + 3 * se(ALPHA, trials)
    assert np.mean(verdict == "refuted") <= ALPHA + 3 * se(ALPHA, trials)
    equal_three = (counts[:, :3] == counts[:, :1]).all(axis=1) & (counts[:, 0] != 0)
    assert equal_three.sum() > 100 and not (stop[equal_three] == 0).any()


def test_one_sided_claims_are_decisive_under_aa_up_to_twice_alpha():
    """What the report states: under A/A a one-sided claim is wrongly supported at most alpha and
    refuted at most alpha, so it ends decisive up to 2 alpha; a two-sided claim at most alpha."""
    trials = 40_000
    rng = np.random.default_rng(9)
    kb = rng.binomial(TEST_IMAGES, 0.9, (trials, 8))
    D = harness_floats(kb + np.rint(rng.normal(0, 8, (trials, 8))).astype(int), kb)
    tol = 3 * se(2 * ALPHA, trials)
    one = judge_rows([(spec(), D, STEP)])[0][:, 0]
    assert np.mean(one == "supported") <= ALPHA + 3 * se(ALPHA, trials)
    assert abs(np.mean(np.isin(one, ["supported", "refuted"])) - 2 * ALPHA) <= tol
    two = judge_rows([(spec(alternative="two-sided"), D, STEP)])[0][:, 0]
    assert np.mean(np.isin(two, ["supported", "refuted"])) <= ALPHA + 3 * se(ALPHA, trials)


def test_arms_on_different_test_sets_are_differenced_on_the_common_grid():
    """Arm a on 1,000 images, arm b on 800: a - b sits on 100 / lcm(1000, 800) = 0.025 points,
    finer than either arm's own grid. Gains of one or two 4,000ths are real and consistent; on a
    coarser grid (the larger n's 0.1 point, or the gcd's 0.5) they all round to 0: no spread."""
    gains = np.array([1, 1, 1, 2, 1, 1, 2, 1])  # 4 k - 5 j, in 4,000ths of the test sets
    j = 696 + (-gains) % 4 + 4 * np.arange(len(gains))  # b: j of 800 correct, a: k of 1,000
    k = (gains + 5 * j) // 4
    assert ((4 * k - 5 * j) == gains).all()
    rows = [Observation("c", cell("m-d"), s, Arm("a", ka / 1000, (), None, 1000), Arm("b", kb / 800, (), None, 800))
            for s, (ka, kb) in enumerate(zip(k, j))]
    c = group_cells(rows, {"c": spec()})["c"][0]
    decide([[c]])
    assert c.step == pytest.approx(0.025)
    assert c.diffs == pytest.approx(0.025 * gains, abs=1e-12)
    assert c.verdict == "supported", c.reason


def test_a_margin_off_the_grid_is_shifted_exactly():
    """A non-inferiority margin of 0.25 point on a 0.1-point grid is 2.5 steps, not 2 (nor 3):
    differences of -0.2 point clear it by 0.05. The test runs on d + m exactly, so the cell is
    supported; with the margin rounded to whole steps the shifted differences are mostly 0."""
    kb = np.array([874, 861, 900, 855, 868, 880, 870, 866])
    ka = kb + np.array([-2, -2, -2, -1, -2, -2, -2, -1])
    c = decided(ka, kb, kind="noninferiority", margin=0.25)
    exact = (ka - kb) * STEP + 0.25
    assert c.tests["support"].p_raw == pytest.approx(p_value("paired_t", exact, "greater"), rel=1e-9)
    assert c.verdict == "supported", c.reason


def test_without_a_known_grid_a_margin_shift_keeps_mirrored_ties():
    """Arms stored without their denominator: the differences are rounded to 1e-9 points, also
    after the margin's shift, so -0.2 + 0.3 and -0.4 + 0.3 tie in |d + m| as they do exactly (in
    floats, 0.09999999999999998 against 0.10000000000000003, the Wilcoxon ranks split them)."""
    from factories import observation

    d = [-0.2, -0.4, 0.1, -0.2, -0.4, 0.5, 0.2, -0.1]
    rows = [observation(s, 0.5 + x / 100, 0.5) for s, x in enumerate(d)]
    c = group_cells(rows, {"c": spec(kind="noninferiority", margin=0.3, test="wilcoxon")})["c"][0]
    decide([[c]])
    assert c.step is None
    exact = np.array([1, -1, 4, 1, -1, 8, 5, 2], dtype=float)  # tenths of a point: d + m
    assert c.tests["support"].p_raw == wilcoxon(exact, "greater")


def mixed_family(fixed_gains: list[int], sequential: str | None):
    """A session-wide Holm family: one fixed-n cell of claim 'f' (count gains over 850 of 1,000)
    beside one cell of the sequential claim 's' that is tested ('tested'), failed ('failed') or
    absent (None)."""
    from factories import observation

    rows = [Observation("f", cell("m-d0"), s, Arm("a", (850 + g) / TEST_IMAGES, (), None, TEST_IMAGES),
                        Arm("b", 850 / TEST_IMAGES, (), None, TEST_IMAGES)) for s, g in enumerate(fixed_gains)]
    if sequential == "tested":
        rows += [observation(s, 0.55, 0.5, cell_id="m-d1", claim="s") for s in range(5)]
    elif sequential == "failed":
        rows += [observation(s, 0.5, 0.5, cell_id="m-d1", claim="s", failed="diverged") for s in range(5)]
    grouped = group_cells(rows, {"f": spec("f"), "s": spec("s", looks=(3, 5))})
    cells = [c for claim in ("f", "s") for c in grouped.get(claim, [])]
    for c in cells:
        c.sequential_family = 2 if c.spec.name == "s" else None
    decide([cells])
    return cells[0]


def test_a_sequential_cell_is_outside_the_fixed_cells_holm_family_whether_it_fails_or_not():
    """A sequential claim's cell is decided by its own plan (at alpha / its family), never by the
    fixed-n cells' Holm step: it is not one of their untested cells, tested or failed, so a fixed
    cell with p ~ 0.03 beside it is supported alone (a failure elsewhere changes nothing), and no
    cell reports an untested member."""
    gains = [12, -1, 9, 1, 10, 2]
    alone = mixed_family(gains, None)
    for other in ("tested", "failed"):
        c = mixed_family(gains, other)
        assert c.tests["support"].p_adjusted == c.tests["support"].p_raw == alone.tests["support"].p_raw
        assert c.verdict == alone.verdict == "supported" and c.untested == 0
        assert "without a test" not in c.reason
    assert ALPHA / 2 < alone.tests["support"].p_raw < ALPHA  # p = 0.028: a family of two would not support it


def test_a_sequential_two_sided_verdict_takes_the_side_of_its_own_test():
    """Under a sequential plan too, a two-sided Wilcoxon claim leans with its signed ranks: eleven
    seeds gain 1 to 3 points and one collapses by 30, so the mean is below 0 while the test (and
    its interval) say d > 0. The verdict must be 'supported' (the mirror image 'refuted')."""
    gains = np.append(np.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 2, 2]) * 10, -300) * STEP
    D = np.stack([gains, -gains])
    assert gains.mean() < 0
    claim = spec(test="wilcoxon", alternative="two-sided", looks=(6, 12), min_seeds=2)
    verdict, stop, *_ = sequential_rows(claim, D, 1, STEP)
    assert verdict.tolist() == ["supported", "refuted"] and stop.tolist() == [1, 1]


def test_one_arm_without_its_denominator_leaves_the_grid_unknown():
    """A run stored without its evaluated-image count beside one with it: the grid is unknown
    (None), the differences are taken as they are (rounded to 1e-9 points) and the cell is still
    decided, not failed."""
    kb = np.array([874, 861, 900, 855, 868])
    rows = [Observation("c", cell("m-d"), s, Arm("a", (b + g) / TEST_IMAGES, (), None, TEST_IMAGES),
                        Arm("b", b / TEST_IMAGES))  # b: denominator unknown
            for s, (b, g) in enumerate(zip(kb, [4, 6, 3, 5, 7]))]
    c = group_cells(rows, {"c": spec()})["c"][0]
    decide([[c]])
    assert c.step is None and c.diffs == pytest.approx([0.4, 0.6, 0.3, 0.5, 0.7])
    assert c.verdict == "supported" and not c.failures, c.reason


def test_a_sequential_cells_running_differences_are_the_reports():
    """The plugin stops a sequential cell on observation_diffs: the same points on the same grid
    as the report decides (a gain of 4 of 1,000 images is 0.4 point, exactly)."""
    from harness.verdicts import observation_diffs

    rows = [Observation("c", cell(), s, Arm("a", (870 + 4) / TEST_IMAGES, (), None, TEST_IMAGES),
                        Arm("b", 870 / TEST_IMAGES, (), None, TEST_IMAGES)) for s in range(3)]
    diffs, step = observation_diffs(rows)
    assert step == pytest.approx(STEP)
    assert diffs == [4 * STEP] * 3 and len(set(diffs)) == 1
    assert diffs == decided([874] * 3, [870] * 3).diffs.tolist()
