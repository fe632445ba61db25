"""What a claim test hands the report, as typed objects, and their one wire format.

A test item runs one seed of one cell. What it produces (its claim and cell, the paired
observation, report extras, why it was skipped) crosses from an xdist worker to the controller in
the test report's user_properties: `attach` turns an object into JSON there, `read_report` turns
it back on the controller. Nothing else in the harness reads or writes that JSON.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

from harness.claims import ClaimSpec
from harness.config import RunRecord
from harness.plan import RunRequest

PROPERTY = "normclaims"  # the user_properties name of every payload
UNTRAINED = "not trained: the cell is outside the claim's domain"  # the reason of Arm.untrained


@dataclass(frozen=True)
class Cell:
    """A claim's parameters but the seed, e.g. (("model", "resnet18"), ("dataset", "cifar10"))."""

    params: tuple[tuple[str, object], ...]

    @property
    def id(self) -> str:
        return "-".join(str(v) for _, v in self.params)

    def get(self, name: str, default=None):
        return dict(self.params).get(name, default)

    def as_dict(self) -> dict:
        return dict(self.params)


@dataclass(frozen=True)
class ItemTag:
    """Which claim, cell and seed a test item is: every report of the item carries it, so skips
    and failures reach the report too."""

    spec: ClaimSpec
    cell: Cell
    seed: int | None  # None: every seed of the cell, under its sequential plan (--seeds auto)
    family_size: int = 1  # cells in the claim's Holm family (the session's, with --correction session)
    sequential: bool = False  # the cell follows its claim's group-sequential plan


@dataclass(frozen=True)
class Arm:
    """One side of a paired observation: this seed's value (a fraction: an accuracy, or a share)
    and the runs it came from. The value is a count: k / denominator (an accuracy is the correct
    images of the evaluated ones), so paired differences sit on a grid and their ties are exact."""

    label: str
    value: float | None
    runs: tuple[RunRecord, ...] = ()
    reason: str | None = None  # why there is no value
    denominator: int | None = None  # the value is k / denominator; None: not known (a run stored without it)

    @classmethod
    def of_run(cls, run: RunRecord, metric: str | None = None, label: str | None = None) -> "Arm":
        """A run's final accuracy, or one of its further metrics ("test@36", ...), as an arm: every
        metric of a run is counted on the same evaluation images."""
        return cls(label or metric or run.label, run.metric(metric), (run,), None if run.ok else run.reason,
                   run.result.eval_images if run.ok else None)

    @classmethod
    def constant(cls, label: str, value: float) -> "Arm":
        """A stated reference value, e.g. the plateau share a claim commits to: exact as written."""
        return cls(label, value, (), None, Fraction(repr(float(value))).denominator)

    @classmethod
    def untrained(cls, label: str) -> "Arm":
        """An arm a cell outside its claim's domain does not train: no value, and no failure."""
        return cls(label, None, (), UNTRAINED)

    def failures(self) -> list[str]:
        """Why this arm gives no usable value: its failed runs, else its own reason, else a
        missing or non-finite value. An arm left untrained outside the domain has none."""
        if self.reason == UNTRAINED and not self.runs:
            return []
        failed = [f"{r.label}: {r.reason}" for r in self.runs if not r.ok]
        if failed:
            return failed
        if self.value is None:
            return [f"{self.label}: {self.reason or 'no value'}"]
        if not math.isfinite(self.value):
            return [f"{self.label}: non-finite value {self.value}"]
        return []


@dataclass(frozen=True)
class DomainCheck:
    """One of a claim's pre-registered domain conditions, as this seed's runs meet it or not."""

    name: str  # the condition's key in the claim's `domain`
    holds: bool
    measured: str  # what the runs have, e.g. "r/R = 0.14"


@dataclass(frozen=True)
class Observation:
    """One seed's pair for a cell: H1 is about d = a - b, inside the claim's domain when every
    check holds."""

    claim: str
    cell: Cell
    seed: int
    a: Arm
    b: Arm
    domain: tuple[DomainCheck, ...] = ()

    def failures(self) -> list[str]:
        return list(dict.fromkeys(self.a.failures() + self.b.failures()))

    def measured(self) -> bool:
        """Both arms have a value: the pair is a seed of the cell's numbers (an arm left untrained
        outside the domain has none, and no failure)."""
        return not self.failures() and self.a.value is not None and self.b.value is not None

    def runs(self) -> list[RunRecord]:
        return list({r.key: r for r in self.a.runs + self.b.runs}.values())


@dataclass(frozen=True)
class Ranking:
    """One seed's arms for a ranking claim (harness.recommend): every normalization of the cell."""

    claim: str
    cell: Cell
    seed: int
    arms: tuple[Arm, ...]
    domain: tuple[DomainCheck, ...] = ()  # a ranking pre-registers no domain: the user's cells are its domain

    def failures(self) -> list[str]:
        return list(dict.fromkeys(f for arm in self.arms for f in arm.failures()))

    def runs(self) -> list[RunRecord]:
        return list({r.key: r for arm in self.arms for r in arm.runs}.values())


@dataclass(frozen=True)
class Heatmap:
    """Values over a grid: z has one row per y value and one column per x value."""

    x_label: str
    y_label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    z: tuple[tuple[float, ...], ...]
    unit: str = "accuracy (%)"


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple, ...]


@dataclass(frozen=True)
class Extra:
    """Material for the report beyond the verdict. Heat maps of one title and cell are averaged
    over seeds; table rows of one title are merged across cells and seeds."""

    claim: str
    cell: Cell
    seed: int | None
    title: str
    content: Union[Heatmap, Table]


@dataclass(frozen=True)
class Skip:
    """Why an item did not run: one reason per missing thing (its data, its weights)."""

    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Requests:
    """--plan: the runs an item asks for."""

    requests: tuple[RunRequest, ...]


@dataclass
class ReportPayloads:
    """What one test report carries, parsed."""

    tag: ItemTag | None = None
    observations: list[Observation] = field(default_factory=list)
    rankings: list[Ranking] = field(default_factory=list)
    extras: list[Extra] = field(default_factory=list)
    skip: Skip | None = None
    requests: list[Requests] = field(default_factory=list)


# ---------------------------------------------------------------------------- the wire format
def attach(item, payload) -> None:
    """Append `payload` (ItemTag, Observation, Ranking, Extra, Skip or Requests) to the item's user_properties as JSON."""
    item.user_properties.append((PROPERTY, json.dumps(_encode(payload))))


def read_report(report) -> ReportPayloads:
    out = ReportPayloads()
    for name, value in report.user_properties:
        if name != PROPERTY:
            continue
        payload = _decode(json.loads(value))
        if isinstance(payload, ItemTag):
            out.tag = payload
        elif isinstance(payload, Observation):
            out.observations.append(payload)
        elif isinstance(payload, Ranking):
            out.rankings.append(payload)
        elif isinstance(payload, Extra):
            out.extras.append(payload)
        elif isinstance(payload, Requests):
            out.requests.append(payload)
        else:
            out.skip = payload
    return out


def _cell(data) -> Cell:
    return Cell(tuple((k, v) for k, v in data))


def _arm(data: dict, runs: dict[str, RunRecord]) -> Arm:
    return Arm(data["label"], data["value"], tuple(runs[k] for k in data["runs"]), data["reason"], data.get("denominator"))


def _encode_arm(a: Arm) -> dict:
    return {"label": a.label, "value": a.value, "runs": [r.key for r in a.runs], "reason": a.reason,
            "denominator": a.denominator}


def _encode(payload) -> dict:
    if isinstance(payload, ItemTag):
        return {"type": "item", "spec": payload.spec.to_dict(), "cell": payload.cell.params, "seed": payload.seed,
                "family_size": payload.family_size, "sequential": payload.sequential}
    if isinstance(payload, Observation):
        return {"type": "observation", "claim": payload.claim, "cell": payload.cell.params, "seed": payload.seed,
                "a": _encode_arm(payload.a), "b": _encode_arm(payload.b), "runs": [r.to_dict() for r in payload.runs()],
                "domain": [[d.name, d.holds, d.measured] for d in payload.domain]}
    if isinstance(payload, Ranking):
        return {"type": "ranking", "claim": payload.claim, "cell": payload.cell.params, "seed": payload.seed,
                "arms": [_encode_arm(a) for a in payload.arms], "runs": [r.to_dict() for r in payload.runs()]}
    if isinstance(payload, Extra):
        kind = "heatmap" if isinstance(payload.content, Heatmap) else "table"
        return {"type": "extra", "claim": payload.claim, "cell": payload.cell.params, "seed": payload.seed,
                "title": payload.title, "kind": kind, "content": payload.content.__dict__}
    if isinstance(payload, Skip):
        return {"type": "skip", "reasons": list(payload.reasons)}
    if isinstance(payload, Requests):
        return {"type": "requests", "requests": [r.__dict__ for r in payload.requests]}
    raise TypeError(f"cannot attach {type(payload).__name__} to a test report")


def _decode(data: dict):
    kind = data["type"]
    if kind == "item":
        return ItemTag(ClaimSpec.from_dict(data["spec"]), _cell(data["cell"]), data["seed"], data["family_size"],
                       data["sequential"])
    if kind == "observation":
        runs = {r["key"]: RunRecord.from_dict(r) for r in data["runs"]}
        return Observation(data["claim"], _cell(data["cell"]), data["seed"], _arm(data["a"], runs), _arm(data["b"], runs),
                           tuple(DomainCheck(n, bool(h), m) for n, h, m in data.get("domain", ())))
    if kind == "ranking":
        runs = {r["key"]: RunRecord.from_dict(r) for r in data["runs"]}
        return Ranking(data["claim"], _cell(data["cell"]), data["seed"], tuple(_arm(a, runs) for a in data["arms"]))
    if kind == "extra":
        c = data["content"]
        if data["kind"] == "heatmap":
            content = Heatmap(c["x_label"], c["y_label"], tuple(c["x"]), tuple(c["y"]),
                              tuple(tuple(row) for row in c["z"]), c["unit"])
        else:
            content = Table(tuple(c["headers"]), tuple(tuple(row) for row in c["rows"]))
        return Extra(data["claim"], _cell(data["cell"]), data["seed"], data["title"], content)
    if kind == "requests":
        return Requests(tuple(RunRequest(**r) for r in data["requests"]))
    return Skip(tuple(data["reasons"]))
