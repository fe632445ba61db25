"""Ray backend benchmark: a claims session with `--backend ray` against `-n W`, and the per-run overhead.

    python bench/ray_backend.py                        # a subset of the offline catalogue, ~20 min on 2 cores
    python bench/ray_backend.py --claims claims/       # the whole offline catalogue (~25 min per session on 2 cores)
    python bench/ray_backend.py --rounds 2 --overhead-runs 40

Every figure comes from this one invocation (machines are noisy: compare ratios, not runs):
- throughput: the same pytest session (`--claims`, `--profile`) with `-n W` (xdist; W = the cores by default) and
  with `--backend ray` (a Ray instance on this machine), each from an empty store on the same data dir, warmed
  first (datasets decoded). Both run with `--cpu-threads 1`: one single-threaded run per core (per worker),
  so on any machine they do the same arithmetic and store the same numbers. Runs per second of each and
  ray / xdist; with `--rounds`, the order alternates and the ratio is the median of the rounds' ratios.
- agreement: the two sessions' verdicts, mean differences per cell, and every run's numbers (same config, same
  thread count: the same arithmetic), compared.
- overhead: trivially short runs (LeNet on the 200-image fixture, 5 steps), one at a time through the
  backend the plugin uses (RayBackend.get_or_train, store included), on an idle Ray instance: per run,
  submit -> start on the node plus end -> result back in the session (scheduling), and the session's
  whole wall time per run less the run's own (scheduling plus storing). Medians; the first run, which
  starts a worker process and imports torch, is shown apart.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.changes import cell_states  # noqa: E402  (after the path: runs from a checkout)
from harness.devices import available_cores  # noqa: E402

SUBSET = "claims/test_no_normalization.py claims/test_init_compensation.py"  # EfficientNet runs, and LeNet runs with the dependent search
FASHION_TINY = ROOT / "fixtures" / "fashion_tiny"


# ------------------------------------------------------------------ throughput: two pytest sessions
def warm(data_dir: Path) -> None:
    """Decode the offline datasets into the data dir's cache once, so neither session pays for it."""
    from harness.datasets import dataset_stats, load_arrays
    from harness.errors import Unavailable

    for name in ("fashion_mnist", "mnist"):
        try:
            load_arrays(name, data_dir, True), load_arrays(name, data_dir, False), dataset_stats(name, data_dir)
        except Unavailable:
            pass  # its cells are skipped in both sessions alike


def session(kind: str, args, scratch: Path, rnd: int) -> dict:
    """One pytest session from an empty store: wall seconds, runs stored, their threads."""
    store = scratch / f"{kind}-{rnd}.sqlite"
    backend = ["--backend", "ray"] if kind == "ray" else ["-n", str(args.workers)]
    cmd = [sys.executable, "-m", "pytest", *args.claims.split(), "-p", "no:cacheprovider", "-q",
           f"--profile={args.profile}", f"--data-dir={args.data_dir}", f"--store={store}",
           f"--report-dir={scratch / f'reports-{kind}-{rnd}'}", "--cpu-threads=1", *backend]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # 1: a claim refuted, which the offline default does find
        sys.exit(f"{kind} session failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    with sqlite3.connect(store) as db:
        results = {key: json.loads(r) for key, r in db.execute("SELECT key, result FROM runs WHERE status = 'ok'")}
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    summary = json.loads((scratch / f"reports-{kind}-{rnd}" / "summary.json").read_text(encoding="utf-8"))
    return {"wall": wall, "runs": runs, "threads": sorted({r["meta"]["threads"] for r in results.values()}),
            # what a run measured, not how long it took (the history also holds each epoch's seconds)
            "numbers": {key: (r["accuracy"], [(h["train_loss"], h["test_accuracy"]) for h in r["history"]],
                              r.get("metrics")) for key, r in results.items()},
            "cells": {(s.claim, s.cell): s for s in cell_states(summary)}}


def agreement(a: dict, b: dict) -> dict:
    """Whether two sessions of the same claims reached the same verdicts from the same numbers: cells
    whose verdict or mean difference differs, and runs of the same config whose accuracies differ."""
    shared = a["numbers"].keys() & b["numbers"].keys()
    return {
        "cells": len(a["cells"].keys() | b["cells"].keys()),
        "verdicts_differ": sorted(k for k in a["cells"].keys() | b["cells"].keys()
                                  if getattr(a["cells"].get(k), "verdict", None) != getattr(b["cells"].get(k), "verdict", None)),
        "differences_differ": sorted(k for k in a["cells"].keys() & b["cells"].keys()
                                     if a["cells"][k].difference != b["cells"][k].difference),
        "runs_shared": len(shared),
        "runs_only_one": len(a["numbers"].keys() ^ b["numbers"].keys()),
        "runs_differ": sum(a["numbers"][k] != b["numbers"][k] for k in shared),
    }


def throughput(args, scratch: Path) -> list[dict]:
    rounds = []
    for rnd in range(args.rounds):
        order = ("xdist", "ray") if rnd % 2 == 0 else ("ray", "xdist")
        rounds.append({kind: session(kind, args, scratch, rnd) for kind in order})
    return rounds


# ------------------------------------------------------------------ overhead: short runs one at a time
def overhead(args, scratch: Path) -> list[dict]:
    """Per run: scheduling (submit -> start, end -> received) and the session's whole overhead."""
    from harness.config import get_profile
    from harness.protocol import make_config, numerics_for
    from harness.ray_backend import RayBackend
    from harness.store import RunStore

    backend = RayBackend.connect(None, args.data_dir, threads=1, gpus="cpu")
    store = RunStore(scratch / "overhead.sqlite")
    out = []
    try:
        for seed in range(args.overhead_runs + 1):
            cfg = make_config(model="lenet", dataset=f"folder:{FASHION_TINY}", norm="none", seed=seed,
                              profile=get_profile("smoke"), numerics=numerics_for("cpu"), batch_size=32)
            started = time.time()
            backend.get_or_train(store, cfg)
            whole = time.time() - started
            t = backend.timings[-1]
            own = t["ended"] - t["started"]
            out.append({"scheduling": (t["started"] - t["submitted"]) + (t["received"] - t["ended"]),
                        "whole": whole - own, "run": own})
    finally:
        backend.close(store)
    return out


def main() -> None:
    from harness.datasets import default_data_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", default=SUBSET, help="space-separated claim modules or folders. Default: %(default)s")
    parser.add_argument("--profile", default="quick", help="the sessions' profile. Default: %(default)s")
    parser.add_argument("--workers", type=int, default=available_cores(),
                        help="xdist workers of the session compared. Default: the cores (%(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of sessions, order alternating. Default: %(default)s")
    parser.add_argument("--overhead-runs", type=int, default=20,
                        help="short runs timed one at a time, after one that starts the worker. Default: %(default)s")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="Default: %(default)s")
    args = parser.parse_args()
    if min(args.workers, args.rounds, args.overhead_runs) < 1:
        parser.error("--workers, --rounds and --overhead-runs must be at least 1")
    try:
        import ray
    except ImportError:
        parser.error("needs Ray: pip install -e .[ray]")
    from tabulate import tabulate

    started = time.perf_counter()
    print(f"ray {ray.__version__} | cores {available_cores()} | profile {args.profile} | claims {args.claims}")
    print("command: python " + " ".join(sys.argv))
    warm(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="normclaims-bench-") as tmp:
        scratch = Path(tmp)
        rounds = throughput(args, scratch)
        times = overhead(args, scratch)
    rows, ratios = [], []
    for rnd, r in enumerate(rounds):
        rate = {kind: s["runs"] / s["wall"] for kind, s in r.items()}
        ratios.append(rate["ray"] / rate["xdist"])
        for kind in ("xdist", "ray"):
            s = r[kind]
            rows.append([rnd + 1, f"-n {args.workers}" if kind == "xdist" else "--backend ray", s["runs"],
                         ",".join(map(str, s["threads"])), f"{s['wall']:.0f}", f"{rate[kind] * 60:.1f}"])
    print(f"\nThroughput: one session each, from an empty store ({len(rounds)} round(s), order alternating):")
    print(tabulate(rows, headers=["round", "session", "runs", "threads per run", "wall s", "runs / min"],
                   tablefmt="github"))
    print(f"ratio, --backend ray / -n {args.workers} (runs per second; median of rounds): {statistics.median(ratios):.3f}")
    print(f"\nSame verdicts from the same numbers (each round's -n {args.workers} session against its ray session):")
    agree = [agreement(r["xdist"], r["ray"]) for r in rounds]
    print(tabulate([[rnd + 1, g["cells"], len(g["verdicts_differ"]), len(g["differences_differ"]), g["runs_shared"],
                     g["runs_differ"], g["runs_only_one"]] for rnd, g in enumerate(agree)],
                   headers=["round", "judged cells", "verdicts differ", "mean differences differ", "runs in both",
                            "runs whose numbers differ", "runs in one only"], tablefmt="github"))
    for g in agree:
        for claim, cell in g["verdicts_differ"]:
            print(f"  verdict differs: {claim} {cell}")
    cold, warm_runs = times[0], times[1:]
    med = {k: statistics.median(t[k] for t in warm_runs) for k in ("scheduling", "whole", "run")}
    print(f"\nOverhead per run, {len(warm_runs)} short runs one at a time on an idle Ray instance (medians; "
          f"the runs themselves took {med['run']:.2f} s):")
    print(tabulate([["scheduling: submit -> start, end -> result back", f"{med['scheduling']:.3f}",
                     f"{cold['scheduling']:.3f}"],
                    ["session: wall per run less the run (scheduling and storing)", f"{med['whole']:.3f}",
                     f"{cold['whole']:.3f}"]],
                   headers=["seconds per run", "median", "first run (starts a worker)"], tablefmt="github"))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
