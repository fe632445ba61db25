"""Every claim of the normalization catalogue can be refuted through the public decision path.

Each claim's own ClaimSpec, read from its marker as the plugin reads it, judges paired numbers
through harness.verdicts.group_cells and decide (the report's path): numbers against the claim
give "refuted"; a claim with a pre-registered domain gives "out of domain", never "refuted", on
the same numbers outside it. Beside them, the claim tests themselves run on fake runs, to pin what
their arms are: a reference that can reach the claim's condition, selection kept off the judged
seeds and off the test set.
"""
import importlib.util
import inspect

import pytest

from conftest import ROOT
from factories import WOBBLE, cell, judged_seeds
from harness.claims import claim_from_marker
from harness.config import PROFILES, RunRecord, RunResult
from harness.evidence import as_arm
from harness.observations import Arm, DomainCheck, Observation
from harness.protocol import make_config, numerics_for
from harness.verdicts import decide, group_cells

MODULES = ("test_exact_values", "test_init_compensation", "test_dataset_stats", "test_no_normalization",
           "test_std_estimator", "test_norm_methods")
EVAL_IMAGES = 1000


def load(module: str):
    spec = importlib.util.spec_from_file_location(f"refutations_{module}", ROOT / "claims" / f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def claim_marks(marks) -> list:
    marks = marks if isinstance(marks, list) else [marks]
    return [getattr(m, "mark", m) for m in marks if m.name == "claim"]


def claims_of(module: str) -> dict:
    """name -> (ClaimSpec, test function) of every claim the module declares."""
    loaded = load(module)
    module_marks = claim_marks(getattr(loaded, "pytestmark", []))
    out = {}
    for name, func in inspect.getmembers(loaded, inspect.isfunction):
        marks = claim_marks(getattr(func, "pytestmark", [])) or module_marks
        if name.startswith("test") and marks:
            spec = claim_from_marker(marks[0], module)
            out[spec.name] = (spec, func)
    return out


SPECS = {name: spec for module in MODULES for name, (spec, _) in claims_of(module).items()}
SHARE_CLAIMS = {"plateau", "zero_shot_robust"}  # a share of grid cells against a stated share


def arms(name: str, spec, d_points: float, seed: int) -> tuple[Arm, Arm]:
    """One seed's pair with a - b = d_points (plus the seed's wobble), each arm on the grid its
    claim's arms really sit on."""
    d = d_points + WOBBLE[seed]
    if name in SHARE_CLAIMS:  # k of 100 cells (a 10 x 10 grid) against the stated share
        return (Arm("share", round(50 + d) / 100, (), None, 100), Arm.constant("stated share", 0.5))
    if name == "retraining_recovers":  # a mean of 25 cells, each k / 1000, against one run
        return (Arm("grid mean", round(25 * (800 + 10 * d)) / 25000, (), None, 25 * EVAL_IMAGES),
                Arm("reference", 0.8, (), None, EVAL_IMAGES))
    if name == "none_trains_as_fast":  # shares of ln(classes): no count behind them
        return Arm("none", 0.40 + d / 100, (), None, None), Arm("pretrain", 0.40, (), None, None)
    return (Arm("a", (800 + round(10 * d)) / 1000, (), None, EVAL_IMAGES), Arm("b", 0.8, (), None, EVAL_IMAGES))


def against(name: str, spec) -> float:
    """A mean difference 3 points on the wrong side of what the claim needs (a share of cells 10
    points short of the stated share: shares move in whole cells, at 3 seeds)."""
    if name in SHARE_CLAIMS:
        return -10.0
    return {"superiority": -3.0, "equivalence": (spec.margin or 0) + 3.0,
            "noninferiority": -(spec.margin or 0) - 3.0}[spec.kind]


def judge(name: str, d_points: float, holds: bool = True, pair=None) -> dict:
    """cell id -> CellResult, for every cell of the claim (its Holm family), at its own seeds (its
    planned number, else 5); pair(seed) gives the arms instead of arms()."""
    spec = SPECS[name]
    n = judged_seeds(spec)
    pair = pair or (lambda s: arms(name, spec, d_points, s))
    checks = tuple(DomainCheck(k, holds, "measured") for k in spec.domain)
    obs = [Observation(name, cell(f"{m}-{d}"), s, *pair(s), checks) for m, d in spec.cells for s in range(n)]
    results = group_cells(obs, {name: spec})[name]
    decide([results])
    return {c.cell_id: c for c in results}


def test_the_catalogue_claims_are_all_here():
    assert set(SPECS) >= {"retraining_recovers", "zero_shot_robust", "optuna_point", "dataset_stats_vs_imagenet",
                          "none_trains_as_fast", "init_compensation", "init_beats_default"}
    assert len(SPECS) == 20


@pytest.mark.parametrize("name", sorted(SPECS))
def test_numbers_against_the_claim_refute_it(name):
    cells = judge(name, against(name, SPECS[name]))
    assert {c.verdict for c in cells.values()} == {"refuted"}, [(c.cell_id, c.verdict, c.reason) for c in cells.values()]


@pytest.mark.parametrize("name", sorted(n for n, s in SPECS.items() if s.domain))
def test_outside_its_domain_a_claim_is_never_refuted(name):
    cells = judge(name, against(name, SPECS[name]), holds=False)
    assert {c.verdict for c in cells.values()} == {"out of domain"}
    assert all("measured" in c.reason for c in cells.values())


def test_the_kinds_are_as_the_sources_word_them():
    assert SPECS["retraining_recovers"].kind == "noninferiority" and SPECS["retraining_recovers"].margin == 2.0
    assert SPECS["optuna_point"].kind == "superiority"  # "may trigger a higher accuracy"
    assert SPECS["pretrain_beats_none"].margin == SPECS["dataset_stats"].margin
    assert "002" in SPECS["std_estimators_equivalent"].source  # 001 never claimed an equivalence
    assert set(SPECS["init_compensation"].domain) == set(SPECS["init_beats_default"].domain) == {"below_plateau"}


def test_a_retrained_grid_short_of_the_reference_by_more_than_the_margin_is_refuted():
    cells = judge("retraining_recovers", -5.0)  # 3 points past the margin, at the claim's 3 seeds
    assert {c.verdict for c in cells.values()} == {"refuted"}
    assert {c.verdict for c in judge("retraining_recovers", 0.0).values()} <= {"supported", "inconclusive"}


# ---------------------------------------------------------------------------- the claim tests on fake runs
SMOKE = PROFILES["smoke"]


def call(func, **fixtures):
    """A claim test called as pytest would, with the fixtures and parameters it names."""
    return func(**{k: v for k, v in fixtures.items() if k in inspect.signature(func).parameters})


class FakeEvidence:
    """What a claim test hands the evidence fixture: its domain checks and its pair."""

    planning = False

    def __init__(self):
        self.checks, self.pair = {}, None

    def in_domain(self, name, holds, measured):
        self.checks[name] = (bool(holds), measured)

    def _pair(self, kind, a, b, a_label=None, b_label=None):
        self.pair = (kind, as_arm(a, a_label), as_arm(b, b_label))

    def greater(self, a, b, **labels):
        self._pair("greater", a, b, **labels)

    def equivalent(self, a, b, **labels):
        self._pair("equivalent", a, b, **labels)

    def noninferior(self, a, b, **labels):
        self._pair("noninferior", a, b, **labels)

    def outside_domain(self, a_label, b_label):
        self.pair = ("outside_domain", Arm.untrained(a_label), Arm.untrained(b_label))

    def heatmap(self, title, content):
        pass

    def table(self, title, content):
        pass


class FakeFinetune:
    """finetune(...) -> an ok RunRecord whose accuracy `accuracy(config)` gives; every request kept."""

    def __init__(self, accuracy):
        self.accuracy, self.requests = accuracy, []

    def __call__(self, *, model, dataset, norm, seed, **settings):
        cfg = make_config(model=model, dataset=dataset, norm=norm, seed=seed, profile=SMOKE,
                          numerics=numerics_for("cpu"), **settings)
        self.requests.append(cfg)
        acc = self.accuracy(cfg)
        metrics = {f"norm@{spec}": acc - 0.3 for spec in cfg.test_norms}  # the zero-shot collapse
        result = RunResult(acc, [{"epoch": 1, "train_loss": 1.0, "test_accuracy": acc}], 4, 256, 1.0, 100.0, "cpu",
                           None, None, metrics=metrics,
                           meta={"eval_images": EVAL_IMAGES, "train_loss_quarters": [1.2, 1.0, 0.9, 0.8]})
        return RunRecord(cfg.key(), cfg, "ok", result, None, False)


def lenet_accuracy(default_gap: float):
    """Dataset stats 0.95; the grid's cells lower the further from (0, 1); a rescaled init is worth
    3 points; validation runs read `default_gap` below dataset stats at the bad cells."""
    def accuracy(cfg) -> float:
        if cfg.norm == "dataset":
            return 0.95
        mean, std = (float(v) for v in cfg.norm.split(":")[1].split("/"))
        base = 0.95 - default_gap / 100 if cfg.evaluate_on == "val" else 0.9
        return base - 0.001 * abs(mean) - 0.001 * abs(std - 1) + (0.03 if cfg.init_scale else 0.0)
    return accuracy


INIT = claims_of("test_init_compensation")


@pytest.mark.parametrize("where", ["cell_002", "worst_cell"])
def test_the_init_search_chooses_on_validation_with_seeds_apart_from_the_judged(where):
    fake, evidence = FakeFinetune(lenet_accuracy(default_gap=10.0)), FakeEvidence()
    _, func = INIT["init_beats_default"]
    func(finetune=fake, evidence=evidence, profile=SMOKE, model="lenet", dataset="mnist", where=where, seed=1)
    judged = [c for c in fake.requests if c.seed < 1000]
    selection = [c for c in fake.requests if c.seed >= 1000]
    assert selection and all(c.evaluate_on == "val" for c in selection)
    assert judged and all(c.evaluate_on == "test" and c.seed == 1 for c in judged)
    kind, rescued, default = evidence.pair
    # the default-init arm is a fresh judged run at the bad cell, never a selection run
    assert [r.config.seed for r in default.runs] == [1] and default.runs[0].config.evaluate_on == "test"
    assert default.runs[0].config.init_scale is None and rescued.runs[0].config.norm == default.runs[0].config.norm
    assert evidence.checks["below_plateau"][0] is True


def test_the_domain_is_measured_once_for_every_judged_seed():
    measured = []
    for seed in range(3):
        evidence = FakeEvidence()
        INIT["init_compensation"][1](finetune=FakeFinetune(lenet_accuracy(10.0)), evidence=evidence, profile=SMOKE,
                                     model="lenet", dataset="mnist", where="worst_cell", seed=seed)
        measured.append(evidence.checks["below_plateau"])
    assert measured[0] == measured[1] == measured[2]


@pytest.mark.parametrize("name", ["init_compensation", "init_beats_default"])
def test_a_cell_whose_default_init_reaches_the_plateau_is_out_of_domain(name):
    """Against a default init already on the plateau, a rescue cannot show: such a cell must not
    count as a test of the claim."""
    evidence, fake = FakeEvidence(), FakeFinetune(lenet_accuracy(default_gap=1.0))
    INIT[name][1](finetune=fake, evidence=evidence, profile=SMOKE,
                  model="lenet", dataset="mnist", where="cell_002", seed=0)
    holds, measured = evidence.checks["below_plateau"]
    assert holds is False and "points below" in measured
    # what decided it is all that ran: the domain's validation runs, no init search, no judged arm
    assert {(c.norm, c.evaluate_on, c.init_scale) for c in fake.requests} == {
        ("fixed:-1/0.1", "val", None), ("dataset", "val", None)}
    assert evidence.pair[0] == "outside_domain" and all(arm.value is None and not arm.failures()
                                                         for arm in evidence.pair[1:])


EXACT = claims_of("test_exact_values")


def test_retraining_is_judged_against_a_network_trained_with_the_same_budget():
    """The reference arm is a trained network's own accuracy (a level the re-trained cells can
    reach), never the trained network evaluated at shifted normalizations (which they always beat)."""
    fake, evidence = FakeFinetune(lambda cfg: 0.8), FakeEvidence()
    EXACT["retraining_recovers"][1](finetune=fake, evidence=evidence, profile=SMOKE, model="efficientnet_lite0",
                                    dataset="fashion_mnist", seed=0)
    kind, grid, reference = evidence.pair
    assert kind == "noninferior"
    (ref,) = reference.runs
    assert ref.config.train and ref.config.norm == "pretrain" and reference.value == ref.result.accuracy == 0.8
    assert reference.label == "fine-tuned at pretrain (0.5/0.5)"
    for run in grid.runs:
        assert (run.config.epochs, run.config.train_subset) == (ref.config.epochs, ref.config.train_subset)
    assert grid.denominator == len(grid.runs) * EVAL_IMAGES and reference.denominator == EVAL_IMAGES


def test_a_share_the_same_at_every_seed_refutes_zero_shot_robustness():
    """As measured: 1 of 25 cells of the central region kept at every seed. The t-test has no
    statistic on differences without spread; the claim's sign-flip test refutes at its 6 seeds."""
    cells = judge("zero_shot_robust", 0.0, pair=lambda s: (Arm("share", 1 / 25, (), None, 25),
                                                              Arm.constant("stated share", 0.5)))
    assert {c.verdict for c in cells.values()} == {"refuted"}, [(c.verdict, c.reason) for c in cells.values()]
    assert {len(c.seeds) for c in cells.values()} == {6}


def test_zero_shot_robustness_reads_the_shifted_evaluations():
    fake, evidence = FakeFinetune(lambda cfg: 0.8), FakeEvidence()
    EXACT["zero_shot_robust"][1](finetune=fake, evidence=evidence, profile=SMOKE, model="efficientnet_lite0",
                                 dataset="fashion_mnist", seed=0)
    _, share, stated = evidence.pair
    assert share.value == 0.0 and stated.value == 0.5  # every shifted cell 30 points down
    assert share.denominator == SMOKE.grid_size ** 2


def test_arms_are_named_by_their_values():
    stats = claims_of("test_dataset_stats")
    for name, model, expected in (("dataset_stats", "efficientnet_lite0", "pretrain (0.5/0.5)"),
                                  ("dataset_stats_vs_imagenet", "efficientnet_lite0", "ImageNet")):
        evidence = FakeEvidence()
        call(stats[name][1], finetune=FakeFinetune(lambda cfg: 0.8), evidence=evidence, data_dir=None, model=model,
             dataset="fashion_mnist", seed=1)
        assert evidence.pair[2].label == expected
    assert load("test_dataset_stats").pretrain_label("resnet18") == "ImageNet"


def test_training_speed_is_the_early_loss_as_a_share_of_chance():
    import math

    evidence = FakeEvidence()
    claims_of("test_no_normalization")["none_trains_as_fast"][1](
        finetune=FakeFinetune(lambda cfg: 0.8), evidence=evidence, model="efficientnet_lite0", dataset="fashion_mnist",
        seed=0)
    _, none, pretrain = evidence.pair
    assert none.value == pytest.approx(1.2 / math.log(10)) and none.runs[0].config.norm == "none"
    assert pretrain.runs[0].config.norm == "pretrain"
