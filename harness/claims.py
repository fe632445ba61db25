"""A claim's pre-registration: what it tests and how, declared before any run.

Claim modules declare it at the top with the `claim` marker:

    pytestmark = pytest.mark.claim(
        "dataset_stats", title="...", source="000 Table 2",
        models=(...), datasets=(...), cells=(...), alpha=0.05, min_seeds=2,
    )
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UsageError

KINDS = ("superiority",)
TESTS = ("paired_t",)


@dataclass(frozen=True)
class ClaimSpec:
    name: str
    title: str
    source: str
    cells: tuple[tuple[str, str], ...]  # (model, dataset) pairs the claim runs on
    kind: str = "superiority"  # H1: arm a > arm b
    test: str = "paired_t"  # one-sided paired t-test
    alpha: float = 0.05
    min_seeds: int = 2  # fewer seeds cannot give a verdict


def claim_from_marker(mark, module_name: str) -> ClaimSpec:
    kwargs = dict(mark.kwargs)
    name = mark.args[0] if mark.args else module_name.removeprefix("test_")
    cells = tuple(tuple(c) for c in kwargs.pop("cells", ()))
    models, datasets = kwargs.pop("models", ()), kwargs.pop("datasets", ())
    cells += tuple((m, d) for m in models for d in datasets if (m, d) not in cells)
    try:
        spec = ClaimSpec(name=name, cells=cells, **kwargs)
    except TypeError as exc:
        raise UsageError(f"claim {name!r}: {exc}") from None
    if spec.kind not in KINDS:
        raise UsageError(f"claim {name!r}: unknown kind {spec.kind!r} (available: {', '.join(KINDS)})")
    if spec.test not in TESTS:
        raise UsageError(f"claim {name!r}: unknown test {spec.test!r} (available: {', '.join(TESTS)})")
    if not 0 < spec.alpha < 1:
        raise UsageError(f"claim {name!r}: alpha must lie in (0, 1), got {spec.alpha}")
    return spec


def select_cells(
    spec: ClaimSpec, models: list[str] | None, datasets: list[str] | None
) -> list[tuple[str, str]]:
    """The claim's cells, with an axis replaced where the user named models or datasets."""
    cell_models = list(dict.fromkeys(m for m, _ in spec.cells))
    cell_datasets = list(dict.fromkeys(d for _, d in spec.cells))
    if models is None and datasets is None:
        return list(spec.cells)
    if datasets is None:
        return [c for c in spec.cells if c[0] in models] or [(m, d) for m in models for d in cell_datasets]
    if models is None:
        return [c for c in spec.cells if c[1] in datasets] or [(m, d) for m in cell_models for d in datasets]
    return [(m, d) for m in models for d in datasets]
