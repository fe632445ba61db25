"""The command line: the plugin's options, read and checked into the session's Settings.

Every problem is one UsageError (one ERROR: line and exit status 4, from pytest_configure), found
before anything is collected or trained, paths included: each path the session will write is tried.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.config import DEFAULT_PROFILE, PROFILES, get_profile
from harness.devices import available_cores, core_share, device_for_worker, parse_gpus, visible_gpu_count
from harness.errors import UsageError
from harness.files import write_problem
from harness.norms import CHOOSABLE, check_spec
from harness.session import Settings

MAX_SEEDS = 1000  # a bound on --seeds: each seed is a test item of every cell


def named_selection(config: pytest.Config) -> str | None:
    """How the command line narrows a session below whole folders (-k or -m, a file or test named),
    or None: a profile's deferrals apply only without one, and a report of one is partial."""
    if config.getoption("keyword") or config.getoption("markexpr"):
        return "selected with -k or -m"
    if any(Path(str(arg).split("::")[0]).is_file() for arg in config.args):
        return "named files or tests"
    return None


def add_options(parser: pytest.Parser) -> None:
    """The plugin's command-line options (harness.plugin's pytest_addoption)."""
    group = parser.getgroup("normclaims", "normclaims: empirical claims about image normalization")
    group.addoption("--gpus", metavar="LIST", default=None,
                    help="comma list of CUDA indices (among those CUDA_VISIBLE_DEVICES leaves visible) or 'cpu'; "
                         "xdist worker gwN uses gpus[N mod len]. Default: every visible GPU, else the CPU")
    group.addoption("--seeds", metavar="N|auto", default=None,
                    help="run seeds 0..N-1 of every cell; 'auto': each claim's pre-registered plan (a sequential "
                         "claim adds seeds to a cell until a boundary is crossed). Default: the profile's")
    group.addoption("--profile", metavar="NAME", default=DEFAULT_PROFILE,
                    help=f"budget: {', '.join(PROFILES)} (see README). Default: %(default)r")
    group.addoption("--data-dir", metavar="DIR", default=None,
                    help="where datasets are found, downloaded and cached. Default: $NORMCLAIMS_DATA_DIR or ~/.cache/normclaims/data")
    group.addoption("--store", metavar="FILE", default=".normclaims/runs.sqlite",
                    help="SQLite run store (relative to the rootdir). Default: %(default)r")
    group.addoption("--rerun", action="store_true", default=False,
                    help="retrain runs already in the store (their rows are replaced). Default: %(default)r")
    group.addoption("--models", metavar="LIST", default=None,
                    help="comma list of models replacing each claim's model axis. Default: the claim's")
    group.addoption("--datasets", metavar="LIST", default=None,
                    help="comma list of datasets (or folder:PATH) replacing each claim's dataset axis. Default: the claim's")
    group.addoption("--recommend-norms", metavar="LIST", default=None,
                    help="comma list of the normalizations the recommendation compares (harness.norms' names, or "
                         f"fixed:MEAN/STD). Default: {','.join(CHOOSABLE)}")
    group.addoption("--cpu-threads", metavar="N", default=None,
                    help="intra-op threads of each run (recorded with it; CPU results are bitwise reproducible "
                         "at a fixed count). Default: each process's share of the cores, cores // xdist workers, "
                         "at most $OMP_NUM_THREADS")
    group.addoption("--compile", action="store_true", default=False,
                    help="torch.compile each model (part of a run's identity). Default: %(default)r")
    group.addoption("--correction", metavar="SCOPE", default="claim", choices=("claim", "session"),
                    help="Holm adjustment across the cells of each claim, or across every cell of the session. "
                         "Default: %(default)r")
    group.addoption("--plan", action="store_true", default=False,
                    help="train nothing: list per claim and cell the runs the session needs, how many are in the "
                         "store, the device-hours of the rest and the seeds each claim needs. Default: %(default)r")
    group.addoption("--backend", metavar="NAME", default="local",
                    help="who trains the runs: 'local' (this process, or each xdist worker) or 'ray' (each run a Ray "
                         "task; needs pip install -e .[ray]). Default: %(default)r")
    group.addoption("--ray-address", metavar="auto|HOST:PORT", default=None,
                    help="with --backend ray: the cluster to join ('auto': the one this machine belongs to). "
                         "Default: a Ray instance started on this machine")
    group.addoption("--ray-data-dir", metavar="DIR", default=None,
                    help="with --backend ray: the data dir on every node. Default: the session's --data-dir")
    group.addoption("--report-dir", metavar="DIR", default="reports",
                    help="where summary.md, summary.json and verdicts.xml are written (relative to the rootdir); a "
                         "session of part of the catalogue (-k, a file, interrupted) writes under DIR/partial. "
                         "Default: %(default)r")


def positive_int(option: str, text: str, most: int | None = None) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"{option} {text!r}: expected a positive integer") from None
    if value < 1:
        raise UsageError(f"{option} {value}: must be at least 1")
    if most is not None and value > most:
        raise UsageError(f"{option} {value}: at most {most}")
    return value


def usable_dir(option: str, path: Path, write: bool) -> Path:
    """`path` is a folder or can be made one; with `write`, a file can be created in it, tried for
    real and undone (harness.files.write_problem). Without `write` nothing is created."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: not a folder")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: cannot be made, {ancestor} is not a folder")
    problem = write_problem(path) if write else None
    if problem:
        raise UsageError(f"{option} {path}: {problem}")
    return path


def usable_store(path: Path, write: bool) -> Path:
    """The run store's file: not a folder; with `write`, its folder takes files (SQLite also writes
    its -wal and -shm files there) and an existing store opens for writing. Whether an existing
    store is a readable run store is RunStore's check."""
    if path.is_dir():
        raise UsageError(f"--store {path}: a folder, not a file")
    usable_dir(f"--store {path}: its folder", path.parent, write)
    if write and path.exists():
        try:
            open(path, "r+b").close()
        except OSError as exc:
            raise UsageError(f"--store {path}: cannot be opened for writing ({exc.strerror})") from None
    return path


def writes_paths(config: pytest.Config) -> tuple[bool, bool]:
    """Which of its paths the session will write, as (store and data dir, report dir): those are
    tried by writing. --collect-only writes nothing; --plan only its plan.md in the report dir (it
    reads the store and the data dir and never creates them). Only the controller (or a session
    without xdist) tries them, before any worker starts: workers trying the same new folder at
    once could remove it under each other."""
    if hasattr(config, "workerinput") or config.option.collectonly:
        return False, False
    return not config.getoption("--plan"), True


def name_list(text: str | None, check) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError(f"empty list {text!r}")
    for name in names:
        check(name)
    return names


def read_settings(config: pytest.Config) -> Settings:
    from harness.datasets import default_data_dir, get_dataset
    from harness.models import MODELS

    opt = config.getoption
    backend, ray_address, node_data_dir = read_backend(config)
    profile = get_profile(opt("--profile"))
    sequential = opt("--seeds") == "auto" or (opt("--seeds") is None and profile.sequential)
    if opt("--seeds") is None or sequential:
        seeds = profile.seeds
    else:
        seeds = positive_int("--seeds", opt("--seeds"), MAX_SEEDS)
    gpus = opt("--gpus")
    if backend == "ray" and gpus is not None and gpus.strip().lower() != "cpu":
        raise UsageError(f"--gpus {gpus} with --backend ray: each run asks Ray for one GPU on whichever node has one; "
                         "leave --gpus out to use the cluster's GPUs, or pass --gpus cpu")
    visible = 0 if gpus is not None and gpus.strip().lower() == "cpu" else visible_gpu_count()
    devices = parse_gpus(gpus, visible)
    workerinput = getattr(config, "workerinput", None)
    worker = workerinput["workerid"] if workerinput else "main"
    if opt("--cpu-threads") is not None:
        threads = positive_int("--cpu-threads", opt("--cpu-threads"))
    elif backend == "ray":  # one thread per run, one run per CPU: what -n (cores) does on one machine
        threads = 1
    else:
        threads = core_share(available_cores(), workerinput["workercount"] if workerinput else 1,
                             os.environ.get("OMP_NUM_THREADS"))
    rootdir = Path(config.rootpath)
    runs_write, report_write = writes_paths(config)
    data_dir = Path(opt("--data-dir")).expanduser() if opt("--data-dir") else default_data_dir()
    usable_dir("--data-dir", data_dir, runs_write)
    store_path = usable_store((rootdir / opt("--store")).resolve(), runs_write)
    usable_dir("--report-dir", rootdir / opt("--report-dir"), report_write)  # where harness.report writes
    fresh_after = None
    if opt("--rerun"):
        fresh_after = workerinput["normclaims_session_start"] if workerinput else time.time()
    return Settings(
        profile=profile, seeds=seeds, seeds_chosen=opt("--seeds") is not None and not sequential,
        sequential=sequential, devices=devices, device=device_for_worker(devices, worker),
        threads=threads, data_dir=data_dir.resolve(), store_path=store_path,
        fresh_after=fresh_after,
        models=name_list(opt("--models"), MODELS.get),
        datasets=name_list(opt("--datasets"), get_dataset),
        recommend_norms=recommend_norms(opt("--recommend-norms")),
        worker=worker, plan=opt("--plan"),
        backend=backend, ray_address=ray_address,
        node_data_dir=node_data_dir or (data_dir.resolve() if backend == "ray" else None),
    )


def recommend_norms(text: str | None) -> tuple[str, ...]:
    """--recommend-norms: known normalizations, each once, at least two; without it, CHOOSABLE."""
    try:
        names = name_list(text, check_spec)
    except UsageError as exc:
        raise UsageError(f"--recommend-norms: {exc}") from None
    if names is None:
        return CHOOSABLE
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise UsageError(f"--recommend-norms {text!r}: expected at least two different normalizations, each once")
    return tuple(names)


def read_backend(config: pytest.Config) -> tuple[str, str | None, Path | None]:
    """--backend, --ray-address and --ray-data-dir, checked before anything else is read."""
    from harness.ray_backend import check_address, import_ray

    opt = config.getoption
    backend = opt("--backend")
    if backend not in ("local", "ray"):
        raise UsageError(f"--backend {backend!r}: expected 'local' or 'ray'")
    if backend != "ray":
        for option in ("--ray-address", "--ray-data-dir"):
            if opt(option) is not None:
                raise UsageError(f"{option} needs --backend ray")
        return backend, None, None
    if getattr(config.option, "numprocesses", None):
        raise UsageError("--backend ray with -n: the Ray cluster runs the training, this process only waits for it; "
                         "drop -n")
    import_ray()  # not installed: a usage error saying how to install it
    address = check_address(opt("--ray-address")) if opt("--ray-address") is not None else None
    node_data_dir = Path(opt("--ray-data-dir")).expanduser() if opt("--ray-data-dir") else None
    if node_data_dir is not None and not node_data_dir.is_absolute():
        raise UsageError(f"--ray-data-dir {node_data_dir}: expected an absolute path (it is read on every node)")
    return backend, address, node_data_dir
