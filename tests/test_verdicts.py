import pytest

from harness.verdicts import count_line, decide, group_cells


def obs(seed, a, b, cell="m-d", failed=()):
    model, dataset = cell.split("-")
    return {"claim": "c", "cell": {"model": model, "dataset": dataset}, "seed": seed, "a_label": "dataset",
            "b_label": "pretrain", "a": a, "b": b, "failed": list(failed), "runs": []}


def cells_for(rows, alpha=0.05, min_seeds=3):
    cells = group_cells(rows)["c"]
    decide(cells, alpha, min_seeds)
    return {c.cell_id: c for c in cells}


def test_clear_win_is_supported():
    rows = [obs(s, 0.90 + 0.001 * s, 0.85) for s in range(5)]
    cell = cells_for(rows)["m-d"]
    assert cell.verdict == "supported"
    assert cell.a == pytest.approx([90.0, 90.1, 90.2, 90.3, 90.4]) and cell.seeds == [0, 1, 2, 3, 4]
    assert "Holm p" in cell.reason


def test_clear_loss_is_refuted():
    cell = cells_for([obs(s, 0.80 - 0.001 * s, 0.85) for s in range(5)])["m-d"]
    assert cell.verdict == "refuted"
    assert "other way" in cell.reason


def test_noise_is_inconclusive_with_numbers():
    diffs = [0.01, -0.01, 0.005, -0.004, 0.002]
    cell = cells_for([obs(s, 0.85 + d, 0.85) for s, d in enumerate(diffs)])["m-d"]
    assert cell.verdict == "inconclusive"
    assert "95% CI" in cell.reason and "MDE" in cell.reason and "n = 5" in cell.reason


def test_failed_run_makes_the_cell_invalid():
    rows = [obs(s, 0.9, 0.8) for s in range(4)] + [obs(4, None, 0.8, failed=["dataset: non-finite loss"])]
    cell = cells_for(rows)["m-d"]
    assert cell.verdict == "invalid" and "1 failed run(s): dataset: non-finite loss" in cell.reason


def test_too_few_seeds_is_inconclusive():
    cell = cells_for([obs(s, 0.9, 0.8) for s in range(2)])["m-d"]
    assert cell.verdict == "inconclusive" and "needs at least 3" in cell.reason


def test_holm_adjusts_across_cells():
    """A p-value just under alpha in one cell is not enough once there are several cells."""
    diffs = [0.004, 0.001, 0.006, -0.001, 0.005]  # one-sided p ~ 0.04 on its own
    rows = [obs(s, 0.85 + d, 0.85, cell=f"m-d{k}") for k in range(3) for s, d in enumerate(diffs)]
    cells = cells_for(rows)
    for c in cells.values():
        assert c.summary.p_greater < 0.05 and c.p_adjusted > 0.05 and c.verdict == "inconclusive"


def test_duplicate_seed_counts_once_and_count_line():
    rows = [obs(s, 0.9 + 0.01 * s, 0.8) for s in range(3)] + [obs(0, 0.9, 0.8)]
    cells = cells_for(rows)
    assert cells["m-d"].summary.n == 3
    assert count_line(list(cells.values())) == "1 supported of 1 cell(s)"
