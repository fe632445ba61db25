"""The FixRes claims as pre-registered: 004's domain (16 px of a 224-px network is outside it, 64 ->
112 inside), the close-resolution half, and numbers on which each claim's rule says "refuted"."""
import importlib
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest

from factories import cell
from harness.claims import claim_from_marker
from harness.observations import Arm, DomainCheck, Observation
from harness.verdicts import decide, group_cells

sys.path.insert(0, str(Path(__file__).parents[1] / "claims"))
fixres = importlib.import_module("test_fixres")

SPECS = {spec.name: spec for spec in (
    claim_from_marker(mark, "test_fixres") for fn in vars(fixres).values()
    for mark in getattr(fn, "pytestmark", []) if mark.name == "claim")}


class Checks:
    """Stands in for the evidence fixture: collects the domain checks a test makes."""

    def __init__(self):
        self.checks = {}

    def in_domain(self, name, holds, measured):
        self.checks[name] = DomainCheck(name, holds, measured)


def checked(train, test, close=False, model="efficientnet_lite0"):
    ev = Checks()
    fixres.check_domain(ev, model, train, test, close)
    return ev.checks


def test_the_catalogue_has_the_six_fixres_claims_each_with_its_domain():
    assert set(SPECS) == {"fixres_test_res", "fixres_finetune", "fixres_bn", "fixres_test_da", "fixres_test_da_close",
                          "fixres_low_res"}
    for spec in SPECS.values():
        assert set(spec.domain) == {"augment", "side", "ratio"}
        assert spec.fair_test.converged == 1.0


def test_16_px_of_a_224_px_network_is_outside_004s_domain():
    checks = checked(16, 28)
    assert not checks["side"].holds and "r = 16 px" in checks["side"].measured
    assert checks["ratio"].holds  # 16/28 = 0.57: the ratio alone does not make a cell a test of 004


def test_the_cpu_sides_are_inside_and_the_close_half_needs_close_sides():
    low, high, close = (64, 112, 128)
    assert all(c.holds for c in checked(low, high).values())
    assert all(c.holds for c in checked(high, close, close=True).values())
    assert not checked(low, high, close=True)["ratio"].holds  # 0.57 is no "close" resolution
    assert not checked(high, close)["ratio"].holds  # 0.875 is no "big difference"
    assert all(c.holds for c in checked(16, 28, model="lenet").values() if c.name == "side")  # from scratch


def test_every_profile_gives_sides_inside_the_domain():
    from harness.config import PROFILES

    for profile in PROFILES.values():
        low, high, close = profile.fixres_sides
        assert all(c.holds for c in checked(low, high).values()), profile.name
        assert all(c.holds for c in checked(high, close, close=True).values()), profile.name


def judged(name, diffs, inside=True):
    spec = SPECS[name]
    checks = tuple(DomainCheck(n, inside or n != "ratio", "r/R = 0.57") for n in spec.domain)
    obs = [Observation(name, cell("efficientnet_lite0-fashion_mnist"), s, Arm("a", (800 + 10 * d) / 1000, (), None, 1000),
                       Arm("b", 0.8, (), None, 1000), checks) for s, d in enumerate(diffs)]
    (result,) = group_cells(obs, {name: spec})[name]
    decide([[result]])
    return result


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_fixres_claim_can_be_refuted_inside_its_domain_and_never_outside(name):
    diffs = [-3.1, -2.6, -3.4, -2.9, -3.0] if SPECS[name].kind == "superiority" else [2.9, 3.3, 2.7, 3.1, 3.0]
    assert judged(name, diffs).verdict == "refuted"
    assert judged(name, diffs, inside=False).verdict == "out of domain"


class Recorder:
    """Stands in for the finetune fixture and the evidence fixture of one FixRes item: the sides of the
    networks it asks for (each run failed, so the claim records no number)."""

    def __init__(self):
        self.sides = []

    def finetune(self, **request):
        self.sides.append(request["resolution"])
        return SimpleNamespace(ok=False, reason="not trained here", label="run", metric=lambda metric: None)

    def __getattr__(self, name):  # in_domain, greater, equivalent, heatmap: nothing to check here
        return lambda *args, **kwargs: None


@pytest.mark.parametrize("name, reads", [("fixres_test_res", "low"), ("fixres_finetune", "low"), ("fixres_bn", "low"),
                                         ("fixres_test_da", "low"), ("fixres_test_da_close", "high"),
                                         ("fixres_low_res", "both")])
def test_each_fixres_claim_trains_only_the_networks_it_reads(name, reads):
    """The network trained at R costs twice the one at r: a claim that reads only the one at r must not
    train it, or leaving out the two claims that read it saves nothing."""
    from harness.config import PROFILES

    profile = PROFILES["cpu"]
    low, high, _ = profile.fixres_sides
    (fn,) = [fn for fn in vars(fixres).values() if any(
        getattr(m, "name", None) == "claim" and m.args[0] == name for m in getattr(fn, "pytestmark", []))]
    item = Recorder()
    fn(finetune=item.finetune, evidence=item, profile=profile, model="efficientnet_lite0", dataset="fashion_mnist", seed=0)
    assert item.sides == {"low": [low], "high": [high], "both": [low, high]}[reads]
