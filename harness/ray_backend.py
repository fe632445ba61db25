"""`--backend ray`: every training run is a Ray task; only the session's own process writes the store.

At session start the plugin submits every run the session needs that follows from no other run's
result (the enumeration `--plan` does), so the cluster is busy from the start. A test item asking
for a run waits for its task; runs that finish meanwhile are stored at once, so Ctrl-C or a crash
of the session loses only the runs still training, and a restarted session trains only what is
missing. Whenever fewer runs are queued than the cluster has slots, the plugin plans the items
whose runs depend on others again and submits those that can now be named (the init search's
trials once its grid has finished).

A task asks for its device (one GPU, or as many CPUs as the run has threads), builds its dataset on
the node from the node data dir, trains exactly as the local backend does (harness.train.finetune
at the session's thread count: the same numbers on the CPU) and returns its RunResult as a dict
with the node that trained it. A task whose worker or node dies is run again elsewhere by Ray.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import socket
import time
from pathlib import Path
from typing import Callable

from harness.config import RunConfig, RunRecord, RunResult
from harness.errors import RunFailed, Unavailable, UsageError
from harness.interrupts import kept_interrupts
from harness.store import TrainedElsewhere

log = logging.getLogger("normclaims")

RETRIES = 3  # times a task whose worker or node died is resubmitted (never for an error in the run itself)
LOST = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError")  # Ray's: the task was lost
WAIT_S = 1.0  # a waiting session wakes this often: Ctrl-C is handled within it
CONNECT_S = 5.0  # how long the head node may take to accept a connection
INSTALL_HINT = "pip install -e .[ray] (or pip install 'ray>=2.9')"


def check_address(text: str) -> str:
    """--ray-address: 'auto' (the cluster this machine belongs to) or HOST:PORT of its head node."""
    if text == "auto" or re.fullmatch(r"[A-Za-z0-9._\-\[\]:]*[A-Za-z0-9.\-\]]:\d{1,5}", text):
        return text
    raise UsageError(f"--ray-address {text!r}: expected 'auto' or HOST:PORT of the cluster's head node, e.g. 10.0.0.5:6379")


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def probe(address: str) -> None:
    """Fail fast where no cluster answers at `address`: Ray itself waits a minute or more for one,
    and its own messages name flags of its CLI or the node's IP instead of what the user passed."""
    no_cluster = (f"--ray-address {address}: no Ray cluster runs on this machine (start one with 'ray start --head', "
                  "or pass HOST:PORT of its head node)")
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address  # finds the cluster as ray.init does
            resolved = canonicalize_bootstrap_address(address)
        except ConnectionError:  # Ray 2.60: its lookup raises when no cluster runs here
            raise UsageError(no_cluster) from None
        except Exception:  # a Ray without this helper: ray.init says what is wrong
            return
        if resolved is None:
            raise UsageError(no_cluster)
        address_to_try, shown = resolved, f"{resolved} (the cluster this machine belongs to)"
    else:
        address_to_try, shown = address, address  # as given: Ray would put the node's IP for 127.0.0.1
    host, port = address_to_try.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_S).close()
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: no Ray cluster answers at {shown} ({exc.strerror or exc})") from None


# ---------------------------------------------------------------------------- on a node
def train_task(config: dict, data_dir: str, threads: int) -> dict:
    """One run on whichever node Ray chose. A run that produced no valid result (RunFailed) or whose
    data or weights the node lacks (Unavailable) is an outcome like a result, so only errors in the
    harness itself travel back as exceptions."""
    import ray

    from harness.train import finetune

    node = {"host": socket.gethostname(), "worker": f"ray:{ray.get_runtime_context().get_node_id()[:8]}",
            "started": time.time()}
    cfg = RunConfig.from_dict(config)
    device = "cuda:0" if cfg.device_type == "cuda" else "cpu"  # Ray shows a task only the GPU it was given
    try:
        outcome = {"result": finetune(cfg, device, Path(data_dir), threads=threads).to_dict()}
    except RunFailed as exc:
        outcome = {"failed": str(exc)}
    except Unavailable as exc:
        outcome = {"unavailable": list(exc.reasons)}
    return {**outcome, **node, "ended": time.time()}


def result_of(outcome: dict) -> TrainedElsewhere:
    """A task's outcome as get_or_run stores it, naming the node; Unavailable when the node lacked
    the run's data or weights (nothing is stored)."""
    if "unavailable" in outcome:
        raise Unavailable(*(f"on node {outcome['host']}: {r}" for r in outcome["unavailable"]))
    result = RunResult.from_dict(outcome["result"]) if "failed" not in outcome else None
    return TrainedElsewhere(result, outcome["host"], outcome["worker"], failure=outcome.get("failed"))


# ---------------------------------------------------------------------------- in the session
@dataclasses.dataclass
class Task:
    cfg: RunConfig
    ref: object  # ray.ObjectRef of train_task's outcome
    submitted: float
    outcome: dict | Exception | None = None  # once received: train_task's dict, or what Ray raised
    attempt: int = 0  # resubmissions after a lost worker or node


class RayBackend:
    """The session's side: submits runs, waits for them and hands their results to the store."""

    def __init__(self, ray, data_dir: Path, threads: int, cuda: bool, slots: int):
        self.ray = ray
        self.data_dir = data_dir  # the data dir on the nodes
        self.threads = threads
        self.cuda = cuda
        self.slots = slots  # runs the cluster trains at once
        self.remote = ray.remote(train_task)
        self.pending: dict[str, Task] = {}  # submitted, outcome not yet received
        self.finished: dict[str, Task] = {}  # received, not (yet) in the store
        self.trained: set[str] = set()  # stored by this session (the report counts them as trained)
        self.timings: list[dict] = []  # per received run: submitted, started, ended, received
        self.replan: Callable[[], None] | None = None  # submits the runs that have become known
        self.notify: Callable[[str], None] = log.warning  # a line for the session's progress output

    @classmethod
    def connect(cls, address: str | None, data_dir: Path, threads: int, gpus: str | None) -> "RayBackend":
        """Join the cluster at `address` (None: start a Ray instance on this machine) and check that it
        can run the session's runs: a CPU run needs a node with `threads` CPUs."""
        ray = import_ray()
        if address is not None:
            probe(address)
        try:
            # "local": a new instance even where this machine already runs (or ran) a cluster
            ray.init(address=address or "local", include_dashboard=False if address is None else None,
                     log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # ConnectionError, or Ray's own errors for a bad address
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise UsageError(f"--backend ray: cannot start or join {where}: {str(exc).splitlines()[0]}") from None
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        gpus_total = int(sum(n.get("GPU", 0) for n in nodes))
        cuda = gpus != "cpu" and gpus_total > 0
        largest = max((int(n.get("CPU", 0)) for n in nodes), default=0)
        if not cuda and threads > largest:
            ray.shutdown()
            raise UsageError(f"--cpu-threads {threads}: the Ray cluster's largest node has {largest} CPU(s), "
                             f"so no run could start there; pass --cpu-threads {max(1, largest)} or less")
        slots = gpus_total if cuda else sum(int(n.get("CPU", 0)) // threads for n in nodes)
        log.info("Ray cluster: %d node(s), %d run(s) at once on %s", len(nodes), slots, "GPUs" if cuda else "CPUs")
        return cls(ray, data_dir, threads, cuda, slots)

    @property
    def device(self) -> str:
        """The device a run sees on its node."""
        return "cuda:0" if self.cuda else "cpu"

    # ------------------------------------------------------------ submitting
    def submit(self, cfg: RunConfig) -> bool:
        """Queue `cfg` on the cluster, unless it is queued or received already: whether it was queued."""
        key = cfg.key()
        if key in self.pending or key in self.finished:
            return False
        self.pending[key] = Task(cfg, self._remote(cfg), time.time())
        return True

    def _remote(self, cfg: RunConfig):
        """Start `cfg`'s task. Ray does not retry it: a lost worker or node is retried here, where it
        can be said (Ray's own retries are silent)."""
        options = {"num_gpus": 1, "num_cpus": 1} if cfg.device_type == "cuda" else {"num_cpus": self.threads}
        return self.remote.options(**options, max_retries=0, name=cfg.label()).remote(
            cfg.to_dict(), str(self.data_dir), self.threads)

    def _retry(self, key: str, task: Task, exc: Exception) -> bool:
        """Resubmit a task whose worker or node was lost, saying so, while retries are left."""
        if type(exc).__name__ not in LOST or task.attempt >= RETRIES:
            return False
        what = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        self.notify(f"normclaims: lost the Ray worker training {task.cfg.label()} ({what}); "
                    f"retry {task.attempt + 1} of {RETRIES}")
        self.pending[key] = dataclasses.replace(task, ref=self._remote(task.cfg), attempt=task.attempt + 1,
                                                outcome=None)
        return True

    # ------------------------------------------------------------ waiting and storing
    def get_or_train(self, store, cfg: RunConfig, precheck=None, on_wait=None) -> RunRecord:
        """The store's record of `cfg`, trained on the cluster if it is missing: RunStore.get_or_run
        with "wait for this run's task" as its training. The row names the node that trained it."""
        record = store.get_or_run(cfg, lambda c: self._train(store, c), on_wait=on_wait, precheck=precheck)
        return dataclasses.replace(record, cached=False) if record.key in self.trained else record

    def _train(self, store, cfg: RunConfig) -> TrainedElsewhere:
        key = cfg.key()
        self.submit(cfg)
        with kept_interrupts() as check:  # a Ctrl-C that ray.wait consumed still ends the wait
            while key not in self.finished:
                check()
                self._collect(store, keep=key, timeout=WAIT_S)
        outcome = self.finished[key].outcome
        if isinstance(outcome, Exception):
            raise outcome  # an error in the harness on the node, or retries spent: nothing is stored
        if "unavailable" not in outcome:  # kept: another item asking for it is skipped the same way
            del self.finished[key]
            self.trained.add(key)
        return result_of(outcome)

    def _collect(self, store, keep: str | None, timeout: float, replan: bool = True) -> None:
        """Receive the outcomes of the tasks that finish within `timeout` and store each run but `keep`
        (the one a caller waits for: its own get_or_run stores it)."""
        ray = self.ray
        keys = {task.ref: key for key, task in self.pending.items()}
        ready, _ = ray.wait(list(keys), num_returns=1, timeout=timeout) if keys else ([], [])
        if ready:  # and every other one ready by now
            ready, _ = ray.wait(list(keys), num_returns=len(keys), timeout=0)
        received = []
        for ref in ready:
            task = self.pending.pop(keys[ref])
            try:
                task.outcome = ray.get(ref)
            except Exception as exc:  # the task raised, was lost with its worker or node, or was cancelled
                if self._retry(keys[ref], task, exc):
                    continue
                task.outcome = exc
            self.finished[keys[ref]] = task
            received.append(ref)
            if isinstance(task.outcome, Exception):
                continue
            self.timings.append({"submitted": task.submitted, "started": task.outcome["started"],
                                 "ended": task.outcome["ended"], "received": time.time()})
            log.info("finished %s on %s", task.cfg.label(), task.outcome["worker"])
        stored = [self._store(store, keys[ref]) for ref in received if keys[ref] != keep]
        if any(stored) and replan and self.replan is not None and len(self.pending) < self.slots:
            self.replan()

    def _store(self, store, key: str) -> bool:
        """Store a received run now, so that nothing finished is lost. A run the node could not have
        (Unavailable) or whose task raised stays received: the item asking for it is skipped or fails."""
        try:
            self.get_or_train(store, self.finished[key].cfg)
        except Exception:
            return False
        self.finished.pop(key, None)  # also when another session stored it first
        return True

    # ------------------------------------------------------------ the end
    def close(self, store) -> None:
        """End of the session, also after Ctrl-C: store the runs that have finished, cancel the
        others (queued or training) and leave the cluster."""
        try:
            if store is not None:
                if self.pending:
                    self._collect(store, keep=None, timeout=0, replan=False)
                for key in list(self.finished):  # also one received while its caller was interrupted
                    self._store(store, key)
        finally:
            if self.pending:
                log.warning("cancelling %d run(s) still queued or training on the Ray cluster", len(self.pending))
            for task in self.pending.values():
                self.ray.cancel(task.ref, force=True)
            self.pending.clear()
            self.ray.shutdown()
