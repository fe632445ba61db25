import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from harness.config import PROFILES, RunConfig, RunResult
from harness.errors import RunFailed, Unavailable, UsageError
from harness.protocol import make_config, numerics_for
from harness.store import RunStore, TrainedElsewhere, use_wal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cfg(seed=0, norm="dataset"):
    return make_config(model="lenet", dataset="mnist", norm=norm, seed=seed, profile=PROFILES["smoke"], numerics=numerics_for("cpu"))


def result(acc=0.5):
    return RunResult(acc, [{"epoch": 1, "train_loss": 1.0, "test_accuracy": acc}], 4, 256, 0.1, 1000.0, "cpu", [0.1], [0.3])


def test_trains_once_then_reads(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    calls = []
    first = store.get_or_run(cfg(), lambda c: calls.append(c) or result(0.7))
    second = store.get_or_run(cfg(), lambda c: calls.append(c) or result(0.1))
    assert len(calls) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.result == first.result and second.result.accuracy == 0.7
    assert second.config == cfg()


def test_failed_run_is_stored_with_its_reason(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")

    def diverge(c):
        raise RunFailed("non-finite training loss at epoch 1")

    rec = store.get_or_run(cfg(), diverge)
    assert (rec.status, rec.result, rec.reason) == ("failed", None, "non-finite training loss at epoch 1")
    assert store.lookup(cfg().key()).status == "failed"


def test_a_run_trained_elsewhere_is_stored_under_the_node_that_trained_it(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite", worker="main")
    ok = store.get_or_run(cfg(0), lambda c: TrainedElsewhere(result(0.6), "node-b", "ray:1a2b3c4d"))
    failed = store.get_or_run(cfg(1), lambda c: TrainedElsewhere(None, "node-c", "ray:5e6f", failure="non-finite loss"))
    here = store.get_or_run(cfg(2), lambda c: result(0.4))
    assert (ok.status, ok.result.accuracy, ok.host, ok.worker) == ("ok", 0.6, "node-b", "ray:1a2b3c4d")
    assert (failed.status, failed.result, failed.reason, failed.host) == ("failed", None, "non-finite loss", "node-c")
    assert (here.host, here.worker) == (store.host, "main")  # the store's own provenance is untouched
    rows = [store.lookup(cfg(s).key()) for s in range(3)]
    assert [(r.host, r.worker) for r in rows] == [("node-b", "ray:1a2b3c4d"), ("node-c", "ray:5e6f"), (store.host, "main")]


@pytest.mark.parametrize("error", [Unavailable("no data"), KeyboardInterrupt()])
def test_interrupted_or_unavailable_run_leaves_nothing(tmp_path, error):
    store = RunStore(tmp_path / "runs.sqlite")

    def boom(c):
        raise error

    with pytest.raises(type(error)):
        store.get_or_run(cfg(), boom)
    assert store.lookup(cfg().key()) is None
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0


def test_precheck_runs_only_on_a_miss_and_before_any_lease(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    calls = []

    def no_data(c):
        calls.append(c.seed)
        db = sqlite3.connect(tmp_path / "runs.sqlite")
        assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0  # nothing taken yet
        raise Unavailable("no data")

    def never(c):
        raise AssertionError("trained despite a failed precheck")

    with pytest.raises(Unavailable):
        store.get_or_run(cfg(seed=1), never, precheck=no_data)
    assert calls == [1] and store.lookup(cfg(seed=1).key()) is None
    store.get_or_run(cfg(seed=2), lambda c: result(0.5))
    assert store.get_or_run(cfg(seed=2), never, precheck=no_data).cached and calls == [1]  # a hit skips it


def test_rerun_ignores_older_rows_but_keeps_this_sessions(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).get_or_run(cfg(), lambda c: result(0.1))
    time.sleep(0.01)
    rerun = RunStore(path, fresh_after=time.time())
    rec = rerun.get_or_run(cfg(), lambda c: result(0.9))
    assert not rec.cached and rec.result.accuracy == 0.9
    again = rerun.get_or_run(cfg(), lambda c: result(0.3))
    assert again.cached and again.result.accuracy == 0.9  # trained once per session, even with --rerun


def test_corrupt_store_is_a_usage_error_and_is_left_alone(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UsageError, match="not a readable SQLite database"):
        RunStore(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_store_is_created_on_first_use_in_wal_mode(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    assert not (tmp_path / "runs.sqlite").exists()
    store.get_or_run(cfg(), lambda c: result())
    mode = sqlite3.connect(tmp_path / "runs.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_dead_workers_lease_is_taken_over(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    assert store.lookup(cfg().key()) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?)", (cfg().key(), store.host, dead.pid, "gw9", time.time()))
    db.commit()
    rec = store.get_or_run(cfg(), lambda c: result(0.6))
    assert not rec.cached and rec.result.accuracy == 0.6


WORKER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from harness.store import RunStore, TrainedElsewhere
    from harness.config import PROFILES, RunConfig, RunResult
    from harness.protocol import make_config, numerics_for
    log, worker = sys.argv[1], sys.argv[2]
    store = RunStore({path!r}, worker=worker)
    def train(c):
        with open(log, "a") as f:
            f.write(c.key() + "\\n")
        time.sleep(0.3)
        return RunResult(c.seed / 10, [], 1, 1, 0.3, 1.0, "cpu", None, None)
    for seed in range(4):
        c = make_config(model="lenet", dataset="mnist", norm="dataset", seed=seed,
                        profile=PROFILES["smoke"], numerics=numerics_for("cpu"))
        assert store.get_or_run(c, train).result.accuracy == seed / 10
""")


def test_concurrent_workers_train_each_run_once(tmp_path):
    path, log = str(tmp_path / "runs.sqlite"), str(tmp_path / "trained.log")
    script = WORKER.format(root=ROOT, path=path)
    procs = [subprocess.Popen([sys.executable, "-c", script, log, f"gw{i}"]) for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    trained = open(log).read().split()
    assert len(trained) == 4 and len(set(trained)) == 4  # 4 runs, each trained by exactly one worker
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
    assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
    rows = [json.loads(r[0]) for r in db.execute("SELECT result FROM runs")]
    assert sorted(r["accuracy"] for r in rows) == [0.0, 0.1, 0.2, 0.3]


def test_another_programs_database_is_refused_untouched(tmp_path):
    import sqlite3

    path = tmp_path / "theirs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (x INTEGER)")
    before = path.read_bytes()
    with pytest.raises(UsageError, match=r"not a normclaims run store \(tables: runs\)"):
        RunStore(path)
    assert path.read_bytes() == before


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.touch()
    store = RunStore(path)
    assert store.get_or_run(cfg(), lambda c: result()).status == "ok"
    assert RunStore(path).lookup(store.get_or_run(cfg(), lambda c: result()).key).cached


def hold_lease(path, key: str) -> None:
    """Another live worker's lease on `key` (this process: alive, on this host, fresh heartbeat)."""
    db = sqlite3.connect(path)
    db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?)", (key, RunStore(path).host, os.getpid(), "gw9", time.time()))
    db.commit()


def test_a_run_leased_elsewhere_is_not_waited_for_when_asked_not_to(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    assert store.lookup(cfg().key()) is None  # creates the store
    hold_lease(path, cfg().key())
    assert store.get_or_run(cfg(), lambda c: pytest.fail("trained a run leased elsewhere"), wait=False) is None
    assert store.get_or_run(cfg(1), lambda c: result(0.4), wait=False).result.accuracy == 0.4  # a free one trains


def test_while_waiting_another_run_trains_and_the_wait_goes_on(tmp_path):
    """While another worker holds the run's lease, the waiting call lends its time (`while_waiting`),
    polling again at once after it trained something, and takes the run once the lease is gone."""
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    store.lookup(cfg().key())
    hold_lease(path, cfg().key())
    calls = []

    def helper() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:  # trains another run: the next poll comes at once
            return store.get_or_run(cfg(1), lambda c: result(0.3), wait=False) is not None
        sqlite3.connect(path).execute("DELETE FROM leases").connection.commit()  # the other worker gave up
        return False

    rec = store.get_or_run(cfg(), lambda c: result(0.8), while_waiting=helper)
    assert rec.result.accuracy == 0.8 and not rec.cached and store.lookup(cfg(1).key()).result.accuracy == 0.3
    assert len(calls) == 2 and calls[1] - calls[0] < 0.4  # no sleep after the call that trained


class LockedAtFirst:
    """A connection on which switching the journal mode meets another worker's lock `times` times,
    answered at once as SQLite does when two workers switch a new store together."""

    def __init__(self, db, times, error="database is locked"):
        self.db, self.times, self.error, self.switches = db, times, error, 0

    def execute(self, sql):
        if sql == "PRAGMA journal_mode=WAL":
            self.switches += 1
            if self.switches <= self.times:
                raise sqlite3.OperationalError(self.error)
        return self.db.execute(sql)


def test_switching_a_new_store_to_wal_outlasts_another_workers_lock(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.sqlite", isolation_level=None)
    racing = LockedAtFirst(db, times=2)
    use_wal(racing)
    assert racing.switches == 3 and db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    use_wal(racing)  # already WAL: asked, not switched again
    assert racing.switches == 3


def test_a_lock_that_outlasts_the_wait_or_another_error_is_raised(tmp_path):
    db = sqlite3.connect(tmp_path / "runs.sqlite", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(LockedAtFirst(db, times=10**6), wait_s=0.3)
    other = LockedAtFirst(db, times=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        use_wal(other)
    assert other.switches == 1
