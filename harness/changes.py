"""What changed since the previous report in the same report dir: verdicts that flipped, cells
added or gone, seeds added or removed.

Both sides are summary.json dicts (harness.render.summary_json). A session run with -k reports
only its own claims, so a claim missing from the current report is "not in this session", not a
set of gone cells; cells are compared within the claims both reports hold.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from tabulate import tabulate

from harness.observations import Cell

SUMMARY = "summary.json"


@dataclass(frozen=True)
class CellState:
    """One cell as a report left it."""

    claim: str
    cell: str
    verdict: str
    difference: float | None  # mean a − b in points
    n: int  # seeds with a usable pair


@dataclass(frozen=True)
class CellChange:
    claim: str
    cell: str
    before: CellState | None  # None: the cell is new
    after: CellState | None  # None: the cell is gone

    @property
    def what(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "gone"
        parts = ["verdict"] * (self.before.verdict != self.after.verdict) + ["seeds"] * (self.before.n != self.after.n)
        return ", ".join(parts)


@dataclass(frozen=True)
class Changes:
    previous: tuple[CellState, ...] | None  # None: there was no readable previous report
    since: str = ""  # the previous report's date and commit
    cells: tuple[CellChange, ...] = ()  # every changed cell, in report order
    claims_added: tuple[str, ...] = ()
    claims_not_run: tuple[str, ...] = ()  # in the previous report, not in this session

    @property
    def verdicts(self) -> tuple[CellChange, ...]:
        return tuple(c for c in self.cells if c.before and c.after and c.before.verdict != c.after.verdict)

    @property
    def added(self) -> tuple[CellChange, ...]:
        return tuple(c for c in self.cells if c.before is None)

    @property
    def gone(self) -> tuple[CellChange, ...]:
        return tuple(c for c in self.cells if c.after is None)

    @property
    def seeds(self) -> tuple[CellChange, ...]:
        return tuple(c for c in self.cells if c.before and c.after and c.before.n != c.after.n)


def cell_states(summary: dict) -> list[CellState]:
    """Every judged cell of a summary.json dict; KeyError or TypeError when it is not one."""
    states = []
    for claim in summary["claims"]:
        for cell in claim["cells"]:
            diff = (cell["summary"] or {}).get("mean_diff")
            states.append(CellState(
                claim=str(claim["name"]), cell=Cell(tuple(cell["cell"].items())).id, verdict=str(cell["verdict"]),
                difference=float(diff) if diff is not None and math.isfinite(diff) else None,
                n=len(cell["seeds"]),
            ))
    return states


def load_previous(report_dir: Path) -> dict | None:
    """The summary.json an earlier session left in report_dir; None when there is none or it
    cannot be read as one (a damaged file must not stop this session's report)."""
    try:
        summary = json.loads((Path(report_dir) / SUMMARY).read_text(encoding="utf-8"))
        cell_states(summary)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return summary


def compare(previous: dict | None, current: dict, partial: bool = False) -> Changes:
    """What changed from `previous` to `current`. A partial session (part of the catalogue) ran only
    some cells: the others are not in it, not gone."""
    if previous is None:
        return Changes(previous=None)
    header = previous.get("header") if isinstance(previous.get("header"), dict) else {}
    since = ", ".join(str(header[k]) if k == "date" else f"commit {header[k]}"
                      for k in ("date", "commit") if header.get(k))
    before = {(s.claim, s.cell): s for s in cell_states(previous)}
    after = {(s.claim, s.cell): s for s in cell_states(current)}
    old_claims = [str(c["name"]) for c in previous["claims"]]
    new_claims = [str(c["name"]) for c in current["claims"]]
    shared = set(old_claims) & set(new_claims)
    cells = []
    for key in dict.fromkeys([*after, *before]):  # this report's order, then the gone cells
        if key[0] not in shared or (partial and key not in after):
            continue
        change = CellChange(*key, before.get(key), after.get(key))
        if change.what:
            cells.append(change)
    return Changes(
        previous=tuple(before.values()), since=since, cells=tuple(cells),
        claims_added=tuple(c for c in new_claims if c not in shared),
        claims_not_run=tuple(c for c in old_claims if c not in shared),
    )


def render_changes(changes: Changes) -> list[str]:
    """Markdown lines for the top of summary.md, ending with a blank line; none without a previous report."""
    if changes.previous is None:
        return []
    out = [f"## Since the last report ({changes.since or 'undated'})", ""]
    if not (changes.cells or changes.claims_added or changes.claims_not_run):
        return out + ["No changes: the same cells, seeds and verdicts.", ""]
    if changes.cells:
        rows = [[c.claim, c.cell, c.what, arrow(c, "verdict"), arrow(c, "difference"), arrow(c, "n")]
                for c in changes.cells]
        table = tabulate(rows, headers=["claim", "cell", "change", "verdict", "a − b (pt)", "seeds"],
                         tablefmt="github", disable_numparse=True)
        out += [*table.splitlines(), ""]
    if changes.claims_added:
        out += [f"New claims: {', '.join(changes.claims_added)}.", ""]
    if changes.claims_not_run:
        out += [f"Not in this session (still as in the previous report): {', '.join(changes.claims_not_run)}.", ""]
    return out


def arrow(change: CellChange, field: str) -> str:
    """'old → new', or one value where it did not change."""
    old, new = (shown(s, field) for s in (change.before, change.after))
    return old if old == new else f"{old} → {new}"


def shown(state: CellState | None, field: str) -> str:
    if state is None:
        return "–"
    value = getattr(state, field)
    if field == "difference":
        return "–" if value is None else f"{value:+.2f}"
    return str(value)


def changes_json(changes: Changes) -> dict | None:
    """For summary.json: the previous verdicts compared against, and what changed; None without a previous report."""
    if changes.previous is None:
        return None
    return {
        "since": changes.since,
        "previous": [asdict(s) for s in changes.previous],
        "changed": [{"claim": c.claim, "cell": c.cell, "change": c.what,
                     "before": asdict(c.before) if c.before else None, "after": asdict(c.after) if c.after else None}
                    for c in changes.cells],
        "claims_added": list(changes.claims_added),
        "claims_not_run": list(changes.claims_not_run),
    }
