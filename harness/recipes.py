"""Training recipes and scan grids that claims share, scaled by the session's profile."""
from __future__ import annotations

import numpy as np

from harness.config import Profile

# Source 000's grid: the models and datasets of its Tables 2 and 3
SOURCE_MODELS = ("resnet18", "resnet50", "densenet121", "densenet161")
SOURCE_DATASETS = ("cifar10", "cifar100", "svhn", "tiny_imagenet_200")


def lenet_002(profile: Profile) -> dict:
    """Source 002's LeNet recipe on MNIST, from scratch: Adadelta lr 1.0, batch 64, an LR plateau
    schedule (on the training loss, not on test accuracy as 002 did), 15 epochs on the full data in
    the paper profile; the profile's budget otherwise, at most 1,000 training images."""
    recipe = {"weights": "scratch", "optimizer": "adadelta", "lr": 1.0, "schedule": "plateau", "batch_size": 64,
              "augment": "none"}
    if profile.name == "paper":
        return {**recipe, "epochs": 15}
    return {**recipe, "train_subset": min(profile.train_subset or 1000, 1000)}


def short_finetune(profile: Profile) -> dict:
    """A pretrained model's fine-tuning for scans of many cells: the profile's budget, halved
    (at most 1,000 training images, one epoch) outside the paper profile."""
    if profile.name == "paper":
        return {}
    return {"train_subset": min(profile.train_subset or 1000, 1000), "epochs": 1}


def recipe_for(model: str, profile: Profile, scan: bool = False) -> dict:
    """Settings a claim passes for `model`: source 002's recipe for LeNet; for pretrained models the
    profile's budget, or the shorter one for scans of many cells."""
    if model == "lenet":
        return lenet_002(profile)
    return short_finetune(profile) if scan else {}


def mean_std_grid(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Source 002's scan: mean linspace(-2, 3), std geomspace(0.02, 2); 15 x 15 in the paper
    profile, 3 x 3 otherwise (the corners and centre of the same ranges)."""
    n = {"paper": 15}.get(profile.name, 3)
    return np.linspace(-2.0, 3.0, n), np.geomspace(0.02, 2.0, n)


def fixed_norm(mean: float, std: float) -> str:
    return f"fixed:{mean:.6g}/{std:.6g}"


def plateau_share(accuracies: np.ndarray, margin_points: float) -> float:
    """Share of grid cells whose accuracy (fraction) lies within `margin_points` of the best cell."""
    acc = np.asarray(accuracies, dtype=float).ravel()
    return float((acc >= acc.max() - margin_points / 100).mean())
