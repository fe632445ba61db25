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


class Evidence:
    def __init__(self, item: pytest.Item, claim: ClaimSpec, cell: dict, seed: int):
        self.item, self.claim, self.cell, self.seed = item, claim, cell, seed

    def greater(self, a: Run, b: Run, *, a_label: str | None = None, b_label: str | None = None) -> None:
        """This seed's pair for a superiority claim: H1 a > b."""
        self._record("greater", a, b, a_label, b_label)

    def equivalent(self, a: Run, b: Run, *, a_label: str | None = None, b_label: str | None = None) -> None:
        """This seed's pair for an equivalence claim: H1 |a - b| < the claim's margin."""
        self._record("equivalent", a, b, a_label, b_label)

    def noninferior(self, a: Run, b: Run, *, a_label: str | None = None, b_label: str | None = None) -> None:
        """This seed's pair for a non-inferiority claim: H1 a > b - the claim's margin."""
        self._record("noninferior", a, b, a_label, b_label)

    def _record(self, relation: str, a: Run, b: Run, a_label, b_label) -> None:
        expected = RELATION_OF_KIND[self.claim.kind]
        if relation != expected:
            pytest.fail(f"claim {self.claim.name!r} is pre-registered as {self.claim.kind}: "
                        f"call evidence.{expected}(), not evidence.{relation}()", pytrace=False)
        failed = [r for r in (a, b) if not r.ok]
        obs = {
            "claim": self.claim.name,
            "relation": relation,
            "cell": self.cell,
            "seed": self.seed,
            "a_label": a_label or a.label,
            "b_label": b_label or b.label,
            "a": a.accuracy,
            "b": b.accuracy,
            "a_key": a.key,
            "b_key": b.key,
            "failed": [f"{r.label}: {r.reason}" for r in failed],
            "runs": [run_summary(a), run_summary(b)],
        }
        self.item.user_properties.append((OBSERVATION, json.dumps(obs)))
        if failed:
            pytest.fail("run failed: " + "; ".join(obs["failed"]), pytrace=False)


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
        "bn_recalibration": run.config.get("bn_recalibration"),
        "cuda": (getattr(res, "meta", None) or {}).get("cuda"),
    }
