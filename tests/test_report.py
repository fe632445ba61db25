"""Figures and tables of the report, from synthetic evidence (no training)."""
from pathlib import Path

from factories import cell, record, spec
from harness.figures import extra_tables
from harness.observations import Arm, Extra, Heatmap, Observation, Table
from harness.render import ClaimReport, Cost, render_markdown
from harness.report import draw_figures
from harness.verdicts import decide, group_cells


def history(acc):
    return [{"epoch": 1, "train_loss": 1.0, "test_accuracy": None}, {"epoch": 2, "train_loss": 0.5, "test_accuracy": acc}]


def observation(seed):
    a, b = (record(norm, acc, seed, history(acc)) for norm, acc in (("dataset", 0.8 + seed / 100), ("pretrain", 0.7)))
    return Observation("c", cell(), seed, Arm.of_run(a), Arm.of_run(b))


def heat(seed):
    return Extra("c", cell(), seed, "grid", Heatmap("std", "mean", (0.1, 1.0), (0.0, 0.5), ((10.0 + seed, 20.0), (30.0, 40.0))))


def table(row):
    return Extra("c", cell(), 0, "stats", Table(("dataset", "std"), (row,)))


def test_figures_tables_and_markdown(tmp_path: Path):
    cells = group_cells([observation(s) for s in range(3)], {"c": spec()})["c"]
    decide([cells])
    claim = ClaimReport(spec(), cells, {}, {}, [heat(0), heat(2), table(("mnist", 0.3081)), table(("fashion_mnist", 0.353)),
                                             table(("mnist", 0.3081))], Cost(6, 6, 0, 6.0))
    figures = draw_figures(claim, tmp_path)
    assert [f.name for f in figures] == ["c-curves.png", "c-grid-m-d.png"]
    assert all(f.stat().st_size > 5000 for f in figures)
    tables = extra_tables(claim.extras)
    stats = next(t for t in tables if t.title == "stats")
    assert stats.rows == (("mnist", 0.3081), ("fashion_mnist", 0.353))  # merged across cells, no duplicates
    grid = next(t for t in tables if t.title.startswith("grid"))
    assert grid.rows[0] == (0.0, 11.0, 20.0)  # averaged over the two seeds
    claim.figures, claim.tables = figures, tables
    claim.skipped = {cell("resnet18-cifar10"): ("no CIFAR-10 here", "no resnet18 weights"),
                     cell("resnet50-cifar10"): ("no CIFAR-10 here",), cell("resnet18-svhn"): ("no SVHN here", "no resnet18 weights")}
    md = render_markdown({"correction": "Holm across the cells of each claim"}, [claim])
    assert "![c-curves](c-curves.png)" in md and "| mnist" in md and "mean \\ std" in md
    assert ("- resnet18-cifar10, resnet50-cifar10: no CIFAR-10 here\n- resnet18-cifar10, resnet18-svhn: no resnet18 "
            "weights\n- resnet18-svhn: no SVHN here") in md


def test_report_files_are_readable_and_foreign_figures_stay(tmp_path: Path):
    """Only figures an earlier session drew are removed; the written files get the usual
    permissions (a temporary file is private to its owner until it is renamed)."""
    import os

    from harness.report import FigureCache, atomic_write

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


def test_the_sources_figures_stand_beside_ours_also_for_skipped_cells():
    from harness.render import summary_json

    claim = ClaimReport(spec("dataset_stats", cells=(("resnet18", "cifar10"),)), [],
                        {cell("resnet18-cifar10"): ("no CIFAR-10 here",)}, {}, [], Cost(0, 0, 0, 0.0))
    md = render_markdown({"correction": "Holm"}, [claim])
    assert "Source 000 Table 2: best-epoch test accuracy" in md
    rows = {r[0]: r for r in ([c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines()
                              if line.startswith("| ") and "-" in line.split("|")[1])}
    assert rows["resnet18-cifar10"] == ["resnet18-cifar10", "87.88", "87.98", "-0.10", "skipped here", "–"]
    # the source's cells this session has no cell for stand there too: 000's other rows, 001's Intel scenes
    assert rows["resnet50-svhn"][1:5] == ["94.39", "94.48", "-0.09", "no such cell in this session"]
    assert rows["resnet34-intel_image_classification"][1:5] == ["–", "–", "–", "no such cell in this session"]
    assert "Source 001 exp. 1.2: read off a test-accuracy-per-epoch curve" in md
    data = summary_json({}, [claim])["claims"][0]
    assert data["skipped"]["resnet18-cifar10"]["reasons"] == ["no CIFAR-10 here"]
    assert data["skipped"]["resnet18-cifar10"]["source"]["a"] == 87.88
    figures = {f["cell"]: f for f in data["source_figures"]}
    assert len(figures) == 16 + 2 and figures["resnet18-cifar10"]["in_session"]
    assert not figures["resnet50-svhn"]["in_session"] and figures["resnet50-svhn"]["b"] == 94.48


def test_the_best_epoch_stands_beside_a_source_that_read_it():
    """000 read its best epoch; ours is the final one. The source table shows both of ours, the best
    epoch flagged as not the verdict's metric."""
    import dataclasses

    def run(norm, final, best, seed):
        r = record(norm, final, seed, history(final))
        return dataclasses.replace(r, result=dataclasses.replace(r.result, best_accuracy=best))

    where = cell("resnet18-cifar10")
    obs = [Observation("dataset_stats", where, s, Arm.of_run(run("dataset", 0.80 + s / 100, 0.85, s)),
                       Arm.of_run(run("pretrain", 0.79, 0.82, s))) for s in range(3)]
    claim = spec("dataset_stats", cells=(("resnet18", "cifar10"),))
    cells = group_cells(obs, {"dataset_stats": claim})["dataset_stats"]
    decide([cells])
    assert len(cells[0].best_diffs) == 3 and all(abs(d - 3.0) < 1e-9 for d in cells[0].best_diffs)
    md = render_markdown({"correction": "Holm"}, [ClaimReport(claim, cells, {}, {}, [], Cost(6, 6, 0, 6.0))])
    assert "ours a − b at the best epoch (not the verdict's metric)" in md
    row = next(line for line in md.splitlines() if line.startswith("| resnet18-cifar10") and "+3.00" in line)
    assert "+2.00 (" in row  # the final epoch's mean difference, with its verdict


def test_the_report_says_why_a_claim_has_its_margin_or_none():
    from harness.render import hypothesis

    empty = Cost(0, 0, 0, 0.0)
    with_margin = ClaimReport(spec("e", kind="equivalence", margin=1.0, margin_why="the source's gaps"), [], {}, {}, [], empty)
    without = ClaimReport(spec("s", margin_why="the source states a direction only"), [], {}, {}, [], empty)
    assert hypothesis(with_margin).endswith("Margin 1.0 pt: the source's gaps.")
    assert hypothesis(without).endswith("No margin: the source states a direction only.")
    assert "margin" not in hypothesis(ClaimReport(spec("t"), [], {}, {}, [], empty)).lower()


def test_the_source_column_gives_value_metric_and_budget():
    from harness.render import source_text
    from harness.source_figures import figure_for

    assert source_text(figure_for("dataset_stats", "resnet18", "cifar10")) == (
        "87.88 vs 87.98 (-0.10), 000 Table 2 (best of 100 epochs, picked on the test set; 1 seed; full data)")
    assert source_text(figure_for("point_values", "lenet", "mnist")) == "002 LeNet/MNIST (no number in its text)"
    assert source_text(None) == "–"


def test_the_answers_name_each_source_briefly_and_its_sections_give_the_rest():
    """The answers table fits a screen: the claim's title with its source's name, and the source's
    number without its metric and budget, which the claim's own table gives."""
    from harness.render import answer_rows

    one = ClaimReport(spec("fixres_low_res", title="training at r is as good", source="004; Touvron et al. 2019",
                           cells=(("efficientnet_lite0", "fashion_mnist"),)), [], {}, {}, [], Cost(0, 0, 0, 0.0))
    words = ClaimReport(spec("fixres_bn", title="the last BatchNorm adds", source="004 (ablation); Touvron et al. 2019",
                             cells=(("efficientnet_lite0", "fashion_mnist"),)), [], {}, {}, [], Cost(0, 0, 0, 0.0))
    many = ClaimReport(spec("dataset_stats", cells=(("resnet18", "cifar10"),)), [],
                       {cell("resnet18-cifar10"): ("no CIFAR-10 here",)}, {}, [], Cost(0, 0, 0, 0.0))
    for claim in (one, words, many):
        claim.cells = group_cells([observation(s) for s in range(3)], {"c": claim.spec})["c"]
    rows = {r[0]: r for r in answer_rows([one, words, many], link=False)}
    assert rows["fixres_low_res"][1] == "training at r is as good (004)"
    assert rows["fixres_low_res"][5] == "77.10 vs 77.10 (+0.00), 004"  # one figure, as printed
    assert rows["fixres_bn"][1] == "the last BatchNorm adds (004)" and rows["fixres_bn"][5] == "words only (004)"
    assert rows["dataset_stats"][5].startswith("a − b ") and rows["dataset_stats"][5].endswith("figure(s) (000 Table 2, 001 exp. 1.2)")
    md = render_markdown({"correction": "Holm"}, [one])
    assert "Source 004 (Touvron et al. 2019, Section 5.1): top-1 ImageNet val" in md  # the claim's section: the rest
