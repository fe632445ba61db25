"""Throughput benchmark: the harness against the model's own speed limit and the sources' pipeline.

    python bench/throughput.py                       # CPU defaults, a few minutes on 2 cores
    python bench/throughput.py --device cuda:0 --batch 256 --steps 20
    python bench/throughput.py --models resnet18 --side64 none --workers 1,2,4

Every figure comes from this one invocation (machines are noisy: compare ratios, not runs):
- data path alone, one epoch of a 32 px RGB set: the harness's batched on-device crop/flip/
  normalize vs the sources' PIL transforms in a DataLoader with one worker;
- training per model: the harness's real fine-tuning loop (finetune(), one epoch per window),
  the same model on synthetic tensors already on the device (model-only, the upper bound), and
  the sources' pipeline feeding the same model; efficiency = harness / model-only, speed-up =
  harness / sources;
- peak memory per configuration: each measurement runs in its own process (CUDA max allocated,
  or the process's peak RSS on the CPU);
- workers: total training images/s of 1, 2, ... harness processes side by side, each with its
  share of the cores (what `pytest -n W` does; on a GPU, W processes sharing it).
Each training figure is the best of --rounds x --repeats timed windows, the harness, model-only
and sources' processes alternating round by round (noise only slows a window down); the data
path likewise, best of --rounds x --data-repeats epochs; the workers' figure is each process's
sustained rate.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.devices import available_cores, core_share, enter_device  # noqa: E402  (after the path: runs from a checkout)

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's, as the sources used


# ------------------------------------------------------------------ one measurement (child process)
def synthetic_arrays(side: int, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, side, side), dtype=np.uint8), rng.integers(0, 10, n)


def sources_loader(side: int, batch: int, n: int):
    """The sources' data path: PIL images, torchvision transforms on the CPU, one DataLoader worker."""
    import torch
    from PIL import Image
    from torchvision import transforms

    x, y = synthetic_arrays(side, n)
    images = [Image.fromarray(img.transpose(1, 2, 0)) for img in x]
    tf = transforms.Compose([transforms.RandomCrop(side, padding=side // 8), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    class PILSet(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            return tf(images[i]), int(y[i])

    return torch.utils.data.DataLoader(PILSet(), batch_size=batch, shuffle=True, num_workers=1, drop_last=True,
                                       persistent_workers=False)


def harness_loader(side: int, batch: int, n: int, device):
    """The harness's data path: uint8 on the device, batched crop/flip, float, normalize.
    Returns a function giving one epoch's batches (the dataset is put on the device once)."""
    import torch

    from harness.augment import crop_flip_draws, crop_flip_padded, pad_images
    from harness.norms import Affine, make_normalizer

    x, y = synthetic_arrays(side, n)
    pad = side // 8
    xs, ys = pad_images(torch.from_numpy(x).to(device), pad), torch.from_numpy(y).to(device)
    normalize = make_normalizer(Affine(MEAN, STD), 3, device)
    gen = torch.Generator().manual_seed(0)

    def epoch():  # as the training loop does it: the epoch's draws made at once, one copy each
        perm = torch.randperm(n, generator=gen).to(device)
        draws = torch.stack([crop_flip_draws(batch, pad, True, gen) for _ in range(n // batch)]).to(device)
        for i in range(n // batch):
            idx = perm[i * batch:(i + 1) * batch]
            yield normalize(crop_flip_padded(xs, idx, draws[i], pad, True).float().div_(255)), ys[idx]

    return epoch


def sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def measure_data(kind: str, side: int, batch: int, n: int, device, repeats: int) -> float:
    """Images per second of the data path alone (batches materialised on the device): the best of
    `repeats` epochs. Building the dataset is not timed; starting the sources' worker is (it
    restarts every epoch in their loop)."""
    if kind == "harness":
        epoch = harness_loader(side, batch, n, device)
    else:
        loader = sources_loader(side, batch, n)
        epoch = lambda: iter(loader)  # noqa: E731
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        seen = 0
        for xb, _ in epoch():
            xb = xb.to(device, non_blocking=True)
            seen += len(xb)
        sync(device)
        best = max(best, seen / (time.perf_counter() - start))
    return best


def build(model_name: str, side: int, device, channels_last: bool):
    import torch

    from harness.models import MODELS

    spec = MODELS.get(model_name)
    pretrained = model_name == "efficientnet_lite0"  # weights do not change the arithmetic
    model = spec.build(10, pretrained, 0, side).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def measure_train(kind: str, model_name: str, side: int, batch: int, steps: int, warmup: int, device, args) -> float:
    """Training images per second: model-only, the sources' pipeline, or the harness's finetune().
    Each is the best of `args.repeats` windows of `steps` steps after `warmup` untimed ones."""
    import torch
    import torch.nn.functional as F

    from harness.train import make_optimizer

    cuda = str(device).startswith("cuda")
    precision = "bf16" if cuda else "fp32"
    autocast = lambda: torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda)  # noqa: E731
    if kind in ("harness", "harness_mean"):
        from harness.config import PROFILES
        from harness.protocol import Numerics, make_config
        from harness.train import finetune

        numerics = Numerics("cuda" if cuda else "cpu", precision, compile=args.compile)
        weights = "pretrained" if model_name == "efficientnet_lite0" else "scratch"
        epochs = 1 + args.repeats  # the first epoch is the warm-up; an epoch is one timed window
        cfg = make_config(model=model_name, dataset=f"synthetic:{side}", norm="fixed:0.5/0.25", seed=0,
                          profile=PROFILES["smoke"], numerics=numerics, weights=weights, batch_size=batch,
                          train_subset=batch * steps, test_subset=batch, epochs=epochs, eval_every=epochs,
                          bn_recalibration=True)  # a few steps: re-estimate rather than trip the stale-BN guard
        with tempfile.TemporaryDirectory() as data_dir:
            result = finetune(cfg, str(device), Path(data_dir), threads=args.threads)
        timed = result.history[1:]
        if kind == "harness_mean":  # sustained rate, for processes running side by side
            return batch * steps * len(timed) / sum(h["train_seconds"] for h in timed)
        return max(batch * steps / h["train_seconds"] for h in timed)
    model = build(model_name, side, device, channels_last=True)
    opt = make_optimizer("adam", model.parameters(), 1e-3, 0.0, torch.device(device).type)  # as finetune() does
    if args.compile:
        model = torch.compile(model)
    model.train()

    def step(xb, yb):
        with autocast():
            loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    total = warmup + steps * args.repeats
    if kind == "model_only":
        xb = torch.randn(batch, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)
        yb = torch.randint(0, 10, (batch,), device=device)
        batches = ((xb, yb) for _ in range(total))
    else:  # the sources' pipeline
        batches = (
            (xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last), yb.to(device))
            for xb, yb in sources_loader(side, batch, batch * total)
        )
    best = 0.0
    for i, (xb, yb) in enumerate(batches):
        if i >= warmup and (i - warmup) % steps == 0:  # a window starts
            sync(device)
            start = time.perf_counter()
        step(xb, yb)
        if i >= warmup and (i - warmup) % steps == steps - 1:  # a window ends
            sync(device)
            best = max(best, batch * steps / (time.perf_counter() - start))
    return best


def child(args) -> None:
    import torch

    device = torch.device(args.device)
    enter_device(args.device, args.threads)  # threads; on CUDA the current device and autotuner, as a run sets them
    if args.kind in ("harness_data", "sources_data"):
        value = measure_data(args.kind.split("_")[0], args.side, args.data_batch, args.data_images, device,
                             args.data_repeats)
    else:
        value = measure_train(args.kind, args.model, args.side, args.batch, args.steps, args.warmup, device, args)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"images_per_s": value, "peak_mib": peak}))


# ------------------------------------------------------------------ the table (parent process)
def start_child(args, kind: str, model: str = "-", side: int = 32, threads: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", kind, "--model", model, "--side", str(side), "--device", args.device,
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(threads or args.threads), "--repeats", str(args.repeats),
           "--data-images", str(args.data_images), "--data-batch", str(args.data_batch),
           "--data-repeats", str(args.data_repeats)]
    cmd += ["--compile"] if args.compile else []
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def finish_child(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(proc.args[2:5])} failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_child(args, kind: str, model: str = "-", side: int = 32) -> dict:
    return finish_child(start_child(args, kind, model, side))


def workers_table(args, cores: int) -> tuple[str, list[list]]:
    """Total training images/s of W harness processes side by side (as `pytest -n W` runs them),
    each with its share of the cores, for each W in --workers."""
    rows, base = [], None
    for w in (int(v) for v in args.workers.split(",")):
        threads = core_share(cores, w)
        procs = [start_child(args, "harness_mean", args.workers_model, 32, threads) for _ in range(w)]
        rates = [finish_child(p)["images_per_s"] for p in procs]
        total = sum(rates)
        base = base or total
        rows.append([w, threads, " / ".join(f"{r:,.1f}" for r in rates), f"{total:,.1f}", f"{total / base:.2f}x"])
    title = (f"Workers: {args.workers_model} @32px, harness processes side by side (as pytest -n W), "
             f"each with cores // W threads, {args.repeats} epochs of {args.steps} steps each:")
    return title, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N. Default: %(default)s")
    parser.add_argument("--models", default="resnet18,resnet50,densenet121,efficientnet_lite0",
                        help="comma list. Default: %(default)s")
    parser.add_argument("--side64", default="resnet18", help="model also measured at 64 px, or 'none'. Default: %(default)s")
    parser.add_argument("--batch", type=int, default=64, help="training batch. Default: %(default)s")
    parser.add_argument("--warmup", type=int, default=4,
                        help="untimed steps first (the harness's untimed first epoch has --steps). Default: %(default)s")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed window. Default: %(default)s")
    parser.add_argument("--repeats", type=int, default=4,
                        help="timed windows per process; the best counts (noise only slows). Default: %(default)s")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of training processes, the three kinds alternating. Default: %(default)s")
    parser.add_argument("--threads", type=int, default=available_cores(),
                        help="intra-op threads, as one harness process on this machine uses. Default: %(default)s")
    parser.add_argument("--data-images", type=int, default=10_000, help="images in the data-path epoch. Default: %(default)s")
    parser.add_argument("--data-batch", type=int, default=256, help="batch of the data-path epoch. Default: %(default)s")
    parser.add_argument("--data-repeats", type=int, default=5,
                        help="data-path epochs per process; the best counts. Default: %(default)s")
    parser.add_argument("--workers", default="1,2",
                        help="comma list of process counts to run side by side, or 'none'. Default: %(default)s")
    parser.add_argument("--workers-model", default="efficientnet_lite0",
                        help="model of the workers table. Default: %(default)s")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="-", help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.kind = args.child
        return child(args)

    from harness.errors import UsageError
    from harness.models import MODELS

    try:  # unknown names get "did you mean"; the benchmark's data are 32 px RGB
        for name in {*args.models.split(","), args.workers_model} | ({args.side64} - {"none"}):
            if MODELS.get(name).in_channels != 3:
                raise UsageError(f"model {name} takes grayscale images; the benchmark trains on RGB")
    except UsageError as exc:
        parser.error(str(exc))

    import torch
    from tabulate import tabulate

    started = time.perf_counter()
    print(f"device {args.device} | torch {torch.__version__} | threads {args.threads} | cores {os.cpu_count()} | "
          f"{platform.processor() or platform.machine()}")
    print("command: python " + " ".join(sys.argv))
    found = []
    for r in range(args.rounds):
        order = ("harness_data", "sources_data")[::1 if r % 2 == 0 else -1]
        measured = {kind: run_child(args, kind) for kind in order}
        found.append((measured["harness_data"], measured["sources_data"]))
    ours, theirs = ({"images_per_s": max(r[k]["images_per_s"] for r in found)} for k in (0, 1))
    print(f"\nData path, one epoch of {args.data_images:,} 32 px RGB images, batch {args.data_batch} "
          f"(crop with padding, flip, normalize), best of {args.rounds} rounds x {args.data_repeats} epochs:")
    print(tabulate([[f"{ours['images_per_s']:,.0f}", f"{theirs['images_per_s']:,.0f}",
                     f"{ours['images_per_s'] / theirs['images_per_s']:.1f}x"]],
                   headers=["harness img/s", "sources' img/s (PIL + DataLoader, 1 worker)", "ratio"], tablefmt="github"))
    configs = [(m, 32) for m in args.models.split(",")]
    if args.side64 != "none":
        configs.append((args.side64, 64))
    rows = []
    kinds = ("harness", "model_only", "sources")
    for model, side in configs:
        # the three alternate in rounds, so a slow spell of this shared machine hits all of them,
        # and every other round runs them in reverse order, so none is always first
        found = []
        for r in range(args.rounds):
            order = kinds if r % 2 == 0 else kinds[::-1]
            measured = {kind: run_child(args, kind, model, side) for kind in order}
            found.append([measured[kind] for kind in kinds])
        h, m, s = ({"images_per_s": max(r[k]["images_per_s"] for r in found),
                    "peak_mib": max(r[k]["peak_mib"] for r in found)} for k in range(len(kinds)))
        rows.append([f"{model} @{side}px", f"{h['images_per_s']:,.1f}", f"{m['images_per_s']:,.1f}",
                     f"{s['images_per_s']:,.1f}", f"{h['images_per_s'] / m['images_per_s']:.2f}",
                     f"{h['images_per_s'] / s['images_per_s']:.2f}x",
                     f"{h['peak_mib']:,.0f} / {m['peak_mib']:,.0f} / {s['peak_mib']:,.0f}"])
    print(f"\nTraining, batch {args.batch}, best of {args.rounds} rounds x {args.repeats} windows of {args.steps} steps "
          f"(after {args.warmup} warm-up steps; the harness's windows are its epochs after the first):")
    print(tabulate(rows, headers=["config", "harness img/s", "model-only img/s", "sources img/s",
                                  "efficiency", "speed-up", "peak MiB (h / m / s)"], tablefmt="github"))
    if args.workers != "none":
        title, rows = workers_table(args, available_cores())
        print("\n" + title)
        print(tabulate(rows, headers=["W", "threads each", "img/s per process", "total img/s", "vs W=1"],
                       tablefmt="github"))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
