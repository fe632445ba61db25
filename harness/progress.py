"""Live progress of a session's training runs, on the controller's terminal, also under xdist.

A run in training reports each epoch through the run store's progress table (a ProgressReporter
is its `progress` callback); the store already crosses processes and hosts. On the controller a
ProgressBoard polls the store about once a second and shows every run in training (epoch k of N,
its loss, accuracy and images/s), the runs trained, served from the store and left, and an
estimated time to the end. On a terminal the board is a status area kept in place by rich's Live
display, below pytest's own output; in a log (no terminal) it prints one line per finished run
and, while runs train, the status every STATUS_EVERY_S. Under -q it shows nothing.

A run counts as trained by the session when the store saved it after the session started,
whichever process trained it: a second session sharing the store trains runs for this one too.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

import pytest

from harness.config import RunConfig
from harness.epochs import EpochProgress
from harness.store import FinishedRun, ProgressRow

log = logging.getLogger("normclaims")

POLL_S = 1.0
STATUS_EVERY_S = 300.0  # in a log: the status of the runs in training this often, so a hung session shows
STALE_S = 60.0  # a run whose last report is older than this says so


# ---------------------------------------------------------------------------- on a worker
LINE = re.compile(r"(?P<label>.+): epoch (?P<epoch>\d+)/(?P<epochs>\d+), loss (?P<loss>[^,\s]+)"
                  r"(?:, (?P<on>\w+) acc (?P<acc>[0-9.]+))?(?:, (?P<speed>[0-9.]+) img/s)?")


def parse_progress(text: str) -> EpochProgress | None:
    """An EpochProgress back from its log line; None for any other text."""
    m = LINE.fullmatch(text.strip())
    if m is None:
        return None
    try:
        return EpochProgress(m["label"], int(m["epoch"]), int(m["epochs"]), float(m["loss"]),
                             float(m["acc"]) if m["acc"] else None, m["on"] or "test",
                             float(m["speed"]) if m["speed"] else None)
    except ValueError:
        return None


class ProgressReporter:
    """The `progress` callback of one training run: logs each epoch (with `log_line`) and records it in
    the store's progress table. As a context manager it reports the run from before its data loads
    and removes the row when the run ends, however it ends. Recording never fails the run."""

    def __init__(self, store, cfg: RunConfig, log_line: Callable[[object], None] | None = None):
        self.store, self.cfg, self.log_line = store, cfg, log_line
        self.key, self.label = cfg.key(), cfg.label()
        self.started = time.time()
        self.accuracy: float | None = None  # the last evaluated epoch's, shown until the next evaluation

    def __enter__(self) -> "ProgressReporter":
        self.record(0)
        return self

    def __exit__(self, *exc) -> bool:
        try:
            self.store.clear_progress(self.key)
        except Exception as error:  # the store's own errors are swallowed there; anything else here
            log.debug("progress of %s not cleared: %s", self.label, error)
        return False

    def __call__(self, event: EpochProgress | str) -> None:
        if self.log_line is not None:
            self.log_line(event)
        epoch = event if isinstance(event, EpochProgress) else parse_progress(str(event))
        if epoch is None:
            return
        if epoch.accuracy is not None:
            self.accuracy = epoch.accuracy
        self.record(epoch.epoch, epoch.loss, epoch.images_per_s, epoch.epochs)

    def record(self, epoch: int, loss: float | None = None, images_per_s: float | None = None,
               epochs: int | None = None) -> None:
        try:
            self.store.report_progress(self.key, label=self.label, epoch=epoch, epochs=epochs or self.cfg.epochs,
                                       loss=loss, accuracy=self.accuracy, images_per_s=images_per_s,
                                       started=self.started)
        except Exception as error:  # progress is an aside: a bug in it must not cost a trained run
            log.debug("progress of %s not recorded: %s", self.label, error)


def progress_reporter(store, cfg: RunConfig, log_line: Callable[[object], None] | None = None) -> ProgressReporter:
    """`with progress_reporter(store, cfg, log.info) as progress: finetune(..., progress=progress)`."""
    return ProgressReporter(store, cfg, log_line)


# ---------------------------------------------------------------------------- the text
@dataclass
class Tally:
    """What the controller knows of the session: runs and test items, counted so far."""

    started: float  # the session's start, unix time
    trained: int = 0  # runs the store saved since the session started
    failed: int = 0  # of those, the failed ones
    cached: int = 0  # runs the session's items were served from the store
    total_runs: int | None = None  # the runs the session needs, when planned
    stored_before: int = 0  # of those, the runs in the store before the session started
    items_done: int = 0
    items_total: int | None = None

    @property
    def from_store(self) -> int:
        """Runs of the session that need no training: served so far, or known to be stored."""
        return max(self.cached, self.stored_before)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def eta_seconds(rows: list[ProgressRow], tally: Tally, now: float) -> float | None:
    """Seconds to the end at the speed measured so far. With the session's planned runs: the runs
    left (the finished part of each run in training counted done) at the session's rate of runs
    per second; otherwise the test items left at its rate of items. None until there is a rate."""
    elapsed = now - tally.started
    if tally.total_runs is not None:
        done = tally.trained + sum(min(1.0, r.epoch / r.epochs) for r in rows if r.epochs)
        left = tally.total_runs - tally.from_store - done
        if left <= 0:
            return 0.0
        return left * elapsed / done if done > 0 and elapsed > 0 else None
    if tally.items_total is not None and tally.items_done > 0:
        return max(0, tally.items_total - tally.items_done) * elapsed / tally.items_done
    return None


def counts_text(rows: list[ProgressRow], tally: Tally, now: float) -> str:
    """'3 trained (1 failed), 12 cached, 2 training, 40 left of 57 | 1h02m elapsed | ETA 3h10m'."""
    parts = [f"{tally.trained} trained" + (f" ({tally.failed} failed)" if tally.failed else ""),
             f"{tally.cached} cached", f"{len(rows)} training"]
    if tally.total_runs is not None:
        left = tally.total_runs - tally.trained - tally.from_store
        parts.append(f"{max(0, left)} left of {tally.total_runs}")
    elif tally.items_total is not None:
        parts.append(f"tests {tally.items_done}/{tally.items_total}")
    eta = eta_seconds(rows, tally, now)
    return (f"{', '.join(parts)} | {duration(now - tally.started)} elapsed | "
            f"ETA {duration(eta) if eta is not None else 'unknown'}")


def run_line(row: ProgressRow, now: float) -> str:
    """'  gw0 resnet18/cifar10/dataset/seed0: epoch 12/100, loss 0.5321, acc 0.8123, 412 img/s, 6m03s'."""
    if row.epoch == 0:
        parts = [f"starting ({plural(row.epochs, 'epoch')})" if row.epochs else "starting"]
    else:
        parts = [f"epoch {row.epoch}/{row.epochs}" if row.epochs else f"epoch {row.epoch}"]
    if row.loss is not None:
        parts.append(f"loss {row.loss:.4f}")
    if row.accuracy is not None:
        parts.append(f"acc {row.accuracy:.4f}")
    if row.images_per_s:
        parts.append(f"{row.images_per_s:.0f} img/s")
    parts.append(duration(now - row.started))
    if now - row.updated > STALE_S:
        parts.append(f"last report {duration(now - row.updated)} ago")
    return f"  {row.worker or '?'} {row.label}: {', '.join(parts)}"


def status_lines(rows: list[ProgressRow], tally: Tally, now: float) -> list[str]:
    """The status area: the session's counts and ETA, then one line per run in training."""
    return [f"normclaims: {counts_text(rows, tally, now)}"] + [run_line(r, now) for r in rows]


def finished_line(run: FinishedRun, rows: list[ProgressRow], tally: Tally, now: float) -> str:
    """One line for a run the store just saved, with the session's counts after it."""
    where = f" on {run.worker}" if run.worker else ""
    if run.status == "ok":
        details = [plural(run.epochs, "epoch")] if run.epochs else []
        details += [f"acc {run.accuracy:.4f}"] if run.accuracy is not None else []
        details += [f"{run.images_per_s:.0f} img/s"] if run.images_per_s else []
        took = f" in {duration(run.wall_s)}" if run.wall_s is not None else ""
        head = f"trained {run.label}{where}{took}" + (f": {', '.join(details)}" if details else "")
    else:
        head = f"failed {run.label}{where}: {run.reason}"
    return f"normclaims: {head} | {counts_text(rows, tally, now)}"


def final_line(tally: Tally, now: float) -> str:
    failed = f" ({tally.failed} failed)" if tally.failed else ""
    return (f"normclaims: {plural(tally.trained, 'run')} trained{failed}, {tally.cached} served from the store, "
            f"in {duration(now - tally.started)}")


# ---------------------------------------------------------------------------- the outputs
class LineOutput:
    """For logs: finished runs one line each, and the status every `every_s` while runs train.
    `write_line` is called from the board's thread when `direct` (an xdist controller runs no
    test, so nothing captures its output); otherwise lines wait for `drain` on the main thread,
    between tests, where pytest's capture is suspended."""

    def __init__(self, write_line: Callable[[str], None], direct: bool, every_s: float | None = None):
        self.write_line, self.direct = write_line, direct
        self.every_s = STATUS_EVERY_S if every_s is None else every_s
        self.pending: list[str] = []
        self.lock = threading.Lock()
        self.last_status: float | None = None

    def finished(self, line: str) -> None:
        self._emit([line])

    def note(self, line: str) -> None:
        """A line about the session (a lost worker and its retry), in order with the runs' lines."""
        self._emit([line])

    def status(self, lines: list[str], now: float) -> None:
        training = len(lines) > 1  # the counts, then a line per run in training
        if self.last_status is None or not training:
            self.last_status = now  # the clock starts with the first run in training
        elif now - self.last_status >= self.every_s:
            self.last_status = now
            self._emit(lines)

    def _emit(self, lines: list[str]) -> None:
        with self.lock:
            self.pending += lines
        if self.direct:
            self.drain()

    def drain(self) -> None:
        with self.lock:
            lines, self.pending = self.pending, []
        for line in lines:
            self.write_line(line)

    def close(self) -> None:
        self.drain()


class LineProxy:
    """Stands in for pytest's terminal file while the live area is shown: whole lines go to the
    console above the area; a partial line (pytest's progress dots) waits for its end."""

    def __init__(self, console, file):
        self.console, self.file = console, file
        self.buffer = ""

    def write(self, text: str) -> int:
        from rich.text import Text

        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        if lines:
            # a line rewritten with carriage returns shows as its last version, as on a terminal
            self.console.print(Text("\n").join(Text.from_ansi(line.rsplit("\r", 1)[-1]) for line in lines))
        return len(text)

    def flush(self) -> None:
        pass  # a partial line is printed when it ends, or given back on stop

    def __getattr__(self, name: str):
        return getattr(self.file, name)


class LiveOutput:
    """For a terminal: the status area in place (rich's Live), started with the first run trained
    or in training. Meanwhile pytest's own output passes through a LineProxy above it."""

    def __init__(self, writer):
        self.writer = writer  # pytest's TerminalWriter
        original = writer._file
        # a handle of our own on the terminal, taken before any test runs: pytest's capture
        # redirects fd 1 while a test runs in this process, and the area is drawn meanwhile
        self.file = os.fdopen(os.dup(original.fileno()), "w", buffering=1,
                              encoding=getattr(original, "encoding", None) or "utf-8", errors="replace")
        self.live = None
        self.proxy: LineProxy | None = None
        self.trained = False

    def start(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.file, color_system="auto" if self.writer.hasmarkup else None)
        if self.writer.width_of_current_line:
            self.file.write("\n")  # the area starts on a line of its own, below pytest's dots
        self.proxy = LineProxy(console, self.writer._file)
        self.writer._file = self.proxy
        self.live = Live(console=console, auto_refresh=False, transient=True, redirect_stdout=False,
                         redirect_stderr=False)
        self.live.start()

    def finished(self, line: str) -> None:
        self.trained = True  # in place, the area shows the counts

    def note(self, line: str) -> None:
        """A line about the session (a lost worker and its retry), printed above the area."""
        if self.live is not None:
            self.live.console.print(line, highlight=False)
        else:
            self.file.write(line + "\n")

    def status(self, lines: list[str], now: float) -> None:
        from rich.console import Group
        from rich.text import Text

        if self.live is None:
            if len(lines) == 1 and not self.trained:
                return  # nothing trained nor training yet (a session served from the store): no area
            self.start()
        try:  # the size of our terminal: rich would ask fds 0-2, which a running test's capture holds
            size = os.get_terminal_size(self.file.fileno())
        except OSError:
            size = None
        if size and size.columns and size.lines:  # a terminal that tells no size leaves rich's guess
            self.live.console.size = size
        self.live.update(Group(*(Text(line, no_wrap=True, overflow="ellipsis") for line in lines)), refresh=True)

    def drain(self) -> None:
        pass

    def close(self) -> None:
        try:
            if self.live is not None:
                self.live.stop()
        finally:
            self.file.close()  # all of the area out before pytest's own output goes on
            if self.proxy is not None:
                self.writer._file = self.proxy.file
                if self.proxy.buffer:
                    self.proxy.file.write(self.proxy.buffer)  # pytest's partial line, where it continues
            self.live = self.proxy = None


# ---------------------------------------------------------------------------- the board
class ProgressBoard:
    """Polls the store on a thread of its own and hands the text to its output."""

    def __init__(self, store, tally: Tally, output, poll_s: float = POLL_S, clock: Callable[[], float] = time.time,
                 planned_by_worker: bool = False):
        self.store, self.tally, self.output, self.poll_s, self.clock = store, tally, output, poll_s, clock
        self.planned_by_worker = planned_by_worker  # xdist: the session's runs arrive through the store
        self.lock = threading.Lock()
        self.since = tally.started  # saved runs are read from here on
        self.counted: set[tuple[str, float]] = set()
        self.trained_keys: set[str] = set()
        self.served_keys: set[str] = set()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    # what the main thread learns from the test reports
    def served(self, key: str, cached: bool) -> None:
        with self.lock:
            if cached:
                self.served_keys.add(key)
            self.tally.cached = len(self.served_keys - self.trained_keys)

    def item_done(self) -> None:
        with self.lock:
            self.tally.items_done += 1

    def set_items_total(self, n: int) -> None:
        with self.lock:
            self.tally.items_total = n

    def set_total_runs(self, n: int | None, stored: int = 0) -> None:
        with self.lock:
            self.tally.total_runs, self.tally.stored_before = n, stored

    # the polling
    def poll_once(self, final: bool = False) -> None:
        """Report the runs saved since the last poll; unless `final`, show the status."""
        if self.tally.total_runs is None and self.planned_by_worker:
            planned = self.store.read_session_plan(self.tally.started)  # once the first xdist worker enumerated them
            if planned is not None:
                self.set_total_runs(*planned)
        rows = self.store.read_progress()
        finished = self.store.read_finished(self.since)
        now = self.clock()
        for run in finished:
            with self.lock:
                if (run.key, run.finished) in self.counted:
                    continue
                self.counted.add((run.key, run.finished))
                self.since = max(self.since, run.finished)
                self.trained_keys.add(run.key)
                self.tally.trained += 1
                self.tally.failed += run.status == "failed"
                self.tally.cached = len(self.served_keys - self.trained_keys)
                tally = dataclasses.replace(self.tally)
            self.output.finished(finished_line(run, rows, tally, now))
        if final:
            return
        with self.lock:
            tally = dataclasses.replace(self.tally)
        self.output.status(status_lines(rows, tally, now), now)

    def _loop(self) -> None:
        while not self.stopping.wait(self.poll_s):
            try:
                self.poll_once()
            except Exception as error:  # a display must never take the session down
                log.debug("progress display: %s", error)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="normclaims-progress", daemon=True)
        self.thread.start()

    def stop(self) -> Tally:
        """Stop polling, report what finished since the last poll, take the area down."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        try:
            self.poll_once(final=True)
        finally:
            self.output.close()
        with self.lock:
            return dataclasses.replace(self.tally)


# ---------------------------------------------------------------------------- the pytest side
class ProgressPlugin:
    """On the controller: counts test items and runs served from the store, runs the board for the
    duration of the test loop."""

    def __init__(self, config: pytest.Config, store, started: float, total_runs: int | None = None):
        self.config, self.store = config, store
        self.tally = Tally(started=started, total_runs=total_runs)
        self.board: ProgressBoard | None = None
        self.output = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        self.start()
        try:
            return (yield)
        finally:
            self.stop()

    def start(self) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        xdist = self.config.pluginmanager.has_plugin("dsession")
        writer = tr._tw
        in_place = (getattr(tr, "isatty", False) and os.environ.get("TERM") != "dumb" and rich_installed()
                    and hasattr(writer, "_file") and hasattr(writer._file, "fileno"))
        self.output = None
        if in_place:
            try:
                self.output = LiveOutput(writer)
            except OSError:  # no terminal to draw on after all: the log form
                pass
        self.output = self.output or LineOutput(self.write_line, direct=xdist)
        self.board = ProgressBoard(self.store, self.tally, self.output, planned_by_worker=xdist)
        self.board.start()

    def write_line(self, line: str) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        tr.ensure_newline()
        if tr._tw.width_of_current_line:
            tr._tw.line()  # below pytest's progress dots, not after them
        tr.write_line(line)
        tr.flush()

    def note(self, line: str) -> None:
        """A line about the session for its progress output (or, before the output starts, the terminal)."""
        if self.board is not None:
            self.board.output.note(line)
        else:
            self.write_line(line)

    def stop(self) -> None:
        board, self.board = self.board, None
        if board is None:
            return
        tally = board.stop()
        if tally.trained or tally.cached:
            self.write_line(final_line(tally, time.time()))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.config.pluginmanager.has_plugin("dsession"):
            self.set_items_total(len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self.set_items_total(len(ids))  # every worker collects the same items

    def set_items_total(self, n: int) -> None:
        self.tally.items_total = n
        if self.board is not None:
            self.board.set_items_total(n)

    def set_total_runs(self, n: int | None, stored: int = 0) -> None:
        """The runs the session needs, once known (enumerated after collection), `stored` of them in
        the store already: the runs left, and an ETA by runs rather than by test items."""
        self.tally.total_runs, self.tally.stored_before = n, stored
        if self.board is not None:
            self.board.set_total_runs(n, stored)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        board = self.board
        if board is None:
            return
        if report.when == "call":
            from harness.observations import read_report

            for obs in read_report(report).observations:
                for run in obs.runs():
                    board.served(run.key, run.cached)
        elif report.when == "teardown":
            board.item_done()
        board.output.drain()  # between tests: nothing is captured now

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()


def rich_installed() -> bool:
    try:
        import rich.live  # noqa: F401
    except ImportError:
        return False
    return True


def install_progress(config: pytest.Config, total_runs: int | None = None) -> ProgressPlugin | None:
    """On the controller (not on an xdist worker): show the session's progress unless it is quiet
    (-q), only collects, or only plans. `total_runs`: the runs the session needs, when known, for
    the runs left and an ETA by runs (else the ETA goes by test items); later with
    `plugin.set_total_runs(n)`, the plugin being `config.pluginmanager.get_plugin("normclaims-progress")`."""
    from harness.session import of

    if hasattr(config, "workerinput") or (config.getoption("verbose") or 0) < 0 or config.option.collectonly:
        return None
    if of(config).settings.plan:
        return None
    plugin = ProgressPlugin(config, of(config).store, of(config).start, total_runs)
    config.pluginmanager.register(plugin, "normclaims-progress")
    return plugin
