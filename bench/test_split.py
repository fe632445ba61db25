"""How much of a paired difference's spread across seeds is the test subset's sampling: runs of the
cpu profile's budgets (the default's training), evaluated image by image on the whole test split.

    python bench/test_split.py                                   # EfficientNet-Lite0, minmax vs dataset, 3 seeds
    python bench/test_split.py --model lenet --norms fixed:0.144/0.569,dataset --seeds 4

Each seed trains arm a and arm b as the claims do (harness.recipes, same seed, same data order) and
keeps which test images each gets right. Per seed, d = a - b in points on the cpu profile's fixed
2,000-image subset and on the whole split; the sampling SD of d on n images is that of a mean of the
per-image differences (-1, 0 or +1: the images the two arms disagree on), sqrt(var / n). The last line
compares the sampling variance at 2,000 images with the spread of d across the seeds: the share of
the variance that evaluating on the whole split removes (seed-to-seed spread needs several seeds to
estimate; the sampling SD is exact per seed).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATASETS = {"lenet": "mnist", "efficientnet_lite0": "fashion_mnist"}  # the default's cells
SPREAD_SEEDS = 5  # fewer seeds estimate the spread across seeds too loosely to divide by it


def correct_per_image(model: str, norm: str, seed: int):
    """Train one run at the cpu profile's budgets, evaluated on the whole test split: (correct per
    test image as 0/1, seconds)."""
    import torch

    from harness.config import PROFILES
    from harness.datasets import default_data_dir
    from harness.protocol import make_config, numerics_for
    from harness.recipes import recipe_for
    from harness.train import enter_device, setup_run, train_loop

    profile = PROFILES["cpu"]
    cfg = make_config(model=model, dataset=DATASETS[model], norm=norm, seed=seed, profile=profile,
                      numerics=numerics_for("cpu"), **{**recipe_for(model, profile), "test_subset": None})
    enter_device("cpu", 1)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    started = time.perf_counter()
    run = setup_run(cfg, torch.device("cpu"), default_data_dir())
    train_loop(run, cfg, gen, None)  # ends with the final epoch's BN re-estimation and evaluation
    run.model.eval()
    with torch.inference_mode():
        pred = torch.cat([run.model(run.prepare(run.xte[i:i + 128], None)).argmax(1) for i in range(0, len(run.xte), 128)])
    return (pred == run.yte).numpy().astype(float), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0", help=f"one of {', '.join(DATASETS)}. Default: %(default)s")
    parser.add_argument("--norms", default="minmax,dataset", help="arm a,arm b. Default: %(default)s")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1. Default: %(default)s")
    args = parser.parse_args()
    if args.model not in DATASETS:
        from harness.registry import unknown_name_message

        parser.error(unknown_name_message("model", args.model, DATASETS))
    norms = args.norms.split(",")
    if len(norms) != 2 or not all(norms):
        parser.error(f"--norms takes two normalizations, a,b; got {args.norms!r}")
    if args.seeds < 2:
        parser.error(f"--seeds must be at least 2 (a spread across seeds), got {args.seeds}")
    from harness.datasets import default_data_dir, load_arrays, subset_indices
    from harness.errors import UsageError
    from harness.norms import check_spec

    for norm in norms:
        try:
            check_spec(norm)
        except UsageError as exc:
            parser.error(str(exc))
    labels = load_arrays(DATASETS[args.model], default_data_dir(), train=False)[1]
    subset = np.isin(np.arange(len(labels)), subset_indices(labels, 2000))
    splits = {"2,000 (cpu profile)": subset, f"{len(labels):,} (whole split)": np.ones(len(labels), dtype=bool)}
    print(f"{args.model} on {DATASETS[args.model]}, d = {norms[0]} - {norms[1]}, cpu profile budgets\n")
    print("| seed | test images | d (points) | disagree | sampling SD of d | seconds a run |")
    print("|---|---|---|---|---|---|")
    d = {name: [] for name in splits}
    sampling_var = {name: [] for name in splits}
    for seed in range(args.seeds):
        (ca, ta), (cb, tb) = (correct_per_image(args.model, norm, seed) for norm in norms)
        for name, mask in splits.items():
            x = 100 * (ca[mask] - cb[mask])
            d[name].append(x.mean())
            sampling_var[name].append(x.var(ddof=1) / mask.sum())
            print(f"| {seed} | {name} | {x.mean():+.2f} | {np.mean(x != 0):.3f} | "
                  f"{np.sqrt(sampling_var[name][-1]):.2f} | {(ta + tb) / 2:.0f} |", flush=True)
    print()
    for name in splits:
        spread = float(np.var(d[name], ddof=1))
        share = (f"sampling share of the variance {np.mean(sampling_var[name]) / spread:.2f}" if args.seeds >= SPREAD_SEEDS
                 else f"(the share needs {SPREAD_SEEDS}+ seeds: compare the sampling SD with a session's spread)")
        print(f"{name}: SD of d across {args.seeds} seeds {np.sqrt(spread):.2f}, mean sampling SD "
              f"{np.sqrt(np.mean(sampling_var[name])):.2f}, {share}")


if __name__ == "__main__":
    main()
