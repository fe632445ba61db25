"""The pytest plugin: options, claim parametrization, the `finetune` and `evidence` fixtures.

Runs on the controller and on every xdist worker. Bad options raise pytest.UsageError in
pytest_configure: one line, exit status 4, before anything is collected or trained.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.claims import ClaimSpec, check_power, claim_from_marker, seeds_note, select_cells
from harness.config import Profile, RunRecord
from harness.errors import Unavailable, UsageError
from harness.evidence import Evidence
from harness.observations import Cell, ItemTag, Skip, attach
from harness.options import add_options, named_selection, read_settings
from harness.session import (AHEAD, CALL_SEEDS, CONFIGS, ITEM_TAG, PLAN_PASS, PLANNED, REQUESTS, SESSION, Session, Settings,
                             active, of)

log = logging.getLogger("normclaims")


WORKER_USAGE_ERROR = "normclaims_usage_error"
WORKER_DEFERRED = "normclaims_deferred"  # a worker's deferred claims, for the controller's report (it collects none)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args: list[str]) -> None:
    """A claim session without -n uses every core: one xdist worker per core (harness.workers).
    Called for the installed plugin (its entry point), before the command line is parsed."""
    from harness.workers import default_workers

    workers = default_workers(args)
    if workers:
        args[:] = [*args, "-n", str(workers)]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)

def pytest_configure(config: pytest.Config) -> None:
    prefer_work_stealing(config)
    config.addinivalue_line("markers", "claim(name, **prereg): a normclaims claim and its pre-registered test")
    try:
        settings = read_settings(config)
        from harness.store import RunStore

        store = RunStore(settings.store_path, settings.fresh_after, settings.worker)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION] = Session(settings, store, start=getattr(config, "workerinput", {}).get(
        "normclaims_session_start", time.time()))
    if settings.backend == "ray":
        join_cluster(config, settings)
    if not hasattr(config, "workerinput"):  # only the controller sees every report
        from harness.progress import install_progress
        from harness.report import Reporter

        config.pluginmanager.register(Reporter(config), "normclaims-reporter")
        install_progress(config)


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
    of(config).settings = dataclasses.replace(settings, devices=[backend.device], device=backend.device)
    if settings.plan:
        backend.close(None)
        return
    of(config).backend = backend


def pytest_report_header(config: pytest.Config) -> str | None:
    session = active(config)
    backend = session.backend if session is not None else None
    if backend is None:
        return None
    where = session.settings.ray_address or "a Ray instance on this machine"
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
    node.workerinput["normclaims_session_start"] = of(node.config).start
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
        of(metafunc.config).usage_errors.append(str(exc))
        for name in ("model,dataset", "seed"):
            if set(name.split(",")) <= set(metafunc.fixturenames):
                metafunc.parametrize(name, [])
        return
    if spec is None:
        return
    of(metafunc.config).specs[definition_id(metafunc.definition)] = spec
    settings = of(metafunc.config).settings
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
    """Seeds of a fixed design this session runs for the claim: with --seeds auto the claim's planned
    number, with --seeds N that, else the claim's own fixed number or the profile's; at most the
    claim's max_seeds."""
    if settings.sequential:
        seeds = spec.planned_seeds(settings.profile.seeds)
    else:
        seeds = settings.seeds if settings.seeds_chosen else spec.seeds or settings.seeds
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
    errors, specs = of(config).usage_errors, of(config).specs
    settings = of(config).settings
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
    items.sort(key=lambda item: cost_rank(item.stash.get(ITEM_TAG, None)))  # stable: ties keep their order
    for spec in {tag.spec.name: tag.spec for _, tag in tagged}.values():
        seeds = session_seeds(spec, settings)  # a sequential plan's last look: the most it may run
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


def cost_rank(tag: ItemTag | None) -> int:
    """Cells of pretrained models (the costly runs) first, so the workers do not end the session on
    one long cell while the other waits: 0 for those, 1 for the rest."""
    from harness.models import MODELS

    model = tag.cell.get("model") if tag is not None else None
    return 0 if model in MODELS and MODELS.get(model).pretrain_norm is not None else 1


def defer(config: pytest.Config, items: list[pytest.Item], specs: dict, profile: Profile) -> None:
    """Leave out the claims the profile defers for their cost (deselected, remembered for the
    report), in a session of whole folders: a claim file or a -k / -m selection runs what it names."""
    if not profile.defers or named_selection(config):
        return
    from fnmatch import fnmatch

    def names(item) -> list[str]:  # what a pattern may name: the claim, "claim/model-dataset", and for a
        # cell with other parameters "claim/model-dataset-<its values>" (one of init's bad cells, say)
        params = getattr(getattr(item, "callspec", None), "params", {})
        name = specs[definition_id(item)].name
        if not {"model", "dataset"} <= set(params):
            return [name]
        cell = f"{name}/{params['model']}-{params['dataset']}"
        others = [str(v) for k, v in params.items() if k not in ("model", "dataset", "seed")]
        return [name, cell] + ([f"{cell}-{'-'.join(others)}"] if others else [])

    def deferred_as(item):  # (the claim when deferred whole, else the cell; its Deferral), or None
        for rule in profile.defers:
            for name in names(item):
                if any(fnmatch(name, p) for p in rule.patterns):
                    return name, rule
        return None

    deferred = {item: found for item in items if definition_id(item) in specs and (found := deferred_as(item))}
    if not deferred:
        return
    of(config).deferred = {key: (str(Path(str(i.fspath)).relative_to(config.rootpath)), rule)
                           for i, (key, rule) in deferred.items()}
    if hasattr(config, "workerinput"):
        config.workeroutput[WORKER_DEFERRED] = {key: (path, list(rule.patterns), rule.why, rule.profile)
                                                for key, (path, rule) in of(config).deferred.items()}
    items[:] = [item for item in items if item not in deferred]
    config.hook.pytest_deselected(items=list(deferred))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Claim items that are more than one call of the test: a cell under its claim's sequential
    plan (one call per seed, deciding after each look by the same rules as the report and stopping
    at the first boundary crossed), and every claim item under --plan (two passes per seed)."""
    tag = pyfuncitem.stash.get(ITEM_TAG, None)
    plan = of(pyfuncitem.config).settings.plan
    if tag is None or not (tag.sequential or plan):
        return None
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
        window = min((look for look in spec.looks if look > seed), default=seed + 1) if tag.sequential else seed + 1
        pyfuncitem.stash[CALL_SEEDS] = list(range(seed, window))  # this seed and those it runs for sure after it
        recorded += call().recorded
        if any(not d.holds for o in recorded for d in o.domain):
            log.info("%s %s: out of the claim's domain after %d seed(s)", spec.name, tag.cell.id, seed + 1)
            break  # no test of the claim: more seeds would only cost
        if seed + 1 in spec.looks and len(recorded) == seed + 1:
            outcome = look_outcome(spec, recorded, tag.family_size)
            if outcome is not None:
                log.info("%s %s: %s after %d seeds", spec.name, tag.cell.id, outcome, seed + 1)
                break
            next_look = min((look for look in spec.looks if look > seed + 1), default=seed + 1)
            submit_ahead(pyfuncitem, range(seed + 1, next_look))  # --backend ray: the next look's seeds at once
    return True


def look_outcome(spec, recorded: list, family_size: int) -> str | None:
    """What a sequential cell's look decides, by the same rules as the report: the outcome that
    stops it (a verdict, or futility), or None to go on to the next look."""
    if spec.kind == "ranking":
        from harness.recommend import decide_cell

        rec = decide_cell(recorded, spec, sequential=True)
        return rec.decision if rec.decided or rec.decision == "under budget" else None
    import numpy as np

    from harness.verdicts import futility_stop, observation_diffs, sequential_rows

    diffs, step = observation_diffs(recorded)  # on the grid, as the report decides them
    verdict, *_ = sequential_rows(spec, np.asarray(diffs)[None, :], family_size, step)
    if verdict[0] != "inconclusive":
        return verdict[0]
    futile = futility_stop(spec, np.asarray(diffs), family_size, step)
    return f"futile (conditional power {futile[1]:.3f})" if futile else None


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


PLAIN_FIXTURES = ("finetune", "evidence", "data_dir", "profile", "normalizations")  # what runs_ahead can hand a claim test


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

    settings: Settings = of(item.config).settings
    tag = item.stash[ITEM_TAG]
    params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
    names = item._fixtureinfo.argnames
    if not set(names) <= set(params) | set(PLAIN_FIXTURES):
        return (), {}, True
    scratch = PlanScratch()
    numerics = numerics_for("cuda" if settings.device.startswith("cuda") else "cpu", item.config.getoption("--compile"))
    given = {"finetune": plan_runs(scratch, settings, of(item.config).store, numerics),
             "data_dir": settings.data_dir, "profile": settings.profile,
             "normalizations": settings.recommend_norms, **params}
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
    run by its stand-in config; a sequential cell through its last look, so the count is an upper
    bound where a cell stops early), and how many of them are in the store already. Under --backend ray
    each item keeps its answer for the submission that follows, so the items are enumerated once."""
    runs: dict = {}
    for item in items:
        seeds = tuple(item_seeds(item))
        ahead = requests_ahead(item, seeds)
        if of(item.config).backend is not None:
            item.stash[AHEAD] = (seeds, ahead)
        requests = list(ahead[0])
        tag = item.stash[ITEM_TAG]
        if tag.sequential and tag.spec.looks[-1] > len(seeds):  # to its last look: at most what it runs
            requests += requests_ahead(item, range(len(seeds), tag.spec.looks[-1]))[0]
        for request in requests:
            runs.setdefault(request.key, request)
    return len(runs), sum(r.cached for r in runs.values())


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """For the progress display's runs left and ETA: the session's runs, enumerated once, on the
    controller or (under xdist, where the controller collects nothing) on the first worker, which
    leaves them in the store for the controller. Skipped where nothing shows progress."""
    config = session.config
    settings = active(config).settings if active(config) is not None else None
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
            of(config).store.note_session_plan(of(config).start, runs, stored)
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
    backend = of(session.config).backend if active(session.config) is not None else None
    if backend is None or session.config.option.collectonly or (
            session.testsfailed and not session.config.option.continue_on_collection_errors):
        return
    progress = session.config.pluginmanager.get_plugin("normclaims-progress")
    if progress is not None:  # a lost worker and its retry show where the runs do
        backend.notify = progress.note
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
    backend = of(item.config).backend
    if backend is not None:
        for cfg in runs_ahead(item, seeds)[0]:
            backend.submit(cfg)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    message = getattr(node, "workeroutput", {}).get(WORKER_USAGE_ERROR)
    if message:
        of(node.config).usage_errors.append(message)
    from harness.config import Deferral

    for key, (path, patterns, why, profile) in getattr(node, "workeroutput", {}).get(WORKER_DEFERRED, {}).items():
        of(node.config).deferred[key] = (path, Deferral(tuple(patterns), why, profile))


@pytest.hookimpl(tryfirst=True)  # before the terminal reporter renders it
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo) -> None:
    """A Ctrl-C that landed on an instruction without a line number still reports as one."""
    from harness.interrupts import reportable

    reportable(excinfo)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leave_cluster(session.config)
    errors = active(session.config).usage_errors if active(session.config) is not None else []
    if errors and not hasattr(session.config, "workerinput"):
        import sys

        sys.stderr.write(f"ERROR: {'; '.join(dict.fromkeys(errors))}\n")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def leave_cluster(config: pytest.Config) -> None:
    """--backend ray, at the end of the session or after Ctrl-C: store what has finished, cancel the rest."""
    session = active(config)
    backend = session.backend if session is not None else None
    if backend is not None:
        session.backend = None
        backend.close(session.store)


def pytest_unconfigure(config: pytest.Config) -> None:
    leave_cluster(config)  # when the session ended before pytest_sessionfinish


@pytest.fixture
def finetune(request: pytest.FixtureRequest):
    """finetune(model=..., dataset=..., norm=..., seed=..., **RunConfig overrides) -> RunRecord.

    Returns the stored run when there is one; otherwise trains it (once across workers) and
    stores it. Skips the test when data or weights are unavailable, saying how to get them.
    """
    from harness.protocol import numerics_for

    settings: Settings = of(request.config).settings
    store = of(request.config).store
    device_type = "cuda" if settings.device.startswith("cuda") else "cpu"
    numerics = numerics_for(device_type, request.config.getoption("--compile"))

    if settings.plan:
        return plan_runs(request.node, settings, store, numerics)
    backend = of(request.config).backend

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
            helper = TrainAhead(request.node, store, train, available)
            return store.get_or_run(cfg, train, on_wait=log.info, precheck=available, while_waiting=helper)
        except Unavailable as exc:
            attach(request.node, Skip(exc.reasons))
            pytest.skip(str(exc))

    return run


class TrainAhead:
    """While another worker trains a run this item waits for, train the item's own runs that nobody
    has: its other runs at this seed, then those of the seeds a sequential cell runs for sure after it
    (up to its next look, nearest first; none it might not need), as --plan finds them (never one that depends on a result not in yet). Without it
    two items sharing runs (FixRes's claims, the init claims' grid) take turns on one run at a time
    while a core waits. A call returns True when it trained a run; one that found nothing to train
    is not repeated for RETRY_S, so waiting costs no CPU."""

    RETRY_S = 15.0

    def __init__(self, item: pytest.Item, store, train, available):
        self.item, self.store, self.train, self.available = item, store, train, available
        self.idle_until = 0.0

    def __call__(self) -> bool:
        tag = self.item.stash.get(ITEM_TAG, None)
        if tag is None or time.monotonic() < self.idle_until:
            return False
        seeds = self.item.stash.get(CALL_SEEDS, None) or ([tag.seed] if tag.seed is not None else [])
        for cfg in runs_ahead(self.item, seeds)[0] if seeds else ():
            try:
                record = self.store.get_or_run(cfg, self.train, precheck=self.available, wait=False)
            except Unavailable:
                continue  # the item skips when it asks for it
            if record is not None and not record.cached:
                log.info("trained %s while waiting for another worker's run", cfg.label())
                return True
        self.idle_until = time.monotonic() + self.RETRY_S
        return False


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
    return of(request.config).settings.data_dir


@pytest.fixture
def profile(request: pytest.FixtureRequest) -> Profile:
    """The session's budget profile, for claims whose recipe or grid depends on it."""
    return of(request.config).settings.profile


@pytest.fixture
def normalizations(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The normalizations the recommendation compares (--recommend-norms, else harness.norms.CHOOSABLE)."""
    return of(request.config).settings.recommend_norms


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    tag = request.node.stash.get(ITEM_TAG, None)
    if tag is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the evidence fixture needs a claim marker on the test or module")
    return Evidence(request.node, tag)
