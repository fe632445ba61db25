"""Which device each process trains on, and how many CPU threads it may use."""
from __future__ import annotations

import glob
import os
import re

from harness.errors import UsageError


def visible_gpu_count() -> int:
    """CUDA devices this process may use (after CUDA_VISIBLE_DEVICES). Imports torch only where
    an NVIDIA driver is present, so CPU machines answer instantly."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    if not os.path.exists("/proc/driver/nvidia") and not glob.glob("/dev/nvidia[0-9]*"):
        return 0
    import torch

    return torch.cuda.device_count()


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one, e.g. under taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def core_share(cores: int, workers: int, omp_num_threads: str | None = None) -> int:
    """Intra-op threads of one of `workers` processes sharing `cores`: all of them for one process,
    one each for as many workers as cores, never more than OMP_NUM_THREADS where it is set (the
    usual way to tell a process it shares the machine). Oversubscribed cores slow every run."""
    share = max(1, cores // max(1, workers))
    if omp_num_threads and omp_num_threads.strip().isdigit() and int(omp_num_threads) > 0:
        share = min(share, int(omp_num_threads))
    return share


def parse_gpus(value: str | None, visible: int) -> list[str]:
    """--gpus value -> device strings, one per slot that workers are dealt onto.

    None: every visible GPU, else the CPU. "cpu": the CPU. "0,1": cuda:0 and cuda:1, indices
    counted among the GPUs CUDA_VISIBLE_DEVICES leaves visible. A repeated index is allowed
    ("0,0,1" gives GPU 0 two shares of the workers).
    """
    if value is None:
        return [f"cuda:{i}" for i in range(visible)] or ["cpu"]
    text = value.strip().lower()
    if text == "cpu":
        return ["cpu"]
    if not re.fullmatch(r"\d+(,\d+)*", text):
        raise UsageError(f"--gpus {value!r}: expected 'cpu' or a comma list of CUDA indices such as 0,1")
    indices = [int(t) for t in text.split(",")]
    missing = sorted({i for i in indices if i >= visible})
    if missing:
        seen = f"only {visible} visible GPU(s) (indices 0..{visible - 1})" if visible else "no visible GPU"
        raise UsageError(f"--gpus {value}: no CUDA device {', '.join(map(str, missing))}; this machine has {seen}; use --gpus cpu")
    return [f"cuda:{i}" for i in indices]


def worker_index(worker_id: str | None) -> int:
    """xdist's "gw3" -> 3; no xdist -> 0."""
    if not worker_id or worker_id == "master":
        return 0
    match = re.fullmatch(r"gw(\d+)", worker_id)
    return int(match.group(1)) if match else 0


def device_for_worker(devices: list[str], worker_id: str | None) -> str:
    """Worker gwN trains on devices[N mod len]: `-n 4 --gpus 0,1` puts two workers on each GPU."""
    return devices[worker_index(worker_id) % len(devices)]


def enter_device(device: str, threads: int | None = None) -> dict:
    """Set this process up for a run on `device` and return what was set, for the run's record.

    Everywhere: `threads` intra-op threads (None keeps the process's setting); freed memory kept in
    the process (harness.allocator: no page faults for each step's buffers). On CUDA also:
    the run's GPU becomes the current device (otherwise every worker also opens a context on GPU
    0, which costs each one memory there); cuDNN's autotuner, since a run's shapes are fixed and
    the search pays for itself within an epoch; TF32 for the fp32 matmuls autocast leaves.
    """
    import torch

    from harness.allocator import keep_freed_memory

    if threads:
        torch.set_num_threads(threads)
    settings = {"threads": torch.get_num_threads(), "kept_freed_memory": keep_freed_memory()}
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        settings.update(cudnn_benchmark=True, tf32=True)
    return settings
