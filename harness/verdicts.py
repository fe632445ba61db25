"""From paired observations to one verdict per cell, by written rules.

Superiority (H1: a > b), one-sided paired t-test on accuracy points, Holm-adjusted across the
cells of a claim:
  supported     adjusted p(a > b) < alpha
  refuted       adjusted p(a < b) < alpha (a significant effect in the opposite direction)
  inconclusive  otherwise, with the difference, its 95% CI and the minimum detectable effect
  invalid       a run of the cell failed: no verdict from partial data
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from harness.significance import PairedSummary, holm, summarize


@dataclass
class CellResult:
    claim: str
    cell: dict  # parameters except the seed, e.g. {"model": "resnet18", "dataset": "cifar10"}
    a_label: str
    b_label: str
    seeds: list[int]
    a: list[float]  # accuracy points per seed, arm a
    b: list[float]
    failures: list[str] = field(default_factory=list)
    summary: PairedSummary | None = None
    p_adjusted: float = float("nan")
    verdict: str = "inconclusive"
    reason: str = ""
    runs: list[dict] = field(default_factory=list)

    @property
    def cell_id(self) -> str:
        return "-".join(str(v) for v in self.cell.values())


def pts(x: float) -> str:
    return f"{x:+.2f} pt"


def group_cells(observations: list[dict]) -> dict[str, list[CellResult]]:
    """observations (dicts from evidence) -> {claim: [CellResult, ...]} with arms in points, seeds sorted."""
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for obs in observations:
        key = (obs["claim"], tuple(obs["cell"].items()), obs["a_label"], obs["b_label"])
        grouped[key].append(obs)
    out: dict[str, list[CellResult]] = defaultdict(list)
    for (claim, cell_items, a_label, b_label), rows in grouped.items():
        rows = sorted({r["seed"]: r for r in rows}.values(), key=lambda r: r["seed"])  # one per seed
        ok = [r for r in rows if not r["failed"]]
        cell = CellResult(
            claim=claim, cell=dict(cell_items), a_label=a_label, b_label=b_label,
            seeds=[r["seed"] for r in ok], a=[100 * r["a"] for r in ok], b=[100 * r["b"] for r in ok],
            failures=[f for r in rows for f in r["failed"]], runs=[run for r in rows for run in r.get("runs", [])],
        )
        out[claim].append(cell)
    return out


def decide(cells: list[CellResult], alpha: float, min_seeds: int) -> None:
    """Fill summary, adjusted p, verdict and reason of every cell of one claim (in place)."""
    testable = [c for c in cells if not c.failures and len(c.a) >= max(2, min_seeds)]
    for c in cells:
        if len(c.a) >= 2:
            c.summary = summarize(c.a, c.b, alpha)
    p_up = holm([c.summary.p_greater for c in testable])
    p_down = holm([c.summary.p_less for c in testable])
    for c, up, down in zip(testable, p_up, p_down):
        c.p_adjusted = float(up)
        s = c.summary
        numbers = f"{pts(s.mean_diff)}, 95% CI [{s.ci_low:+.2f}, {s.ci_high:+.2f}], n = {s.n}"
        if up < alpha:
            c.verdict, c.reason = "supported", f"{numbers}, Holm p = {up:.3g} < {alpha}"
        elif down < alpha:
            c.verdict, c.reason = "refuted", f"{numbers}: significantly the other way, Holm p = {down:.3g}"
        else:
            mde = f"MDE {s.mde:.2f} pt" if math.isfinite(s.mde) else "MDE undefined (no spread)"
            c.verdict, c.reason = "inconclusive", f"{numbers}, Holm p = {up:.3g}; {mde} at n = {s.n}"
    for c in cells:
        if c.failures:
            c.verdict = "invalid"
            c.reason = f"{len(c.failures)} failed run(s): {c.failures[0]}"
        elif len(c.a) < max(2, min_seeds):
            c.verdict = "inconclusive"
            c.reason = f"only {len(c.a)} seed(s); this claim needs at least {max(2, min_seeds)}"


def count_line(cells: list[CellResult]) -> str:
    counts = {v: sum(c.verdict == v for c in cells) for v in ("supported", "refuted", "inconclusive", "invalid")}
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{', '.join(parts) or 'no verdicts'} of {len(cells)} cell(s)"
