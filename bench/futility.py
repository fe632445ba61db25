"""What the sequential plans' futility stop costs and saves: power against seeds, through the code
the report uses (harness.verdicts.sequential_rows, conditional_power), on simulated cells.

    python bench/futility.py [--trials 600]      # about 6 minutes on one core

Cells are built as the default's are: two arms counted on 2,000 test images, paired differences
spreading about 0.85 point (a seed effect the arms share, one of each arm's own), under the
default's three kinds of claim (superiority without a margin, superiority with a 1-point margin and
equivalence within 1 point), looks at 3, 5 and 8 seeds, alpha 0.05 over a family of two cells. For
each true effect the table gives, per futility threshold (the conditional power below which an
interim look stops an undecided cell), the share of cells ending in each verdict and the mean
seeds a cell ran. A threshold is worth its seeds where the verdicts barely move.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.claims import ClaimSpec  # noqa: E402
from harness.verdicts import conditional_power, sequential_rows  # noqa: E402

IMAGES = 2000
LOOKS = (3, 5, 8)
FAMILY = 2
THRESHOLDS = (0.0, 0.05, 0.1, 0.2)  # 0: no futility stop
KINDS = {
    "superiority, no margin": dict(kind="superiority"),
    "superiority, margin 1": dict(kind="superiority", margin=1.0),
    "equivalence, margin 1": dict(kind="equivalence", margin=1.0),
}
EFFECTS = (0.0, 0.5, 1.0)  # points


def claim(**prereg) -> ClaimSpec:
    return ClaimSpec(**{"name": "c", "title": "c", "source": "bench", "cells": (("m", "d"),), "looks": LOOKS,
                        "futility": None, **prereg})


def cells(rng, trials: int, effect: float) -> np.ndarray:
    """Differences a - b in points, (trials, 8), on the 2,000-image grid."""
    shared = rng.normal(0, 0.5, (trials, LOOKS[-1]))
    acc_b = 0.80 + (shared + rng.normal(0, 0.6, shared.shape)) / 100
    acc_a = 0.80 + (effect + shared + rng.normal(0, 0.6, shared.shape)) / 100
    ka, kb = (np.rint(np.clip(x, 0, 1) * IMAGES) for x in (acc_a, acc_b))
    return 100 * ka / IMAGES - 100 * kb / IMAGES


def outcomes(threshold: float, verdict: np.ndarray, stop: np.ndarray, powers: np.ndarray) -> tuple[dict, float]:
    """Verdict shares and mean seeds when a cell stops at the first undecided interim look whose
    conditional power is below `threshold` (powers: (trials, interim looks), NaN where decided)."""
    final = verdict.copy()
    seeds = np.array([LOOKS[s] if s >= 0 else LOOKS[-1] for s in stop], dtype=float)
    for i in range(len(verdict)):
        for j in range(len(LOOKS) - 1):
            if powers[i, j] < threshold:  # NaN (decided at or before look j) never is
                final[i], seeds[i] = "inconclusive", LOOKS[j]
                break
    names = ("supported", "refuted", "negligible", "inconclusive")
    return {v: float(np.mean(final == v)) for v in names}, float(seeds.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600, help="simulated cells per row. Default: %(default)r")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error(f"--trials must be a positive number of cells, got {args.trials}")
    rng = np.random.default_rng(20261207)
    step = 100 / IMAGES
    print(f"{args.trials:,} simulated cells per row, looks {LOOKS}, alpha 0.05 / {FAMILY} cells, k/{IMAGES}; "
          f"futility 0 = no stop\n")
    print("| claim | true effect | futility | supported | refuted | negligible | inconclusive | mean seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for label, prereg in KINDS.items():
        spec = claim(**prereg)
        for effect in EFFECTS:
            D = cells(rng, args.trials, effect)
            verdict, stop, *_ = sequential_rows(spec, D, FAMILY, step)
            powers = np.full((len(D), len(LOOKS) - 1), np.nan)
            for i, d in enumerate(D):
                for j, n in enumerate(LOOKS[:-1]):
                    if stop[i] != -1 and stop[i] <= j:
                        break
                    powers[i, j] = conditional_power(spec, d[:n], FAMILY, step)
            for threshold in THRESHOLDS:
                shares, seeds = outcomes(threshold, verdict, stop, powers)
                print(f"| {label} | {effect:+.1f} | {threshold:g} | " + " | ".join(
                    f"{shares[v]:.3f}" for v in ("supported", "refuted", "negligible", "inconclusive"))
                      + f" | {seeds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
