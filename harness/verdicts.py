"""From paired observations to one verdict per cell, by written rules.

Each cell pools its seeds: d = a - b in accuracy points, one value per seed. The claim's
pre-registration (harness.claims) fixes the kind, the test, alpha and the margin m. Every
decision, for the claim or against it, is a one-sided test of the claim's own kind (the t-test,
Wilcoxon or the sign-flip test), Holm-adjusted across the family (the cells of one claim, or
every cell of the session) and compared with the claim's alpha:

superiority    supported   d > 0 (two-sided claims: the two-sided test, its own statistic leaning to d > 0)
               refuted     d < 0, by the same test (two-sided claims: the two-sided test, leaning to d < 0)
               negligible  d < m, when a margin is stated: a difference too small to matter is not a
                           refutation (a true small effect is never "refuted"). Where d > 0 and d < m
                           are both established the cell is "supported" and says both.
equivalence    supported   -m < d < m (TOST)
               refuted     d > m or d < -m (the larger one-sided p doubled: either side may refute)
noninferiority supported   d > -m
               refuted     d < -m
inconclusive   none of these, with the bounds, the adjusted p-value and the minimum detectable effect
under budget   the cell's runs are below the budget its claim pre-registers as a fair test (harness.budget):
               whatever the tests say, no verdict; the numbers are shown with what the cell lacks
out of domain  the cell's runs miss a condition its claim pre-registers for a test of it (its `domain`):
               no test is run, the numbers are shown with the failing condition; it never refutes
invalid        a run of the cell failed or gave no finite value, or deciding the cell failed

The differences are counts: an accuracy is k / n on n evaluated images, so d sits on a grid of
100 / n points. The tests run on whole grid steps (on_counts), where ties, zeros and zero spread
are exact, also after a shift by the margin. A cell's Holm family is the one registered at
collection: a cell that failed, lacks seeds, lies outside the claim's domain or never reported counts
in it with p = 1.

Error rates the rules guarantee (each at the claim's alpha, family-wise over its Holm family,
measured in tests/test_verdict_calibration.py): a false "supported", a "refuted" of a true claim,
a "negligible" of an effect at the margin. Under A/A (no effect) a one-sided superiority or
non-inferiority claim is wrongly "supported" at most alpha and "refuted" at most alpha, so it ends
decisive either way with probability up to 2 alpha; a two-sided claim is decisive at most alpha.

The bounds a cell shows are those of the tests that decide it, at the level Holm gives that cell
(alpha x raw p / adjusted p): a bound excludes its threshold exactly when the test is significant,
so a reader never sees a significant verdict beside an interval through 0. The intervals are the
tests' own (t interval; inverted signed-rank or sign-flip test), valid at small n.
"""
from __future__ import annotations

import math
from collections import defaultdict
from functools import reduce
from dataclasses import dataclass, field

import numpy as np

from harness.budget import Convergence, convergence, shortfalls
from harness.claims import ClaimSpec
from harness.config import RunRecord
from harness.observations import Cell, Observation
from harness.significance import PairedSummary, _p_rows, holm_rows, interval, summarize

VERDICTS = ("supported", "refuted", "negligible", "inconclusive", "under budget", "out of domain", "invalid")
UNTESTED = ("invalid", "out of domain")  # outcomes of cells with no test of the claim: nothing to pool or budget
OUTLIER_Z = 3.5  # modified z-score (median and MAD) above which a seed's difference is flagged


@dataclass(frozen=True)
class Test:
    """One hypothesis tested in a cell: its raw and Holm-adjusted p-value and the bound that shows it."""

    name: str  # "support", "against" or "negligible"
    p_raw: float
    p_adjusted: float = float("nan")
    level: float = float("nan")  # the cell's Holm level: alpha x p_raw / p_adjusted
    low: float = float("nan")  # the test's interval at that level
    high: float = float("nan")

    def significant(self, alpha: float) -> bool:
        return self.p_adjusted < alpha


@dataclass
class CellResult:
    spec: ClaimSpec
    cell: Cell
    a_label: str
    b_label: str
    seeds: list[int]
    a: list[float]  # accuracy points per seed, arm a
    b: list[float]
    failures: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    summary: PairedSummary | None = None
    ci95: tuple[float, float] = (float("nan"), float("nan"))  # two-sided 95% interval of the test, unadjusted
    tests: dict[str, Test] = field(default_factory=dict)
    outliers: list[int] = field(default_factory=list)  # seeds whose difference is far from the others
    verdict: str = "inconclusive"
    reason: str = ""
    decided_by: tuple[str, ...] = ()  # the tests whose significance gave the verdict
    sequential_family: int | None = None  # decided by the claim's sequential plan in a family of this size
    look: int | None = None  # the plan's look that decided the cell (index into spec.looks)
    futile: tuple[int, float] | None = None  # the look that stopped it undecided, and its conditional power
    exploratory: bool = False  # more seeds than the design plans: the error rates are not the stated ones
    step: float | None = None  # the grid of a - b in points (100 / the arms' common denominator); None: unknown
    family_size: int | None = None  # cells in its Holm family as collection registered them (None: the family decided)
    untested: int = 0  # cells of its Holm family without a test (failed, too few seeds, never observed): p = 1
    best_diffs: list[float] = field(default_factory=list)  # per seed, a - b at each run's best evaluated epoch
    # (where both arms are a run's final accuracy): a source's metric, never the verdict's
    shortfalls: list[str] = field(default_factory=list)  # what the runs lack for a fair test of the claim
    convergence: Convergence | None = None  # how far its arms still moved over the last quarter of training
    outside: list[str] = field(default_factory=list)  # the claim's domain conditions its runs miss, with what they have

    @property
    def cell_id(self) -> str:
        return self.cell.id

    @property
    def diffs(self) -> np.ndarray:
        """a - b per seed, in points, on the grid of the arms' counts (exact multiples of `step`)."""
        return on_grid(np.asarray(self.a, dtype=float) - np.asarray(self.b, dtype=float), self.step)

    def p(self, name: str, adjusted: bool = True) -> float:
        test = self.tests.get(name)
        if test is None:
            return float("nan")
        return test.p_adjusted if adjusted else test.p_raw

    @property
    def shown_interval(self) -> tuple[float, float]:
        """The bounds of the tests that decide this cell, each at its Holm level: the lower bound of
        the test for the claim, the upper bound of the test against it (or of "negligible"); for
        equivalence, TOST's bounds when supported, the interval of the test against it when refuted,
        and both together when undecided (so it reaches past the margin and into it)."""
        t = self.tests
        if not t:
            return (float("nan"), float("nan"))
        if self.spec.kind == "equivalence":
            support, against = t["support"], t["against"]
            if self.decided_by in (("support",), ("against",)):
                shown = support if self.decided_by == ("support",) else against
                return shown.low, shown.high
            return min(support.low, against.low), max(support.high, against.high)
        upper = t["negligible"] if "negligible" in self.decided_by else t["against"]
        return t["support"].low, upper.high


def group_cells(observations: list[Observation], specs: dict[str, ClaimSpec]) -> dict[str, list[CellResult]]:
    """observations -> {claim: [CellResult, ...]}, arms in points, one row per seed (a seed seen
    twice counts once)."""
    grouped: dict[tuple, list[Observation]] = defaultdict(list)
    for obs in observations:
        grouped[(obs.claim, obs.cell, obs.a.label, obs.b.label)].append(obs)
    out: dict[str, list[CellResult]] = defaultdict(list)
    for (claim, cell, a_label, b_label), rows in grouped.items():
        rows = sorted({r.seed: r for r in rows}.values(), key=lambda r: r.seed)
        ok = [r for r in rows if r.measured()]
        runs = {run.key: run for r in rows for run in r.runs()}
        out[claim].append(CellResult(
            spec=specs[claim], cell=cell, a_label=a_label, b_label=b_label,
            seeds=[r.seed for r in ok], a=[100 * r.a.value for r in ok], b=[100 * r.b.value for r in ok],
            failures=[f for r in rows for f in r.failures()], runs=list(runs.values()),
            step=grid_step([arm for r in ok for arm in (r.a, r.b)]), best_diffs=best_epoch_diffs(ok),
            outside=outside_domain(specs[claim], rows),
        ))
    return out


def outside_domain(spec: ClaimSpec, rows: list[Observation]) -> list[str]:
    """Each pre-registered domain condition that a seed's runs miss, in words, with what the runs
    have (every distinct measurement once)."""
    out = []
    for name, condition in spec.domain.items():
        missed = list(dict.fromkeys(d.measured for r in rows for d in r.domain if d.name == name and not d.holds))
        if missed:
            out.append(f"{condition} ({name}: the runs have {', '.join(missed)})")
    return out


# ------------------------------------------------------------------ differences on the accuracy grid
def grid_step(arms) -> float | None:
    """The grid of a - b in points: an accuracy is k / n, so differences are multiples of
    100 / lcm(n_a, n_b). None when an arm's denominator is unknown (a run stored without it)."""
    denominators = [arm.denominator for arm in arms]
    if not denominators or any(not d for d in denominators):
        return None
    return 100.0 / reduce(math.lcm, denominators)


def on_grid(D: np.ndarray, step: float | None) -> np.ndarray:
    """Differences in points snapped to their grid (whole multiples of step), so the same count
    gives the same float: a - b computed in floats carries last-bit noise that makes false spread
    and breaks ties. Without a known grid, rounded to 1e-9 points."""
    if step is None:
        return np.round(D, 9)
    return np.rint(D / step) * step


def on_counts(D: np.ndarray, step: float | None, margin: float | None) -> tuple[np.ndarray, float]:
    """Differences D (k, n) in points -> (X, m): whole grid steps and the margin in steps (0 when
    none). Every test here is unchanged by scale, and on counts ties, zeros and zero spread are
    exact, also after a shift by the margin (X - m ties X' - m exactly when they should)."""
    margin = margin or 0.0
    if step is None:
        return np.round(D, 9), margin
    return np.rint(D / step), round(margin / step, 9)


def observation_diffs(observations) -> tuple[list[float], float | None]:
    """The paired differences in points of a cell's observations, on their grid, and the grid."""
    step = grid_step([arm for o in observations for arm in (o.a, o.b)])
    d = on_grid(np.asarray([100 * (o.a.value - o.b.value) for o in observations], dtype=float), step)
    return d.tolist(), step


def best_epoch(arm) -> float | None:
    """The arm's value at its run's best evaluated epoch, when the arm is one run's final accuracy."""
    if len(arm.runs) != 1 or not arm.runs[0].ok or arm.value != arm.runs[0].accuracy:
        return None
    return arm.runs[0].result.best_accuracy


def best_epoch_diffs(rows: list[Observation]) -> list[float]:
    """a - b in points at each run's best epoch, for every seed where both arms have one (else none)."""
    pairs = [(best_epoch(r.a), best_epoch(r.b)) for r in rows]
    if not pairs or any(a is None or b is None for a, b in pairs):
        return []
    return [100 * (a - b) for a, b in pairs]


# ------------------------------------------------------------------ the hypotheses of each kind
def raw_tests(spec: ClaimSpec, D: np.ndarray, step: float | None = None) -> dict[str, np.ndarray]:
    """Raw p-value of each hypothesis the rules test for this claim, for each row of differences
    D (k, n) in points on the grid `step` -> {name: (k,)}. The tests run on counts (on_counts)."""
    t = spec.test
    X, m = on_counts(D, step, spec.margin)

    def p(shift, alternative):
        return _p_rows(t, np.round(X + shift, 9), alternative)

    if spec.kind == "superiority":
        two_sided = spec.alternative == "two-sided"
        tests = {"support": p(0.0, "two-sided" if two_sided else "greater"),
                 "against": p(0.0, "two-sided" if two_sided else "less")}
        if spec.margin is not None:
            tests["negligible"] = p(-m, "less")
        return tests
    if spec.kind == "equivalence":
        return {"support": np.maximum(p(m, "greater"), p(-m, "less")),
                "against": np.minimum(1.0, 2 * np.minimum(p(-m, "greater"), p(m, "less")))}
    return {"support": p(m, "greater"), "against": p(m, "less")}


def leaning(spec: ClaimSpec, D: np.ndarray, step: float | None = None) -> np.ndarray:
    """The side a two-sided test's own statistic takes, per row of D (k, n): +1 where its one-sided
    p for d > 0 is the smaller (the t-test: the mean; Wilcoxon: the signed-rank sum; sign-flip: the
    sum), -1 the other way, 0 neither. Never the mean for a rank test: with a collapsed seed the
    mean and the ranks can point opposite ways, and the verdict must agree with the interval."""
    X, _ = on_counts(D, step, None)
    return np.sign(_p_rows(spec.test, X, "less") - _p_rows(spec.test, X, "greater"))


Family = list  # [(ClaimSpec, D (k, n)) or (ClaimSpec, D, step)]: a Holm family's cells


def judge_rows(family: Family, untested: int = 0) -> tuple[np.ndarray, list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """The rules on one Holm family of testable cells, each given by its claim, k independent
    sets of its differences D (k, n) in points (the report: k = 1; calibration: k simulated
    sessions) and optionally their grid step. `untested` more cells of the pre-registered family
    have no test (failed, too few seeds): each counts in every Holm family with p = 1, so a failure
    never makes the family smaller. Returns the verdicts (k, cells), and per cell the raw and the
    adjusted p-value of each hypothesis ({name: (k,)})."""
    cells = [(spec, D, rest[0] if rest else None) for spec, D, *rest in family]
    raw = [raw_tests(spec, D, step) for spec, D, step in cells]
    adjusted: list[dict[str, np.ndarray]] = [{} for _ in cells]
    for name in sorted({name for cell in raw for name in cell}):
        members = [i for i, cell in enumerate(raw) if name in cell]
        P = np.stack([raw[i][name] for i in members], axis=-1)
        adj = holm_rows(np.concatenate([P, np.ones((P.shape[0], untested))], axis=-1))
        for j, i in enumerate(members):
            adjusted[i][name] = adj[:, j]
    verdicts = np.stack([verdict_rows(spec, leaning(spec, D, step), raw[i], adjusted[i])
                         for i, (spec, D, step) in enumerate(cells)], axis=-1)
    return verdicts, raw, adjusted


def verdict_rows(spec: ClaimSpec, lean: np.ndarray, raw: dict[str, np.ndarray],
                 adjusted: dict[str, np.ndarray]) -> np.ndarray:
    """The verdict the rules give each row from its Holm-adjusted tests: (k,) strings. `lean` (k,)
    is the side of each row's own test statistic (leaning), read only by two-sided claims."""
    alpha = spec.alpha
    support, against = adjusted["support"] < alpha, adjusted["against"] < alpha
    verdict = np.full(lean.shape, "inconclusive", dtype=object)
    if spec.kind == "superiority":
        two_sided = spec.alternative == "two-sided"
        up = support & ((lean > 0) | (not two_sided))
        down = against & ((lean < 0) | (not two_sided)) & ~up
        small = adjusted["negligible"] < alpha if "negligible" in adjusted else np.zeros_like(up)
        verdict[small & ~up & ~down] = "negligible"
        verdict[down] = "refuted"
        verdict[up] = "supported"
    else:
        verdict[against & ~support] = "refuted"
        verdict[support] = "supported"
    verdict[~np.isfinite(raw["support"])] = "inconclusive"  # no spread: the test is undefined
    return verdict


def sequential_rows(spec: ClaimSpec, D: np.ndarray, family_size: int,
                    step: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, dict]:
    """The rules under the claim's group-sequential plan, for each row of differences D (k, n):
    at each look n_j the cell's hypotheses are tested on its first n_j seeds at the look's nominal
    level (the plan at alpha / family_size), and the first look with a verdict other than
    "inconclusive" decides. Returns the verdicts (k,), the deciding look's index (k,; -1: none),
    the look whose tests are shown (the deciding one, else the last reached; -1: none reached), and
    the raw and the level-scaled p-values there (adjusted < alpha exactly when raw < level)."""
    plan = spec.plan(family_size)
    k = D.shape[0]
    verdict = np.full(k, "inconclusive", dtype=object)
    stop = np.full(k, -1)
    shown = np.full(k, -1)
    raw_at: dict[str, np.ndarray] = {}
    adjusted_at: dict[str, np.ndarray] = {}
    for j, (n, level) in enumerate(zip(plan.looks, plan.nominal_levels())):
        if D.shape[-1] < n:
            break
        raw = raw_tests(spec, D[:, :n], step)
        adjusted = {name: np.minimum(1.0, p * spec.alpha / level) for name, p in raw.items()}
        v = verdict_rows(spec, leaning(spec, D[:, :n], step), raw, adjusted)
        open_rows = stop < 0
        for name in raw:  # still-open rows show their latest look
            raw_at.setdefault(name, np.full(k, np.nan))[open_rows] = raw[name][open_rows]
            adjusted_at.setdefault(name, np.full(k, np.nan))[open_rows] = adjusted[name][open_rows]
        shown[open_rows] = j
        decided = open_rows & (v != "inconclusive")
        verdict[decided], stop[decided] = v[decided], j
    return verdict, stop, shown, raw_at, adjusted_at


FUTILITY_PATHS = 4000  # simulated continuations per conditional power: SE about 0.0034 at 0.05
FUTILITY_SEED = 20261207


def conditional_power(spec: ClaimSpec, d: np.ndarray, family_size: int, step: float | None = None) -> float:
    """The chance that the rest of the cell's sequential plan decides it (any verdict but
    "inconclusive"), given its first len(d) differences, with the seeds still to come drawn from
    the trend so far: a normal with the observed mean and SD (conditional power under the current
    trend, Lan, Simon and Halperin 1982), as counts on the grid. FUTILITY_PATHS continuations from a
    fixed random state, decided by sequential_rows itself, so the session and the report agree.
    NaN when the differences have no spread (the test is undefined; nothing to extrapolate)."""
    n, last = len(d), spec.looks[-1]
    if n >= last or n < 2 or np.ptp(d) == 0:
        return float("nan")
    sd = float(np.std(d, ddof=1))
    rng = np.random.default_rng(FUTILITY_SEED)
    future = float(np.mean(d)) + sd * rng.standard_normal((FUTILITY_PATHS, last - n))  # counted on the grid there
    D = np.hstack([np.broadcast_to(np.asarray(d, dtype=float), (FUTILITY_PATHS, n)), future])
    verdict, *_ = sequential_rows(spec, D, family_size, step)
    return float(np.mean(verdict != "inconclusive"))


def futility_stop(spec: ClaimSpec, d: np.ndarray, family_size: int,
                  step: float | None = None) -> tuple[int, float] | None:
    """The interim look (index into spec.looks) at which the plan stops the cell as futile, with
    its conditional power: the first look before the last, among those its len(d) seeds reach,
    where the cell is still undecided and the rest of the plan would decide it with probability
    below spec.futility. None: no such look (decided first, or never futile). The stop is
    non-binding in the error rates: the looks' levels are those of the plan without it, and a
    cell stopped for futility only ever ends "inconclusive", so no false verdict can be added."""
    if spec.futility is None:
        return None
    d = np.asarray(d, dtype=float)
    for j, n in enumerate(spec.looks[:-1]):
        if len(d) < n:
            return None
        verdict, *_ = sequential_rows(spec, d[None, :n], family_size, step)
        if verdict[0] != "inconclusive":
            return None
        power = conditional_power(spec, d[:n], family_size, step)
        if power < spec.futility:
            return j, power
    return None


def decided_by(spec: ClaimSpec, verdict: str, adjusted: dict[str, float]) -> tuple[str, ...]:
    """The tests whose significance gave a cell its verdict."""
    if verdict == "supported":
        small = spec.kind == "superiority" and adjusted.get("negligible", 1.0) < spec.alpha
        return ("support", "negligible") if small else ("support",)
    return {"refuted": ("against",), "negligible": ("negligible",)}.get(verdict, ())


def bounds(spec: ClaimSpec, name: str, d: np.ndarray, level: float) -> tuple[float, float]:
    """The interval that shows test `name` at `level`: its threshold lies outside exactly when the
    test's p-value is below `level`."""
    t = spec.test
    if spec.kind == "equivalence":
        if name == "against":  # the doubled smaller one-sided p: both ends at level / 2
            return interval(t, d, 1 - level, "two-sided")
        return interval(t, d, 1 - level, "greater")[0], interval(t, d, 1 - level, "less")[1]  # TOST
    if spec.alternative == "two-sided" and name != "negligible":
        return interval(t, d, 1 - level, "two-sided")
    return interval(t, d, 1 - level, "greater" if name == "support" else "less")


def holm_level(alpha: float, p_raw: float, p_adjusted: float) -> float:
    """The per-cell level at which the raw p-value decides as the adjusted one does at alpha."""
    if not (p_adjusted > 0) or not math.isfinite(p_raw):
        return alpha
    return alpha * p_raw / p_adjusted


def outlier_seeds(seeds: list[int], d: np.ndarray) -> list[int]:
    """Seeds whose difference has a modified z-score (median, MAD) above OUTLIER_Z: a collapsed run."""
    if len(d) < 3:
        return []
    median = np.median(d)
    mad = np.median(np.abs(d - median))
    if mad == 0:
        return []
    z = 0.6745 * np.abs(d - median) / mad
    return [s for s, flagged in zip(seeds, z > OUTLIER_Z) if flagged]


def testable(c: CellResult) -> bool:
    return not c.failures and not c.outside and len(c.a) >= max(2, c.spec.min_seeds)


def decide(families: list[list[CellResult]]) -> None:
    """Fill every cell's statistics, tests, verdict and reason (in place). Each inner list is one
    Holm family. A cell whose statistics cannot be computed is "invalid" with the error; the
    others are still decided."""
    for family in families:
        for c in family:
            try:
                if len(c.a) >= 2:
                    c.summary = summarize(c.a, c.b, c.spec.alpha)
                    c.ci95 = interval(c.spec.test, c.diffs, 0.95, "two-sided")
                    c.outliers = outlier_seeds(c.seeds, c.diffs)
                if testable(c):
                    raw_tests(c.spec, c.diffs[None, :], c.step)  # fails here, not inside the family's judgement
            except Exception as exc:  # noqa: BLE001 - the report must survive any one cell
                c.failures.append(f"deciding the cell failed: {type(exc).__name__}: {exc}")
        tested = [c for c in family if testable(c)]
        fixed = [c for c in tested if not c.sequential_family]
        # the family is the one registered at collection: its cells without a test count as p = 1
        registered = max([len(family)] + [c.family_size or 0 for c in family])
        untested = registered - len(fixed) - sum(bool(c.sequential_family) for c in family)
        if fixed:
            verdicts, raw, adjusted = judge_rows([(c.spec, c.diffs[None, :], c.step) for c in fixed], untested)
            for i, c in enumerate(fixed):
                fill(c, str(verdicts[0, i]), raw[i], adjusted[i])
                c.untested = untested
        for c in tested:
            if c.sequential_family:
                c.futile = futility_stop(c.spec, c.diffs, c.sequential_family, c.step)
                seen = c.diffs if c.futile is None else c.diffs[:c.spec.looks[c.futile[0]]]  # no seed past its stop
                verdict, stop, shown, raw, adjusted = sequential_rows(c.spec, seen[None, :], c.sequential_family, c.step)
                c.look = int(stop[0]) if stop[0] >= 0 else None
                if shown[0] < 0:  # fewer seeds than the first look
                    c.verdict, c.reason = "inconclusive", f"only {len(c.a)} seed(s); the first look is at {c.spec.looks[0]}"
                    continue
                fill(c, str(verdict[0]), raw, adjusted, seeds=c.spec.looks[int(shown[0])])
        for c in family:
            if c.failures:
                c.verdict, c.reason, c.decided_by = "invalid", f"{len(c.failures)} failed run(s): {c.failures[0]}", ()
            elif c.outside:
                c.verdict, c.decided_by = "out of domain", ()
                c.reason = f"outside the claim's pre-registered domain, not a test of it: {'; '.join(c.outside)}"
                if c.summary is not None:
                    c.reason += (f"; the numbers: {c.summary.mean_diff:+.2f} pt, 95% interval "
                                 f"[{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}], n = {c.summary.n}")
                elif not c.a:
                    c.reason += "; its arms were not trained"
            elif not testable(c):
                need = max(2, c.spec.min_seeds)
                c.verdict, c.reason = "inconclusive", f"only {len(c.a)} seed(s); this claim needs at least {need}"
            elif c.tests:  # (a sequential cell short of its first look has its reason already)
                c.reason = reason(c)
                if c.sequential_family:
                    looks = c.spec.looks
                    if c.look is not None:
                        where = f"stopped at look {c.look + 1} of {len(looks)} ({looks[c.look]} seeds)"
                    elif c.futile is not None:
                        j, power = c.futile
                        where = (f"stopped for futility at look {j + 1} of {len(looks)} ({looks[j]} seeds): at the "
                                 f"trend so far, {looks[-1]} seeds would decide it with probability {power:.3f} "
                                 f"(below {c.spec.futility:g})")
                    else:
                        where = f"no boundary crossed by {len(c.a)} seeds"
                    c.reason += f"; sequential plan {looks}: {where}, alpha {c.spec.alpha} / {c.sequential_family} cells"
                if c.untested:
                    c.reason += (f"; Holm over the {registered} registered cells, {c.untested} of them "
                                 f"without a test (counted as p = 1)")
                if c.exploratory:
                    c.reason += f"; exploratory: {len(c.a)} seeds, more than the design's"
                if c.outliers:
                    c.reason += f"; outlier seed(s) {', '.join(map(str, c.outliers))} (a collapsed run?)"
            judge_budget(c)


def judge_budget(c: CellResult) -> None:
    """A cell below its claim's fair-test budget (not converged, or short of a source's minimum) is
    "under budget", whatever its tests say; every cell records how far its arms still moved."""
    fair = c.spec.fair_test.for_model(c.cell.get("model")) if c.spec.fair_test else None
    c.convergence = convergence(c.runs, fair.converged if fair else None)
    c.shortfalls = shortfalls(c.spec.fair_test, c.cell.get("model"), c.runs, c.convergence)
    if c.shortfalls and c.verdict not in UNTESTED:
        c.verdict, c.decided_by = "under budget", ()
        # why the budget is what it is is said once, in the claim's fair-test line, not in every cell
        c.reason = f"under budget, not a test of the claim: {'; '.join(c.shortfalls)}; the numbers: {c.reason}"


def fill(c: CellResult, verdict: str, raw: dict[str, np.ndarray], adjusted: dict[str, np.ndarray],
         seeds: int | None = None) -> None:
    """A judged cell's verdict, and each test's p-values with its bounds at the cell's level,
    computed on its first `seeds` seeds (all of them by default)."""
    c.verdict = verdict
    c.decided_by = decided_by(c.spec, verdict, {k: float(v[0]) for k, v in adjusted.items()})
    c.tests = {}
    for name in raw:
        p_raw, p_adj = float(raw[name][0]), float(adjusted[name][0])
        level = holm_level(c.spec.alpha, p_raw, p_adj)
        ends = bounds(c.spec, name, c.diffs[:seeds], level) if math.isfinite(p_raw) else (math.nan, math.nan)
        c.tests[name] = Test(name, p_raw, p_adj, level, *ends)


def bound_text(test: Test, side: str) -> str:
    value = test.low if side == "lower" else test.high
    return f"{side} bound {value:+.2f} at level {test.level:.3g}"


def reason(c: CellResult) -> str:
    """The numbers behind a testable cell's verdict: the decisive bounds at their Holm levels."""
    spec, s, t = c.spec, c.summary, c.tests
    m = spec.margin
    numbers = f"{s.mean_diff:+.2f} pt, n = {s.n}"
    if not math.isfinite(t["support"].p_raw):
        return f"{numbers}: the differences have no spread, so the {spec.test} test is undefined"
    mde = f"MDE {s.mde:.2f} pt at n = {s.n}" if math.isfinite(s.mde) else f"MDE undefined (no spread) at n = {s.n}"
    support, against, small = t["support"], t["against"], t.get("negligible")
    holm_p = f"Holm p = {support.p_adjusted:.3g}"
    low, high = c.shown_interval
    if c.verdict == "supported" and spec.kind == "superiority":
        if "negligible" in c.decided_by:
            return (f"{numbers}: a real but small effect: d > 0 ({bound_text(support, 'lower')}, {holm_p}) "
                    f"and d < {m} pt ({bound_text(small, 'upper')}, Holm p = {small.p_adjusted:.3g})")
        return f"{numbers}; {bound_text(support, 'lower')} > 0; {holm_p} < {spec.alpha}"
    if c.verdict == "refuted" and spec.kind == "superiority":
        return f"{numbers}: significantly the other way; {bound_text(against, 'upper')} < 0; Holm p = {against.p_adjusted:.3g}"
    if c.verdict == "negligible":
        return (f"{numbers}: no effect of the {m} pt margin in the claimed direction; {bound_text(small, 'upper')} "
                f"< {m}; Holm p = {small.p_adjusted:.3g} (an effect the other way is not established)")
    if c.verdict == "supported" and spec.kind == "equivalence":
        return (f"{numbers}; bounds [{low:+.2f}, {high:+.2f}] at level {support.level:.3g} within ±{m} pt; "
                f"TOST {holm_p} < {spec.alpha}")
    if c.verdict == "refuted" and spec.kind == "equivalence":
        return (f"{numbers}: outside ±{m} pt; interval [{low:+.2f}, {high:+.2f}] at level {against.level:.3g}; "
                f"Holm p = {against.p_adjusted:.3g}")
    if c.verdict == "supported":
        return f"{numbers}; {bound_text(support, 'lower')} > -{m}; {holm_p} < {spec.alpha}"
    if c.verdict == "refuted":
        return f"{numbers}: below -{m} pt; {bound_text(against, 'upper')} < -{m}; Holm p = {against.p_adjusted:.3g}"
    shown = f"bounds [{low:+.2f}, {high:+.2f}] at the Holm levels"
    where = {"superiority": "", "equivalence": f" overlaps the margin ±{m} pt", "noninferiority": f" reaches below -{m} pt"}
    return f"{numbers}{where[spec.kind]}; {shown}; {'TOST ' if spec.kind == 'equivalence' else ''}{holm_p}; {mde}"


def count_line(cells: list[CellResult]) -> str:
    counts = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{', '.join(parts) or 'no verdicts'} of {len(cells)} cell(s)"
