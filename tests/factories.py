"""Typed objects for tests that decide or report without training: claims, runs, observations; and a
SIGINT that code drops, for the tests of waits."""
import os
import signal

from harness.claims import ClaimSpec
from harness.config import PROFILES, RunRecord, RunResult
from harness.observations import Arm, Cell, Observation
from harness.protocol import make_config, numerics_for


WOBBLE = (0.8, -0.5, 0.3, -0.9, 0.4, -0.2)  # points, per seed: the spread of plausible paired differences


def judged_seeds(spec: ClaimSpec) -> int:
    """The seeds a rule test judges a claim at: its own fixed number, else 5 (within its cap)."""
    return spec.seeds or min(5, spec.max_seeds or 5)


def spec(name="c", **prereg) -> ClaimSpec:
    fields = {"title": name, "source": "test", "cells": (("m", "d"),), "kind": "superiority", "test": "paired_t",
              "alternative": "greater", "alpha": 0.05, "margin": None, "min_seeds": 3, **prereg}
    return ClaimSpec(name=name, **fields)


def cell(cell_id="m-d") -> Cell:
    model, dataset = cell_id.split("-")
    return Cell((("model", model), ("dataset", dataset)))


def record(norm: str, accuracy: float | None, seed: int = 0, history=None, reason: str | None = None,
           cached: bool = False, wall_s: float = 1.0) -> RunRecord:
    """A run of LeNet on MNIST with `norm`: ok with `accuracy`, or failed with `reason`."""
    cfg = make_config(model="lenet", dataset="mnist", norm=norm, seed=seed, profile=PROFILES["smoke"],
                      numerics=numerics_for("cpu"))
    if reason is not None:
        return RunRecord(cfg.key(), cfg, "failed", None, reason, cached)
    history = history if history is not None else [{"epoch": 1, "train_loss": 1.0, "test_accuracy": accuracy}]
    result = RunResult(accuracy, history, 4, 256, wall_s, 100.0, "cpu (test)", [0.5], [0.25],
                       meta={"threads": 1, "eval_images": 1000})
    return RunRecord(cfg.key(), cfg, "ok", result, None, cached)


def observation(seed: int, a: float | None, b: float | None, cell_id: str = "m-d", claim: str = "c",
                failed: str | None = None, a_label: str = "dataset", b_label: str = "pretrain") -> Observation:
    """One seed's pair of constant arms (no runs), or a pair whose arm a failed with `failed`."""
    arm_a = Arm(a_label, a, (record(a_label, None, seed, reason=failed),)) if failed else Arm(a_label, a)
    return Observation(claim, cell(cell_id), seed, arm_a, Arm(b_label, b))


def swallowed_sigint() -> None:
    """A SIGINT whose KeyboardInterrupt lands in code that drops it, as a finalizer or Ray's wait does."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    except KeyboardInterrupt:
        return
    raise AssertionError("no KeyboardInterrupt was raised")
