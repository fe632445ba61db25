import dataclasses

import pytest
import torch

from conftest import FASHION_TINY
from harness.config import FIXRES_VARIANTS, PROFILES, RunConfig
from harness.datasets import dataset_stats
from harness.errors import RunFailed, UsageError
from harness.models import MODELS, ModelSpec, seeded_linear
from harness.protocol import make_config, numerics_for
from harness.train import finetune

FOLDER = f"folder:{FASHION_TINY}"


def cfg(model="lenet", norm="dataset", seed=0, **kw):
    kw.setdefault("batch_size", 32)
    return make_config(model=model, dataset=FOLDER, norm=norm, seed=seed, profile=PROFILES["smoke"],
                       numerics=numerics_for("cpu"), **kw)


def losses(result):
    return [h["train_loss"] for h in result.history]  # the history without its timings


def test_lenet_run_reports_what_it_did(data_dir):
    c = cfg(epochs=2)
    r = finetune(c, "cpu", data_dir, threads=1)
    assert r.steps == (160 // 32) * 2 and r.train_images == r.steps * 32
    assert 0.0 <= r.accuracy <= 1.0 and r.accuracy == r.history[-1]["test_accuracy"]
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert r.history[0]["test_accuracy"] is not None  # smoke evaluates every epoch
    assert r.accuracy > 0.4  # 4 well-separated classes: far above chance (0.25) after 10 steps
    mean, std = dataset_stats(FOLDER.replace("folder:", "folder:"), data_dir)
    assert r.norm_mean == pytest.approx(mean, abs=1e-6) and r.norm_std == pytest.approx(std, abs=1e-6)
    assert r.images_per_s > 0 and r.wall_s > 0 and r.device.startswith("cpu")
    assert r.meta["threads"] == 1


def test_same_config_same_numbers(data_dir):
    a, b = finetune(cfg(), "cpu", data_dir), finetune(cfg(), "cpu", data_dir)
    assert a.accuracy == b.accuracy and losses(a) == losses(b)


def test_seed_changes_the_run(data_dir):
    a, b = finetune(cfg(seed=0), "cpu", data_dir), finetune(cfg(seed=1), "cpu", data_dir)
    assert losses(a) != losses(b)


def test_arms_of_a_seed_share_the_head_initialisation():
    assert torch.equal(seeded_linear(8, 3, 4).weight, seeded_linear(8, 3, 4).weight)
    assert not torch.equal(seeded_linear(8, 3, 4).weight, seeded_linear(8, 3, 5).weight)


def test_zero_steps_is_a_failed_run(data_dir):
    with pytest.raises(RunFailed, match="zero optimizer steps"):
        finetune(cfg(batch_size=512), "cpu", data_dir)


def test_non_finite_loss_is_a_failed_run(data_dir):
    with pytest.raises(RunFailed, match="non-finite training loss"):
        finetune(cfg(norm="fixed:0.5/1e-39"), "cpu", data_dir)


def test_stale_batchnorm_is_refused(data_dir):
    # EfficientNet-Lite (momentum 0.01) after 5 steps keeps 95% of ImageNet's running statistics
    with pytest.raises(RunFailed, match="BatchNorm running statistics cannot have converged"):
        finetune(cfg(model="efficientnet_lite0", norm="pretrain", bn_recalibration=False), "cpu", data_dir)


def test_batchnorm_recalibration_rescues_a_short_budget(data_dir):
    c = cfg(model="efficientnet_lite0", norm="pretrain", epochs=2)
    assert c.bn_recalibration  # chosen from the budget, recorded in the config
    r = finetune(c, "cpu", data_dir)
    assert r.accuracy > 0.5  # grayscale replicated to RGB; far above chance with re-estimated statistics


def probe_model(seen: dict):
    """A conv-BN-linear net that records, while training, what its layers were given."""
    from torch import nn

    def build(num_classes, pretrained, seed, side):
        class Probe(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.bn, self.head = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), seeded_linear(8, num_classes, seed)

            def forward(self, x):
                if self.training:
                    seen.setdefault("input_channels_last", set()).add(x.is_contiguous(memory_format=torch.channels_last))
                y = self.conv(x)
                seen.setdefault("conv_output", set()).add(y.dtype)
                y = torch.relu(self.bn(y))
                return self.head(y.mean(dim=(2, 3)))

        return Probe()

    return ModelSpec("probe", None, bn_momentum=0.1, in_channels=3, build=build, how_to_get="")


@pytest.mark.parametrize("precision, channels_last", [("bf16", True), ("fp32", True), ("bf16", False)])
def test_bf16_autocast_and_channels_last_on_cpu(data_dir, monkeypatch, precision, channels_last):
    """The GPU fast path runs on the CPU: the step's convolutions compute in bf16 under autocast,
    the weights (BatchNorm's included) stay fp32, inputs are NHWC, and training still learns."""
    seen: dict = {}
    monkeypatch.setitem(MODELS._entries, "probe", probe_model(seen))
    fast = dataclasses.replace(cfg(model="probe", epochs=3, lr=0.01), precision=precision, channels_last=channels_last)
    r = finetune(fast, "cpu", data_dir, threads=1)
    assert seen["conv_output"] == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert seen["input_channels_last"] == {channels_last}
    assert r.meta["parameter_dtypes"] == ["torch.float32"]
    assert losses(r)[-1] < losses(r)[0] and r.accuracy > 0.3  # learning (4 classes), not just running
    plain = finetune(dataclasses.replace(fast, precision="fp32", channels_last=False), "cpu", data_dir, threads=1)
    if precision == "bf16":  # autocast changed the arithmetic, not the run: the same data, close losses
        assert losses(r) != losses(plain)
        assert losses(r) == pytest.approx(losses(plain), rel=0.05)


def test_resolution_is_applied(data_dir):
    r = finetune(cfg(resolution=32), "cpu", data_dir)
    assert r.meta["resolution"] == 32 and r.steps == 5


def test_device_mismatch_is_refused(data_dir):
    with pytest.raises(UsageError, match="configured for cpu"):
        finetune(cfg(), "cuda:0", data_dir)


def test_zero_shot_evaluates_without_a_step(data_dir):
    r = finetune(cfg(train=False), "cpu", data_dir)
    assert r.steps == 0 and r.history == [] and r.meta["zero_shot"] is True
    assert 0.0 <= r.accuracy <= 1.0


def test_validation_split_is_held_out_of_the_train_split(data_dir):
    r = finetune(cfg(evaluate_on="val", train_subset=120), "cpu", data_dir)
    assert r.meta["evaluated_on"] == "val" and r.meta["eval_images"] == 40  # 160 train images, 120 used for training


def test_init_scale_changes_the_run(data_dir):
    base, scaled = finetune(cfg(), "cpu", data_dir), finetune(cfg(init_scale=(3.0, 0.5)), "cpu", data_dir)
    assert losses(base) != losses(scaled)


def test_lenet_recipe_of_source_002_runs(data_dir):
    r = finetune(cfg(optimizer="adadelta", lr=1.0, schedule="plateau", epochs=2), "cpu", data_dir)
    assert r.steps == 10 and r.accuracy > 0.4


def test_fixres_stage_trains_only_the_classifier(data_dir):
    c = cfg(model="efficientnet_lite0", norm="pretrain", augment="random_resized_crop", epochs=1,
            test_resolutions=(28, 36), fixres_epochs=1, fixres_resolution=36)
    r = finetune(c, "cpu", data_dir)
    assert set(r.metrics) == {"test@28", "test@36", "fixres@36"}
    assert r.metrics["test@28"] == r.accuracy  # the train resolution is the native one here
    assert r.meta["fixres_trainable"] == ["_fc.weight", "_fc.bias"] and r.meta["fixres_steps"] == 5
    assert r.meta["fixres_bn"] == "BatchNorm2d"


def test_fixres_ablation_runs_each_variant_from_the_same_network(data_dir):
    """Source 004's ablation: the stage's default result is the same with or without the ablation
    (same network, same draws), and each variant named is its own number from that network; a variant
    not named is not run (each costs a stage and an evaluation)."""
    base = dict(model="efficientnet_lite0", norm="pretrain", augment="random_resized_crop", epochs=1,
                resolution=16, test_resolutions=(16, 28), fixres_epochs=1, fixres_resolution=28)
    plain = finetune(cfg(**base), "cpu", data_dir, threads=1)
    ablated = finetune(cfg(**base, fixres_ablation=tuple(FIXRES_VARIANTS)), "cpu", data_dir, threads=1)
    assert ablated.metrics["fixres@28"] == plain.metrics["fixres@28"]
    assert set(ablated.metrics) - set(plain.metrics) == {
        "fixres[classifier]@28", "fixres[classifier_train_da]@28", "fixres[bn_train_da]@28"}
    variants = [ablated.metrics[k] for k in ("fixres@28", "fixres[classifier]@28", "fixres[bn_train_da]@28")]
    assert len(set(variants)) > 1  # the variants train differently
    one = finetune(cfg(**base, fixres_ablation=("bn_train_da",)), "cpu", data_dir, threads=1)
    assert set(one.metrics) - set(plain.metrics) == {"fixres[bn_train_da]@28"}
    assert one.metrics["fixres[bn_train_da]@28"] == ablated.metrics["fixres[bn_train_da]@28"]  # each from the network
    assert len({cfg(**base).key(), cfg(**base, fixres_ablation=("bn_train_da",)).key(),
                cfg(**base, fixres_ablation=tuple(FIXRES_VARIANTS)).key()}) == 3
    with pytest.raises(UsageError, match="fixres_ablation needs a FixRes stage"):
        cfg(model="efficientnet_lite0", norm="pretrain", fixres_ablation=("classifier",))
    with pytest.raises(UsageError, match="expected a tuple of variants from classifier, classifier_train_da"):
        cfg(**base, fixres_ablation=("classifer",))


def test_a_run_stored_with_the_ablation_flag_reads_as_every_variant():
    """Before the variants were chosen, fixres_ablation was a flag: such a stored run reads back as
    every variant (its metrics hold them all), and one without as none."""
    stored = cfg(model="efficientnet_lite0", norm="pretrain", fixres_epochs=1, fixres_resolution=28).to_dict()
    assert RunConfig.from_dict({**stored, "fixres_ablation": True}).fixres_ablation == tuple(FIXRES_VARIANTS)
    assert RunConfig.from_dict({**stored, "fixres_ablation": False}).fixres_ablation == ()
    assert RunConfig.from_dict({**stored, "fixres_ablation": ["classifier"]}).fixres_ablation == ("classifier",)


def test_the_plan_prices_each_ablation_variant_as_a_stage_and_an_evaluation():
    """--plan's cost of a FixRes run: the stage and each variant named train one pass over the train
    subset and evaluate once (the stage also at three quarters), so a variant left out is priced out."""
    from harness.plan import EVAL_COST, run_images

    base = dict(model="efficientnet_lite0", norm="pretrain", epochs=1, resolution=16, fixres_epochs=1,
                fixres_resolution=28, train_subset=64, test_subset=100)
    plain, none = run_images(cfg(**base), None, None), run_images(cfg(**{**base, "fixres_epochs": 0,
                                                                          "fixres_resolution": None}), None, None)
    one = run_images(cfg(**base, fixres_ablation=("bn_train_da",)), None, None)
    two = run_images(cfg(**base, fixres_ablation=("classifier", "bn_train_da")), None, None)
    stage = 64 + EVAL_COST * 100  # batch 32 divides 64: a pass trains all 64
    assert plain - none == pytest.approx(stage + EVAL_COST * 100)
    assert one - plain == pytest.approx(stage) and two - one == pytest.approx(stage)


def test_a_run_records_its_training_loss_by_quarters(data_dir):
    r = finetune(cfg(epochs=2), "cpu", data_dir, threads=1)
    quarters = r.meta["train_loss_quarters"]
    assert len(quarters) == 4 and all(q > 0 for q in quarters)
    steps = r.steps  # 10 steps: quarters of 3, 3, 2, 2 steps, whose mean is the epochs' mean
    assert sum(q * n for q, n in zip(quarters, (3, 3, 2, 2))) / steps == pytest.approx(
        sum(losses(r)) / 2, rel=1e-5)


def test_unknown_augmentation_is_refused(data_dir):
    with pytest.raises(UsageError, match="augment='mixup' is not one of"):
        cfg(augment="mixup")
    # finetune checks the settings itself, for a config that was not made by make_config
    with pytest.raises(UsageError, match="augment='mixup' is not one of"):
        finetune(dataclasses.replace(cfg(), augment="mixup"), "cpu", data_dir)


def test_training_and_fixres_share_the_optimizer_step(data_dir, monkeypatch):
    """One step function serves the training loop and the FixRes stage: every step goes through it."""
    import harness.train

    calls = []
    step = harness.train.optimizer_step
    monkeypatch.setattr(harness.train, "optimizer_step", lambda *a: calls.append(1) or step(*a))
    r = finetune(cfg(), "cpu", data_dir)
    assert len(calls) == r.steps == 5
    calls.clear()
    c = cfg(model="efficientnet_lite0", norm="pretrain", epochs=1, fixres_epochs=1, fixres_resolution=32)
    r = finetune(c, "cpu", data_dir)
    assert len(calls) == r.steps + r.meta["fixres_steps"] == 10


def test_fixres_guard_catches_a_freeze_that_failed(data_dir, monkeypatch):
    """A deliberately broken stage (nothing frozen) is a failed run, not a FixRes result."""
    import harness.train

    monkeypatch.setattr(harness.train, "freeze_all_but", lambda model, head: None)
    c = cfg(model="efficientnet_lite0", norm="pretrain", epochs=1, fixres_epochs=1, fixres_resolution=32)
    with pytest.raises(RunFailed, match="FixRes stage changed frozen parameters"):
        finetune(c, "cpu", data_dir)


def test_accuracy_is_the_final_epochs_not_the_best(data_dir):
    r = finetune(cfg(epochs=3, lr=0.05), "cpu", data_dir)  # a high learning rate makes epochs differ
    accs = [h["test_accuracy"] for h in r.history]
    assert None not in accs and r.accuracy == accs[-1]
    assert r.best_accuracy == max(accs)  # kept only as a flagged extra


def test_unknown_optimizer_is_refused():
    from harness.train import make_optimizer

    with pytest.raises(UsageError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", [torch.nn.Parameter(torch.zeros(3))], 1e-3, 0.0)


def test_a_run_records_how_it_was_executed(data_dir):
    r = finetune(cfg(), "cpu", data_dir, threads=1)
    assert r.meta["threads"] == 1 and "cudnn_benchmark" not in r.meta


def test_the_plateau_schedule_keeps_the_lowered_learning_rate(data_dir, monkeypatch):
    """A plateau cut must last: no per-step schedule may reset it. Patience 0 and a threshold no
    loss can meet make every epoch a plateau, so the rate falls tenfold after each epoch."""
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau
    monkeypatch.setattr(torch.optim.lr_scheduler, "ReduceLROnPlateau",
                        lambda opt, mode: scheduler(opt, mode, patience=0, threshold=2.0))
    r = finetune(cfg(optimizer="adadelta", lr=1.0, schedule="plateau", epochs=3), "cpu", data_dir)
    assert [h["lr"] for h in r.history] == pytest.approx([1.0, 0.1, 0.01])
    cosine = finetune(cfg(epochs=2, lr=0.01), "cpu", data_dir)
    assert cosine.history[0]["lr"] == pytest.approx(0.005) and cosine.history[1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_shifted_normalizations_evaluate_the_trained_network(data_dir):
    """test_norms evaluates the network as trained: at its own normalization it reproduces the run's
    accuracy; far from it, it does worse (source 002's scan of a trained network)."""
    r = finetune(cfg(epochs=2, test_norms=("dataset", "fixed:-2/0.02")), "cpu", data_dir, threads=1)
    assert r.metrics["norm@dataset"] == r.accuracy
    assert r.metrics["norm@fixed:-2/0.02"] < r.accuracy - 0.2
