"""A claim session without -n gets one xdist worker per core on a CPU-only machine; whatever the
command line says about workers, devices, the backend or training nothing wins."""
import pytest

import harness.workers as workers


@pytest.fixture
def tree(tmp_path, monkeypatch):
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_a.py").write_text("")
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(workers, "available_cores", lambda: 4)
    monkeypatch.setattr(workers.glob, "glob", lambda pattern: [])  # no GPU
    return tmp_path


@pytest.mark.parametrize("args", [["claims/"], ["claims/test_a.py", "-k", "x"], ["claims/test_a.py::test_b"],
                                  ["--profile", "cpu", "claims"]])
def test_a_claim_session_gets_every_core(tree, args):
    assert workers.default_workers(args) == 4


@pytest.mark.parametrize("args", [["claims/", "-n", "1"], ["claims/", "-n0"], ["claims/", "--numprocesses=3"],
                                  ["claims/", "--plan"], ["claims/", "--backend", "ray"], ["claims/", "--gpus", "cpu"],
                                  ["claims/", "-p", "no:xdist"], ["claims/", "--collect-only"], ["tests/"], []])
def test_the_command_line_or_a_session_that_trains_nothing_wins(tree, args):
    assert workers.default_workers(args) is None


def test_one_core_or_a_gpu_or_a_worker_adds_none(tree, monkeypatch):
    monkeypatch.setattr(workers, "available_cores", lambda: 1)
    assert workers.default_workers(["claims/"]) is None
    monkeypatch.setattr(workers, "available_cores", lambda: 4)
    monkeypatch.setattr(workers.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    assert workers.default_workers(["claims/"]) is None
    monkeypatch.setattr(workers.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert workers.default_workers(["claims/"]) is None
