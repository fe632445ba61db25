"""No normalization: two sources, two opposite claims, tested on the same runs.

Claim    (a) Source 001: normalizing with the weights' pretraining stats beats feeding [0, 1]
         pixels unnormalized. (b) Source 003: no normalization is just as good, in final accuracy.
         (c) Source 003: no normalization makes no difference in training time either. The sources'
         arm is ImageNet's mean/std (001: "ImageNet Custom Stats vs None"; 003: "normalize the input
         image with mean=[0.485, 0.456, 0.406] and std=[0.229, 0.224, 0.225]") on ImageNet-pretrained
         torchvision models, where those are the pretraining stats; (a) and (b) are also tested with
         ImageNet's values on EfficientNet-Lite0, pretrained at 0.5/0.5 (`imagenet_beats_none`,
         `none_as_good_as_imagenet`). Arms are labelled by their values ("ImageNet", "pretrain (0.5/0.5)").
Source   001 experiment 1.1 (ResNet-18/34, one run each, read off curves; "Using custom ImageNet stats for
         the pytorch pretrained models provides better results than without normalisation as it is
         trained on ImageNet"); 003 (forum, no numbers: "there is not much difference in either the
         training time or final accuracy if the input image is not normalized at all").
H1       (a) acc(pretrain) - acc(none) > 0. (b) |acc(none) - acc(pretrain)| < 1 point.
         (c) |L(none) - L(pretrain)| < 5 points, where L is the run's mean training loss over the first
         quarter of its optimizer steps as a share of the chance-level loss ln(classes): how much of the
         untrained loss is left early in training. The runs share every step count, batch and data
         order, so "training time" is how fast the loss falls per step: a run that learns more slowly
         keeps more of its loss after the same steps. Wall-clock time is no measure of it here: the
         arms run the same steps, and a normalization costs one multiply-add per pixel.
Test     (a) one-sided paired t-test; (b), (c) TOST on the paired t-test; Holm across cells; alpha 0.05.
Margin   (a) 0.4 point, as dataset_stats: 001's "slightly above ... most of the epochs" is a gap of the
         size 000 Table 2 prints between two normalizations (-0.42 to +0.73 points), and its three largest
         are what a reader takes as an effect; a smaller effect is "negligible". (b) 1.0 accuracy point.
         Neither source prints a number (001 reads curves; 003: "not much difference ... in final
         accuracy"); 000 calls per-image min-max "surprisingly good ... in some cases" at gaps of -1.08 to
         +0.55 from dataset stats: the scale at which these sources see no clear difference between input
         scalings. (c) 5 points of ln(classes), ours, fixed before any run: 003 names no size ("not much
         difference"); 5 points is a twentieth of the loss an untrained head starts from, so a run
         within it has lost about as much of that loss after the same steps.
Seeds    the profile's; with --seeds auto, looks at 3, 5 and 8 seeds (O'Brien-Fleming).
"""
import math

import pytest

from harness.datasets import get_dataset
from harness.observations import Arm
from harness.recipes import SOURCE_DATASETS, SOURCE_MODELS, fair_test, pretrain_label

OFFLINE = (("efficientnet_lite0", "fashion_mnist"),)
SOURCE = dict(models=SOURCE_MODELS, datasets=SOURCE_DATASETS, cells=OFFLINE)
EQUIVALENCE_WHY = ("neither source prints a number; 000 calls per-image min-max 'surprisingly good ... in some cases' "
                   "at gaps of -1.08 to +0.55 from dataset stats")
SUPERIORITY_WHY = ("neither source prints a number; 001's 'slightly above' is a gap of the size 000 Table 2 prints "
                   "between two normalizations (-0.42 to +0.73): its three largest are what a reader takes as an "
                   "effect, so an effect below 0.4 point, smaller than each, is 'negligible' (as in dataset_stats)")
SPEED_MARGIN = 5.0  # points of ln(classes)


@pytest.mark.claim("pretrain_beats_none", title="pretraining stats beat no normalization",
                   source="001 exp. 1.1",
                   fair_test=fair_test(0.4), kind="superiority", test="paired_t", alpha=0.05, margin=0.4,
                   margin_why=SUPERIORITY_WHY, min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_pretrain_beats_none(finetune, evidence, model, dataset, seed):
    pretrain = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    evidence.greater(pretrain, none, a_label=pretrain_label(model))


@pytest.mark.claim("imagenet_beats_none",
                   title="ImageNet's mean/std beat no normalization (weights not pretrained with them)",
                   source="001 exp. 1.1 ('ImageNet Custom Stats vs None')", cells=OFFLINE,
                   fair_test=fair_test(0.4), kind="superiority", test="paired_t", alpha=0.05, margin=0.4,
                   margin_why=SUPERIORITY_WHY, min_seeds=3, looks=(3, 5, 8))
def test_imagenet_beats_none(finetune, evidence, model, dataset, seed):
    imagenet = finetune(model=model, dataset=dataset, norm="imagenet", seed=seed)
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    evidence.greater(imagenet, none, a_label="ImageNet")


@pytest.mark.claim("none_as_good", title="no normalization is as good as pretraining stats",
                   source="003", fair_test=fair_test(), kind="equivalence", test="paired_t", alpha=0.05, margin=1.0,
                   margin_why=EQUIVALENCE_WHY, min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_none_is_as_good(finetune, evidence, model, dataset, seed):
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    pretrain = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    evidence.equivalent(none, pretrain, b_label=pretrain_label(model))


@pytest.mark.claim("none_as_good_as_imagenet",
                   title="no normalization is as good as ImageNet's mean/std (weights not pretrained with them)",
                   source="003 (with ImageNet's mean/std)", cells=OFFLINE, fair_test=fair_test(), kind="equivalence",
                   test="paired_t", alpha=0.05, margin=1.0, margin_why=EQUIVALENCE_WHY, min_seeds=3, looks=(3, 5, 8))
def test_none_is_as_good_as_imagenet(finetune, evidence, model, dataset, seed):
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    imagenet = finetune(model=model, dataset=dataset, norm="imagenet", seed=seed)
    evidence.equivalent(none, imagenet, b_label="ImageNet")


def early_loss(run, label: str, dataset: str) -> Arm:
    """The run's mean training loss over the first quarter of its steps, as a share of the
    chance-level loss ln(classes); no value when the run failed, recorded no quarters or the
    dataset's classes are unknown before decoding."""
    classes = get_dataset(dataset).num_classes
    quarters = (run.result.meta.get("train_loss_quarters") or []) if run.ok else []
    if not run.ok or not quarters or not classes:
        why = run.reason if not run.ok else "no loss by quarters recorded" if not quarters else "classes unknown"
        return Arm(label, None, (run,), why)
    return Arm(label, quarters[0] / math.log(classes), (run,), None)


@pytest.mark.claim("none_trains_as_fast", title="no normalization trains as fast as pretraining stats",
                   source="003 ('not much difference in either the training time ...')", fair_test=fair_test(),
                   kind="equivalence", test="paired_t", alpha=0.05, margin=SPEED_MARGIN,
                   margin_why="003 names no size ('not much difference'); ours: 5 points of the chance-level loss "
                              "ln(classes), a twentieth of the loss an untrained head starts from",
                   min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_none_trains_as_fast(finetune, evidence, model, dataset, seed):
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    pretrain = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    what = "loss left after the first quarter of steps (share of ln classes)"
    evidence.equivalent(early_loss(none, f"none: {what}", dataset),
                        early_loss(pretrain, f"{pretrain_label(model)}: {what}", dataset))
