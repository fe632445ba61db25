"""The JUnit XML of verdicts, read back with junitparser as a CI dashboard would."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from factories import cell, observation, spec
from harness.junit import write_junit
from harness.render import ClaimReport, Cost, summary_json
from harness.report import clean
from harness.verdicts import decide, group_cells

ARMS = {  # cell -> arm a per seed (arm b is 0.70): what each cell's verdict comes from
    "m-up": [0.80, 0.81, 0.79, 0.80, 0.82],  # supported
    "m-down": [0.60, 0.61, 0.59, 0.60, 0.62],  # refuted
    "m-flat": [0.71, 0.69, 0.70, 0.72, 0.68],  # inconclusive
    "m-late": [0.80, 0.81, 0.79, 0.80, 0.82],  # supported by its numbers, then withheld as under budget
}


def claim_report(name: str, arms: dict[str, list[float]], broken: bool = False, **extra) -> ClaimReport:
    """A decided claim; with `broken`, also a cell whose run failed (invalid)."""
    observations = [observation(seed, a, 0.70, cell_id, claim=name)
                    for cell_id, values in arms.items() for seed, a in enumerate(values)]
    if broken:
        observations.append(observation(0, None, 0.70, "m-broken", claim=name, failed="non-finite loss"))
    cells = sorted(group_cells(observations, {name: spec(name)})[name], key=lambda c: c.cell_id)
    decide([cells])
    for c in cells:
        if c.cell_id == "m-late":
            c.verdict, c.reason = "under budget", "under budget, not a test of the claim: 2 epochs, the claim needs 30"
    return ClaimReport(spec(name), cells, extra.get("skipped", {}), extra.get("errors", {}), [], Cost(0, 0, 0, 0.0))


def summary(claims: list[ClaimReport]) -> dict:
    """As summary.json holds it: cleaned of NaN and through JSON."""
    return json.loads(json.dumps(clean(summary_json({"date": "2024-05-01 12:00 UTC"}, claims))))


@pytest.fixture
def report() -> dict:
    main = claim_report("dataset_stats", ARMS, broken=True, skipped={cell("r-cifar"): ("no CIFAR-10 here", "no resnet18 weights")},
                        errors={"m-crash": "setup failed for seed 0: \x1b[31mboom\x1b[0m",
                                "m-flat": "call failed for seed 7: out of memory"})
    other = claim_report("none_as_good", {"m-down": ARMS["m-down"]})
    return summary([main, other])


def cases(xml: JUnitXml) -> dict[tuple[str, str], object]:
    return {(case.classname, case.name): case for suite in xml for case in suite}


def test_one_case_per_claim_and_cell_with_its_outcome(tmp_path: Path, report: dict):
    verdicts = {(c["name"], "-".join(map(str, cell_["cell"].values()))): cell_["verdict"]
                for c in report["claims"] for cell_ in c["cells"]}
    assert verdicts[("dataset_stats", "m-up")] == "supported" and verdicts[("dataset_stats", "m-down")] == "refuted"
    assert verdicts[("dataset_stats", "m-flat")] == "inconclusive" and verdicts[("dataset_stats", "m-broken")] == "invalid"

    xml = JUnitXml.fromfile(str(write_junit(tmp_path / "verdicts.xml", report)))
    assert [suite.name for suite in xml] == ["dataset_stats", "none_as_good"]
    found = cases(xml)
    assert set(found) == {*verdicts, ("dataset_stats", "r-cifar"), ("dataset_stats", "m-crash")}
    refuted = {key for key, case in found.items() if case.is_failure}
    assert refuted == {key for key, v in verdicts.items() if v == "refuted"} == {
        ("dataset_stats", "m-down"), ("none_as_good", "m-down")}
    assert {key for key, case in found.items() if case.is_passed} == {("dataset_stats", "m-up")}
    assert {key for key, case in found.items() if case.is_error} == {("dataset_stats", "m-crash")}
    skipped = {key for key, case in found.items() if case.is_skipped}
    assert skipped == {("dataset_stats", k) for k in ("m-flat", "m-late", "m-broken", "r-cifar")}
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (8, 2, 1, 4)
    suite = next(iter(xml))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (7, 1, 1, 4)


def test_each_outcome_carries_its_reason_and_numbers(tmp_path: Path, report: dict):
    found = cases(JUnitXml.fromfile(str(write_junit(tmp_path / "verdicts.xml", report))))
    reasons = {("dataset_stats", "-".join(map(str, c["cell"].values()))): c["reason"] for c in report["claims"][0]["cells"]}

    failure = found[("dataset_stats", "m-down")].result[0]
    assert isinstance(failure, Failure) and failure.message == reasons[("dataset_stats", "m-down")]
    assert failure.type == "refuted" and "significantly the other way" in failure.message
    for key, verdict in ((("dataset_stats", "m-flat"), "inconclusive"), (("dataset_stats", "m-late"), "under budget"),
                         (("dataset_stats", "m-broken"), "invalid")):
        skip = found[key].result[0]
        assert isinstance(skip, Skipped) and skip.message == f"{verdict}: {reasons[key]}"
    assert found[("dataset_stats", "r-cifar")].result[0].message == "not run: no CIFAR-10 here; no resnet18 weights"
    error = found[("dataset_stats", "m-crash")].result[0]
    assert isinstance(error, Error) and "boom" in error.message and "\x1b" not in error.message
    # an item that failed in a cell other seeds decided is told beside the verdict, not as an error
    assert found[("dataset_stats", "m-flat")].system_out.endswith("\nalso: call failed for seed 7: out of memory")

    up = next(c for c in report["claims"][0]["cells"] if c["cell"]["dataset"] == "up")
    out = found[("dataset_stats", "m-up")].system_out
    low, high = up["bounds"]
    assert f"{up['summary']['mean_diff']:+.2f} pt, Holm bounds [{low:+.2f}, {high:+.2f}], n = 5 seeds" in out
    props = properties(tmp_path / "verdicts.xml", "none_as_good", "m-down")
    down = report["claims"][1]["cells"][0]
    assert props["verdict"] == "refuted" and props["n"] == "5"
    assert float(props["difference"]) == pytest.approx(down["summary"]["mean_diff"]) == pytest.approx(-9.6)
    assert [float(props["bound_low"]), float(props["bound_high"])] == pytest.approx(down["bounds"])
    assert float(props["bound_high"]) < 0


def properties(path: Path, classname: str, name: str) -> dict[str, str]:
    case = next(c for c in ET.parse(path).getroot().iter("testcase")
                if (c.get("classname"), c.get("name")) == (classname, name))
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_a_crash_while_writing_keeps_the_previous_file(tmp_path: Path, report: dict, monkeypatch):
    path = write_junit(tmp_path / "verdicts.xml", report)
    before = path.read_bytes()

    def half_then_crash(self, file, **kwargs):
        file.write(b"<?xml version='1.0'?><testsuites><testsu")
        raise KeyboardInterrupt

    monkeypatch.setattr(ET.ElementTree, "write", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_junit(path, summary([claim_report("other", {"m-up": ARMS["m-up"]})]))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["verdicts.xml"]
