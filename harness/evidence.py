"""The `evidence` fixture's object: a claim test hands it this seed's pair of arms.

A claim test runs one seed of one cell and calls `evidence.greater(a, b)` (or `equivalent`,
`noninferior`, as the claim is pre-registered) with two runs or arms. The observation travels to
the controller with the test report (harness.observations); a failed run fails the item and
makes its cell "invalid". Before the pair, the test checks each of its claim's pre-registered domain
conditions on its runs (`evidence.in_domain`): the pair carries them, and a cell that misses one is
"out of domain".
"""
from __future__ import annotations

import pytest

from harness.config import RunRecord
from harness.observations import Arm, DomainCheck, Extra, Heatmap, ItemTag, Observation, Ranking, Table, attach
from harness.session import PLAN_PASS

# the evidence call each kind of claim takes
CALL_OF_KIND = {"superiority": "greater", "equivalence": "equivalent", "noninferiority": "noninferior",
                "ranking": "rank"}


def as_arm(x: "RunRecord | Arm", label: str | None = None) -> Arm:
    arm = x if isinstance(x, Arm) else Arm.of_run(x)
    return arm if label is None else Arm(label, arm.value, arm.runs, arm.reason)


class Evidence:
    def __init__(self, item: pytest.Item, tag: ItemTag):
        self.item, self.tag = item, tag
        self.recorded: list[Observation | Ranking] = []  # this seed's observations, in the order given
        self.checks: dict[str, DomainCheck] = {}  # the domain conditions checked for the next pair

    @property
    def claim(self):
        return self.tag.spec

    @property
    def planning(self) -> bool:
        """True while the test only lists the runs it asks for (--plan's passes, the Ray backend's
        look ahead): work besides runs, such as a table read off the data, waits for the real call."""
        return PLAN_PASS in self.item.stash

    def in_domain(self, name: str, holds: bool, measured: str) -> None:
        """Whether this seed's runs meet the claim's pre-registered domain condition `name`, and what
        they have (shown beside the condition when it fails). Every condition is checked before the pair."""
        if name not in self.claim.domain:
            known = ", ".join(self.claim.domain) or "none"
            pytest.fail(f"claim {self.claim.name!r} pre-registers no domain condition {name!r} (its conditions: {known})",
                        pytrace=False)
        self.checks[name] = DomainCheck(name, bool(holds), str(measured))

    def greater(self, a: "RunRecord | Arm", b: "RunRecord | Arm", *, a_label: str | None = None,
                b_label: str | None = None) -> None:
        """This seed's pair for a superiority claim: H1 a > b."""
        self._record("greater", as_arm(a, a_label), as_arm(b, b_label))

    def equivalent(self, a: "RunRecord | Arm", b: "RunRecord | Arm", *, a_label: str | None = None,
                   b_label: str | None = None) -> None:
        """This seed's pair for an equivalence claim: H1 |a - b| < the claim's margin."""
        self._record("equivalent", as_arm(a, a_label), as_arm(b, b_label))

    def noninferior(self, a: "RunRecord | Arm", b: "RunRecord | Arm", *, a_label: str | None = None,
                    b_label: str | None = None) -> None:
        """This seed's pair for a non-inferiority claim: H1 a > b - the claim's margin."""
        self._record("noninferior", as_arm(a, a_label), as_arm(b, b_label))

    def outside_domain(self, a_label: str, b_label: str) -> None:
        """This seed's pair for a cell that a domain check already places outside the claim's domain,
        its arms left untrained: no test of the claim could use them (the report says so)."""
        if all(check.holds for check in self.checks.values()):
            pytest.fail(f"claim {self.claim.name!r}: evidence.outside_domain() needs a domain condition that fails; "
                        f"this cell meets every condition checked so far, so it must be tested", pytrace=False)
        if not self.planning:  # --plan: the check ran on stand-in values
            self._record(CALL_OF_KIND[self.claim.kind], Arm.untrained(a_label), Arm.untrained(b_label))

    def rank(self, *arms: "RunRecord | Arm") -> None:
        """This seed's arms for a ranking claim: every choice, compared with every other (harness.recommend)."""
        self._check_call("rank")
        arms = tuple(as_arm(a) for a in arms)
        if len({a.label for a in arms}) != len(arms) or len(arms) < 2:
            pytest.fail(f"claim {self.claim.name!r}: a ranking needs at least two arms with distinct labels, got "
                        f"{[a.label for a in arms]}", pytrace=False)
        if self._planned(arms):
            return
        ranking = Ranking(self.claim.name, self.tag.cell, self.tag.seed, arms)
        attach(self.item, ranking)
        self.recorded.append(ranking)
        failed = ranking.failures()
        if failed:
            pytest.fail("run failed: " + "; ".join(failed), pytrace=False)

    def heatmap(self, title: str, content: Heatmap) -> None:
        """A grid of values for the report, averaged over seeds per cell."""
        attach(self.item, Extra(self.claim.name, self.tag.cell, self.tag.seed, title, content))

    def table(self, title: str, content: Table) -> None:
        """Rows for a report table; rows of one title are merged across cells and seeds."""
        attach(self.item, Extra(self.claim.name, self.tag.cell, self.tag.seed, title, content))

    def _check_call(self, call: str) -> None:
        expected = CALL_OF_KIND[self.claim.kind]
        if call != expected:
            pytest.fail(f"claim {self.claim.name!r} is pre-registered as {self.claim.kind}: "
                        f"call evidence.{expected}(), not evidence.{call}()", pytrace=False)

    @staticmethod
    def _planned(arms) -> bool:
        """--plan: no observation without its runs."""
        from harness.plan import PlannedRun

        return any(isinstance(r, PlannedRun) for a in arms for r in a.runs)

    def _record(self, call: str, a: Arm, b: Arm) -> None:
        self._check_call(call)
        if self._planned((a, b)):
            return
        unchecked = [n for n in self.claim.domain if n not in self.checks]
        if unchecked:
            pytest.fail(f"claim {self.claim.name!r} pre-registers the domain condition(s) {', '.join(unchecked)}: "
                        f"check each with evidence.in_domain() before the pair", pytrace=False)
        obs = Observation(self.claim.name, self.tag.cell, self.tag.seed, a, b,
                          tuple(self.checks[n] for n in self.claim.domain))
        attach(self.item, obs)
        self.recorded.append(obs)
        failed = obs.failures()
        if failed:
            pytest.fail("run failed: " + "; ".join(failed), pytrace=False)
