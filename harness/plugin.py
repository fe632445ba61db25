"""The pytest plugin: options, claim parametrization, the `finetune` and `evidence` fixtures.

Runs on the controller and on every xdist worker. Bad options raise pytest.UsageError in
pytest_configure: one line, exit status 4, before anything is collected or trained.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.claims import ClaimSpec, check_power, claim_from_marker, seeds_note, select_cells
from harness.config import DEFAULT_PROFILE, PROFILES, Profile, RunRecord, get_profile
from harness.devices import available_cores, core_share, device_for_worker, parse_gpus, visible_gpu_count
from harness.errors import Unavailable, UsageError
from harness.evidence import Evidence
from harness.files import write_problem
from harness.observations import Cell, ItemTag, Skip, attach

log = logging.getLogger("normclaims")


@dataclass(frozen=True)
class Settings:
    profile: Profile
    seeds: int  # seeds of a fixed design (with --seeds auto: the profile's, for claims without a plan)
    sequential: bool  # --seeds auto: claims with a sequential plan follow it, the others their planned seeds
    devices: list[str]
    device: str  # this process's device
    threads: int  # intra-op threads of this process's runs: --cpu-threads, else its share of the cores
    data_dir: Path
    store_path: Path
    fresh_after: float | None  # --rerun: ignore runs finished before this session
    models: list[str] | None
    datasets: list[str] | None
    worker: str
    plan: bool = False  # --plan: list what the session would train, train nothing
    backend: str = "local"  # "local": this process (or each xdist worker) trains; "ray": Ray tasks do
    ray_address: str | None = None  # --ray-address; None: a Ray instance on this machine
    node_data_dir: Path | None = None  # the data dir on the Ray nodes (--ray-data-dir, else data_dir)


SETTINGS = pytest.StashKey[Settings]()
STORE = pytest.StashKey[object]()
USAGE_ERRORS = pytest.StashKey[list]()  # claim pre-registration problems found while collecting
SPECS = pytest.StashKey[dict]()  # test function's node id -> its ClaimSpec, parsed once per collection
ITEM_TAG = pytest.StashKey[ItemTag]()  # on each claim item: its claim, cell and seed
REQUESTS = pytest.StashKey[list]()  # --plan: the runs an item asked for, in its current pass
PLAN_PASS = pytest.StashKey[int]()  # --plan: which of the item's two passes is running
PLANNED = pytest.StashKey[tuple]()  # --plan: every run the item asked for, the dependent ones marked
CONFIGS = pytest.StashKey[dict]()  # --plan: the config of each missing run the item asked for, by key
DEFERRED = pytest.StashKey[dict]()  # claim name -> its module's path, for claims the profile leaves out
AHEAD = pytest.StashKey[tuple]()  # --backend ray: (seeds, requests_ahead's answer) at collection, for the first submission
BACKEND = pytest.StashKey[object]()  # --backend ray: the session's RayBackend
WORKER_USAGE_ERROR = "normclaims_usage_error"
MAX_SEEDS = 1000  # a bound on --seeds: each seed is a test item of every cell


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args: list[str]) -> None:
    """A claim session without -n uses every core: one xdist worker per core (harness.workers).
    Called for the installed plugin (its entry point), before the command line is parsed."""
    from harness.workers import default_workers

    workers = default_workers(args)
    if workers:
        args[:] = [*args, "-n", str(workers)]


def pytest_addoption(parser: pytest.Parser) -> None:
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
                    help="where summary.md and summary.json are written (relative to the rootdir). Default: %(default)r")


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
        profile=profile, seeds=seeds, sequential=sequential, devices=devices, device=device_for_worker(devices, worker),
        threads=threads, data_dir=data_dir.resolve(), store_path=store_path,
        fresh_after=fresh_after,
        models=name_list(opt("--models"), MODELS.get),
        datasets=name_list(opt("--datasets"), get_dataset),
        worker=worker, plan=opt("--plan"),
        backend=backend, ray_address=ray_address,
        node_data_dir=node_data_dir or (data_dir.resolve() if backend == "ray" else None),
    )


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


def pytest_configure(config: pytest.Config) -> None:
    prefer_work_stealing(config)
    config.addinivalue_line("markers", "claim(name, **prereg): a normclaims claim and its pre-registered test")
    try:
        settings = read_settings(config)
        from harness.store import RunStore

        store = RunStore(settings.store_path, settings.fresh_after, settings.worker)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS] = settings
    config.stash[STORE] = store
    config.stash[USAGE_ERRORS] = []
    config.stash[SPECS] = {}
    config.stash[SESSION_START] = getattr(config, "workerinput", {}).get("normclaims_session_start", time.time())
    if settings.backend == "ray":
        join_cluster(config, settings)
    if not hasattr(config, "workerinput"):  # only the controller sees every report
        from harness.progress import install_progress
        from harness.report import Reporter

        config.pluginmanager.register(Reporter(config), "normclaims-reporter")
        install_progress(config)


SESSION_START = pytest.StashKey[float]()


def join_cluster(config: pytest.Config, settings: Settings) -> None:
    """--backend ray: join the cluster (or start Ray here); runs train on its device type: a GPU when
    it has any and --gpus is not 'cpu'. --plan trains nothing: it joins only a named cluster, to plan
    for its device type."""
    from harness.ray_backend import RayBackend

    if settings.plan and settings.ray_address is None:
        return
    try:
        backend = RayBackend.connect(settings.ray_address, settings.node_data_dir, settings.threads, config.getoption("--gpus"))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS] = dataclasses.replace(settings, devices=[backend.device], device=backend.device)
    if settings.plan:
        backend.close(None)
        return
    config.stash[BACKEND] = backend


def pytest_report_header(config: pytest.Config) -> str | None:
    backend = config.stash.get(BACKEND, None)
    if backend is None:
        return None
    where = config.stash[SETTINGS].ray_address or "a Ray instance on this machine"
    return (f"normclaims: --backend ray on {where}: {backend.slots} run(s) at once on "
            f"{'GPUs' if backend.cuda else f'CPUs, {backend.threads} thread(s) each'}; data dir on the nodes "
            f"{backend.data_dir}")


def prefer_work_stealing(config: pytest.Config) -> None:
    """Under `-n`, xdist's default "load" deals items out in fixed chunks, so one worker can get every
    cell that trains while the others only skip. "worksteal" rebalances; an explicit --dist wins."""
    explicit = any(a.startswith("--dist") for a in config.invocation_params.args)
    if getattr(config.option, "dist", None) == "load" and not explicit:
        config.option.dist = "worksteal"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller -> each worker: one session start, so --rerun keeps what this session trained;
    whether the controller shows progress (then the first worker enumerates the session's runs for it)."""
    node.workerinput["normclaims_session_start"] = node.config.stash[SESSION_START]
    node.workerinput["normclaims_progress"] = node.config.pluginmanager.get_plugin("normclaims-progress") is not None


def definition_id(node) -> str:
    return node.nodeid.split("[", 1)[0]


def parse_claim(node) -> ClaimSpec | None:
    mark = node.get_closest_marker("claim")
    if mark is None:
        return None
    module = getattr(node, "module", None)
    return claim_from_marker(mark, module.__name__.rsplit(".", 1)[-1] if module else node.name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parse and check the claim's pre-registration (once per test function) and parametrize
    its cells and seeds."""
    try:
        spec = parse_claim(metafunc.definition)
    except UsageError as exc:
        # raised as a usage error once collection ends (see pytest_collection_modifyitems)
        metafunc.config.stash[USAGE_ERRORS].append(str(exc))
        for name in ("model,dataset", "seed"):
            if set(name.split(",")) <= set(metafunc.fixturenames):
                metafunc.parametrize(name, [])
        return
    if spec is None:
        return
    metafunc.config.stash[SPECS][definition_id(metafunc.definition)] = spec
    settings = metafunc.config.stash[SETTINGS]
    if {"model", "dataset"} <= set(metafunc.fixturenames):
        cells = select_cells(spec, settings.models, settings.datasets)
        metafunc.parametrize("model,dataset", cells, ids=[f"{m}-{short(d)}" for m, d in cells])
    if "seed" in metafunc.fixturenames:
        if settings.sequential and spec.looks:  # one item per cell runs the plan's seeds (pytest_pyfunc_call)
            metafunc.parametrize("seed", [None], ids=["auto"])
            return
        seeds = session_seeds(spec, settings)
        metafunc.parametrize("seed", range(seeds), ids=[f"seed{s}" for s in range(seeds)])


def session_seeds(spec: ClaimSpec, settings: Settings) -> int:
    """Seeds of a fixed design this session runs for the claim: --seeds N, or with --seeds auto
    the claim's planned number; at most the claim's max_seeds."""
    seeds = spec.planned_seeds(settings.profile.seeds) if settings.sequential else settings.seeds
    return min(seeds, spec.max_seeds or seeds)


def short(dataset: str) -> str:
    return f"folder_{Path(dataset.split(':', 1)[1]).name}" if dataset.startswith("folder:") else dataset


def item_tag(item: pytest.Item, spec: ClaimSpec, sequential: bool) -> ItemTag:
    params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
    seed = params.pop("seed", None)
    cell = Cell(tuple((k, v) for k, v in params.items() if isinstance(v, (str, int, float, bool))))
    return ItemTag(spec, cell, seed, sequential=sequential and bool(spec.looks) and seed is None)


def runnable(cell: Cell, settings: Settings) -> bool:
    """Whether a cell's data and weights can be had here (checked without torch or a download): a
    cell that will be skipped is not in its claim's family."""
    from harness.availability import offline_reasons
    from harness.models import MODELS

    model, dataset = cell.get("model"), cell.get("dataset")
    if model is None or dataset is None or model not in MODELS:
        return True
    weights = "pretrained" if MODELS.get(model).pretrain_norm is not None else "scratch"
    return not offline_reasons(dataset, settings.data_dir, model, weights)


@pytest.hookimpl(trylast=True)  # after -k and -m deselection: the Holm family is what runs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check every claim's pre-registration against this session (seeds, Holm family size) before
    anything trains, and tag every claim item with its claim, cell and seed."""
    errors, specs = config.stash[USAGE_ERRORS], config.stash[SPECS]
    settings = config.stash[SETTINGS]
    defer(config, items, specs, settings.profile)
    tagged = [(item, item_tag(item, specs[definition_id(item)], settings.sequential))
              for item in items if definition_id(item) in specs]
    # each claim's runnable cells among the selected items (a -k may keep some seeds of a cell only)
    cells = Counter(name for name, _ in {(tag.spec.name, tag.cell) for _, tag in tagged if runnable(tag.cell, settings)})
    session_family = sum(cells.values())
    family_of = {tag.spec.name: max(1, cells[tag.spec.name] if config.getoption("--correction") == "claim"
                                    else session_family) for _, tag in tagged}
    for item, tag in tagged:
        tag = dataclasses.replace(tag, family_size=family_of[tag.spec.name])
        item.stash[ITEM_TAG] = tag
        attach(item, tag)
    for spec in {tag.spec.name: tag.spec for _, tag in tagged}.values():
        seeds = spec.looks[-1] if settings.sequential and spec.looks else session_seeds(spec, settings)
        try:
            check_power(spec, seeds, family_of[spec.name])
        except UsageError as exc:
            errors.append(str(exc))
        note = seeds_note(spec, seeds)
        if note and not hasattr(config, "workerinput"):
            config.get_terminal_writer().line(f"note: {note}", yellow=True)
    if errors:
        message = "; ".join(dict.fromkeys(errors))
        if hasattr(config, "workerinput"):
            # an xdist worker cannot raise a usage error: it runs nothing and tells the controller
            config.workeroutput[WORKER_USAGE_ERROR] = message
            items.clear()
        else:
            errors.clear()  # pytest itself prints this one, with exit status 4
            raise pytest.UsageError(message)


def defer(config: pytest.Config, items: list[pytest.Item], specs: dict, profile: Profile) -> None:
    """Leave out the claims the profile defers for their cost (deselected, remembered for the
    report), in a session of whole folders: a claim file or a -k / -m selection runs what it names."""
    if not profile.defers or config.getoption("keyword") or config.getoption("markexpr"):
        return
    if any(Path(str(arg).split("::")[0]).is_file() for arg in config.args):
        return
    from fnmatch import fnmatch

    def what(item) -> str:  # "claim", or "claim/model-dataset" for an item of a cell
        params = getattr(getattr(item, "callspec", None), "params", {})
        name = specs[definition_id(item)].name
        return f"{name}/{params['model']}-{params['dataset']}" if {"model", "dataset"} <= set(params) else name

    def deferred_as(item) -> str | None:  # the claim when the profile defers it whole, else the cell, or None
        name = specs[definition_id(item)].name
        if any(fnmatch(name, p) for p in profile.defers):
            return name
        return what(item) if any(fnmatch(what(item), p) for p in profile.defers) else None

    deferred = {item: key for item in items if definition_id(item) in specs and (key := deferred_as(item))}
    if not deferred:
        return
    config.stash[DEFERRED] = {key: str(Path(str(i.fspath)).relative_to(config.rootpath)) for i, key in deferred.items()}
    items[:] = [item for item in items if item not in deferred]
    config.hook.pytest_deselected(items=list(deferred))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Claim items that are more than one call of the test: a cell under its claim's sequential
    plan (one call per seed, deciding after each look by the same rules as the report and stopping
    at the first boundary crossed), and every claim item under --plan (two passes per seed)."""
    tag = pyfuncitem.stash.get(ITEM_TAG, None)
    plan = pyfuncitem.config.stash[SETTINGS].plan
    if tag is None or not (tag.sequential or plan):
        return None
    import numpy as np

    from harness.verdicts import observation_diffs, sequential_rows

    spec = tag.spec
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    recorded: list = []  # this cell's observations so far, one per seed
    for seed in range(spec.looks[-1]) if tag.sequential else [tag.seed]:
        def call(seed=seed):
            evidence = Evidence(pyfuncitem, dataclasses.replace(tag, seed=seed))
            pyfuncitem.obj(**{**args, **({"seed": seed} if "seed" in args else {}),
                              **({"evidence": evidence} if "evidence" in args else {})})
            return evidence

        if plan:
            plan_passes(pyfuncitem, call)
            continue
        recorded += call().recorded
        if any(not d.holds for o in recorded for d in o.domain):
            log.info("%s %s: out of the claim's domain after %d seed(s)", spec.name, tag.cell.id, seed + 1)
            break  # no test of the claim: more seeds would only cost
        if seed + 1 in spec.looks and len(recorded) == seed + 1:
            diffs, step = observation_diffs(recorded)  # on the grid, as the report decides them
            verdict, *_ = sequential_rows(spec, np.asarray(diffs)[None, :], tag.family_size, step)
            if verdict[0] != "inconclusive":
                log.info("%s %s: %s after %d seeds", spec.name, tag.cell.id, verdict[0], seed + 1)
                break
            next_look = min((look for look in spec.looks if look > seed + 1), default=seed + 1)
            submit_ahead(pyfuncitem, range(seed + 1, next_look))  # --backend ray: the next look's seeds at once
    return True


def plan_passes(item: pytest.Function, call) -> None:
    """--plan: run the test twice with different stand-in values for the runs not in the store; a
    run asked for in one pass only is dependent (its config follows other runs' results)."""
    from harness.observations import Requests

    passes: list[list] = []
    try:
        for plan_pass in (1, 2):
            item.stash[PLAN_PASS], item.stash[REQUESTS] = plan_pass, []
            passes.append(item.stash[REQUESTS])  # the fixture appends to this list
            call()
    finally:  # also when a pass skips: what was asked for until then is listed
        both = set.intersection(*({r.key for r in p} for p in passes))
        runs = {r.key: r for r in passes[0]}.values()  # the first pass's runs: one set of stand-ins
        requests = tuple(dataclasses.replace(r, dependent=r.key not in both) for r in runs)
        item.stash[PLANNED] = item.stash.get(PLANNED, ()) + requests
        attach(item, Requests(requests))
        del item.stash[PLAN_PASS]  # the passes are over: a later call of the test is a real one


class PlanScratch:
    """Stands in for an item whose runs are enumerated before it runs (--backend ray): what the
    plan's finetune and the evidence record lands here, not in the item's report."""

    def __init__(self):
        self.stash = pytest.Stash()
        self.user_properties: list = []


PLAIN_FIXTURES = ("finetune", "evidence", "data_dir", "profile")  # what runs_ahead can hand a claim test


def runs_ahead(item: pytest.Function, seeds) -> tuple[list, bool]:
    """Before `item` runs: the missing runs it will ask for at `seeds` that follow from no other
    run's result, found by --plan's two passes; and whether it asks for others, which depend on
    runs not finished yet (also when a fixture other than the plain ones keeps it from being called)."""
    known = item.stash.get(AHEAD, None)
    if known is not None and known[0] == tuple(seeds):
        del item.stash[AHEAD]  # good once: by the next call, runs may have finished
        requests, configs, blocked = known[1]
    else:
        requests, configs, blocked = requests_ahead(item, seeds)
    return ([configs[r.key] for r in requests if not r.cached and not r.dependent],
            blocked or any(r.dependent for r in requests))


def requests_ahead(item: pytest.Function, seeds) -> tuple[tuple, dict, bool]:
    """Every run `item` will ask for at `seeds` as --plan lists them (stored, missing, dependent),
    the configs of the missing ones by key, and whether a fixture other than the plain ones keeps
    the item from being called ahead."""
    from harness.protocol import numerics_for

    settings: Settings = item.config.stash[SETTINGS]
    tag = item.stash[ITEM_TAG]
    params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
    names = item._fixtureinfo.argnames
    if not set(names) <= set(params) | set(PLAIN_FIXTURES):
        return (), {}, True
    scratch = PlanScratch()
    numerics = numerics_for("cuda" if settings.device.startswith("cuda") else "cpu", item.config.getoption("--compile"))
    given = {"finetune": plan_runs(scratch, settings, item.config.stash[STORE], numerics),
             "data_dir": settings.data_dir, "profile": settings.profile, **params}
    for seed in seeds:
        def call(seed=seed):
            evidence = Evidence(scratch, dataclasses.replace(tag, seed=seed))
            item.obj(**{name: evidence if name == "evidence" else seed if name == "seed" else given[name]
                        for name in names})

        try:
            plan_passes(scratch, call)
        except (Exception, pytest.skip.Exception, pytest.fail.Exception, pytest.xfail.Exception):
            pass  # what it asked for until then is planned; the item meets the same outcome when it runs
    return scratch.stash.get(PLANNED, ()), scratch.stash.get(CONFIGS, {}), False


def session_runs(items: list) -> tuple[int, int]:
    """The distinct runs a session's claim items will ask for, as --plan counts them (a dependent
    run by its stand-in config), and how many of them are in the store already. Under --backend ray
    each item keeps its answer for the submission that follows, so the items are enumerated once."""
    runs: dict = {}
    for item in items:
        seeds = tuple(item_seeds(item))
        ahead = requests_ahead(item, seeds)
        if BACKEND in item.config.stash:
            item.stash[AHEAD] = (seeds, ahead)
        for request in ahead[0]:
            runs.setdefault(request.key, request)
    return len(runs), sum(r.cached for r in runs.values())


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """For the progress display's runs left and ETA: the session's runs, enumerated once, on the
    controller or (under xdist, where the controller collects nothing) on the first worker, which
    leaves them in the store for the controller. Skipped where nothing shows progress."""
    config = session.config
    settings = config.stash.get(SETTINGS, None)
    if settings is None or settings.plan or config.option.collectonly:
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if workerinput.get("workerid") != "gw0" or not workerinput.get("normclaims_progress"):
            return
    elif config.pluginmanager.get_plugin("normclaims-progress") is None:
        return
    try:
        runs, stored = session_runs([item for item in session.items if ITEM_TAG in item.stash])
    except Exception as error:  # the display goes by test items then; the session goes on
        log.debug("runs of the session not enumerated: %s", error)
        return
    if workerinput is not None:
        if runs > stored:
            config.stash[STORE].note_session_plan(config.stash[SESSION_START], runs, stored)
    else:
        config.pluginmanager.get_plugin("normclaims-progress").set_total_runs(runs, stored)


def item_seeds(item: pytest.Function):
    """The seeds an item runs for sure: its own, or a sequential cell's seeds up to its first look."""
    tag = item.stash[ITEM_TAG]
    return range(tag.spec.looks[0]) if tag.sequential else [tag.seed]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """--backend ray: before the first item runs, submit every run the items will ask for that does
    not depend on other runs' results, in the order the items ask for them."""
    backend = session.config.stash.get(BACKEND, None)
    if backend is None or session.config.option.collectonly or (
            session.testsfailed and not session.config.option.continue_on_collection_errors):
        return
    started = time.perf_counter()
    waiting, submitted = submit_from(backend, [item for item in session.items if ITEM_TAG in item.stash])

    def replan() -> None:
        waiting[:], more = submit_from(backend, waiting)
        if more:
            log.info("submitted %d run(s) to Ray whose inputs have finished", more)

    backend.replan = replan
    log.info("submitted %d run(s) to Ray in %.1f s; %d item(s) ask for runs that depend on others",
             submitted, time.perf_counter() - started, len(waiting))


def submit_from(backend, items: list) -> tuple[list, int]:
    """Submit the runs `items` can name now: the items that ask for runs not known yet, and how many
    runs were submitted."""
    waiting, submitted = [], 0
    for item in items:
        configs, dependent = runs_ahead(item, item_seeds(item))
        submitted += sum(backend.submit(cfg) for cfg in configs)
        if dependent:
            waiting.append(item)
    return waiting, submitted


def submit_ahead(item: pytest.Function, seeds) -> None:
    backend = item.config.stash.get(BACKEND, None)
    if backend is not None:
        for cfg in runs_ahead(item, seeds)[0]:
            backend.submit(cfg)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    message = getattr(node, "workeroutput", {}).get(WORKER_USAGE_ERROR)
    if message:
        node.config.stash[USAGE_ERRORS].append(message)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leave_cluster(session.config)
    errors = session.config.stash.get(USAGE_ERRORS, [])
    if errors and not hasattr(session.config, "workerinput"):
        import sys

        sys.stderr.write(f"ERROR: {'; '.join(dict.fromkeys(errors))}\n")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def leave_cluster(config: pytest.Config) -> None:
    """--backend ray, at the end of the session or after Ctrl-C: store what has finished, cancel the rest."""
    backend = config.stash.get(BACKEND, None)
    if backend is not None:
        del config.stash[BACKEND]
        backend.close(config.stash[STORE])


def pytest_unconfigure(config: pytest.Config) -> None:
    leave_cluster(config)  # when the session ended before pytest_sessionfinish


@pytest.fixture
def finetune(request: pytest.FixtureRequest):
    """finetune(model=..., dataset=..., norm=..., seed=..., **RunConfig overrides) -> RunRecord.

    Returns the stored run when there is one; otherwise trains it (once across workers) and
    stores it. Skips the test when data or weights are unavailable, saying how to get them.
    """
    from harness.protocol import numerics_for

    settings: Settings = request.config.stash[SETTINGS]
    store = request.config.stash[STORE]
    device_type = "cuda" if settings.device.startswith("cuda") else "cpu"
    numerics = numerics_for(device_type, request.config.getoption("--compile"))

    if settings.plan:
        return plan_runs(request.node, settings, store, numerics)
    backend = request.config.stash.get(BACKEND, None)

    def run(*, model: str, dataset: str, norm: str, seed: int, **overrides) -> RunRecord:
        cfg = requested_config(settings, numerics, model=model, dataset=dataset, norm=norm, seed=seed, **overrides)

        def available(c):
            from harness.availability import require

            require(c.dataset, settings.data_dir, c.model, c.weights)

        def train(c):
            from harness.progress import progress_reporter
            from harness.train import finetune as train_run

            log.info("training %s on %s", c.label(), settings.device)
            with progress_reporter(store, c, log.info) as progress:  # the controller's live area reads it
                return train_run(c, settings.device, settings.data_dir, progress=progress, threads=settings.threads)

        try:
            if backend is not None:  # the session's data dir is the nodes' unless --ray-data-dir says otherwise
                same_data = settings.node_data_dir == settings.data_dir
                return backend.get_or_train(store, cfg, on_wait=log.info, precheck=available if same_data else None)
            return store.get_or_run(cfg, train, on_wait=log.info, precheck=available)
        except Unavailable as exc:
            attach(request.node, Skip(exc.reasons))
            pytest.skip(str(exc))

    return run


def requested_config(settings: Settings, numerics, **request):
    """The RunConfig a claim asks for; a bad request fails the item with one line."""
    from harness.protocol import make_config

    try:
        cfg, bad = make_config(profile=settings.profile, numerics=numerics, **request), None
    except UsageError as exc:
        bad = str(exc)
    if bad:  # failed outside the except block: one line, no chained traceback
        pytest.fail(f"bad run request in the claim: {bad}", pytrace=False)
    return cfg


def plan_runs(item, settings: Settings, store, numerics):
    """--plan's finetune: a stored run as it is, a missing one as a PlannedRun, each request listed
    in `item`'s stash (a claim item, or a PlanScratch standing in for one)."""
    from harness.availability import offline_reasons
    from harness.datasets import get_dataset
    from harness.plan import PlannedRun, RunRequest, run_images, stand_in

    def run(*, model: str, dataset: str, norm: str, seed: int, **overrides) -> RunRecord:
        cfg = requested_config(settings, numerics, model=model, dataset=dataset, norm=norm, seed=seed, **overrides)
        found = store.lookup(cfg.key()) if store.path.exists() else None
        if found is None:
            reasons = offline_reasons(cfg.dataset, settings.data_dir, cfg.model, cfg.weights)
            if reasons:
                attach(item, Skip(reasons))
                pytest.skip("; and ".join(reasons))
        spec = get_dataset(cfg.dataset)
        item.stash.setdefault(REQUESTS, []).append(RunRequest(
            cfg.key(), cfg.model, cfg.dataset, cfg.resolution or spec.size, cfg.device_type,
            run_images(cfg, spec.train_size, spec.test_size), found is not None))
        if found is not None:
            return found
        item.stash.setdefault(CONFIGS, {})[cfg.key()] = cfg
        return PlannedRun(cfg.key(), cfg, "planned", None, value=stand_in(cfg.key(), item.stash.get(PLAN_PASS, 0)))

    return run


@pytest.fixture
def data_dir(request: pytest.FixtureRequest) -> Path:
    """The session's data dir (--data-dir), for claims that read dataset statistics."""
    return request.config.stash[SETTINGS].data_dir


@pytest.fixture
def profile(request: pytest.FixtureRequest) -> Profile:
    """The session's budget profile, for claims whose recipe or grid depends on it."""
    return request.config.stash[SETTINGS].profile


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    tag = request.node.stash.get(ITEM_TAG, None)
    if tag is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the evidence fixture needs a claim marker on the test or module")
    return Evidence(request.node, tag)
