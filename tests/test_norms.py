import pytest
import torch

from harness.errors import UsageError
from harness.norms import Affine, NormContext, PerImage, check_spec, make_normalizer, parse_fixed, resolve

CTX = NormContext(dataset_stats=lambda est: ([0.25], {"exact": [0.5], "weak": [0.45], "batch": [0.49]}[est]), pretrain=Affine((0.5,) * 3, (0.5,) * 3), model="m")


def test_registry_norms_resolve():
    assert resolve("dataset", CTX) == Affine((0.25,), (0.5,))
    assert resolve("pretrain", CTX) == Affine((0.5,) * 3, (0.5,) * 3)
    assert resolve("imagenet", CTX) == Affine((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert resolve("none", CTX) == Affine((0.0,), (1.0,))
    assert resolve("instance", CTX) == PerImage("instance")
    assert resolve("minmax", CTX) == PerImage("minmax")


def test_dataset_estimators_and_rounding():
    assert resolve("dataset_weak", CTX) == Affine((0.25,), (0.45,))
    assert resolve("dataset_batch", CTX) == Affine((0.25,), (0.49,))
    ctx = NormContext(lambda est: ([0.13066, 0.2861], [0.30811, 0.04]), None, "m")
    assert resolve("dataset_3digit", ctx) == Affine((0.131, 0.286), (0.308, 0.04))
    assert resolve("dataset_1digit", ctx) == Affine((0.1, 0.3), (0.3, 0.1))  # std never rounds to 0


def test_fixed_spec():
    assert parse_fixed("fixed:0.1307/0.3081") == Affine((0.1307,), (0.3081,))
    assert parse_fixed("fixed:0.4,0.5,0.6/0.2,0.2,0.3").std == (0.2, 0.2, 0.3)


@pytest.mark.parametrize("spec", ["fixed:0.5", "fixed:a/b", "fixed:0.5/0", "fixed:0.1,0.2/0.3", "fixed:/"])
def test_malformed_fixed_spec(spec):
    with pytest.raises(UsageError, match="malformed normalization"):
        check_spec(spec)


def test_unknown_norm_suggests():
    with pytest.raises(UsageError, match="did you mean 'minmax'"):
        check_spec("minmx")


def test_pretrain_without_pretraining_is_an_error():
    with pytest.raises(UsageError, match="no pretraining normalization"):
        resolve("pretrain", NormContext(lambda est: ([0], [1]), None, "lenet"))


def test_affine_broadcasts_one_channel_stats_over_rgb():
    x = torch.full((2, 3, 4, 4), 0.75)
    out = make_normalizer(Affine((0.25,), (0.5,)), 3, "cpu")(x)
    assert torch.allclose(out, torch.ones_like(out))


def test_affine_per_channel():
    x = torch.zeros(1, 3, 2, 2)
    out = make_normalizer(Affine((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), 3, "cpu")(x)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]))


def test_instance_standardises_each_image():
    x = torch.rand(4, 3, 8, 8) * torch.tensor([1.0, 0.9, 0.5, 0.4]).view(4, 1, 1, 1)
    out = make_normalizer(PerImage("instance"), 3, "cpu")(x)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out.std(dim=(1, 2, 3), unbiased=False), torch.ones(4), atol=1e-4)


def test_instance_std_has_tensorflows_floor():
    """std is floored at 1/sqrt(pixels) (tf.image.per_image_standardization): flat images stay finite."""
    x = torch.full((1, 1, 4, 4), 0.3)
    x[0, 0, 0, 0] = 0.31
    out = make_normalizer(PerImage("instance"), 1, "cpu")(x)
    centred = x - x.mean()
    assert torch.allclose(out, centred / (1 / 4), atol=1e-6)
    flat = make_normalizer(PerImage("instance"), 1, "cpu")(torch.full((1, 1, 4, 4), 0.3))
    assert torch.isfinite(flat).all() and flat.abs().max() < 1e-5


def test_minmax_maps_each_image_to_unit_range():
    x = torch.rand(3, 3, 8, 8) * 0.5 + 0.2
    out = make_normalizer(PerImage("minmax"), 3, "cpu")(x)
    assert torch.allclose(out.amin(dim=(1, 2, 3)), torch.zeros(3))
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(3))
