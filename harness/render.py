"""Render the session's verdicts as Markdown tables (summary.md) and plain data (summary.json)."""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from harness.claims import ClaimSpec
from harness.figures import ReportTable
from harness.observations import Cell, Extra
from harness.verdicts import UNTESTED, CellResult, count_line


@dataclass(frozen=True)
class Cost:
    runs: int
    trained: int  # rows written this session (by whichever claim asked first)
    cached: int  # from earlier sessions
    device_seconds: float


@dataclass
class ClaimReport:
    """One claim's part of the report."""

    spec: ClaimSpec
    cells: list[CellResult]
    skipped: dict[Cell, tuple[str, ...]]  # cell -> what it lacks, each with how to get it
    errors: dict[str, str]  # cell id -> why an item of it failed without an observation
    extras: list[Extra]
    cost: Cost
    figures: list[Path] = field(default_factory=list)
    tables: list[ReportTable] = field(default_factory=list)

    @property
    def a_label(self) -> str:
        return self.cells[0].a_label if self.cells else "a"

    @property
    def b_label(self) -> str:
        return self.cells[0].b_label if self.cells else "b"

    @property
    def count(self) -> str:
        return count_line(self.cells)

    @functools.cached_property
    def pooled(self):
        """The claim's effect pooled across its judged cells (harness.pooling), or None."""
        from harness.pooling import pooled_effect

        return pooled_effect([c.diffs for c in self.cells if c.verdict not in UNTESTED])


def pooled_line(claim: ClaimReport) -> str | None:
    p = claim.pooled
    if p is None:
        return None
    return (f"Across {p.cells} cells: pooled difference {p.effect:+.2f} pt, 95% CI [{p.low:+.2f}, {p.high:+.2f}] "
            f"(random effects, Hartung–Knapp; between-cell sd {p.tau:.2f} pt); P(a > b) = {p.prob_a_wins:.2f} "
            f"[{p.prob_low:.2f}, {p.prob_high:.2f}] over {p.seeds} paired seeds. A description, not a verdict.")

VERDICT_MARK = {"supported": "✅ supported", "refuted": "❌ refuted", "negligible": "🟰 negligible",
                "inconclusive": "➖ inconclusive", "under budget": "⏳ under budget",
                "out of domain": "🚫 out of domain", "invalid": "⚠️ invalid"}
H1_TEXT = {
    "superiority": "{a} > {b}",
    "equivalence": "|{a} − {b}| < {margin} pt",
    "noninferiority": "{a} > {b} − {margin} pt",
}
TEST_TEXT = {"paired_t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank (exact)", "permutation": "sign-flip permutation (exact)"}


def num(x: float | None, fmt: str = ".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def mean_sd(mean: float, sd: float) -> str:
    return f"{mean:.2f} ± {num(sd)}"


def hypothesis(claim: ClaimReport) -> str:
    spec = claim.spec
    h1 = H1_TEXT[spec.kind].format(a=f"**{claim.a_label}**", b=f"**{claim.b_label}**", margin=spec.margin)
    sided = "two-sided" if spec.alternative == "two-sided" else "one-sided"
    test = {"superiority": f"{sided} {TEST_TEXT[spec.test]}",
            "equivalence": f"TOST with the {TEST_TEXT[spec.test]}",
            "noninferiority": f"one-sided {TEST_TEXT[spec.test]} against −{spec.margin} pt"}[spec.kind]
    margin = (f" Margin {spec.margin} pt: {spec.margin_why}." if spec.margin is not None and spec.margin_why
              else f" No margin: {spec.margin_why}." if spec.margin_why else "")
    return f"H1 ({spec.kind}): {h1}. Test: {test}, alpha = {spec.alpha}, at least {spec.min_seeds} seeds.{margin}"


def cell_rows(cells: list[CellResult]) -> list[list]:
    rows = []
    for c in cells:
        s = c.summary
        source = source_text(source_figure(c.spec.name, c.cell))
        if s is None:
            rows.append([c.cell_id, len(c.a), "–", "–", "–", "–", "–", "–", "–", "–", improving(c),
                         VERDICT_MARK[c.verdict], source])
            continue
        low, high = c.shown_interval
        rows.append([
            c.cell_id, s.n, mean_sd(s.mean_a, s.sd_a), mean_sd(s.mean_b, s.sd_b),
            f"{s.mean_diff:+.2f} [{num(low, '+.2f')}, {num(high, '+.2f')}]",
            num(c.p("support", adjusted=False), ".3g"), num(c.p("support"), ".3g"), num(c.p("against"), ".3g"),
            f"{s.prob_a_wins:.2f}", num(s.mde), improving(c),
            VERDICT_MARK[c.verdict] + (" (outlier)" if c.outliers else "") + (" (exploratory)" if c.exploratory else ""),
            source,
        ])
    return rows


def improving(c: CellResult) -> str:
    return c.convergence.text if c.convergence is not None else "unknown"


def fair_test_line(spec: ClaimSpec) -> str:
    """The claim's pre-registered fair-test budget, per model where it differs."""
    fair = spec.fair_test
    if fair is None:
        return "Fair test: any budget (the claim states no minimum)."
    per_model = "".join(f"; {m}: {f.describe()}" + (f" ({f.why})" if f.why and f.why != fair.why else "")
                        for m, f in fair.models.items())
    return f"Fair test: {fair.describe()}{per_model}. Why: {fair.why or 'unstated'}"


def domain_line(spec: ClaimSpec) -> str:
    """The claim's pre-registered domain: the conditions under which a cell tests it."""
    if not spec.domain:
        return "Domain: every cell (the claim states no condition)."
    return "Domain (a cell outside it gets no verdict): " + "; ".join(spec.domain.values()) + "."


def matrix(cells: list[CellResult]) -> str | None:
    """Model x dataset table like source 000's Table 2: arm means and the verdict per cell."""
    if not cells or not all({"model", "dataset"} <= set(c.cell.as_dict()) for c in cells):
        return None
    models = list(dict.fromkeys(c.cell.get("model") for c in cells))
    datasets = list(dict.fromkeys(c.cell.get("dataset") for c in cells))
    by = {(c.cell.get("model"), c.cell.get("dataset")): c for c in cells}
    rows = []
    for m in models:
        row = [m]
        for d in datasets:
            c = by.get((m, d))
            if c is None or c.summary is None:
                row.append("–" if c is None else VERDICT_MARK[c.verdict])
            else:
                mark = VERDICT_MARK[c.verdict].split()[0]
                row.append(f"{c.summary.mean_a:.2f} vs {c.summary.mean_b:.2f} ({c.summary.mean_diff:+.2f}) {mark}")
        rows.append(row)
    return tabulate(rows, headers=["model", *datasets], tablefmt="github")


def by_reason(skipped: dict[Cell, tuple[str, ...]]) -> dict[str, list[str]]:
    """cell -> reasons, as reason -> cell ids: one missing dataset or checkpoint skips many cells,
    and a cell may lack both its data and its weights."""
    grouped: dict[str, list[str]] = {}
    for cell, reasons in skipped.items():
        for reason in reasons:
            grouped.setdefault(reason, []).append(cell.id)
    return grouped


def source_figure(claim: str, cell: Cell):
    """What the source reports for this claim's cell (harness.source_figures), or None."""
    from harness.source_figures import figure_for

    model, dataset = cell.get("model"), cell.get("dataset")
    return figure_for(claim, model, dataset) if model and dataset else None


def source_text(fig) -> str:
    """The source's figure in a cell of the verdict table with its metric and budget in brief, e.g.
    "87.88 vs 87.98 (-0.10), 000 Table 2 (best of 100 epochs, picked on the test set; 1 seed; full data)"."""
    if fig is None:
        return "–"
    values = figure_values(fig)
    return f"{values}, {fig.source} ({fig.brief})" if values else f"{fig.source} ({fig.brief})"  # words only: the brief says so


def figure_values(fig) -> str | None:
    """A source figure's numbers as printed, "87.88 vs 87.98 (-0.10)", or None for words only."""
    if fig.a is not None and fig.b is not None:
        return f"{fig.a:.2f} vs {fig.b:.2f} ({fig.difference:+.2f})"
    return f"{fig.difference:+.2f}" if fig.difference is not None else None


def note_parts(note: str) -> list[str]:
    """A note's clauses (split at "; " outside parentheses, a quoted "'('" not counting), so
    clauses shared by cells print once."""
    text = note.replace("'('", "\0")
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith("; ", i):
            parts.append(text[start:i])
            start = i + 2
    return [p.replace("\0", "'('") for p in parts + [text[start:]]]


def session_figures(claim: ClaimReport) -> list[tuple[str, object, bool]]:
    """(cell id, the source's figure, whether this session has the cell) for every figure the
    sources report for the claim: its cells first (judged, then skipped), then the source's own
    settings that no cell of this session runs (ImageNet, 001's Intel scenes, an unnamed model)."""
    from harness.source_figures import figures_of

    figures = figures_of(claim.spec.name)
    cells = [c.cell for c in claim.cells] + list(claim.skipped)
    here = [(c.id, figures[key], True) for c in cells if (key := (c.get("model"), c.get("dataset"))) in figures]
    shown = {(c.get("model"), c.get("dataset")) for c in cells}
    return here + [(f"{model}-{dataset}", fig, False) for (model, dataset), fig in figures.items()
                   if (model, dataset) not in shown]


def source_tables(claim: ClaimReport) -> list[str]:
    """The source's figures beside ours: one table per source table (its metric and budget said
    once), skipped cells included with the source's value in place of ours, and the source's
    settings this session has no cell for; notes once each."""
    ours = {c.cell_id: c for c in claim.cells}
    groups: dict[tuple, list] = {}
    for cell_id, fig, in_session in session_figures(claim):
        groups.setdefault((fig.source, fig.metric, fig.budget), []).append((cell_id, fig, in_session))
    out = []
    for (source, metric, budget), items in groups.items():
        rows = []
        best = "best epoch" in metric.replace("-", " ")  # the source read its best epoch: show ours beside the verdict's metric
        for cell_id, fig, in_session in items:
            c = ours.get(cell_id)
            mine = (f"{c.summary.mean_diff:+.2f} ({c.verdict})" if c is not None and c.summary is not None
                    else c.verdict if c is not None else "skipped here" if in_session else "no such cell in this session")
            row = [cell_id, num(fig.a), num(fig.b), num(fig.difference, "+.2f"), mine]
            if best:
                row.append(f"{sum(c.best_diffs) / len(c.best_diffs):+.2f}" if c is not None and c.best_diffs else "–")
            rows.append(row)
        headers = ["cell", "source a (%)", "source b (%)", "source a − b", "ours a − b (final epoch)"]
        headers += ["ours a − b at the best epoch (not the verdict's metric)"] if best else []
        out += ["", f"Source {source}: {metric}; {budget}.", "",
                tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
        notes = dict.fromkeys(part for _, fig, _ in items if fig.note for part in note_parts(fig.note))
        out += [""] * bool(notes) + [f"- {note}" for note in notes]
    return out


def anchor(spec: ClaimSpec) -> str:
    return f"claim-{spec.name}"


def short_source(source: str) -> str:
    """A source's name without its details, for the answers table: "004 (Touvron et al. 2019, Section
    5.1)" and "004 (ablation); Touvron et al. 2019" are "004"; the claim's section has the rest."""
    return source.split(";")[0].split(" (")[0]


def source_number(claim: ClaimReport) -> str:
    """The claim's figures from its source in a few words: one figure as printed, several as their
    range of a − b, words only where the source gives no number (each cell's row below the claim
    gives the figure's metric and budget)."""
    figures = [fig for _, fig, _ in session_figures(claim)]
    numbers = [f.difference for f in figures if f.difference is not None]
    if not figures:
        return "–"
    where = ", ".join(dict.fromkeys(short_source(f.source) for f in figures))
    if len(figures) == 1 and numbers:
        return f"{figure_values(figures[0])}, {where}"
    if not numbers:
        return f"words only ({where})"
    low, high = min(numbers), max(numbers)
    span = f"{low:+.2f}" if low == high else f"{low:+.2f} to {high:+.2f}"
    return f"a − b {span} over {len(numbers)} figure(s) ({where})"


def effect_text(c: CellResult) -> str:
    if c.summary is None:
        return "–"
    low, high = c.shown_interval if c.tests else c.ci95
    return f"{c.summary.mean_diff:+.2f} [{num(low, '+.2f')}, {num(high, '+.2f')}]"


def answer_rows(claims: list[ClaimReport], link: bool = True) -> list[list[str]]:
    """One row per cell of the session: the claim in words with its source, our verdict, the effect
    with its interval (the deciding bounds, else the 95% interval) and the source's own number."""
    rows = []
    for claim in claims:
        name = f"[{claim.spec.name}](#{anchor(claim.spec)})" if link else claim.spec.name
        words = f"{claim.spec.title} ({short_source(claim.spec.source)})"
        source = source_number(claim)
        for c in claim.cells:
            rows.append([name, words, c.cell_id, VERDICT_MARK[c.verdict] if link else c.verdict, effect_text(c), source])
    return rows


ANSWER_HEADERS = ["claim", "the claim (source)", "cell", "verdict", "a − b [interval], pt", "the source's number"]


def recommendation_lines(recommendations: list) -> list[str]:
    """The Recommendation section: per cell the decision in words, then the ranking with each arm's
    interval against the one to use (or the leader) and what the rule says of it."""
    if not recommendations:
        return []
    first = recommendations[0][1]
    out = ["## Recommendation", "",
           f"Which input normalization to use, per cell: every normalization fine-tuned with the same seeds, each pair "
           f"compared by a paired t interval; the intervals hold together at {1 - first.alpha:.0%} over every pair "
           f"and look (Bonferroni), and the rule (harness/recommend.py) recommends one only when it beats every other "
           f"by more than the margin ({first.margin:g} point), otherwise names those no other beats by the margin "
           f"(equivalent within it).", ""]
    for cell_id, rec in recommendations:
        out += [f"### {cell_id}", "", f"**{rec.words()}** ({rec.seeds} seeds).", ""]
        lead = rec.lead
        rows = [[arm, f"{mean:.2f} ± {sd:.2f}",
                 "–" if arm == lead or not rec.intervals else rec.interval(arm, lead).text(), rec.says(arm)]
                for arm, mean, sd in rec.ranking]
        out += [tabulate(rows, headers=["normalization", "accuracy (%)", f"− {lead} [simultaneous interval], pt",
                                        "the rule says"], tablefmt="github"), ""]
    return out


def render_markdown(header: dict, claims: list[ClaimReport], changes: list[str] = (),
                    deferred: list[tuple[str, str, str, str]] = (), recommendations: list = ()) -> str:
    """summary.md: the Recommendation section when the session ran it (harness.recommend), what
    changed since the last report (`changes`, harness.changes), the header, and per claim its
    verdicts with the numbers behind them."""
    out = ["# normclaims summary", ""]
    out += recommendation_lines(list(recommendations))
    answers = answer_rows(claims)
    if answers:
        out += ["## The answers", "", tabulate(answers, headers=ANSWER_HEADERS, tablefmt="github"), "",
                "Each claim's section below gives its hypothesis, test, fair-test and domain lines, every cell's "
                "numbers and the reason for its verdict.", ""]
    if deferred:
        out += ["## Not in this session", "", "Left out by the profile, each for the reason given; each command runs "
                "the claim's module, and with --plan lists its runs and device-hours first:", ""]
        groups: dict[str, list] = {}
        for name, why, run, cost in deferred:
            groups.setdefault(why, []).append((name, run, cost))
        for why, rows in groups.items():
            names = ", ".join(f"`{name}`" for name, _, _ in rows)
            runs = "; ".join(f"`{run}` (cost: `{cost}`)" for run, cost in dict.fromkeys((r, c) for _, r, c in rows))
            out.append(f"- {names}: {why}. Run: {runs}")
        out.append("")
    out += [*changes]
    out += [f"- **{k}**: {v}" for k, v in header.items()]
    out += ["", "## Verdicts", ""]
    for claim in claims:
        out.append(f"- **{claim.spec.name}** — {claim.spec.title}: {claim.count}")
    out += ["", f"Family-wise correction: {header['correction']}. Each cell pools its seeds: one paired observation "
                "(arm a, arm b) per seed, the arms sharing the seed's head initialisation, data order and augmentation "
                "draws. Accuracy is the final epoch's, in points. Beside the mean paired difference stand the bounds "
                "of the tests that decide the cell, each at the level Holm gives it (so a bound excludes 0, or the "
                "margin, exactly when its test is significant): the t interval for the t-test, the inverted test for "
                "the rank and sign-flip tests. p is the claim's test (raw and Holm), p against the test against it "
                "(Holm); MDE is the smallest true difference the one-sided t-test would detect with 80% power at the "
                "observed spread. \"Still moving\": the arms (a configuration over its seeds) whose mean accuracy "
                "moved by the claim's pre-registered tolerance or more between three quarters of training and its "
                "end (read for this only, never to pick an epoch). A cell still moving, or below its claim's "
                "pre-registered fair-test budget, is \"under budget\": its numbers are shown, its verdict withheld; a cell whose runs miss a condition of "
                "its claim's pre-registered domain is \"out of domain\": no test, never refuted. Differences are counted on the "
                "accuracy grid (k correct of n images), so ties and zero spread are exact; a cell of a claim's Holm "
                "family that failed, lacks seeds or lies outside the domain counts in it with p = 1. Error rates the rules guarantee, each at "
                "the claim's alpha over its Holm family: a false \"supported\", a \"refuted\" of a true claim, a "
                "\"negligible\" of an effect at the margin; sequential plans keep the same rate (their levels are "
                "calibrated for the claim's test). Under no effect at all a one-sided claim can be wrongly supported "
                "(at most alpha) or refuted (at most alpha): it ends decisive with probability up to 2 alpha. "
                "Rules: harness/verdicts.py."]
    for claim in claims:
        cells = claim.cells
        out += ["", f'<a id="{anchor(claim.spec)}"></a>', "", f"## {claim.spec.name}: {claim.spec.title}", ""]
        out.append(f"Source: {claim.spec.source}. {hypothesis(claim)} {claim.count}.")
        out += ["", fair_test_line(claim.spec), "", domain_line(claim.spec)]
        pooled = pooled_line(claim)
        if pooled:
            out += ["", pooled]
        if cells:
            out += ["", tabulate(cell_rows(cells), tablefmt="github", headers=[
                "cell", "n", f"a: {claim.a_label} (%)", f"b: {claim.b_label} (%)", "a − b [Holm bounds]",
                "p", "p Holm", "p against", "P(a>b)", "MDE", "still moving", "verdict", "source: a vs b (a − b)"])]
            out += ["", "Why:", ""]
            out += [f"- {c.cell_id}: **{c.verdict}** — {c.reason}" for c in cells]
            grid = matrix(cells)
            if grid:
                out += ["", "Model × dataset (mean a vs mean b, difference in points):", "", grid]
        for table in claim.tables:
            out += ["", f"{table.title}:", "", tabulate(table.rows, headers=table.headers, tablefmt="github")]
        for figure in claim.figures:
            out += ["", f"![{figure.stem}]({figure.name})"]
        out += source_tables(claim)
        if claim.skipped:
            out += ["", "Skipped cells:", ""]
            out += [f"- {', '.join(cells)}: {reason}" for reason, cells in by_reason(claim.skipped).items()]
        if claim.errors:
            out += ["", "Errors:", ""]
            out += [f"- {cell}: {reason}" for cell, reason in claim.errors.items()]
        cost = claim.cost
        out += ["", f"Compute: {cost.runs} runs ({cost.trained} trained this session, {cost.cached} from earlier "
                    f"sessions), {cost.device_seconds:.0f} device-seconds in total (a run shared with other claims counts "
                    f"in each; the header counts it once)."]
    out.append("")
    return "\n".join(out)


def cell_json(c: CellResult) -> dict:
    s = c.summary
    return {
        "cell": c.cell.as_dict(), "a_label": c.a_label, "b_label": c.b_label, "seeds": c.seeds, "a": c.a, "b": c.b,
        "summary": dataclasses.asdict(s) if s else None, "bounds": list(c.shown_interval), "ci95": list(c.ci95),
        "tests": {name: dataclasses.asdict(t) for name, t in c.tests.items()}, "decided_by": list(c.decided_by),
        "source": dataclasses.asdict(fig) if (fig := source_figure(c.spec.name, c.cell)) else None,
        "best_epoch_diffs": c.best_diffs, "outlier_seeds": c.outliers, "exploratory": c.exploratory, "sequential_family": c.sequential_family,
        "look": c.look, "futile": ({"look": c.futile[0], "conditional_power": c.futile[1]} if c.futile else None),
        "under_budget": c.shortfalls, "out_of_domain": c.outside,
        "convergence": dataclasses.asdict(c.convergence) if c.convergence else None,
        "verdict": c.verdict, "reason": c.reason, "failures": c.failures, "runs": [r.to_dict() for r in c.runs],
    }


def summary_json(header: dict, claims: list[ClaimReport]) -> dict:
    """summary.json: the header, and per claim its pre-registration, cells, skips, tables and cost."""
    return {"header": header, "claims": [{
        **{k: v for k, v in c.spec.to_dict().items() if k != "cells"},
        "a_label": c.a_label, "b_label": c.b_label, "count": c.count,
        "pooled": dataclasses.asdict(c.pooled) if c.pooled else None,
        "cells": [cell_json(x) for x in c.cells],
        "skipped": {cell.id: {"reasons": list(reasons), "source": dataclasses.asdict(fig) if (
            fig := source_figure(c.spec.name, cell)) else None} for cell, reasons in c.skipped.items()},
        "errors": c.errors,
        "tables": [dataclasses.asdict(t) for t in c.tables],
        "source_figures": [{"cell": cell_id, "in_session": in_session, **dataclasses.asdict(fig)}
                           for cell_id, fig, in_session in session_figures(c)],
        "cost": dataclasses.asdict(c.cost),
        "figures": [p.name for p in c.figures],
    } for c in claims]}
