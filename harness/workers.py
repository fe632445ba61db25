"""How many xdist workers a claim session gets when its command line does not say.

On a CPU-only machine a session of claims trains one run per core, as `-n <cores>` does: a run on
one core is nearly as fast as on two (these models' kernels do not scale across 2 cores), so two
runs side by side finish about twice as many runs an hour. Whatever the command line says about
workers, devices or the backend wins; so do sessions that train nothing (--plan, collection only).
"""
from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

from harness.devices import available_cores

# options after which the user has chosen, or no workers are wanted
CHOSEN = ("-n", "--numprocesses", "--dist", "--tx", "--gpus", "--backend", "--plan", "--collect-only", "--co",
          "--pdb", "--trace", "--help", "-h", "--version", "-V")


def default_workers(args: list[str], rootdir: Path | None = None) -> int | None:
    """Workers to add to `args` (None: add none): every core, for a session that names claim files
    or folders (under a `claims` folder) and leaves workers, devices and the backend unsaid."""
    if os.environ.get("PYTEST_XDIST_WORKER") or importlib.util.find_spec("xdist") is None:
        return None
    if any(a in CHOSEN or a.split("=")[0] in CHOSEN or (a.startswith("-n") and a[2:3].isalnum()) for a in args):
        return None
    if "no:xdist" in args or "-pno:xdist" in args:
        return None
    paths = [a.split("::")[0] for a in args if not a.startswith("-")]
    if not any("claims" in Path(p).resolve().parts for p in paths if Path(p).exists()):
        return None
    if glob.glob("/dev/nvidia[0-9]*") and os.environ.get("CUDA_VISIBLE_DEVICES") not in ("", "-1"):
        return None  # GPUs: the README's -n and --gpus say how to share them
    cores = available_cores()
    return cores if cores > 1 else None
