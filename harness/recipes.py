"""Training recipes and scan grids that claims share, scaled by the session's profile."""
from __future__ import annotations

import numpy as np

from harness.config import Profile

# Source 000's grid: the models and datasets of its Tables 2 and 3
SOURCE_MODELS = ("resnet18", "resnet50", "densenet121", "densenet161")
SOURCE_DATASETS = ("cifar10", "cifar100", "svhn", "tiny_imagenet_200")


def lenet_002(profile: Profile) -> dict:
    """Source 002's LeNet recipe on MNIST, from scratch: Adadelta lr 1.0, batch 64, an LR plateau
    schedule (on the training loss: 002 stepped on test accuracy, which selects on the test set),
    no augmentation; its length and data from the profile's LeNet budget (30 epochs on the full data
    in the paper profile, as 002 ran it)."""
    recipe = {"weights": "scratch", "optimizer": "adadelta", "lr": 1.0, "schedule": "plateau", "batch_size": 64,
              "augment": "none"}
    if profile.lenet_epochs is not None:
        recipe["epochs"] = profile.lenet_epochs
    if profile.lenet_train_subset is not None:
        recipe["train_subset"] = profile.lenet_train_subset
    return recipe


def short_finetune(profile: Profile) -> dict:
    """A pretrained model's fine-tuning for scans of many cells: the profile's scan budget."""
    budget = {"train_subset": profile.scan_train_subset, "epochs": profile.scan_epochs}
    return {k: v for k, v in budget.items() if v is not None}


def recipe_for(model: str, profile: Profile, scan: bool = False) -> dict:
    """Settings a claim passes for `model`: source 002's recipe for LeNet; for pretrained models the
    profile's budget, or its scan budget for scans of many cells."""
    if model == "lenet":
        return lenet_002(profile)
    return short_finetune(profile) if scan else {}


def mean_std_grid(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Source 002's scan: mean linspace(-2, 3) x std geomspace(0.02, 2), grid_size points per axis
    (15 in the paper profile, as 002; 3 otherwise: the corners and centre of the same ranges)."""
    n = profile.grid_size
    return np.linspace(-2.0, 3.0, n), np.geomspace(0.02, 2.0, n)


def fixed_norm(mean: float, std: float) -> str:
    return f"fixed:{mean:.6g}/{std:.6g}"


def plateau_share(accuracies: np.ndarray, margin_points: float) -> float:
    """Share of grid cells whose accuracy (fraction) lies within `margin_points` of the best cell."""
    acc = np.asarray(accuracies, dtype=float).ravel()
    return float((acc >= acc.max() - margin_points / 100).mean())
