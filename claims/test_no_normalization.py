"""No normalization: two sources, two opposite claims, tested on the same runs.

Claim    (a) Source 001: normalizing with the weights' pretraining stats beats feeding [0, 1]
         pixels unnormalized. (b) Source 003: no normalization is just as good.
Source   001 experiment 1.1 (ResNet-18/34, one run each, read off curves); 003 (forum, no numbers).
H1       (a) acc(pretrain) - acc(none) > 0. (b) |acc(none) - acc(pretrain)| < 1 point.
Test     (a) one-sided paired t-test; (b) TOST on the paired t-test; Holm across cells; alpha 0.05.
Margin   1.0 accuracy point. Neither source prints a number (001 reads curves; 003: "not much
         difference ... in final accuracy"); 000 calls per-image min-max "surprisingly good ... in some
         cases" at gaps of -1.08 to +0.55 from dataset stats: the scale at which these sources see no
         clear difference between input scalings. In (a) a smaller effect is "negligible".
Seeds    the profile's; with --seeds auto, looks at 3, 5 and 8 seeds (O'Brien-Fleming).
"""
import pytest

from harness.recipes import SOURCE_DATASETS, SOURCE_MODELS, fair_test

SOURCE = dict(models=SOURCE_MODELS, datasets=SOURCE_DATASETS, cells=(("efficientnet_lite0", "fashion_mnist"),))


@pytest.mark.claim("pretrain_beats_none", title="pretraining stats beat no normalization",
                   source="001 exp. 1.1",
                   fair_test=fair_test(), kind="superiority", test="paired_t", alpha=0.05, margin=1.0,
                   margin_why="neither source prints a number; 000 calls per-image min-max 'surprisingly good ... in "
                              "some cases' at gaps of -1.08 to +0.55 from dataset stats",
                   min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_pretrain_beats_none(finetune, evidence, model, dataset, seed):
    pretrain = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    evidence.greater(pretrain, none)


@pytest.mark.claim("none_as_good", title="no normalization is as good as pretraining stats",
                   source="003", fair_test=fair_test(), kind="equivalence", test="paired_t", alpha=0.05, margin=1.0,
                   margin_why="neither source prints a number; 000 calls per-image min-max 'surprisingly good ... in "
                              "some cases' at gaps of -1.08 to +0.55 from dataset stats",
                   min_seeds=3, looks=(3, 5, 8), **SOURCE)
def test_none_is_as_good(finetune, evidence, model, dataset, seed):
    none = finetune(model=model, dataset=dataset, norm="none", seed=seed)
    pretrain = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    evidence.equivalent(none, pretrain)
