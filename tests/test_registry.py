import pytest

from harness.errors import UsageError
from harness.registry import Registry


def make():
    reg = Registry("model")
    reg.add("resnet18", 1)
    reg.add("resnet50", 2)
    reg.add("densenet121", 3)
    return reg


def test_get_returns_registered_entry():
    assert make().get("resnet50") == 2


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UsageError, match=r"unknown model 'resnet19'; did you mean 'resnet18'\?"):
        make().get("resnet19")


def test_unknown_name_without_close_match_lists_available():
    with pytest.raises(UsageError) as err:
        make().get("vit")
    assert "did you mean" not in str(err.value)
    assert "densenet121, resnet18, resnet50" in str(err.value)


def test_available_filters_by_pattern():
    assert make().available("resnet*") == ["resnet18", "resnet50"]


def test_registering_twice_is_an_error():
    reg = make()
    with pytest.raises(ValueError):
        reg.add("resnet18", 9)


def test_real_registries_know_the_catalogue():
    from harness.datasets import DATASETS
    from harness.models import MODELS
    from harness.norms import NORMS

    assert set(MODELS) == {"resnet18", "resnet50", "densenet121", "densenet161", "efficientnet_lite0", "lenet"}
    assert set(DATASETS) == {"cifar10", "cifar100", "svhn", "tiny_imagenet_200", "mnist", "fashion_mnist"}
    assert set(NORMS) == {"dataset", "dataset_weak", "dataset_batch", "dataset_1digit", "dataset_3digit",
                          "pretrain", "imagenet", "none", "instance", "minmax"}
