"""Other normalizations: per-image standardisation and per-image min-max against dataset stats.

Claim    (a) Standardising each image by its own mean and std ("instance") gives lower accuracy
         than the dataset's stats. (b) Scaling each image to [0, 1] by its own min and max
         ("minmax") is as good as the dataset's stats.
Source   000, Table 3 (one seed; dataset stats minus instance: -0.26 to +4.03 points, instance
         winning on ResNet-50/SVHN; minmax minus dataset stats: -1.08 to +0.55).
H1       (a) acc(dataset) - acc(instance) > 0. (b) |acc(minmax) - acc(dataset)| < 1 point.
Test     (a) one-sided paired t-test; (b) TOST on the paired t-test; Holm across cells; alpha 0.05.
Margin   1.0 accuracy point. (a) 10 of 000's 16 gaps (dataset minus instance) exceed 1 point, the
         effect its Table 3 shows (its text draws no conclusion on instance): a smaller effect is
         "negligible". (b) 000 calls min-max "surprisingly good ... in some cases" at gaps of -1.08 to
         +0.55 from dataset stats; +-1 point holds 15 of its 16.
Seeds    the profile's; with --seeds auto, looks at 3, 5 and 8 seeds (O'Brien-Fleming).
"""
import pytest

from harness.recipes import SOURCE_DATASETS, SOURCE_MODELS, fair_test

SOURCE = dict(models=SOURCE_MODELS, datasets=SOURCE_DATASETS, cells=(("efficientnet_lite0", "fashion_mnist"),))


@pytest.mark.claim("instance_norm", title="per-image standardisation is worse than dataset stats",
                   source="000 Table 3",
                   fair_test=fair_test(), kind="superiority", test="paired_t", alpha=0.05, margin=1.0,
                   margin_why="10 of 000's 16 gaps (dataset minus instance, -0.26 to +4.03) exceed it",
                   min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_instance_is_worse(finetune, evidence, model, dataset, seed):
    own = finetune(model=model, dataset=dataset, norm="dataset", seed=seed)
    instance = finetune(model=model, dataset=dataset, norm="instance", seed=seed)
    evidence.greater(own, instance)


@pytest.mark.claim("minmax_norm", title="per-image min-max is equivalent to dataset stats",
                   source="000 Table 3",
                   fair_test=fair_test(), kind="equivalence", test="paired_t", alpha=0.05, margin=1.0,
                   margin_why="000 calls min-max 'surprisingly good ... in some cases' at gaps of -1.08 to +0.55 from "
                              "dataset stats; 1 point holds 15 of its 16",
                   min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_minmax_is_equivalent(finetune, evidence, model, dataset, seed):
    minmax = finetune(model=model, dataset=dataset, norm="minmax", seed=seed)
    own = finetune(model=model, dataset=dataset, norm="dataset", seed=seed)
    evidence.equivalent(minmax, own)
