"""PNG figures beside summary.md: accuracy-vs-epoch curves per claim (source 000's Figure 1) and
heat maps of grid scans; the tables the report prints from extras. matplotlib is imported only
when a figure is drawn."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from harness.observations import Extra, Heatmap, Table


@dataclass(frozen=True)
class ReportTable:
    title: str
    headers: tuple
    rows: tuple


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(claim: str, cells: list, out_dir: Path) -> Path | None:
    """One panel per cell: mean test accuracy (solid) and training loss (dashed) per epoch, per norm."""
    panels = []
    for c in cells[:6]:
        by_norm: dict[str, list[list[dict]]] = defaultdict(list)
        for run in c.runs:
            if run.ok and run.result.history:
                by_norm[run.config.norm].append(run.result.history)
        if 0 < len(by_norm) <= 4:  # scans of many norms are shown as heat maps instead
            panels.append((c.cell_id, by_norm))
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, by_norm) in zip(axes[0], panels):
        loss_ax = ax.twinx()
        for k, (norm, histories) in enumerate(sorted(by_norm.items())):
            color = f"C{k}"
            epochs = [h["epoch"] for h in histories[0]]
            acc = np.array([[h["test_accuracy"] if h["test_accuracy"] is not None else np.nan for h in hist]
                            for hist in histories if len(hist) == len(epochs)], dtype=float)
            loss = np.array([[h["train_loss"] for h in hist] for hist in histories if len(hist) == len(epochs)], dtype=float)
            seen = ~np.isnan(acc).all(axis=0)  # epochs that were evaluated
            mean_acc = 100 * np.nanmean(acc[:, seen], axis=0) if seen.any() else []
            ax.plot(np.asarray(epochs)[seen], mean_acc, "o-", color=color, alpha=0.8, label=f"{norm} (n={len(acc)})")
            loss_ax.plot(epochs, loss.mean(axis=0), "--", color=color, alpha=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%), solid")
        loss_ax.set_ylabel("train loss, dashed")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = out_dir / f"{slug(claim)}-curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def heatmap(claim: str, title: str, cell_id: str, data: Heatmap, out_dir: Path, seeds: int = 1) -> Path:
    """A grid of values, averaged over seeds, with each cell's value printed in it."""
    plt = _pyplot()
    z = np.asarray(data.z, dtype=float)
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(data.x)), [f"{v:.3g}" for v in data.x], rotation=45, fontsize=7)
    ax.set_yticks(range(len(data.y)), [f"{v:.3g}" for v in data.y], fontsize=7)
    ax.set_xlabel(data.x_label)
    ax.set_ylabel(data.y_label)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            if np.isfinite(z[i, j]):
                ax.text(j, i, f"{z[i, j]:.0f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, label=data.unit)
    ax.set_title(f"{title}\n{cell_id}, mean of {seeds} seed(s)", fontsize=9)
    fig.tight_layout()
    path = out_dir / f"{slug(claim)}-{slug(title)}-{slug(cell_id)}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def average_heatmaps(extras: list[Extra]) -> list[tuple[str, str, Heatmap, int]]:
    """Heat maps of one (title, cell) averaged over seeds -> (title, cell id, mean heat map, n seeds)."""
    groups: dict[tuple, list[Heatmap]] = defaultdict(list)
    for e in extras:
        if isinstance(e.content, Heatmap):
            groups[(e.title, e.cell.id)].append(e.content)
    out = []
    for (title, cell_id), maps in groups.items():
        z = np.nanmean(np.array([m.z for m in maps], dtype=float), axis=0)
        out.append((title, cell_id, replace(maps[0], z=tuple(map(tuple, z.tolist()))), len(maps)))
    return out


def extra_tables(extras: list[Extra]) -> list[ReportTable]:
    """Heat maps as tables (mean over seeds), and table rows of one title merged without duplicates."""
    tables: dict[str, ReportTable] = {}
    for title, cell_id, data, n in average_heatmaps(extras):
        key = f"{title}, {cell_id}, mean of {n} seed(s) ({data.unit})"
        tables[key] = ReportTable(key, (f"{data.y_label} \\ {data.x_label}", *data.x),
                                  tuple((y, *(round(v, 2) for v in row)) for y, row in zip(data.y, data.z)))
    for e in extras:
        if isinstance(e.content, Table):
            table = tables.setdefault(e.title, ReportTable(e.title, e.content.headers, ()))
            new = tuple(r for r in e.content.rows if r not in table.rows)
            tables[e.title] = replace(table, rows=table.rows + new)
    return sorted(tables.values(), key=lambda t: t.title)
