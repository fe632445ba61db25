import platform
import sys

import pytest

from harness.devices import device_for_worker, parse_gpus, visible_gpu_count, worker_index
from harness.errors import UsageError

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"  # where runs keep freed memory


def test_default_is_every_visible_gpu_else_cpu():
    assert parse_gpus(None, 0) == ["cpu"]
    assert parse_gpus(None, 2) == ["cuda:0", "cuda:1"]


def test_explicit_lists():
    assert parse_gpus("cpu", 0) == ["cpu"]
    assert parse_gpus("CPU", 4) == ["cpu"]
    assert parse_gpus("0,1", 2) == ["cuda:0", "cuda:1"]
    assert parse_gpus(" 1 ", 2) == ["cuda:1"]


@pytest.mark.parametrize("value", ["", "0,", "a", "0;1", "-1", "0, 1", "gpu0"])
def test_malformed_lists_are_usage_errors(value):
    with pytest.raises(UsageError, match="expected 'cpu' or a comma list"):
        parse_gpus(value, 2)


def test_missing_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="no CUDA device 7; this machine has no visible GPU"):
        parse_gpus("7", 0)
    with pytest.raises(UsageError, match=r"no CUDA device 2; this machine has only 2 visible GPU\(s\)"):
        parse_gpus("0,2", 2)


def test_workers_are_dealt_round_robin():
    gpus = parse_gpus("0,1", 2)
    assert [device_for_worker(gpus, f"gw{i}") for i in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert device_for_worker(gpus, None) == "cuda:0"
    assert device_for_worker(["cpu"], "gw3") == "cpu"
    assert worker_index("gw12") == 12 and worker_index("master") == 0


def test_cuda_visible_devices_empty_means_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpu_count() == 0


def test_fake_cuda_machine(monkeypatch):
    """Device placement on a machine with 4 GPUs, faked: the count comes from torch.cuda."""
    import torch

    import harness.devices as devices

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices.os.path, "exists", lambda p: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    visible = visible_gpu_count()
    assert visible == 4
    gpus = parse_gpus("2,3", visible)
    assert [device_for_worker(gpus, f"gw{i}") for i in range(3)] == ["cuda:2", "cuda:3", "cuda:2"]


def test_a_cpu_run_sets_only_its_threads_and_keeps_freed_memory(monkeypatch):
    import torch

    from harness.devices import enter_device

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    before = torch.get_num_threads()
    try:
        assert enter_device("cpu", 1) == {"threads": 1, "kept_freed_memory": GLIBC} and torch.get_num_threads() == 1
        assert enter_device("cpu") == {"threads": 1, "kept_freed_memory": GLIBC}  # None keeps the process's setting
    finally:
        torch.set_num_threads(before)
    assert torch.backends.cudnn.benchmark is False


def test_a_cuda_run_makes_its_gpu_current_and_tunes_it(monkeypatch):
    """Faked: worker gw1 of `--gpus 0,1` must make cuda:1 its current device, or its context and
    any default-device allocation land on GPU 0 beside the other workers'."""
    import torch

    from harness.devices import enter_device

    current = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(torch.device(d)))
    flags = (torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "allow_tf32"), (torch.backends.cuda.matmul, "allow_tf32")
    saved = [getattr(obj, name) for obj, name in flags] + [torch.get_num_threads()]
    try:
        for obj, name in flags:
            setattr(obj, name, False)
        settings = enter_device(device_for_worker(parse_gpus("0,1", 2), "gw1"), 1)
        assert [getattr(obj, name) for obj, name in flags] == [True, True, True]
    finally:  # the backends' flags are process-wide
        for (obj, name), value in zip(flags, saved):
            setattr(obj, name, value)
        torch.set_num_threads(saved[-1])
    assert current == [torch.device("cuda:1")]
    assert settings == {"threads": 1, "kept_freed_memory": GLIBC, "cudnn_benchmark": True, "tf32": True}
