"""The report plugin: gathers claim evidence on the controller, decides, writes reports/summary.md.

Registered only on the controller (an xdist worker has `config.workerinput`): workers send their
reports, with the evidence in user_properties, and only the controller sees the whole session.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import platform
import subprocess
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

import pytest

from harness.evidence import CELL_TAG, EXTRA, OBSERVATION
from harness.files import atomic_file
from harness.plugin import SETTINGS

REPORTER = pytest.StashKey["Reporter"]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    reporter = Reporter(config)
    config.stash[REPORTER] = reporter
    config.pluginmanager.register(reporter, "normclaims-reporter")


def thread_counts(claims: list[dict]) -> str:
    """'2 (89 runs)' or '1 (40 runs), 2 (49 runs)': the intra-op thread counts the runs used."""
    runs = {r["key"]: r.get("threads") for cl in claims for c in cl["cells"] for r in c.runs if r.get("key")}
    counts = Counter(t for t in runs.values() if t is not None)
    return ", ".join(f"{t} ({n} runs)" for t, n in sorted(counts.items())) or "no runs"


class Reporter:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.claims: dict[str, dict] = {}  # claim name -> its pre-registration (from the cell tags)
        self.observations: dict[tuple[str, int], dict] = {}  # (nodeid, relation index) -> observation
        self.skipped: dict[str, dict[str, str]] = defaultdict(dict)  # claim -> cell id -> reason
        self.errors: dict[str, dict[str, str]] = defaultdict(dict)
        self.extras: dict[str, dict[tuple, dict]] = defaultdict(dict)  # claim -> (title, cell, seed) -> extra
        self.result: dict | None = None
        self.paths: list[Path] = []

    # ------------------------------------------------------------ collecting
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tag, observations = None, []
        for name, value in report.user_properties:
            if name == CELL_TAG:
                tag = json.loads(value)
            elif name == OBSERVATION:
                observations.append(json.loads(value))
            elif name == EXTRA and report.when == "call":
                extra = json.loads(value)
                where = (extra["title"], json.dumps(extra["cell"]), extra["seed"], json.dumps(extra["data"].get("key")))
                self.extras[extra["claim"]][where] = extra
        if tag is None:
            return
        self.claims.setdefault(tag["claim"], tag)
        cell_id = "-".join(str(v) for v in tag["cell"].values())
        if report.when == "call" or (report.when == "setup" and report.skipped):
            for i, obs in enumerate(observations):
                self.observations[(report.nodeid, i)] = obs
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skipped[tag["claim"]][cell_id] = reason.removeprefix("Skipped: ")
        elif report.failed and not observations:
            message = getattr(report.longrepr, "reprcrash", None)
            text = message.message if message is not None else str(report.longrepr).splitlines()[-1]
            self.errors[tag["claim"]].setdefault(cell_id, f"{report.when} failed for seed {tag['seed']}: {text}")

    # ------------------------------------------------------------ deciding and writing
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.claims:
            return  # no claim ran (e.g. the harness's own tests): leave the report alone
        from harness.verdicts import count_line, decide, group_cells

        preregs = {name: {k: v for k, v in tag.items() if k not in ("cell", "seed")} for name, tag in self.claims.items()}
        grouped = group_cells(list(self.observations.values()), preregs)
        by_claim = {name: sorted(grouped.get(name, []), key=lambda c: c.cell_id) for name in sorted(self.claims)}
        scope = self.config.getoption("--correction")
        families = [cells for cells in by_claim.values()] if scope == "claim" else [
            [c for cells in by_claim.values() for c in cells]]
        decide(families)
        claims = []
        for name, cells in by_claim.items():
            runs = {r["key"]: r for c in cells for r in c.runs}
            claims.append({
                **preregs[name],
                "name": name,
                "a_label": cells[0].a_label if cells else "a",
                "b_label": cells[0].b_label if cells else "b",
                "cells": cells,
                "count": count_line(cells),
                "skipped": {k: v for k, v in self.skipped[name].items() if k not in {c.cell_id for c in cells}},
                "errors": dict(self.errors[name]),
                "extras": list(self.extras[name].values()),
                "cost": {
                    "runs": len(runs),
                    "trained": sum(not r["cached"] for r in runs.values()),
                    "cached": sum(bool(r["cached"]) for r in runs.values()),
                    "device_seconds": sum(r["wall_s"] or 0 for r in runs.values()),
                },
            })
        self.result = {"header": self.header(claims), "claims": claims}
        self.write(self.result)
        if any(c.verdict == "refuted" for claim in claims for c in claim["cells"]) and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a refuted claim fails the session

    def header(self, claims: list[dict]) -> dict:
        settings = self.config.stash[SETTINGS]
        run_devices = sorted({r["device"] for cl in claims for c in cl["cells"] for r in c.runs if r.get("device")})
        return {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(self.config.rootpath),
            "torch": package_version("torch"),
            "torchvision": package_version("torchvision"),
            "cuda": cuda_version(claims),
            "devices": ", ".join(run_devices) or ", ".join(settings.devices),
            # a run's numbers depend on its thread count (recorded per run, not part of its identity)
            "threads per run": thread_counts(claims),
            "profile": f"{settings.profile.name} ({settings.profile.description})",
            "seeds": settings.seeds,
            "python": platform.python_version(),
            "host": platform.node(),
            "store": str(settings.store_path),
            "correction": ("Holm across the cells of each claim" if self.config.getoption("--correction") == "claim"
                           else "Holm across every cell of the session"),
        }

    def write(self, result: dict) -> None:
        from reports.render import cell_json, render_markdown

        out_dir = Path(self.config.rootpath) / self.config.getoption("--report-dir")
        out_dir.mkdir(parents=True, exist_ok=True)
        drawn = FigureCache(out_dir)
        for claim in result["claims"]:
            claim["figures"], claim["tables"] = draw_figures(claim, out_dir, drawn)
        drawn.finish()
        md = render_markdown(result["header"], result["claims"])
        data = {"header": result["header"], "claims": [
            {**{k: v for k, v in c.items() if k not in ("cells", "figures")}, "cells": [cell_json(x) for x in c["cells"]],
             "figures": [str(p.name) for p in c["figures"]]}
            for c in result["claims"]]}
        self.paths = [atomic_write(out_dir / "summary.md", md),
                      atomic_write(out_dir / "summary.json", json.dumps(clean(data), indent=1))]

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        if self.result is None:
            return
        tr = terminalreporter
        tr.section("normclaims verdicts")
        for claim in self.result["claims"]:
            tr.write_line(f"{claim['name']}: {claim['count']}")
            for c in claim["cells"]:
                tr.write_line(f"  {c.verdict:<12} {c.cell_id}: {c.reason}")
            if claim["skipped"]:
                tr.write_line(f"  skipped: {len(claim['skipped'])} cell(s), reasons in the report")
        for path in self.paths:
            tr.write_line(f"report: {path}")


class FigureCache:
    """Redraw a figure only when its data changed (a cached session draws nothing), and remove
    the figures that earlier sessions drew (listed in the index) and this one no longer links;
    any other file in the report dir is left alone."""

    def __init__(self, out_dir: Path):
        self.index_path = out_dir / ".figures.json"
        try:
            self.index = json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            self.index = {}
        self.out_dir, self.kept = out_dir, {}

    def get(self, name: str, data, draw) -> Path | None:
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        path = self.out_dir / name
        if self.index.get(name) != digest or not path.is_file():
            path = draw()
            if path is None:
                return None
        self.kept[path.name] = digest
        return path

    def finish(self) -> None:
        for name in set(self.index) - set(self.kept):
            if "/" not in name and name.endswith(".png"):  # the index is ours, but only ever names figures
                (self.out_dir / name).unlink(missing_ok=True)
        atomic_write(self.index_path, json.dumps(self.kept, indent=1))


def draw_figures(claim: dict, out_dir: Path, cache: "FigureCache | None" = None) -> tuple[list[Path], list[dict]]:
    """Curves and heat maps as PNG files in out_dir; tables (deduplicated by title) for the Markdown."""
    from reports.figures import average_heatmaps, curves, heatmap, slug

    cache = cache or FigureCache(out_dir)
    figures = []
    curve_data = [(c.cell_id, sorted((r["key"], r["norm"], r.get("history")) for r in c.runs)) for c in claim["cells"]]
    path = cache.get(f"{slug(claim['name'])}-curves.png", curve_data, lambda: curves(claim["name"], claim["cells"], out_dir))
    if path:
        figures.append(path)
    tables: dict[str, dict] = {}
    for title, cell_id, data, n in average_heatmaps(claim["extras"]):
        name = f"{slug(claim['name'])}-{slug(title)}-{slug(cell_id)}.png"
        figures.append(cache.get(name, [data, n], lambda: heatmap(claim["name"], title, cell_id, data, out_dir, seeds=n)))
        key = f"{title}, {cell_id}, mean of {n} seed(s) ({data.get('unit', '')})"
        tables[key] = {"title": key, "headers": [f"{data['y_label']} \\ {data['x_label']}", *data["x"]],
                       "rows": [[y, *(round(v, 2) for v in row)] for y, row in zip(data["y"], data["z"])]}
    for e in claim["extras"]:  # rows of one title, from any cell or seed, make one table
        if e["kind"] == "table":
            table = tables.setdefault(e["title"], {"title": e["title"], "headers": e["data"]["headers"], "rows": []})
            table["rows"] += [r for r in e["data"]["rows"] if r not in table["rows"]]
    return figures, sorted(tables.values(), key=lambda t: t["title"])


def clean(value):
    """JSON without NaN: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def atomic_write(path: Path, text: str) -> Path:
    with atomic_file(path, "w") as tmp:
        tmp.write(text)
    return path


def git_commit(root) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return "unknown (not a git checkout)"
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cuda_version(claims: list[dict]) -> str:
    versions = sorted({r["cuda"] for cl in claims for c in cl["cells"] for r in c.runs
                       if (r.get("device") or "").startswith("cuda") and r.get("cuda")})
    return ", ".join(versions) if versions else "not used (CPU runs)"
