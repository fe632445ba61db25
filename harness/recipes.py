"""Training recipes and scan grids that claims share, scaled by the session's profile."""
from __future__ import annotations

import numpy as np

from harness.config import Profile
from harness.models import MODELS
from harness.norms import IMAGENET_MEAN, IMAGENET_STD, Affine

# Source 000's grid: the models and datasets of its Tables 2 and 3
SOURCE_MODELS = ("resnet18", "resnet50", "densenet121", "densenet161")
SOURCE_DATASETS = ("cifar10", "cifar100", "svhn", "tiny_imagenet_200")


# Fair-test budgets (harness.budget): a cell tests its claim once every arm has stopped moving, by
# the claim's own scale; no minimum here is argued from what a profile affords. Measured on the
# offline cells (single runs, seed 0, dataset stats), for scale: EfficientNet-Lite0 on Fashion-MNIST
# reaches 81% / 84% / 87% after 4 / 8 / 16 epochs on 5,000 images; LeNet with 002's recipe on MNIST
# 96.7% after 5 epochs on 3,000 images and 98.9% after 10 on 10,000.
CONVERGED_WHY = ("the sources report converged runs (000: 100 epochs on all the data; 002: LeNet 30 epochs on all of "
                 "MNIST; 004: full ImageNet training), so a cell tests the claim once each of its arms has stopped "
                 "moving: an arm whose accuracy still moves by the claim's own scale over the last quarter of training "
                 "could still open or close a gap of the size the claim judges")
GRID_WHY = ("002 read its plateau off a 15 x 15 grid; a 3 x 3 grid is its corners and centre, 8 of 9 cells on the "
            "range's edge, so a share of cells says little about the plateau; from 5 x 5 the grid has interior cells "
            "on both axes")


def fair_test(converged: float = 1.0, scan: bool = False, why: str = "") -> dict:
    """A claim's fair_test: its arms move less than `converged` points over the last quarter of
    training (the claim's margin, or the catalogue's equivalence margin of 1 point where it states
    none), and scans have interior grid cells."""
    why = f"{CONVERGED_WHY} ({why or f'{converged:g} pt: the claim scale'})"
    return {"converged": converged, "why": why + (f"; {GRID_WHY}" if scan else ""), **({"grid": 5} if scan else {})}


def pretrain_label(model: str) -> str:
    """The weights' own normalization named by its values: "ImageNet" where they are ImageNet's,
    else e.g. "pretrain (0.5/0.5)" (EfficientNet-Lite's [-1, 1])."""
    own = MODELS.get(model).pretrain_norm
    if own is None:
        return "pretrain"
    if own == Affine(IMAGENET_MEAN, IMAGENET_STD):
        return "ImageNet"
    fmt = lambda v: ",".join(f"{x:g}" for x in (v[:1] if len(set(v)) == 1 else v))  # noqa: E731
    return f"pretrain ({fmt(own.mean)}/{fmt(own.std)})"


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


# Source 002's scans, (mean range, std range): LeNet from scratch on MNIST; its ResNet (a pretrained
# model); and the ResNet's zoom "around the central region"
GRIDS = {"lenet": ((-2.0, 3.0), (0.02, 2.0)), "pretrained": ((-3.0, 3.0), (0.05, 1.0)),
         "zoom": ((-0.5, 1.5), (0.2, 0.6))}


def mean_std_grid(profile: Profile, model: str = "lenet", zoom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Source 002's scan for `model`: mean linspace x std geomspace over 002's ranges (LeNet's for
    LeNet, its ResNet's for pretrained models, or that one's zoom), grid_size points per axis (15 in
    the paper profile, as 002)."""
    (m0, m1), (s0, s1) = GRIDS["zoom" if zoom else "lenet" if model == "lenet" else "pretrained"]
    n = profile.grid_size
    return np.linspace(m0, m1, n), np.geomspace(s0, s1, n)


def fixed_norm(mean: float, std: float) -> str:
    return f"fixed:{mean:.6g}/{std:.6g}"


def plateau_share(accuracies: np.ndarray, margin_points: float) -> float:
    """Share of grid cells whose accuracy (fraction) lies within `margin_points` of the best cell."""
    acc = np.asarray(accuracies, dtype=float).ravel()
    return float((acc >= acc.max() - margin_points / 100).mean())
