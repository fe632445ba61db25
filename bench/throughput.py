"""Throughput benchmark: the harness against the model's own speed limit and the sources' pipeline.

    python bench/throughput.py                       # CPU defaults, about 4 minutes on 2 cores
    python bench/throughput.py --device cuda:0 --batch 256 --steps 20
    python bench/throughput.py --models resnet18 --side64 none --workers 1,2,4

Every figure comes from this one invocation (machines are noisy: compare ratios, not runs):
- data path alone, one epoch of a 32 px RGB set: the harness's batched on-device crop/flip/
  normalize vs the sources' PIL transforms in a DataLoader with one worker;
- training per model: the harness's real fine-tuning loop (finetune(), one epoch per window),
  the same model on synthetic tensors already on the device (model-only, the upper bound), and
  the sources' pipeline feeding the same model; efficiency = harness / model-only, speed-up =
  harness / sources;
- peak memory per configuration and kind, each in a process of its own (CUDA max allocated, or
  the process's peak RSS on the CPU);
- workers: total training images/s of 1, 2, ... harness processes side by side, each with its
  share of the cores (what `pytest -n W` does; on a GPU, W processes sharing it).
The kinds compared in a ratio run in one process, their timed windows interleaved in rounds (the
model-only and sources' windows run between the harness's epochs); a ratio is the median over
rounds of the ratio within a round, so a slow spell of a shared machine that spans a round
divides out, and an images/s figure is the median of its windows. The workers' figure is each
process's sustained rate over its epochs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.devices import available_cores, core_share, enter_device  # noqa: E402  (after the path: runs from a checkout)

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's, as the sources used
KINDS = ("harness", "model_only", "sources")


# ------------------------------------------------------------------ the pieces measured (child processes)
def synthetic_arrays(side: int, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, side, side), dtype=np.uint8), rng.integers(0, 10, n)


class PILSet:
    """The sources' dataset: PIL images through torchvision transforms (at module level, so a
    DataLoader worker started by spawn or forkserver can unpickle it)."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def sources_loader(side: int, batch: int, n: int):
    """The sources' data path: PIL images, torchvision transforms on the CPU, one DataLoader worker."""
    import torch
    from PIL import Image
    from torchvision import transforms

    x, y = synthetic_arrays(side, n)
    tf = transforms.Compose([transforms.RandomCrop(side, padding=side // 8), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    dataset = PILSet([Image.fromarray(img.transpose(1, 2, 0)) for img in x], y, tf)
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=1, drop_last=True)


def harness_loader(side: int, batch: int, n: int, device):
    """The harness's data path, as the training loop runs it: the set padded once and on the
    device as uint8, an epoch's draws made at once, batches cropped out of it, float, normalize.
    Returns a function giving one epoch's batches."""
    import torch

    from harness.augment import crop_flip_draws, crop_flip_padded, pad_images
    from harness.norms import Affine, make_normalizer

    x, y = synthetic_arrays(side, n)
    pad = side // 8
    xs, ys = pad_images(torch.from_numpy(x).to(device), pad), torch.from_numpy(y).to(device)
    normalize = make_normalizer(Affine(MEAN, STD), 3, device)
    gen = torch.Generator().manual_seed(0)

    def epoch():
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


def timed(device, images: int, work) -> float:
    """Images per second of `work()`, which handles `images` images, device work included."""
    sync(device)
    start = time.perf_counter()
    work()
    sync(device)
    return images / (time.perf_counter() - start)


def measure_data(args, device) -> dict:
    """The data path alone, both kinds in this process, one epoch of each per round (order
    alternating): images/s per round. Building the datasets is not timed; starting the sources'
    worker is (their loop restarts it every epoch)."""
    import torch

    n, batch = args.data_images, args.data_batch
    ours = harness_loader(args.side, batch, n, device)
    loader = sources_loader(args.side, batch, n)
    epochs = {"harness": ours, "sources": lambda: iter(loader)}
    rates: dict[str, list[float]] = {kind: [] for kind in epochs}
    images = (n // batch) * batch

    def consume(epoch):
        for xb, _ in epoch():
            xb.to(device, non_blocking=True)

    torch.manual_seed(0)
    for r in range(args.data_repeats):
        for kind in (("harness", "sources") if r % 2 == 0 else ("sources", "harness")):
            rates[kind].append(timed(device, images, lambda: consume(epochs[kind])))
    return rates


def build(model_name: str, side: int, device):
    """The model as a harness run holds it: on the device, channels_last."""
    import torch

    from harness.models import MODELS

    spec = MODELS.get(model_name)
    pretrained = model_name == "efficientnet_lite0"  # weights do not change the arithmetic
    return spec.build(10, pretrained, 0, side).to(device).to(memory_format=torch.channels_last)


def stepper(kind: str, model_name: str, side: int, device, args, total_steps: int):
    """One training step of the model-only or the sources' kind, as a function of no arguments
    (up to `total_steps` of them): the same model, optimizer, autocast and memory format as a
    harness run on `device`."""
    import itertools

    import torch

    from harness.train import make_optimizer, optimizer_step

    cuda = torch.device(device).type == "cuda"
    model = build(model_name, side, device)
    opt = make_optimizer("adam", model.parameters(), 1e-3, 0.0)
    forward = torch.compile(model) if args.compile else model
    model.train()
    if kind == "model_only":  # a few distinct batches already on the device, cycled
        xs = [torch.randn(args.batch, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)
              for _ in range(4)]
        ys = torch.randint(0, 10, (4, args.batch), device=device)
        batches = ((xs[i], ys[i]) for i in itertools.cycle(range(4)))
    else:  # the sources' pipeline: one epoch of their loader covers every step (one worker start)
        batches = ((xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last), yb.to(device))
                   for xb, yb in sources_loader(side, args.batch, args.batch * total_steps))

    def autocast():
        return torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda)

    def step():
        optimizer_step(forward, opt, *next(batches), autocast)  # the harness's own step

    return step


def harness_run(model_name: str, side: int, device, args, epochs: int, progress=None) -> list[float]:
    """A real run of finetune(), `epochs` epochs of --steps steps on the synthetic set: the seconds
    of each epoch after the first (the first is its warm-up)."""
    from harness.config import PROFILES
    from harness.protocol import make_config, numerics_for
    from harness.train import finetune

    numerics = numerics_for("cuda" if str(device).startswith("cuda") else "cpu", args.compile)
    weights = "pretrained" if model_name == "efficientnet_lite0" else "scratch"
    cfg = make_config(model=model_name, dataset=f"synthetic:{side}", norm="fixed:0.5/0.25", seed=0,
                      profile=PROFILES["smoke"], numerics=numerics, weights=weights, batch_size=args.batch,
                      train_subset=args.batch * args.steps, test_subset=args.batch, epochs=epochs, eval_every=epochs,
                      bn_recalibration=True)  # a few steps: re-estimate rather than trip the stale-BN guard
    with tempfile.TemporaryDirectory() as data_dir:
        result = finetune(cfg, str(device), Path(data_dir), progress=progress, threads=args.threads)
    return [h["train_seconds"] for h in result.history[1:]]


def measure_training(model_name: str, side: int, device, args) -> dict:
    """The three kinds in this process: the harness trains 1 + --windows epochs of --steps steps
    (the first untimed); after each epoch a window of the model-only and of the sources' kind
    runs (order alternating; the first window of each is their warm-up). Images/s per round."""
    lead = 2  # untimed steps before each window: the sources' worker prefetches 2 batches while idle
    total = (1 + args.windows) * (lead + args.steps)
    steps = {kind: stepper(kind, model_name, side, device, args, total) for kind in KINDS[1:]}
    windows: dict[str, list[float]] = {kind: [] for kind in KINDS[1:]}
    images = args.batch * args.steps

    def between_epochs(_message: str) -> None:  # finetune's progress hook: outside its epoch timing
        order = KINDS[1:] if len(windows["sources"]) % 2 == 0 else KINDS[:0:-1]
        for kind in order:
            for _ in range(lead):
                steps[kind]()
            windows[kind].append(timed(device, images, lambda: [steps[kind]() for _ in range(args.steps)]))

    seconds = harness_run(model_name, side, device, args, 1 + args.windows, progress=between_epochs)
    rates = {kind: w[1:] for kind, w in windows.items()}
    rates["harness"] = [images / s for s in seconds]
    return rates


def measure_peak(kind: str, model_name: str, side: int, device, args) -> None:
    """One kind alone for peak memory: two epochs of the harness, or as many steps of the others."""
    if kind == "harness":
        harness_run(model_name, side, device, args, 2)
    else:
        step = stepper(kind, model_name, side, device, args, 2 * args.steps)
        for _ in range(2 * args.steps):
            step()
        sync(device)


def sustained_harness(model_name: str, side: int, device, args) -> float:
    """Images per second over the harness's epochs after the first: one of W processes side by side."""
    seconds = harness_run(model_name, side, device, args, 1 + args.windows)
    return args.batch * args.steps * len(seconds) / sum(seconds)


def peak_mib(device) -> float:
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args) -> None:
    enter_device(args.device, args.threads)  # threads; on CUDA the current device and autotuner, as a run sets them
    if args.child == "data":
        out = measure_data(args, args.device)
    elif args.child == "training":
        out = measure_training(args.model, args.side, args.device, args)
    elif args.child == "sustained":
        out = {"harness": sustained_harness(args.model, args.side, args.device, args)}
    else:
        measure_peak(args.child.removeprefix("peak_"), args.model, args.side, args.device, args)
        out = {}
    print(json.dumps({**out, "peak_mib": peak_mib(args.device)}))


# ------------------------------------------------------------------ the tables (parent process)
def start_child(args, kind: str, model: str = "-", side: int = 32, threads: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", kind, "--model", model, "--side", str(side), "--device", args.device,
           "--batch", str(args.batch), "--steps", str(args.steps), "--windows", str(args.windows),
           "--threads", str(threads or args.threads), "--data-images", str(args.data_images),
           "--data-batch", str(args.data_batch), "--data-repeats", str(args.data_repeats)]
    cmd += ["--compile"] if args.compile else []
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def finish_child(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(proc.args[2:6])} failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_child(args, kind: str, model: str = "-", side: int = 32) -> dict:
    return finish_child(start_child(args, kind, model, side))


def paired_ratio(rates: dict, a: str, b: str) -> float:
    """Median over rounds of a's images/s over b's in the same round."""
    return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))


def training_row(args, model: str, side: int) -> list:
    rates = run_child(args, "training", model, side)
    peak = [run_child(args, f"peak_{kind}", model, side)["peak_mib"] for kind in KINDS]
    h, m, s = (statistics.median(rates[kind]) for kind in KINDS)
    return [f"{model} @{side}px", f"{h:,.1f}", f"{m:,.1f}", f"{s:,.1f}", f"{paired_ratio(rates, 'harness', 'model_only'):.2f}",
            f"{paired_ratio(rates, 'harness', 'sources'):.2f}x", " / ".join(f"{p:,.0f}" for p in peak)]


def workers_table(args, cores: int) -> tuple[str, list[list]]:
    """Total training images/s of W harness processes side by side (as `pytest -n W` runs them),
    each with its share of the cores, for each W in --workers."""
    rows, base = [], None
    for w in (int(v) for v in args.workers.split(",")):
        threads = core_share(cores, w, os.environ.get("OMP_NUM_THREADS"))  # as the plugin shares them
        procs = [start_child(args, "sustained", args.workers_model, 32, threads) for _ in range(w)]
        rates = [finish_child(p)["harness"] for p in procs]
        total = sum(rates)
        base = base or total
        rows.append([w, threads, " / ".join(f"{r:,.1f}" for r in rates), f"{total:,.1f}", f"{total / base:.2f}x"])
    title = (f"Workers: {args.workers_model} @32px, harness processes side by side (as pytest -n W), "
             f"each with cores // W threads, {args.windows} epochs of {args.steps} steps each:")
    return title, rows


def check_models(parser: argparse.ArgumentParser, args) -> None:
    """Unknown names get "did you mean"; the benchmark's images are RGB."""
    from harness.errors import UsageError
    from harness.models import MODELS

    try:
        for name in {*args.models.split(","), args.workers_model} | ({args.side64} - {"none"}):
            if MODELS.get(name).in_channels != 3:
                raise UsageError(f"model {name} takes grayscale images; the benchmark trains on RGB")
    except UsageError as exc:
        parser.error(str(exc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N. Default: %(default)s")
    parser.add_argument("--models", default="resnet18,resnet50,densenet121,efficientnet_lite0",
                        help="comma list. Default: %(default)s")
    parser.add_argument("--side64", default="resnet18", help="model also measured at 64 px, or 'none'. Default: %(default)s")
    parser.add_argument("--batch", type=int, default=64, help="training batch. Default: %(default)s")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed window (a harness epoch). Default: %(default)s")
    parser.add_argument("--windows", type=int, default=8,
                        help="timed rounds of windows, after one untimed. Default: %(default)s")
    parser.add_argument("--threads", type=int, default=available_cores(),
                        help="intra-op threads, as one harness process on this machine uses. Default: %(default)s")
    parser.add_argument("--data-images", type=int, default=10_000, help="images in the data-path epoch. Default: %(default)s")
    parser.add_argument("--data-batch", type=int, default=256, help="batch of the data-path epoch. Default: %(default)s")
    parser.add_argument("--data-repeats", type=int, default=8,
                        help="data-path rounds, one epoch of each kind. Default: %(default)s")
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
        return child(args)
    check_models(parser, args)
    if min(args.batch, args.steps, args.windows, args.data_repeats, args.data_images // args.data_batch) < 1:
        parser.error("--batch, --steps, --windows and --data-repeats must be at least 1, "
                     "and --data-images at least --data-batch")

    import torch
    from tabulate import tabulate

    started = time.perf_counter()
    print(f"device {args.device} | torch {torch.__version__} | threads {args.threads} | cores {os.cpu_count()} | "
          f"{platform.processor() or platform.machine()}")
    print("command: python " + " ".join(sys.argv))
    data = run_child(args, "data")
    print(f"\nData path, one epoch of {args.data_images:,} 32 px RGB images, batch {args.data_batch} "
          f"(crop with padding, flip, normalize); medians of {args.data_repeats} rounds of one epoch each:")
    ours, theirs = statistics.median(data["harness"]), statistics.median(data["sources"])
    print(tabulate([[f"{ours:,.0f}", f"{theirs:,.0f}", f"{paired_ratio(data, 'harness', 'sources'):.1f}x"]],
                   headers=["harness img/s", "sources' img/s (PIL + DataLoader, 1 worker)", "ratio"], tablefmt="github"))
    configs = [(m, 32) for m in args.models.split(",")]
    if args.side64 != "none":
        configs.append((args.side64, 64))
    rows = [training_row(args, model, side) for model, side in configs]
    print(f"\nTraining, batch {args.batch}: {args.windows} rounds of one window of {args.steps} steps per kind, "
          "interleaved in one process (a harness window is one of its epochs); medians, ratios within rounds; "
          "peak memory from one process per kind:")
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
