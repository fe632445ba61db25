"""FixRes: train at a low resolution, test at a higher one, then fix the classifier at that one.

Claim    With RandomResizedCrop training at resolution r (torchvision's defaults, as in the source:
         area 8-100%, aspect 3/4-4/3), objects look larger in training than in
         test images, so (a) testing at a higher resolution beats testing at r, and (b) fine-tuning
         at the test resolution with the test-time preprocessing (only the classifier trains; the
         last BatchNorm re-estimates its running statistics; everything else frozen, as in the FixRes
         code) improves further. Source 004's ablation of that stage: (c) re-estimating the last
         BatchNorm adds to training the classifier alone, and (d) the test-time preprocessing adds to
         the training augmentation ("only noticeable in trials where there's a big difference in
         train-time and test-time resolutions", which r/R = 0.57 is). (e) "For a test-time resolution
         fixed at 224, we can lower the train-time resolution from 224 to 128 without sacrificing
         accuracy (Both 77.1%)": training at r, with FixRes at R, is as good as training at R, both
         tested at R.
Source   004 (a summary of Touvron et al. 2019, "Fixing the train-test resolution discrepancy").
H1       r = 0.57 R as in 004's 128 -> 224: the paper profile trains at 128 and tests at 224 (images
         upsampled to it), the CPU profiles at 56 and 96 (r/R = 0.58; Fashion-MNIST's 28-px images upsampled).
         (a) acc(train r, test R) - acc(train r, test r) > 0.
         (b) acc(FixRes fine-tuned at R) - acc(train r, test R) > 0.
         (c) acc(FixRes) - acc(FixRes training the classifier only, last BatchNorm as trained) > 0.
         (d) acc(FixRes) - acc(FixRes on random resized crops instead of test preprocessing) > 0.
         (e) |acc(train r, FixRes at R) - acc(train R, test R)| < 1 point.
         (f) 004: test-time preprocessing for the stage "does not have a significant impact on accuracy"
         when the resolutions are close: from the network trained at R, a stage at R' = 1.14-1.17 R (R/R' =
         0.875 or 0.86: 224 -> 256, 96 -> 112) on test preprocessing against one on random resized crops:
         |difference| < 1 point.
Domain   pre-registered: trained with RandomResizedCrop (the mechanism: objects look larger in
         training than in test images); r/R between 0.5 and 0.65 for (a)-(e) (004's 0.57, "a big
         difference"), at least 0.8 for (f); a pretrained network trained at no less than a quarter of
         its pretraining side (56 px for 224), so its stride-32 feature map is at least 2 x 2 at r
         (004 trains at 128 and above; 16 px of a 224-px network leaves a 1 x 1 map, where apparent
         object size has no meaning). A cell outside is "out of domain": its numbers, no verdict.
Test     one-sided paired t-tests over seeds, TOST for (e) and (f); Holm across cells; alpha 0.05.
Margin   (a)-(d) none: 004's text gives directions and no sizes (its table is an image): (a) "This has
         proven to improve accuracy", (b) "Touvron's method has improved the accuracy", (c) no words
         beyond the ablation table's settings, (d) "only noticeable in trials where there's a big
         difference in train-time and test-time resolutions", which r/R = 0.57 is. (e) 1.0 point: 004
         gives 77.1% for both, equal to the tenth of a point on ImageNet's 50,000 images, and names no
         tolerance ("without sacrificing accuracy"); a tenth of a point is below what our test sets
         resolve (one set's binomial standard error at 90% is 0.3 point on 10,000 images), so the
         margin is ours: the catalogue's equivalence margin of 1 point. (f) the same 1 point: 004 names
         no size for "no significant impact".
Fair     every arm (and the FixRes stage) moves less than 1 point over the last quarter of its
         training: the equivalence margin of (e) and (f), and a point is small beside the effects 004
         describes for (a)-(d).
Seeds    the profile's; with --seeds auto, looks at 3, 5 and 8 seeds (O'Brien-Fleming).
Table    train side x test side accuracy, as in the source's table, with (e): the one claim that reads both networks.
Test-time preprocessing: the whole image resized to the test side (small images have no margin to
crop), so the test object size is the image's; the FixRes stage trains on it. (c) and (d) run from the
same trained network as (b), with the same data order (harness.config.FIXRES_VARIANTS); each network runs
only the variants a claim reads (ABLATION), and a claim trains only the networks it reads (the one at R,
twice the cost of the one at r, only for (e) and (f)). Both test sides
of (a) evaluate with the BatchNorm statistics training leaves, re-estimated on training's own random
resized crops at r (harness.train.recalibrate_bn), so neither side is favoured.
"""
import numpy as np
import pytest

from harness.models import MODELS
from harness.observations import Arm, Heatmap
from harness.recipes import fair_test

MODELS_AXIS = ("resnet50", "resnet18", "densenet121")
CELLS = dict(models=MODELS_AXIS, datasets=("cifar10", "tiny_imagenet_200"), cells=(("efficientnet_lite0", "fashion_mnist"),))
NO_SIZE = "; no size: 004's table is an image, absent from its text"
FAIR = fair_test(1.0, why="1 pt: the equivalence margin of (e) and (f), small beside the effects 004 describes")

RATIO = (0.5, 0.65)  # r/R of "a big difference": 004's 128/224 = 0.57
CLOSE = 0.8  # r/R at least this: resolutions close, 004's "no significant impact" half
DOMAIN_WORDS = {
    "augment": "trained with RandomResizedCrop (004's train augmentation: objects look larger in training than in test)",
    "side": "a pretrained network trained at a quarter of its pretraining side or more (56 px for 224: a stride-32 "
            "feature map of at least 2 x 2 at r; 004 trains at 128 and above)",
}
DOMAIN = {**DOMAIN_WORDS, "ratio": f"r/R between {RATIO[0]} and {RATIO[1]} (004's 128/224 = 0.57, 'a big difference')"}
DOMAIN_CLOSE = {**DOMAIN_WORDS, "ratio": f"r/R at least {CLOSE} (resolutions close, 004's 'no significant impact')"}


def fixres_claim(name: str, title: str, source: str, domain: dict, kind: str, margin_why: str):
    """The marker every FixRes claim shares but for its words: equivalence at the catalogue's 1-point margin."""
    return pytest.mark.claim(name, title=title, source=source, domain=domain, fair_test=FAIR, kind=kind,
                             test="paired_t", alpha=0.05, margin=1.0 if kind == "equivalence" else None,
                             margin_why=margin_why, min_seeds=3, looks=(3, 5, 8), **CELLS)


# the ablation variants each network's claims read: (c) and (d) from the network trained at r, (f) from the one at R
ABLATION = {"low": ("classifier", "bn_train_da"), "high": ("bn_train_da",)}


def fixres_runs(finetune, profile, model, dataset, seed, nets=("low", "high")):
    """Of the network trained at r (tests at r, R, R'; FixRes at R with the ablation's variants of (c) and
    (d)) and the one trained at R (the same tests; FixRes at R' with the variant of (f)), those `nets` a
    claim reads, for one seed: the one at R costs twice the one at r, so a claim that does not read it
    does not train it."""
    low, high, close = profile.fixres_sides
    tests = (low, high, close)
    runs = {train: finetune(model=model, dataset=dataset, norm="pretrain", seed=seed, augment="random_resized_crop",
                            resolution=train, test_resolutions=tests, fixres_resolution=side,
                            fixres_epochs=profile.fixres_epochs, fixres_ablation=ABLATION[which])
            for which, train, side in (("low", low, high), ("high", high, close)) if which in nets}
    for train, run in runs.items():  # asserted, not assumed: the resolutions and the frozen layers
        if run.ok:
            assert run.result.meta["resolution"] == train
            assert run.result.meta["fixres_steps"] > 0 and len(run.result.meta["fixres_trainable"]) == 2
    return low, high, close, runs


def check_domain(evidence, model, train: int, test: int, close: bool = False) -> None:
    """004's domain for this comparison, from the runs' settings (the same for every seed)."""
    evidence.in_domain("augment", True, "random_resized_crop")  # fixres_runs trains every run with it
    pretrained = MODELS.get(model).pretrain_side
    evidence.in_domain("side", pretrained is None or 4 * train >= pretrained,
                       f"r = {train} px of a network pretrained at {pretrained} px")
    ratio = train / test
    evidence.in_domain("ratio", ratio >= CLOSE if close else RATIO[0] <= ratio <= RATIO[1],
                       f"r/R = {train}/{test} = {ratio:.2f}")


def record_table(evidence, low, high, close, runs):
    tests = (low, high, close)
    z = tuple(tuple((run.result.metrics[f"test@{t}"] * 100 if run.ok else np.nan) for t in tests) for run in runs.values())
    evidence.heatmap("train x test side accuracy", Heatmap("test side", "train side", tests, tuple(runs), z))


@fixres_claim("fixres_test_res", "testing above the train resolution beats testing at it",
              "004; Touvron et al. 2019", DOMAIN, "superiority",
              "004: 'This has proven to improve accuracy' (Section 3.3), a direction" + NO_SIZE)
def test_higher_test_resolution_helps(finetune, evidence, profile, model, dataset, seed):
    low, high, close, runs = fixres_runs(finetune, profile, model, dataset, seed, nets=("low",))
    run = runs[low]
    check_domain(evidence, model, low, high)
    evidence.greater(Arm.of_run(run, f"test@{high}", f"train {low}, test {high}"),
                     Arm.of_run(run, f"test@{low}", f"train {low}, test {low}"))


@fixres_claim("fixres_finetune", "FixRes fine-tuning at the test resolution helps further",
              "004; Touvron et al. 2019", DOMAIN, "superiority",
              "004: 'Touvron’s method has improved the accuracy of image classifiers', a direction" + NO_SIZE)
def test_fixres_finetuning_helps(finetune, evidence, profile, model, dataset, seed):
    low, high, close, runs = fixres_runs(finetune, profile, model, dataset, seed, nets=("low",))
    run = runs[low]
    check_domain(evidence, model, low, high)
    evidence.greater(Arm.of_run(run, f"fixres@{high}", f"train {low}, FixRes at {high}"),
                     Arm.of_run(run, f"test@{high}", f"train {low}, test {high}"))


@fixres_claim("fixres_bn", "FixRes: re-estimating the last BatchNorm adds to training the classifier",
              "004 (ablation); Touvron et al. 2019", DOMAIN, "superiority",
              "004's text says nothing of the last BatchNorm beyond its ablation table's settings" + NO_SIZE)
def test_fixres_last_batchnorm_helps(finetune, evidence, profile, model, dataset, seed):
    low, high, close, runs = fixres_runs(finetune, profile, model, dataset, seed, nets=("low",))
    run = runs[low]
    check_domain(evidence, model, low, high)
    evidence.greater(Arm.of_run(run, f"fixres@{high}", "classifier + last BatchNorm"),
                     Arm.of_run(run, f"fixres[classifier]@{high}", "classifier only"))


@fixres_claim("fixres_test_da", "FixRes: test preprocessing beats the training augmentation for the stage",
              "004 (ablation); Touvron et al. 2019", DOMAIN, "superiority",
              "004: test-time preprocessing 'does not have a significant impact on accuracy. It is "
              "only noticeable in trials where there’s a big difference in train-time and test-time "
              "resolutions' (r/R = 0.57 here)" + NO_SIZE)
def test_fixres_test_preprocessing_helps(finetune, evidence, profile, model, dataset, seed):
    low, high, close, runs = fixres_runs(finetune, profile, model, dataset, seed, nets=("low",))
    run = runs[low]
    check_domain(evidence, model, low, high)
    evidence.greater(Arm.of_run(run, f"fixres@{high}", "stage on test preprocessing"),
                     Arm.of_run(run, f"fixres[bn_train_da]@{high}", "stage on random resized crops"))


@fixres_claim("fixres_test_da_close", "FixRes: at close resolutions the stage's preprocessing does not matter",
              "004 (ablation); Touvron et al. 2019", DOMAIN_CLOSE, "equivalence",
              "004: test-time preprocessing 'does not have a significant impact on accuracy' unless "
              "the resolutions differ much, and names no size: the catalogue's equivalence margin")
def test_fixres_preprocessing_is_neutral_when_close(finetune, evidence, profile, model, dataset, seed):
    low, high, close, runs = fixres_runs(finetune, profile, model, dataset, seed, nets=("high",))
    run = runs[high]
    check_domain(evidence, model, high, close, close=True)
    evidence.equivalent(Arm.of_run(run, f"fixres@{close}", "stage on test preprocessing"),
                        Arm.of_run(run, f"fixres[bn_train_da]@{close}", "stage on random resized crops"))


@fixres_claim("fixres_low_res", "training at r with FixRes at R is as good as training at R",
              "004; Touvron et al. 2019", DOMAIN, "equivalence",
              "004 gives 77.1% for both, equal to the tenth of a point on 50,000 images, and names no "
              "tolerance; a tenth is below what a 10,000-image test set resolves (0.3 pt standard "
              "error at 90%): the catalogue's equivalence margin")
def test_low_train_resolution_is_as_good(finetune, evidence, profile, model, dataset, seed):
    low, high, close, runs = fixres_runs(finetune, profile, model, dataset, seed)
    record_table(evidence, low, high, close, runs)
    check_domain(evidence, model, low, high)
    evidence.equivalent(Arm.of_run(runs[low], f"fixres@{high}", f"train {low}, FixRes at {high}"),
                        Arm.of_run(runs[high], f"test@{high}", f"train {high}, test {high}"))
