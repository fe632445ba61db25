"""bench/throughput.py runs end to end at a tiny size and prints every table it promises."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "throughput.py"


def bench(*args: str, script: Path = BENCH, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_benchmark_prints_its_tables():
    out = bench("--models", "resnet18", "--side64", "none", "--workers", "1,2", "--workers-model", "resnet18",
                "--batch", "8", "--steps", "1", "--windows", "1", "--threads", "1",
                "--data-images", "512", "--data-batch", "256", "--data-repeats", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "command: python" in text and "threads 1" in text
    data_row = re.search(r"^\|\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|\s*([\d.]+)x\s*\|$", text, re.M)
    assert data_row and float(data_row.group(3)) > 0
    row = re.search(r"^\| resnet18 @32px\s*\|(.*)\|$", text, re.M)
    assert row, text
    harness, model_only, sources, efficiency, speed_up, peaks = (c.strip() for c in row.group(1).split("|"))
    h, m, s = (float(v.replace(",", "")) for v in (harness, model_only, sources))
    assert min(h, m, s) > 0
    # one round: the median of the within-round ratios is the ratio of the columns
    assert float(efficiency) == pytest.approx(h / m, abs=0.01) and float(speed_up.rstrip("x")) == pytest.approx(h / s, abs=0.01)
    assert len([p for p in peaks.split(" / ") if float(p.replace(",", "")) > 0]) == 3  # one peak per kind
    workers = re.findall(r"^\|\s*(\d)\s*\|\s*(\d+)\s*\|", text, re.M)
    assert [w for w, _ in workers] == ["1", "2"]


def test_bad_models_are_one_line_errors():
    out = bench("--models", "resnet81")
    assert out.returncode == 2 and "did you mean 'resnet18'" in out.stderr.strip().splitlines()[-1]
    out = bench("--models", "lenet")
    assert out.returncode == 2 and "grayscale" in out.stderr and not out.stdout
    out = bench("--windows", "0")
    assert out.returncode == 2 and "at least 1" in out.stderr


ALLOCATOR = BENCH.parent / "allocator.py"


def test_the_allocator_benchmark_prints_its_ratio():
    out = bench("--models", "lenet", "--steps", "2", "--rounds", "1", script=ALLOCATOR)
    assert out.returncode == 0, out.stderr[-2000:]
    row = re.search(r"^\| lenet @28px, batch 64 \| ([\d.]+) \(([\d.]+)\) \| ([\d.]+) \(([\d.]+)\) \| ([\d.]+)x \|$",
                    out.stdout, re.M)
    assert row, out.stdout
    default, kept, ratio = float(row.group(1)), float(row.group(3)), float(row.group(5))
    assert ratio == pytest.approx(default / kept, rel=0.02)


def test_the_allocator_benchmark_names_a_bad_model_in_one_line():
    out = bench("--models", "lenett", script=ALLOCATOR, timeout=120)
    assert out.returncode == 2 and "did you mean 'lenet'" in out.stderr.strip().splitlines()[-1]


EVAL_BATCH_BENCH = BENCH.parent / "eval_batch.py"


def test_the_eval_batch_benchmark_prints_its_ratio_on_the_same_logits():
    out = bench("--models", "lenet", "--rounds", "1", script=EVAL_BATCH_BENCH)
    assert out.returncode == 0, out.stderr[-2000:]
    row = re.search(r"^\| lenet, (\d+) images \| ([\d.]+) \| ([\d.]+) \| yes \| ([\d.]+)x \|$", out.stdout, re.M)
    assert row, out.stdout
    large, small, ratio = float(row.group(2)), float(row.group(3)), float(row.group(4))
    assert int(row.group(1)) > 0 and ratio == pytest.approx(large / small, rel=0.02)  # one round: its own ratio


def test_the_eval_batch_benchmark_names_a_bad_model_in_one_line():
    out = bench("--models", "lenett", script=EVAL_BATCH_BENCH, timeout=120)
    assert out.returncode == 2 and "did you mean 'lenet'" in out.stderr.strip().splitlines()[-1]


FUTILITY_BENCH = BENCH.parent / "futility.py"


def test_the_futility_benchmark_prints_verdict_shares_and_seeds_per_threshold():
    out = bench("--trials", "20", script=FUTILITY_BENCH)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = re.findall(r"^\| ([a-z, 0-9]+) \| ([+-][\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                      out.stdout, re.M)
    assert len(rows) == 3 * 3 * 4, out.stdout  # claims x effects x thresholds
    for i in range(0, len(rows), 4):
        same_cells = rows[i:i + 4]
        assert [float(r[2]) for r in same_cells] == [0.0, 0.05, 0.1, 0.2]
        seeds = [float(r[7]) for r in same_cells]
        assert seeds == sorted(seeds, reverse=True) and 3 <= seeds[-1] <= seeds[0] <= 8  # a stop only saves seeds
        supported = [float(r[3]) for r in same_cells]
        assert supported == sorted(supported, reverse=True)  # and only ever loses verdicts
        assert all(sum(float(v) for v in r[3:7]) == pytest.approx(1, abs=0.003) for r in same_cells)


@pytest.mark.parametrize("script, args, message", [
    (FUTILITY_BENCH, ("--trials", "0"), "--trials must be a positive number of cells"),
    (BENCH.parent / "test_split.py", ("--model", "lenett"), "did you mean 'lenet'"),
    (BENCH.parent / "test_split.py", ("--norms", "dataset"), "--norms takes two normalizations"),
    (BENCH.parent / "test_split.py", ("--seeds", "1"), "--seeds must be at least 2"),
    (BENCH.parent / "test_split.py", ("--norms", "datset,dataset"), "did you mean 'dataset'"),
])
def test_the_statistics_benchmarks_refuse_bad_arguments_in_one_line(script, args, message):
    out = bench(*args, script=script, timeout=120)
    assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1] and not out.stdout
