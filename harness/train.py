"""The fine-tuning loop: from a RunConfig to a RunResult, as small steps read top to bottom.

The dataset lives on the run's device as uint8; cropping, flipping and normalization are batched
tensor ops there; the loss is summed on the device and read once per epoch.
"""
from __future__ import annotations

import dataclasses
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from harness import HARNESS_VERSION
from harness.budget import settle_epoch, settle_step
from harness.augment import crop_flip_draws, crop_flip_padded, pad_images, resized_crop, resized_crop_draws, unpadded
from harness.config import FIXRES_VARIANTS, RunConfig, RunResult
from harness.datasets import dataset_stats, get_dataset, load_arrays, subset_indices
from harness.devices import enter_device
from harness.errors import RunFailed, UsageError
from harness.models import MODELS
from harness.norms import NormContext, describe, make_normalizer, resolve
from harness.epochs import EpochProgress
from harness.protocol import STALE_BN_LIMIT, stale_bn_fraction

RECAL_BATCH = 500  # BN re-estimation batch: the statistics are per batch, so it is part of the recipe
# evaluation batch: the logits do not depend on it (bitwise, bench/eval_batch.py checks); on the CPU a
# batch of 500's activations leaves the cache, 1.5 to 1.8x slower an image than 128 (measured)
EVAL_BATCH_CPU = 128
EVAL_BATCH = 500  # on a GPU


def eval_batch(dev: torch.device) -> int:
    return EVAL_BATCH_CPU if dev.type == "cpu" else EVAL_BATCH


def finetune(cfg: RunConfig, device: str, data_dir: Path, progress: Callable[[EpochProgress], None] | None = None,
             threads: int | None = None) -> RunResult:
    """Train and evaluate one run. `threads`: intra-op threads (the CPU run's arithmetic, or the host
    side of a GPU run); None keeps the process's setting. CPU results are bitwise reproducible at a
    fixed thread count and differ in the last bits between counts, so the count is recorded in meta."""
    started = time.perf_counter()
    cfg.check()
    dev = torch.device(device)
    if dev.type != cfg.device_type:
        raise UsageError(f"run {cfg.label()} is configured for {cfg.device_type}, asked to run on {device}")
    device_settings = enter_device(device, threads)
    torch.manual_seed(cfg.seed)  # dropout and any body initialisation; the head has its own generator
    gen = torch.Generator().manual_seed(cfg.seed)  # data order and augmentation draws

    run = setup_run(cfg, dev, data_dir)
    log = train_loop(run, cfg, gen, progress) if cfg.train else TrainLog()
    final = log.history[-1]["test_accuracy"] if cfg.train else evaluate(run)
    metrics = {f"test@{r}": evaluate(run, r) for r in cfg.test_resolutions}
    metrics.update(shifted_evaluations(run, cfg, data_dir))
    meta_fixres = {}
    if cfg.fixres_epochs:
        metrics.update(fixres_metrics(run, cfg, gen))
        meta_fixres = metrics.pop("meta")
    return assemble_result(run, cfg, log, final, metrics, device_settings, meta_fixres,
                           wall_s=time.perf_counter() - started)


@dataclass
class RunState:
    """One run on its device: the data (uint8), the input preprocessing and the model."""
    dev: torch.device
    xtr_padded: torch.Tensor  # the train images padded once; crop_flip batches are cropped out of it
    pad: int
    xtr: torch.Tensor  # the train images themselves: a view into xtr_padded, for evaluation-style passes
    ytr: torch.Tensor
    xte: torch.Tensor
    yte: torch.Tensor
    side: int  # the side the model trains and is evaluated at
    hflip: bool  # whether the dataset allows horizontal flips
    normalize: Callable
    in_ch: int  # the model's input channels
    channels_last: bool
    bf16: bool  # autocast to bfloat16
    model: torch.nn.Module
    forward: Callable  # the model, or its compiled form: same parameters and BN layers
    bn_layers: list
    norm: object  # the resolved normalization, recorded with the result

    def prepare(self, xb, to_side: int | None = None, boxes=None):
        """uint8 (N, C, H, W) -> the model's float input at `to_side` (test preprocessing: the whole
        image resized; with `boxes` from resized_crop_draws, those random resized crops instead)."""
        to_side = to_side or self.side
        x = xb.float().div_(255)
        if self.in_ch == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale replicated for RGB models
        if boxes is not None:
            x = resized_crop(x, boxes, to_side)
        elif to_side != x.shape[-1]:
            x = F.interpolate(x, size=(to_side, to_side), mode="bilinear", antialias=True, align_corners=False)
        x = self.normalize(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self):
        return torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.bf16)


@dataclass
class TrainLog:
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    steps: int = 0  # optimizer steps run
    seconds: float = 0.0  # time in the training loop, evaluation excluded
    step_losses: list = field(default_factory=list)  # per epoch, a device tensor of its steps' losses

    def loss_quarters(self) -> list[float]:
        """Mean training loss over each quarter of the run's steps: whether the run was still
        improving at its end (harness.budget) reads the last two."""
        if not self.step_losses:
            return []
        losses = torch.cat(self.step_losses).float().cpu()
        return [round(q.mean().item(), 6) for q in torch.tensor_split(losses, 4) if len(q)]


def norm_context(cfg: RunConfig, data_dir: Path) -> NormContext:
    """What a normalization spec resolves against: the dataset's statistics, the weights' own."""
    model_spec = MODELS.get(cfg.model)
    pretrain = model_spec.pretrain_norm if cfg.weights == "pretrained" else None
    return NormContext(lambda est: dataset_stats(cfg.dataset, data_dir, est), pretrain, cfg.model)


def shifted_evaluations(run: RunState, cfg: RunConfig, data_dir: Path) -> dict[str, float]:
    """The trained network evaluated with other input normalizations, as it is (no BatchNorm
    re-estimation): metrics "norm@SPEC"."""
    ctx = norm_context(cfg, data_dir)
    return {f"norm@{spec}": evaluate(dataclasses.replace(run, normalize=make_normalizer(resolve(spec, ctx), run.in_ch, run.dev)))
            for spec in cfg.test_norms}


def setup_run(cfg: RunConfig, dev: torch.device, data_dir: Path) -> RunState:
    """Data, normalization (resolved to numbers) and model, on the device."""
    model_spec, data_spec = MODELS.get(cfg.model), get_dataset(cfg.dataset)
    xtr, ytr, xte, yte, num_classes = load_data(cfg, dev, data_dir)
    native, side = xtr.shape[-1], cfg.resolution or xtr.shape[-1]
    in_ch = model_spec.in_channels
    if in_ch == 1 and xtr.shape[1] != 1:
        raise UsageError(f"model {cfg.model} takes grayscale images; {cfg.dataset} is RGB")
    norm = resolve(cfg.norm, norm_context(cfg, data_dir))
    normalize = make_normalizer(norm, in_ch, dev)
    model = build_model(cfg, model_spec, num_classes, side, dev)
    bn_layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    pad = max(1, native // 8) if cfg.augment == "crop_flip" else 0
    xtr_padded = pad_images(xtr, pad)
    return RunState(
        dev=dev, xtr_padded=xtr_padded, pad=pad, xtr=unpadded(xtr_padded, pad), ytr=ytr, xte=xte, yte=yte,
        side=side, hflip=data_spec.hflip, normalize=normalize, in_ch=in_ch, channels_last=cfg.channels_last,
        bf16=cfg.precision == "bf16", model=model, forward=torch.compile(model) if cfg.compile else model,
        bn_layers=bn_layers, norm=norm)


def load_data(cfg: RunConfig, dev: torch.device, data_dir: Path):
    """The fixed train and evaluation subsets as uint8 on the device, and the number of classes.
    evaluate_on='val' holds a part of the train split out (never the test set: for searches)."""
    x_train, y_train = load_arrays(cfg.dataset, data_dir, train=True)
    tr = subset_indices(y_train, cfg.train_subset)
    if cfg.evaluate_on == "val":
        x_eval, y_eval, ev = x_train, y_train, subset_indices(y_train, cfg.test_subset or 10_000, exclude=tr)
    else:
        x_eval, y_eval = load_arrays(cfg.dataset, data_dir, train=False)
        ev = subset_indices(y_eval, cfg.test_subset)
    xtr = torch.from_numpy(np.ascontiguousarray(x_train[tr])).to(dev)
    ytr = torch.from_numpy(y_train[tr]).to(dev)
    xte = torch.from_numpy(np.ascontiguousarray(x_eval[ev])).to(dev)
    yte = torch.from_numpy(y_eval[ev]).to(dev)
    return xtr, ytr, xte, yte, get_dataset(cfg.dataset).num_classes or int(y_train.max()) + 1


def build_model(cfg: RunConfig, spec, num_classes: int, side: int, dev: torch.device) -> torch.nn.Module:
    """The model on the device; built for one input side only when the run evaluates at no other."""
    several_sides = bool(cfg.test_resolutions or cfg.fixres_epochs)
    model = spec.build(num_classes, cfg.weights == "pretrained", cfg.seed, None if several_sides else side).to(dev)
    if cfg.init_scale is not None:
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        with torch.no_grad():  # source 002's compensation: rescale conv1's initial weight and bias
            first_conv.weight.mul_(cfg.init_scale[0])
            if first_conv.bias is not None:
                first_conv.bias.mul_(cfg.init_scale[1])
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def planned_steps(run: RunState, cfg: RunConfig) -> int:
    """The run's optimizer steps, refused when there are none or too few for BatchNorm's statistics."""
    total = len(run.xtr) // cfg.batch_size * cfg.epochs
    if total == 0:
        raise RunFailed(f"zero optimizer steps: {len(run.xtr)} training images, batch {cfg.batch_size}, "
                        f"{cfg.epochs} epochs")
    if run.bn_layers and not cfg.bn_recalibration:
        momentum = min(m.momentum for m in run.bn_layers if m.momentum is not None)
        stale = stale_bn_fraction(momentum, total)
        if stale > STALE_BN_LIMIT:
            raise RunFailed(f"BatchNorm running statistics cannot have converged: {total} steps at momentum "
                            f"{momentum} leave {stale:.0%} of the pretrained statistics; enable bn_recalibration")
    return total


def make_schedule(cfg: RunConfig, opt, total_steps: int):
    """(per-step scheduler, per-epoch plateau scheduler on the training loss); either may be None."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(total_steps, 1)))), None
    if cfg.schedule == "plateau":
        return None, torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min")
    return None, None


def train_loop(run: RunState, cfg: RunConfig, gen: torch.Generator, progress) -> TrainLog:
    """The epochs: train, step the plateau schedule, evaluate when due, report."""
    total_steps = planned_steps(run, cfg)
    opt = make_optimizer(cfg.optimizer, run.model.parameters(), cfg.lr, cfg.weight_decay)
    sched, plateau = make_schedule(cfg, opt, total_steps)
    log = TrainLog()
    for epoch in range(1, cfg.epochs + 1):
        if run.dev.type == "cuda":
            torch.cuda.synchronize(run.dev)
        epoch_start = time.perf_counter()
        train_loss, steps, losses = train_epoch(run, cfg, opt, sched, gen)
        log.step_losses.append(losses)
        epoch_seconds = time.perf_counter() - epoch_start
        log.steps += steps
        log.seconds += epoch_seconds
        if not math.isfinite(train_loss):
            raise RunFailed(f"non-finite training loss at epoch {epoch}")
        last_lr = opt.param_groups[0]["lr"]  # where the epoch left it, before the plateau schedule looks
        if plateau is not None:
            plateau.step(train_loss)
        accuracy = None
        if epoch % cfg.eval_every == 0 or epoch in (settle_epoch(cfg.epochs), cfg.epochs):
            if cfg.bn_recalibration and run.bn_layers:
                recalibrate_bn(run, cfg)
            accuracy = evaluate(run)
        log.history.append({"epoch": epoch, "train_loss": train_loss, "test_accuracy": accuracy,
                            "lr": last_lr, "train_seconds": round(epoch_seconds, 4)})
        if progress:  # str() of the event is the log line
            progress(EpochProgress(cfg.label(), epoch, cfg.epochs, train_loss, accuracy, cfg.evaluate_on,
                                   steps * cfg.batch_size / epoch_seconds if epoch_seconds > 0 else None))
    if log.steps != total_steps:
        raise RunFailed(f"ran {log.steps} optimizer steps, planned {total_steps}")
    return log


def train_epoch(run: RunState, cfg: RunConfig, opt, sched, gen: torch.Generator) -> tuple[float, int, torch.Tensor]:
    """One pass over the train subset: (mean training loss, steps run, each step's loss on the device).
    The epoch's random draws are made on the CPU in step order and copied to the device once; the
    loss is read once, at the end."""
    run.model.train()
    bs, steps_per_epoch = cfg.batch_size, len(run.xtr) // cfg.batch_size
    rrc = cfg.augment == "random_resized_crop"
    perm = torch.randperm(len(run.xtr), generator=gen).to(run.dev)
    if run.pad:
        crops = torch.stack([crop_flip_draws(bs, run.pad, run.hflip, gen) for _ in range(steps_per_epoch)]).to(run.dev)
    if rrc:
        boxes = torch.stack([resized_crop_draws(bs, gen, flip=run.hflip) for _ in range(steps_per_epoch)]).to(run.dev)
    loss_sum, steps, losses = torch.zeros((), device=run.dev), 0, []
    for i in range(steps_per_epoch):
        idx = perm[i * bs:(i + 1) * bs]
        xb = crop_flip_padded(run.xtr_padded, idx, crops[i], run.pad, run.hflip) if run.pad else run.xtr[idx]
        x = run.prepare(xb, run.side, boxes[i] if rrc else None)  # fp32 preprocessing, outside autocast
        loss = optimizer_step(run.forward, opt, x, run.ytr[idx], run.autocast)
        if sched is not None:
            sched.step()
        loss_sum += loss.detach().float()
        losses.append(loss.detach().float())
        steps += 1
    return loss_sum.item() / steps_per_epoch, steps, torch.stack(losses) if losses else torch.zeros(0)


def optimizer_step(forward, opt, x, y, autocast: Callable) -> torch.Tensor:
    """One training step, shared by the loop, the FixRes stage and bench/throughput.py: forward and
    cross entropy under `autocast()` (a context factory), backward, step. Returns the loss."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        loss = F.cross_entropy(forward(x), y)
    loss.backward()
    opt.step()
    return loss


def evaluate(run: RunState, to_side: int | None = None) -> float:
    """Accuracy on the evaluation subset with test preprocessing at `to_side` (default: the run's)."""
    run.model.eval()
    correct = torch.zeros((), dtype=torch.long, device=run.dev)
    with torch.inference_mode(), run.autocast():
        batch = eval_batch(run.dev)
        for i in range(0, len(run.xte), batch):
            logits = run.model(run.prepare(run.xte[i:i + batch], to_side))
            correct += (logits.argmax(1) == run.yte[i:i + batch]).sum()
    return correct.item() / len(run.xte)


def recalibrate_bn(run: RunState, cfg: RunConfig) -> None:
    """Reset the BatchNorm running stats and re-estimate them as a plain average over the train
    subset (momentum=None), BN layers in train mode, every other layer (dropout included) in eval
    mode. The inputs are those training sees: a run trained on random resized crops re-estimates on
    such crops (drawn from their own generator), so its statistics favour no test side (FixRes
    compares test sides with the statistics training left); other runs on whole images."""
    saved = [m.momentum for m in run.bn_layers]
    run.model.eval()
    for m in run.bn_layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    crops = torch.Generator().manual_seed(20_000 + cfg.seed) if cfg.augment == "random_resized_crop" else None
    with torch.no_grad(), run.autocast():
        for i in range(0, len(run.xtr), RECAL_BATCH):
            xb = run.xtr[i:i + RECAL_BATCH]
            boxes = resized_crop_draws(len(xb), crops, flip=run.hflip).to(run.dev) if crops is not None else None
            run.model(run.prepare(xb, run.side, boxes))
    for m, mom in zip(run.bn_layers, saved):
        m.momentum = mom
    run.model.eval()


def fixres_metrics(run: RunState, cfg: RunConfig, gen: torch.Generator) -> dict:
    """The FixRes stage ("fixres@R"), and each variant of source 004's ablation that fixres_ablation
    names ("fixres[VARIANT]@R"), every one from the same trained network and the same data order. The
    stage's meta under "meta"."""
    r = cfg.fixres_resolution
    trained = {k: v.detach().clone() for k, v in run.model.state_dict().items()} if cfg.fixres_ablation else None
    draws = gen.get_state()
    out = {}
    out[f"fixres@{r}"], out["meta"] = fixres_stage(run, cfg, gen, settle=True)
    for name in cfg.fixres_ablation:
        bn, test_da = FIXRES_VARIANTS[name]
        run.model.load_state_dict(trained)
        variant_gen = torch.Generator().set_state(draws)  # the variants differ in what they train, not in data
        out[f"fixres[{name}]@{r}"], _ = fixres_stage(run, cfg, variant_gen, bn=bn, test_da=test_da)
    return out


def fixres_stage(run: RunState, cfg: RunConfig, gen: torch.Generator, bn: bool = True,
                 test_da: bool = True, settle: bool = False) -> tuple[float, dict]:
    """FixRes (Touvron et al. 2019): at the test resolution and with test preprocessing, train only
    the classifier while the last BatchNorm re-estimates its running statistics; everything else
    stays frozen. Returns the accuracy at that resolution, and what was trainable (asserted).
    Source 004's ablation: `bn=False` leaves the last BatchNorm as trained; `test_da=False` trains
    on random resized crops at that resolution (the training augmentation) instead."""
    r, model, xtr, bs = cfg.fixres_resolution, run.model, run.xtr, cfg.batch_size
    head = last_linear(model)
    last_bn = run.bn_layers[-1] if run.bn_layers and bn else None
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not any(p is q for q in head.parameters())}
    freeze_all_but(model, head)
    # the optimizer takes whatever is trainable, so a freeze that failed shows in the check below
    opt = make_optimizer("adam", [p for p in model.parameters() if p.requires_grad], cfg.lr, 0.0)
    if last_bn is not None:
        last_bn.reset_running_stats()
        last_bn.momentum = None  # an exact average over the stage, whatever the model's momentum
    steps, total = 0, len(xtr) // bs * cfg.fixres_epochs
    settle_at, settled = (settle_step(total) if settle else 0), None

    def stage_modes():  # everything frozen in eval mode, the last BatchNorm estimating its statistics
        model.eval()
        if last_bn is not None:
            last_bn.train()

    for _ in range(cfg.fixres_epochs):
        stage_modes()
        perm = torch.randperm(len(xtr), generator=gen).to(run.dev)
        for i in range(len(xtr) // bs):
            idx = perm[i * bs:(i + 1) * bs]
            boxes = None if test_da else resized_crop_draws(len(idx), gen, flip=run.hflip).to(run.dev)
            optimizer_step(model, opt, run.prepare(xtr[idx], r, boxes), run.ytr[idx], run.autocast)
            steps += 1
            if steps == settle_at:  # three quarters of the stage: whether it converged (harness.budget)
                settled = evaluate(run, r)
                stage_modes()  # evaluate left every layer in eval mode
    if steps == 0:
        raise RunFailed("the FixRes stage ran zero optimizer steps")
    changed = [n for n, p in model.named_parameters() if n in frozen and not torch.equal(p.detach(), frozen[n])]
    if changed:  # the stage's definition, asserted rather than assumed
        raise RunFailed(f"FixRes stage changed frozen parameters: {', '.join(changed[:3])}")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    for p in model.parameters():
        p.requires_grad_(True)
    return evaluate(run, r), {"fixres_trainable": trainable, "fixres_steps": steps, "fixres_settle_accuracy": settled,
                              "fixres_bn": type(last_bn).__name__ if last_bn is not None else None}


def assemble_result(run: RunState, cfg: RunConfig, log: TrainLog, final: float, metrics: dict,
                    device_settings: dict, meta_fixres: dict, wall_s: float) -> RunResult:
    evaluated = [h["test_accuracy"] for h in log.history if h["test_accuracy"] is not None]
    mean, std = describe(run.norm)
    images = log.steps * cfg.batch_size
    return RunResult(
        accuracy=final, history=log.history, steps=log.steps, train_images=images, wall_s=wall_s,
        images_per_s=images / log.seconds if log.seconds > 0 else 0.0, device=device_label(run.dev),
        norm_mean=mean, norm_std=std, best_accuracy=max(evaluated) if evaluated else None, metrics=metrics,
        meta={
            "torch": torch.__version__, "cuda": torch.version.cuda, "host": platform.node(),
            **device_settings,  # threads; on CUDA the autotuner and TF32
            "parameter_dtypes": sorted({str(p.dtype) for p in run.model.parameters()}),  # autocast leaves them fp32
            "harness_version": HARNESS_VERSION, "train_images_in_subset": len(run.xtr),
            "eval_images": len(run.xte), "evaluated_on": cfg.evaluate_on, "resolution": run.side,
            "zero_shot": not cfg.train, "train_loss_quarters": log.loss_quarters(), **meta_fixres,
        },
    )


def make_optimizer(name: str, params, lr: float, weight_decay: float):
    """The run's optimizer, shared with bench/throughput.py's model-only kind. torch's default
    implementation: multi-tensor (foreach) on CUDA. Not fused: the fused Adam kernel refuses
    parameters whose gradients differ in stride on size-1 dimensions (pytorch#106951), which
    depthwise convolutions in channels_last can produce."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=weight_decay)
    raise UsageError(f"unknown optimizer {name!r} (available: adam, adadelta)")


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
