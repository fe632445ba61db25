"""When a cell is a fair test of its claim, and whether its runs were still improving.

A claim pre-registers the budget below which its cells cannot test it (`fair_test=` in its
marker): the fewest epochs and training images of each run, and for scans the fewest grid points
per axis, with the source's reason. A cell whose runs fall short is reported "under budget" with
what it lacks, never supported or refuted: a verdict from runs that stop after 30 steps is about
early training, not about the claim.

Each cell also says whether its runs were still improving when they stopped: the mean training loss
of the last quarter of a run's steps against the quarter before. It describes the runs; it does not
gate the verdict (under a cosine schedule the last quarter's learning rate is small, so the loss
flattens there whatever the budget).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from statistics import median

from harness.config import RunRecord
from harness.errors import UsageError

IMPROVING_DROP = 0.02  # the last quarter's training loss this much below the third's: still improving
FIXED_NORM = re.compile(r"fixed:")


@dataclass(frozen=True)
class FairTest:
    """The least budget under which a cell tests its claim. None: no condition."""

    epochs: int | None = None  # training epochs of every run
    train_images: int | None = None  # distinct training images of every run
    grid: int | None = None  # points per axis of the cell's mean x std scan
    why: str = ""  # the justification, from the source
    models: dict[str, "FairTest"] = field(default_factory=dict)  # per-model conditions replacing these

    def for_model(self, model: str | None) -> "FairTest":
        return self.models.get(model, self) if model is not None else self

    def describe(self) -> str:
        parts = [f"{self.epochs} epochs" if self.epochs else "",
                 f"{self.train_images:,} training images" if self.train_images else "",
                 f"a {self.grid} x {self.grid} grid" if self.grid else ""]
        return ", ".join(p for p in parts if p) or "any budget"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_value(cls, value, where: str) -> "FairTest":
        """A marker's `fair_test=dict(...)` (or a FairTest, or its to_dict), checked."""
        if isinstance(value, FairTest):
            value = value.to_dict()
        if not isinstance(value, dict):
            raise UsageError(f"{where}: fair_test must be a dict of epochs, train_images, grid, why, models; got {value!r}")
        unknown = sorted(set(value) - {"epochs", "train_images", "grid", "why", "models"})
        if unknown:
            raise UsageError(f"{where}: fair_test has unknown field(s) {', '.join(unknown)} "
                             f"(it takes epochs, train_images, grid, why, models)")
        for name in ("epochs", "train_images", "grid"):
            v = value.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise UsageError(f"{where}: fair_test {name} must be a positive integer, got {v!r}")
        if not isinstance(value.get("why", ""), str):
            raise UsageError(f"{where}: fair_test why must be a string")
        models = value.get("models") or {}
        if not isinstance(models, dict):
            raise UsageError(f"{where}: fair_test models must map a model name to its own conditions")
        return cls(value.get("epochs"), value.get("train_images"), value.get("grid"), value.get("why", ""),
                   {m: cls.from_value({**v, "why": v.get("why", value.get("why", ""))}, f"{where} ({m})")
                    for m, v in models.items()})


def train_images(run: RunRecord) -> int | None:
    return run.result.meta.get("train_images_in_subset") if run.result is not None else None


def grid_side(runs: list[RunRecord]) -> int | None:
    """Points per axis of the scan among the runs: the number of distinct fixed normalizations is
    the grid's square. None when the runs hold no scan."""
    fixed = {r.config.norm for r in runs if FIXED_NORM.match(r.config.norm)}
    if len(fixed) < 4:
        return None
    return math.isqrt(len(fixed))


def shortfalls(fair: FairTest | None, model: str | None, runs: list[RunRecord]) -> list[str]:
    """What the cell's runs lack against the claim's fair-test conditions (empty: a fair test)."""
    if fair is None:
        return []
    need = fair.for_model(model)
    trained = [r for r in runs if r.ok and r.config.train]
    short = []
    if need.epochs and trained:
        fewest = min(r.config.epochs for r in trained)
        if fewest < need.epochs:
            short.append(f"runs train {fewest} epoch(s), a fair test needs {need.epochs}")
    if need.train_images and trained:
        seen = [n for n in map(train_images, trained) if n is not None]
        if seen and min(seen) < need.train_images:
            short.append(f"runs train on {min(seen):,} images, a fair test needs {need.train_images:,}")
    if need.grid:
        side = grid_side(runs)
        if side is not None and side < need.grid:
            short.append(f"a {side} x {side} grid, a fair test needs {need.grid} x {need.grid}")
    return short


def loss_drop(run: RunRecord) -> float | None:
    """Relative fall of the training loss from the third to the last quarter of the run's steps;
    None when the run did not record it (or did not train)."""
    if not run.ok or not run.config.train:
        return None
    quarters = run.result.meta.get("train_loss_quarters") or []
    if len(quarters) < 4 or not quarters[2] > 0:
        return None
    return (quarters[2] - quarters[3]) / quarters[2]


@dataclass(frozen=True)
class Improvement:
    """Whether a cell's runs were still improving when they stopped."""

    improving: int  # runs whose training loss still fell by more than IMPROVING_DROP
    measured: int  # runs that recorded their loss by quarters
    median_drop: float | None  # the runs' median relative fall over the last quarter

    @property
    def text(self) -> str:
        if not self.measured:
            return "unknown"
        word = "yes" if self.improving * 2 > self.measured else "no"
        return f"{word}: {self.improving}/{self.measured} runs, loss {-100 * self.median_drop:+.1f}% in the last quarter"


def improvement(runs: list[RunRecord]) -> Improvement:
    drops = [d for d in map(loss_drop, runs) if d is not None]
    return Improvement(sum(d > IMPROVING_DROP for d in drops), len(drops), median(drops) if drops else None)
