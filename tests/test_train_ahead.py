"""A worker waiting for a run that another worker trains lends its core to the item's own runs that
nobody has (harness.plugin.TrainAhead), so items that share runs do not take turns on one core."""
import json
import sqlite3
import threading
import time

from conftest import FASHION_TINY, harness_on_path
from harness.store import RunStore

CLAIM = f'''
import pytest

pytestmark = pytest.mark.claim("shared", title="dataset beats none", source="test",
                               cells=(("lenet", "folder:{FASHION_TINY}"),), min_seeds=2)


def test_shared(finetune, evidence, model, dataset, seed):
    a = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, batch_size=32)
    b = finetune(model=model, dataset=dataset, norm="none", seed=seed, batch_size=32)
    c = finetune(model=model, dataset=dataset, norm="fixed:0.5/0.25", seed=seed, batch_size=32)
    evidence.greater(a, b)
'''


def rows(path) -> list[tuple[str, int, float]]:
    db = sqlite3.connect(path)
    return [(json.loads(c)["norm"], json.loads(c)["seed"], f) for c, f in db.execute("SELECT config, finished FROM runs")]


def test_a_waiting_item_trains_its_other_runs_meanwhile(pytester, monkeypatch):
    harness_on_path(monkeypatch)
    pytester.makepyfile(test_shared_claim=CLAIM)
    session = ("-p", "no:cacheprovider", "--gpus=cpu", "--cpu-threads", "1", "-p", "no:xdist", "--seeds", "2")
    pytester.runpytest_subprocess(*session, "--store", "keys.sqlite").assert_outcomes(passed=2)
    key = sqlite3.connect(pytester.path / "keys.sqlite").execute(
        "SELECT key FROM runs WHERE config LIKE '%\"norm\": \"dataset\"%' AND config LIKE '%\"seed\": 0,%'").fetchone()[0]

    path = pytester.path / "runs.sqlite"
    RunStore(path).lookup(key)  # creates the store
    db = sqlite3.connect(path)
    db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?)", (key, RunStore(path).host, __import__("os").getpid(), "gw9",
                                                            time.time()))
    db.commit()

    def another_worker():  # holds seed 0's dataset run until the waiting item has trained its other runs
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(rows(path)) < 2:
            time.sleep(0.2)
        sqlite3.connect(path).execute("DELETE FROM leases WHERE key = ?", (key,)).connection.commit()

    holder = threading.Thread(target=another_worker)
    holder.start()
    result = pytester.runpytest_subprocess(*session, "--store", "runs.sqlite")
    holder.join()
    result.assert_outcomes(passed=2)
    finished = {(norm, seed): at for norm, seed, at in rows(path)}
    assert len(finished) == 6  # every run once
    # seed 0's other runs were trained while its dataset run was leased elsewhere, before it
    assert finished[("none", 0)] < finished[("dataset", 0)] and finished[("fixed:0.5/0.25", 0)] < finished[("dataset", 0)]
    assert finished[("dataset", 1)] < finished[("none", 1)]  # no wait at seed 1: the test's own order
