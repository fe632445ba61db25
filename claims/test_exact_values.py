"""The exact normalization values don't matter.

Claim    (a) Stats rounded to one digit work as well as the exact ones (0.1/0.3 for 0.1307/0.3081).
         (b) Over source 002's mean x std grid, accuracy has a plateau: most cells come within a
         small margin of the best. (c) Source 002's ResNet scan measured zero-shot accuracy: its loop
         `for epoch in range(1, epochs)` with epochs = 1 trained nothing. A zero-shot scan is no
         evidence about fine-tuning: fine-tuning beats the best zero-shot cell.
Source   002 (LeNet on MNIST from scratch, Adadelta; a 15 x 15 grid; one seed per cell).
H1       (a) |acc(1 digit) - acc(exact)| < 1 point. (b) share of grid cells within 2 points of the
         seed's best cell > 50%. (c) acc(fine-tuned, pretrain stats) - max over grid of zero-shot acc > 0.
Test     (a) TOST, (b) and (c) one-sided, all on the paired t-test; Holm across cells; alpha 0.05.
Margin   (a) 1.0 point; (b) 2.0 points from the best cell and a 50% share, stated before any run.
Seeds    (a) the profile's, with --seeds auto looks at 3, 5 and 8; (b) and (c) 3 seeds (scans).
Grid     mean linspace(-2, 3) x std geomspace(0.02, 2), the profile's grid_size per axis (15 in paper).
"""
import numpy as np
import pytest

from harness.observations import Arm, Heatmap
from harness.recipes import fixed_norm, mean_std_grid, plateau_share, recipe_for

PLATEAU_MARGIN = 2.0  # accuracy points from the seed's best cell
PLATEAU_SHARE = 0.5  # share of cells the claim commits to


@pytest.mark.claim("rounded_stats", title="one-digit stats are equivalent to the exact ones", source="002",
                   cells=(("lenet", "mnist"), ("efficientnet_lite0", "fashion_mnist"), ("resnet18", "cifar10")),
                   kind="equivalence", test="paired_t", alpha=0.05, margin=1.0, min_seeds=3, looks=(3, 5, 8))
def test_rounded_stats_are_equivalent(finetune, evidence, profile, model, dataset, seed):
    rounded = finetune(model=model, dataset=dataset, norm="dataset_1digit", seed=seed, **recipe_for(model, profile))
    exact = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, **recipe_for(model, profile))
    evidence.equivalent(rounded, exact)


def scan(finetune, model, dataset, seed, profile, **settings):
    """Runs of the mean x std grid for one seed: (means, stds, runs as rows of stds per mean)."""
    means, stds = mean_std_grid(profile)
    runs = [[finetune(model=model, dataset=dataset, norm=fixed_norm(m, s), seed=seed, **settings) for s in stds]
            for m in means]
    return means, stds, runs


def heatmap(means, stds, values) -> Heatmap:
    z = 100 * np.asarray(values, dtype=float)
    return Heatmap("std", "mean", tuple(stds.tolist()), tuple(means.tolist()), tuple(map(tuple, z.tolist())))


@pytest.mark.claim("plateau", title="accuracy has a plateau over the mean x std grid", source="002",
                   cells=(("lenet", "mnist"), ("efficientnet_lite0", "fashion_mnist"), ("resnet18", "cifar10")),
                   kind="superiority", test="paired_t", alpha=0.05, min_seeds=3, max_seeds=3)
def test_plateau(finetune, evidence, profile, model, dataset, seed):
    means, stds, runs = scan(finetune, model, dataset, seed, profile, **recipe_for(model, profile, scan=True))
    flat = [r for row in runs for r in row]
    acc = [[r.accuracy if r.ok else np.nan for r in row] for row in runs]
    evidence.heatmap("fine-tuned accuracy over the grid", heatmap(means, stds, acc))
    share = plateau_share(np.nan_to_num(np.asarray(acc, dtype=float)), PLATEAU_MARGIN) if all(r.ok for r in flat) else None
    evidence.greater(Arm(f"share within {PLATEAU_MARGIN} pt of best", share, tuple(flat)),
                     Arm.constant("stated share", PLATEAU_SHARE))


@pytest.mark.claim("zero_shot_scan", title="a zero-shot scan says nothing about fine-tuning", source="002",
                   cells=(("efficientnet_lite0", "fashion_mnist"), ("resnet18", "cifar10")),
                   kind="superiority", test="paired_t", alpha=0.05, min_seeds=3, max_seeds=3)
def test_zero_shot_scan(finetune, evidence, profile, model, dataset, seed):
    means, stds, runs = scan(finetune, model, dataset, seed, profile, train=False)
    assert all(r.result is None or r.result.steps == 0 for row in runs for r in row)  # really zero-shot
    acc = [[r.accuracy for r in row] for row in runs]
    evidence.heatmap("zero-shot accuracy over the grid (no training)", heatmap(means, stds, acc))
    best = max((r for row in runs for r in row), key=lambda r: r.accuracy)
    tuned = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    evidence.greater(tuned, best, a_label="fine-tuned (pretrain stats)", b_label="best zero-shot cell")
