"""What the sources themselves report, cell by cell, so the report can show it beside our numbers.

Every figure here is transcribed from the five source texts in ``../shared/seeds/`` (000-004):

000  A GitHub README comparing normalizations for fine-tuning ImageNet-pretrained ResNet/DenseNet
     models on CIFAR-10/100, SVHN and Tiny ImageNet-200. Table 1 (dataset description: each
     dataset's per-channel mean/std after normalizing it with its own stats and with ImageNet-1k's),
     Table 2 (dataset stats "Fine-tuned" vs ImageNet stats "Pre-trained", accuracy in %) and Table 3
     (the same two plus "instance" and "minmax", accuracy as fractions). One seed (223). Its text calls
     Table 2 "Table 1" and says it compares "the best accuracy for the testset": the best epoch
     selected on the test set. Every "Fine-tuned" cell of Table 2 ends in an unclosed "(": whatever
     the parentheses held is lost in the text we have. Its count of the CIFAR-10 wins ("three out of
     four") contradicts its own table (one of four), and its Table 1 row for Tiny ImageNet does not
     follow from its own stats.py (see TABLE1).
001  A PyTorch forum thread: experiments 1.1 (ImageNet stats vs none) and 1.2 (ImageNet stats vs
     the dataset's own stats) on Kaggle's Intel Image Classification with ResNet-18/34, and a
     ResNet-18 run comparing the exact ("strong") std with the average per-image ("weak") std. All
     of it is read off accuracy curves (images absent from the text): no numbers.
002  A notebook (LeNet on MNIST from scratch; a pretrained ResNet-18 on an ImageNet subset). Its
     text has the code and the commentary but none of the printed outputs: no accuracy values.
     Its ResNet loop, ``for epoch in range(1, epochs)`` with epochs = 1, trains zero epochs.
003  A PyTorch forum thread: "not much difference ... if the input image is not normalized at
     all" (semantic segmentation; model and data not named). No numbers.
004  A Medium summary of Touvron et al. 2019 (FixRes). Its results table is an image; the text
     states two figures: train 128 and train 224, both tested at 224, give 77.1% top-1 (ImageNet),
     and FixRes on ResNeXt-101 32x48d gives 86.4% top-1.

Conventions. ``a`` and ``b`` are the claim's arms in the order the claim states them (for
dataset_stats: a = the dataset's own stats, b = the pretraining stats), in accuracy percent;
``difference`` = a - b in points, exact to the printed digits. A source that only shows a curve or
makes a qualitative statement gets a = b = difference = None and its words in ``metric``/``note``.
Datasets and models the sources used that we have no cell for (ImageNet, Intel Image
Classification, ResNet-34, ResNeXt-101) are listed anyway; "unspecified" marks what a source does
not name. Pure data and the standard library only: importing this costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

UNSPECIFIED = "unspecified"  # a model or dataset the source does not name
INTEL = "intel_image_classification"  # 001's data set: Kaggle's "Intel Image Classification" (natural scenes)


@dataclass(frozen=True)
class SourceFigure:
    source: str  # where in the source, e.g. "000 Table 2"
    a: float | None  # the source's value for the claim's arm a, accuracy in percent (None: not reported)
    b: float | None  # the same for arm b
    difference: float | None  # a - b in accuracy points, as printed or computed from a and b
    metric: str  # what the numbers are, e.g. "best-epoch test accuracy, one seed (223)"
    budget: str  # the training behind them, e.g. "Adam 1e-3, batch 256, 100 epochs"
    note: str = ""  # what the source got wrong or left open

    @property
    def brief(self) -> str:
        """The metric and budget in a few words, for the verdict table's source column."""
        return BRIEFS.get(self.metric, self.metric)


@dataclass(frozen=True)
class DatasetDescription:
    """One row of source 000's Table 1. Channel triples are (R, G, B); "fine-tune stats" and
    "ImageNet-1k stats" are the mean/std of the dataset's pixels after normalizing with its own
    stats and with ImageNet-1k's, as printed (two decimals)."""
    dataset: str
    train_images: int
    test_images: int
    classes: int
    image_size: tuple[int, int, int]  # H x W x C as printed
    finetune_mean: tuple[float, float, float]
    finetune_std: tuple[float, float, float]
    imagenet_mean: tuple[float, float, float]
    imagenet_std: tuple[float, float, float]
    note: str = ""


# ---------------------------------------------------------------------------------------------
# Source 000: stats.py (raw pixel stats in [0, 1]) and Tables 1-3, as printed
# ---------------------------------------------------------------------------------------------

STATS_000: dict[str, dict] = {  # 000's ./stats.py, verbatim
    "imagenet": {"num_classes": 1000, "img_size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    "cifar10": {"num_classes": 10, "img_size": 32, "mean": (0.4914, 0.4822, 0.4465), "std": (0.247, 0.2435, 0.2616)},
    "cifar100": {"num_classes": 100, "img_size": 32, "mean": (0.5071, 0.4867, 0.4408), "std": (0.2675, 0.2565, 0.2761)},
    "svhn": {"num_classes": 10, "img_size": 32, "mean": (0.4377, 0.4438, 0.4728), "std": (0.1980, 0.2010, 0.1970)},
    "tiny_imagenet_200": {"num_classes": 200, "img_size": 64, "mean": (0.4802, 0.4481, 0.3975),
                          "std": (0.2764, 0.2689, 0.2816)},
}


def imagenet_normalized_000(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel that 000's stats.py implies for `dataset` after ImageNet
    normalization: ((m - m_in) / s_in, s / s_in). Table 1 should print these to two decimals."""
    m, s = STATS_000[dataset]["mean"], STATS_000[dataset]["std"]
    m_in, s_in = STATS_000["imagenet"]["mean"], STATS_000["imagenet"]["std"]
    return (tuple((x - y) / z for x, y, z in zip(m, m_in, s_in)), tuple(x / z for x, z in zip(s, s_in)))


_ZERO, _ONE = (0.00, 0.00, 0.00), (1.00, 1.00, 1.00)
_NEAR = ("follows from stats.py to within 0.01 (stats.py implies {implied}); the table was probably "
         "computed on the data, not from the rounded stats")
TABLE1: dict[str, DatasetDescription] = {
    "cifar10": DatasetDescription(
        "cifar10", 50_000, 10_000, 10, (32, 32, 3), _ZERO, _ONE, (0.03, 0.12, 0.18), (1.08, 1.09, 1.16),
        "agrees with stats.py to two decimals"),
    "cifar100": DatasetDescription(
        "cifar100", 50_000, 10_000, 100, (32, 32, 3), _ZERO, _ONE, (0.10, 0.14, 0.16), (1.17, 1.15, 1.23),
        _NEAR.format(implied="B mean 0.15, printed 0.16")),
    "svhn": DatasetDescription(
        "svhn", 73_257, 26_032, 10, (32, 32, 3), _ZERO, _ONE, (-0.21, -0.06, 0.30), (0.87, 0.90, 0.88),
        _NEAR.format(implied="G mean -0.05, printed -0.06; R std 0.86, printed 0.87")),
    "tiny_imagenet_200": DatasetDescription(
        "tiny_imagenet_200", 100_000, 10_000, 200, (64, 64, 3), _ZERO, _ONE, (-0.38, -0.04, 0.33),
        (1.23, 1.20, 1.23),
        "contradicts the source's own stats.py, which implies mean (-0.02, -0.04, -0.04) and std "
        "(1.21, 1.20, 1.25) after ImageNet normalization: about as close to N(0, 1) as CIFAR-10, not "
        "'farther from the normal distribution than the other datasets', the reason 000 gives for Tiny "
        "ImageNet's four wins in Table 2. The 'test' split is Tiny ImageNet's labelled val split"),
}

DATASETS_000 = ("cifar10", "cifar100", "svhn", "tiny_imagenet_200")  # the tables' column order
# Table 2, accuracy (%) as printed, rows in the table's order: "Fine-tuned" = normalized with the
# fine-tuning set's own stats (arm a of dataset_stats), "Pre-trained" = with ImageNet-1k's (arm b).
TABLE2: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "densenet121": {"Fine-tuned": ("89.05", "63.34", "95.16", "59.66"), "Pre-trained": ("89.03", "63.58", "94.91", "59.24")},
    "densenet161": {"Fine-tuned": ("90.91", "67.68", "95.51", "61.90"), "Pre-trained": ("91.06", "67.87", "95.46", "61.87")},
    "resnet18": {"Fine-tuned": ("87.88", "61.67", "95.01", "53.62"), "Pre-trained": ("87.98", "61.55", "95.17", "52.89")},
    "resnet50": {"Fine-tuned": ("89.78", "67.58", "94.39", "67.32"), "Pre-trained": ("90.20", "66.94", "94.48", "67.16")},
}
# Table 3, accuracy as the fraction printed: finetune = dataset stats, pretrain = ImageNet stats,
# instance = per-image standardisation, minmax = per-image min-max. Its finetune and pretrain rows
# equal Table 2's.
TABLE3: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "densenet121": {"finetune": ("0.8905", "0.6334", "0.9516", "0.5966"), "pretrain": ("0.8903", "0.6358", "0.9491", "0.5924"),
                    "instance": ("0.8768", "0.6056", "0.9515", "0.5659"), "minmax": ("0.8889", "0.6367", "0.9512", "0.5917")},
    "densenet161": {"finetune": ("0.9091", "0.6768", "0.9551", "0.6190"), "pretrain": ("0.9106", "0.6787", "0.9546", "0.6187"),
                    "instance": ("0.8994", "0.6572", "0.9537", "0.6034"), "minmax": ("0.9087", "0.6763", "0.9525", "0.6245")},
    "resnet18": {"finetune": ("0.8788", "0.6167", "0.9501", "0.5362"), "pretrain": ("0.8798", "0.6155", "0.9517", "0.5289"),
                 "instance": ("0.8655", "0.5764", "0.9455", "0.5083"), "minmax": ("0.8797", "0.6118", "0.9497", "0.5254")},
    "resnet50": {"finetune": ("0.8978", "0.6758", "0.9439", "0.6732"), "pretrain": ("0.9020", "0.6694", "0.9448", "0.6716"),
                 "instance": ("0.8932", "0.6469", "0.9465", "0.6540"), "minmax": ("0.9023", "0.6750", "0.9449", "0.6724")},
}

BUDGET_000 = ("Adam lr 1e-3, batch 256, 100 epochs, use_scheduler: true (its kind not stated), seed 223, "
              "native resolution (32 px; Tiny ImageNet 64 px), ImageNet-1k-pretrained weights fine-tuned, "
              "full training sets")
METRIC_TABLE2 = "best-epoch test accuracy (the best of 100 epochs, chosen on the test set), one seed (223)"
METRIC_TABLE3 = ("test accuracy printed as a fraction (converted to %); its finetune/pretrain rows equal Table 2's "
                 "best-epoch values, so best epoch on the test set too, one seed (223)")
NOTE_TABLE2 = ("'Fine-tuned' (dataset stats) is arm a, 'Pre-trained' (ImageNet-1k stats) arm b; the 'Fine-tuned' "
               "cell ends in an unclosed '(' whose contents are lost in the source text")
NOTE_CIFAR10_COUNT = ("the source's text says dataset stats won 'three out of four cases for CIFAR10'; its own "
                      "table shows one of four (DenseNet121 only; its CIFAR-100, SVHN and Tiny ImageNet counts "
                      "agree with the table)")
NOTE_TINY = ("000 attributes Tiny ImageNet's four wins to its Table 1 row (ImageNet-normalized Tiny ImageNet "
             "'farther from the normal distribution'), a row its own stats.py contradicts (see TABLE1)")


def _pct(printed: str, scale: int = 1) -> float:
    """A printed value in percent, exactly: "0.8768" with scale 100 -> 87.68."""
    return float(Decimal(printed) * scale)


def _diff(a: str, b: str, scale: int = 1) -> float:
    return float((Decimal(a) - Decimal(b)) * scale)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _figures_000() -> dict[str, dict[tuple[str, str], SourceFigure]]:
    out: dict[str, dict[tuple[str, str], SourceFigure]] = {"dataset_stats": {}, "dataset_stats_vs_imagenet": {},
                                                           "instance_norm": {}, "minmax_norm": {}}
    for model, rows in TABLE2.items():
        for i, dataset in enumerate(DATASETS_000):
            a, b = rows["Fine-tuned"][i], rows["Pre-trained"][i]
            note = _join(NOTE_TABLE2, NOTE_CIFAR10_COUNT if dataset == "cifar10" else "",
                         NOTE_TINY if dataset == "tiny_imagenet_200" else "")
            out["dataset_stats"][(model, dataset)] = SourceFigure(
                "000 Table 2", _pct(a), _pct(b), _diff(a, b), METRIC_TABLE2, BUDGET_000, note)
            # the same figure, 000's literal arm: ImageNet-1k's mean/std (the pretraining stats of its models)
            out["dataset_stats_vs_imagenet"][(model, dataset)] = out["dataset_stats"][(model, dataset)]
    for model, rows in TABLE3.items():
        for i, dataset in enumerate(DATASETS_000):
            own, inst, mm = rows["finetune"][i], rows["instance"][i], rows["minmax"][i]
            out["instance_norm"][(model, dataset)] = SourceFigure(  # a = dataset stats, b = instance
                "000 Table 3", _pct(own, 100), _pct(inst, 100), _diff(own, inst, 100), METRIC_TABLE3, BUDGET_000,
                "arm a is the 'finetune' row (dataset stats), arm b the 'instance' row (per-image standardisation)")
            out["minmax_norm"][(model, dataset)] = SourceFigure(  # a = minmax, b = dataset stats
                "000 Table 3", _pct(mm, 100), _pct(own, 100), _diff(mm, own, 100), METRIC_TABLE3, BUDGET_000,
                "arm a is the 'minmax' row (per-image min-max), arm b the 'finetune' row (dataset stats); the "
                "source only says minmax was 'surprisingly good ... in some cases'")
    return out


# ---------------------------------------------------------------------------------------------
# Source 001: curves only
# ---------------------------------------------------------------------------------------------

BUDGET_001 = ("not stated: torchvision ImageNet-pretrained ResNet fine-tuned on Intel Image Classification "
              "(Kaggle), epochs not stated, one run per arm")
METRIC_CURVE_001 = "read off a test-accuracy-per-epoch curve (an image, absent from the text); no numbers"


def _words(source: str, metric: str, budget: str, note: str) -> SourceFigure:
    """A figure with no numbers: what the source says, in `note`."""
    return SourceFigure(source, None, None, None, metric, budget, note)


def _figures_001() -> dict[str, dict[tuple[str, str], SourceFigure]]:
    def curve(source: str, note: str) -> SourceFigure:
        return _words(source, METRIC_CURVE_001, BUDGET_001, note)

    exp11 = ("experiment 1.1 ('ImageNet Custom Stats vs None'): 'the normalised experiments are slightly above the "
             "experiment without normalisation most of the epochs'; conclusion 1: ImageNet stats 'provides better "
             "results than without normalisation'")
    exp12 = ("experiment 1.2 ('ImageNet Custom Stats vs Own Custom Stats'): conclusion 2, 'Using your own dataset "
             "stats gives better result'")
    strong = ("'Running another test with ResNet-18 ... the Strong Method does give a little performance boost "
              "(own == weak, own_strong == strong)'; the weak method is the linked CoarseNet preprocess.py (average "
              "of per-image stds); 'The mean from both methods are the same'; the data set is not restated "
              "(presumably the same Intel set)")
    own_weak = ("its 'own stats' were the weak std (its later words: 'own == weak'), the average of per-image "
                "stds, which is what this claim's arm a uses")
    return {
        "pretrain_beats_none": {
            ("resnet18", INTEL): curve("001 exp. 1.1", exp11),
            ("resnet34", INTEL): curve("001 exp. 1.1", exp11),
        },
        "imagenet_beats_none": {  # 001's literal arm: ImageNet's stats, the pretraining stats of its ResNets
            ("resnet18", INTEL): curve("001 exp. 1.1", exp11),
            ("resnet34", INTEL): curve("001 exp. 1.1", exp11),
        },
        "dataset_stats": {
            ("resnet18", INTEL): curve("001 exp. 1.2", exp12),
            ("resnet34", INTEL): curve("001 exp. 1.2", _join(
                exp12, "its ResNet-34 curve is labelled 'Unstable, need to go more epochs to smooth out the "
                       "accuracy'")),
        },
        "dataset_stats_vs_imagenet": {
            ("resnet18", INTEL): curve("001 exp. 1.2", exp12),
            ("resnet34", INTEL): curve("001 exp. 1.2", _join(
                exp12, "its ResNet-34 curve is labelled 'Unstable, need to go more epochs to smooth out the "
                       "accuracy'")),
        },
        "dataset_stats_weak": {  # 001's "own stats" in 1.2 were the weak std: this is the run 001 made
            ("resnet18", INTEL): curve("001 exp. 1.2", _join(exp12, own_weak)),
            ("resnet34", INTEL): curve("001 exp. 1.2", _join(
                exp12, own_weak, "its ResNet-34 curve is labelled 'Unstable, need to go more epochs to smooth "
                                 "out the accuracy'")),
        },
        "strong_std": {("resnet18", INTEL): curve("001 strong vs weak std", strong)},
        "std_estimators_equivalent": {("resnet18", INTEL): curve("001 strong vs weak std", _join(
            strong, "the same curve as strong_std: the source reads it as a small gain for the strong std, and "
                    "without numbers it cannot be told whether that gain is within our 1-point margin",
            "001 claims no equivalence: the claim is 002's conclusion (the values 'may be arbitrarily changed in "
            "a broad range given that we can re-train parameters of the network accordingly') applied to 001's "
            "two estimators, and this curve is the evidence against it"))},
    }


# ---------------------------------------------------------------------------------------------
# Source 002: code and commentary, no printed outputs
# ---------------------------------------------------------------------------------------------

BUDGET_002_LENET = ("PyTorch MNIST-example LeNet (2 conv, 2 FC, dropout) from scratch; Adadelta lr 1.0, batch 64, "
                    "30 epochs, ReduceLROnPlateau('max') stepped on test accuracy, torch.manual_seed(1998), "
                    "28 px, full MNIST, one run per setting")
BUDGET_002_RESNET = ("torchvision ImageNet-pretrained ResNet-18; SGD lr 0.01 momentum 0.9, batch 64, epochs=1 "
                     "with `for epoch in range(1, epochs)`: zero epochs trained; Resize 256 + CenterCrop 224; "
                     "'Imagenet_redux' subset; torch.manual_seed(1998); one run per setting")
METRIC_002 = "qualitative: the notebook's printed accuracies are not in the source text"
NOTE_002_ZERO_EPOCHS = ("no training happened: with epochs=1 its loop `range(1, epochs)` is empty, so every ResNet "
                        "number is the pretrained network evaluated under the given normalization (its 'Accuracy "
                        "without retraining' call with epochs=0 computes the same thing)")


def _figures_002() -> dict[str, dict[tuple[str, str], SourceFigure]]:
    def lenet(note: str) -> SourceFigure:
        return _words("002 LeNet/MNIST", METRIC_002, BUDGET_002_LENET, note)

    def resnet(note: str) -> SourceFigure:
        return _words("002 ResNet/ImageNet", METRIC_002, BUDGET_002_RESNET, note)

    worst = ("the search ran at a hard-coded mean -1, std 0.1, while the text says it starts from the grid's worst "
             "cell (mean_min, std_min); (-1, 0.1) is not a point of the 15 x 15 grid (nearest: -0.93, 0.104); "
             "Optuna, 200 trials, conv1 weight and bias multipliers log-uniform in [0.05, 20], the best trial "
             "picked on test accuracy (main returns the test accuracy); the best value is not in the text")
    return {
        "rounded_stats": {
            ("lenet", "mnist"): lenet(
                "runs the exact 0.1307/0.3081 and, as 'a standard input normalization', mean 0.5/std 0.25: 'we do not "
                "need a 3 digits initialization but ... a standard input normalization would work as well'; it "
                "never runs the one-digit rounding (0.1/0.3) of our arm a; it also says Optuna's mean 0.144/std 0.569 "
                "'may trigger a higher accuracy', and that mean 0/std 1 and no normalization give similar results. "
                "Its text calls 0.1307/0.3081 the values 'used for ImageNet training': they are MNIST's"),
            ("resnet18", "imagenet"): resnet(_join(
                "runs the three-digit ImageNet stats and 'single-digits parameters' (0.5 for every mean and std: not "
                "the one-digit rounding, which is 0.5/0.5/0.4 and 0.2/0.2/0.2), with no conclusion in the text",
                NOTE_002_ZERO_EPOCHS)),
        },
        "point_values": {
            ("lenet", "mnist"): lenet(
                "runs mean 0.5/std 0.25 ('a standard input normalization would work as well') and no "
                "normalization ('Pretty much the same... but slightly better') beside the exact 0.1307/0.3081, one "
                "run each; the accuracies they printed are not in the text. Its third point, 0.144/0.569, is "
                "claimed higher, not as good: see optuna_point"),
        },
        "optuna_point": {
            ("lenet", "mnist"): lenet(
                "runs mean 0.144/std 0.569, Optuna's optimum, beside the exact 0.1307/0.3081: 'another input "
                "normalization may trigger a higher accuracy : (more below to see how we get that value)'; one run "
                "each, the accuracies not in the text. Optuna picked the point on test accuracy (main returns the "
                "test accuracy), one seed (1998), so its 'higher accuracy' is selected on the test set"),
        },
        "plateau": {
            ("lenet", "mnist"): lenet(
                "15 x 15 grid, mean linspace(-2, 3) x std geomspace(0.02, 2), one run per cell: 'There is a low "
                "variabilty of the accuracy', 'Mostly driven by the worst value', 'The variability on the plateau "
                "(defined here as the set of 95% of best values) is very low'. Its code keeps `accuracy > "
                "np.percentile(accuracy, .05)`, i.e. all but the single worst of 225 cells, not the best 95% "
                "(percentile 5); and it measures the plateau as a std of accuracy, not as a share of cells within a "
                "margin of the best"),
            ("resnet18", "imagenet"): resnet(_join(
                "15 x 15 grid, mean linspace(-3, 3) x std geomspace(0.05, 1), the same value on all three channels, "
                "then a zoom (mean -0.5..1.5, std 0.2..0.6): 'As for LeNet, it appears that the networks' accuracy "
                "is robust for a large class of input normalization values'",
                NOTE_002_ZERO_EPOCHS + ": a zero-shot sensitivity scan, not a fine-tuned plateau")),
        },
        "retraining_recovers": {
            ("resnet18", "imagenet"): resnet(_join(
                "conclusion: the values 'may be arbitrarily changed in a broad range given that we can re-train "
                "parameters of the network accordingly'",
                NOTE_002_ZERO_EPOCHS + "; so the scan measures neither arm: not a network re-trained at each cell "
                "(our arm a) nor one fine-tuned at the weights' own normalization (our arm b, the reference); it is "
                "the zero-shot scan of zero_shot_robust")),
        },
        "zero_shot_robust": {
            ("resnet18", "imagenet"): resnet(_join(
                "15 x 15 grid, mean linspace(-3, 3) x std geomspace(0.05, 1), then 'Let's zoom around the central "
                "region' (mean -0.5..1.5, std 0.2..0.6): 'As for LeNet, it appears that the networks' accuracy is "
                "robust for a large class of input normalization values'; no accuracy in the text",
                NOTE_002_ZERO_EPOCHS + ": exactly the zero-shot scan this claim re-tests, after real fine-tuning")),
        },
        "init_compensation": {
            ("lenet", "mnist"): lenet(_join(
                "'So there's a clear yes as we increase from the minimum value to a value exceeding the 95th "
                "percentile of the previously computed range': the best rescaled-init trial compared with the "
                "grid's 'best 95%' accuracies, not with a dataset-stats run (our arm b)", worst)),
        },
        "init_beats_default": {
            ("lenet", "mnist"): lenet(_join(
                "the same sentence: 'we increase from the minimum value' (the grid's worst cell, default init) to "
                "the best rescaled-init trial; the two are at different normalizations, since the search point is "
                "not a grid cell", worst)),
        },
        "none_as_good": {
            ("lenet", "mnist"): lenet(
                "no normalization vs 0.1307/0.3081: 'Pretty much the same... but slightly better' (for no "
                "normalization); arm b here is MNIST's own stats, the net trains from scratch and has no "
                "pretraining stats; 002's `main(mean=0., std=1.)` run is the identity, i.e. no normalization again"),
        },
    }


# ---------------------------------------------------------------------------------------------
# Sources 003 and 004
# ---------------------------------------------------------------------------------------------

BUDGET_004 = ("ImageNet-1k training with RandomResizedCrop at the train resolution, Resize + CenterCrop at test "
              "(Touvron et al. 2019); schedule not stated in the article")
METRIC_003 = "qualitative, the poster's own experiments, no numbers"
METRIC_004 = "top-1 ImageNet val, stated in the article's text (its results table is an image, absent here)"


def _figures_003_004() -> dict[str, dict[tuple[str, str], SourceFigure]]:
    return {
        "none_as_good_as_imagenet": {
            (UNSPECIFIED, UNSPECIFIED): SourceFigure(
                "003", None, None, None, METRIC_003,
                "not stated: ImageNet-pretrained classifiers retrained for semantic segmentation",
                "'I often see people normalize the input image with mean=[0.485, 0.456, 0.406] and std=[0.229, "
                "0.224, 0.225]. However, my own experiments show there is not much difference in either the training "
                "time or final accuracy if the input image is not normalized at all'; its classifiers were "
                "pretrained on ImageNet, so ImageNet's values were their pretraining stats"),
        },
        "none_trains_as_fast": {
            (UNSPECIFIED, UNSPECIFIED): SourceFigure(
                "003", None, None, None, METRIC_003,
                "not stated: ImageNet-pretrained classifiers retrained for semantic segmentation",
                "'there is not much difference in either the training time or final accuracy if the input image is "
                "not normalized at all': training time is not defined (wall-clock, epochs to converge) and no "
                "number is given"),
        },
        "none_as_good": {
            (UNSPECIFIED, UNSPECIFIED): SourceFigure(
                "003", None, None, None, METRIC_003,
                "not stated: ImageNet-pretrained classifiers retrained for semantic segmentation",
                "'there is not much difference in either the training time or final accuracy if the input image is "
                "not normalized at all'; the reply: 'If input-normalization was used in its training, i would "
                "recommend doing the same. But it really shouldn’t matter that much'; a segmentation task, model "
                "and data not named"),
        },
        "fixres_test_res": {
            ("resnet50", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 3.3)", None, None, None, "qualitative", BUDGET_004,
                "'Reducing train-time resolution or increasing test-time resolution ... This has proven to improve "
                "accuracy'; the text gives no test-at-r vs test-above-r pair; the model is not named in the article "
                "(the paper's analysis and ablation use ResNet-50)"),
        },
        "fixres_finetune": {
            ("resnet50", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 5.1 ablation)", 77.1, None, None, METRIC_004, BUDGET_004,
                "a = train 128, test 224: '77.1%'; the article says train 224 and train 128 tested at 224 are 'Both "
                "77.1%' without saying which fine-tuning row of its table that is; the paper's abstract reports "
                "77.1% for ResNet-50 trained at 128 after its fine-tuning, hence arm a of this claim, but that is "
                "our reading; arm b (train 128, test 224, no fine-tuning) is not in the text. The model is not named "
                "in the article (the paper's ablation uses ResNet-50). Also: 'The effect of using test-time image "
                "preprocessing for fine tuning does not have a significant impact on accuracy. It is only noticeable "
                "in trials where there’s a big difference in train-time and test-time resolutions'"),
            ("resnext101_32x48d", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 5.2)", 86.4, None, None, METRIC_004,
                "not stated in the article (per the paper: weakly supervised pretraining on 940M images at 224, "
                "FixRes at test 320)",
                "'Used with the ResNeXt-101 32x48d, this model is the new state-of-the-art with a 86.4% Top-1 "
                "accuracy'; no figure without FixRes is given"),
        },
        "fixres_low_res": {
            ("resnet50", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 5.1)", 77.1, 77.1, 0.0, METRIC_004, BUDGET_004,
                "'for a test-time resolution fixed at 224, we can lower the train-time resolution from 224 to 128 "
                "without sacrificing accuracy (Both 77.1%)'; a = train 128, b = train 224, both tested at 224; which "
                "fine-tuning row of its table each is, the text does not say"),
        },
        "fixres_bn": {
            ("resnet50", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 5.1 ablation)", None, None, None, "qualitative", BUDGET_004,
                "the ablation table (an image, absent here) ticks 'Classifier (linear & softmax)' and 'Batch-norm "
                "(immediate layer before classifier)' per row; the text gives no number for either row"),
        },
        "fixres_test_da": {
            ("resnet50", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 5.1 ablation)", None, None, None, "qualitative", BUDGET_004,
                "'The effect of using test-time image preprocessing for fine tuning does not have a significant "
                "impact on accuracy. It is only noticeable in trials where there’s a big difference in train-time "
                "and test-time resolutions'; re-tested here at r/R = 0.57, a big difference"),
        },
        "fixres_test_da_close": {
            ("resnet50", "imagenet"): SourceFigure(
                "004 (Touvron et al. 2019, Section 5.1 ablation)", None, None, None, "qualitative", BUDGET_004,
                "'The effect of using test-time image preprocessing for fine tuning does not have a significant "
                "impact on accuracy. It is only noticeable in trials where there’s a big difference in train-time "
                "and test-time resolutions'; re-tested here at close resolutions, where it predicts no difference"),
        },
    }


BRIEF_000 = "best of 100 epochs, picked on the test set; 1 seed; full data"
BRIEFS = {
    METRIC_TABLE2: BRIEF_000,
    METRIC_TABLE3: BRIEF_000,
    METRIC_CURVE_001: "read off a curve; 1 run; epochs not stated",
    METRIC_002: "no number in its text",
    METRIC_004: "top-1 on ImageNet val; full ImageNet training",
    METRIC_003: "no number",
    "qualitative": "no number",
}


def _merge(*parts: dict[str, dict[tuple[str, str], SourceFigure]]) -> dict[str, dict[tuple[str, str], SourceFigure]]:
    merged: dict[str, dict[tuple[str, str], SourceFigure]] = {}
    for part in parts:
        for claim, cells in part.items():
            target = merged.setdefault(claim, {})
            clash = target.keys() & cells.keys()
            if clash:
                raise ValueError(f"{claim}: two figures for {sorted(clash)}")
            target.update(cells)
    return merged


FIGURES: dict[str, dict[tuple[str, str], SourceFigure]] = _merge(
    _figures_000(), _figures_001(), _figures_002(), _figures_003_004())
CLAIMS = tuple(FIGURES)  # every claim of the catalogue, each with its source's figures (if only in words)


def figures_of(claim: str) -> dict[tuple[str, str], SourceFigure]:
    """Every figure the sources report for `claim`, by (model, dataset): also those whose cell no
    catalogue runs (ImageNet, Intel Image Classification, a model the source does not name)."""
    return dict(FIGURES.get(claim, {}))


def figure_for(claim: str, model: str, dataset: str) -> SourceFigure | None:
    """The source's figure for one cell of one claim, or None where no source reports one."""
    return FIGURES.get(claim, {}).get((model, dataset))
