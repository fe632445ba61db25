"""The recommendation rule (harness.recommend) through its public decision function: it recommends
one normalization, refuses to, and names equivalents exactly when its simultaneous intervals say so,
and its family-wise error stays at or below alpha on A/A cells and at the margin."""
import numpy as np
import pytest
from scipy import stats

from harness.recommend import ALPHA, DECISIONS, MARGIN, decide

N = 2000  # test images: one count is 0.05 point


def counts(means: dict[str, float], seeds: int = 8, sd: float = 0.4, seed: int = 0, shared: float = 0.0) -> dict:
    """Correct counts of N per arm and seed around `means` (points): independent seed noise per arm
    plus a part shared by a seed's arms (the pairing)."""
    rng = np.random.default_rng(seed)
    common = shared * rng.standard_normal(seeds)
    return {a: [int(round((m + common[s] + sd * rng.standard_normal()) / 100 * N)) for s in range(seeds)]
            for a, m in means.items()}


def test_one_normalization_that_beats_every_other_by_more_than_the_margin_is_recommended():
    rec = decide(counts({"dataset": 88, "pretrain": 85, "none": 82}), N)
    assert (rec.decision, rec.use, rec.avoid, rec.undecided) == ("use", ("dataset",), ("pretrain", "none"), ())
    assert rec.decided and rec.words().startswith("use dataset: it beats every other by more than 1 point")
    gap = rec.interval("pretrain", "dataset")
    assert gap.high < -MARGIN and gap.low < gap.mean < gap.high and abs(gap.mean + 3) < 0.5


def test_normalizations_within_the_margin_are_named_as_equivalents_and_the_worse_one_avoided():
    rec = decide(counts({"dataset": 85, "pretrain": 85.1, "imagenet": 84.9, "none": 82}, seeds=8, sd=0.2), N)
    assert rec.decision == "use any of" and set(rec.use) == {"dataset", "pretrain", "imagenet"}
    assert rec.avoid == ("none",) and rec.decided
    for a in rec.use:
        for b in rec.use:
            if a != b:
                assert -MARGIN < rec.interval(a, b).low and rec.interval(a, b).high < MARGIN
    assert "use any of" in rec.words() and "avoid none: -3" in rec.words()


def test_it_refuses_while_the_intervals_straddle_the_margin():
    rec = decide(counts({"dataset": 85, "pretrain": 84.2, "none": 83.6}, seeds=3, sd=0.6), N)
    assert rec.decision == "no recommendation" and rec.use == () and not rec.decided
    assert rec.words().startswith("no recommendation: ")


def test_a_gap_of_exactly_the_margin_is_neither_a_recommendation_nor_an_equivalence():
    """Equal differences at every seed: one count's spread, so the bound sits just below the gap."""
    rec = decide({"a": [1720] * 8, "b": [1700] * 8}, N)  # a - b = 1.00 point exactly, every seed
    assert rec.decision == "use any of" and rec.use == ("a",)  # b does not beat a by the margin
    assert "b" not in rec.avoid  # a does not beat b by *more* than the margin
    rec = decide({"a": [1722] * 8, "b": [1700] * 8}, N)  # 1.1 points
    assert rec.decision == "use" and rec.avoid == ("b",)


def test_identical_arms_are_equivalent_and_their_interval_has_a_width():
    rec = decide({"a": [1700, 1710, 1690], "b": [1700, 1710, 1690]}, N)
    iv = rec.interval("a", "b")
    assert iv.mean == 0 and iv.low < 0 < iv.high  # one count's spread, never a zero-width interval
    assert rec.decision == "use any of" and set(rec.use) == {"a", "b"}


def test_more_looks_and_more_arms_widen_every_interval():
    data = counts({"a": 85, "b": 84, "c": 83}, seeds=5)
    one, three = decide(data, N), decide(data, N, looks=3)
    wider = decide({**data, "d": data["c"], "e": data["b"]}, N)
    assert three.level == one.level / 3 and wider.level == one.level * 3 / 10
    for iv in one.intervals:
        assert three.interval(iv.a, iv.b).high - three.interval(iv.a, iv.b).low > iv.high - iv.low
        assert wider.interval(iv.a, iv.b).high - wider.interval(iv.a, iv.b).low > iv.high - iv.low


def test_under_budget_and_too_few_seeds_recommend_nothing():
    data = counts({"dataset": 88, "none": 82}, seeds=5)
    rec = decide(data, N, shortfalls=["still moving: 1 of 2 arms moved by 1 pt or more"])
    assert rec.decision == "under budget" and rec.use == () and rec.intervals and "still moving" in rec.words()
    rec = decide({a: v[:2] for a, v in data.items()}, N)
    assert rec.decision == "too few seeds" and rec.intervals == () and rec.use == ()


@pytest.mark.parametrize("bad, match", [({"a": [1, 2, 3]}, "at least two"), ({"a": [1, 2], "b": [1]}, "same seeds")])
def test_malformed_input_is_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        decide(bad, N)


def simulate(means: dict, cells: int, seeds: int, rng) -> list:
    """Decisions on `cells` simulated cells: binomial test-set noise on each arm's accuracy plus a
    seed effect shared by the arms and one of each arm's own (0.4 point)."""
    out = []
    p = np.asarray(list(means.values())) / 100
    for _ in range(cells):
        shared = rng.normal(0, 0.005, seeds)
        own = rng.normal(0, 0.004, (len(p), seeds))
        k = rng.binomial(N, np.clip(p[:, None] + shared + own, 0, 1))
        out.append(decide(dict(zip(means, k.tolist())), N))
    return out


def test_a_a_cells_get_a_false_statement_at_most_alpha_of_the_time():
    """No difference at all: any "use X" or "avoid j" is false; the rule makes one in at most alpha
    of the cells (measured on 2,000 cells of six arms, 5 seeds; the README quotes the figure from
    bench/error_rates.py)."""
    rng = np.random.default_rng(1)
    recs = simulate({a: 85.0 for a in "abcdef"}, 2000, 5, rng)
    false = np.mean([r.decision == "use" or bool(r.avoid) for r in recs])
    assert false <= ALPHA
    assert all(r.decision in DECISIONS for r in recs)


def test_at_the_margin_false_equivalence_stays_at_most_alpha():
    """a beats the others by exactly the margin: saying b or c is usable (no one beats it by the
    margin) is false; it happens in at most alpha of the cells."""
    rng = np.random.default_rng(2)
    recs = simulate({"a": 85.0 + MARGIN, "b": 85.0, "c": 85.0}, 2000, 8, rng)
    false = np.mean([bool({"b", "c"} & set(r.use)) for r in recs])
    assert false <= ALPHA


def test_the_claim_compares_each_choice_once_for_the_model_it_runs():
    """The module's arms: the weights' own stats named by value, once where they are ImageNet's; none
    for a model trained from scratch; no three-channel stats for a one-channel model."""
    import importlib.util

    from conftest import ROOT
    from harness.norms import CHOOSABLE

    spec = importlib.util.spec_from_file_location("recommendation_claim", ROOT / "claims" / "test_recommendation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    labels = lambda model, norms=CHOOSABLE: [label for _, label in module.arms_for(model, norms)]  # noqa: E731
    assert labels("efficientnet_lite0") == ["dataset", "pretrain (0.5/0.5)", "imagenet", "none", "instance", "minmax"]
    assert labels("resnet50") == ["dataset", "pretrain = imagenet", "none", "instance", "minmax"]
    assert labels("lenet") == ["dataset", "none", "instance", "minmax"]
    assert labels("resnet50", ("imagenet", "none")) == ["imagenet", "none"]  # asked without pretrain: kept


WOBBLE = (0, 4, -3, 2, -4, 3, -2, 1)  # counts of 2,000, per seed


def wobbling(percent: float, sign: int = 1, seeds: int = 8) -> list[int]:
    return [int(percent * 20) + sign * w for w in WOBBLE[:seeds]]


@pytest.mark.parametrize("data, kwargs, words", [
    ({"dataset": wobbling(88), "pretrain": wobbling(85, -1), "none": wobbling(82)}, {},
     "use dataset: it beats every other by more than 1 point (pretrain -3.01 [-3.33, -2.69], none -6.00 [-6.06, -5.94])"),
    ({"dataset": wobbling(85), "pretrain": wobbling(85.1, -1), "none": wobbling(82), "minmax": wobbling(84.2, -1)}, {},
     "use any of pretrain, dataset: they differ by less than 1 point, and no other beats them by 1 point or more; "
     "avoid none: -3.09 [-3.46, -2.71] against pretrain; undecided (more seeds would tell): minmax -0.90 [-0.96, -0.84]"),
    ({"dataset": wobbling(85, seeds=3), "none": wobbling(84.5, -1, 3), "minmax": wobbling(84.6, seeds=3)}, {},
     "no recommendation: dataset leads, but no normalization is shown within 1 point of the best (the intervals "
     "still straddle the margin; more seeds would tell)"),
    ({"a": [1720] * 8, "b": [1700] * 8, "c": [1500] * 8}, {},
     "use a: no other beats it by 1 point or more; avoid c: -11.00 [-11.06, -10.94] against a; "
     "undecided (more seeds would tell): b -1.00 [-1.06, -0.94]"),
    ({"a": wobbling(85), "b": wobbling(82)}, {"shortfalls": ["still moving", "a 3 x 3 grid"]},
     "no recommendation (under budget): still moving; a 3 x 3 grid"),
    ({"a": wobbling(85, seeds=2), "b": wobbling(82, seeds=2)}, {},
     "no recommendation (too few seeds): 2 seed(s), the rule needs at least 3"),
    ({"a": wobbling(85), "b": wobbling(83.5)}, {"margin": 2.0},
     "use any of a, b: they differ by less than 2 points, and no other beats them by 2 points or more"),
])
def test_the_words_a_practitioner_acts_on(data, kwargs, words):
    rec = decide(data, N, **kwargs)
    assert rec.words() == words
    as_json = rec.to_dict()
    assert as_json["words"] == words and as_json["decision"] == rec.decision and as_json["seeds"] == len(data["a" if "a" in data else "dataset"])
    assert [r["arm"] for r in as_json["ranking"]] == [a for a, *_ in rec.ranking]
    assert len(as_json["intervals"]) == len(rec.intervals)


def test_every_pair_s_interval_reads_either_way_and_is_centred_on_its_mean():
    rec = decide({"c": wobbling(80), "b": wobbling(83, -1), "a": wobbling(85)}, N)  # ranked by mean, not as given
    assert len(rec.intervals) == 3 and all(iv.mean >= 0 for iv in rec.intervals)  # the better-looking arm first
    for iv in rec.intervals:
        back = rec.interval(iv.b, iv.a)
        assert (back.a, back.b, back.mean, back.low, back.high) == (iv.b, iv.a, -iv.mean, -iv.high, -iv.low)
        assert iv.low < iv.mean < iv.high and abs((iv.low + iv.high) / 2 - iv.mean) < 1e-9
    assert rec.interval("a", "c").mean == pytest.approx(5.0)  # the same wobble: exactly the gap
    with pytest.raises(KeyError, match="'z'"):  # names the pair it lacks
        rec.interval("a", "z")
    assert [a for a, *_ in rec.ranking] == ["a", "b", "c"] and rec.ranking[0][1] == pytest.approx(np.mean(wobbling(85)) / 20)
    assert rec.ranking[0][2] == pytest.approx(float(np.std(np.array(wobbling(85)) / 20, ddof=1)))


def ranking(seed: int, accuracies: dict[str, float], n: int = 1000, failed: str | None = None):
    """One seed's Ranking of runs with these accuracies (k / n), as the claim module records it."""
    from factories import cell, record
    from harness.observations import Arm, Ranking

    arms = []
    for norm, acc in accuracies.items():
        run = record(norm, acc, seed, reason=failed if norm == "none" else None)
        arms.append(Arm(norm, acc, (run,), None, n) if run.ok else Arm(norm, None, (run,), run.reason))
    return Ranking("recommendation", cell(), seed, tuple(arms))


def test_a_cell_s_rankings_are_decided_on_their_counts_with_the_plan_s_looks():
    from factories import spec
    from harness.recommend import decide_cell

    claim = spec("recommendation", kind="ranking", margin=1.0, looks=(3, 5, 8))
    rows = [ranking(s, {"dataset": 0.88 + w, "none": 0.82 + w}) for s, w in enumerate((0.001, -0.002, 0.0, 0.003))]
    fixed, planned = decide_cell(rows, claim, sequential=False), decide_cell(rows, claim, sequential=True)
    assert fixed.decision == planned.decision == "use" and fixed.use == ("dataset",) and fixed.seeds == 4
    assert planned.level == fixed.level / 3  # Bonferroni over the plan's three looks
    assert fixed.interval("dataset", "none").mean == pytest.approx(6.0)  # counts of 1,000: exact
    # a failed seed drops out whole (its pair with it), the others stay paired
    failed = rows + [ranking(9, {"dataset": 0.5, "none": 0.9}, failed="diverged")]
    assert decide_cell(failed, claim, sequential=False).seeds == 4
    with pytest.raises(ValueError, match="same test images"):  # no seed left at all
        decide_cell([ranking(0, {"dataset": 0.8, "none": 0.7}, failed="diverged")], claim, sequential=False)
    with pytest.raises(ValueError, match="same test images"):
        decide_cell([ranking(0, {"dataset": 0.8, "none": 0.7}, n=1000), ranking(1, {"dataset": 0.8, "none": 0.7}, n=500)],
                    claim, sequential=False)


def test_a_cell_still_moving_gets_no_recommendation():
    """The fair-test rule of every claim: an arm whose accuracy moved by the margin over the last
    quarter of training keeps the cell from a decision, however clear its numbers."""
    import dataclasses

    from factories import spec
    from harness.budget import FairTest
    from harness.recommend import decide_cell

    # the cell model's own condition (model "m") is the binding one: 1 point, where the default allows 5
    claim = spec("recommendation", kind="ranking", margin=1.0,
                 fair_test=FairTest(converged=5.0, models={"m": FairTest(converged=1.0)}))
    rows = []
    for s in range(4):
        row = ranking(s, {"dataset": 0.88, "none": 0.82})
        moving = []
        for arm in row.arms:
            run = arm.runs[0]
            cfg = dataclasses.replace(run.config, epochs=4)
            history = [{"epoch": 3, "test_accuracy": arm.value - 0.015}, {"epoch": 4, "test_accuracy": arm.value}]
            run = dataclasses.replace(run, config=cfg, result=dataclasses.replace(run.result, history=history))
            moving.append(dataclasses.replace(arm, runs=(run,)))
        rows.append(dataclasses.replace(row, arms=tuple(moving)))
    rec = decide_cell(rows, claim, sequential=False)
    assert rec.decision == "under budget" and "still moving" in rec.why and rec.use == ()


@pytest.mark.parametrize("looks", [1, 3])
def test_each_interval_is_the_paired_t_interval_at_the_simultaneous_level(looks):
    """Checked against scipy's own paired t-test: level alpha / (pairs x looks), two-sided."""
    data = {"a": wobbling(85), "b": wobbling(84, -1), "c": [1600 + 3 * s for s in range(8)]}
    rec = decide(data, N, looks=looks)
    assert rec.level == pytest.approx(ALPHA / (3 * looks))
    for iv in rec.intervals:
        a, b = (np.asarray(data[x]) / 20 for x in (iv.a, iv.b))
        ci = stats.ttest_rel(a, b).confidence_interval(confidence_level=1 - rec.level)
        assert (iv.low, iv.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


@pytest.mark.parametrize("n", [0, -5, 2000.0, None])
def test_the_number_of_test_images_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="positive integer"):
        decide({"a": [1, 2, 3], "b": [1, 2, 3]}, n)
    assert decide({"a": [1, 1, 0], "b": [0, 1, 1]}, 1).seeds == 3  # one image is a test set, if a poor one


def test_the_json_the_report_writes_carries_every_part_of_the_decision():
    data = {"dataset": wobbling(85), "pretrain": wobbling(85.1, -1), "none": wobbling(82), "minmax": wobbling(81.5, -1)}
    rec = decide(data, N)
    assert rec.decision == "use any of" and rec.avoid == ("none", "minmax")
    assert rec.words().endswith("avoid none: -3.09 [-3.46, -2.71] against pretrain, minmax: -3.60 [-3.66, -3.54] "
                                "against pretrain")
    out = rec.to_dict()
    assert out == {"decision": "use any of", "use": ["pretrain", "dataset"], "avoid": ["none", "minmax"],
                   "undecided": [], "words": rec.words(), "seeds": 8, "margin": MARGIN, "alpha": ALPHA,
                   "level": rec.level, "why": "",
                   "ranking": [{"arm": a, "mean": m, "sd": sd} for a, m, sd in rec.ranking],
                   "intervals": [{"a": i.a, "b": i.b, "mean": i.mean, "low": i.low, "high": i.high}
                                 for i in rec.intervals]}
