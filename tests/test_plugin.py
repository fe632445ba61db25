"""The plugin end to end: pytester runs of tiny claims in subprocesses, with and without xdist."""
import json
import re
from pathlib import Path

import pytest

from conftest import FASHION_TINY, ROOT, harness_on_path, latest_report

CONFTEST = ""  # the installed harness registers its plugin through its pytest11 entry point

TINY_CLAIM = f'''
"""Tiny claim: dataset stats beat no normalization for LeNet on a 4-class image folder."""
import pytest

pytestmark = pytest.mark.claim(
    "tiny", title="dataset beats none", source="test fixture",
    cells=(("lenet", "folder:{FASHION_TINY}"),), alpha=0.05, min_seeds=2,
)


def test_tiny(finetune, evidence, model, dataset, seed):
    a = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, batch_size=32)
    b = finetune(model=model, dataset=dataset, norm="none", seed=seed, batch_size=32)
    evidence.greater(a, b)
'''


@pytest.fixture
def project(pytester, tmp_path_factory, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM)
    data = tmp_path_factory.mktemp("data")
    harness_on_path(monkeypatch)

    def run(*args):
        # "--opt=value" as users may also write it; values as separate args are tested below
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--profile=smoke", "--gpus=cpu",
                                             f"--data-dir={data}", *args)

    return run


def summary(pytester) -> dict:
    return json.loads((latest_report(pytester.path / "reports") / "summary.json").read_text())


def threads(run: dict) -> int:
    return run["result"]["meta"]["threads"]


def usage_error(result) -> str:
    """The one `ERROR:` line of a session stopped by a usage error (exit status 4)."""
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert result.ret == 4 and len(errors) == 1, (result.ret, result.stderr.lines)
    return errors[0]


def test_claim_runs_and_writes_the_report(project, pytester):
    result = project("--seeds", "3")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*normclaims verdicts*", "tiny: * of 1 cell(s)", "report: *summary.md"])
    data = summary(pytester)
    cell = data["claims"][0]["cells"][0]
    assert cell["cell"] == {"model": "lenet", "dataset": f"folder:{FASHION_TINY}"}
    assert cell["seeds"] == [0, 1, 2] and len(cell["a"]) == 3 and cell["verdict"] in ("supported", "refuted", "inconclusive")
    assert len(cell["runs"]) == 6 and all(r["result"]["steps"] == 5 for r in cell["runs"])
    md = (pytester.path / "reports" / "summary.md").read_text()
    for needle in ("## tiny: dataset beats none", "| cell", "Model × dataset", "**profile**: smoke", "**seeds**: 3", "**commit**"):
        assert needle in md
    assert data["claims"][0]["cost"]["trained"] == 6


def test_rerun_trains_nothing(project, pytester):
    project("--seeds", "2").assert_outcomes(passed=2)
    first = summary(pytester)["claims"][0]["cells"][0]
    project("--seeds", "2").assert_outcomes(passed=2)
    again = summary(pytester)["claims"][0]
    assert again["cost"]["trained"] == 0 and again["cost"]["cached"] == 4
    assert again["cells"][0]["a"] == first["a"] and again["cells"][0]["b"] == first["b"]
    project("--seeds", "2", "--rerun").assert_outcomes(passed=2)
    assert summary(pytester)["claims"][0]["cost"]["trained"] == 4


def test_xdist_gives_the_same_numbers(project, pytester):
    """At a fixed thread count CPU runs are bitwise reproducible, whichever worker runs them."""
    project("--seeds", "4", "--store", "serial.sqlite", "--cpu-threads", "1").assert_outcomes(passed=4)
    serial = summary(pytester)["claims"][0]["cells"][0]
    result = project("--seeds", "4", "--store", "parallel.sqlite", "--cpu-threads", "1", "-n", "2")
    result.assert_outcomes(passed=4)
    parallel = summary(pytester)["claims"][0]
    assert parallel["cost"]["trained"] == 8
    cell = parallel["cells"][0]
    assert (cell["a"], cell["b"], cell["verdict"]) == (serial["a"], serial["b"], serial["verdict"])
    assert {threads(r) for r in cell["runs"]} == {1} == {threads(r) for r in serial["runs"]}
    assert {r["result"]["device"] for r in cell["runs"]} == {r["result"]["device"] for r in serial["runs"]}


def test_workers_split_the_cores_and_share_the_store(project, pytester, monkeypatch):
    """By default one process uses every core and each of N xdist workers cores // N, recorded with
    each run; the thread count is not part of a run's identity, so either fills the store for the other."""
    from harness.devices import available_cores, core_share

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the suite caps nested sessions at 1 thread
    cores = available_cores()
    project("--seeds", "2").assert_outcomes(passed=2)
    assert {threads(r) for r in summary(pytester)["claims"][0]["cells"][0]["runs"]} == {cores}
    assert summary(pytester)["header"]["threads per run"] == f"{cores} (4 runs)"
    project("--seeds", "2", "-n", "2").assert_outcomes(passed=2)
    assert summary(pytester)["claims"][0]["cost"]["trained"] == 0  # served by the serial session's runs
    project("--seeds", "2", "-n", "2", "--rerun").assert_outcomes(passed=2)
    assert {threads(r) for r in summary(pytester)["claims"][0]["cells"][0]["runs"]} == {core_share(cores, 2)}
    assert summary(pytester)["header"]["threads per run"] == f"{core_share(cores, 2)} (4 runs)"


def test_core_share():
    from harness.devices import core_share

    assert [core_share(2, n) for n in (1, 2, 4)] == [2, 1, 1]
    assert [core_share(16, n) for n in (1, 2, 4, 0)] == [16, 8, 4, 16]
    assert core_share(16, 2, "4") == 4 and core_share(2, 1, "8") == 2  # OMP_NUM_THREADS caps the share
    assert core_share(16, 1, "") == core_share(16, 1, "junk") == 16


@pytest.mark.parametrize("args, message", [
    (["--gpus", "7"], "no CUDA device 7"),
    (["--gpus", "0;1"], "expected 'cpu' or a comma list"),
    (["--seeds", "0"], "--seeds 0: must be at least 1"),
    (["--seeds", "three"], "expected a positive integer"),
    (["--cpu-threads", "0"], "--cpu-threads 0: must be at least 1"),
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--datasets", "cifar01"], "unknown dataset 'cifar01'; did you mean 'cifar10'?"),
    (["--models", "resnet5"], "unknown model 'resnet5'; did you mean 'resnet50'?"),
    (["--datasets", "folder:/no/such/dir"], "image folder '/no/such/dir' not found"),
    (["--seeds", "100000000"], "--seeds 100000000: at most 1000"),
    (["--data-dir", "conftest.py"], "conftest.py: not a folder"),
    (["--store", "/dev/null/x.sqlite"], "--store /dev/null/x.sqlite: its folder /dev/null: not a folder"),
    (["--report-dir", "conftest.py"], "conftest.py: not a folder"),
])
def test_bad_options_are_one_line_usage_errors(project, pytester, args, message):
    result = project(*args)
    assert message in usage_error(result)
    # the path checks (run before some of these options are read) leave no folder behind
    assert not (pytester.path / "reports").exists() and not (pytester.path / ".normclaims").exists()


def ran_nothing(result, pytester, data_dir) -> bool:
    """No item ran (none trained): no outcome counted, no store, report or decoded data written."""
    return (not re.search(r"\d+ (passed|failed|skipped)", result.stdout.str()) and not data_dir.exists()
            and not (pytester.path / ".normclaims").exists() and not (pytester.path / "reports").exists())


# /proc takes no new files or folders whoever runs the suite: root, whom permission bits do not stop, too
needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc: a folder no one can write to")
UNWRITABLE = {
    "store": (["--store=/proc/x.sqlite"], "--store /proc/x.sqlite: its folder /proc: not writable"),
    "report-dir": (["--report-dir=/proc/x"], "--report-dir /proc/x: cannot be made (mkdir /proc/x"),
    "data-dir": (["--data-dir=/proc"], "--data-dir /proc: not writable"),
}


@needs_proc
@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
@pytest.mark.parametrize("case", UNWRITABLE)
def test_an_unwritable_path_stops_the_session_before_training(project, pytester, tmp_path, case, xdist):
    """Every path a session writes is tried before anything trains (permission bits would not tell),
    by the controller before any xdist worker starts: one ERROR line naming the option and the path."""
    args, message = UNWRITABLE[case]
    data_dir = tmp_path / "data"  # unless the case names another: a later option wins
    result = project("--seeds=2", f"--data-dir={data_dir}", *args, *(["-n", "2"] if xdist else []))
    assert message in usage_error(result)
    assert ran_nothing(result, pytester, data_dir)


@needs_proc
def test_plan_checks_only_the_report_dir_it_writes(project, pytester):
    """--plan writes plan.md and nothing else: a store and a data dir it only reads may be read-only."""
    result = project("--seeds=2", "--plan", "--store=/proc/x.sqlite", "--data-dir=/proc")
    assert result.ret == 0 and (pytester.path / "reports" / "plan.md").exists()
    result = project("--seeds=2", "--plan", "--report-dir=/proc/x")
    assert "--report-dir /proc/x: cannot be made" in usage_error(result)


def test_missing_folders_are_made_when_written_and_not_by_the_check(project, pytester, tmp_path):
    """The check makes a missing data dir, store folder and report dir only to try them: a session
    stopped by a later check leaves none of them; a session that runs makes each as it writes it."""
    new = tmp_path / "new"
    paths = (f"--data-dir={new / 'data'}", f"--store={new / 'store' / 'runs.sqlite'}",
             f"--report-dir={new / 'reports'}")
    result = project(*paths, "--models=resnet5")  # read after the paths are checked
    assert "unknown model 'resnet5'" in usage_error(result)
    assert not new.exists()
    project(*paths, "--seeds=2").assert_outcomes(passed=2)
    assert (new / "store" / "runs.sqlite").is_file() and (new / "reports" / "summary.json").is_file()
    assert any(p.is_file() for p in (new / "data").rglob("*"))  # the image folder's decoded arrays


def test_corrupt_store_is_a_usage_error(project, pytester):
    store = pytester.path / "bad.sqlite"
    store.write_bytes(b"\x00garbage" * 64)
    result = project("--store", "bad.sqlite")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: run store *bad.sqlite is not a readable SQLite database*"])
    assert store.read_bytes() == b"\x00garbage" * 64


def test_options_are_in_help(project):
    result = project("--help")
    result.stdout.fnmatch_lines(["normclaims: empirical claims about image normalization:", "*--gpus=LIST*",
                                 "*--seeds=N*", "*--profile=NAME*", "*--rerun*"])


REFUTED_CLAIM = '''
import pytest
from harness.observations import Arm

pytestmark = pytest.mark.claim("backwards", title="a worse arm", source="test", cells=(("lenet", "mnist"),), min_seeds=3)


def test_backwards(evidence, model, dataset, seed):
    evidence.greater(Arm("a", 0.50 + 0.001 * seed), Arm("b", 0.90))
'''


def test_refuted_claim_fails_the_session(project, pytester):
    pytester.makepyfile(test_backwards=REFUTED_CLAIM)
    result = project("--seeds", "4", "-k", "backwards")
    result.assert_outcomes(passed=4)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*refuted*lenet-mnist*"])


DIVERGING_CLAIM = f'''
import pytest

pytestmark = pytest.mark.claim("diverge", title="tiny std", source="test", cells=(("lenet", "folder:{FASHION_TINY}"),))


def test_diverge(finetune, evidence, model, dataset, seed):
    a = finetune(model=model, dataset=dataset, norm="fixed:0.5/1e-39", seed=seed, batch_size=32)
    b = finetune(model=model, dataset=dataset, norm="none", seed=seed, batch_size=32)
    evidence.greater(a, b)
'''


def test_diverging_run_makes_its_cell_invalid(project, pytester):
    pytester.makepyfile(test_diverge=DIVERGING_CLAIM)
    result = project("--seeds", "2", "-k", "diverge")
    result.assert_outcomes(failed=2)
    cell = summary(pytester)["claims"][0]["cells"][0]
    assert cell["verdict"] == "invalid" and "non-finite training loss" in cell["reason"]


def test_unavailable_data_skips_the_cell_with_a_reason(project, pytester, monkeypatch):
    claim = TINY_CLAIM.replace(f'("lenet", "folder:{FASHION_TINY}")', '("efficientnet_lite0", "cifar10")')
    pytester.makepyfile(test_offline=claim.replace('"tiny"', '"offline"'))
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # no network, whatever the machine has
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    result = project("--seeds", "2", "-k", "offline")
    result.assert_outcomes(skipped=2)
    md = (latest_report(pytester.path / "reports") / "summary.md").read_text()
    assert "Skipped cells:" in md and "efficientnet_lite0-cifar10: CIFAR10 not found and its download failed" in md


def prereg_claim(**prereg) -> str:
    settings = ", ".join(f"{k}={v!r}" for k, v in prereg.items())
    return TINY_CLAIM.replace("alpha=0.05, min_seeds=2,", settings + ",")


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
@pytest.mark.parametrize("prereg, seeds, message", [
    ({"test": "wilcoxon", "alternative": "two-sided"}, 5,
     "wilcoxon (two-sided) with 5 seeds cannot give p below 0.0625, so it can never reach alpha = 0.05"),
    ({"kind": "equivalence"}, 5, "equivalence needs a positive margin"),
    ({"test": "welch"}, 5, "unknown test 'welch'"),
    ({"kind": "bigger"}, 5, "unknown kind 'bigger'"),
])
def test_bad_preregistration_is_refused_before_training(project, pytester, xdist, prereg, seeds, message):
    pytester.makepyfile(test_tiny_claim=prereg_claim(**prereg))
    result = project(f"--seeds={seeds}", *(["-n", "2"] if xdist else []))
    assert message in usage_error(result)
    assert not (pytester.path / ".normclaims").exists()  # nothing trained, no store written


@pytest.mark.parametrize("settings, message", [
    ("margin=-1.0", "margin must be a finite positive number of accuracy points, got -1.0"),
    ("margin=float('nan')", "margin must be a finite positive number"),
    ("margin=float('inf')", "margin must be a finite positive number"),
    ("alpha='0.05'", "alpha must be a number in (0, 1), got '0.05'"),
    ("min_seeds=2.5", "min_seeds must be an integer, got 2.5"),
    ("test='wilcoxon', cells=(('lenet', 'mnist'), ('lenet', 'fashion_mnist'))",
     "wilcoxon (greater) with 5 seeds cannot give p below 0.03125 times 2 cells (Holm)"),
])
def test_malformed_preregistration_is_one_line(project, pytester, settings, message):
    default_cells = f'cells=(("lenet", "folder:{FASHION_TINY}"),)'
    text = settings if "cells=" in settings else f"{default_cells}, {settings}"
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM.replace(f"{default_cells}, alpha=0.05, min_seeds=2,", text + ","))
    result = project("--seeds=5", "--collect-only")
    assert message in usage_error(result)


def test_enough_seeds_make_the_same_claim_acceptable(project, pytester):
    pytester.makepyfile(test_tiny_claim=prereg_claim(test="wilcoxon", alternative="two-sided", min_seeds=2))
    result = project("--seeds=6", "--collect-only", "-q")
    assert result.ret == 0


def test_equivalence_claim_end_to_end(project, pytester):
    claim = prereg_claim(kind="equivalence", margin=50.0, min_seeds=2).replace("evidence.greater", "evidence.equivalent")
    pytester.makepyfile(test_tiny_claim=claim)
    project("--seeds=3").assert_outcomes(passed=3)
    data = summary(pytester)["claims"][0]
    assert data["kind"] == "equivalence" and data["margin"] == 50.0
    cell = data["cells"][0]
    assert cell["verdict"] == "supported" and "TOST" in cell["reason"]  # two arms within 50 points
    md = (pytester.path / "reports" / "summary.md").read_text()
    assert "H1 (equivalence): |**dataset** − **none**| < 50.0 pt" in md


def test_evidence_must_match_the_preregistered_kind(project, pytester):
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM.replace("evidence.greater", "evidence.equivalent"))
    result = project("--seeds=2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*pre-registered as superiority: call evidence.greater(), not evidence.equivalent()*"])


def test_a_typo_in_a_run_setting_fails_before_any_training(project, pytester):
    pytester.makepyfile(test_tiny_claim=TINY_CLAIM.replace("batch_size=32)", "batch_size=32, augment='crop')", 1))
    result = project("--seeds=2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*bad run request in the claim: run setting augment='crop' is not one of: "
                                 "'crop_flip', 'random_resized_crop', 'none'*"])
    assert not (pytester.path / ".normclaims").exists()  # no lease, no store


def test_each_report_payload_crosses_once(project, pytester):
    """The item's claim, cell and seed, and its observation, travel as one user property each."""
    pytester.makepyfile(test_backwards=REFUTED_CLAIM)
    pytester.makeconftest('''
import json
def pytest_runtest_logreport(report):
    if report.when == "call":
        kinds = [json.loads(v)["type"] for k, v in report.user_properties if k == "normclaims"]
        print("PAYLOADS", report.nodeid, sorted(kinds))
''')
    result = project("--seeds=3", "-k", "backwards", "-s")
    result.stdout.fnmatch_lines(["*PAYLOADS *seed0* ['item', 'observation']*"])


SEQUENTIAL_CLAIM = '''
import pytest
from harness.observations import Arm

NOISE = [0.3, -0.5, 0.2, 0.6, -0.4, -0.1, 0.5, -0.3]
pytestmark = pytest.mark.claim("sequential", title="a planned claim", source="test",
                               cells=(("lenet", "mnist"), ("lenet", "fashion_mnist")), looks=(3, 5, 8), min_seeds=3)


def test_sequential(evidence, model, dataset, seed):
    effect = 0.2 if dataset == "mnist" else 0.0  # a clear effect in one cell, none in the other
    evidence.greater(Arm("a", 0.5 + effect + NOISE[seed] / 100 * (1 if dataset == "mnist" else 10)), Arm("b", 0.5))
'''


def test_seeds_auto_follows_the_sequential_plan(project, pytester):
    pytester.makepyfile(test_sequential=SEQUENTIAL_CLAIM)
    result = project("--seeds", "auto", "-n", "2", "-k", "sequential")
    result.assert_outcomes(passed=2)  # one item per cell
    cells = {c["cell"]["dataset"]: c for c in summary(pytester)["claims"][0]["cells"]}
    assert cells["mnist"]["seeds"] == [0, 1, 2] and cells["mnist"]["verdict"] == "supported"
    assert "stopped at look 1 of 3 (3 seeds), alpha 0.05 / 2 cells" in cells["mnist"]["reason"]
    # no effect and a wide spread: the rest of the plan could hardly decide it, so the item stops at 3 seeds
    assert cells["fashion_mnist"]["seeds"] == [0, 1, 2] and cells["fashion_mnist"]["verdict"] == "inconclusive"
    assert "stopped for futility at look 1 of 3 (3 seeds)" in cells["fashion_mnist"]["reason"]
    assert cells["fashion_mnist"]["futile"]["look"] == 0 and cells["fashion_mnist"]["futile"]["conditional_power"] < 0.05
    assert cells["mnist"]["futile"] is None
    assert summary(pytester)["header"]["seeds"].startswith("auto: each claim's sequential plan")
    fixed = project("--seeds", "8", "-k", "sequential")  # a fixed design at the plan's last look
    fixed.assert_outcomes(passed=16)
    assert not any(c["exploratory"] or c["sequential_family"] for c in summary(pytester)["claims"][0]["cells"])


def test_without_a_futility_stop_an_undecided_cell_runs_to_the_last_look(project, pytester):
    pytester.makepyfile(test_sequential=SEQUENTIAL_CLAIM.replace("min_seeds=3)", "min_seeds=3, futility=None)"))
    project("--seeds", "auto", "-n", "2", "-k", "sequential").assert_outcomes(passed=2)
    cells = {c["cell"]["dataset"]: c for c in summary(pytester)["claims"][0]["cells"]}
    assert cells["fashion_mnist"]["seeds"] == list(range(8)) and cells["fashion_mnist"]["verdict"] == "inconclusive"
    assert "no boundary crossed by 8 seeds" in cells["fashion_mnist"]["reason"]


def test_more_seeds_than_planned_are_exploratory(project, pytester):
    pytester.makepyfile(test_backwards=REFUTED_CLAIM.replace("min_seeds=3)", "min_seeds=3, seeds=3)"))
    project("--seeds", "3", "-k", "backwards").assert_outcomes(passed=3)
    assert not summary(pytester)["claims"][0]["cells"][0]["exploratory"]
    project("--seeds", "4", "-k", "backwards").assert_outcomes(passed=4)
    cell = summary(pytester)["claims"][0]["cells"][0]
    assert cell["exploratory"] and "exploratory: 4 seeds" in cell["reason"]
    assert "(exploratory)" in (latest_report(pytester.path / "reports") / "summary.md").read_text()


def test_a_fixed_design_runs_its_own_seeds_unless_seeds_says_otherwise(project, pytester):
    """A claim that plans its own number of seeds (a scan whose exact test needs 4, say) runs them
    under any profile; --seeds N still runs N."""
    pytester.makepyfile(test_backwards=REFUTED_CLAIM.replace("min_seeds=3)", "min_seeds=3, seeds=4)"))
    project("-k", "backwards").assert_outcomes(passed=4)  # the smoke profile's 2 seeds elsewhere
    assert summary(pytester)["claims"][0]["cells"][0]["seeds"] == [0, 1, 2, 3]
    project("--seeds", "3", "-k", "backwards").assert_outcomes(passed=3)


DEPENDENT_CLAIM = f'''
import pytest

pytestmark = pytest.mark.claim("pick", title="the best of three, then one more", source="test",
                               cells=(("lenet", "folder:{FASHION_TINY}"),), min_seeds=2)


def test_pick(finetune, evidence, model, dataset, seed):
    runs = {{lr: finetune(model=model, dataset=dataset, norm="dataset", seed=seed, batch_size=32, lr=lr)
            for lr in (1e-3, 3e-3, 1e-2)}}
    best = max(runs, key=lambda lr: runs[lr].accuracy)
    again = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, batch_size=32, lr=best, epochs=2)
    evidence.greater(again, runs[best])
'''


def test_plan_trains_nothing_and_counts_what_a_session_would(project, pytester):
    pytester.makepyfile(test_pick=DEPENDENT_CLAIM)
    pytester.makeconftest("""
import sys
def pytest_unconfigure(config):
    print("TORCH_IMPORTED", "torch" in sys.modules)
""")
    result = project("--seeds", "2", "--plan", "-k", "pick or tiny")
    assert result.ret == 0
    assert not (pytester.path / ".normclaims").exists()  # no store: nothing trained, nothing written to it
    result.stdout.fnmatch_lines(["*normclaims plan*", "*TORCH_IMPORTED False*"])
    plan = (pytester.path / "reports" / "plan.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in plan.split("Per cell:")[0].splitlines() if line.startswith("| ") and "claim" not in line}
    # pick: 3 runs per seed plus one chosen from their results (dependent); tiny: 2 per seed
    assert rows["pick"][:5] == ["1", "8", "0", "8", "2"] and rows["tiny"][:5] == ["1", "4", "0", "4", "0"]
    assert rows["tiny"][5] == "unknown"  # no finished run to measure a speed from
    assert "unknown (no paired seeds in the store)" not in rows["tiny"][6]  # no target effect: said so
    project("--seeds", "2", "-k", "test_tiny_claim").assert_outcomes(passed=2)
    again = project("--seeds", "2", "--plan", "-k", "test_tiny_claim")
    again.stdout.fnmatch_lines(["*| tiny * 1 * 4 * 4 * 0 * 0 *"])
    more = project("--seeds", "3", "--plan", "-k", "test_tiny_claim")  # one more seed: 2 runs, at the measured speed
    more.stdout.fnmatch_lines(["*| tiny * 1 * 6 * 4 * 2 * 0 * 0.0*"])


def test_plan_reads_no_data_for_a_claims_table(project, pytester, tmp_path):
    """dataset_stats records 000's Table 1 and strong_std the three std estimates from the data when
    they run; planning them on a data dir never used decodes nothing and imports no torch."""
    pytester.makepyfile(test_stats=(ROOT / "claims" / "test_dataset_stats.py").read_text(),
                        test_std=(ROOT / "claims" / "test_std_estimator.py").read_text())
    pytester.makeconftest("""
import sys
def pytest_unconfigure(config):
    print("TORCH_IMPORTED", "torch" in sys.modules)
""")
    cold = tmp_path / "cold"
    result = project("--plan", "-k", "(test_dataset_stats or test_strong_beats_weak) and fashion_mnist",
                     f"--data-dir={cold}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*normclaims plan*", "*| dataset_stats * efficientnet_lite0-fashion_mnist *",
                                 "*| strong_std * efficientnet_lite0-fashion_mnist *", "*TORCH_IMPORTED False*"])
    assert not cold.exists() or not any(p.is_file() for p in cold.rglob("*"))
