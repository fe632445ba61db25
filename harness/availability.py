"""Can this machine provide a dataset / a model's weights? Asked once per process, then remembered,
so an offline session does not retry a failing download for every seed."""
from __future__ import annotations

from pathlib import Path

from harness.errors import Unavailable

_reasons: dict[tuple[str, str], tuple[str, ...]] = {}


def _check(kind: str, name: str, probe) -> None:
    key = (kind, name)
    if key not in _reasons:
        try:
            probe()
            _reasons[key] = ()
        except Unavailable as exc:
            _reasons[key] = exc.reasons
    if _reasons[key]:
        raise Unavailable(*_reasons[key])


def require(dataset: str, data_dir: Path, model: str, weights: str) -> None:
    """Raise Unavailable naming everything this run lacks (data and weights), each with how to get it."""
    reasons = []
    for check in (lambda: require_dataset(dataset, data_dir), lambda: require_weights(model, weights)):
        try:
            check()
        except Unavailable as exc:
            reasons += exc.reasons
    if reasons:
        raise Unavailable(*reasons)


def require_dataset(name: str, data_dir: Path) -> None:
    from harness.datasets import load_arrays

    _check("dataset", name, lambda: (load_arrays(name, data_dir, True), load_arrays(name, data_dir, False)))


def require_weights(model: str, weights: str) -> None:
    if weights != "pretrained":
        return
    from harness.models import MODELS

    spec = MODELS.get(model)
    if spec.weights_on_disk is not None and spec.weights_on_disk():
        return  # found without importing torch (a damaged file still fails the run that loads it)
    _check("weights", model, lambda: spec.build(2, True, 0, 32))  # the real lookup: hub cache, then download


def offline_reasons(dataset: str, data_dir: Path, model: str, weights: str) -> tuple[str, ...]:
    """What a run would lack, found without importing torch or downloading anything (for --plan):
    data neither cached, on disk nor downloadable; pretrained weights neither on disk nor downloadable."""
    from harness.datasets import offline_reason
    from harness.models import MODELS, WEIGHTS_HOST
    from harness.network import unreachable

    reasons = [r for r in (offline_reason(dataset, data_dir),) if r]
    spec = MODELS.get(model)
    if weights == "pretrained" and not (spec.weights_on_disk is not None and spec.weights_on_disk()):
        offline = unreachable((WEIGHTS_HOST,))
        if offline:
            reasons.append(f"ImageNet weights for {model} are not on disk and cannot be downloaded ({offline}); "
                           f"{spec.how_to_get}")
    return tuple(reasons)
