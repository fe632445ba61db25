"""The run store: SQLite in WAL mode, one row per finished run, keyed by RunConfig.key().

Many xdist workers share one file. A lease row makes sure a run requested by two workers at
once is trained once: the first takes the lease and trains, the other waits for the row. A
lease whose owner died (same host, pid gone; or no heartbeat for LEASE_TTL_S) is taken over,
so a killed session never blocks the next one. Rows are written in one transaction each, so
Ctrl-C or kill -9 loses at most the runs still training.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from harness.config import RunConfig, RunRecord, RunResult
from harness.errors import RunFailed, UsageError

SCHEMA_VERSION = 1
LEASE_TTL_S = 180.0  # a lease without a heartbeat for this long belongs to a dead worker
HEARTBEAT_S = 20.0
POLL_S = 0.5

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
"""


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
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout=60000")
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
                db.execute("SELECT key, config, status, result, reason, finished FROM runs LIMIT 1").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"run store {self.path} is not a readable SQLite database ({exc}); move it aside or pass another --store") from None
        self._ready = True

    def _shared(self) -> sqlite3.Connection:
        """This process's long-lived connection for reads (a session looks up hundreds of runs)."""
        if getattr(self, "_reader", None) is None or self._reader_pid != os.getpid():
            self._reader, self._reader_pid = self._connect(), os.getpid()
        return self._reader

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self._open_schema()
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)  # autocommit; explicit BEGINs
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=60000")
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
    ) -> RunRecord:
        """The stored record of `cfg`, training it (once across all workers) if it is missing.

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
                if on_wait and not waited:
                    on_wait(f"waiting for {holder or 'another worker'} to finish {cfg.label()}")
                waited = True
                time.sleep(POLL_S)
            stop = threading.Event()
            beat = threading.Thread(target=self._heartbeat, args=(key, stop), daemon=True)
            beat.start()
            try:
                try:
                    result, status, reason = train(cfg), "ok", None
                except RunFailed as exc:
                    result, status, reason = None, "failed", str(exc)
                finished = self._save(db, key, cfg, status, result, reason)
            finally:
                stop.set()
                db.execute("DELETE FROM leases WHERE key = ? AND pid = ?", (key, os.getpid()))
            return RunRecord(key, cfg, status, result, reason, cached=False, finished=finished, host=self.host,
                             worker=self.worker)
        finally:
            db.close()

    def _save(self, db, key: str, cfg: RunConfig, status: str, result: RunResult | None, reason: str | None) -> float:
        finished = time.time()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT OR REPLACE INTO runs (key, config, status, result, reason, finished, host, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, json.dumps(cfg.to_dict(), sort_keys=True), status,
             json.dumps(result.to_dict()) if result else None, reason, finished, self.host, self.worker),
        )
        db.execute("DELETE FROM leases WHERE key = ?", (key,))
        db.execute("COMMIT")
        return finished
