import os
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parent.parent
FASHION_TINY = ROOT / "fixtures" / "fashion_tiny"


@pytest.fixture
def data_dir(tmp_path_factory) -> Path:
    """A data dir shared by the session's tests (decoded arrays are cached there)."""
    return tmp_path_factory.getbasetemp() / "data"


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-data")


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
