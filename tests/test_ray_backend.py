"""--backend ray end to end: pytester sessions on a two-node Ray cluster on this machine
(ray.cluster_utils.Cluster, one CPU per node), checked against local sessions of the same claim."""
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import harness_on_path, latest_report
from test_plugin import DEPENDENT_CLAIM, TINY_CLAIM  # the same claims as the local plugin tests

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e .[ray])")

SESSION_S = 120  # a stuck session fails the test instead of hanging the suite


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on this machine: a run on each at a time."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    yield c
    c.shutdown()


def node_tag(node) -> str:
    return f"ray:{node.node_id[:8]}"  # what a run's record names as its worker


@pytest.fixture
def project(pytester, tmp_path_factory, monkeypatch):
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM)
    data = tmp_path_factory.mktemp("data")
    harness_on_path(monkeypatch)
    base = ["-p", "no:cacheprovider", "--profile=smoke", "--gpus=cpu", f"--data-dir={data}"]

    def run(*args):
        return pytester.runpytest_subprocess(*base, *args, timeout=SESSION_S)

    def start(*args) -> subprocess.Popen:
        """A session in the background, for what happens to it halfway."""
        return subprocess.Popen([sys.executable, "-m", "pytest", *base, *args], cwd=pytester.path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    run.start = start
    return run


def summary(pytester) -> dict:
    return json.loads((latest_report(pytester.path / "reports") / "summary.json").read_text())


def rows(store: Path) -> list[tuple]:
    """(worker, status) of each stored run; none while the store does not exist yet."""
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT worker, status FROM runs").fetchall()
        except sqlite3.OperationalError:  # its tables are being made
            return []


def training_on(node) -> bool:
    """Whether a run is training on `node` now: a worker process of its raylet carries the run's
    name (Ray titles a task's process with it) while the task executes."""
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == raylet and (stat.parent / "cmdline").read_bytes().startswith(b"ray::lenet/"):
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False


def finish(session: subprocess.Popen) -> str:
    """The background session's output once it exits; one that hangs is killed and fails the test."""
    try:
        return session.communicate(timeout=SESSION_S)[0]
    except subprocess.TimeoutExpired:
        session.kill()
        pytest.fail(f"the session did not exit within {SESSION_S} s:\n{session.communicate()[0][-3000:]}")


def wait_until(condition, what: str, timeout: float = SESSION_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def decided(report: dict) -> list[dict]:
    """Each cell as the report decides it, without its runs' provenance (node, timing)."""
    return [{k: v for k, v in cell.items() if k != "runs"} for claim in report["claims"] for cell in claim["cells"]]


COUNT_ENUMERATIONS = """
import harness.plugin

real = harness.plugin.requests_ahead


def counted(item, seeds):
    with open("enumerated.txt", "a") as log:
        log.write(item.name + "\\n")
    return real(item, seeds)


harness.plugin.requests_ahead = counted
"""


def test_runs_spread_over_both_nodes_with_a_local_sessions_verdicts(project, pytester, cluster):
    """The first two runs start at once and each node has one CPU, so both nodes train; at one
    thread per run the CPU numbers, and so the whole report's verdicts, are a local session's."""
    project("--seeds", "3", "--store", "local.sqlite", "--cpu-threads", "1").assert_outcomes(passed=3)
    local = summary(pytester)
    pytester.makeconftest(COUNT_ENUMERATIONS)
    result = project("--seeds", "3", "--store", "ray.sqlite", "--cpu-threads", "1",
                     "--backend", "ray", "--ray-address", cluster.address)
    result.assert_outcomes(passed=3)
    enumerated = (pytester.path / "enumerated.txt").read_text().split()
    assert sorted(enumerated) == sorted(set(enumerated)) and len(enumerated) == 3  # for progress and Ray at once
    result.stdout.fnmatch_lines(["normclaims: --backend ray on *: 2 run(s) at once on CPUs, 1 thread(s) each*"])
    on_ray = summary(pytester)
    assert decided(on_ray) == decided(local) and decided(local)[0]["a"]
    assert on_ray["claims"][0]["cost"]["trained"] == 6
    runs = on_ray["claims"][0]["cells"][0]["runs"]
    assert {r["worker"] for r in runs} == {node_tag(n) for n in cluster.list_all_nodes()}
    assert {r["result"]["meta"]["threads"] for r in runs} == {1}
    assert {w for w, _ in rows(pytester.path / "ray.sqlite")} == {r["worker"] for r in runs}  # the store keeps the node


def test_a_run_chosen_from_others_is_submitted_once_they_finish(project, pytester, cluster):
    """The first seed asks for its chosen run itself; by then the other seeds' inputs are being
    stored, and their chosen runs are submitted before their items ask (the queue ran short)."""
    pytester.makepyfile(test_pick=DEPENDENT_CLAIM)
    project("--seeds", "3", "-k", "pick", "--store", "local.sqlite", "--cpu-threads", "1").assert_outcomes(passed=3)
    local = summary(pytester)
    result = project("--seeds", "3", "-k", "pick", "--store", "ray.sqlite", "--backend", "ray",
                     "--ray-address", cluster.address, "-o", "log_cli=true", "--log-cli-level=INFO")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*submitted 9 run(s) to Ray in * 3 item(s) ask for runs that depend on others",
                                 "*submitted * run(s) to Ray whose inputs have finished"])
    assert decided(summary(pytester)) == decided(local) and len(rows(pytester.path / "ray.sqlite")) == 12


def test_a_node_killed_mid_run_has_its_run_retried_elsewhere(project, pytester, cluster):
    """A third node is killed while it trains a run: without Ray's retries that run's item fails."""
    doomed = cluster.add_node(num_cpus=1)
    session = project.start("--seeds", "5", "--store", "kill.sqlite", "--backend", "ray", "--ray-address", cluster.address)
    try:
        wait_until(lambda: training_on(doomed) or session.poll() is not None, "a run on the third node")
        assert session.poll() is None, session.communicate()[0][-3000:]
        cluster.remove_node(doomed, allow_graceful=False)  # with the run it was training
        out = finish(session)
    finally:
        session.kill()
    assert session.returncode == 0, out[-3000:]
    stored = rows(pytester.path / "kill.sqlite")
    assert len(stored) == 10 and {s for _, s in stored} == {"ok"}
    assert summary(pytester)["claims"][0]["cost"]["trained"] == 10
    assert "normclaims: lost the Ray worker training" in out and "retry 1 of 3" in out, out[-3000:]  # said, once


def test_ctrl_c_stores_what_finished_and_a_restart_trains_the_rest(project, pytester, cluster):
    """Runs of 10 epochs (about a second each) keep the session going after its first two are
    stored: at the smoke profile's one epoch, all 12 may be stored before the signal arrives."""
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM.replace("batch_size=32)", "batch_size=32, epochs=10)"))
    store = pytester.path / "interrupted.sqlite"
    args = ("--seeds", "6", "--store", store.name, "--backend", "ray", "--ray-address", cluster.address)
    session = project.start(*args)
    try:
        wait_until(lambda: len(rows(store)) >= 2 or session.poll() is not None, "two stored runs")
        assert session.poll() is None, session.communicate()[0][-3000:]
        session.send_signal(signal.SIGINT)
        out = finish(session)
    finally:
        session.kill()
    assert session.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    stored = rows(store)
    assert 2 <= len(stored) < 12 and {s for _, s in stored} == {"ok"}
    with sqlite3.connect(store) as db:
        keys = [key for (key,) in db.execute("SELECT key FROM runs")]
    from harness.store import RunStore

    assert all(RunStore(store).lookup(key).ok for key in keys)  # every row whole: config and result read back
    nodes = cluster.list_all_nodes()
    wait_until(lambda: not any(training_on(n) for n in nodes), "the cancelled runs to stop", timeout=30)
    project(*args).assert_outcomes(passed=6)
    cost = summary(pytester)["claims"][0]["cost"]
    assert (cost["trained"], cost["cached"]) == (12 - len(stored), len(stored))


def test_plan_with_the_ray_backend_starts_no_ray(project, pytester):
    result = project("--seeds", "2", "--plan", "--backend", "ray")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*normclaims plan*"])
    result.stdout.no_fnmatch_line("normclaims: --backend ray on*")


@pytest.mark.parametrize("args, message", [
    (["--backend", "spark"], "--backend 'spark': expected 'local' or 'ray'"),
    (["--ray-address", "auto"], "--ray-address needs --backend ray"),
    (["--backend", "ray", "--ray-address", "head-node"], "expected 'auto' or HOST:PORT"),
    (["--backend", "ray", "-n", "2"], "--backend ray with -n"),
    (["--backend", "ray", "--gpus", "0"], "--gpus 0 with --backend ray"),
    (["--backend", "ray", "--ray-data-dir", "data"], "--ray-data-dir data: expected an absolute path"),
    (["--backend", "ray", "--ray-address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1 ("),  # as given
])
def test_bad_backend_options_are_one_line_usage_errors(project, pytester, args, message):
    result = project(*args)
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.stderr.lines[-5:]
    assert not (pytester.path / "reports").exists() and not (pytester.path / ".normclaims").exists()


def test_more_threads_than_any_node_has_cpus_is_a_usage_error(project, cluster):
    result = project("--backend", "ray", "--ray-address", cluster.address, "--cpu-threads", "2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --cpu-threads 2: the Ray cluster's largest node has 1 CPU(s)*"])


def test_without_ray_installed_the_error_says_how_to_install_it(project, pytester):
    pytester.makeconftest("import sys\nsys.modules['ray'] = None  # as if it were not installed\n")
    result = project("--backend", "ray")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert errors == ["ERROR: --backend ray needs Ray, which is not installed: pip install -e .[ray] "
                      "(or pip install 'ray>=2.9')"]


def test_auto_without_a_cluster_is_the_harness_s_own_line(monkeypatch):
    """Ray 2.60's lookup raises ConnectionError with advice about its CLI flags; the user passed
    --ray-address auto. (Stood in for: on this machine other tests' clusters may be running.)"""
    import ray._private.services as services

    from harness.errors import UsageError
    from harness.ray_backend import probe

    def no_cluster(address):
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                              "setting `--address` flag or `RAY_ADDRESS` environment variable.")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address", no_cluster)
    with pytest.raises(UsageError, match=r"^--ray-address auto: no Ray cluster runs on this machine \(start one"):
        probe("auto")
    monkeypatch.setattr(services, "canonicalize_bootstrap_address", lambda address: None)  # older Rays
    with pytest.raises(UsageError, match="--ray-address auto: no Ray cluster runs on this machine"):
        probe("auto")


SHARED_CLAIMS = TINY_CLAIM + '''

@pytest.mark.claim("tiny_again", title="the same runs, another claim", source="test fixture",
                   cells=(("lenet", "folder:{folder}"),), alpha=0.05, min_seeds=2)
def test_tiny_again(finetune, evidence, model, dataset, seed):
    a = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, batch_size=32)
    b = finetune(model=model, dataset=dataset, norm="none", seed=seed, batch_size=32)
    evidence.greater(a, b)
'''


def test_runs_shared_by_two_claims_count_alike_on_ray_and_locally(project, pytester, cluster):
    from conftest import FASHION_TINY

    pytester.makepyfile(test_tiny_claim=SHARED_CLAIMS.replace("{folder}", str(FASHION_TINY)))
    project("--seeds", "2", "--store", "local.sqlite", "--cpu-threads", "1").assert_outcomes(passed=4)
    local = summary(pytester)
    project("--seeds", "2", "--store", "ray.sqlite", "--backend", "ray",
            "--ray-address", cluster.address).assert_outcomes(passed=4)
    on_ray = summary(pytester)
    costs = lambda report: [(c["name"], c["cost"]["runs"], c["cost"]["trained"], c["cost"]["cached"])  # noqa: E731
                            for c in report["claims"]]
    assert costs(on_ray) == costs(local) == [("tiny", 4, 4, 0), ("tiny_again", 4, 4, 0)]
    assert on_ray["header"]["compute"].startswith("4 runs, 4 trained this session, 0 from earlier sessions")
    assert local["header"]["compute"].startswith("4 runs, 4 trained this session")
