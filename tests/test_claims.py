"""The catalogue at smoke scale: every claim module runs end to end and yields verdicts, tables
and figures. One subprocess session over the shipped claims with a temporary store and report.

The catalogue policy tests here cover the shipped claim modules only (tests/catalogue.py): a claim
a user saves in claims/, as the README's "Adding your own" says, meets the rules of every claim
(checked at collection) and is none of this suite's business."""
import ast
import fcntl
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from catalogue import SHIPPED_CLAIM_MODULES, shipped_claim_files
from conftest import FASHION_TINY, ROOT, latest_report


def claim_marks(marks) -> list:
    marks = marks if isinstance(marks, list) else [marks]
    return [getattr(m, "mark", m) for m in marks if m.name == "claim"]


def catalogue_claims() -> set[str]:
    """The claim names the shipped modules declare, read from their markers as the plugin reads them."""
    return set(catalogue_specs())


def catalogue_specs() -> dict:
    """name -> ClaimSpec of every claim of the shipped modules."""
    from harness.claims import claim_from_marker

    names = {}
    for path in shipped_claim_files():
        spec = importlib.util.spec_from_file_location(f"catalogue_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module_marks = claim_marks(getattr(module, "pytestmark", []))
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test"):
                continue
            marks = claim_marks(getattr(func, "pytestmark", [])) or module_marks
            if marks:
                spec = claim_from_marker(marks[0], path.stem)
                names[spec.name] = spec
    return names


@pytest.fixture(scope="module")
def smoke_session(tmp_path_factory, worker_id):
    """One catalogue session however many xdist workers collect these tests: the first to take
    the lock runs it, the others read its report."""
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    tmp = shared / "catalogue"
    with open(shared / "catalogue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (tmp / "done").exists():
            tmp.mkdir(exist_ok=True)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "NORMCLAIMS_DATA_DIR": str(shared / "catalogue-data")}
            cmd = [sys.executable, "-m", "pytest", *map(str, shipped_claim_files()), "-q", "-p", "no:cacheprovider",
                   "--profile=smoke", "--seeds=3", "--gpus=cpu", f"--store={tmp / 'runs.sqlite'}",
                   f"--report-dir={tmp / 'reports'}"]
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
            # 1: some claim refuted
            (tmp / "done").write_text(json.dumps({"returncode": proc.returncode,
                                                  "output": proc.stdout[-3000:] + proc.stderr[-3000:]}))
    done = json.loads((tmp / "done").read_text())
    assert done["returncode"] in (0, 1), done["output"]
    reports = latest_report(tmp / "reports")  # the shipped files, named: a partial session
    return reports, json.loads((reports / "summary.json").read_text())


def pairwise_claims() -> list[str]:
    """The claims decided by a paired test (harness.verdicts); the ranking ones decide by harness.recommend."""
    return sorted(name for name, spec in catalogue_specs().items() if spec.kind != "ranking")


def test_every_claim_gives_verdicts_offline(smoke_session):
    _, data = smoke_session
    names = {c["name"] for c in data["claims"]}
    assert names == set(pairwise_claims()) and len(names) >= 14
    (recommendation,) = data["recommendation"]  # the ranking claim's offline cell, in its own section
    assert recommendation["cell"] == "efficientnet_lite0-fashion_mnist" and recommendation["seeds"] == 3
    assert recommendation["decision"] == "under budget"  # smoke's one epoch cannot show its curve
    for claim in data["claims"]:
        judged = [c for c in claim["cells"] if c["verdict"] != "invalid" and len(c["seeds"]) == 3]
        assert judged, f"{claim['name']} has no offline cell with 3 seeds"
        assert all(c["reason"] for c in claim["cells"])


def test_report_has_the_figures_and_tables(smoke_session):
    reports, data = smoke_session
    md = (reports / "summary.md").read_text()
    by_name = {c["name"]: c for c in data["claims"]}
    for name in ("dataset_stats", "plateau", "retraining_recovers", "fixres_test_res"):
        assert by_name[name]["figures"], name
        for figure in by_name[name]["figures"]:
            assert (reports / figure).stat().st_size > 1000 and f"]({figure})" in md
    assert "std estimates of each dataset's train split" in md
    assert "| mnist " in md and "| fashion_mnist " in md
    assert "0.3081" in md and "0.3015" in md  # MNIST's exact and weak std
    assert "000 Table 1: pixel mean and std" in md and "contradicts the source's own stats.py" in md
    assert "| resnet18-cifar10              | 87.88 " in md  # the source's figure for a cell skipped here


def test_guards_hold_in_the_catalogue(smoke_session):
    _, data = smoke_session
    runs = [r for claim in data["claims"] for c in claim["cells"] for r in c["runs"]]
    trained = [r["result"] for r in runs if r["config"]["train"]]
    assert trained and all(r["steps"] > 0 for r in trained)
    shifted = [r for c in next(x for x in data["claims"] if x["name"] == "retraining_recovers")["cells"]
               for r in c["runs"] if r["config"]["test_norms"]]
    assert len(shifted) == 3  # one reference network per seed, evaluated over the whole grid
    # the 3 x 3 grid of 002's ResNet ranges and its 3 x 3 zoom
    assert all(len(r["result"]["metrics"]) == len(r["config"]["test_norms"]) == 18 for r in shifted)
    fixres = next(x for x in data["claims"] if x["name"] == "fixres_finetune")["cells"][0]["runs"]
    assert all(set(r["result"]["metrics"]) >= {"test@56", "test@96", "test@112", "fixres@96"} for r in fixres)
    low = [r for r in fixres if r["config"]["resolution"] == 56]  # 004's ratio: 56 / 96 = 0.58
    assert low and all({"fixres[classifier]@96", "fixres[bn_train_da]@96"} <= set(r["result"]["metrics"]) for r in low)
    assert all(r["result"]["meta"]["fixres_settle_accuracy"] is not None for r in low)  # the stage's own curve


def test_resnet50_selects_only_resnet50_fixres_cells():
    out = subprocess.run([sys.executable, "-m", "pytest", "claims/test_fixres.py", "-k", "resnet50", "--collect-only", "-q",
                          "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    items = [line for line in out.stdout.splitlines() if "::" in line]
    assert items and all("resnet50" in line for line in items)


NEW_CLAIM = f'''
"""A claim added by a user: one file, nothing else touched."""
import pytest

pytestmark = pytest.mark.claim("my_new_claim", title="dataset stats beat none on my folder", source="me",
                               cells=(("lenet", "folder:{FASHION_TINY}"),), min_seeds=2)


def test_mine(finetune, evidence, model, dataset, seed):
    a = finetune(model=model, dataset=dataset, norm="dataset", seed=seed, batch_size=32)
    b = finetune(model=model, dataset=dataset, norm="none", seed=seed, batch_size=32)
    evidence.greater(a, b)
'''


def test_a_new_claim_file_is_all_it_takes(tmp_path):
    """A copy of the catalogue plus one new file, in a folder with no conftest: the installed
    harness's entry point finds the plugin, the session runs the new claim and reports it."""
    shutil.copytree(ROOT / "claims", tmp_path / "claims", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "claims" / "test_my_new_claim.py").write_text(NEW_CLAIM)
    env = {**os.environ, "NORMCLAIMS_DATA_DIR": str(tmp_path / "data")}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-q", "-p", "no:cacheprovider", "--profile=smoke",
                           "--seeds=2", "--gpus=cpu", "-k", "my_new_claim"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((latest_report(tmp_path / "reports") / "summary.json").read_text())
    assert [c["name"] for c in data["claims"]] == ["my_new_claim"]
    assert data["claims"][0]["cells"][0]["seeds"] == [0, 1]


def readme_claim() -> str:
    """The claim example of the README's "Adding your own", as a user copies it: this file's tests
    break if the README's recipe does."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Adding your own\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section.split("**A claim**", 1)[1], re.S).group(1)


def test_the_shipped_list_is_every_claim_module_git_tracks():
    """A claim module committed to claims/ ships with the catalogue: it must be in tests/catalogue.py,
    or the policy tests would never see it."""
    assert all(path.is_file() for path in shipped_claim_files())
    try:
        out = subprocess.run(["git", "ls-files", "-z", "claims"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no git checkout to compare tests/catalogue.py with: {exc}")
    tracked = {Path(p).name for p in out.split("\0") if p.startswith("claims/test_") and p.endswith(".py")}
    assert tracked == set(SHIPPED_CLAIM_MODULES), ("list a shipped claim module in tests/catalogue.py",
                                                   tracked ^ set(SHIPPED_CLAIM_MODULES))


@pytest.fixture(scope="module")
def users_checkout(tmp_path_factory):
    """This checkout's tests and claims with the README's example saved in claims/, as the README
    tells a user to: what `pytest tests/` meets after following it."""
    root = tmp_path_factory.mktemp("users_checkout")
    for folder in ("tests", "claims"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    (root / "claims" / "test_minmax_vs_none.py").write_text(readme_claim(), encoding="utf-8")
    return root


def run_in(root, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NORMCLAIMS_DATA_DIR": str(root / "data")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_readme_claim_passes_the_checks_of_every_claim(users_checkout):
    """Its pre-registration is checked at collection (check_prereg, then check_power against the
    session's seeds): it collects with no usage error, one item per cell and seed."""
    proc = run_in(users_checkout, "claims/test_minmax_vs_none.py", "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    items = [line for line in proc.stdout.splitlines() if "::test_minmax_vs_none[" in line]
    assert items and any("efficientnet_lite0-fashion_mnist" in line for line in items)


POLICY_TESTS = ("test_every_claim_can_be_refuted", "test_every_claim_can_be_supported",
                "test_every_claim_states_when_it_is_a_fair_test", "test_every_claim_says_why_its_margin_is_what_it_is",
                "test_the_docstrings_quote_the_transcribed_gaps")


def test_the_readme_claim_is_not_held_to_the_catalogue_policy(users_checkout):
    """The policy tests pass beside it and never name it: they cover the shipped catalogue only."""
    proc = run_in(users_checkout, *(f"tests/test_claims.py::{name}" for name in POLICY_TESTS), "-v")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "minmax_vs_none" not in proc.stdout
    assert all(f"::{name}" in proc.stdout for name in POLICY_TESTS)  # each of them ran


@pytest.mark.parametrize("name", pairwise_claims())
def test_every_claim_can_be_refuted(name):
    """No claim holds by construction: on plausible numbers against it (a few points the wrong
    way, or outside the margin), at the claim's own seeds, test, alpha and Holm family over all its
    cells, its rule says "refuted"."""
    import numpy as np

    from harness.verdicts import judge_rows

    from factories import WOBBLE, judged_seeds

    spec = catalogue_specs()[name]
    wobble = np.array(WOBBLE[:judged_seeds(spec)])
    against = {"superiority": -3.0, "equivalence": (spec.margin or 0) + 3.0, "noninferiority": -(spec.margin or 0) - 3.0}
    d = against[spec.kind] + wobble
    verdicts, *_ = judge_rows([(spec, d[None, :]) for _ in spec.cells])
    assert set(verdicts[0]) == {"refuted"}, (name, verdicts)


@pytest.mark.parametrize("name", pairwise_claims())
def test_every_claim_can_be_supported(name):
    """The other half: on plausible numbers for it, at the claim's own seeds, test, alpha and Holm
    family, its rule says "supported" (a rule that could only refute would be as empty)."""
    import numpy as np

    from harness.verdicts import judge_rows

    from factories import WOBBLE, judged_seeds

    spec = catalogue_specs()[name]
    wobble = np.array(WOBBLE[:judged_seeds(spec)]) / 4
    towards = {"superiority": 3.0, "equivalence": 0.0, "noninferiority": 1.0}
    verdicts, *_ = judge_rows([(spec, (towards[spec.kind] + wobble)[None, :]) for _ in spec.cells])
    assert set(verdicts[0]) == {"supported"}, (name, verdicts)


def budget_runs(spec, model: str, dataset: str, profile) -> list:
    """What a claim's cell trains under `profile`, as records whose accuracy stopped moving: at three
    quarters of training it is already the final one."""
    import dataclasses

    from factories import record
    from harness.budget import settle_epoch
    from harness.protocol import make_config, numerics_for
    from harness.recipes import fixed_norm, mean_std_grid, recipe_for

    scan = spec.fair_test.grid is not None
    means, stds = mean_std_grid(profile, model)
    norms = [fixed_norm(m, s) for m in means for s in stds] if scan else ["dataset"]
    runs = []
    for norm in norms:
        cfg = make_config(model=model, dataset=dataset, norm=norm, seed=0, profile=profile, numerics=numerics_for("cpu"),
                          **recipe_for(model, profile, scan=scan))
        r = record("dataset", 0.9)
        at = settle_epoch(cfg.epochs)
        history = [{"epoch": e, "train_loss": 1.0, "test_accuracy": 0.9} for e in (at, cfg.epochs) if e]
        meta = {**r.result.meta, "train_images_in_subset": cfg.train_subset}
        runs.append(dataclasses.replace(r, key=cfg.key(), config=cfg,
                                        result=dataclasses.replace(r.result, meta=meta, history=history)))
    return runs


@pytest.mark.parametrize("name", sorted(catalogue_specs()))
def test_every_claim_states_when_it_is_a_fair_test(name):
    """Every claim pre-registers its fair test: a convergence tolerance on its own scale (its margin in
    points, else at most the plateau's 2 points), with why. Converged runs meet it under the cpu and
    paper profiles; the smoke profile's one-epoch runs cannot show their curve; scans need 5 x 5."""
    from harness.budget import shortfalls
    from harness.config import PROFILES

    spec = catalogue_specs()[name]
    fair = spec.fair_test
    assert fair is not None and fair.why and fair.converged, name
    scale = spec.margin if spec.margin is not None and spec.margin <= 2.0 else 2.0  # a margin not in points: 2 at most
    assert fair.converged <= scale, (name, fair.converged, spec.margin)
    assert spec.margin is None or spec.margin_why, f"{name}: a margin without its justification from the source"
    offline = [(m, d) for m, d in spec.cells if d in ("mnist", "fashion_mnist")]
    assert offline, name
    for model, dataset in offline:
        short = {p: shortfalls(fair, model, budget_runs(spec, model, dataset, PROFILES[p]))
                 for p in ("smoke", "quick", "cpu", "paper")}
        assert short["smoke"] and not short["cpu"] and not short["paper"], (name, model, short)
        assert bool(short["quick"]) == bool(fair.grid), (name, model, short)  # quick's 3 x 3 scans only


SIGNED_GAP = r"(?<![\d.])[+\-−]\d+\.\d\d(?!\d)"  # a source's gap as quoted, e.g. "-0.42", "+0.73", "−1.08"
GAP_RANGE = rf"({SIGNED_GAP}) to ({SIGNED_GAP}|\d+\.\d\d)"  # "-0.42 to +0.73": a claim's smallest and largest gap


def check_quoted_gaps(text: str, where: str) -> None:
    """The gaps `text` quotes are transcribed ones (harness.source_figures), and a quoted range is
    the smallest to the largest gap of one claim's figures."""
    from harness.source_figures import FIGURES

    gaps = {claim: [f.difference for f in cells.values() if f.difference is not None] for claim, cells in FIGURES.items()}
    printed = {f"{g:+.2f}" for values in gaps.values() for g in values}
    quoted = {q.replace("−", "-") for q in re.findall(SIGNED_GAP, text)}
    assert quoted <= printed, (where, quoted - printed)
    ranges = {(min(v), max(v)) for v in gaps.values() if v}
    for low, high in re.findall(GAP_RANGE, text):
        assert (float(low.replace("−", "-")), float(high.replace("−", "-"))) in ranges, (where, low, high)


@pytest.mark.parametrize("name", sorted(catalogue_specs()))
def test_every_claim_says_why_its_margin_is_what_it_is(name):
    """A margin (or its absence) is justified, and the sources' gaps a justification quotes are the
    transcribed ones, not numbers retyped where they could drift."""
    spec = catalogue_specs()[name]
    assert spec.margin_why, f"{name}: say why its margin is {spec.margin} (or why it has none)"
    check_quoted_gaps(spec.margin_why, name)


def test_the_docstrings_quote_the_transcribed_gaps():
    for path in shipped_claim_files():
        check_quoted_gaps(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "", path.name)


def test_a_misquoted_gap_is_caught():
    check_quoted_gaps("gaps of -1.08 to +0.55", "minmax")
    for wrong in ("gaps of -1.08 to +0.56", "gaps of -0.42 to +0.55", "a gap of −0.99"):
        with pytest.raises(AssertionError):
            check_quoted_gaps(wrong, "misquoted")
