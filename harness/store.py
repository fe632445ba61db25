"""The run store: SQLite in WAL mode, one row per finished run, keyed by RunConfig.key().

Many xdist workers share one file. A lease row makes sure a run requested by two workers at
once is trained once: the first takes the lease and trains, the other waits for the row. A
lease whose owner died (same host, pid gone; or no heartbeat for LEASE_TTL_S) is taken over,
so a killed session never blocks the next one. Rows are written in one transaction each, so
Ctrl-C or kill -9 loses at most the runs still training.

The progress table is how a run in training tells the session's controller where it is (epoch k
of N, its loss, accuracy and images/s): one row per run, replaced at each epoch and deleted when
the run ends. Progress is best effort: its writes wait at most PROGRESS_BUSY_S for the lock and
give up silently, so a busy store slows no run and fails none.
"""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.config import RunConfig, RunRecord, RunResult
from harness.errors import RunFailed, UsageError

log = logging.getLogger("normclaims")

SCHEMA_VERSION = 1
LEASE_TTL_S = 180.0  # a lease without a heartbeat for this long belongs to a dead worker
HEARTBEAT_S = 20.0
POLL_S = 0.5
PROGRESS_BUSY_S = 0.25  # a progress write waits this long for the lock, then is dropped
LOCK_WAIT_S = 60.0  # a run-store read or write waits this long for another worker's lock

# Added after schema 1 without changing what older harnesses read: created when missing on opening
PROGRESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    key TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    worker TEXT,
    host TEXT,
    pid INTEGER,
    epoch INTEGER NOT NULL,
    epochs INTEGER,
    loss REAL,
    accuracy REAL,
    images_per_s REAL,
    started REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_finished ON runs (finished);
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    result TEXT,
    reason TEXT,
    finished REAL NOT NULL,
    host TEXT,
    worker TEXT
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    worker TEXT,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
""" + PROGRESS_SCHEMA


@dataclass(frozen=True)
class ProgressRow:
    """A run in training, as its worker last reported it."""

    key: str
    label: str
    worker: str | None
    host: str | None
    epoch: int  # epochs finished; 0 while the run loads its data and model
    epochs: int | None
    loss: float | None  # the last epoch's mean training loss
    accuracy: float | None  # the last evaluated accuracy
    images_per_s: float | None  # the last epoch's training speed
    started: float
    updated: float


@dataclass(frozen=True)
class FinishedRun:
    """A run the store saved, as a progress display reads it."""

    key: str
    label: str
    status: str
    reason: str | None
    accuracy: float | None
    wall_s: float | None
    images_per_s: float | None
    epochs: int
    finished: float
    worker: str | None


@dataclass(frozen=True)
class TrainedElsewhere:
    """What a get_or_run `train` returns for a run another machine trained (a Ray node): its row
    names that node, not this process. `failure`: the run failed there (RunFailed), and why."""

    result: RunResult | None
    host: str
    worker: str
    failure: str | None = None


def use_wal(db: sqlite3.Connection, wait_s: float = LOCK_WAIT_S) -> None:
    """Put the store in WAL mode (it stays so in the file). Asking is a read; switching takes the
    whole file, and SQLite answers "locked" at once, without its busy wait, when two workers
    opening a new store switch together: so switch only when needed, and retry until wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05 + 0.1 * (os.getpid() % 7) / 7)  # workers spread out instead of colliding again


class RunStore:
    def __init__(self, path: Path | str, fresh_after: float | None = None, worker: str = "main"):
        self.path = Path(path)
        self.fresh_after = fresh_after  # --rerun: rows finished before this time are ignored
        self.worker = worker
        self.host = socket.gethostname()
        self._ready = False
        if self.path.exists():
            self._open_schema()  # a damaged store is refused now, before any training

    def _open_schema(self) -> None:
        """Create or check the tables. Deferred until first use, so a session that runs no
        claim leaves no store behind."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = self._open(LOCK_WAIT_S)
            try:
                # another program's database is refused before anything is written to it
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                row = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone() if "meta" in tables else None
                if tables and row is None:
                    raise UsageError(f"run store {self.path} is an SQLite database but not a normclaims run store "
                                     f"(tables: {', '.join(sorted(tables))}); pass another --store")
                if row is not None and row[0] != str(SCHEMA_VERSION):
                    raise UsageError(f"run store {self.path} has schema {row[0]}, this harness reads {SCHEMA_VERSION}: pass another --store")
                if row is None:  # a new store: its tables and schema mark in one transaction, so a
                    # worker opening it meanwhile sees all of it or nothing
                    db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} "
                                     f"INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}'); COMMIT;")
                else:
                    add_progress_schema(db)
                db.execute("SELECT key, config, status, result, reason, finished FROM runs LIMIT 1").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"run store {self.path} is not a readable SQLite database ({exc}); move it aside or pass another --store") from None
        self._ready = True

    def _quick(self) -> sqlite3.Connection:
        """A connection that waits at most PROGRESS_BUSY_S for a lock: for progress, never for runs."""
        return self._open(PROGRESS_BUSY_S)

    def _shared(self) -> sqlite3.Connection:
        """This process's long-lived connection for reads (a session looks up hundreds of runs)."""
        if getattr(self, "_reader", None) is None or self._reader_pid != os.getpid():
            self._reader, self._reader_pid = self._connect(), os.getpid()
        return self._reader

    def _open(self, wait_s: float) -> sqlite3.Connection:
        """An autocommit connection (explicit BEGINs) that waits at most `wait_s` for another's lock."""
        db = sqlite3.connect(self.path, timeout=wait_s, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={int(wait_s * 1000)}")
        return db

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self._open_schema()
        db = self._open(LOCK_WAIT_S)
        use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    # ------------------------------------------------------------------ reads
    def lookup(self, key: str) -> RunRecord | None:
        db = self._connect()
        try:
            return self._lookup(db, key)
        finally:
            db.close()

    def _lookup(self, db: sqlite3.Connection, key: str) -> RunRecord | None:
        row = db.execute("SELECT config, status, result, reason, finished, host, worker FROM runs WHERE key = ?",
                         (key,)).fetchone()
        if row is None or (self.fresh_after is not None and row[4] < self.fresh_after):
            return None
        try:
            config = RunConfig.from_dict(json.loads(row[0]))
            result = RunResult.from_dict(json.loads(row[2])) if row[2] else None
        except (ValueError, TypeError) as exc:
            raise UsageError(f"run store {self.path} holds a damaged row for run {key[:12]} ({exc}); pass --rerun to retrain it") from None
        return RunRecord(key, config, row[1], result, row[3], cached=True, finished=row[4], host=row[5], worker=row[6])

    def measured_rates(self) -> dict[tuple[str, int, str], float]:
        """Training images/s of the finished runs, median per (model, side fed to it, device type)."""
        import statistics

        if not self.path.exists():
            return {}
        rates: dict[tuple[str, int, str], list[float]] = {}
        for config, result in self._shared().execute("SELECT config, result FROM runs WHERE status = 'ok'"):
            try:
                cfg, res = json.loads(config), json.loads(result)
                key = (cfg["model"], res["meta"]["resolution"], cfg["device_type"])
            except (ValueError, TypeError, KeyError):
                continue
            if res.get("images_per_s"):
                rates.setdefault(key, []).append(res["images_per_s"])
        return {k: statistics.median(v) for k, v in rates.items()}

    # ------------------------------------------------------------------ leases
    def _lease_is_dead(self, host: str, pid: int, heartbeat: float) -> bool:
        if time.time() - heartbeat > LEASE_TTL_S:
            return True
        if host == self.host:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    def _try_acquire(self, db: sqlite3.Connection, key: str) -> tuple[RunRecord | None, bool, str | None]:
        """One transaction: (finished record, got lease, holder). Exactly one of the first two is set,
        or neither (someone else holds a live lease)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            record = self._lookup(db, key)
            if record is not None:
                db.execute("COMMIT")
                return record, False, None
            lease = db.execute("SELECT host, pid, worker, heartbeat FROM leases WHERE key = ?", (key,)).fetchone()
            if lease is not None and not self._lease_is_dead(lease[0], lease[1], lease[3]):
                db.execute("COMMIT")
                return None, False, lease[2]
            db.execute(
                "INSERT OR REPLACE INTO leases (key, host, pid, worker, heartbeat) VALUES (?, ?, ?, ?, ?)",
                (key, self.host, os.getpid(), self.worker, time.time()),
            )
            db.execute("COMMIT")
            return None, True, None
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _heartbeat(self, key: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            db = self._connect()
            try:
                db.execute("UPDATE leases SET heartbeat = ? WHERE key = ? AND pid = ?", (time.time(), key, os.getpid()))
            finally:
                db.close()

    # ------------------------------------------------------------------ the one entry point
    def get_or_run(
        self,
        cfg: RunConfig,
        train: Callable[[RunConfig], RunResult],
        on_wait: Callable[[str], None] | None = None,
        precheck: Callable[[RunConfig], None] | None = None,
        while_waiting: Callable[[], bool] | None = None,
        wait: bool = True,
    ) -> RunRecord | None:
        """The stored record of `cfg`, training it (once across all workers) if it is missing.

        While another worker holds its lease, `while_waiting` is called between polls (it may train
        other runs; True when it did, so the next poll comes at once). With `wait=False` a run
        leased elsewhere is not waited for: None.

        `train` returns the RunResult, or a TrainedElsewhere naming the node that trained it.
        `precheck` runs on a miss before any lease is taken (e.g. "is the data here?"): what it
        raises leaves the store untouched, so a session skipping unavailable cells writes nothing.
        A RunFailed from `train` is stored as a failed run with its reason; any other exception
        (including Unavailable and KeyboardInterrupt) stores nothing and releases the lease.
        """
        key = cfg.key()
        found = self._lookup(self._shared(), key)  # the common case, a finished run: no write lock
        if found is not None:
            return found
        if precheck is not None:
            precheck(cfg)
        db = self._connect()
        try:
            waited = False
            while True:
                record, got, holder = self._try_acquire(db, key)
                if record is not None:
                    return record
                if got:
                    break
                if not wait:
                    return None
                if on_wait and not waited:
                    on_wait(f"waiting for {holder or 'another worker'} to finish {cfg.label()}")
                waited = True
                if while_waiting is None or not while_waiting():
                    time.sleep(POLL_S)
            stop = threading.Event()
            beat = threading.Thread(target=self._heartbeat, args=(key, stop), daemon=True)
            beat.start()
            try:
                host, worker = self.host, self.worker
                try:
                    result, status, reason = train(cfg), "ok", None
                    if isinstance(result, TrainedElsewhere):
                        if result.failure is not None:
                            status, reason = "failed", result.failure
                        result, host, worker = result.result, result.host, result.worker
                except RunFailed as exc:
                    result, status, reason = None, "failed", str(exc)
                finished = self._save(db, key, cfg, status, result, reason, host, worker)
            finally:
                stop.set()
                db.execute("DELETE FROM leases WHERE key = ? AND pid = ?", (key, os.getpid()))
            return RunRecord(key, cfg, status, result, reason, cached=False, finished=finished, host=host,
                             worker=worker)
        finally:
            db.close()

    def _save(self, db, key: str, cfg: RunConfig, status: str, result: RunResult | None, reason: str | None,
              host: str, worker: str) -> float:
        finished = time.time()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT OR REPLACE INTO runs (key, config, status, result, reason, finished, host, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, json.dumps(cfg.to_dict(), sort_keys=True), status,
             json.dumps(result.to_dict()) if result else None, reason, finished, host, worker),
        )
        db.execute("DELETE FROM leases WHERE key = ?", (key,))
        db.execute("COMMIT")
        return finished

    # ------------------------------------------------------------------ progress
    def report_progress(self, cfg_or_key: RunConfig | str, *, epoch: int, epochs: int | None = None,
                        loss: float | None = None, accuracy: float | None = None,
                        images_per_s: float | None = None, started: float | None = None,
                        label: str | None = None) -> bool:
        """Record where a run in training is, replacing its previous row. Returns whether it was
        written: a locked or damaged store drops the report, it never raises."""
        is_cfg = isinstance(cfg_or_key, RunConfig)
        key = cfg_or_key.key() if is_cfg else cfg_or_key
        label = label or (cfg_or_key.label() if is_cfg else key[:12])
        epochs = epochs if epochs is not None else (cfg_or_key.epochs if is_cfg else None)
        now = time.time()
        row = (key, label, self.worker, self.host, os.getpid(), epoch, epochs, finite(loss), finite(accuracy),
               finite(images_per_s), started or now, now)
        return self._progress_write(
            "INSERT OR REPLACE INTO progress (key, label, worker, host, pid, epoch, epochs, loss, accuracy, "
            "images_per_s, started, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def clear_progress(self, key: str) -> bool:
        """The run ended (finished, failed or interrupted): its row goes. Never raises."""
        return self._progress_write("DELETE FROM progress WHERE key = ?", (key,))

    def note_session_plan(self, session: float, runs: int, stored: int) -> None:
        """What a session's items will ask for, enumerated by one xdist worker for the controller's
        progress display: `runs` in all, `stored` of them in the store already. Never raises."""
        try:
            db = self._connect()  # creates the store: the session is about to train into it
            try:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('session_plan', ?)",
                           (json.dumps({"session": session, "runs": runs, "stored": stored}),))
            finally:
                db.close()
        except (sqlite3.Error, OSError, UsageError) as exc:
            log.debug("session plan not recorded: %s", exc)

    def read_session_plan(self, session: float) -> tuple[int, int] | None:
        """(runs, stored) as note_session_plan left them for this session; None until then."""
        for (value,) in self._progress_read("SELECT v FROM meta WHERE k = 'session_plan'", ()):
            try:
                plan = json.loads(value)
                if plan["session"] == session:
                    return int(plan["runs"]), int(plan["stored"])
            except (ValueError, TypeError, KeyError):
                pass
        return None

    def _progress_write(self, sql: str, params: tuple) -> bool:
        if not self.path.exists():  # progress never creates a store
            return False
        try:
            db = self._quick()
            try:
                db.execute(sql, params)  # autocommit: one short transaction
            finally:
                db.close()
            return True
        except (sqlite3.Error, OSError) as exc:
            log.debug("progress of %s not recorded: %s", params[0][:12], exc)
            return False

    def read_progress(self) -> list[ProgressRow]:
        """The runs in training now, oldest first: rows whose run holds a live lease, or (a run
        trained outside the lease, e.g. by a cluster task) was updated within LEASE_TTL_S.
        A row whose run has since been saved, or whose worker died, is left out."""
        rows = self._progress_read(
            "SELECT p.key, p.label, p.worker, p.host, p.epoch, p.epochs, p.loss, p.accuracy, p.images_per_s, "
            "p.started, p.updated, p.pid, l.host, l.pid, l.heartbeat FROM progress p "
            "LEFT JOIN leases l ON l.key = p.key "
            "WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.key = p.key AND r.finished >= p.started) "
            "ORDER BY p.started, p.key", ())
        live = []
        for *fields, pid, lease_host, lease_pid, heartbeat in rows:
            row = ProgressRow(*fields)
            if lease_host is not None:
                dead = self._lease_is_dead(lease_host, lease_pid, heartbeat)
            else:
                dead = pid is None or self._lease_is_dead(row.host, pid, row.updated)
            if not dead:
                live.append(row)
        return live

    def read_finished(self, since: float) -> list[FinishedRun]:
        """The runs saved at or after `since`, in the order they finished."""
        out = []
        for key, config, status, result, reason, finished, worker in self._progress_read(
                "SELECT key, config, status, result, reason, finished, worker FROM runs "
                "WHERE finished >= ? ORDER BY finished, key", (since,)):
            try:
                label = RunConfig.from_dict(json.loads(config)).label()
                res = json.loads(result) if result else {}
            except (ValueError, TypeError, KeyError):
                continue  # a damaged row: lookup() reports it where it matters
            out.append(FinishedRun(key, label, status, reason, res.get("accuracy"), res.get("wall_s"),
                                   res.get("images_per_s"), len(res.get("history") or ()), finished, worker))
        return out

    def _progress_read(self, sql: str, params: tuple) -> list[tuple]:
        """Rows for a progress display; none when the store is missing, locked or lacks the table."""
        if not self.path.exists():
            return []
        try:
            db = self._quick()
            try:
                return db.execute(sql, params).fetchall()
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            log.debug("progress not read: %s", exc)
            return []


def add_progress_schema(db: sqlite3.Connection) -> None:
    """Give a store made before the progress table its table and index. A store this process may
    not write (read-only) keeps working without them."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE name IN ('progress', 'runs_by_finished')")}
    if len(names) == 2:
        return
    try:
        db.executescript(f"BEGIN IMMEDIATE; {PROGRESS_SCHEMA} COMMIT;")
    except sqlite3.OperationalError as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        log.debug("run store without a progress table: %s", exc)


def finite(value: float | None) -> float | None:
    """NaN and infinities as NULL: a diverging run's loss is shown as missing, not stored as text."""
    return float(value) if value is not None and math.isfinite(value) else None
