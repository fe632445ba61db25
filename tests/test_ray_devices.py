"""--backend ray on a cluster with GPUs, with a stand-in for Ray (this machine has no GPU): what the
session asks the cluster for and which device a run sees on its node. The real cluster is tested in
test_ray_backend.py."""
import sys
from types import SimpleNamespace

import pytest

import harness.ray_backend as ray_backend
from harness.config import PROFILES, RunResult
from harness.protocol import make_config, numerics_for
from harness.ray_backend import RETRIES, RayBackend, train_task


def cfg(device_type: str, seed: int = 0):
    return make_config(model="lenet", dataset="mnist", norm="dataset", seed=seed, profile=PROFILES["smoke"],
                       numerics=numerics_for(device_type))


class FakeRemote:
    """ray.remote(train_task): records the options of each submission."""

    def __init__(self):
        self.submitted: list[dict] = []

    def options(self, **options):
        self.submitted.append(options)
        return self

    def remote(self, *args):
        return Ref(args)


class Ref:
    """A task's object ref: hashable, as Ray's are."""

    def __init__(self, args):
        self.args = args


class FakeRay:
    """The parts of the ray module RayBackend.connect and submit use, over a list of nodes."""

    def __init__(self, nodes: list[dict]):
        self._nodes = [{"Alive": True, "Resources": n} for n in nodes]
        self.remote_fn = FakeRemote()
        self.shut = False

    def init(self, **options):
        self.init_options = options

    def nodes(self):
        return self._nodes

    def remote(self, fn):
        assert fn is train_task
        return self.remote_fn

    def shutdown(self):
        self.shut = True


def connect(monkeypatch, tmp_path, nodes, gpus=None, threads=1) -> tuple[RayBackend, FakeRay]:
    fake = FakeRay(nodes)
    monkeypatch.setattr(ray_backend, "import_ray", lambda: fake)
    return RayBackend.connect(None, tmp_path, threads=threads, gpus=gpus), fake


GPU_NODES = [{"CPU": 16, "GPU": 2}, {"CPU": 16, "GPU": 2}, {"CPU": 8}]  # two GPU nodes and a CPU-only one


def test_a_cluster_with_gpus_trains_one_run_per_gpu(monkeypatch, tmp_path):
    backend, _ = connect(monkeypatch, tmp_path, GPU_NODES)
    assert (backend.cuda, backend.slots, backend.device) == (True, 4, "cuda:0")


def test_gpus_cpu_keeps_a_gpu_cluster_on_its_cpus(monkeypatch, tmp_path):
    backend, _ = connect(monkeypatch, tmp_path, GPU_NODES, gpus="cpu", threads=4)
    assert (backend.cuda, backend.slots, backend.device) == (False, 4 + 4 + 2, "cpu")


def test_a_gpu_run_asks_for_one_gpu_and_a_cpu_run_for_its_threads(monkeypatch, tmp_path):
    backend, fake = connect(monkeypatch, tmp_path, GPU_NODES, threads=3)
    assert backend.submit(cfg("cuda")) and backend.submit(cfg("cpu"))
    assert not backend.submit(cfg("cuda"))  # already queued: not submitted twice
    gpu, cpu = fake.remote_fn.submitted
    assert (gpu["num_gpus"], gpu["num_cpus"], gpu["max_retries"]) == (1, 1, 0)  # retried by the backend, aloud
    assert "num_gpus" not in cpu and cpu["num_cpus"] == 3


def test_a_cpu_only_cluster_refuses_more_threads_than_its_largest_node(monkeypatch, tmp_path):
    from harness.errors import UsageError

    with pytest.raises(UsageError, match="largest node has 8 CPU"):
        connect(monkeypatch, tmp_path, [{"CPU": 8}], threads=9)


@pytest.mark.parametrize("device_type, device", [("cuda", "cuda:0"), ("cpu", "cpu")])
def test_on_its_node_a_run_trains_on_the_device_ray_gave_it(monkeypatch, tmp_path, device_type, device):
    import harness.train

    node = SimpleNamespace(get_node_id=lambda: "0123456789abcdef")
    monkeypatch.setitem(sys.modules, "ray", SimpleNamespace(get_runtime_context=lambda: node))
    seen = {}

    def finetune(c, dev, data_dir, threads):
        seen.update(device=dev, threads=threads, data_dir=data_dir, key=c.key())
        return RunResult(0.5, [{"epoch": 1, "train_loss": 1.0, "test_accuracy": 0.5}], 4, 256, 2.0, 128.0, dev,
                         [0.1], [0.3])

    monkeypatch.setattr(harness.train, "finetune", finetune)
    c = cfg(device_type)
    outcome = train_task(c.to_dict(), str(tmp_path), 2)
    assert seen == {"device": device, "threads": 2, "data_dir": tmp_path, "key": c.key()}
    assert outcome["worker"] == "ray:01234567" and outcome["result"]["accuracy"] == 0.5


class WorkerCrashedError(Exception):
    """Stands in for ray.exceptions.WorkerCrashedError (matched by name, as the backend does)."""


def test_a_lost_worker_is_retried_with_a_line_saying_so(monkeypatch, tmp_path):
    backend, fake = connect(monkeypatch, tmp_path, [{"CPU": 2}])
    lines = []
    backend.notify = lines.append
    outcomes = iter([WorkerCrashedError("the worker died unexpectedly")] * (RETRIES + 1))

    def get(ref):
        raise next(outcomes)

    fake.wait = lambda refs, num_returns, timeout: (list(refs), [])
    fake.get = get
    c = cfg("cpu")
    backend.submit(c)
    for attempt in range(1, RETRIES + 1):
        backend._collect(None, keep=c.key(), timeout=0)
        assert c.key() in backend.pending and len(fake.remote_fn.submitted) == attempt + 1  # resubmitted
        assert lines[-1].endswith(f"retry {attempt} of {RETRIES}") and c.label() in lines[-1]
        assert "the worker died unexpectedly" in lines[-1]
    backend._collect(None, keep=c.key(), timeout=0)
    assert isinstance(backend.finished[c.key()].outcome, WorkerCrashedError)  # retries spent: the item fails
    assert len(lines) == RETRIES


def test_an_error_in_the_run_itself_is_not_retried(monkeypatch, tmp_path):
    backend, fake = connect(monkeypatch, tmp_path, [{"CPU": 2}])
    backend.notify = pytest.fail
    fake.wait = lambda refs, num_returns, timeout: (list(refs), [])
    fake.get = lambda ref: (_ for _ in ()).throw(ValueError("a bug on the node"))
    c = cfg("cpu")
    backend.submit(c)
    backend._collect(None, keep=c.key(), timeout=0)
    assert isinstance(backend.finished[c.key()].outcome, ValueError) and len(fake.remote_fn.submitted) == 1


def test_a_ctrl_c_that_ray_wait_consumed_still_ends_the_wait(monkeypatch, tmp_path, default_sigint):
    """Ray's wait polls for signals itself; a SIGINT it consumed without raising must not let the
    session wait on (it would train every run and exit 0)."""
    from factories import swallowed_sigint

    backend, fake = connect(monkeypatch, tmp_path, [{"CPU": 2}])
    waits = []

    def wait(refs, num_returns, timeout):
        waits.append(timeout)
        assert len(waits) == 1, "the session waited on after Ctrl-C"
        swallowed_sigint()
        return [], list(refs)

    fake.wait = wait
    with pytest.raises(KeyboardInterrupt):
        backend._train(None, cfg("cpu"))
    assert waits == [ray_backend.WAIT_S]
