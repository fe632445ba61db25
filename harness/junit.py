"""The session's verdicts as JUnit XML, for CI dashboards: one test case per claim x cell.

Every test item of a claim passes even when the claim is refuted (the verdict is made at the end
of the session), so a dashboard fed pytest's own XML shows green for a refuted claim. This file
holds the verdicts instead: "supported" passes, "refuted" fails with its reason, a cell whose
items all failed is an error, and every other outcome (negligible, inconclusive, invalid, under
budget, out of domain, a cell skipped for missing data or weights) is skipped with its reason.

Input: the summary.json dict (harness.render.summary_json), before or after the report's
clean(): missing and non-finite numbers both read as "–".
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.files import atomic_file
from harness.observations import Cell

# characters XML 1.0 cannot hold (a reason may quote an exception with terminal escapes)
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_junit(path: Path, summary: dict, session_name: str = "normclaims") -> Path:
    """Write the verdicts of `summary` to `path`, whole or not at all."""
    root = junit_tree(summary, session_name)
    ET.indent(root)
    with atomic_file(Path(path), "wb", suffix=".xml.tmp") as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    return Path(path)


def junit_tree(summary: dict, session_name: str = "normclaims") -> ET.Element:
    root = ET.Element("testsuites", name=session_name)
    for claim in summary.get("claims", []):
        root.append(claim_suite(claim))
    add_counts(root, root.findall("testsuite"))
    return root


def claim_suite(claim: dict) -> ET.Element:
    name = claim["name"]
    suite = ET.Element("testsuite", name=name)
    properties = ET.SubElement(suite, "properties")
    for key in ("title", "source", "kind", "test", "alternative", "alpha", "margin"):
        if claim.get(key) is not None:
            ET.SubElement(properties, "property", name=key, value=text(claim[key]))
    decided = set()
    errors = claim.get("errors") or {}
    for cell in claim.get("cells", []):
        cell_id = Cell(tuple(cell["cell"].items())).id
        decided.add(cell_id)
        verdict_case(suite, name, cell_id, cell, errors.get(cell_id))
    for cell_id, skip in (claim.get("skipped") or {}).items():
        outcome(testcase(name, cell_id, suite), "skipped", "not run: " + "; ".join(skip.get("reasons", [])))
        decided.add(cell_id)
    for cell_id, error in errors.items():
        if cell_id not in decided:  # every item of the cell failed: no observation to decide on
            outcome(testcase(name, cell_id, suite), "error", error)
    add_counts(suite, [suite])
    return suite


def verdict_case(suite: ET.Element, claim: str, cell_id: str, cell: dict, error: str | None) -> None:
    case = testcase(claim, cell_id, suite)
    verdict, reason = cell["verdict"], cell.get("reason") or ""
    summary = cell.get("summary") or {}
    low, high = (cell.get("bounds") or [None, None])[:2]
    numbers = {"verdict": verdict, "difference": summary.get("mean_diff"), "bound_low": low, "bound_high": high,
               "n": len(cell.get("seeds", [])), "exploratory": cell.get("exploratory")}
    properties = ET.SubElement(case, "properties")
    for key, value in numbers.items():
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=text(value))
    if verdict == "refuted":
        outcome(case, "failure", reason, kind="refuted")
    elif verdict != "supported":
        outcome(case, "skipped", f"{verdict}: {reason}")
    lines = [f"verdict: {verdict}",
             f"a − b ({cell.get('a_label', 'a')} − {cell.get('b_label', 'b')}): {points(numbers['difference'])} pt, "
             f"Holm bounds [{points(low)}, {points(high)}], n = {numbers['n']} seeds",
             f"reason: {reason}"]
    if error:  # an item of the cell failed although other seeds gave the verdict
        lines.append(f"also: {error}")
    ET.SubElement(case, "system-out").text = clean_text("\n".join(lines))


def testcase(claim: str, cell_id: str, suite: ET.Element) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=claim, name=cell_id)


def outcome(case: ET.Element, tag: str, message: str, kind: str | None = None) -> None:
    """A failure, error or skip: the message in the attribute dashboards show, and in full as text."""
    element = ET.SubElement(case, tag, message=clean_text(message))
    if kind:
        element.set("type", kind)
    element.text = clean_text(message)


def add_counts(element: ET.Element, suites: list[ET.Element]) -> None:
    cases = [c for s in suites for c in s.findall("testcase")]
    element.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attr, str(sum(c.find(tag) is not None for c in cases)))


def points(value) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:+.2f}"


def text(value) -> str:
    return clean_text(str(value).lower() if isinstance(value, bool) else str(value))


def clean_text(value: str) -> str:
    return NOT_XML.sub("\N{REPLACEMENT CHARACTER}", value)
