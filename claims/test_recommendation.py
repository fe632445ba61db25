"""Which input normalization to use for your images and your model: every choice against every other.

Question Not a source's claim but the one practitioners bring to them: for this model on these
         images, which normalization should I use, and does it matter? 000 gives one seed per cell
         for four public datasets, 001 and 002 a few single runs; none answers it for a user's data.
Arms     the normalizations a user can choose (--recommend-norms, default: dataset statistics, the
         weights' own pretraining statistics, ImageNet's, none, per-image standardisation, per-image
         min-max), each fine-tuned with the same seeds and the model's recipe. The weights' own stats
         stand for ImageNet's where they are ImageNet's (torchvision's weights): one arm, not two
         identical ones; a model trained from scratch has no pretraining stats, and one that takes a
         single channel (LeNet) no use for ImageNet's three.
Rule     harness/recommend.py: every pair's paired t interval, simultaneous over all pairs and looks
         (Bonferroni) at alpha 0.05; "use X" when X beats every other by more than the margin, else
         "use any of" those no other beats by the margin (equivalent within it), "avoid" those some
         other beats by more than it, and no recommendation while the intervals straddle it.
Margin   1.0 point: the catalogue's equivalence margin; a smaller gap between normalizations is not
         worth acting on, and on 2,000 test images one count is 0.05 point.
Fair     every arm moves less than the margin over the last quarter of its training, as every claim.
Seeds    looks at 3, 5 and 8 seeds (--seeds auto, the default and cpu profiles): stops once every
         arm is to use or to avoid.
Run      pytest claims/test_recommendation.py --datasets folder:PATH --models MODEL   (--plan first)
"""
import pytest

from harness.models import MODELS
from harness.observations import Arm
from harness.recipes import fair_test, pretrain_label, recipe_for
from harness.recommend import ALPHA, MARGIN

FAIR = fair_test(MARGIN, why=f"{MARGIN:g} pt: the rule's margin; an arm still moving by it could still change the answer")

pytestmark = pytest.mark.claim(
    "recommendation", title="which normalization to use for this model on these images",
    source="the practitioner's question (none of 000-004 answers it for a user's data)",
    models=("resnet50", "resnet18"), datasets=("cifar10",),
    cells=(("efficientnet_lite0", "fashion_mnist"),),
    kind="ranking", alpha=ALPHA, margin=MARGIN, min_seeds=3, looks=(3, 5, 8), fair_test=FAIR,
    margin_why="the catalogue's equivalence margin: a smaller gap between normalizations is not worth acting on",
)


def arms_for(model: str, normalizations) -> list[tuple[str, str]]:
    """(norm, label) of each arm this model can take: the weights' own stats once, labelled by value."""
    own = pretrain_label(model)
    out = []
    for norm in normalizations:
        if norm == "pretrain" and MODELS.get(model).pretrain_norm is None:
            continue  # trained from scratch: no pretraining stats to use
        if norm == "imagenet" and own == "ImageNet" and "pretrain" in normalizations:
            continue  # the weights' own stats are ImageNet's: the pretrain arm is this one
        if norm == "imagenet" and MODELS.get(model).in_channels == 1:
            continue  # ImageNet's stats are per colour channel; the model takes one
        label = {"pretrain": "pretrain = imagenet" if own == "ImageNet" else own}.get(norm, norm)
        out.append((norm, label))
    return out


def test_which_normalization(finetune, evidence, profile, model, dataset, seed, normalizations):
    budget = recipe_for(model, profile)
    arms = arms_for(model, normalizations)
    if len(arms) < 2:
        pytest.skip(f"{model} leaves fewer than two of {', '.join(normalizations)} to compare")
    evidence.rank(*(Arm.of_run(finetune(model=model, dataset=dataset, norm=norm, seed=seed, **budget), label=label)
                    for norm, label in arms))
