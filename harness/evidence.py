"""Paired observations from claim tests, carried to the controller inside test reports.

A claim test runs one seed; it calls `evidence.greater(a, b)` with the two arms' runs. The
observation is appended to the item's user_properties, which pytest copies into every report,
so it reaches the xdist controller as plain JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from harness.claims import RELATION_OF_KIND, ClaimSpec

OBSERVATION = "normclaims.observation"
CELL_TAG = "normclaims.cell"
EXTRA = "normclaims.extra"


@dataclass
class Run:
    """What `finetune` hands a claim: the stored record of one run."""

    key: str
    config: dict
    ok: bool
    accuracy: float | None  # final-epoch test accuracy (fraction); None when the run failed
    reason: str | None  # why the run failed
    cached: bool
    result: object | None  # RunResult

    @property
    def label(self) -> str:
        return self.config.get("norm", "?")

    def arm(self, metric: str | None = None, label: str | None = None) -> "Arm":
        """This run as an arm: its final accuracy, or one of its further metrics ("test@36", ...)."""
        if not self.ok:
            return Arm(label or metric or self.label, None, [self], self.reason)
        metrics = getattr(self.result, "metrics", {}) or {}
        if metric is not None and metric not in metrics:
            raise KeyError(f"run {self.key[:12]} has no metric {metric!r} (it has {', '.join(metrics) or 'none'})")
        value = self.accuracy if metric is None else metrics[metric]
        return Arm(label or metric or self.label, value, [self])


@dataclass
class Arm:
    """One side of a paired observation: a value for this seed (a fraction: accuracy, or a share)
    and the runs it came from."""

    label: str
    value: float | None
    runs: list[Run]
    reason: str | None = None  # why there is no value

    @property
    def ok(self) -> bool:
        return self.value is not None and all(r.ok for r in self.runs)

    @classmethod
    def constant(cls, label: str, value: float) -> "Arm":
        """A stated reference value, e.g. the plateau share a claim commits to."""
        return cls(label, value, [])

    @classmethod
    def of(cls, x: "Run | Arm") -> "Arm":
        return x if isinstance(x, Arm) else x.arm()


class Evidence:
    def __init__(self, item: pytest.Item, claim: ClaimSpec, cell: dict, seed: int):
        self.item, self.claim, self.cell, self.seed = item, claim, cell, seed

    def greater(self, a: "Run | Arm", b: "Run | Arm", *, a_label: str | None = None, b_label: str | None = None) -> None:
        """This seed's pair for a superiority claim: H1 a > b."""
        self._record("greater", a, b, a_label, b_label)

    def equivalent(self, a: "Run | Arm", b: "Run | Arm", *, a_label: str | None = None, b_label: str | None = None) -> None:
        """This seed's pair for an equivalence claim: H1 |a - b| < the claim's margin."""
        self._record("equivalent", a, b, a_label, b_label)

    def noninferior(self, a: "Run | Arm", b: "Run | Arm", *, a_label: str | None = None, b_label: str | None = None) -> None:
        """This seed's pair for a non-inferiority claim: H1 a > b - the claim's margin."""
        self._record("noninferior", a, b, a_label, b_label)

    def extra(self, kind: str, title: str, data: dict) -> None:
        """Material for the report beyond the verdict: kind "heatmap" ({x_label, y_label, x, y,
        z: rows of values per y}), "table" ({headers, rows}). Heat maps of one title and cell are
        averaged over seeds in the report."""
        payload = {"claim": self.claim.name, "cell": self.cell, "seed": self.seed, "kind": kind, "title": title, "data": data}
        self.item.user_properties.append((EXTRA, json.dumps(payload)))

    def _record(self, relation: str, a: "Run | Arm", b: "Run | Arm", a_label, b_label) -> None:
        expected = RELATION_OF_KIND[self.claim.kind]
        if relation != expected:
            pytest.fail(f"claim {self.claim.name!r} is pre-registered as {self.claim.kind}: "
                        f"call evidence.{expected}(), not evidence.{relation}()", pytrace=False)
        a, b = Arm.of(a), Arm.of(b)
        runs = {r.key: r for r in a.runs + b.runs}
        failed = [f"{r.label}: {r.reason}" for r in runs.values() if not r.ok]
        failed += [f"{arm.label}: {arm.reason}" for arm in (a, b) if arm.value is None and arm.reason and not failed]
        obs = {
            "claim": self.claim.name,
            "relation": relation,
            "cell": self.cell,
            "seed": self.seed,
            "a_label": a_label or a.label,
            "b_label": b_label or b.label,
            "a": a.value,
            "b": b.value,
            "a_keys": [r.key for r in a.runs],
            "b_keys": [r.key for r in b.runs],
            "failed": failed,
            "runs": [run_summary(r) for r in runs.values()],
        }
        self.item.user_properties.append((OBSERVATION, json.dumps(obs)))
        if failed:
            pytest.fail("run failed: " + "; ".join(failed), pytrace=False)


def run_summary(run: Run) -> dict:
    res = run.result
    return {
        "key": run.key,
        "norm": run.config.get("norm"),
        "ok": run.ok,
        "accuracy": run.accuracy,
        "cached": run.cached,
        "device": getattr(res, "device", None),
        "wall_s": getattr(res, "wall_s", None),
        "images_per_s": getattr(res, "images_per_s", None),
        "steps": getattr(res, "steps", None),
        "best_accuracy": getattr(res, "best_accuracy", None),
        "history": getattr(res, "history", None),
        "norm_mean": getattr(res, "norm_mean", None),
        "norm_std": getattr(res, "norm_std", None),
        "metrics": getattr(res, "metrics", None),
        "bn_recalibration": run.config.get("bn_recalibration"),
        "cuda": (getattr(res, "meta", None) or {}).get("cuda"),
        "threads": (getattr(res, "meta", None) or {}).get("threads"),
    }
