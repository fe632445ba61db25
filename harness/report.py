"""The report: gathers claim evidence on the controller, decides, writes reports/summary.md.

Registered by harness.plugin on the controller only (an xdist worker has `config.workerinput`):
workers send their reports, with the evidence in user_properties, and only the controller sees
the whole session.
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
from tabulate import tabulate

from harness.options import named_selection
from harness.session import of as session_of
from harness.claims import ClaimSpec
from harness.files import atomic_file
from harness.observations import Cell, Extra, ItemTag, Observation, Ranking, read_report
from harness.render import ClaimReport, Cost, answer_rows
from harness.verdicts import UNTESTED

def budget_regime(claims: list[ClaimReport]) -> str:
    """The header's budget line: how many judged cells their claims accept as fair tests."""
    cells = [c for claim in claims for c in claim.cells if c.verdict not in UNTESTED]
    under = [c for c in cells if c.verdict == "under budget"]
    if not under:
        return f"every judged cell ({len(cells)}) is at or above its claim's fair-test budget"
    return (f"{len(under)} of {len(cells)} judged cells are under their claim's fair-test budget and get no "
            f"verdict (see each claim's 'fair test' line); a larger profile tests them")


def all_runs(claims: list[ClaimReport], rankings=()):
    """Every run behind the claims' cells and the rankings (harness.observations.Ranking), each once."""
    return {**{r.key: r for cl in claims for c in cl.cells for r in c.runs},
            **{r.key: r for ranking in rankings for r in ranking.runs()}}.values()


def compute_line(cost: Cost) -> str:
    """The session's compute, each run counted once however many claims share it."""
    return (f"{cost.runs} runs, {cost.trained} trained this session, {cost.cached} from earlier sessions; "
            f"{cost.device_seconds:.0f} device-seconds")


def thread_counts(runs) -> str:
    """'2 (89 runs)' or '1 (40 runs), 2 (49 runs)': the intra-op thread counts the runs used."""
    counts = Counter(r.result.meta.get("threads") for r in runs if r.ok)
    return ", ".join(f"{t} ({n} runs)" for t, n in sorted(counts.items()) if t is not None) or "no runs"


class Reporter:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.specs: dict[str, ClaimSpec] = {}
        self.tags: dict[tuple[str, object], ItemTag] = {}  # (claim, cell) -> a tag of its items
        self.observations: dict[tuple[str, int], Observation] = {}  # (nodeid, index in the report) -> observation
        self.rankings: dict[tuple[str, int], Ranking] = {}  # the same, for ranking claims (harness.recommend)
        self.recommendations: list[tuple[str, object]] = []  # (claim/cell, Recommendation)
        self.skipped: dict[str, dict[Cell, tuple[str, ...]]] = defaultdict(dict)  # claim -> cell -> reasons
        self.errors: dict[str, dict[str, str]] = defaultdict(dict)
        self.extras: dict[str, dict[tuple, Extra]] = defaultdict(dict)  # claim -> (title, cell, seed) -> extra
        self.claims: list[ClaimReport] | None = None
        self.paths: list[Path] = []
        self.requests: list[tuple[str, str, object]] = []  # --plan: (claim, cell id, RunRequest)
        self.plan_text: str | None = None
        self.partial: str | None = None  # why the session ran part of the catalogue (harness.report.partial_session)

    # ------------------------------------------------------------ collecting
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payloads = read_report(report)
        if report.when == "call":
            for extra in payloads.extras:
                self.extras[extra.claim][(extra.title, extra.cell, extra.seed)] = extra
        tag = payloads.tag
        if tag is None:
            return
        name, cell_id = tag.spec.name, tag.cell.id
        self.specs.setdefault(name, tag.spec)
        self.tags.setdefault((name, tag.cell), tag)
        for requests in payloads.requests:
            self.requests += [(name, cell_id, r) for r in requests.requests]
        if report.when == "call" or (report.when == "setup" and report.skipped):
            for i, obs in enumerate(payloads.observations):
                self.observations[(report.nodeid, i)] = obs
            for i, ranking in enumerate(payloads.rankings):
                self.rankings[(report.nodeid, i)] = ranking
        if report.skipped:
            if payloads.skip is not None:
                reasons = payloads.skip.reasons
            else:
                text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                reasons = (text.removeprefix("Skipped: "),)
            self.skipped[name][tag.cell] = reasons
        elif report.failed and not payloads.observations:
            message = getattr(report.longrepr, "reprcrash", None)
            text = message.message if message is not None else str(report.longrepr).splitlines()[-1]
            self.errors[name].setdefault(cell_id, f"{report.when} failed for seed {tag.seed}: {text}")

    # ------------------------------------------------------------ deciding and writing
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.specs:
            return  # no claim ran (e.g. the harness's own tests): leave the report alone
        from harness.verdicts import decide, group_cells

        if session_of(self.config).settings.plan:
            self.write_plan()
            return

        self.recommendations = self.recommend()
        pairwise = {name: spec for name, spec in self.specs.items() if spec.kind != "ranking"}
        grouped = group_cells(list(self.observations.values()), pairwise)
        profile_seeds = session_of(self.config).settings.profile.seeds
        for cells in grouped.values():
            for c in cells:
                tag = self.tags.get((c.spec.name, c.cell))
                c.family_size = tag.family_size if tag is not None else None
                if tag is not None and tag.sequential:
                    c.sequential_family = tag.family_size
                else:
                    c.exploratory = len(c.seeds) > c.spec.planned_seeds(profile_seeds)
        by_claim = {name: sorted(grouped.get(name, []), key=lambda c: c.cell_id) for name in sorted(pairwise)}
        scope = self.config.getoption("--correction")
        families = list(by_claim.values()) if scope == "claim" else [[c for cells in by_claim.values() for c in cells]]
        decide(families)
        claims = []
        for name, cells in by_claim.items():
            runs = {r.key: r for c in cells for r in c.runs}.values()
            decided = {c.cell_id for c in cells}
            claims.append(ClaimReport(
                spec=self.specs[name], cells=cells,
                skipped={k: v for k, v in self.skipped[name].items() if k.id not in decided},
                errors=dict(self.errors[name]), extras=list(self.extras[name].values()),
                cost=self.cost(runs),
            ))
        self.claims = claims
        self.partial = partial_session(self.config, session, exitstatus)
        self.write(self.header(claims), claims)
        if any(c.verdict == "refuted" for claim in claims for c in claim.cells) and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a refuted claim fails the session

    def recommend(self) -> list[tuple[str, object]]:
        """The ranking claims' decisions, per cell (harness.recommend); a cell without usable seeds
        says why in its decision."""
        from harness.recommend import decide_cell

        by_cell: dict[tuple[str, Cell], dict[int, Ranking]] = defaultdict(dict)
        for ranking in self.rankings.values():
            by_cell[(ranking.claim, ranking.cell)][ranking.seed] = ranking
        out = []
        for (name, cell), seeds in sorted(by_cell.items(), key=lambda kv: (kv[0][0], kv[0][1].id)):
            tag = self.tags.get((name, cell))
            rows = list(seeds.values())
            if all(r.failures() for r in rows):
                continue  # every seed failed: the item's failure says why
            out.append((cell.id, decide_cell(rows, self.specs[name], sequential=bool(tag and tag.sequential))))
        return out

    def cost(self, runs) -> Cost:
        """The compute behind `runs`: a run counts as trained this session when its row was written
        after the session started, whichever claim or backend asked first, so a run shared by several
        claims counts the same in each, locally and on Ray."""
        start = session_of(self.config).start
        runs = list(runs)
        trained = sum(r.finished is not None and r.finished >= start for r in runs)
        return Cost(runs=len(runs), trained=trained, cached=len(runs) - trained,
                    device_seconds=sum(r.result.wall_s for r in runs if r.result))

    def write_plan(self) -> None:
        """--plan: the runs per claim and cell, their cost and the seeds each claim needs."""
        from harness.plan import group_requests, render_plan, seeds_for_claim
        from harness.verdicts import observation_diffs
        settings = session_of(self.config).settings
        by_cell: dict[tuple, list] = defaultdict(list)
        for obs in {(o.claim, o.cell, o.seed): o for o in self.observations.values()}.values():
            if obs.measured():
                by_cell[(obs.claim, obs.cell)].append(obs)
        diffs = {key: observation_diffs(rows)[0] for key, rows in by_cell.items()}
        families = {tag.spec.name: tag.family_size for tag in self.tags.values()}
        seeds = {name: seeds_for_claim(spec, [d for (claim, _), d in diffs.items() if claim == name], families[name])
                 for name, spec in self.specs.items()}
        seeds_text = "auto (each claim's plan)" if settings.sequential else settings.seeds
        header = (f"Profile {settings.profile.name} ({settings.profile.description}); seeds {seeds_text}; "
                  f"store {settings.store_path}; nothing was trained.")
        self.plan_text = render_plan(header, group_requests(self.requests), session_of(self.config).store.measured_rates(),
                                     seeds, {claim: {c.id: r for c, r in by_cell.items()}
                                             for claim, by_cell in self.skipped.items()})
        out_dir = Path(self.config.rootpath) / self.config.getoption("--report-dir")
        self.paths = [atomic_write(out_dir / "plan.md", self.plan_text)]

    def deferred(self) -> list[tuple[str, str, str, str]]:
        """(claim or claim/cell, why, the command that runs it, the one that prices it) for what the
        profile left out."""
        out = []
        for name, (path, rule) in sorted(session_of(self.config).deferred.items()):
            run = f"pytest {path} --profile {rule.profile}"
            out.append((name, rule.why, run, f"{run} --plan"))
        return out

    def header(self, claims: list[ClaimReport]) -> dict:
        settings = session_of(self.config).settings
        runs = list(all_runs(claims, self.rankings.values()))
        run_devices = sorted({r.result.device for r in runs if r.ok})
        return {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(self.config.rootpath),
            "torch": package_version("torch"),
            "torchvision": package_version("torchvision"),
            "cuda": cuda_version(runs),
            "devices": ", ".join(run_devices) or ", ".join(settings.devices),
            # a run's numbers depend on its thread count (recorded per run, not part of its identity)
            "threads per run": thread_counts(runs),
            "compute": compute_line(self.cost(runs)),
            "profile": f"{settings.profile.name} ({settings.profile.description})",
            "budget": budget_regime(claims),
            "seeds": (f"auto: each claim's sequential plan, {settings.seeds} for a claim without one"
                      if settings.sequential else settings.seeds),
            "python": platform.python_version(),
            "host": platform.node(),
            "store": str(settings.store_path),
            "correction": ("Holm across the cells of each claim" if self.config.getoption("--correction") == "claim"
                           else "Holm across every cell of the session"),
        }

    def write(self, header: dict, claims: list[ClaimReport]) -> None:
        from harness.changes import changes_json, compare, load_previous, render_changes
        from harness.figures import extra_tables
        from harness.junit import write_junit
        from harness.render import render_markdown, summary_json

        full_dir = Path(self.config.rootpath) / self.config.getoption("--report-dir")
        # a session of part of the catalogue writes beside the full report, never over it
        out_dir = full_dir / PARTIAL_DIR if self.partial else full_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        previous = load_previous(full_dir)  # the full report's, read before this session's replaces it
        drawn = FigureCache(out_dir)
        for claim in claims:
            claim.figures = draw_figures(claim, out_dir, drawn)
            claim.tables = extra_tables(claim.extras)
        drawn.finish()
        data = clean(summary_json(header, claims))
        data["recommendation"] = clean([{"cell": cell, **rec.to_dict()} for cell, rec in self.recommendations])
        changes = compare(previous, data, partial=bool(self.partial))
        deferred = self.deferred()
        data["deferred"] = [{"claim": name, "why": why, "run": run, "cost": cost} for name, why, run, cost in deferred]
        data["changes"] = changes_json(changes)  # the previous verdicts this report compared against
        note = ([f"> A partial session ({self.partial}): this report holds only the cells it ran. The full report "
                 f"stays in `{full_dir.name}/summary.md`; the changes below are against it.", ""] if self.partial else [])
        self.paths = [atomic_write(out_dir / "summary.md", render_markdown(header, claims, note + render_changes(changes),
                                                                         deferred, self.recommendations)),
                      atomic_write(out_dir / "summary.json", json.dumps(data, indent=1)),
                      write_junit(out_dir / "verdicts.xml", data)]

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        tr = terminalreporter
        if self.plan_text is not None:
            tr.section("normclaims plan")
            for line in self.plan_text.splitlines()[2:]:
                tr.write_line(line)
            tr.write_line(f"plan: {self.paths[0]}")
            return
        if self.claims is None:
            return
        tr.section("normclaims verdicts")
        for claim in self.claims:
            tr.write_line(f"{claim.spec.name}: {claim.count}")
            for c in claim.cells:
                tr.write_line(f"  {c.verdict:<12} {c.cell_id}: {c.reason}")
            if claim.skipped:
                tr.write_line(f"  skipped: {len(claim.skipped)} cell(s), reasons in the report")
        for name, why, run, _ in self.deferred():
            tr.write_line(f"not in this session: {name} ({why}): {run}")
        rows = [[name, cell, verdict, effect] for name, _, cell, verdict, effect, _ in answer_rows(self.claims, link=False)]
        if rows:  # the answers last, where the terminal leaves the reader
            tr.section("normclaims answers")
            for line in tabulate(rows, headers=["claim", "cell", "verdict", "a − b [interval], pt"]).splitlines():
                tr.write_line(line)
        if self.recommendations:  # the user's own question, answered last
            tr.section("normclaims recommendation")
            for cell, rec in self.recommendations:
                tr.write_line(f"{cell}: {rec.words()} ({rec.seeds} seeds)")
        for path in self.paths:
            tr.write_line(f"report: {path}")


PARTIAL_DIR = "partial"  # under the report dir: the report of a session of part of the catalogue


def partial_session(config: pytest.Config, session: pytest.Session, exitstatus: int) -> str | None:
    """Why this session ran only part of what its command line covers (None: it ran all of it):
    interrupted (Ctrl-C, -x, a crash), or a selection narrower than whole folders (a file or test
    named, -k, -m, --models, --datasets)."""
    if exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop or session.shouldfail:
        return "interrupted"
    if config.getoption("--models") or config.getoption("--datasets"):
        return "--models or --datasets"
    return named_selection(config)


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


def draw_figures(claim: ClaimReport, out_dir: Path, cache: "FigureCache | None" = None) -> list[Path]:
    """Curves and heat maps of one claim as PNG files in out_dir, each redrawn only when its data changed."""
    from harness.figures import average_heatmaps, curves, heatmap, slug

    cache = cache or FigureCache(out_dir)
    name = claim.spec.name
    figures = []
    curve_data = [(c.cell_id, sorted((r.key, r.config.norm, r.result.history if r.ok else None) for r in c.runs))
                  for c in claim.cells]
    path = cache.get(f"{slug(name)}-curves.png", curve_data, lambda: curves(name, claim.cells, out_dir))
    if path:
        figures.append(path)
    for title, cell_id, data, n in average_heatmaps(claim.extras):
        figure = f"{slug(name)}-{slug(title)}-{slug(cell_id)}.png"
        figures.append(cache.get(figure, [data.__dict__, n], lambda: heatmap(name, title, cell_id, data, out_dir, seeds=n)))
    return figures


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


def cuda_version(runs) -> str:
    versions = sorted({r.result.meta.get("cuda") for r in runs
                       if r.ok and r.result.device.startswith("cuda") and r.result.meta.get("cuda")})
    return ", ".join(versions) if versions else "not used (CPU runs)"
