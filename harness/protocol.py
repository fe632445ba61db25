"""How a claim's request becomes a RunConfig: profile budget, device numerics, BatchNorm policy.

Pure Python: the cached path builds every config and looks it up without importing torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.config import Profile, RunConfig
from harness.datasets import canonical_name, get_dataset
from harness.errors import UsageError
from harness.models import MODELS
from harness.norms import check_spec

# Share of the pretrained running statistics a run may leave in its BatchNorm layers and still
# be evaluated with them: above it the run re-estimates them (or fails if told not to).
STALE_BN_LIMIT = 0.05


def stale_bn_fraction(momentum: float | None, steps: int) -> float:
    """Weight the running statistics still give to their initial (pretrained) values after `steps`
    exponential-average updates with torch-convention `momentum`: (1 - momentum) ** steps."""
    if momentum is None:
        return 0.0
    return (1.0 - momentum) ** steps


def planned_steps(train_images: int | None, batch_size: int, epochs: int) -> int | None:
    if train_images is None:
        return None
    return (train_images // batch_size) * epochs


@dataclass(frozen=True)
class Numerics:
    device_type: str  # "cpu" or "cuda"
    precision: str  # "fp32" or "bf16"
    channels_last: bool = True  # NHWC: the faster layout for these convnets on CPU and GPU
    compile: bool = False  # --compile


def numerics_for(device_type: str, compile: bool = False) -> Numerics:
    if device_type == "cuda":
        return Numerics("cuda", "bf16", compile=compile)  # bf16 autocast + channels_last: the fast path on GPUs
    # CPU: fp32, since bf16 autocast slows the depthwise convolutions of the offline model (README)
    return Numerics("cpu", "fp32", compile=compile)


def make_config(
    *, model: str, dataset: str, norm: str, seed: int, profile: Profile, numerics: Numerics, **overrides
) -> RunConfig:
    """The full, frozen description of one run. Unknown names raise UsageError ("did you mean")."""
    spec = MODELS.get(model)
    data = get_dataset(dataset)
    check_spec(norm)
    if spec.in_channels == 1 and data.channels == 3:
        raise UsageError(f"model {model} takes grayscale images; {dataset} is RGB")
    weights = overrides.pop("weights", "pretrained" if spec.pretrain_norm is not None else "scratch")
    base = RunConfig(
        model=model, dataset=canonical_name(dataset), norm=norm, seed=seed, weights=weights,
        train_subset=profile.train_subset, test_subset=profile.test_subset,
        lr=profile.lr, batch_size=profile.batch_size, epochs=profile.epochs, eval_every=profile.eval_every,
        device_type=numerics.device_type, precision=numerics.precision,
        channels_last=numerics.channels_last, compile=numerics.compile,
        profile=profile.name,
    )
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UsageError(f"unknown run setting(s) {', '.join(unknown)}; RunConfig has {', '.join(sorted(fields))}")
    cfg = dataclasses.replace(base, **overrides)
    cfg.check()
    for spec_text in cfg.test_norms:
        check_spec(spec_text)
    if weights == "pretrained" and spec.pretrain_norm is None:
        raise UsageError(f"model {model} has no pretrained weights: pass weights='scratch'")
    if "bn_recalibration" not in overrides:
        steps = planned_steps(cfg.train_subset, cfg.batch_size, cfg.epochs)
        stale = stale_bn_fraction(spec.bn_momentum, steps) if steps is not None else 0.0
        cfg = dataclasses.replace(cfg, bn_recalibration=stale > STALE_BN_LIMIT)
    return cfg
