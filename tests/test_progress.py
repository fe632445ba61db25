"""Live progress: the store's progress table, the worker's reporter, the text, the board, and
whole sessions on the controller's output, under xdist, serially, quiet and on a terminal."""
import fcntl
import os
import pty
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time

import pytest

from conftest import ROOT, harness_on_path
from test_plugin import TINY_CLAIM  # the same claim as the plugin and Ray tests
from harness.config import PROFILES, RunResult
from harness.errors import RunFailed
from harness.progress import (EpochProgress, LineOutput, LiveOutput, ProgressBoard, Tally, duration, eta_seconds,
                              finished_line, parse_progress, progress_reporter, status_lines)
from harness.protocol import make_config, numerics_for
from harness.store import FinishedRun, ProgressRow, RunStore

NOW = 1_000_000.0


def cfg(seed=0, norm="dataset"):
    return make_config(model="lenet", dataset="mnist", norm=norm, seed=seed, profile=PROFILES["smoke"],
                       numerics=numerics_for("cpu"))


def result(acc=0.5):
    return RunResult(acc, [{"epoch": 1, "train_loss": 1.0, "test_accuracy": acc}], 4, 256, 2.0, 1000.0, "cpu",
                     [0.1], [0.3])


def made_store(tmp_path, worker="gw0") -> RunStore:
    """A store that exists on disk (progress never creates one)."""
    store = RunStore(tmp_path / "runs.sqlite", worker=worker)
    store.get_or_run(cfg(seed=99), lambda c: result())
    return store


# ---------------------------------------------------------------------------- the text
def row(**fields) -> ProgressRow:
    base = dict(key="k0", label="resnet18/cifar10/dataset/seed0", worker="gw0", host="h", epoch=12, epochs=100,
                loss=0.53214, accuracy=0.8123, images_per_s=412.4, started=NOW - 363, updated=NOW - 5)
    return ProgressRow(**{**base, **fields})


def test_status_lines_show_the_counts_the_eta_and_each_run_in_training():
    tally = Tally(started=NOW - 3720, trained=3, failed=1, cached=12, total_runs=57)
    starting = row(key="k1", label="lenet/mnist/none/seed1", worker="gw1", epoch=0, epochs=30, loss=None,
                   accuracy=None, images_per_s=None, started=NOW - 4, updated=NOW - 4)
    # ETA: 3 runs and 12/100 of one done in 3720 s; 57 - 12 cached - 3.12 = 41.88 left
    assert status_lines([row(), starting], tally, NOW) == [
        "normclaims: 3 trained (1 failed), 12 cached, 2 training, 42 left of 57 | 1h02m elapsed | ETA 13h52m",
        "  gw0 resnet18/cifar10/dataset/seed0: epoch 12/100, loss 0.5321, acc 0.8123, 412 img/s, 6m03s",
        "  gw1 lenet/mnist/none/seed1: starting (30 epochs), 4s",
    ]


def test_a_run_silent_for_long_says_so():
    line = status_lines([row(updated=NOW - 125)], Tally(started=NOW - 400), NOW)[1]
    assert line.endswith(", 6m03s, last report 2m05s ago")


def test_eta_from_planned_runs_else_test_items_else_unknown():
    assert eta_seconds([], Tally(started=NOW - 100, trained=2, total_runs=6), NOW) == 200
    # a run half done counts half: 1.5 runs in 100 s, 5 - 2 cached - 1.5 = 1.5 left
    assert eta_seconds([row(epoch=50, epochs=100)], Tally(started=NOW - 100, trained=1, cached=2, total_runs=5), NOW) == 100
    assert eta_seconds([], Tally(started=NOW - 100, trained=4, cached=2, total_runs=6), NOW) == 0
    assert eta_seconds([], Tally(started=NOW - 100, items_done=4, items_total=10), NOW) == 150
    assert eta_seconds([row(epoch=0)], Tally(started=NOW - 100, total_runs=6), NOW) is None  # nothing measured
    # runs in the store before the session count as done before any is served: 10 - 4 stored - 2 = 4 left
    assert eta_seconds([], Tally(started=NOW - 100, trained=2, cached=1, total_runs=10, stored_before=4), NOW) == 200
    assert ", 4 left of 10 |" in status_lines([], Tally(started=NOW - 100, trained=2, total_runs=10, stored_before=4), NOW)[0]
    assert status_lines([], Tally(started=NOW - 100, items_total=10), NOW)[0].endswith("tests 0/10 | 1m40s elapsed | ETA unknown")


def test_finished_lines_for_a_trained_and_a_failed_run():
    tally = Tally(started=NOW - 100, trained=1, items_done=1, items_total=4)
    ok = FinishedRun("k", "lenet/mnist/dataset/seed0", "ok", None, 0.9876, 65.2, 1234.4, 2, NOW, "gw1")
    assert finished_line(ok, [], tally, NOW) == (
        "normclaims: trained lenet/mnist/dataset/seed0 on gw1 in 1m05s: 2 epochs, acc 0.9876, 1234 img/s "
        "| 1 trained, 0 cached, 0 training, tests 1/4 | 1m40s elapsed | ETA 5m00s")
    failed = FinishedRun("k", "lenet/mnist/dataset/seed0", "failed", "non-finite training loss at epoch 1", None,
                         None, None, 0, NOW, "gw1")
    assert finished_line(failed, [], tally, NOW).startswith(
        "normclaims: failed lenet/mnist/dataset/seed0 on gw1: non-finite training loss at epoch 1 | 1 trained")


def test_durations():
    assert [duration(s) for s in (0, 59.4, 60, 3599, 3600, 49 * 3600, -3)] == [
        "0s", "59s", "1m00s", "59m59s", "1h00m", "2d01h", "0s"]


def test_epoch_events_read_as_the_log_line_and_back():
    event = EpochProgress("lenet/mnist/dataset/seed0", 2, 4, 0.53, 0.81, "test", None)
    assert str(event) == "lenet/mnist/dataset/seed0: epoch 2/4, loss 0.5300, test acc 0.8100"  # the line as it was
    assert parse_progress(str(event)) == event
    fast = EpochProgress("lenet/folder:/a, b/none/seed1", 3, 4, 1.25, None, "val", 412.0)
    assert str(fast) == "lenet/folder:/a, b/none/seed1: epoch 3/4, loss 1.2500, 412 img/s"
    assert parse_progress(str(fast)) == EpochProgress("lenet/folder:/a, b/none/seed1", 3, 4, 1.25, None, "test", 412.0)
    assert parse_progress("training lenet/mnist/dataset/seed0 on cpu") is None


# ---------------------------------------------------------------------------- the store's table
def test_progress_is_recorded_replaced_and_cleared(tmp_path):
    store = made_store(tmp_path)
    c = cfg()
    assert store.report_progress(c, epoch=0, started=NOW)
    assert store.report_progress(c, epoch=1, loss=0.7, accuracy=0.6, images_per_s=321.0, started=NOW)
    [got] = store.read_progress()
    assert got == ProgressRow(c.key(), c.label(), "gw0", store.host, 1, c.epochs, 0.7, 0.6, 321.0, NOW, got.updated)
    assert time.time() - got.updated < 60
    assert store.clear_progress(c.key())
    assert store.read_progress() == []


def test_progress_never_creates_a_store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    assert not store.report_progress(cfg(), epoch=1)
    assert store.read_progress() == [] and store.read_finished(0) == []
    assert not (tmp_path / "runs.sqlite").exists()


REPORTER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from harness.store import RunStore
    from harness.config import PROFILES
    from harness.protocol import make_config, numerics_for
    worker, seed = sys.argv[1], int(sys.argv[2])
    store = RunStore({path!r}, worker=worker)
    c = make_config(model="lenet", dataset="mnist", norm="dataset", seed=seed, profile=PROFILES["smoke"],
                    numerics=numerics_for("cpu"))
    assert store.report_progress(c, epoch=seed, epochs=10, loss=1.0 / seed)
    print("reported", flush=True)
    sys.stdin.readline()
    assert store.clear_progress(c.key())
""")


def test_two_processes_report_and_the_reader_sees_both(tmp_path):
    store = made_store(tmp_path, worker="main")
    script = REPORTER.format(root=str(ROOT), path=str(store.path))
    procs = [subprocess.Popen([sys.executable, "-c", script, f"gw{i}", str(i + 1)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for i in range(2)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["reported", "reported"]
        rows = sorted(store.read_progress(), key=lambda r: r.worker)
        assert [(r.worker, r.epoch, r.epochs, r.loss) for r in rows] == [("gw0", 1, 10, 1.0), ("gw1", 2, 10, 0.5)]
    finally:
        for p in procs:
            p.communicate("\n", timeout=60)
    assert [p.returncode for p in procs] == [0, 0]
    assert store.read_progress() == []


def test_rows_of_saved_runs_and_dead_workers_are_left_out(tmp_path):
    store = made_store(tmp_path)
    saved, dead, slow = cfg(seed=1), cfg(seed=2), cfg(seed=3)
    for c in (saved, dead, slow):
        store.report_progress(c, epoch=1)
    store.get_or_run(saved, lambda c: result())  # saved without clearing its row: no longer in training
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    db = sqlite3.connect(store.path)
    db.execute("UPDATE progress SET pid = ? WHERE key = ?", (gone.pid, dead.key()))
    # a long epoch: no report for 20 minutes, but its lease has a fresh heartbeat
    db.execute("UPDATE progress SET updated = ? WHERE key = ?", (time.time() - 1200, slow.key()))
    db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?)", (slow.key(), store.host, os.getpid(), "gw0", time.time()))
    db.commit()
    assert [r.key for r in store.read_progress()] == [slow.key()]


def test_a_failing_progress_write_gives_up_quickly_and_raises_nothing(tmp_path):
    store = made_store(tmp_path)
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the store
    try:
        started = time.perf_counter()
        assert not store.report_progress(cfg(), epoch=1)
        assert not store.clear_progress(cfg().key())
        assert time.perf_counter() - started < 5
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    store.path.write_bytes(b"not a database any more" * 200)
    assert not store.report_progress(cfg(), epoch=1)
    assert store.read_progress() == []


def test_a_store_made_before_the_progress_table_gains_it(tmp_path):
    store = made_store(tmp_path)
    db = sqlite3.connect(store.path)
    db.executescript("DROP TABLE progress; DROP INDEX runs_by_finished;")
    db.close()
    assert store.read_progress() == [] and not store.report_progress(cfg(), epoch=1)  # no table: nothing, quietly
    again = RunStore(store.path)
    assert again.lookup(cfg(seed=99).key()).status == "ok"
    db = sqlite3.connect(store.path)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"progress", "runs_by_finished"} <= names
    assert db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone() == ("1",)
    assert again.report_progress(cfg(), epoch=1) and len(again.read_progress()) == 1


def diverge(c):
    raise RunFailed("no steps")


def test_saved_runs_are_read_back_from_a_time_on(tmp_path):
    store = made_store(tmp_path)
    since = time.time()
    store.get_or_run(cfg(seed=1), lambda c: result(0.75))
    store.get_or_run(cfg(seed=2), diverge)
    ok, failed = store.read_finished(since)
    assert (ok.label, ok.status, ok.accuracy, ok.wall_s, ok.images_per_s, ok.epochs, ok.worker) == (
        cfg(seed=1).label(), "ok", 0.75, 2.0, 1000.0, 1, "gw0")
    assert (failed.status, failed.reason, failed.accuracy) == ("failed", "no steps", None)
    assert store.read_finished(failed.finished + 1) == []


# ---------------------------------------------------------------------------- the worker's reporter
def test_the_reporter_records_each_epoch_and_clears_the_row_at_the_end(tmp_path):
    store = made_store(tmp_path)
    c, logged = cfg(), []
    with progress_reporter(store, c, logged.append) as progress:
        [first] = store.read_progress()
        assert (first.epoch, first.loss) == (0, None)
        progress(EpochProgress(c.label(), 1, 4, 0.9, None, "test", 100.0))
        progress(EpochProgress(c.label(), 2, 4, 0.5, 0.8, "test", 110.0))
        progress(EpochProgress(c.label(), 3, 4, 0.4, None, "test", 120.0))
        [now] = store.read_progress()
        assert (now.epoch, now.epochs, now.loss, now.accuracy, now.images_per_s) == (3, 4, 0.4, 0.8, 120.0)
        assert now.started == first.started  # one run from start to end
        progress(f"{c.label()}: epoch 4/4, loss 0.2000, test acc 0.9000")  # a plain log line works too
        [last] = store.read_progress()
        assert (last.epoch, last.loss, last.accuracy, last.images_per_s) == (4, 0.2, 0.9, None)
    assert store.read_progress() == []
    assert len(logged) == 4


def test_the_reporter_clears_after_a_failure_and_never_fails_a_run(tmp_path):
    store = made_store(tmp_path)
    with pytest.raises(RunFailed):
        with progress_reporter(store, cfg()) as progress:
            progress(EpochProgress(cfg().label(), 1, 4, 0.9))
            raise RunFailed("non-finite training loss at epoch 2")
    assert store.read_progress() == []

    class Broken:
        def report_progress(self, *args, **kwargs):
            raise RuntimeError("a bug in the progress path")

        clear_progress = report_progress

    with progress_reporter(Broken(), cfg()) as progress:  # neither entering, reporting nor leaving raises
        progress(EpochProgress(cfg().label(), 1, 4, 0.9))


# ---------------------------------------------------------------------------- the board
class FakeStore:
    def __init__(self):
        self.rows: list[ProgressRow] = []
        self.finished: list[FinishedRun] = []
        self.polls = 0

    def read_progress(self):
        self.polls += 1
        return list(self.rows)

    def read_finished(self, since):
        return [f for f in self.finished if f.finished >= since]


def saved(key, at, status="ok"):
    return FinishedRun(key, f"lenet/mnist/dataset/{key}", status, None if status == "ok" else "diverged", 0.5, 3.0,
                       100.0, 1, at, "gw0")


def test_the_board_prints_each_finished_run_once_and_the_status_now_and_then():
    store, lines, clock = FakeStore(), [], [NOW]
    board = ProgressBoard(store, Tally(started=NOW - 10), LineOutput(lines.append, direct=True, every_s=60),
                          clock=lambda: clock[0])
    store.rows = [row(started=NOW - 5)]
    board.poll_once()
    assert lines == []  # the status clock starts with the first run in training
    store.finished = [saved("seed0", NOW - 2), saved("seed1", NOW - 1, "failed")]
    board.poll_once()
    board.poll_once()
    assert [line.split(" |")[0] for line in lines] == [
        "normclaims: trained lenet/mnist/dataset/seed0 on gw0 in 3s: 1 epoch, acc 0.5000, 100 img/s",
        "normclaims: failed lenet/mnist/dataset/seed1 on gw0: diverged"]
    assert "| 2 trained (1 failed), 0 cached, 1 training |" in lines[1]
    clock[0] += 61
    board.poll_once()
    assert lines[2:] == status_lines(store.rows, board.tally, clock[0])


def test_runs_served_from_the_store_count_as_cached_unless_this_session_trained_them():
    store = FakeStore()
    board = ProgressBoard(store, Tally(started=NOW - 10), LineOutput(lambda line: None, direct=True))
    board.served("old", cached=True)
    board.served("fresh", cached=False)
    board.served("shared", cached=True)  # trained by another worker of this session, waited for here
    store.finished = [saved("shared", NOW)]
    board.poll_once()
    assert (board.tally.trained, board.tally.cached) == (1, 1)


def test_planned_runs_given_during_the_session_reach_the_board():
    from harness.progress import ProgressPlugin

    plugin = ProgressPlugin(config=None, store=FakeStore(), started=NOW - 100)
    plugin.board = ProgressBoard(plugin.store, plugin.tally, LineOutput(lambda line: None, direct=True))
    plugin.set_total_runs(40)
    plugin.set_items_total(10)
    assert (plugin.board.tally.total_runs, plugin.board.tally.items_total) == (40, 10)
    assert ", 40 left of 40 |" in status_lines([], plugin.board.tally, NOW)[0]


def test_the_session_plan_a_worker_leaves_in_the_store_reaches_the_board(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    assert store.read_session_plan(NOW) is None and not store.path.exists()  # reading creates nothing
    store.note_session_plan(NOW - 1, 99, 0)  # an earlier session's
    store.note_session_plan(NOW, 57, 12)
    assert store.read_session_plan(NOW) == (57, 12) and store.read_session_plan(NOW - 1) is None
    serial = ProgressBoard(store, Tally(started=NOW), LineOutput(lambda line: None, direct=True))
    serial.poll_once()
    assert serial.tally.total_runs is None  # only an xdist controller waits for a worker's plan
    board = ProgressBoard(store, Tally(started=NOW), LineOutput(lambda line: None, direct=True), planned_by_worker=True)
    board.poll_once()
    assert (board.tally.total_runs, board.tally.stored_before) == (57, 12)


def test_lines_wait_for_the_main_thread_unless_direct():
    lines = []
    output = LineOutput(lines.append, direct=False)
    output.finished("normclaims: trained x")
    assert lines == []
    output.drain()
    assert lines == ["normclaims: trained x"]


def test_the_board_polls_on_its_thread_and_reports_the_rest_when_stopped():
    store, lines = FakeStore(), []
    board = ProgressBoard(store, Tally(started=NOW - 10), LineOutput(lines.append, direct=False), poll_s=0.01)
    board.start()
    deadline = time.time() + 30
    while store.polls < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert store.polls >= 3 and lines == []
    store.finished = [saved("seed0", NOW)]
    tally = board.stop()
    assert tally.trained == 1 and len(lines) == 1 and lines[0].startswith("normclaims: trained")
    assert not any(t.name == "normclaims-progress" for t in threading.enumerate())


def terminal_pair(rows=30, columns=160) -> tuple[int, int]:
    """A pseudo-terminal with a size, as a user's terminal has: (master, slave) fds."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def read_all(fd) -> str:
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_on_a_terminal_the_area_stays_in_place_below_pytests_own_output():
    from _pytest._io import TerminalWriter

    master, slave = terminal_pair()
    terminal = os.fdopen(slave, "w", buffering=1)
    writer = TerminalWriter(terminal)
    output = LiveOutput(writer)
    try:
        output.status(["normclaims: 0 trained, 0 cached, 0 training"], NOW)
        assert output.live is None  # nothing trained nor training: no area
        writer.write("..", flush=True)
        output.status(["normclaims: 0 trained, 0 cached, 1 training", "  gw0 lenet: epoch 1/2"], NOW)
        assert writer._file is output.proxy
        writer.line("a line pytest wrote")
        writer.write(".", flush=True)  # a partial line waits for its end
        output.status(["normclaims: 0 trained, 0 cached, 1 training", "  gw0 lenet: epoch 2/2"], NOW)
    finally:
        output.close()
    assert writer._file is terminal
    terminal.flush()
    text = read_all(master)
    terminal.close()
    os.close(master)
    assert "epoch 1/2" in text and "epoch 2/2" in text and "\x1b[1A" in text  # redrawn in place
    assert text.index("..") < text.index("epoch 1/2") < text.index("a line pytest wrote")
    assert text.rstrip().endswith(".")  # pytest's partial line, handed back when the area went


# ---------------------------------------------------------------------------- whole sessions
def wired() -> bool:
    plugin = (ROOT / "harness" / "plugin.py").read_text()
    train = (ROOT / "harness" / "train.py").read_text()
    return "install_progress(" in plugin and "progress_reporter(" in plugin and "EpochProgress(" in train


needs_wiring = pytest.mark.skipif(not wired(), reason="harness.plugin does not call install_progress and "
                                                      "progress_reporter, or harness.train does not report EpochProgress")


# each epoch's report stays in view for two polls, and a log shows the status at every poll
SLOW_EPOCHS = '''
import time

import harness.progress as progress

progress.STATUS_EVERY_S = 0.0
record = progress.ProgressReporter.record


def slow_record(self, epoch, *args, **kwargs):
    record(self, epoch, *args, **kwargs)
    if epoch:
        time.sleep(2.0)


progress.ProgressReporter.record = slow_record
'''


@pytest.fixture
def session(pytester, tmp_path_factory, monkeypatch):
    pytester.makeconftest(SLOW_EPOCHS)
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM)
    data = tmp_path_factory.mktemp("data")
    harness_on_path(monkeypatch)
    options = ["-p", "no:cacheprovider", "--profile=smoke", "--gpus=cpu", f"--data-dir={data}", "--seeds=2"]

    def run(*args):
        return pytester.runpytest_subprocess(*options, *args)

    run.options = options
    return run


def trained_runs(pytester, store="runs.sqlite") -> int:
    with sqlite3.connect(pytester.path / ".normclaims" / store) as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@needs_wiring
@pytest.mark.parametrize("args", [["-n", "2"], []], ids=["xdist", "serial"])
def test_a_session_shows_each_run_and_an_eta_in_its_log(session, pytester, args):
    result = session(*args)
    result.assert_outcomes(passed=2)
    trained = [line for line in result.outlines if line.startswith("normclaims: trained ")]
    assert len({line.split(" on ")[0] for line in trained}) == len(trained) == 4  # every run, once
    assert all(" | " in line and " ETA " in line for line in trained)
    assert all(" left of 4 | " in line for line in trained)  # the runs enumerated after collection, also under xdist
    result.stdout.fnmatch_lines(["normclaims: * training*| ETA *",
                                 "  * lenet/folder:*: epoch 1/1, loss *, acc *, * img/s, *"])
    result.stdout.fnmatch_lines(["normclaims: 4 runs trained, 0 served from the store, in *",
                                 "*normclaims verdicts*"])
    again = session(*args)  # served from the store: nothing in training, one line at the end
    assert not [line for line in again.outlines if line.startswith("normclaims: trained")]
    again.stdout.fnmatch_lines(["normclaims: 0 runs trained, 4 served from the store, in *"])


@needs_wiring
def test_a_quiet_session_shows_no_progress(session, pytester):
    result = session("-n", "2", "-q")
    result.assert_outcomes(passed=2)
    assert trained_runs(pytester) == 4  # it trained, and said nothing of it
    assert not [line for line in result.outlines if line.startswith(("normclaims:", "  gw"))]


@needs_wiring
def test_on_a_terminal_the_session_keeps_its_status_in_place(session, pytester):
    master, slave = terminal_pair()
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *session.options, "-n", "2"], cwd=pytester.path,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out, deadline = b"", time.time() + 300
    while time.time() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the session ended and closed the terminal
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "epoch 1/1, loss" in text and "\x1b[1A" in text  # the area, redrawn in place
    assert "normclaims: 4 runs trained, 0 served from the store" in text and "normclaims verdicts" in text
    assert "normclaims: trained " not in text  # no log lines on a terminal
