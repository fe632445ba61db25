"""The recommendation end to end on small image folders, grayscale and colour, through the command a
user runs: pytest claims/test_recommendation.py --datasets folder:PATH --models MODEL."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import FASHION_TINY, ROOT, harness_on_path, latest_report

from harness.recommend import DECISIONS


def colour_folder(root):
    """fashion_tiny's images tinted per class into RGB: a colour image folder of the same layout."""
    tints = {}
    for path in sorted(FASHION_TINY.rglob("*.png")):
        label = path.parent.name
        tint = tints.setdefault(label, np.random.default_rng(len(tints)).uniform(0.4, 1.0, 3))
        grey = np.asarray(Image.open(path), dtype=float)[..., None]
        out = root / path.relative_to(FASHION_TINY)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((grey * tint).astype(np.uint8), "RGB").save(out)
    return root


@pytest.fixture
def session(pytester, monkeypatch, tmp_path_factory):
    harness_on_path(monkeypatch)
    (pytester.path / "claims").mkdir()
    shutil.copy(ROOT / "claims" / "test_recommendation.py", pytester.path / "claims")
    data = tmp_path_factory.mktemp("data")
    return lambda *args: pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpus=cpu", "--profile=smoke",
                                                       f"--data-dir={data}", *args)


@pytest.mark.parametrize("colour", [False, True], ids=["grayscale-lenet", "colour-efficientnet_lite0"])
def test_a_user_s_folder_gets_the_recommendation_section_first(session, pytester, tmp_path, colour):
    folder = colour_folder(tmp_path / "colour") if colour else FASHION_TINY
    model = "efficientnet_lite0" if colour else "lenet"  # LeNet takes one channel
    result = session("claims/", f"--datasets=folder:{folder}", f"--models={model}", "--seeds=3")
    result.assert_outcomes(passed=3)
    reports = latest_report(pytester.path / "reports")
    md = (reports / "summary.md").read_text()
    top = md.split("- **date**")[0]
    cell = f"{model}-folder:{folder}"
    assert top.index("## Recommendation") < top.index(f"### {cell}")
    data = json.loads((reports / "summary.json").read_text())
    (rec,) = data["recommendation"]
    assert rec["cell"] == cell and rec["decision"] in DECISIONS and rec["seeds"] == 3
    # LeNet trains from scratch on one channel: neither pretraining nor ImageNet's stats; EfficientNet-Lite0
    # has its own (0.5/0.5) beside ImageNet's
    arms = (["dataset", "imagenet", "instance", "minmax", "none", "pretrain (0.5/0.5)"] if colour
            else ["dataset", "instance", "minmax", "none"])
    assert sorted(r["arm"] for r in rec["ranking"]) == arms
    assert len(rec["intervals"]) == len(arms) * (len(arms) - 1) // 2
    assert all(i["low"] <= i["mean"] <= i["high"] for i in rec["intervals"])
    assert rec["words"] in md and data["claims"] == []  # no pairwise claim ran
    assert f"**compute**: {3 * len(arms)} runs, {3 * len(arms)} trained this session" in md  # the header counts them
    result.stdout.fnmatch_lines(["*normclaims recommendation*", f"{cell}: *(3 seeds)"])


def test_recommend_norms_chooses_the_arms_and_bad_names_are_one_error_line(session, pytester):
    result = session("claims/", f"--datasets=folder:{FASHION_TINY}", "--models=lenet", "--seeds=3",
                     "--recommend-norms=dataset,none")
    result.assert_outcomes(passed=3)
    (rec,) = json.loads((latest_report(pytester.path / "reports") / "summary.json").read_text())["recommendation"]
    assert sorted(r["arm"] for r in rec["ranking"]) == ["dataset", "none"]
    for bad, message in (("datset,none", "did you mean 'dataset'"), ("none", "at least two different"),
                         ("none,none", "at least two different")):
        result = session("claims/", "--recommend-norms", bad)
        errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
        assert result.ret == 4 and len(errors) == 1 and message in errors[0], result.stderr.lines


def test_plan_prices_the_user_s_cell_before_any_compute(session, pytester):
    result = session("claims/", f"--datasets=folder:{FASHION_TINY}", "--models=lenet", "--seeds=auto", "--plan")
    assert result.ret == 0
    plan = (pytester.path / "reports" / "plan.md").read_text()
    assert "| recommendation " in plan and f"lenet-folder:{FASHION_TINY}" in plan
    row = next(line for line in plan.splitlines() if line.startswith("| recommendation ") and "folder:" in line)
    assert [c.strip() for c in row.split("|")][3:5] == ["32", "0"]  # 4 arms x 8 seeds at the last look, none stored


def test_the_default_profile_runs_it_on_a_user_s_cells_and_leaves_out_only_its_offline_one(session, pytester, tmp_path):
    """`pytest claims/ --datasets folder:PATH --models MODEL` under the default profile: the user's cell
    runs; without them, the offline cell is listed as left out with the command that runs it."""
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpus=cpu", "--seeds=3", "claims/",
                                           f"--data-dir={tmp_path}", f"--datasets=folder:{FASHION_TINY}", "--models=lenet")
    result.assert_outcomes(passed=3)
    data = json.loads((latest_report(pytester.path / "reports") / "summary.json").read_text())
    assert [r["cell"] for r in data["recommendation"]] == [f"lenet-folder:{FASHION_TINY}"] and not data["deferred"]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gpus=cpu", "--plan", "claims/",
                                           f"--data-dir={tmp_path}")
    assert result.ret == 0
    plan = (pytester.path / "reports" / "plan.md").read_text()
    assert "efficientnet_lite0-fashion_mnist" not in plan
