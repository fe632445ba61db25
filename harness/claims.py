"""A claim's pre-registration: what it tests and how, fixed before any run.

Claim modules declare it at the top with the `claim` marker (a function-level marker overrides
the module's, so one module may state two hypotheses about the same runs):

    pytestmark = pytest.mark.claim(
        "dataset_stats", title="...", source="000 Table 2",
        models=(...), datasets=(...), cells=(...),
        kind="superiority", test="paired_t", alpha=0.05, min_seeds=3,
    )

kind          H1, for arms a and b and the mean paired difference d = a - b in accuracy points
superiority   d > 0 (alternative "greater"), or d != 0 with the sign hypothesised (alternative "two-sided")
equivalence   -margin < d < margin (TOST)
noninferiority d > -margin
ranking       every arm against every other (harness.recommend): which to use, within the margin

A claim may pre-register its domain: the conditions under which a cell tests it at all, each a
name and the condition in words (`domain={"ratio": "r/R between 0.5 and 0.65, as 004's 128/224"}`).
The test checks each one on its runs (`evidence.in_domain(name, holds, measured)`); a cell whose
runs miss one is "out of domain": its numbers are shown with the failing condition, never a verdict.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from harness.budget import FairTest
from harness.errors import UsageError

FUTILITY = 0.05  # conditional power below which a sequential cell stops undecided (see README, Statistics)
KINDS = ("superiority", "equivalence", "noninferiority", "ranking")
TESTS = ("paired_t", "wilcoxon", "permutation")  # see harness.significance
ALTERNATIVES = ("greater", "two-sided")


@dataclass(frozen=True)
class ClaimSpec:
    name: str
    title: str
    source: str
    cells: tuple[tuple[str, str], ...]  # (model, dataset) pairs the claim runs on
    kind: str = "superiority"
    test: str = "paired_t"  # paired t-test, Wilcoxon signed-rank (exact) or sign-flip permutation (exact)
    alternative: str = "greater"  # superiority only: one-sided, or two-sided with the sign checked
    alpha: float = 0.05  # family-wise, Holm across the claim's cells
    margin: float | None = None  # accuracy points; required for equivalence and non-inferiority
    margin_why: str = ""  # the margin's justification from the source's own effects, or why there is none (shown in the report)
    min_seeds: int = 3  # fewer seeds in a cell give no verdict
    max_seeds: int | None = None  # cap on the session's seeds, for expensive scans (None: all of them)
    seeds: int | None = None  # planned seeds of a fixed design (None: the profile's); more are exploratory
    looks: tuple[int, ...] | None = None  # a group-sequential plan for --seeds auto: decide after these
    # many seeds, stopping a cell at the first look whose alpha-spending boundary it crosses
    spending: str = "obrien_fleming"  # the plan's alpha-spending function (harness.sequential)
    futility: float | None = FUTILITY  # stop an undecided cell at an interim look when the rest of the
    # plan would decide it with less than this chance at the trend so far (harness.verdicts.futility_stop); None: never
    effect: float | None = None  # smallest effect worth detecting, points, for planning seeds (None: the margin)
    fair_test: FairTest | None = None  # the least budget under which a cell tests the claim (harness.budget)
    domain: dict[str, str] = field(default_factory=dict)  # condition name -> the condition, in words

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClaimSpec":
        looks = tuple(data["looks"]) if data.get("looks") is not None else None
        fair = data.get("fair_test")
        fair = FairTest.from_value(fair, f"claim {data['name']!r}") if fair is not None else None
        return cls(**{**data, "cells": tuple(tuple(c) for c in data["cells"]), "looks": looks, "fair_test": fair})

    def planned_seeds(self, profile_seeds: int) -> int:
        """Seeds the design plans for: the last look, the claim's own number, or the profile's."""
        if self.looks:
            return self.looks[-1]
        return self.seeds or profile_seeds

    def plan(self, family_size: int):
        """The group-sequential plan of one cell: the claim's looks and spending at alpha split
        evenly (Bonferroni) across the cells of its family, its levels calibrated for the claim's test."""
        from harness.sequential import SequentialPlan

        return SequentialPlan(self.looks, self.alpha / family_size, self.spending, self.test)


def claim_from_marker(mark, module_name: str) -> ClaimSpec:
    kwargs = dict(mark.kwargs)
    name = mark.args[0] if mark.args else module_name.removeprefix("test_")
    cells = tuple(tuple(c) for c in kwargs.pop("cells", ()))
    models, datasets = kwargs.pop("models", ()), kwargs.pop("datasets", ())
    cells += tuple((m, d) for m in models for d in datasets if (m, d) not in cells)
    if isinstance(kwargs.get("looks"), list):
        kwargs["looks"] = tuple(kwargs["looks"])
    kwargs.setdefault("title", name)
    kwargs.setdefault("source", "unstated")
    if kwargs.get("fair_test") is not None:
        kwargs["fair_test"] = FairTest.from_value(kwargs["fair_test"], f"claim {name!r}")
    try:
        spec = ClaimSpec(name=name, cells=cells, **kwargs)
    except TypeError as exc:
        raise UsageError(f"claim {name!r}: {exc}") from None
    check_prereg(spec)
    return spec


def check_prereg(spec: ClaimSpec) -> None:
    """The claim's own settings, whatever the session asks for: types and ranges of every field."""
    where = f"claim {spec.name!r}"
    for name in ("title", "source", "kind", "test", "alternative", "margin_why"):
        if not isinstance(getattr(spec, name), str):
            raise UsageError(f"{where}: {name} must be a string, got {getattr(spec, name)!r}")
    if not is_number(spec.alpha):
        raise UsageError(f"{where}: alpha must be a number in (0, 1), got {spec.alpha!r}")
    for name in ("margin", "effect"):
        value = getattr(spec, name)
        if value is not None and not (is_number(value) and math.isfinite(value) and value > 0):
            raise UsageError(f"{where}: {name} must be a finite positive number of accuracy points, got {value!r}")
    for name in ("min_seeds", "max_seeds", "seeds"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise UsageError(f"{where}: {name} must be an integer, got {value!r}")
    if spec.kind not in KINDS:
        raise UsageError(f"{where}: unknown kind {spec.kind!r} (available: {', '.join(KINDS)})")
    if spec.test not in TESTS:
        raise UsageError(f"{where}: unknown test {spec.test!r} (available: {', '.join(TESTS)})")
    if spec.alternative not in ALTERNATIVES or (spec.kind != "superiority" and spec.alternative != "greater"):
        raise UsageError(f"{where}: alternative {spec.alternative!r} is not allowed for {spec.kind} "
                         f"(superiority takes {' or '.join(ALTERNATIVES)}; the others are one-sided by construction)")
    if not 0 < spec.alpha < 1:
        raise UsageError(f"{where}: alpha must lie in (0, 1), got {spec.alpha}")
    if spec.kind in ("equivalence", "noninferiority", "ranking") and spec.margin is None:
        raise UsageError(f"{where}: {spec.kind} needs a positive margin in accuracy points, stated before any run")
    if spec.min_seeds < 2:
        raise UsageError(f"{where}: min_seeds must be at least 2 (a paired test needs two seeds)")
    if spec.max_seeds is not None and spec.max_seeds < spec.min_seeds:
        raise UsageError(f"{where}: max_seeds {spec.max_seeds} is below min_seeds {spec.min_seeds}")
    if not spec.cells:
        raise UsageError(f"{where}: no cells (give models and datasets, or cells)")
    if not isinstance(spec.domain, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v.strip() for k, v in spec.domain.items()):
        raise UsageError(f"{where}: domain must map each condition's name to the condition in words, "
                         f"got {spec.domain!r}")
    if spec.seeds is not None and spec.seeds < spec.min_seeds:
        raise UsageError(f"{where}: seeds {spec.seeds} is below min_seeds {spec.min_seeds}")
    if spec.looks is not None:
        from harness.sequential import SequentialPlan

        try:
            SequentialPlan(tuple(spec.looks), spec.alpha, spec.spending)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{where}: looks/spending: {exc}") from None
        if spec.looks[0] < spec.min_seeds:
            raise UsageError(f"{where}: the first look ({spec.looks[0]} seeds) is below min_seeds {spec.min_seeds}")
    if spec.futility is not None and not (is_number(spec.futility) and 0 <= spec.futility < 1):
        raise UsageError(f"{where}: futility must be a conditional power in [0, 1) or None, got {spec.futility!r}")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def check_power(spec: ClaimSpec, seeds: int, family_size: int = 1) -> None:
    """Refuse a claim that cannot reach alpha with the seeds requested: a test with a discrete null
    distribution has a smallest possible p-value, and Holm multiplies the smallest p of a family
    of `family_size` cells by that many."""
    from harness.significance import attainable, min_attainable_p

    where = f"claim {spec.name!r}"
    seeds = min(seeds, spec.max_seeds or seeds)
    if seeds < spec.min_seeds:
        return  # no verdict either way: said at collection (seeds_note), each cell "inconclusive"
    alternative = "two-sided" if spec.alternative == "two-sided" else "greater"
    if not attainable(spec.test, seeds, alternative, spec.alpha, family_size):
        floor = min_attainable_p(spec.test, seeds, alternative)
        family = f" times {family_size} cells (Holm)" if family_size > 1 else ""
        raise UsageError(
            f"{where}: {spec.test} ({alternative}) with {seeds} seeds cannot give p below "
            f"{floor:.4g}{family}, so it can never reach alpha = {spec.alpha}; use more seeds (--seeds) or another test"
        )


def seeds_note(spec: ClaimSpec, seeds: int) -> str | None:
    seeds = min(seeds, spec.max_seeds or seeds)
    if seeds < spec.min_seeds:
        return (f"claim {spec.name!r} needs at least {spec.min_seeds} seeds and this session runs {seeds}: "
                f"its cells will give no verdict (pass --seeds {spec.min_seeds})")
    return None


def select_cells(
    spec: ClaimSpec, models: list[str] | None, datasets: list[str] | None
) -> list[tuple[str, str]]:
    """The claim's cells, with an axis replaced where the user named models or datasets."""
    cell_models = list(dict.fromkeys(m for m, _ in spec.cells))
    cell_datasets = list(dict.fromkeys(d for _, d in spec.cells))
    if models is None and datasets is None:
        return list(spec.cells)
    if datasets is None:
        return [c for c in spec.cells if c[0] in models] or [(m, d) for m in models for d in cell_datasets]
    if models is None:
        return [c for c in spec.cells if c[1] in datasets] or [(m, d) for m in cell_models for d in datasets]
    return [(m, d) for m in models for d in datasets]
