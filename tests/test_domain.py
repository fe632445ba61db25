"""A claim's pre-registered domain: a cell whose runs miss a condition is "out of domain", shown
with the condition and its numbers, never refuted, never a session failure; inside the domain the
same numbers are judged (through group_cells and decide, and through whole pytester sessions)."""
import json

import pytest

from conftest import harness_on_path
from factories import cell, spec
from harness.claims import check_prereg
from harness.errors import UsageError
from harness.observations import Arm, DomainCheck, Observation, _decode, _encode
from harness.verdicts import decide, group_cells

DOMAIN = {"ratio": "r/R between 0.5 and 0.65", "augment": "trained with RandomResizedCrop"}
WOBBLE = [0.8, -0.5, 0.3, -0.9, 0.4, 0.1, -0.2]


def observations(cell_id: str, shift: float, ratio_holds: bool, seeds: int = 5) -> list[Observation]:
    checks = (DomainCheck("ratio", ratio_holds, "r/R = 0.57" if ratio_holds else "r/R = 0.14"),
              DomainCheck("augment", True, "random_resized_crop"))
    return [Observation("c", cell(cell_id), s, Arm("a", (800 + 10 * shift + WOBBLE[s]) / 1000, (), None, 1000),
                        Arm("b", 0.8, (), None, 1000), checks) for s in range(seeds)]


def judged(*cells, **prereg):
    claim = spec(domain=DOMAIN, cells=tuple(("m", c.split("-")[1]) for c in ("m-in", "m-out")), **prereg)
    obs = [o for args in cells for o in observations(*args)]
    results = group_cells(obs, {"c": claim})["c"]
    decide([results])
    return {c.cell_id: c for c in results}


def test_a_cell_outside_the_domain_is_never_refuted():
    cells = judged(("m-in", -3.0, True), ("m-out", -3.0, False))
    assert cells["m-in"].verdict == "refuted"  # the same numbers inside the domain refute
    out = cells["m-out"]
    assert out.verdict == "out of domain" and not out.tests and out.decided_by == ()
    assert "r/R between 0.5 and 0.65" in out.reason and "r/R = 0.14" in out.reason
    assert "-3.0" in out.reason  # its numbers are shown
    assert out.outside and "augment" not in " ".join(out.outside)  # only the condition it misses


def test_an_out_of_domain_cell_counts_in_the_holm_family_as_untested():
    alone = judged(("m-in", 3.0, True))["m-in"]
    beside = judged(("m-in", 3.0, True), ("m-out", 3.0, False))["m-in"]
    assert beside.untested == 1 and alone.untested == 0
    assert beside.p("support") == pytest.approx(min(1.0, 2 * alone.p("support")))


def test_a_cell_left_untrained_outside_the_domain_is_out_of_domain_not_invalid():
    """A claim may skip the arms of a cell a check already places outside its domain
    (evidence.outside_domain): the cell says so, with the check's numbers, and counts as untested."""
    checks = (DomainCheck("ratio", False, "r/R = 0.14"), DomainCheck("augment", True, "random_resized_crop"))
    untrained = [Observation("c", cell("m-out"), s, Arm.untrained("a"), Arm.untrained("b"), checks) for s in range(3)]
    claim = spec(domain=DOMAIN, cells=(("m", "in"), ("m", "out")))
    results = group_cells(observations("m-in", 3.0, True) + untrained, {"c": claim})["c"]
    decide([results])
    cells = {c.cell_id: c for c in results}
    out = cells["m-out"]
    assert out.verdict == "out of domain" and not out.failures and out.a == [] and out.summary is None
    assert "r/R = 0.14" in out.reason and "its arms were not trained" in out.reason
    assert cells["m-in"].untested == 1  # it counts in the Holm family as a cell without a test


def test_a_domain_condition_must_be_words():
    with pytest.raises(UsageError, match="domain must map"):
        check_prereg(spec(domain={"ratio": ""}))
    with pytest.raises(UsageError, match="domain must map"):
        check_prereg(spec(domain=["ratio"]))


def test_the_checks_cross_the_wire():
    obs = observations("m-out", 1.0, False, seeds=1)[0]
    back = _decode(json.loads(json.dumps(_encode(obs))))
    assert back.domain == obs.domain


# A claim with one cell inside its domain and one outside, both 3 points the wrong way.
DOMAIN_CLAIM = '''
import pytest

from harness.observations import Arm

pytestmark = pytest.mark.claim("ranged", title="a beats b", source="test", cells=(("inside", "x"), ("outside", "x")),
                               alpha=0.05, min_seeds=3, domain={"side": "trained at 64 px or more"})

WOBBLE = [0.8, -0.5, 0.3, -0.9, 0.4, 0.1, -0.2]


def test_ranged(evidence, model, dataset, seed):
    side = 64 if model == "inside" else 16
    evidence.in_domain("side", side >= 64, f"{side} px")
    evidence.greater(Arm.constant("a", (77 + WOBBLE[seed]) / 100), Arm.constant("b", 0.80))
'''

UNCHECKED_CLAIM = DOMAIN_CLAIM.replace('    evidence.in_domain("side", side >= 64, f"{side} px")\n', "")


@pytest.fixture
def session(pytester, monkeypatch):
    harness_on_path(monkeypatch)
    return lambda source, *args: (pytester.makepyfile(test_ranged_claim=source),
                                  pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpus=cpu", *args))[1]


def test_a_session_reports_the_domain_and_fails_only_inside_it(session, pytester):
    result = session(DOMAIN_CLAIM.replace('("inside", "x"), ("outside", "x")', '("outside", "x"),'), "--seeds", "5")
    assert result.ret == 0  # the only cell lies outside: nothing refuted
    report = json.loads((pytester.path / "reports" / "summary.json").read_text())
    (only,) = report["claims"][0]["cells"]
    assert only["verdict"] == "out of domain" and "16 px" in only["out_of_domain"][0]
    md = (pytester.path / "reports" / "summary.md").read_text()
    assert "out of domain" in md and "trained at 64 px or more" in md
    xml = (pytester.path / "reports" / "verdicts.xml").read_text()
    assert "<skipped" in xml and "out of domain" in xml and "<failure" not in xml
    assert session(DOMAIN_CLAIM, "--seeds", "5").ret == 1  # inside the domain the same numbers refute


UNTRAINED_CLAIM = DOMAIN_CLAIM.replace("    evidence.greater(", "    if side < 64:\n        evidence.outside_domain(\"a\", \"b\")\n        return\n    evidence.greater(")
INSIDE_UNTRAINED_CLAIM = DOMAIN_CLAIM.replace("    evidence.greater(", "    evidence.outside_domain(\"a\", \"b\")\n    evidence.greater(")


def test_a_session_shows_a_cell_left_untrained_outside_the_domain(session, pytester):
    result = session(UNTRAINED_CLAIM, "--seeds", "3")
    assert result.ret == 1  # the cell inside is refuted; the one outside failed nothing
    result.assert_outcomes(passed=6)
    cells = {c["cell"]["model"]: c for c in json.loads((pytester.path / "reports" / "summary.json").read_text())["claims"][0]["cells"]}
    assert cells["outside"]["verdict"] == "out of domain" and "not trained" in cells["outside"]["reason"]
    assert cells["outside"]["a"] == [] and not cells["outside"]["failures"]


def test_outside_domain_is_refused_for_a_cell_inside_it(session):
    result = session(INSIDE_UNTRAINED_CLAIM, "--seeds", "3")
    result.stdout.fnmatch_lines(["*outside_domain() needs a domain condition that fails*"])


def test_a_condition_the_test_never_checks_fails_its_items(session):
    result = session(UNCHECKED_CLAIM, "--seeds", "3")
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines(["*pre-registers the domain condition(s) side*evidence.in_domain()*"])
