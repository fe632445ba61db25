"""From paired observations to one verdict per cell, by written rules.

Each cell pools its seeds: d = a - b in accuracy points, one value per seed. The claim's
pre-registration (harness.claims) fixes the kind, test, alpha and margin. p-values are
Holm-adjusted across a family: the cells of one claim (default) or every cell of the session.

superiority    supported: adjusted p(H1: d > 0) < alpha (two-sided: adjusted p < alpha and mean d > 0)
               refuted: a significant effect the other way (adjusted), or equivalence within the
               claim's margin established by TOST (adjusted), when the claim states a margin
equivalence    supported: adjusted TOST p < alpha; refuted: the 95% CI lies entirely outside ±margin
noninferiority supported: adjusted p(H1: d > -margin) < alpha; refuted: the 95% CI lies entirely below -margin
inconclusive   otherwise, with the difference, its CI, the p-value and the minimum detectable effect
invalid        a run of the cell failed: no verdict from partial data
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from harness.claims import ClaimSpec
from harness.config import RunRecord
from harness.observations import Cell, Observation
from harness.significance import (
    PairedSummary, bca_interval, holm, noninferiority, p_value, summarize, t_interval, tost,
)


@dataclass
class CellResult:
    spec: ClaimSpec
    cell: Cell
    a_label: str
    b_label: str
    seeds: list[int]
    a: list[float]  # accuracy points per seed, arm a
    b: list[float]
    failures: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    summary: PairedSummary | None = None
    ci_low: float = float("nan")  # 95% CI of the mean difference, by ci_method
    ci_high: float = float("nan")
    ci_method: str = ""
    p_raw: float = float("nan")  # p-value of the claim's H1
    p_adjusted: float = float("nan")  # Holm-adjusted within the family
    p_against: float = float("nan")  # adjusted p-value of the evidence against H1, where the rule has one
    against_why: str = "significantly the other way"  # which evidence p_against measures
    verdict: str = "inconclusive"
    reason: str = ""

    @property
    def cell_id(self) -> str:
        return self.cell.id

    @property
    def diffs(self) -> np.ndarray:
        return np.asarray(self.a, dtype=float) - np.asarray(self.b, dtype=float)


def group_cells(observations: list[Observation], specs: dict[str, ClaimSpec]) -> dict[str, list[CellResult]]:
    """observations -> {claim: [CellResult, ...]}, arms in points, one row per seed (a seed seen
    twice counts once)."""
    grouped: dict[tuple, list[Observation]] = defaultdict(list)
    for obs in observations:
        grouped[(obs.claim, obs.cell, obs.a.label, obs.b.label)].append(obs)
    out: dict[str, list[CellResult]] = defaultdict(list)
    for (claim, cell, a_label, b_label), rows in grouped.items():
        rows = sorted({r.seed: r for r in rows}.values(), key=lambda r: r.seed)
        ok = [r for r in rows if not r.failures()]
        runs = {run.key: run for r in rows for run in r.runs()}
        out[claim].append(CellResult(
            spec=specs[claim], cell=cell, a_label=a_label, b_label=b_label,
            seeds=[r.seed for r in ok], a=[100 * r.a.value for r in ok], b=[100 * r.b.value for r in ok],
            failures=[f for r in rows for f in r.failures()], runs=list(runs.values()),
        ))
    return out


def p_for_claim(spec: ClaimSpec, d: np.ndarray) -> float:
    """p-value of the claim's H1 on differences d (shape (n,))."""
    if spec.kind == "superiority":
        return p_value(spec.test, d, spec.alternative)
    if spec.kind == "equivalence":
        return tost(d, spec.margin, spec.test)
    return noninferiority(d, spec.margin, spec.test)


def p_against_claim(spec: ClaimSpec, d: np.ndarray) -> tuple[float, str]:
    """p-value of the evidence against a superiority H1, and what it measures: the opposite
    direction, or equivalence when a margin is stated (whichever is stronger). NaN for the kinds
    refuted by their CI."""
    if spec.kind != "superiority":
        return float("nan"), ""
    opposite = p_value(spec.test, d, "less")
    if spec.margin:
        equivalence = tost(d, spec.margin, spec.test)
        if equivalence <= opposite:
            return equivalence, f"equivalent within ±{spec.margin} pt (TOST)"
    return opposite, "significantly the other way"


def testable(c: CellResult) -> bool:
    return not c.failures and len(c.a) >= max(2, c.spec.min_seeds)


def decide(families: list[list[CellResult]]) -> None:
    """Fill every cell's statistics, adjusted p-values, verdict and reason (in place). Each inner
    list is one Holm family: the cells of a claim, or every cell of the session."""
    for family in families:
        for c in family:
            if len(c.a) >= 2:
                c.summary = summarize(c.a, c.b, c.spec.alpha)
                if c.spec.test == "paired_t":
                    (c.ci_low, c.ci_high), c.ci_method = t_interval(c.diffs), "t"
                else:
                    (c.ci_low, c.ci_high), c.ci_method = bca_interval(c.diffs), "BCa bootstrap"
                c.p_raw = p_for_claim(c.spec, c.diffs)
        tested = [c for c in family if testable(c)]
        against = [p_against_claim(c.spec, c.diffs) for c in tested]
        for c, p_up, p_down, (_, why) in zip(tested, holm([c.p_raw for c in tested]), holm([p for p, _ in against]), against):
            c.p_adjusted, c.p_against, c.against_why = float(p_up), float(p_down), why
            c.verdict, c.reason = rule(c)
        for c in family:
            if c.failures:
                c.verdict, c.reason = "invalid", f"{len(c.failures)} failed run(s): {c.failures[0]}"
            elif not testable(c):
                need = max(2, c.spec.min_seeds)
                c.verdict, c.reason = "inconclusive", f"only {len(c.a)} seed(s); this claim needs at least {need}"


def rule(c: CellResult) -> tuple[str, str]:
    spec, s = c.spec, c.summary
    alpha, margin = spec.alpha, spec.margin
    numbers = f"{s.mean_diff:+.2f} pt, 95% CI [{c.ci_low:+.2f}, {c.ci_high:+.2f}], n = {s.n}"
    holm_p = f"Holm p = {c.p_adjusted:.3g}"
    mde = f"MDE {s.mde:.2f} pt at n = {s.n}" if math.isfinite(s.mde) else f"MDE undefined (no spread) at n = {s.n}"
    if spec.kind == "superiority":
        if c.p_adjusted < alpha and s.mean_diff > 0:
            return "supported", f"{numbers}; {holm_p} < {alpha}"
        two_sided_wrong_way = spec.alternative == "two-sided" and c.p_adjusted < alpha and s.mean_diff < 0
        if two_sided_wrong_way or c.p_against < alpha:
            why = "significantly the other way" if two_sided_wrong_way else c.against_why
            p = c.p_adjusted if two_sided_wrong_way else c.p_against
            return "refuted", f"{numbers}: {why}, Holm p = {p:.3g}"
        return "inconclusive", f"{numbers}; {holm_p}; {mde}"
    if spec.kind == "equivalence":
        if c.p_adjusted < alpha:
            return "supported", f"{numbers} within ±{margin} pt; TOST {holm_p} < {alpha}"
        if c.ci_low > margin or c.ci_high < -margin:
            return "refuted", f"{numbers}: the CI lies outside ±{margin} pt"
        return "inconclusive", f"{numbers} overlaps the margin ±{margin} pt; TOST {holm_p}; {mde}"
    if c.p_adjusted < alpha:
        return "supported", f"{numbers} above -{margin} pt; {holm_p} < {alpha}"
    if c.ci_high < -margin:
        return "refuted", f"{numbers}: the CI lies below -{margin} pt"
    return "inconclusive", f"{numbers} reaches below -{margin} pt; {holm_p}; {mde}"


def count_line(cells: list[CellResult]) -> str:
    counts = {v: sum(c.verdict == v for c in cells) for v in ("supported", "refuted", "inconclusive", "invalid")}
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{', '.join(parts) or 'no verdicts'} of {len(cells)} cell(s)"
