"""The recommendation rule (harness.recommend) through its public decision function: it recommends
one normalization, refuses to, and names equivalents exactly when its simultaneous intervals say so,
and its family-wise error stays at or below alpha on A/A cells and at the margin."""
import numpy as np
import pytest

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
    from harness.recommend import NORMS

    spec = importlib.util.spec_from_file_location("recommendation_claim", ROOT / "claims" / "test_recommendation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    labels = lambda model, norms=NORMS: [label for _, label in module.arms_for(model, norms)]  # noqa: E731
    assert labels("efficientnet_lite0") == ["dataset", "pretrain (0.5/0.5)", "imagenet", "none", "instance", "minmax"]
    assert labels("resnet50") == ["dataset", "pretrain = imagenet", "none", "instance", "minmax"]
    assert labels("lenet") == ["dataset", "none", "instance", "minmax"]
    assert labels("resnet50", ("imagenet", "none")) == ["imagenet", "none"]  # asked without pretrain: kept
