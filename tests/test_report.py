"""Figures and tables of the report, from synthetic evidence (no training)."""
from pathlib import Path

from harness.verdicts import decide, group_cells
from reports.plugin import draw_figures
from reports.render import render_markdown

PRE = {"kind": "superiority", "test": "paired_t", "alternative": "greater", "alpha": 0.05, "margin": None,
       "min_seeds": 3, "title": "t", "source": "s", "name": "c", "max_seeds": None}


def history(acc):
    return [{"epoch": 1, "train_loss": 1.0, "test_accuracy": None}, {"epoch": 2, "train_loss": 0.5, "test_accuracy": acc}]


def observation(seed):
    runs = [{"key": f"{norm}{seed}", "norm": norm, "history": history(acc), "cached": False, "wall_s": 1.0}
            for norm, acc in (("dataset", 0.8 + seed / 100), ("pretrain", 0.7))]
    return {"claim": "c", "cell": {"model": "m", "dataset": "d"}, "seed": seed, "a_label": "dataset",
            "b_label": "pretrain", "a": 0.8 + seed / 100, "b": 0.7, "failed": [], "runs": runs}


def heat(seed):
    return {"claim": "c", "cell": {"model": "m", "dataset": "d"}, "seed": seed, "kind": "heatmap", "title": "grid",
            "data": {"x_label": "std", "y_label": "mean", "x": [0.1, 1.0], "y": [0.0, 0.5],
                     "z": [[10.0 + seed, 20.0], [30.0, 40.0]], "unit": "accuracy (%)"}}


def table(row):
    return {"claim": "c", "cell": {}, "seed": 0, "kind": "table", "title": "stats",
            "data": {"headers": ["dataset", "std"], "rows": [row]}}


def test_figures_tables_and_markdown(tmp_path: Path):
    cells = group_cells([observation(s) for s in range(3)], {"c": PRE})["c"]
    decide([cells])
    claim = {**PRE, "a_label": "dataset", "b_label": "pretrain", "cells": cells, "count": "1 supported of 1 cell(s)",
             "skipped": {}, "errors": {}, "cost": {"runs": 6, "trained": 6, "cached": 0, "device_seconds": 6.0},
             "extras": [heat(0), heat(2), table(["mnist", 0.3081]), table(["fashion_mnist", 0.353]), table(["mnist", 0.3081])]}
    figures, tables = draw_figures(claim, tmp_path)
    assert [f.name for f in figures] == ["c-curves.png", "c-grid-m-d.png"]
    assert all(f.stat().st_size > 5000 for f in figures)
    stats = next(t for t in tables if t["title"] == "stats")
    assert stats["rows"] == [["mnist", 0.3081], ["fashion_mnist", 0.353]]  # merged across cells, no duplicates
    grid = next(t for t in tables if t["title"].startswith("grid"))
    assert grid["rows"][0] == [0.0, 11.0, 20.0]  # averaged over the two seeds
    claim["figures"], claim["tables"] = figures, tables
    claim["skipped"] = {"resnet18-cifar10": "no CIFAR-10 here; and no resnet18 weights",
                        "resnet50-cifar10": "no CIFAR-10 here", "resnet18-svhn": "no SVHN here; and no resnet18 weights"}
    md = render_markdown({"correction": "Holm across the cells of each claim"}, [claim])
    assert "![c-curves](c-curves.png)" in md and "| mnist" in md and "mean \\ std" in md
    assert ("- resnet18-cifar10, resnet50-cifar10: no CIFAR-10 here\n- resnet18-cifar10, resnet18-svhn: no resnet18 "
            "weights\n- resnet18-svhn: no SVHN here") in md


def test_report_files_are_readable_and_foreign_figures_stay(tmp_path: Path):
    """Only figures an earlier session drew are removed; the written files get the usual
    permissions (a temporary file is private to its owner until it is renamed)."""
    import os

    from reports.plugin import FigureCache, atomic_write

    mine = tmp_path / "photo.png"
    mine.write_bytes(b"not ours")
    cache = FigureCache(tmp_path)
    drawn = tmp_path / "old.png"
    cache.get("old.png", [1], lambda: (drawn.write_bytes(b"figure"), drawn)[1])
    cache.finish()
    later = FigureCache(tmp_path)  # the next session no longer links old.png
    later.finish()
    assert mine.read_bytes() == b"not ours" and not drawn.exists()
    umask = os.umask(0o022)
    try:
        written = atomic_write(tmp_path / "summary.md", "# report\n")
    finally:
        os.umask(umask)
    assert written.read_text() == "# report\n" and written.stat().st_mode & 0o777 == 0o644
