"""What a training run is (RunConfig), what it produced (RunResult), and the budget profiles.

No torch here: a cached session describes and looks up every run without importing it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from harness import HARNESS_VERSION
from harness.errors import UsageError
from harness.registry import unknown_name_message


@dataclass(frozen=True)
class RunConfig:
    model: str  # model registry name, e.g. "resnet18"
    dataset: str  # dataset registry name, or "folder:/abs/path"
    norm: str  # normalization spec: "dataset", "pretrain", "none", "fixed:0.5/0.25", ...
    seed: int  # drives head init, data order, augmentation draws and dropout
    weights: str = "pretrained"  # "pretrained" (the model's own weights) or "scratch"
    train_subset: int | None = None  # images drawn (stratified, fixed) from the train split; None = all
    test_subset: int | None = None  # images drawn from the test split; None = all
    resolution: int | None = None  # side in pixels fed to the model; None = the dataset's native size
    augment: str = "crop_flip"  # "crop_flip" (pad 1/8, random crop, flip where the data allows),
    # "random_resized_crop" (torchvision's defaults: area 8-100%, aspect 3/4-4/3; plus flip) or "none"
    optimizer: str = "adam"  # "adam" or "adadelta"
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # L2 penalty as the optimizer applies it
    schedule: str = "cosine"  # "cosine" (per step, to zero), "constant", or "plateau" (x0.1 when the
    # epoch's training loss stops falling; source 002 stepped on test accuracy, which selects on the test set)
    batch_size: int = 256  # training images per optimizer step (the last partial batch is dropped)
    epochs: int = 100  # passes over the training subset
    eval_every: int = 1  # evaluate on the test subset every this many epochs (the last is always evaluated)
    bn_recalibration: bool = False  # re-estimate BatchNorm running stats on the train subset before each evaluation
    train: bool = True  # False: evaluate the freshly built model without a single step (source 002's zero-shot scan)
    evaluate_on: str = "test"  # "test", or "val": a fixed part of the train split, disjoint from the training subset
    init_scale: tuple[float, float] | None = None  # multipliers of the first conv's initial (weight, bias)
    test_resolutions: tuple[int, ...] = ()  # extra evaluations at these sides after training (metrics "test@R")
    fixres_epochs: int = 0  # FixRes: epochs training only the classifier at fixres_resolution, test preprocessing,
    # the last BatchNorm re-estimating its running statistics, everything else frozen (metric "fixres@R")
    fixres_resolution: int | None = None  # side for the FixRes stage
    device_type: str = "cpu"  # "cpu" or "cuda": numerics differ between them
    precision: str = "fp32"  # "fp32" or "bf16" (autocast; BatchNorm stays fp32)
    channels_last: bool = True  # NHWC memory format (faster for these convnets on CPU and GPU)
    compile: bool = False  # torch.compile the model (opt-in: compile time pays off only on long runs)
    profile: str = "quick"  # the profile that set the budget fields above

    def key(self) -> str:
        """sha256 of the sorted JSON of every field plus the harness version: the store's key."""
        payload = {"harness_version": HARNESS_VERSION, **dataclasses.asdict(self)}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        data = dict(data)
        if data.get("init_scale") is not None:
            data["init_scale"] = tuple(data["init_scale"])
        data["test_resolutions"] = tuple(data.get("test_resolutions", ()))
        return cls(**data)

    def label(self) -> str:
        return f"{self.model}/{self.dataset}/{self.norm}/seed{self.seed}"


@dataclass
class RunResult:
    accuracy: float  # test accuracy (fraction) after the final epoch: never the best epoch
    history: list[dict]  # per epoch: {"epoch", "train_loss", "test_accuracy" (None when not evaluated)}
    steps: int  # optimizer steps actually run
    train_images: int  # images seen by the optimizer
    wall_s: float  # seconds for the whole run, data loading and evaluation included
    images_per_s: float  # training images per second of training-loop time
    device: str  # e.g. "cpu", "cuda:0 (NVIDIA H100)"
    norm_mean: list[float] | None  # the per-channel mean actually subtracted (None for per-image norms)
    norm_std: list[float] | None  # the per-channel std actually divided by
    best_accuracy: float | None = None  # best evaluated epoch: a flagged extra, never the metric
    metrics: dict = field(default_factory=dict)  # further accuracies, e.g. {"test@36": ..., "fixres@36": ...}
    meta: dict = field(default_factory=dict)  # torch version, host, threads, ...

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunResult":
        return cls(**data)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    epochs: int  # passes over the training subset
    train_subset: int | None  # None = the whole train split
    test_subset: int | None  # None = the whole test split
    batch_size: int
    seeds: int  # default number of seeds (0..seeds-1)
    eval_every: int  # epochs between test evaluations (the final epoch is always evaluated)
    lr: float = 1e-3


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke",
            "plumbing check: 1 epoch on 256 train / 256 test images, 2 seeds",
            epochs=1, train_subset=256, test_subset=256, batch_size=64, seeds=2, eval_every=1,
        ),
        Profile(
            "quick",
            "CPU-sized default: 2 epochs on 2,000 train / 1,000 test images, batch 128, 5 seeds",
            epochs=2, train_subset=2000, test_subset=1000, batch_size=128, seeds=5, eval_every=2,
        ),
        Profile(
            "paper",
            "source 000's protocol: Adam 1e-3, batch 256, cosine, 100 epochs, full data, 5 seeds",
            epochs=100, train_subset=None, test_subset=None, batch_size=256, seeds=5, eval_every=1,
        ),
    )
}
DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(unknown_name_message("profile", name, PROFILES)) from None
