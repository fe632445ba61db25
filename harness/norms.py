"""Input normalizations: how uint8 pixels become the float tensor a model sees.

A norm is named by a spec string: a registry name ("dataset", "pretrain", "imagenet", "none",
"instance", "minmax") or "fixed:MEAN/STD" with comma-separated per-channel values, e.g.
"fixed:0.1307/0.3081" or "fixed:0.49,0.48,0.45/0.25,0.24,0.26". Parsing needs no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from harness.errors import UsageError
from harness.registry import Registry

# the normalizations a user chooses between, which the recommendation compares (--recommend-norms for others)
CHOOSABLE = ("dataset", "pretrain", "imagenet", "none", "instance", "minmax")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Affine:
    """x -> (x - mean) / std per channel, x in [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class PerImage:
    """Statistics taken from each image itself: "instance" (standardise) or "minmax" (to [0, 1])."""

    kind: str


@dataclass(frozen=True)
class NormContext:
    dataset_stats: Callable[[str], tuple[Sequence[float], Sequence[float]]]  # estimator -> (mean, std), lazily
    pretrain: Affine | None  # the model's own pretraining normalization; None if it has none
    model: str


NORMS: Registry[Callable[[NormContext], "Affine | PerImage"]] = Registry("normalization")


@NORMS.register("dataset")
def _dataset(ctx: NormContext) -> Affine:
    """The fine-tuning set's exact per-channel mean and std."""
    mean, std = ctx.dataset_stats("exact")
    return Affine(tuple(mean), tuple(std))


@NORMS.register("dataset_weak")
def _dataset_weak(ctx: NormContext) -> Affine:
    """Exact mean, std averaged over per-image stds (the widely copied CIFAR-10 0.2023 comes from it)."""
    mean, std = ctx.dataset_stats("weak")
    return Affine(tuple(mean), tuple(std))


@NORMS.register("dataset_batch")
def _dataset_batch(ctx: NormContext) -> Affine:
    """Exact mean, std by source 002's per-batch estimator."""
    mean, std = ctx.dataset_stats("batch")
    return Affine(tuple(mean), tuple(std))


def _rounded(digits: int):
    def norm(ctx: NormContext) -> Affine:
        mean, std = ctx.dataset_stats("exact")
        return Affine(tuple(round(m, digits) for m in mean), tuple(max(round(s, digits), 10.0**-digits) for s in std))

    norm.__doc__ = f"The exact stats rounded to {digits} decimal(s) (source 002: 0.1307/0.3081 vs one digit)."
    return norm


NORMS.add("dataset_1digit", _rounded(1))
NORMS.add("dataset_3digit", _rounded(3))


@NORMS.register("pretrain")
def _pretrain(ctx: NormContext) -> Affine:
    if ctx.pretrain is None:
        raise UsageError(f"model {ctx.model!r} has no pretraining normalization (it is trained from scratch)")
    return ctx.pretrain


@NORMS.register("imagenet")
def _imagenet(ctx: NormContext) -> Affine:
    return Affine(IMAGENET_MEAN, IMAGENET_STD)


@NORMS.register("none")
def _none(ctx: NormContext) -> Affine:
    return Affine((0.0,), (1.0,))  # pixels in [0, 1], as ToTensor() leaves them


@NORMS.register("instance")
def _instance(ctx: NormContext) -> PerImage:
    return PerImage("instance")


@NORMS.register("minmax")
def _minmax(ctx: NormContext) -> PerImage:
    return PerImage("minmax")


def parse_fixed(spec: str) -> Affine:
    """ "fixed:0.5/0.25" or "fixed:0.4,0.5,0.6/0.2,0.2,0.2" -> Affine."""
    body = spec.split(":", 1)[1]
    try:
        mean_text, std_text = body.split("/")
        mean = tuple(float(v) for v in mean_text.split(","))
        std = tuple(float(v) for v in std_text.split(","))
    except ValueError:
        raise UsageError(f"malformed normalization {spec!r}: expected fixed:MEAN/STD, e.g. fixed:0.1307/0.3081") from None
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise UsageError(f"malformed normalization {spec!r}: give 1 or 3 values for both mean and std")
    if any(s <= 0 for s in std):
        raise UsageError(f"malformed normalization {spec!r}: std must be positive")
    return Affine(mean, std)


def check_spec(spec: str) -> None:
    """Raise UsageError for an unknown or malformed spec, without resolving it."""
    if spec.startswith("fixed:"):
        parse_fixed(spec)
    else:
        NORMS.get(spec)


def resolve(spec: str, ctx: NormContext) -> "Affine | PerImage":
    if spec.startswith("fixed:"):
        return parse_fixed(spec)
    return NORMS.get(spec)(ctx)


def make_normalizer(norm: "Affine | PerImage", channels: int, device) -> Callable:
    """A batched op: float images in [0, 1], shape (N, C, H, W) on `device` -> normalized (N, C, H, W)."""
    import torch

    if isinstance(norm, Affine):
        mean = torch.tensor(norm.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        inv_std = 1.0 / torch.tensor(norm.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        if mean.shape[1] not in (1, channels):
            raise UsageError(f"normalization has {mean.shape[1]} channels, the images have {channels}")
        return lambda x: (x - mean) * inv_std
    eps = 1e-6
    if norm.kind == "instance":
        # per image over all its pixels and channels (tf.image.per_image_standardization)
        def instance(x):
            mu = x.mean(dim=(1, 2, 3), keepdim=True)
            sd = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
            return (x - mu) / sd.clamp_min(1.0 / (x[0].numel() ** 0.5))

        return instance

    def minmax(x):
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        return (x - lo) / (hi - lo).clamp_min(eps)

    return minmax


def describe(norm: "Affine | PerImage") -> tuple[list[float] | None, list[float] | None]:
    if isinstance(norm, Affine):
        return [round(v, 6) for v in norm.mean], [round(v, 6) for v in norm.std]
    return None, None
