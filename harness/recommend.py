"""Which input normalization to use for one cell (a model on a dataset): every choice against every
other, paired by seed, with one written rule that controls the family-wise error of all it says.

The rule, fixed before any run:
- Arms are the normalizations a user can choose (harness.norms.CHOOSABLE, or --recommend-norms), each fine-tuned with
  the same seeds; a seed's arms share its head initialisation, data order and augmentation draws.
- For every pair of arms (i, j), the mean paired difference d = acc_i - acc_j in points gets a
  two-sided t interval at level 1 - alpha / (pairs x looks): Bonferroni over all K(K-1)/2 pairs and
  over the looks of the sequential plan, so every interval the report shows holds at once, whichever
  look the cell stopped at, with probability at least 1 - alpha. Accuracies are counts (k of n test
  images); a pair whose differences are all equal gets the spread of one count, never a zero width.
- From those intervals, and nothing else:
  "use X"        X beats every other arm by more than the margin (each lower bound of X - j > margin);
  "use any of G" no single X, and G is every arm that no other beats by the margin or more (each
                 upper bound of j - i < margin): its members are equivalent within the margin;
  "avoid j"      some arm beats j by more than the margin;
  otherwise      no recommendation: the intervals still straddle the margin (more seeds would tell).
  Each statement follows from the simultaneous intervals, so the chance that any statement made about
  a cell is false is at most alpha (bench/error_rates.py measures it on A/A cells and at the margin).
- A cell whose arms still move by the margin or more over the last quarter of training is "under
  budget" (harness.budget): its numbers are shown and no recommendation is made.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats

MARGIN = 1.0  # points: the catalogue's equivalence margin; a smaller gap is not worth acting on
ALPHA = 0.05  # family-wise, over every pair and every look
DECISIONS = ("use", "use any of", "no recommendation", "under budget", "too few seeds")


@dataclass(frozen=True)
class Interval:
    """acc_a - acc_b in points over the seeds, with its simultaneous bounds."""

    a: str
    b: str
    mean: float
    low: float
    high: float

    def flipped(self) -> "Interval":
        return Interval(self.b, self.a, -self.mean, -self.high, -self.low)

    def text(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


@dataclass(frozen=True)
class Recommendation:
    decision: str  # one of DECISIONS
    use: tuple[str, ...]  # the arms to use: one ("use"), several ("use any of"), or none
    avoid: tuple[str, ...]  # arms some other beats by more than the margin
    undecided: tuple[str, ...]  # neither usable nor to avoid yet
    ranking: tuple[tuple[str, float, float], ...]  # (arm, mean accuracy %, sd over seeds), best first
    intervals: tuple[Interval, ...]  # every pair, the better-looking arm first
    seeds: int
    margin: float
    alpha: float
    level: float  # each interval's two-sided level: alpha / (pairs x looks)
    why: str = ""  # for "under budget" and "too few seeds": what is missing

    @property
    def decided(self) -> bool:
        """The sequential plan stops: one arm recommended, or every arm usable or to avoid."""
        return self.decision == "use" or (self.decision == "use any of" and not self.undecided)

    @property
    def lead(self) -> str:
        """The arm every other is set against: the one to use first, else the best-looking."""
        return self.use[0] if self.use else self.ranking[0][0]

    def says(self, arm: str) -> str:
        """What the rule says of `arm`: use, avoid or undecided."""
        return "use" if arm in self.use else "avoid" if arm in self.avoid else "undecided"

    def interval(self, a: str, b: str) -> Interval:
        return lookup(self.intervals, a, b)

    def words(self) -> str:
        """What a practitioner acts on, e.g. "use any of dataset, pretrain: no other beats them by
        1 point or more; avoid none: -2.10 [-2.90, -1.30] against dataset"."""
        m = f"{self.margin:g} point{'s' if self.margin != 1 else ''}"
        if self.decision in ("under budget", "too few seeds"):
            return f"no recommendation ({self.decision}): {self.why}"
        parts, lead = [], self.lead
        if self.decision == "use":
            gaps = ", ".join(f"{j} {self.interval(j, lead).text()}" for j, *_ in self.ranking if j != lead)
            parts.append(f"use {lead}: it beats every other by more than {m} ({gaps})")
        elif self.decision == "use any of" and len(self.use) == 1:
            parts.append(f"use {lead}: no other beats it by {m} or more")
        elif self.decision == "use any of":
            parts.append(f"use any of {', '.join(self.use)}: they differ by less than {m}, and no other beats them "
                         f"by {m} or more")
        else:
            parts.append(f"no recommendation: {lead} leads, but no normalization is shown within {m} of the best "
                         f"(the intervals still straddle the margin; more seeds would tell)")
        if self.decision != "use" and self.avoid:
            parts.append("avoid " + ", ".join(f"{j}: {self.interval(j, lead).text()} against {lead}" for j in self.avoid))
        if self.undecided and self.decision != "no recommendation":
            parts.append("undecided (more seeds would tell): " +
                         ", ".join(f"{j} {self.interval(j, lead).text()}" for j in self.undecided))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"decision": self.decision, "use": list(self.use), "avoid": list(self.avoid),
                "undecided": list(self.undecided), "words": self.words(), "seeds": self.seeds,
                "margin": self.margin, "alpha": self.alpha, "level": self.level, "why": self.why,
                "ranking": [{"arm": a, "mean": m, "sd": s} for a, m, s in self.ranking],
                "intervals": [iv.__dict__ for iv in self.intervals]}


def decide(counts: dict[str, list[int]], n: int, margin: float = MARGIN, alpha: float = ALPHA, looks: int = 1,
           min_seeds: int = 3, shortfalls: list[str] | None = None) -> Recommendation:
    """The rule above for one cell: `counts[arm][s]` correct test images of `n` at seed s (the same
    seeds, in the same order, for every arm); `looks`: the sequential plan's number of looks (1 for
    a fixed design); `shortfalls`: what the cell lacks to be a fair test (harness.budget)."""
    arms = list(counts)
    if len(arms) < 2:
        raise ValueError(f"a recommendation compares at least two normalizations, got {arms}")
    if not (isinstance(n, int) and n > 0):
        raise ValueError(f"n (test images) must be a positive integer, got {n!r}")
    if len({len(counts[a]) for a in arms}) != 1:
        raise ValueError("every arm needs one count per seed, the same seeds for all")
    K = np.asarray([counts[a] for a in arms], dtype=float)
    seeds = K.shape[1]
    acc = 100 * K / n
    ranking = tuple(sorted(((a, float(acc[i].mean()), float(acc[i].std(ddof=1)) if seeds > 1 else 0.0)
                            for i, a in enumerate(arms)), key=lambda r: -r[1]))
    pairs = len(arms) * (len(arms) - 1) // 2
    level = alpha / (pairs * looks)
    base = dict(ranking=ranking, seeds=seeds, margin=margin, alpha=alpha, level=level)
    if seeds < min_seeds:
        return Recommendation("too few seeds", (), (), tuple(arms), intervals=(), **base,
                              why=f"{seeds} seed(s), the rule needs at least {min_seeds}")
    intervals = tuple(_interval(arms[i], arms[j], acc[i] - acc[j], level, 100 / n)
                      for i, j in combinations(range(len(arms)), 2))
    if shortfalls:
        return Recommendation("under budget", (), (), tuple(arms), intervals=intervals, **base,
                              why="; ".join(shortfalls))
    order = [a for a, *_ in ranking]
    beats = {(i, j): lookup(intervals, i, j).low > margin for i in order for j in order if i != j}
    usable = [i for i in order if all(lookup(intervals, j, i).high < margin for j in order if j != i)]
    avoid = tuple(j for j in order if any(beats[(i, j)] for i in order if i != j))
    single = [x for x in order if all(beats[(x, j)] for j in order if j != x)]
    if single:
        decision, use = "use", (single[0],)
    elif usable:
        decision, use = "use any of", tuple(usable)
    else:
        decision, use = "no recommendation", ()
    undecided = tuple(a for a in order if a not in use and a not in avoid)
    return Recommendation(decision, use, avoid, undecided, intervals=intervals, **base)


def lookup(intervals: tuple[Interval, ...], a: str, b: str) -> Interval:
    """The interval of a - b among the pairs', whichever way it was stored."""
    for iv in intervals:
        if (iv.a, iv.b) == (a, b):
            return iv
        if (iv.b, iv.a) == (a, b):
            return iv.flipped()
    raise KeyError((a, b))


def _interval(a: str, b: str, d: np.ndarray, level: float, one_count: float) -> Interval:
    """The two-sided t interval at `level` for the mean of d, the better-looking arm first; the
    spread is at least one count's (differences all equal say little about the next seed)."""
    mean = float(d.mean())
    sd = max(float(d.std(ddof=1)), one_count)
    half = float(stats.t.ppf(1 - level / 2, len(d) - 1)) * sd / math.sqrt(len(d))
    iv = Interval(a, b, mean, mean - half, mean + half)
    return iv if mean >= 0 else iv.flipped()


def decide_cell(rankings: list, spec, sequential: bool) -> Recommendation:
    """The rule for one cell's seeds (harness.observations.Ranking, one a seed, failures left out):
    counts off each arm's accuracy and denominator, the fair-test shortfalls of the claim's budget,
    and Bonferroni over the plan's looks when the cell follows its sequential plan."""
    from harness.budget import shortfalls

    rows = sorted((r for r in rankings if not r.failures()), key=lambda r: r.seed)
    arms = [a.label for a in rows[0].arms] if rows else []
    denominators = {a.denominator for r in rows for a in r.arms}
    if not rows or len(denominators) != 1 or None in denominators:
        raise ValueError(f"{spec.name}: a ranking needs every arm counted on the same test images, got "
                         f"denominators {sorted(map(str, denominators))}")
    n = denominators.pop()
    counts = {label: [int(round(r.arms[i].value * n)) for r in rows] for i, label in enumerate(arms)}
    runs = [run for r in rows for run in r.runs()]
    model = rows[0].cell.get("model")
    looks = len(spec.looks) if sequential and spec.looks else 1
    return decide(counts, n, spec.margin, spec.alpha, looks, spec.min_seeds, shortfalls(spec.fair_test, model, runs))
