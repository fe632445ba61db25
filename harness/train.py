"""The fine-tuning loop: one flat function from a RunConfig to a RunResult.

The dataset lives on the run's device as uint8; cropping, flipping and normalization are batched
tensor ops there; the loss is summed on the device and read once per epoch.
"""
from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from harness import HARNESS_VERSION
from harness.augment import crop_flip_draws, crop_flip_padded, pad_images, resized_crop, resized_crop_draws, unpadded
from harness.config import RunConfig, RunResult
from harness.datasets import dataset_stats, get_dataset, load_arrays, subset_indices
from harness.devices import enter_device
from harness.errors import RunFailed, UsageError
from harness.models import MODELS
from harness.norms import NormContext, describe, make_normalizer, resolve
from harness.protocol import STALE_BN_LIMIT, stale_bn_fraction

EVAL_BATCH = 500  # evaluation and BN re-estimation batch: no gradients, so larger than training's


def finetune(cfg: RunConfig, device: str, data_dir: Path, progress: Callable[[str], None] | None = None,
             threads: int | None = None) -> RunResult:
    """Train and evaluate one run. `threads`: intra-op threads (the CPU run's arithmetic, or the host
    side of a GPU run); None keeps the process's setting. CPU results are bitwise reproducible at a
    fixed thread count and differ in the last bits between counts, so the count is recorded in meta."""
    started = time.perf_counter()
    dev = torch.device(device)
    if dev.type != cfg.device_type:
        raise UsageError(f"run {cfg.label()} is configured for {cfg.device_type}, asked to run on {device}")
    device_settings = enter_device(device, threads)
    torch.manual_seed(cfg.seed)  # dropout and any body initialisation; the head has its own generator
    order_gen = torch.Generator().manual_seed(cfg.seed)  # data order and augmentation draws

    # --- data: fixed subsets, uint8 on the device
    model_spec, data_spec = MODELS.get(cfg.model), get_dataset(cfg.dataset)
    x_train, y_train = load_arrays(cfg.dataset, data_dir, train=True)
    tr = subset_indices(y_train, cfg.train_subset)
    if cfg.evaluate_on == "val":  # held out of the train split, never the test set: for searches
        x_eval, y_eval, ev = x_train, y_train, subset_indices(y_train, cfg.test_subset or 10_000, exclude=tr)
    elif cfg.evaluate_on == "test":
        x_eval, y_eval = load_arrays(cfg.dataset, data_dir, train=False)
        ev = subset_indices(y_eval, cfg.test_subset)
    else:
        raise UsageError(f"evaluate_on must be 'test' or 'val', not {cfg.evaluate_on!r}")
    xtr = torch.from_numpy(np.ascontiguousarray(x_train[tr])).to(dev)
    ytr = torch.from_numpy(y_train[tr]).to(dev)
    xte = torch.from_numpy(np.ascontiguousarray(x_eval[ev])).to(dev)
    yte = torch.from_numpy(y_eval[ev]).to(dev)
    num_classes = data_spec.num_classes or int(y_train.max()) + 1
    native, side = xtr.shape[-1], cfg.resolution or xtr.shape[-1]
    in_ch = model_spec.in_channels
    if in_ch == 1 and xtr.shape[1] != 1:
        raise UsageError(f"model {cfg.model} takes grayscale images; {cfg.dataset} is RGB")

    # --- normalization: resolved to numbers, recorded with the result
    pretrain = model_spec.pretrain_norm if cfg.weights == "pretrained" else None
    norm = resolve(cfg.norm, NormContext(lambda est: dataset_stats(cfg.dataset, data_dir, est), pretrain, cfg.model))
    normalize = make_normalizer(norm, in_ch, dev)
    channels_last = cfg.channels_last

    def prepare(xb, to_side: int = side, boxes=None):
        """uint8 (N, C, H, W) -> the model's float input at `to_side` (test preprocessing: the whole
        image resized; with `boxes` from resized_crop_draws, those random resized crops instead)."""
        x = xb.float().div_(255)
        if in_ch == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale replicated for RGB models
        if boxes is not None:
            x = resized_crop(x, boxes, to_side)
        elif to_side != x.shape[-1]:
            x = F.interpolate(x, size=(to_side, to_side), mode="bilinear", antialias=True, align_corners=False)
        x = normalize(x)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    # --- model, optimizer, schedule
    several_sides = bool(cfg.test_resolutions or cfg.fixres_epochs)
    model = model_spec.build(num_classes, cfg.weights == "pretrained", cfg.seed, None if several_sides else side).to(dev)
    if cfg.init_scale is not None:
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        with torch.no_grad():  # source 002's compensation: rescale conv1's initial weight and bias
            first_conv.weight.mul_(cfg.init_scale[0])
            if first_conv.bias is not None:
                first_conv.bias.mul_(cfg.init_scale[1])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    bn_layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    forward = torch.compile(model) if cfg.compile else model  # same parameters; BN layers shared
    steps_per_epoch = len(xtr) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.train and total_steps == 0:
        raise RunFailed(f"zero optimizer steps: {len(xtr)} training images, batch {cfg.batch_size}, {cfg.epochs} epochs")
    if cfg.train and bn_layers and not cfg.bn_recalibration:
        momentum = min(m.momentum for m in bn_layers if m.momentum is not None)
        stale = stale_bn_fraction(momentum, total_steps)
        if stale > STALE_BN_LIMIT:
            raise RunFailed(
                f"BatchNorm running statistics cannot have converged: {total_steps} steps at momentum {momentum} "
                f"leave {stale:.0%} of the pretrained statistics; enable bn_recalibration"
            )
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    sched = plateau = None  # per step, or per epoch on the training loss
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(total_steps, 1))))
    elif cfg.schedule == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min")
    elif cfg.schedule != "constant":
        raise UsageError(f"unknown schedule {cfg.schedule!r} (available: cosine, constant, plateau)")
    if cfg.augment not in ("crop_flip", "random_resized_crop", "none"):
        raise UsageError(f"unknown augmentation {cfg.augment!r} (available: crop_flip, random_resized_crop, none)")
    autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")  # noqa: E731
    pad = max(1, native // 8) if cfg.augment == "crop_flip" else 0
    flip = cfg.augment == "crop_flip" and data_spec.hflip
    xtr_padded = pad_images(xtr, pad)  # padded once; batches are cropped straight out of it
    xtr = unpadded(xtr_padded, pad)  # a view: the images themselves, for evaluation-style passes

    def recalibrate_bn(layers, to_side: int = side):
        """Reset running stats and re-estimate them as a plain average over the train subset
        (momentum=None) with test preprocessing, these BatchNorm layers in train mode and every
        other layer (dropout included) in eval mode."""
        saved = [m.momentum for m in layers]
        model.eval()
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        with torch.no_grad(), autocast():
            for i in range(0, len(xtr), EVAL_BATCH):
                model(prepare(xtr[i:i + EVAL_BATCH], to_side))
        for m, mom in zip(layers, saved):
            m.momentum = mom
        model.eval()

    def evaluate(to_side: int = side) -> float:
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=dev)
        with torch.inference_mode(), autocast():
            for i in range(0, len(xte), EVAL_BATCH):
                logits = model(prepare(xte[i:i + EVAL_BATCH], to_side))
                correct += (logits.argmax(1) == yte[i:i + EVAL_BATCH]).sum()
        return correct.item() / len(xte)

    # --- the loop
    history, train_time, steps = [], 0.0, 0
    for epoch in range(1, (cfg.epochs if cfg.train else 0) + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        epoch_start = time.perf_counter()
        model.train()
        # the epoch's random draws, made on the CPU in step order and copied to the device once
        perm = torch.randperm(len(xtr), generator=order_gen).to(dev)
        bs, rrc = cfg.batch_size, cfg.augment == "random_resized_crop"
        if pad:
            crops = torch.stack([crop_flip_draws(bs, pad, flip, order_gen) for _ in range(steps_per_epoch)]).to(dev)
        if rrc:
            boxes = torch.stack([resized_crop_draws(bs, order_gen, flip=data_spec.hflip)
                                 for _ in range(steps_per_epoch)]).to(dev)
        loss_sum = torch.zeros((), device=dev)
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            xb = crop_flip_padded(xtr_padded, idx, crops[i], pad, flip) if pad else xtr[idx]
            x = prepare(xb, side, boxes[i] if rrc else None)  # fp32 preprocessing, outside autocast
            with autocast():
                loss = F.cross_entropy(forward(x), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.detach().float()
            steps += 1
        train_loss = loss_sum.item() / steps_per_epoch  # the epoch's one host sync
        epoch_seconds = time.perf_counter() - epoch_start
        train_time += epoch_seconds
        if not math.isfinite(train_loss):
            raise RunFailed(f"non-finite training loss at epoch {epoch}")
        last_lr = opt.param_groups[0]["lr"]  # where the epoch left it, before the plateau schedule looks
        if plateau is not None:
            plateau.step(train_loss)
        accuracy = None
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            if cfg.bn_recalibration and bn_layers:
                recalibrate_bn(bn_layers)
            accuracy = evaluate()
        history.append({"epoch": epoch, "train_loss": train_loss, "test_accuracy": accuracy,
                        "lr": last_lr, "train_seconds": round(epoch_seconds, 4)})
        if progress:
            acc_text = f", {cfg.evaluate_on} acc {accuracy:.4f}" if accuracy is not None else ""
            progress(f"{cfg.label()}: epoch {epoch}/{cfg.epochs}, loss {train_loss:.4f}{acc_text}")

    if cfg.train and steps != total_steps:  # the guard source 002's range(1, epochs) lacked
        raise RunFailed(f"ran {steps} optimizer steps, planned {total_steps}")
    final = history[-1]["test_accuracy"] if cfg.train else evaluate()

    # --- further evaluations: other test resolutions, then the FixRes stage
    metrics: dict = {}
    for r in cfg.test_resolutions:
        metrics[f"test@{r}"] = evaluate(r)
    meta_fixres = {}
    if cfg.fixres_epochs:
        metrics[f"fixres@{cfg.fixres_resolution}"], meta_fixres = fixres_stage(
            model, bn_layers, cfg, xtr, ytr, prepare, evaluate, autocast, order_gen)

    evaluated = [h["test_accuracy"] for h in history if h["test_accuracy"] is not None]
    mean, std = describe(norm)
    return RunResult(
        accuracy=final,
        history=history,
        steps=steps,
        train_images=steps * cfg.batch_size,
        wall_s=time.perf_counter() - started,
        images_per_s=steps * cfg.batch_size / train_time if train_time > 0 else 0.0,
        device=device_label(dev),
        norm_mean=mean,
        norm_std=std,
        best_accuracy=max(evaluated) if evaluated else None,
        metrics=metrics,
        meta={
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "host": platform.node(),
            **device_settings,  # threads; on CUDA the autotuner and TF32
            "parameter_dtypes": sorted({str(p.dtype) for p in model.parameters()}),  # autocast leaves them fp32
            "harness_version": HARNESS_VERSION,
            "train_images_in_subset": len(xtr),
            "eval_images": len(xte),
            "evaluated_on": cfg.evaluate_on,
            "resolution": side,
            "zero_shot": not cfg.train,
            **meta_fixres,
        },
    )


def make_optimizer(name: str, params, lr: float, weight_decay: float):
    """The run's optimizer, shared with bench/throughput.py's model-only kind. torch's default
    implementation: multi-tensor (foreach) on CUDA. Not fused: the fused Adam kernel refuses
    parameters whose gradients differ in stride on size-1 dimensions (pytorch#106951), which
    depthwise convolutions in channels_last can produce."""
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=weight_decay)
    raise UsageError(f"unknown optimizer {name!r} (available: adam, adadelta)")


def fixres_stage(model, bn_layers, cfg: RunConfig, xtr, ytr, prepare, evaluate, autocast, gen) -> tuple[float, dict]:
    """FixRes (Touvron et al. 2019): at the test resolution and with test preprocessing, train only
    the classifier while the last BatchNorm re-estimates its running statistics; everything else
    stays frozen. Returns the accuracy at that resolution, and what was trainable (asserted)."""
    r = cfg.fixres_resolution
    if not r:
        raise UsageError("fixres_epochs needs fixres_resolution")
    head = last_linear(model)
    last_bn = bn_layers[-1] if bn_layers else None
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not any(p is q for q in head.parameters())}
    freeze_all_but(model, head)
    # the optimizer takes whatever is trainable, so a freeze that failed shows in the check below
    opt = make_optimizer("adam", [p for p in model.parameters() if p.requires_grad], cfg.lr, 0.0)
    if last_bn is not None:
        last_bn.reset_running_stats()
        last_bn.momentum = None  # an exact average over the stage, whatever the model's momentum
    steps = 0
    for _ in range(cfg.fixres_epochs):
        model.eval()
        if last_bn is not None:
            last_bn.train()
        perm = torch.randperm(len(xtr), generator=gen).to(xtr.device)
        for i in range(len(xtr) // cfg.batch_size):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = prepare(xtr[idx], r)
            with autocast():
                loss = F.cross_entropy(model(x), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    if steps == 0:
        raise RunFailed("the FixRes stage ran zero optimizer steps")
    changed = [n for n, p in model.named_parameters() if n in frozen and not torch.equal(p.detach(), frozen[n])]
    if changed:  # the stage's definition, asserted rather than assumed
        raise RunFailed(f"FixRes stage changed frozen parameters: {', '.join(changed[:3])}")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    for p in model.parameters():
        p.requires_grad_(True)
    return evaluate(r), {"fixres_trainable": trainable, "fixres_steps": steps,
                         "fixres_bn": type(last_bn).__name__ if last_bn is not None else None}


def freeze_all_but(model, head) -> None:
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)


def last_linear(model) -> torch.nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise UsageError("FixRes needs a model with a linear classifier")
    return linears[-1]


def device_label(dev) -> str:
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.processor() or platform.machine()})"
