"""Fair-test budgets: a cell below its claim's pre-registered budget gets no verdict, whatever its
numbers say; every cell says whether its runs were still improving."""
import dataclasses
import json

import pytest

from factories import cell, observation, record, spec
from harness.budget import FairTest, grid_side, improvement, shortfalls
from harness.claims import ClaimSpec, claim_from_marker
from harness.errors import UsageError
from harness.verdicts import decide, group_cells

FAIR = FairTest(epochs=4, train_images=4000, grid=5, why="the source trained to convergence",
                models={"lenet": FairTest(epochs=10, why="002 trained 30 epochs")})


def run(norm="dataset", epochs=2, images=2000, quarters=(2.0, 1.6, 1.4, 1.3), seed=0, accuracy=0.8):
    r = record(norm, accuracy, seed)
    cfg = dataclasses.replace(r.config, epochs=epochs)
    meta = {**r.result.meta, "train_images_in_subset": images, "train_loss_quarters": list(quarters)}
    return dataclasses.replace(r, config=cfg, result=dataclasses.replace(r.result, meta=meta))


def test_runs_below_the_budget_fall_short_with_what_they_lack():
    short = shortfalls(FAIR, "efficientnet_lite0", [run(epochs=2, images=2000)])
    assert short == ["runs train 2 epoch(s), a fair test needs 4", "runs train on 2,000 images, a fair test needs 4,000"]
    assert shortfalls(FAIR, "efficientnet_lite0", [run(epochs=4, images=4000)]) == []
    assert shortfalls(None, "efficientnet_lite0", [run(epochs=1, images=10)]) == []


def test_a_model_may_have_its_own_budget():
    assert shortfalls(FAIR, "lenet", [run(epochs=4, images=100)]) == ["runs train 4 epoch(s), a fair test needs 10"]
    assert shortfalls(FAIR, "lenet", [run(epochs=10, images=100)]) == []


def test_the_grid_is_read_from_the_scan_runs():
    scan = [run(norm=f"fixed:{m}/{s}") for m in (-2, 0.5, 3) for s in (0.02, 0.2, 2)]
    assert grid_side(scan) == 3
    assert grid_side([run(norm="dataset"), run(norm="fixed:-1/0.1")]) is None  # no scan
    fair = FairTest(grid=5)
    assert shortfalls(fair, "m", scan) == ["a 3 x 3 grid, a fair test needs 5 x 5"]
    assert shortfalls(fair, "m", [run(norm=f"fixed:{m}/{s}") for m in range(5) for s in range(1, 6)]) == []


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
    c = cells_with(lambda s: run(seed=s, epochs=2, images=2000))
    assert c.verdict == "under budget"
    assert c.reason.startswith("under budget, not a test of the claim: runs train 2 epoch(s), a fair test needs 4")
    assert "+4.00 pt, n = 5" in c.reason  # the numbers stay visible
    assert "the source trained to convergence" not in c.reason  # why is said once, in the claim's fair-test line
    assert c.decided_by == ()


def test_the_same_numbers_at_budget_are_supported():
    c = cells_with(lambda s: run(seed=s, epochs=4, images=4000))
    assert c.verdict == "supported" and c.shortfalls == []


def test_a_refutation_under_budget_is_withheld_too():
    c = cells_with(lambda s: run(seed=s, epochs=2, images=2000), a=(80.0, 81.0, 80.5, 80.0, 81.0),
                   b=(83.0, 84.0, 85.0, 86.0, 84.5))
    assert c.verdict == "under budget"


def test_a_failed_run_stays_invalid_under_budget():
    claim = spec(fair_test=FAIR)
    obs = [observation(s, 0.8, 0.7, failed="non-finite loss" if s == 1 else None) for s in range(3)]
    cells = group_cells(obs, {"c": claim})["c"]
    decide([cells])
    assert cells[0].verdict == "invalid"


def test_whether_runs_were_still_improving():
    falling = run(quarters=(2.0, 1.5, 1.2, 1.0))  # -17% in the last quarter
    flat = run(quarters=(2.0, 1.0, 0.50, 0.495))  # -1%
    assert improvement([falling, falling, flat]).text == "yes: 2/3 runs, loss -16.7% in the last quarter"
    assert improvement([flat, flat, falling]).text.startswith("no: 1/3 runs")
    assert improvement([record("dataset", 0.8)]).text == "unknown"  # recorded before quarters were kept


def test_a_cell_reports_its_improvement():
    c = cells_with(lambda s: run(seed=s, epochs=4, images=4000, quarters=(2.0, 1.0, 0.8, 0.7)))
    assert c.improvement.improving == 5 and c.improvement.measured == 5


@pytest.mark.parametrize("bad, message", [
    ({"epochs": 0}, "fair_test epochs must be a positive integer"),
    ({"epoch": 3}, "fair_test has unknown field(s) epoch"),
    ({"grid": 2.5}, "fair_test grid must be a positive integer"),
    ("30 epochs", "fair_test must be a dict"),
    ({"models": {"lenet": {"epochs": -1}}}, "claim 'x' (lenet): fair_test epochs must be a positive integer"),
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

    c = cells_with(lambda s: run(seed=s, epochs=2, images=2000))
    report = ClaimReport(c.spec, [c], {}, {}, [], Cost(5, 5, 0, 1.0))
    header = {"correction": "Holm", "budget": "1 of 1 judged cells are under their claim's fair-test budget"}
    text = render_markdown(header, [report])
    assert "⏳ under budget" in text and "1 under budget of 1 cell(s)" in text
    assert ("Fair test: 4 epochs, 4,000 training images, a 5 x 5 grid; lenet: 10 epochs (002 trained 30 epochs). "
            "Why: the source trained to convergence") in text  # a model's own reason beside its budget
    assert "yes: 5/5 runs" in text
    cell_data = summary_json(header, [report])["claims"][0]["cells"][0]
    assert cell_data["verdict"] == "under budget" and len(cell_data["under_budget"]) == 2
    assert cell_data["still_improving"]["improving"] == 5
