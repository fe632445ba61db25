"""Fair-test budgets: a cell whose arms still move over the last quarter of training, or that
misses a source's minimum, gets no verdict, whatever its numbers say (harness.budget)."""
import dataclasses
import json

import pytest

from factories import cell, observation, record, spec
from harness.budget import FairTest, convergence, grid_side, settle_epoch, shortfalls
from harness.claims import ClaimSpec, claim_from_marker
from harness.errors import UsageError
from harness.verdicts import decide, group_cells

FAIR = FairTest(converged=1.0, grid=5, why="the sources trained to convergence",
                models={"lenet": FairTest(epochs=10, why="002 trained 30 epochs")})


def run(norm="dataset", epochs=4, images=2000, settled=0.795, accuracy=0.8, seed=0, stage=None):
    """A run whose accuracy was `settled` at three quarters of its epochs and `accuracy` at the end;
    with `stage` = (at three quarters, at the end), a FixRes stage at 64 px too."""
    r = record(norm, accuracy, seed)
    cfg = dataclasses.replace(r.config, epochs=epochs)
    at = settle_epoch(epochs)
    history = ([{"epoch": at, "train_loss": 1.0, "test_accuracy": settled}] if at else []) + [
        {"epoch": epochs, "train_loss": 0.9, "test_accuracy": accuracy}]
    meta, metrics = {**r.result.meta, "train_images_in_subset": images}, {}
    if stage is not None:
        cfg = dataclasses.replace(cfg, fixres_epochs=1, fixres_resolution=64)
        meta["fixres_settle_accuracy"], metrics["fixres@64"] = stage
    result = dataclasses.replace(r.result, history=history, meta=meta, metrics=metrics)
    return dataclasses.replace(r, config=cfg, result=result)


def test_arms_that_stopped_moving_are_a_fair_test():
    assert shortfalls(FAIR, "efficientnet_lite0", [run(settled=0.795, accuracy=0.80)]) == []
    assert shortfalls(None, "efficientnet_lite0", [run(settled=0.5, accuracy=0.8)]) == []


def test_an_arm_still_moving_falls_short_with_how_far():
    (short,) = shortfalls(FAIR, "efficientnet_lite0", [run(settled=0.78, accuracy=0.80)])
    assert short.startswith("still moving: 1 of 1 arms moved by 1 pt or more") and "dataset, training by +2.00 pt" in short
    (short,) = shortfalls(FAIR, "efficientnet_lite0", [run(settled=0.82, accuracy=0.80)])  # a fall moves too
    assert "by -2.00 pt" in short
    assert shortfalls(FAIR, "m", [run(settled=0.79, accuracy=0.80)])  # exactly the tolerance: still moving


def test_an_arm_moves_by_its_mean_over_seeds():
    seeds = [run(seed=s, settled=0.78 if s == 0 else 0.80) for s in range(5)]  # one seed +2, the others 0
    assert shortfalls(FAIR, "m", seeds) == [] and convergence(seeds, 1.0).largest == pytest.approx(0.4)
    other = [run(norm="none", seed=s, settled=0.78) for s in range(2)]  # another arm, +2 on average
    assert convergence(seeds + other, 1.0).moving == 1 and convergence(seeds + other, 1.0).measured == 2


def test_a_run_without_its_curve_cannot_show_convergence():
    (short,) = shortfalls(FAIR, "m", [run(epochs=1)])
    assert "recorded no accuracy at three quarters of training (1 epoch(s) at the fewest)" in short


def test_a_fixres_stage_must_have_stopped_moving_too():
    assert shortfalls(FAIR, "m", [run(stage=(0.70, 0.705))]) == []
    (short,) = shortfalls(FAIR, "m", [run(stage=(0.70, 0.75))])
    assert "FixRes stage by +5.00 pt" in short


def test_a_model_may_have_its_own_minimum():
    assert shortfalls(FAIR, "lenet", [run(epochs=4)]) == ["runs train 4 epoch(s), the source's minimum is 10"]
    assert shortfalls(FAIR, "lenet", [run(epochs=10)]) == []
    assert FAIR.for_model("lenet").converged is None  # FAIR's own lenet entry was built directly
    inherited = FairTest.from_value({"converged": 0.5, "models": {"lenet": {"epochs": 10}}}, "x")
    assert inherited.for_model("lenet").converged == 0.5  # from a marker, a model inherits the tolerance


def test_the_grid_is_read_from_the_scan_runs():
    scan = [run(norm=f"fixed:{m}/{s}") for m in (-2, 0.5, 3) for s in (0.02, 0.2, 2)]
    assert grid_side(scan) == 3
    assert grid_side([run(norm="dataset"), run(norm="fixed:-1/0.1")]) is None  # no scan
    fair = FairTest(grid=5)
    assert shortfalls(fair, "m", scan) == ["a 3 x 3 grid, a fair test needs 5 x 5"]
    assert shortfalls(fair, "m", [run(norm=f"fixed:{m}/{s}") for m in range(5) for s in range(1, 6)]) == []


def test_a_zero_shot_scan_is_read_from_the_evaluated_normalizations():
    grid = [f"fixed:{m}/{s}" for m in (-3, 0, 3) for s in (0.05, 0.2, 1)]
    zoom = [f"fixed:{m}/{s}" for m in (-0.5, 0.5, 1.5) for s in (0.2, 0.35, 0.6)]
    reference = run(norm="pretrain")
    reference = dataclasses.replace(reference, config=dataclasses.replace(reference.config, test_norms=tuple(grid + zoom)))
    assert grid_side([reference]) == 3  # a 3 x 3 grid and its 3 x 3 zoom: 3 per axis, not isqrt(18)
    assert shortfalls(FairTest(grid=5), "m", [reference]) == ["a 3 x 3 grid, a fair test needs 5 x 5"]


def cells_with(runs_per_seed, a=(83.0, 84.0, 85.0, 86.0, 84.5), b=(80.0, 81.0, 80.5, 80.0, 81.0), fair=FAIR):
    claim = spec(fair_test=fair)
    obs = []
    for seed, (x, y) in enumerate(zip(a, b)):
        o = observation(seed, x / 100, y / 100)
        arm = dataclasses.replace(o.a, runs=(runs_per_seed(seed),))
        obs.append(dataclasses.replace(o, a=arm))
    cells = group_cells(obs, {"c": claim})["c"]
    decide([cells])
    return cells[0]


def test_a_clear_effect_under_budget_is_not_supported():
    c = cells_with(lambda s: run(seed=s, settled=0.70))
    assert c.verdict == "under budget"
    assert c.reason.startswith("under budget, not a test of the claim: still moving: 1 of 1 arms")
    assert "+4.00 pt, n = 5" in c.reason  # the numbers stay visible
    assert "the source trained to convergence" not in c.reason  # why is said once, in the claim's fair-test line
    assert c.decided_by == ()


def test_the_same_numbers_at_budget_are_supported():
    c = cells_with(lambda s: run(seed=s))
    assert c.verdict == "supported" and c.shortfalls == []


def test_a_refutation_under_budget_is_withheld_too():
    c = cells_with(lambda s: run(seed=s, settled=0.70), a=(80.0, 81.0, 80.5, 80.0, 81.0),
                   b=(83.0, 84.0, 85.0, 86.0, 84.5))
    assert c.verdict == "under budget"


def test_a_failed_run_stays_invalid_under_budget():
    claim = spec(fair_test=FAIR)
    obs = [observation(s, 0.8, 0.7, failed="non-finite loss" if s == 1 else None) for s in range(3)]
    cells = group_cells(obs, {"c": claim})["c"]
    decide([cells])
    assert cells[0].verdict == "invalid"


def test_a_cell_reports_how_far_its_arms_moved():
    c = cells_with(lambda s: run(seed=s, settled=0.797))
    assert c.convergence.measured == 1 and c.convergence.largest == pytest.approx(0.3)
    assert c.convergence.text == "no: 0/1 arms; at most +0.30 pt in the last quarter (fair: < 1)"


@pytest.mark.parametrize("bad, message", [
    ({"epochs": 0}, "fair_test epochs must be a positive integer"),
    ({"epoch": 3}, "fair_test has unknown field(s) epoch"),
    ({"grid": 2.5}, "fair_test grid must be a positive integer"),
    ("30 epochs", "fair_test must be a dict"),
    ({"models": {"lenet": {"epochs": -1}}}, "claim 'x' (lenet): fair_test epochs must be a positive integer"),
    ({"converged": 0}, "fair_test converged must be a positive number of accuracy points"),
    ({"converged": True}, "fair_test converged must be a positive number of accuracy points"),
])
def test_a_malformed_fair_test_is_refused_at_collection(bad, message):
    mark = pytest.mark.claim("x", cells=(("m", "d"),), fair_test=bad).mark
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        claim_from_marker(mark, "test_x")


def test_the_fair_test_crosses_the_json_boundary():
    mark = pytest.mark.claim("x", cells=(("m", "d"),), fair_test={"epochs": 4, "why": "w",
                                                                   "models": {"lenet": {"epochs": 30}}}).mark
    claim = claim_from_marker(mark, "test_x")
    again = ClaimSpec.from_dict(json.loads(json.dumps(claim.to_dict())))
    assert again == claim and again.fair_test.for_model("lenet").epochs == 30
    assert again.fair_test.for_model("lenet").why == "w"  # a model's budget inherits the reason


def test_the_report_shows_the_budget(tmp_path):
    from harness.render import ClaimReport, Cost, render_markdown, summary_json

    c = cells_with(lambda s: run(seed=s, settled=0.70, epochs=2))
    report = ClaimReport(c.spec, [c], {}, {}, [], Cost(5, 5, 0, 1.0))
    header = {"correction": "Holm", "budget": "1 of 1 judged cells are under their claim's fair-test budget"}
    text = render_markdown(header, [report])
    assert "⏳ under budget" in text and "1 under budget of 1 cell(s)" in text
    assert ("Fair test: every arm's accuracy moving less than 1 pt over the last quarter of training (mean over "
            "seeds), a 5 x 5 grid; lenet: 10 epochs (002 trained 30 epochs). Why: the sources trained to "
            "convergence") in text  # a model's own reason beside its budget
    assert "yes: 1/1 arms; at most +10.00 pt in the last quarter (fair: < 1)" in text
    cell_data = summary_json(header, [report])["claims"][0]["cells"][0]
    assert cell_data["verdict"] == "under budget" and len(cell_data["under_budget"]) == 1
    assert cell_data["convergence"]["moving"] == 1
