"""When a cell is a fair test of its claim: its runs have converged, by a pre-registered criterion
on their own learning curves, and meet the source's minimums.

A claim pre-registers (`fair_test=` in its marker) how far an arm's accuracy may still move over the
last quarter of training for its cells to test it (`converged`, in points, a fraction of the
claim's own margin or effect), and any minimum its source states (epochs, training images, the
points per axis of a scan). Every run is evaluated at three quarters of its training (and a FixRes
stage at three quarters of its steps) besides the end; an arm's movement is the mean over the
cell's seeds of (final accuracy - accuracy at three quarters). A cell whose arms still move by the
tolerance or more, whose runs cannot show it (one epoch, or stored before the curve was kept), or
that misses a minimum is reported "under budget" with what it lacks, never supported or refuted: a
verdict from runs that stop while the arms still move is about when training stopped, not about the
claim. The accuracy at three quarters is read only for this criterion, never to pick an epoch.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

from harness.config import RunRecord
from harness.errors import UsageError

FIXED_NORM = re.compile(r"fixed:")
SETTLE = 0.75  # the share of training whose accuracy the end's is compared with


@dataclass(frozen=True)
class FairTest:
    """The least budget under which a cell tests its claim. None: no condition."""

    epochs: int | None = None  # training epochs of every run (a source's minimum)
    train_images: int | None = None  # distinct training images of every run (a source's minimum)
    grid: int | None = None  # points per axis of the cell's mean x std scan
    converged: float | None = None  # points: the most an arm's accuracy may move over the last quarter
    why: str = ""  # the justification, from the source and the claim's margin
    models: dict[str, "FairTest"] = field(default_factory=dict)  # per-model conditions replacing these

    def for_model(self, model: str | None) -> "FairTest":
        return self.models.get(model, self) if model is not None else self

    def describe(self) -> str:
        parts = [f"every arm's accuracy moving less than {self.converged:g} pt over the last quarter of training "
                 f"(mean over seeds)" if self.converged else "",
                 f"{self.epochs} epochs" if self.epochs else "",
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
            raise UsageError(f"{where}: fair_test must be a dict of {', '.join(FIELDS)}; got {value!r}")
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise UsageError(f"{where}: fair_test has unknown field(s) {', '.join(unknown)} "
                             f"(it takes {', '.join(FIELDS)})")
        converged = value.get("converged")
        if converged is not None and (isinstance(converged, bool) or not isinstance(converged, (int, float))
                                      or not math.isfinite(converged) or converged <= 0):
            raise UsageError(f"{where}: fair_test converged must be a positive number of accuracy points, got {converged!r}")
        for name in ("epochs", "train_images", "grid"):
            v = value.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise UsageError(f"{where}: fair_test {name} must be a positive integer, got {v!r}")
        if not isinstance(value.get("why", ""), str):
            raise UsageError(f"{where}: fair_test why must be a string")
        models = value.get("models") or {}
        if not isinstance(models, dict):
            raise UsageError(f"{where}: fair_test models must map a model name to its own conditions")
        inherited = {"why": value.get("why", ""), "converged": converged}
        return cls(value.get("epochs"), value.get("train_images"), value.get("grid"), converged, value.get("why", ""),
                   {m: cls.from_value({**inherited, **v}, f"{where} ({m})") for m, v in models.items()})


FIELDS = ("converged", "epochs", "train_images", "grid", "why", "models")


def train_images(run: RunRecord) -> int | None:
    return run.result.meta.get("train_images_in_subset") if run.result is not None else None


def grid_side(runs: list[RunRecord]) -> int | None:
    """Points per axis of the scan among the runs: the stds scanned at one mean. The scan is the
    runs' own normalizations (a grid of fine-tuned runs) or, where they hold none, the
    normalizations a trained run was evaluated at (a zero-shot scan, a grid and its zoom). None when
    the runs hold no scan."""
    own = {r.config.norm for r in runs if FIXED_NORM.match(r.config.norm)}
    norms = own if len(own) >= 4 else {n for r in runs for n in r.config.test_norms if FIXED_NORM.match(n)}
    if len(norms) < 4:
        return None
    means = Counter(n[len("fixed:"):].split("/")[0] for n in norms)
    return max(means.values())


def settle_epoch(epochs: int) -> int | None:
    """The epoch that ends the first three quarters of training, evaluated besides the last. None
    for a one-epoch run (it has no curve to read)."""
    epoch = math.floor(SETTLE * epochs)
    return epoch if 1 <= epoch < epochs else None


def settle_step(steps: int) -> int:
    """The step of a stage (FixRes's) at three quarters of its `steps`, evaluated besides the end."""
    return max(1, math.floor(SETTLE * steps))


def movements(run: RunRecord) -> dict[str, float | None]:
    """How far each accuracy the run reports moved over the last quarter of its training, in points:
    the final accuracy ("training") and a FixRes stage's ("FixRes stage"). None where the run did not
    record the accuracy at three quarters (a one-epoch run, one stored before the curve was kept)."""
    history = run.result.history
    settle = settle_epoch(run.config.epochs)
    at = [h.get("test_accuracy") for h in history if settle is not None and h.get("epoch") == settle]
    out = {"training": 100 * (run.result.accuracy - at[0]) if at and at[0] is not None else None}
    if run.config.fixres_epochs:
        settled = run.result.meta.get("fixres_settle_accuracy")
        final = run.result.metrics.get(f"fixres@{run.config.fixres_resolution}")
        out["FixRes stage"] = 100 * (final - settled) if settled is not None and final is not None else None
    return out


@dataclass(frozen=True)
class Convergence:
    """Whether a cell's arms had stopped moving: the largest mean movement over the last quarter."""

    moving: int  # arms (a config over its seeds, and its stage) that moved by the tolerance or more
    measured: int  # arms measured
    largest: float | None  # points: the largest |mean movement| among them
    where: str = ""  # that arm
    tolerance: float | None = None
    unmeasured: int = 0  # arms whose runs recorded no accuracy at three quarters

    @property
    def text(self) -> str:
        if not self.measured:
            return "unknown" if not self.unmeasured else f"unknown: {self.unmeasured} arm(s) without a curve"
        word = "yes" if self.moving else "no"
        limit = f" (fair: < {self.tolerance:g})" if self.tolerance else ""
        return f"{word}: {self.moving}/{self.measured} arms; at most {self.largest:+.2f} pt in the last quarter{limit}"


def arm_name(run: RunRecord, part: str) -> str:
    cfg = run.config
    scale = f" init x{cfg.init_scale[0]:g}/{cfg.init_scale[1]:g}" if cfg.init_scale else ""
    side = f" at {cfg.resolution} px" if cfg.resolution else ""
    return f"{cfg.norm}{scale}{side}{' (validation)' if cfg.evaluate_on == 'val' else ''}, {part}"


def convergence(runs: list[RunRecord], tolerance: float | None = None) -> Convergence:
    """Each arm's mean movement over its seeds in the cell's runs, against `tolerance` points."""
    trained = [r for r in runs if r.ok and r.config.train]
    groups: dict[str, list[float | None]] = {}
    for r in trained:
        key = dataclasses.replace(r.config, seed=0).key()
        for part, moved in movements(r).items():
            groups.setdefault((key, part), (arm_name(r, part), []))[1].append(moved)
    means = [(name, sum(v) / len(v)) for name, v in groups.values() if None not in v]
    unmeasured = sum(None in v for _, v in groups.values())
    if not means:
        return Convergence(0, 0, None, "", tolerance, unmeasured)
    where, largest = max(means, key=lambda m: abs(m[1]))
    moving = sum(abs(m) >= tolerance for _, m in means) if tolerance else 0
    return Convergence(moving, len(means), largest, where, tolerance, unmeasured)


def shortfalls(fair: FairTest | None, model: str | None, runs: list[RunRecord],
               conv: Convergence | None = None) -> list[str]:
    """What the cell's runs lack against the claim's fair-test conditions (empty: a fair test);
    `conv`: their convergence, when the caller has it already."""
    if fair is None:
        return []
    need = fair.for_model(model)
    trained = [r for r in runs if r.ok and r.config.train]
    short = []
    if need.converged and trained:
        conv = conv or convergence(trained, need.converged)
        if conv.unmeasured:
            fewest = min(r.config.epochs for r in trained)
            short.append(f"{conv.unmeasured} arm(s) recorded no accuracy at three quarters of training "
                         f"({fewest} epoch(s) at the fewest): whether they converged is unknown")
        if conv.moving:
            short.append(f"still moving: {conv.moving} of {conv.measured} arms moved by {need.converged:g} pt or more "
                         f"over the last quarter of training, {conv.where} by {conv.largest:+.2f} pt")
    if need.epochs and trained:
        fewest = min(r.config.epochs for r in trained)
        if fewest < need.epochs:
            short.append(f"runs train {fewest} epoch(s), the source's minimum is {need.epochs}")
    if need.train_images and trained:
        seen = [n for n in map(train_images, trained) if n is not None]
        if seen and min(seen) < need.train_images:
            short.append(f"runs train on {min(seen):,} images, the source's minimum is {need.train_images:,}")
    if need.grid:
        side = grid_side(runs)
        if side is not None and side < need.grid:
            short.append(f"a {side} x {side} grid, a fair test needs {need.grid} x {need.grid}")
    return short
