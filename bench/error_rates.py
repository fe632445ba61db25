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
from harness.norms import CHOOSABLE  # noqa: E402
from harness.recommend import MARGIN, decide  # noqa: E402
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
    parser.add_argument("--recommend-trials", type=int, default=10_000,
                        help="simulated cells per row of the recommendation rule. Default: %(default)r")
    args = parser.parse_args()
    trials = args.trials
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
    recommendation_rates(np.random.default_rng(20261207), args.recommend_trials)


def recommended_cells(rng, trials: int, means: list[float], looks: tuple[int, ...]) -> list:
    """The recommendation rule on simulated cells of len(means) arms (points) counted on 2,000 test
    images: a seed effect the arms share and one of each arm's own (0.6 point, so paired differences
    spread about 0.85 point, as the offline cell's do); decided at each look (Bonferroni over the
    looks) and stopped once decided, as the sequential plan does."""
    n, out = 2000, []
    p = np.asarray(means) / 100
    arms = list(CHOOSABLE[:len(means)])
    for _ in range(trials):
        acc = p[:, None] + rng.normal(0, 0.005, looks[-1]) + rng.normal(0, 0.006, (len(p), looks[-1]))
        k = np.rint(np.clip(acc, 0, 1) * n).astype(int)
        for look in looks:
            rec = decide({a: k[i, :look].tolist() for i, a in enumerate(arms)}, n, looks=len(looks))
            if rec.decided or look == looks[-1]:
                break
        out.append(rec)
    return out


def recommendation_rates(rng, trials: int) -> None:
    print(f"recommendation rule (harness.recommend), {trials:,} simulated cells per row, six arms, k/2000:")
    for looks in ((3, 5, 8), (8,), (16,)):
        aa = recommended_cells(rng, trials, [85.0] * 6, looks)
        false = np.array([r.decision == "use" or bool(r.avoid) for r in aa])
        print(f"  A/A, seeds {looks}: a false 'use X' or 'avoid j' {rate(false)}; "
              f"all six named equivalent {rate(np.array([len(r.use) == 6 for r in aa]))}")
        edge = recommended_cells(rng, trials, [85.0 + MARGIN] + [85.0] * 5, looks)
        false = np.array([bool(set(r.use) - {CHOOSABLE[0]}) for r in edge])
        far = recommended_cells(rng, trials, [85.0] * 5 + [82.0], looks)
        print(f"  one arm better by the margin, seeds {looks}: another named usable {rate(false)}; "
              f"one arm 3 points worse: avoided {rate(np.array([r.avoid == (CHOOSABLE[5],) for r in far]))}")


if __name__ == "__main__":
    main()
