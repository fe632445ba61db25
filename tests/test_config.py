import dataclasses

import pytest

from harness.config import PROFILES, RunConfig, RunResult, get_profile
from harness.errors import UsageError
from harness.protocol import STALE_BN_LIMIT, make_config, numerics_for, stale_bn_fraction

CPU = numerics_for("cpu")


def cfg(**kw):
    base = dict(model="efficientnet_lite0", dataset="fashion_mnist", norm="dataset", seed=0, profile=PROFILES["quick"], numerics=CPU)
    base.update(kw)
    return make_config(**base)


def test_key_is_stable_and_depends_on_every_setting_but_not_on_the_profile_s_name():
    a = cfg()
    assert a.key() == cfg().key()
    assert len(a.key()) == 64
    seen = {a.key()}
    settings = [f for f in dataclasses.fields(RunConfig) if f.name != "profile"]
    for f in settings:
        value = getattr(a, f.name)
        other = {bool: (not value) if isinstance(value, bool) else None}.get(type(value))
        if other is None:
            other = value + 1 if isinstance(value, (int, float)) and not isinstance(value, bool) else f"{value}x"
        seen.add(dataclasses.replace(a, **{f.name: other}).key())
    assert len(seen) == len(settings) + 1
    # the default and the cpu profile share budgets: a run one trained serves the other
    assert dataclasses.replace(a, profile="cpu").key() == dataclasses.replace(a, profile="default").key()
    assert (cfg(profile=PROFILES["default"]).key() == cfg(profile=PROFILES["cpu"]).key()
            != cfg(profile=PROFILES["quick"]).key())


def test_key_depends_on_harness_version(monkeypatch):
    import harness.config

    before = cfg().key()
    monkeypatch.setattr(harness.config, "HARNESS_VERSION", "999")
    assert cfg().key() != before


def test_config_and_result_round_trip_through_dicts():
    a = cfg()
    assert RunConfig.from_dict(a.to_dict()) == a
    r = RunResult(0.5, [{"epoch": 1, "train_loss": 1.0, "test_accuracy": 0.5}], 3, 384, 1.0, 100.0, "cpu", [0.5], [0.2])
    assert RunResult.from_dict(r.to_dict()) == r


def test_profile_sets_the_budget():
    quick = cfg()
    assert (quick.epochs, quick.train_subset, quick.batch_size) == (2, 2000, 128)
    paper = cfg(profile=PROFILES["paper"])
    assert (paper.epochs, paper.batch_size, paper.lr, paper.optimizer, paper.schedule) == (100, 256, 1e-3, "adam", "cosine")
    assert paper.train_subset is None and paper.resolution is None


def test_unknown_profile_suggests():
    with pytest.raises(UsageError, match="did you mean 'quick'"):
        get_profile("quik")


def test_unknown_names_are_usage_errors():
    with pytest.raises(UsageError, match="did you mean 'resnet50'"):
        cfg(model="resnet05")
    with pytest.raises(UsageError, match="did you mean 'cifar10'"):
        cfg(dataset="cifar01")
    with pytest.raises(UsageError, match="did you mean 'dataset'"):
        cfg(norm="datset")
    with pytest.raises(UsageError, match="unknown run setting"):
        cfg(epoch=3)


def test_bn_recalibration_follows_the_budget():
    # EfficientNet-Lite's momentum 0.01: 30 steps leave 74% of the ImageNet statistics
    assert stale_bn_fraction(0.01, 30) == pytest.approx(0.99**30)
    assert cfg().bn_recalibration is True
    assert cfg(profile=PROFILES["paper"]).bn_recalibration is False  # full data, 100 epochs: converged
    # torchvision's momentum 0.1 converges within the quick budget
    assert stale_bn_fraction(0.1, 30) < STALE_BN_LIMIT
    assert cfg(model="resnet18", dataset="cifar10").bn_recalibration is False
    assert cfg(bn_recalibration=False).bn_recalibration is False  # an explicit choice is kept


def test_numerics_by_device():
    assert numerics_for("cuda").precision == "bf16" and numerics_for("cpu").precision == "fp32"
    assert cfg(numerics=numerics_for("cuda")).key() != cfg().key()  # numerics differ between devices
    # the thread count is how a run is executed, recorded in its result, not part of what it is:
    # a store filled by one process serves xdist workers and the other way round
    assert not any("thread" in name for name in cfg().to_dict())


def test_lenet_trains_from_scratch_by_default():
    assert cfg(model="lenet", dataset="mnist").weights == "scratch"


@pytest.mark.parametrize("setting, message", [
    ({"augment": "crop"}, "run setting augment='crop' is not one of: 'crop_flip', 'random_resized_crop', 'none'"),
    ({"optimizer": "sgd"}, "run setting optimizer='sgd' is not one of: 'adam', 'adadelta'"),
    ({"schedule": "step"}, "run setting schedule='step' is not one of: 'cosine', 'constant', 'plateau'"),
    ({"evaluate_on": "train"}, "run setting evaluate_on='train' is not one of: 'test', 'val'"),
    ({"weights": "imagenet"}, "run setting weights='imagenet' is not one of: 'pretrained', 'scratch'"),
    ({"resolution": 4}, "run setting resolution=4: expected an integer of at least 8"),
    ({"resolution": 32.5}, "run setting resolution=32.5: expected an integer of at least 8"),
    ({"test_resolutions": [32]}, "test_resolutions=[32]: expected a tuple of sides"),
    ({"fixres_epochs": 1}, "fixres_epochs needs fixres_resolution"),
    ({"fixres_resolution": 32}, "fixres_resolution needs fixres_epochs >= 1"),
    ({"lr": float("nan")}, "run setting lr=nan: expected a finite number > 0"),
    ({"epochs": 0}, "run setting epochs=0: expected an integer of at least 1"),
    ({"init_scale": (1.0,)}, "init_scale=(1.0,): expected (weight, bias) multipliers"),
    ({"train": False, "evaluate_on": "val"}, "train=False (zero-shot) takes neither"),
])
def test_every_run_setting_is_checked_when_the_config_is_made(setting, message):
    with pytest.raises(UsageError) as info:
        cfg(**setting)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_grayscale_model_on_rgb_data_is_refused_when_the_config_is_made():
    with pytest.raises(UsageError, match="model lenet takes grayscale images; cifar10 is RGB"):
        cfg(model="lenet", dataset="cifar10")


def test_profiles_hold_the_budget_rules():
    from harness.recipes import lenet_002, mean_std_grid, recipe_for

    quick, paper = PROFILES["quick"], PROFILES["paper"]
    assert recipe_for("resnet18", quick, scan=True) == {"train_subset": 1000, "epochs": 1}
    assert recipe_for("resnet18", paper, scan=True) == {} and recipe_for("resnet18", quick) == {}
    assert lenet_002(paper)["epochs"] == 30 and "train_subset" not in lenet_002(paper)
    assert lenet_002(quick)["train_subset"] == 1000 and "epochs" not in lenet_002(quick)
    assert [len(axis) for axis in mean_std_grid(paper)] == [15, 15] and len(mean_std_grid(quick)[0]) == 3
    assert (quick.fixres_epochs, paper.fixres_epochs) == (1, 5)


def test_scans_use_the_ranges_of_source_002():
    from harness.recipes import mean_std_grid

    paper = PROFILES["paper"]
    for model, zoom, (m0, m1, s0, s1) in [("lenet", False, (-2, 3, 0.02, 2)), ("resnet18", False, (-3, 3, 0.05, 1)),
                                          ("efficientnet_lite0", True, (-0.5, 1.5, 0.2, 0.6))]:
        means, stds = mean_std_grid(paper, model, zoom)
        assert (means[0], means[-1]) == pytest.approx((m0, m1)) and (stds[0], stds[-1]) == pytest.approx((s0, s1))
        assert stds[1] / stds[0] == pytest.approx(stds[-1] / stds[-2])  # log-spaced, as 002's geomspace


def test_a_field_added_later_keeps_the_stored_keys():
    """Runs stored before test_norms and fixres_ablation existed keep their keys: such a field is left
    out at its default."""
    import hashlib
    import json

    from harness import HARNESS_VERSION

    c = cfg()
    before = {k: v for k, v in dataclasses.asdict(c).items() if k not in ("test_norms", "fixres_ablation", "profile")}
    text = json.dumps({"harness_version": HARNESS_VERSION, **before}, sort_keys=True, separators=(",", ":"))
    assert c.key() == hashlib.sha256(text.encode()).hexdigest()
    assert cfg(test_norms=("dataset",)).key() != c.key()
    with pytest.raises(UsageError, match="did you mean 'dataset'"):
        cfg(test_norms=("datset",))
