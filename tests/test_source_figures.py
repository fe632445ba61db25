"""harness.source_figures: the sources' own numbers, checked against the source texts."""
import re
from decimal import Decimal
from pathlib import Path

import pytest

from harness.source_figures import (
    CLAIMS, FIGURES, STATS_000, TABLE1, TABLE2, TABLE3, SourceFigure, figure_for, imagenet_normalized_000,
)

ROOT = Path(__file__).resolve().parent.parent
SEED_DIRS = (ROOT.parent / "shared" / "seeds", ROOT / "shared" / "seeds")
MODELS = {"resnet18", "resnet34", "resnet50", "densenet121", "densenet161", "lenet", "efficientnet_lite0",
          "resnext101_32x48d", "unspecified"}
DATASETS = {"cifar10", "cifar100", "svhn", "tiny_imagenet_200", "mnist", "fashion_mnist", "imagenet",
            "intel_image_classification", "unspecified"}
TABLE_MODELS = {"DenseNet121": "densenet121", "DenseNet161": "densenet161", "ResNet18": "resnet18", "ResNet50": "resnet50"}
TABLE1_ROWS = {"CIFAR10": "cifar10", "CIFAR100": "cifar100", "SVHN": "svhn", "Tiny ImageNet-200": "tiny_imagenet_200"}


def seed_text(number: str) -> str:
    for folder in SEED_DIRS:
        found = sorted(folder.glob(f"{number}_*.txt"))
        if found:
            return found[0].read_text(encoding="utf-8")
    pytest.skip(f"source {number} not found in {[str(d) for d in SEED_DIRS]}")


def all_figures():
    return [(claim, cell, fig) for claim, cells in FIGURES.items() for cell, fig in cells.items()]


def test_claim_names_are_our_claims():
    from test_claims import pairwise_claims

    declared = set(pairwise_claims())  # read from the shipped modules' markers, as the plugin reads them
    assert set(CLAIMS) <= declared, set(CLAIMS) - declared
    assert set(FIGURES) <= set(CLAIMS)
    # every claim shows what its source reported, if only in words (the recommendation answers a
    # user's question on their data: no source reported it)
    assert set(FIGURES) == declared, declared - set(FIGURES)


def test_cells_use_the_harness_names():
    for claim, (model, dataset), fig in all_figures():
        assert model in MODELS and dataset in DATASETS, (claim, model, dataset)
        assert isinstance(fig, SourceFigure) and fig.source[:3] in {"000", "001", "002", "003", "004"}
        assert fig.metric and fig.budget


def test_difference_is_a_minus_b_as_printed():
    for claim, cell, fig in all_figures():
        if fig.a is not None and fig.b is not None:
            assert fig.difference == round(fig.a - fig.b, 2), (claim, cell, fig)
        else:
            assert fig.difference is None, (claim, cell)


def test_figure_for():
    assert figure_for("dataset_stats", "efficientnet_lite0", "mnist") is None  # a cell no source ran
    assert figure_for("no_such_claim", "resnet18", "cifar10") is None
    assert figure_for("dataset_stats", "resnet50", "cifar10").a == 89.78
    assert figure_for("dataset_stats", "resnet50", "cifar10").b == 90.20
    assert figure_for("minmax_norm", "resnet18", "tiny_imagenet_200").difference == -1.08


def test_table2_is_transcribed_from_source_000():
    text = seed_text("000")
    section = text[text.index("< Table 2."):text.index("< Table 3.")]
    chunks = re.split(r"\| (DenseNet121|DenseNet161|ResNet18|ResNet50) \| Fine-tuned \|", section)[1:]
    parsed = {}
    for name, chunk in zip(chunks[::2], chunks[1::2]):
        fine = tuple(re.findall(r"(\d+\.\d+) \(", chunk))
        pre = re.search(r"\| Pre-trained \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", chunk).groups()
        parsed[TABLE_MODELS[name]] = {"Fine-tuned": fine, "Pre-trained": pre}
    assert parsed == TABLE2


def test_table3_is_transcribed_from_source_000():
    text = seed_text("000")
    parsed, model = {}, None
    for line in text[text.index("< Table 3."):].splitlines():
        row = re.match(r"\|(?: (\w+) \|)? (finetune|pretrain|instance|minmax) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|",
                       line)
        if row:
            model = TABLE_MODELS[row[1]] if row[1] else model
            parsed.setdefault(model, {})[row[2]] = row.groups()[2:]
    assert parsed == TABLE3
    for model in TABLE3:  # Table 3's finetune/pretrain rows are Table 2's, as fractions
        for t3, t2 in (("finetune", "Fine-tuned"), ("pretrain", "Pre-trained")):
            assert [Decimal(v) * 100 for v in TABLE3[model][t3]] == [Decimal(v) for v in TABLE2[model][t2]]


def test_table1_and_stats_py_are_transcribed_from_source_000():
    text = seed_text("000")
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    for name, key in TABLE1_ROWS.items():
        row = TABLE1[key]
        head = f"| {name} | {row.train_images:,} | {row.test_images:,} | {row.classes} | " \
               f"{' X '.join(map(str, row.image_size))} | mean: ({fmt(row.finetune_mean)}) std : ({fmt(row.finetune_std)}) |"
        assert head in text, head
        tail = re.search(re.escape(head) + r"\nmean: \(([^)]*)\) std : \(([^)]*)\)", text)
        assert tuple(float(v) for v in tail[1].split(",")) == row.imagenet_mean
        assert tuple(float(v) for v in tail[2].split(",")) == row.imagenet_std
    assert '"mean" : (0.4802, 0.4481, 0.3975)' in text and '"std" : (0.2764, 0.2689, 0.2816)' in text
    assert STATS_000["tiny_imagenet_200"]["mean"] == (0.4802, 0.4481, 0.3975)
    assert '"std" : (0.247, 0.2435, 0.2616)' in text and STATS_000["cifar10"]["std"] == (0.247, 0.2435, 0.2616)


def test_table1_against_its_own_stats():
    mean, std = imagenet_normalized_000("cifar10")
    assert tuple(round(x, 2) for x in mean) == TABLE1["cifar10"].imagenet_mean
    assert tuple(round(x, 2) for x in std) == TABLE1["cifar10"].imagenet_std
    mean, _ = imagenet_normalized_000("tiny_imagenet_200")
    assert max(abs(x - y) for x, y in zip(mean, TABLE1["tiny_imagenet_200"].imagenet_mean)) > 0.3
    assert "contradicts" in TABLE1["tiny_imagenet_200"].note


def test_source_000_readme_count_contradicts_its_table():
    text = seed_text("000")
    assert "three out of four cases for CIFAR10" in text
    wins = [m for (m, d), f in FIGURES["dataset_stats"].items() if d == "cifar10" and f.difference > 0]
    assert wins == ["densenet121"]
    assert "three out of four" in figure_for("dataset_stats", "resnet18", "cifar10").note
    gaps = [f.difference for f in FIGURES["dataset_stats"].values() if f.source == "000 Table 2"]
    assert (min(gaps), max(gaps)) == (-0.42, 0.73)


def test_curve_only_sources_carry_no_numbers():
    for claim in ("pretrain_beats_none", "strong_std", "std_estimators_equivalent", "plateau", "rounded_stats"):
        for fig in FIGURES[claim].values():
            assert fig.a is None and fig.b is None
    assert "Strong Method does give a little performance boost" in seed_text("001")
    assert "Pretty much the same... but slightly better" in seed_text("002")


def test_fixres_figures_appear_in_source_004():
    text = seed_text("004")
    assert "(Both 77.1%)" in text and "86.4% Top-1" in text
    assert figure_for("fixres_finetune", "resnet50", "imagenet").a == 77.1
    assert figure_for("fixres_finetune", "resnext101_32x48d", "imagenet").a == 86.4


def test_every_figure_says_its_metric_and_budget_in_brief():
    """The verdict table's source column carries each figure's metric and budget in a few words."""
    for claim, cell, fig in all_figures():
        assert fig.brief != fig.metric or len(fig.metric) <= 60, (claim, cell, fig.metric)
    assert figure_for("dataset_stats", "resnet18", "cifar10").brief.startswith("best of 100 epochs, picked on the test set")
