"""`--plan`: what a session would do, before any compute.

Each claim item runs twice with a `finetune` that trains nothing: a run in the store is returned as
it is, a missing one as a PlannedRun whose value is a stand-in that differs between the two passes,
and listed as a request. A run asked for in one pass but not the other depends on other runs'
results (the worst-cell search of init compensation): it is counted apart, as its config is known
only once its inputs exist. The
controller sums the requests per claim and cell, estimates device-hours from the images each run
processes and the images/s the store's runs of the same model, side and device measured, and,
from the spread of the paired differences already in the store, the seeds each claim needs.
Nothing here imports torch.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from harness.budget import settle_epoch
from harness.config import RunConfig, RunRecord

EVAL_COST = 1 / 3  # an evaluated image costs about a third of a trained one (forward pass only)
POWER = 0.8


@dataclass(frozen=True)
class PlannedRun(RunRecord):
    """A run the session would train: no result yet. Its values read as a stand-in drawn from its
    key and the pass (see pytest_pyfunc_call in harness.plugin): a claim whose later requests
    depend on them asks for other runs in the second pass."""

    value: float = math.nan

    @property
    def accuracy(self) -> float:
        return self.value

    def metric(self, name: str | None) -> float:
        return self.value


def stand_in(key: str, plan_pass: int) -> float:
    """A value in (0, 1) fixed by the run's key; the second pass reverses the order of the first,
    so a choice among runs (the best, the worst) changes between the passes."""
    import hashlib

    value = (int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) + 0.5) / 16**12
    return 1 - value if plan_pass == 2 else value


@dataclass(frozen=True)
class RunRequest:
    """One run an item asks for, as the plan counts it."""

    key: str
    model: str
    dataset: str
    side: int | None  # resolution fed to the model (None: unknown until the data is decoded)
    device_type: str
    images: float  # training images plus evaluated images at EVAL_COST
    cached: bool
    dependent: bool = False  # asked for in one pass only: its config follows other runs' results


def run_images(cfg: RunConfig, train_size: int | None, test_size: int | None) -> float:
    """Images a run processes: training steps x batch, plus evaluations and the FixRes stage at
    EVAL_COST (NaN where a split's size is unknown)."""
    train = cfg.train_subset or train_size
    test = cfg.test_subset or (10_000 if cfg.evaluate_on == "val" else test_size)
    if train is None or test is None:
        return math.nan
    trained = (train // cfg.batch_size) * cfg.batch_size * (cfg.epochs if cfg.train else 0)
    evaluated = {e for e in range(1, cfg.epochs + 1) if e % cfg.eval_every == 0} | {settle_epoch(cfg.epochs), cfg.epochs}
    evals = (len(evaluated - {None}) if cfg.train else 1) + len(cfg.test_resolutions)
    recalibration = train * evals if cfg.bn_recalibration else 0
    stages = (1 + len(cfg.fixres_ablation)) * bool(cfg.fixres_epochs)  # the stage and each ablation variant
    fixres = (train // cfg.batch_size) * cfg.batch_size * cfg.fixres_epochs * stages
    evals += stages + bool(cfg.fixres_epochs)  # each at its end, the stage also at three quarters
    return trained + fixres + EVAL_COST * (test * evals + recalibration)


@dataclass
class CellPlan:
    runs: dict[str, RunRequest] = field(default_factory=dict)

    def add(self, request: RunRequest) -> None:
        old = self.runs.get(request.key)
        # a run counts as dependent only if every item that asks for it asked after a read
        self.runs[request.key] = request if old is None else RunRequest(
            **{**request.__dict__, "dependent": old.dependent and request.dependent})


def seeds_needed(sd: float, effect: float, alpha: float, power: float = POWER, most: int = 1000) -> int | None:
    """Smallest n whose one-sided paired t-test at `alpha` detects a mean difference `effect` with
    `power` when the differences have standard deviation `sd` (noncentral t)."""
    from scipy import stats

    if not (sd > 0 and effect > 0):
        return None
    for n in range(2, most + 1):
        crit = stats.t.ppf(1 - alpha, n - 1)
        if stats.nct.sf(crit, n - 1, effect / sd * math.sqrt(n)) >= power:
            return n
    return None


def hours(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    h = seconds / 3600
    return f"{h:,.0f}" if h >= 100 else f"{h:.2f}" if h >= 0.01 else f"{h:.2g}"


def summarize_plan(cells: dict[tuple[str, str], CellPlan], rates: dict[tuple, float]) -> tuple[list[list], dict]:
    """Rows (claim, cell, runs, in store, to train, dependent, est. device-hours) and the totals.
    A run shared by several cells or claims is trained once: the totals count it once."""
    rows = []
    every: dict[str, RunRequest] = {}
    for (claim, cell_id), plan in sorted(cells.items()):
        todo = [r for r in plan.runs.values() if not r.cached]
        seconds = sum(r.images / rates.get((r.model, r.side, r.device_type), math.nan) for r in todo)
        rows.append([claim, cell_id, len(plan.runs), len(plan.runs) - len(todo), len(todo),
                     sum(r.dependent for r in todo), hours(seconds) if todo else "0"])
        every.update(plan.runs)
    todo = [r for r in every.values() if not r.cached]
    unmeasured = sorted({(r.model, r.side, r.device_type) for r in todo} - set(rates))
    total_s = sum(r.images / rates[(r.model, r.side, r.device_type)] for r in todo
                  if (r.model, r.side, r.device_type) in rates)
    totals = {"runs": len(every), "cached": len(every) - len(todo), "to_train": len(todo),
              "dependent": sum(r.dependent for r in todo), "hours_measured": total_s / 3600,
              "runs_unmeasured": sum((r.model, r.side, r.device_type) in unmeasured for r in todo),
              "unmeasured": unmeasured}
    return rows, totals


def group_requests(requests: list[tuple[str, str, RunRequest]]) -> dict[tuple[str, str], CellPlan]:
    cells: dict[tuple[str, str], CellPlan] = defaultdict(CellPlan)
    for claim, cell_id, request in requests:
        cells[(claim, cell_id)].add(request)
    return cells


def claim_rows(cells: dict[tuple[str, str], CellPlan], rates: dict[tuple, float],
               seeds: dict[str, str]) -> list[list]:
    """Per claim: cells, runs, in store, to train, dependent, est. device-hours, seeds needed."""
    by_claim: dict[str, dict[str, RunRequest]] = defaultdict(dict)
    n_cells: dict[str, int] = defaultdict(int)
    for (claim, _), plan in cells.items():
        by_claim[claim].update(plan.runs)
        n_cells[claim] += 1
    rows = []
    for claim, runs in sorted(by_claim.items()):
        todo = [r for r in runs.values() if not r.cached]
        seconds = sum(r.images / rates.get((r.model, r.side, r.device_type), math.nan) for r in todo)
        rows.append([claim, n_cells[claim], len(runs), len(runs) - len(todo), len(todo), sum(r.dependent for r in todo),
                     hours(seconds) if todo else "0", seeds.get(claim, "–")])
    return rows


def render_plan(header: str, cells: dict[tuple[str, str], CellPlan], rates: dict[tuple, float],
                seeds: dict[str, str], skipped: dict[str, dict[str, tuple[str, ...]]]) -> str:
    """The plan as Markdown: per claim, per cell, totals and what could not be estimated."""
    from tabulate import tabulate

    cell_rows, totals = summarize_plan(cells, rates)
    out = ["# normclaims plan", "", header, "",
           tabulate(claim_rows(cells, rates, seeds), tablefmt="github", headers=[
               "claim", "cells", "runs", "in store", "to train", "dependent", "device-hours", "seeds needed"]),
           "", f"**Total**: {totals['runs']} runs, {totals['cached']} in the store, {totals['to_train']} to train "
               f"({totals['dependent']} of them depend on other runs' results, so their configs are known only then); "
               f"{totals['hours_measured']:.2f} device-hours for the runs with a measured speed"]
    if totals["unmeasured"]:
        keys = ", ".join(f"{m} at {s} px on {d}" for m, s, d in totals["unmeasured"])
        out[-1] += (f", unknown for {totals['runs_unmeasured']} runs: no finished run of {keys} in the store "
                    f"to measure images/s from")
    out[-1] += "."
    out += ["", "A run shared by several cells or claims is trained once and counted once in the total. Device-hours "
                "are images to process (training steps x batch, evaluations at a third of the cost) divided by the "
                "median images/s of the store's runs of the same model, side and device.",
            "", "Per cell:", "",
            tabulate(cell_rows, tablefmt="github", headers=["claim", "cell", "runs", "in store", "to train", "dependent",
                                                             "device-hours"])]
    where: dict[str, set[str]] = defaultdict(set)
    for claim, by_cell in skipped.items():
        for cell_id, reasons in by_cell.items():
            for reason in reasons:
                where[reason].add(f"{claim}/{cell_id}")
    if where:
        out += ["", "Not available here (these cells would be skipped):", ""]
        out += [f"- {len(cells_lacking)} cell(s): {reason}" for reason, cells_lacking in sorted(where.items())]
    return "\n".join(out) + "\n"


def seeds_for_claim(spec, diffs_per_cell: list, family_size: int) -> str:
    """The seeds a claim needs for 80% power at its target effect (its `effect`, else its margin)
    and the Holm-adjusted alpha of its first step (alpha / family size), from the largest spread
    of paired differences the store already holds for its cells."""
    import numpy as np

    effect = spec.effect if spec.effect is not None else spec.margin
    sds = [float(np.std(d, ddof=1)) for d in diffs_per_cell if len(d) >= 2]
    if effect is None:
        return "no target effect stated"
    if not sds:
        return f"unknown (no paired seeds in the store); target {effect} pt"
    sd = max(sds)
    # equivalence: each of TOST's one-sided tests at 90% power gives the pair about 80%
    power = 0.9 if spec.kind == "equivalence" else POWER
    n = seeds_needed(sd, effect, spec.alpha / family_size, power)
    return f"{n if n else '> 1000'} for {effect} pt (sd {sd:.2f} pt, alpha {spec.alpha}/{family_size})"
