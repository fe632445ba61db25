"""Dataset stats beat pretraining stats.

Claim    Normalizing the fine-tuning set with its own per-channel mean and std gives higher test
         accuracy than normalizing it with the statistics the weights were pretrained with
         (ImageNet's mean/std for torchvision models, 0.5/0.5 for EfficientNet-Lite).
Source   000, Table 2 (one seed, gaps of -0.42 to +0.73 points); 001, experiment 1.2.
H1       mean over seeds of acc(dataset) - acc(pretrain) > 0, per model x dataset cell.
Test     one-sided paired t-test over seeds (arms share a seed's head init, data order and
         augmentation); Holm across the claim's cells; alpha = 0.05; at least 3 seeds.
Margin   1.0 point: a difference shown smaller than that is "negligible" (not a refutation).
Seeds    the profile's (a fixed design); with --seeds auto, looks at 3, 5 and 8 seeds
         (O'Brien-Fleming spending, alpha split across the claim's cells).
Cells    the source's grid (ResNet18/50, DenseNet121/161 x CIFAR-10/100, SVHN, Tiny ImageNet)
         plus the offline cells (EfficientNet-Lite0 x Fashion-MNIST, MNIST).
"""
import pytest

from harness.recipes import SOURCE_DATASETS, SOURCE_MODELS

OFFLINE_CELLS = (("efficientnet_lite0", "fashion_mnist"), ("efficientnet_lite0", "mnist"))

pytestmark = pytest.mark.claim(
    "dataset_stats",
    title="dataset stats beat pretraining stats",
    source="000 Table 2; 001 exp. 1.2",
    models=SOURCE_MODELS,
    datasets=SOURCE_DATASETS,
    cells=OFFLINE_CELLS,
    kind="superiority",
    test="paired_t",
    alpha=0.05,
    margin=1.0,
    min_seeds=3,
    looks=(3, 5, 8),
)


def test_dataset_stats(finetune, evidence, model, dataset, seed):
    own = finetune(model=model, dataset=dataset, norm="dataset", seed=seed)
    pretrain = finetune(model=model, dataset=dataset, norm="pretrain", seed=seed)
    evidence.greater(own, pretrain)
