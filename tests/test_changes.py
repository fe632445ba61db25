"""What changed since the previous report: two sessions' summary.json, as the report writes them."""
import json
from pathlib import Path

import pytest

from factories import observation, spec
from harness.changes import Changes, changes_json, compare, load_previous, render_changes
from harness.render import ClaimReport, Cost, summary_json
from harness.report import clean
from harness.verdicts import decide, group_cells

UP = [0.80, 0.81, 0.79, 0.80, 0.82, 0.81]  # arm a per seed against 0.70: supported
FLAT = [0.71, 0.69, 0.70, 0.72, 0.68, 0.70]  # inconclusive


def session(date: str, claims: dict[str, dict[str, list[float]]]) -> dict:
    """summary.json of a session: claim -> cell -> arm a per seed (arm b is 0.70)."""
    reports = []
    for name, arms in claims.items():
        observations = [observation(seed, a, 0.70, cell_id, claim=name)
                        for cell_id, values in arms.items() for seed, a in enumerate(values)]
        cells = sorted(group_cells(observations, {name: spec(name)})[name], key=lambda c: c.cell_id)
        decide([cells])
        reports.append(ClaimReport(spec(name), cells, {}, {}, [], Cost(0, 0, 0, 0.0)))
    header = {"date": date, "commit": "abc1234", "correction": "Holm across the cells of each claim"}
    return json.loads(json.dumps(clean(summary_json(header, reports))))


@pytest.fixture
def previous() -> dict:
    return session("2024-05-01 12:00 UTC", {
        "dataset_stats": {"m-flip": FLAT[:5], "m-more": UP[:5], "m-gone": UP[:5], "m-same": FLAT[:5]},
        "plateau": {"m-d": UP[:5]},
    })


@pytest.fixture
def current() -> dict:
    return session("2024-05-02 09:30 UTC", {
        "dataset_stats": {"m-flip": UP[:5], "m-more": UP, "m-new": FLAT[:5], "m-same": FLAT[:5]},
        "strong_std": {"m-d": UP[:5]},
    })


def table(lines: list[str]) -> dict[tuple[str, str], list[str]]:
    """The changes table's rows by (claim, cell): [change, verdict, a − b, seeds]."""
    rows = [[part.strip() for part in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert rows[0] == ["claim", "cell", "change", "verdict", "a − b (pt)", "seeds"]
    return {(row[0], row[1]): row[2:] for row in rows[2:]}


def test_flips_seeds_added_and_cells_come_and_go(previous: dict, current: dict):
    changes = compare(previous, current)
    assert [(c.cell, c.before.verdict, c.after.verdict) for c in changes.verdicts] == [
        ("m-flip", "inconclusive", "supported")]
    assert [(c.cell, c.before.n, c.after.n) for c in changes.seeds] == [("m-more", 5, 6)]
    assert [c.cell for c in changes.added] == ["m-new"] and [c.cell for c in changes.gone] == ["m-gone"]
    assert changes.claims_added == ("strong_std",) and changes.claims_not_run == ("plateau",)

    lines = render_changes(changes)
    assert lines[0] == "## Since the last report (2024-05-01 12:00 UTC, commit abc1234)" and lines[-1] == ""
    rows = table(lines)
    assert set(rows) == {("dataset_stats", c) for c in ("m-flip", "m-more", "m-new", "m-gone")}  # m-same: unchanged
    assert rows[("dataset_stats", "m-flip")] == ["verdict", "inconclusive → supported", "+0.00 → +10.40", "5"]
    assert rows[("dataset_stats", "m-more")] == ["seeds", "supported", "+10.40 → +10.50", "5 → 6"]
    assert rows[("dataset_stats", "m-new")] == ["added", "– → inconclusive", "– → +0.00", "– → 5"]
    assert rows[("dataset_stats", "m-gone")] == ["gone", "supported → –", "+10.40 → –", "5 → –"]
    assert "New claims: strong_std." in lines
    assert "Not in this session (still as in the previous report): plateau." in lines


def test_summary_json_keeps_the_verdicts_compared_against(previous: dict, current: dict):
    kept = json.loads(json.dumps(changes_json(compare(previous, current)), allow_nan=False))
    assert kept["since"] == "2024-05-01 12:00 UTC, commit abc1234"
    assert {(s["claim"], s["cell"]): (s["verdict"], s["n"]) for s in kept["previous"]} == {
        ("dataset_stats", "m-flip"): ("inconclusive", 5), ("dataset_stats", "m-more"): ("supported", 5),
        ("dataset_stats", "m-gone"): ("supported", 5), ("dataset_stats", "m-same"): ("inconclusive", 5),
        ("plateau", "m-d"): ("supported", 5)}
    flip = next(c for c in kept["changed"] if c["cell"] == "m-flip")
    assert flip["change"] == "verdict" and flip["before"]["verdict"] == "inconclusive"
    assert flip["after"]["difference"] == pytest.approx(10.4)


def test_an_unchanged_rerun_says_so(current: dict):
    changes = compare(current, current)
    assert not changes.cells and render_changes(changes) == [
        "## Since the last report (2024-05-02 09:30 UTC, commit abc1234)", "",
        "No changes: the same cells, seeds and verdicts.", ""]


def test_no_previous_report_adds_nothing(tmp_path: Path, current: dict):
    assert load_previous(tmp_path) is None
    changes = compare(None, current)
    assert changes == Changes(previous=None) and render_changes(changes) == [] and changes_json(changes) is None


def test_the_previous_report_is_read_back_as_written(tmp_path: Path, previous: dict):
    (tmp_path / "summary.json").write_text(json.dumps(previous, indent=1))
    assert load_previous(tmp_path) == previous


@pytest.mark.parametrize("damage", [
    b'{"header": {}, "claims": [{"name": "c", "cells": [',  # cut off mid-write by an older writer
    b"\xff\xfe not text",
    b'{"header": {}, "claims": [{"name": "c"}]}',  # a layout this report does not know
    b'{"header": {}, "claims": [{"name": "c", "cells": [{"cell": ["m", "d"], "verdict": "supported"}]}]}',
    b"[]",
    b"null",
])
def test_an_unreadable_previous_report_counts_as_none(tmp_path: Path, current: dict, damage: bytes):
    (tmp_path / "summary.json").write_bytes(damage)
    previous = load_previous(tmp_path)
    assert previous is None and render_changes(compare(previous, current)) == []


def test_a_previous_report_without_a_readable_header_is_undated(tmp_path: Path, previous: dict, current: dict):
    (tmp_path / "summary.json").write_text(json.dumps({**previous, "header": ["not", "a", "header"]}))
    lines = render_changes(compare(load_previous(tmp_path), current))
    assert lines[0] == "## Since the last report (undated)" and ("dataset_stats", "m-flip") in table(lines)


def test_a_summary_json_that_is_not_a_file_counts_as_none(tmp_path: Path):
    (tmp_path / "summary.json").mkdir()
    assert load_previous(tmp_path) is None
