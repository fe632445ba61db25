"""Evaluation batch benchmark: a run's test-set evaluation at the GPU's batch (500) against the CPU's
(128), on the default's models and data, in one process (one thread).

    python bench/eval_batch.py                       # LeNet and EfficientNet-Lite0, under a minute
    python bench/eval_batch.py --models lenet --rounds 1

Each round evaluates the same network (as a run builds it, before training) on the same 2,000 test
images at each batch, alternating; a ratio is the median over rounds of the ratio within a round
(machines are noisy: compare ratios, not runs). The logits must be the same to the bit at both
batches: the accuracy a run reports does not depend on the batch, only its time does.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATASETS = {"lenet": "mnist", "efficientnet_lite0": "fashion_mnist"}  # the default's cells


def logits_and_seconds(run, batch: int):
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        out = torch.cat([run.model(run.prepare(run.xte[i:i + batch], None)) for i in range(0, len(run.xte), batch)])
    return out, time.perf_counter() - start


def measure(model: str, rounds: int, large: int, small: int) -> list:
    import torch

    from harness.config import PROFILES
    from harness.datasets import default_data_dir
    from harness.protocol import make_config, numerics_for
    from harness.train import setup_run

    cfg = make_config(model=model, dataset=DATASETS[model], norm="dataset", seed=0, profile=PROFILES["default"],
                      numerics=numerics_for("cpu"))
    run = setup_run(cfg, torch.device("cpu"), default_data_dir())
    run.model.eval()
    logits_and_seconds(run, small)  # warm-up
    ratios, t_large, t_small = [], [], []
    for _ in range(rounds):
        big, t_big = logits_and_seconds(run, large)
        little, t_little = logits_and_seconds(run, small)
        if not torch.equal(big, little):
            sys.exit(f"error: {model}: the logits differ between batch {large} and {small}")
        t_large.append(t_big)
        t_small.append(t_little)
        ratios.append(t_big / t_little)
    n = len(run.xte)
    return [f"{model}, {n} images", f"{statistics.median(t_large) / n * 1e3:.3f}",
            f"{statistics.median(t_small) / n * 1e3:.3f}", "yes", f"{statistics.median(ratios):.2f}x"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lenet,efficientnet_lite0", help="comma-separated: lenet, efficientnet_lite0")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of both batches (default 5)")
    args = parser.parse_args(argv)
    from harness.errors import UsageError
    from harness.registry import unknown_name_message

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in DATASETS:
            parser.error(unknown_name_message("model", m, DATASETS))
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: expected 1 or more")
    import torch

    from harness.allocator import keep_freed_memory
    from harness.train import EVAL_BATCH, EVAL_BATCH_CPU

    torch.set_num_threads(1)
    keep_freed_memory()  # as every run does
    try:
        rows = [measure(m, args.rounds, EVAL_BATCH, EVAL_BATCH_CPU) for m in models]
    except UsageError as exc:  # the offline data is missing: bash .ci/install gets it
        sys.exit(f"error: {exc}")
    print(f"command: python bench/eval_batch.py --models {','.join(models)} --rounds {args.rounds}\n")
    print(f"| model | ms an image, batch {EVAL_BATCH} | batch {EVAL_BATCH_CPU} | same logits | speed-up |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
