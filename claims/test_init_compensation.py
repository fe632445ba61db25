"""Initialisation compensates for a bad normalization.

Claim    At a bad normalization, rescaling conv1's initial weight and bias recovers plateau accuracy.
         The bad cells: source 002's own (mean -1, std 0.1) and the worst cell of its mean x std grid.
Source   002 (Optuna over weight and bias multipliers in [0.05, 20], log scale, at mean -1, std 0.1).
H1       (a) acc(bad cell, rescaled init) > acc(dataset stats) - 2 points (non-inferiority);
         (b) acc(bad cell, rescaled init) > acc(bad cell, default init).
Test     one-sided paired t-tests; Holm across the two bad cells; alpha 0.05.
Margin   (a) 2.0 points, the plateau margin of test_exact_values: 002 asks whether the rescued cell is
         back on the plateau ("exceeding the 95th percentile of the previously computed range") and prints
         no accuracy, so the plateau's width is ours (see test_exact_values). (b) no margin: 002's "a clear
         yes" is a direction.
Search   weight x bias multipliers geomspace(0.05, 20, 5) each (002's range, log scale), chosen on a
         validation split held out of the training data (never on the test set, which 002's Optuna
         objective used), search seed 1000. The worst cell is the lowest mean test accuracy of
         test_exact_values' grid (seeds 0-2); a failed grid or search run makes the cell invalid.
"""
import numpy as np
import pytest

from harness.observations import Arm
from harness.recipes import fair_test, fixed_norm, lenet_002, mean_std_grid

MULTIPLIERS = np.geomspace(0.05, 20.0, 5)  # 002's range, log scale, for the weight and the bias
SEARCH_SEED = 1000
GRID_SEEDS = range(3)
CELL_002 = fixed_norm(-1.0, 0.1)  # where 002 searched
WHERE = pytest.mark.parametrize("where", ["cell_002", "worst_cell"])


def worst_cell(finetune, model, dataset, profile, recipe) -> tuple[str | None, list]:
    """The grid cell with the lowest mean accuracy over GRID_SEEDS, or None and the failed runs: a
    failed run has no accuracy to rank, so it makes the claim's cell invalid rather than "worst"."""
    means, stds = mean_std_grid(profile)
    runs = {fixed_norm(m, s): [finetune(model=model, dataset=dataset, norm=fixed_norm(m, s), seed=seed, **recipe)
                               for seed in GRID_SEEDS] for m in means for s in stds}
    failed = [r for rs in runs.values() for r in rs if r.failed]
    if failed:
        return None, failed
    return min(runs, key=lambda n: np.mean([r.accuracy for r in runs[n]])), []


def best_init(finetune, model, dataset, norm, recipe) -> tuple[tuple[float, float] | None, list]:
    """The (weight, bias) multipliers with the best validation accuracy; failed trials are no
    candidates. None and the failed trials when none is left."""
    trials = {(float(w), float(b)): finetune(model=model, dataset=dataset, norm=norm, seed=SEARCH_SEED,
                                             evaluate_on="val", init_scale=(float(w), float(b)), **recipe)
              for w in MULTIPLIERS for b in MULTIPLIERS}
    candidates = {k: r for k, r in trials.items() if not r.failed}
    if not candidates:
        return None, list(trials.values())
    return max(candidates, key=lambda k: candidates[k].accuracy), []


def search(finetune, model, dataset, profile, recipe, where: str):
    """The bad cell and the init that best rescues it, or the failed runs that leave none."""
    worst, failed = (CELL_002, []) if where == "cell_002" else worst_cell(finetune, model, dataset, profile, recipe)
    if worst is None:
        return None, None, failed
    scale, failed = best_init(finetune, model, dataset, worst, recipe)
    return worst, scale, failed


def failed_arm(label: str, failed: list) -> Arm:
    return Arm(label, None, tuple(failed), "the search's runs failed")


@pytest.mark.claim("init_compensation", title="rescaled conv1 init recovers plateau accuracy at a bad cell",
                   source="002", cells=(("lenet", "mnist"),),
                   fair_test=fair_test(), kind="noninferiority", test="paired_t",
                   alpha=0.05, margin=2.0, min_seeds=3,
                   margin_why="002 asks whether the rescued cell is back on its plateau, and its text holds no accuracy: "
                              "the plateau's width of the plateau claim, ours (002 gives none)")
@WHERE
def test_rescaled_init_recovers_the_plateau(finetune, evidence, profile, model, dataset, where, seed):
    recipe = lenet_002(profile)
    reference = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, **recipe)
    worst, scale, failed = search(finetune, model, dataset, profile, recipe, where)
    if worst is None:
        evidence.noninferior(failed_arm("rescued", failed), reference, b_label="dataset stats")
        return
    rescued = finetune(model=model, dataset=dataset, norm=worst, seed=seed, init_scale=scale, **recipe)
    evidence.noninferior(rescued, reference, a_label="rescaled init at the bad cell", b_label="dataset stats")


@pytest.mark.claim("init_beats_default", title="at a bad cell, rescaled init beats the default init",
                   source="002", cells=(("lenet", "mnist"),),
                   fair_test=fair_test(), kind="superiority", test="paired_t",
                   alpha=0.05, min_seeds=3,
                   margin_why="002's 'a clear yes' is a direction; its text holds no accuracy")
@WHERE
def test_rescaled_init_beats_default(finetune, evidence, profile, model, dataset, where, seed):
    recipe = lenet_002(profile)
    worst, scale, failed = search(finetune, model, dataset, profile, recipe, where)
    if worst is None:
        evidence.greater(failed_arm("rescued init", failed), failed_arm("default init", failed))
        return
    rescued = finetune(model=model, dataset=dataset, norm=worst, seed=seed, init_scale=scale, **recipe)
    default = finetune(model=model, dataset=dataset, norm=worst, seed=seed, **recipe)
    evidence.greater(rescued, default, a_label="rescaled init", b_label="default init")
