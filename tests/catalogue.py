"""The shipped claim catalogue: the claim modules this project ships, listed in one place.

The catalogue policy tests (tests/test_claims.py) hold these modules to the project's own standards:
a fair-test budget, a margin justified from the sources, quoted gaps that are the transcribed ones.
A user's claim saved in claims/ as README's "Adding your own" says is not listed: it meets the rules
every claim must meet (harness.claims.check_prereg, at collection) and no more.

A list rather than `git ls-files`: the suite also runs where there is no git (an unpacked archive),
and a list cannot take in a file by accident. tests/test_claims.py checks that it names every claim
module git tracks, so a new shipped claim cannot escape the policy tests.
"""
from pathlib import Path

from conftest import ROOT

SHIPPED_CLAIM_MODULES = (
    "test_dataset_stats.py",
    "test_exact_values.py",
    "test_fixres.py",
    "test_init_compensation.py",
    "test_no_normalization.py",
    "test_norm_methods.py",
    "test_recommendation.py",
    "test_std_estimator.py",
)


def shipped_claim_files(claims_dir: Path = ROOT / "claims") -> list[Path]:
    return [claims_dir / name for name in SHIPPED_CLAIM_MODULES]
