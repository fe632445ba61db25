"""What a session leaves for CI and for the next session: the JUnit XML of verdicts, and the
changes since the previous report at the top of summary.md (pytester sessions, no training)."""

import pytest

from conftest import harness_on_path

junitparser = pytest.importorskip("junitparser", reason="the test extra: pip install -e .[test]")

# Arms given as numbers, so the verdicts are known: cell "up" has a > b by 3 points, cell "down" has
# a < b by 3 points, each with a little spread across seeds.
CONSTANT_CLAIM = '''
import pytest

from harness.observations import Arm

pytestmark = pytest.mark.claim("fixed", title="a beats b", source="test", cells=(("up", "x"), ("down", "x")),
                               alpha=0.05, min_seeds=3)

WOBBLE = [0.8, -0.5, 0.3, -0.9, 0.4, 0.1, -0.2]


def test_fixed(evidence, model, dataset, seed):
    shift = 3.0 if model == "up" else -3.0
    evidence.greater(Arm.constant("a", (80 + shift + WOBBLE[seed]) / 100), Arm.constant("b", 0.80))
'''


@pytest.fixture
def session(pytester, monkeypatch):
    pytester.makepyfile(test_fixed_claim=CONSTANT_CLAIM)
    harness_on_path(monkeypatch)
    return lambda *args: pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpus=cpu", *args)


def test_the_verdicts_are_a_junit_report(session, pytester):
    session("--seeds", "5").assert_outcomes(passed=10)
    xml = junitparser.JUnitXml.fromfile(str(pytester.path / "reports" / "verdicts.xml"))
    cases = {case.name: case for suite in xml for case in suite}
    assert set(cases) == {"up-x", "down-x"}
    failed = [name for name, case in cases.items() if any(isinstance(r, junitparser.Failure) for r in case.result)]
    assert failed == ["down-x"]  # one failure per refuted cell
    assert cases["up-x"].is_passed
    assert "refuted" in cases["down-x"].result[0].message or "other way" in cases["down-x"].result[0].text


def test_a_second_session_says_what_changed(session, pytester):
    session("--seeds", "5").assert_outcomes(passed=10)
    first = (pytester.path / "reports" / "summary.md").read_text()
    assert "Since the last report" not in first  # nothing to compare with yet
    session("--seeds", "6").assert_outcomes(passed=12)
    md = (pytester.path / "reports" / "summary.md").read_text()
    top = md.split("## Verdicts")[0]
    assert "## Since the last report" in top and "5 → 6" in top


def test_the_answers_come_first(session, pytester):
    result = session("--seeds", "5")
    md = (pytester.path / "reports" / "summary.md").read_text()
    top = md.split("## Verdicts")[0]
    assert top.index("## The answers") < top.index("- **date**")  # before the header and the explanations
    answers = top.split("## The answers")[1]
    assert "[fixed](#claim-fixed)" in answers and '<a id="claim-fixed"></a>' in md  # the link has its target
    assert "✅ supported" in answers and "❌ refuted" in answers
    assert "+3." in answers and "-3." in answers  # each cell's effect with its interval
    tail = result.stdout.str().split("normclaims answers")[1]
    assert "up-x" in tail and "down-x" in tail and "refuted" in tail  # the terminal's last lines too


INTERRUPTIBLE = CONSTANT_CLAIM.replace('''def test_fixed(evidence, model, dataset, seed):
''', '''def test_fixed(evidence, model, dataset, seed):
    import os

    if os.environ.get("INTERRUPT_AT_SEED") == str(seed) and model == "down" and not evidence.planning:
        raise KeyboardInterrupt  # as Ctrl-C does, mid-session (not while the session counts its runs)
''')


def test_a_partial_or_interrupted_session_never_replaces_the_full_report(pytester, monkeypatch):
    pytester.makepyfile(test_fixed_claim=INTERRUPTIBLE)
    harness_on_path(monkeypatch)
    run = lambda *args: pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpus=cpu", "--seeds", "5", *args)  # noqa: E731
    run().assert_outcomes(passed=10)
    reports = pytester.path / "reports"
    full = {name: (reports / name).read_bytes() for name in ("summary.md", "summary.json", "verdicts.xml")}
    run("-k", "up")
    partial = (reports / "partial" / "summary.md").read_text()
    assert "A partial session (selected with -k or -m)" in partial and "up-x" in partial and "down-x" not in partial
    monkeypatch.setenv("INTERRUPT_AT_SEED", "2")
    result = run("-p", "no:xdist")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "A partial session (interrupted)" in (reports / "partial" / "summary.md").read_text()
    assert {name: (reports / name).read_bytes() for name in full} == full  # the full report, untouched
