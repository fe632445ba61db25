"""Error rates of the verdict rules, measured through the code the report uses, with their
Monte-Carlo standard errors: the numbers the README's statistics section quotes.

    python bench/error_rates.py [--trials 400000]

Cells are built as the harness builds them: per seed, accuracies k / 1000 of two arms (a
Fashion-MNIST test subset), their difference computed in floats, decided on the accuracy grid.
The simulated paths are independent of the sequential calibration's (another random state).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.claims import ClaimSpec  # noqa: E402
from harness.verdicts import judge_rows, sequential_rows  # noqa: E402

IMAGES = 1000


def claim(**prereg) -> ClaimSpec:
    return ClaimSpec(**{"name": "c", "title": "c", "source": "bench", "cells": (("m", "d"),), **prereg})


def aa_sessions(rng, trials: int, n: int, spread_counts: float) -> np.ndarray:
    """A/A differences in points: both arms at 90%, the pair differing by a rounded normal count."""
    kb = rng.binomial(IMAGES, 0.9, (trials, n))
    ka = kb + np.rint(rng.normal(0, spread_counts, (trials, n))).astype(int)
    return 100 * (ka / IMAGES) - 100 * (kb / IMAGES)


def rate(hits: np.ndarray) -> str:
    p = float(np.mean(hits))
    return f"{p:.4f} ± {math.sqrt(p * (1 - p) / hits.size):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400_000, help="simulated cells per row. Default: %(default)r")
    trials = parser.parse_args().trials
    rng = np.random.default_rng(20261206)
    step = 100 / IMAGES
    print(f"{trials:,} simulated A/A cells per row, accuracies k/{IMAGES}; rate ± Monte-Carlo SE; alpha = 0.05")
    for spread in (1.0, 8.0):
        D = aa_sessions(rng, trials, 8, spread)
        for spending in ("obrien_fleming", "pocock"):
            verdict, *_ = sequential_rows(claim(looks=(3, 5, 8), spending=spending), D, 1, step)
            print(f"sequential t, looks (3, 5, 8), {spending:14s} spread {spread:g} count(s): "
                  f"false supported {rate(verdict == 'supported')}, refuted {rate(verdict == 'refuted')}")
        one = judge_rows([(claim(), D[:, :5], step)])[0][:, 0]
        two = judge_rows([(claim(alternative="two-sided"), D[:, :5], step)])[0][:, 0]
        print(f"fixed t, 5 seeds, spread {spread:g} count(s): one-sided supported {rate(one == 'supported')}, "
              f"decisive {rate(np.isin(one, ['supported', 'refuted']))}; "
              f"two-sided decisive {rate(np.isin(two, ['supported', 'refuted']))}")


if __name__ == "__main__":
    main()
