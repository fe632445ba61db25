import os
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parent.parent
FASHION_TINY = ROOT / "fixtures" / "fashion_tiny"


def harness_on_path(monkeypatch) -> None:
    """A pytester subprocess imports the harness from this checkout, installed or not."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))


@pytest.fixture
def data_dir(tmp_path_factory) -> Path:
    """A data dir shared by the session's tests (decoded arrays are cached there)."""
    return tmp_path_factory.getbasetemp() / "data"


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture
def network(monkeypatch):
    """network(up): whether download hosts resolve, without asking this machine's DNS."""
    from harness import network as net

    for name in net.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def set_network(up: bool) -> None:
        monkeypatch.setattr(net, "resolves", lambda host: up)

    return set_network


@pytest.fixture
def default_sigint():
    """SIGINT as a fresh Python process has it (raising KeyboardInterrupt), and as it was afterwards.
    Signal handlers are set in the main thread only: elsewhere the test is skipped."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set in the main thread only")
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def pytest_configure(config):
    # the suite runs beside its own xdist workers and nested sessions: one intra-op thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def latest_report(reports: Path) -> Path:
    """The folder with the last session's report: the report dir itself, or its partial/ folder after
    a session of part of the catalogue (a file named, -k), whichever summary.json is newer."""
    partial = reports / "partial"
    if (partial / "summary.json").exists() and (not (reports / "summary.json").exists() or
                                                (partial / "summary.json").stat().st_mtime_ns
                                                >= (reports / "summary.json").stat().st_mtime_ns):
        return partial
    return reports
