"""FixRes: train at a low resolution, test at a higher one, then fix the classifier at that one.

Claim    With RandomResizedCrop training at resolution r (torchvision's defaults, as in the source:
         area 8-100%, aspect 3/4-4/3), objects look larger in training than in
         test images, so (a) testing at a higher resolution beats testing at r, and (b) fine-tuning
         at the test resolution with the test-time preprocessing (only the classifier trains; the
         last BatchNorm re-estimates its running statistics; everything else frozen, as in the FixRes
         code) improves further.
Source   004 (a summary of Touvron et al. 2019, "Fixing the train-test resolution discrepancy").
H1       (a) acc(train r, test R) - acc(train r, test r) > 0, R the dataset's native side and
         r about 0.75 R (20 for 28 px, 24 for 32 px, 48 for 64 px).
         (b) acc(FixRes fine-tuned at R) - acc(train r, test R) > 0.
Test     one-sided paired t-tests over seeds; Holm across cells; alpha 0.05.
Seeds    the profile's; with --seeds auto, looks at 3, 5 and 8 seeds (O'Brien-Fleming).
Table    train resolution (r, R) x test resolution accuracy, as in the source's table.
Test-time preprocessing: the whole image resized to the test side (small images have no margin to
crop), so the test object size is the image's; the FixRes stage trains on it.
"""
import numpy as np
import pytest

from harness.datasets import get_dataset
from harness.observations import Arm, Heatmap

MODELS = ("resnet50", "resnet18", "densenet121")
CELLS = dict(models=MODELS, datasets=("cifar10", "tiny_imagenet_200"), cells=(("efficientnet_lite0", "fashion_mnist"),))


def sides(dataset: str) -> tuple[int, int, tuple[int, ...]]:
    native = get_dataset(dataset).size
    low = int(round(0.75 * native / 4) * 4)
    tests = tuple(sorted({low, native, int(round(1.15 * native / 4) * 4), int(round(1.3 * native / 4) * 4)}))
    return low, native, tests


def fixres_runs(finetune, profile, model, dataset, seed):
    low, native, tests = sides(dataset)
    stage = {"fixres_epochs": profile.fixres_epochs}
    runs = {train: finetune(model=model, dataset=dataset, norm="pretrain", seed=seed, augment="random_resized_crop",
                            resolution=train, test_resolutions=tests, fixres_resolution=native, **stage)
            for train in (low, native)}
    for train, run in runs.items():  # asserted, not assumed: the resolutions and the frozen layers
        if run.ok:
            assert run.result.meta["resolution"] == train
            assert run.result.meta["fixres_steps"] > 0 and len(run.result.meta["fixres_trainable"]) == 2
    return low, native, tests, runs


def record_table(evidence, low, native, tests, runs):
    z = tuple(tuple((run.result.metrics[f"test@{t}"] * 100 if run.ok else np.nan) for t in tests) for run in runs.values())
    evidence.heatmap("train x test resolution accuracy", Heatmap("test resolution", "train resolution", tests, (low, native), z))


@pytest.mark.claim("fixres_test_res", title="testing above the train resolution beats testing at it",
                   source="004; Touvron et al. 2019", kind="superiority", test="paired_t", alpha=0.05,
                   min_seeds=3, looks=(3, 5, 8), **CELLS)
def test_higher_test_resolution_helps(finetune, evidence, profile, model, dataset, seed):
    low, native, tests, runs = fixres_runs(finetune, profile, model, dataset, seed)
    record_table(evidence, low, native, tests, runs)
    run = runs[low]
    evidence.greater(Arm.of_run(run, f"test@{native}", f"train {low}, test {native}"),
                     Arm.of_run(run, f"test@{low}", f"train {low}, test {low}"))


@pytest.mark.claim("fixres_finetune", title="FixRes fine-tuning at the test resolution helps further",
                   source="004; Touvron et al. 2019", kind="superiority", test="paired_t", alpha=0.05,
                   min_seeds=3, looks=(3, 5, 8), **CELLS)
def test_fixres_finetuning_helps(finetune, evidence, profile, model, dataset, seed):
    low, native, tests, runs = fixres_runs(finetune, profile, model, dataset, seed)
    run = runs[low]
    evidence.greater(Arm.of_run(run, f"fixres@{native}", f"train {low}, FixRes at {native}"),
                     Arm.of_run(run, f"test@{native}", f"train {low}, test {native}"))
