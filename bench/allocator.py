"""Allocator benchmark: training steps with glibc's default thresholds against freed memory kept
in the process (harness.allocator, what every run does).

    python bench/allocator.py                        # LeNet and EfficientNet-Lite0, about 2 minutes
    python bench/allocator.py --models lenet --steps 10 --rounds 1

Each round runs one process per setting, one after the other, each timing the same steps of the
harness's model on synthetic tensors (one thread); a ratio is the median over rounds of the ratio
within a round (machines are noisy: compare ratios, not runs). Kernel time is the page faults
that re-map each step's freed buffers; the results are the same either way (the arithmetic is).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {"lenet": (1, 28, 64), "efficientnet_lite0": (3, 28, 128)}  # channels, side, batch: the default's
STEPS = """
import json, os, sys, time
sys.path.insert(0, {root!r})
import torch
from harness.allocator import keep_freed_memory
from harness.models import MODELS
if {kept}:
    assert keep_freed_memory(), "not glibc: nothing to compare"
torch.set_num_threads(1)
channels, side, batch = {shape}
model = MODELS.get({model!r}).build(10, {model!r} != "lenet", 0, side).to(memory_format=torch.channels_last)
x = torch.randn(batch, channels, side, side).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
def step():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
for _ in range(2):
    step()
t0, w0 = os.times(), time.perf_counter()
for _ in range({steps}):
    step()
t1, w1 = os.times(), time.perf_counter()
print(json.dumps({{"wall": (w1 - w0) / {steps}, "user": (t1.user - t0.user) / {steps}, "sys": (t1.system - t0.system) / {steps}}}))
"""


def timed(model: str, kept: bool, steps: int) -> dict:
    code = STEPS.format(root=str(ROOT), kept=kept, shape=SHAPES[model], model=model, steps=steps)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"error: {model}: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in SHAPES]
    if unknown:
        sys.path.insert(0, str(ROOT))  # runs from a checkout
        from harness.registry import unknown_name_message

        parser.error(unknown_name_message("model", unknown[0], SHAPES))
    print(f"command: python bench/allocator.py --models {','.join(models)} --steps {args.steps} --rounds {args.rounds}")
    print("\n| model | ms a step, default (kernel) | ms a step, kept (kernel) | speed-up |\n|---|---|---|---|")
    for model in models:
        rounds = [(timed(model, False, args.steps), timed(model, True, args.steps)) for _ in range(args.rounds)]
        ratio = statistics.median(d["wall"] / k["wall"] for d, k in rounds)
        ms = lambda runs, key: statistics.median(r[key] for r in runs) * 1000  # noqa: E731
        default, kept = [d for d, _ in rounds], [k for _, k in rounds]
        channels, side, batch = SHAPES[model]
        print(f"| {model} @{side}px, batch {batch} | {ms(default, 'wall'):.1f} ({ms(default, 'sys'):.1f}) | "
              f"{ms(kept, 'wall'):.1f} ({ms(kept, 'sys'):.1f}) | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
