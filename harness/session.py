"""The session's state: one object on pytest's config.stash, as pytest's junitxml keeps its own.

The plugin makes it in pytest_configure (on the controller and on every xdist worker) and every
module that needs the session reads it with `of(config)`: the report, the progress display, the
evidence fixture. Item-level state (a claim item's tag, --plan's passes) lives on each item's stash
under the keys below. This module imports nothing of the harness's upper floors, so none of them
imports another through it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.claims import ClaimSpec
from harness.config import Profile
from harness.norms import CHOOSABLE
from harness.observations import ItemTag


@dataclass(frozen=True)
class Settings:
    """What the command line asked for, checked (harness.options)."""

    profile: Profile
    seeds: int  # seeds of a fixed design (with --seeds auto: the profile's, for claims without a plan)
    seeds_chosen: bool  # --seeds N: every claim runs N seeds; otherwise a claim's own planned number, if it has one
    sequential: bool  # --seeds auto: claims with a sequential plan follow it, the others their planned seeds
    devices: list[str]
    device: str  # this process's device
    threads: int  # intra-op threads of this process's runs: --cpu-threads, else its share of the cores
    data_dir: Path
    store_path: Path
    fresh_after: float | None  # --rerun: ignore runs finished before this session
    models: list[str] | None
    datasets: list[str] | None
    worker: str
    plan: bool = False  # --plan: list what the session would train, train nothing
    recommend_norms: tuple[str, ...] = CHOOSABLE  # what the recommendation compares: --recommend-norms, else these
    backend: str = "local"  # "local": this process (or each xdist worker) trains; "ray": Ray tasks do
    ray_address: str | None = None  # --ray-address; None: a Ray instance on this machine
    node_data_dir: Path | None = None  # the data dir on the Ray nodes (--ray-data-dir, else data_dir)


@dataclass
class Session:
    settings: Settings
    store: object  # harness.store.RunStore
    start: float = field(default_factory=time.time)  # the controller's start, also on every worker
    backend: object | None = None  # --backend ray: the session's harness.ray_backend.RayBackend
    specs: dict[str, ClaimSpec] = field(default_factory=dict)  # test function's node id -> its claim
    usage_errors: list[str] = field(default_factory=list)  # pre-registration problems found collecting
    deferred: dict[str, str] = field(default_factory=dict)  # claim (or claim/cell) -> its module, left out


SESSION = pytest.StashKey[Session]()


def of(config: pytest.Config) -> Session:
    return config.stash[SESSION]


def active(config: pytest.Config) -> Session | None:
    """The session, or None where the plugin did not configure one (pytest stopped before it)."""
    return config.stash.get(SESSION, None)


# on each claim item's stash
ITEM_TAG = pytest.StashKey[ItemTag]()  # its claim, cell and seed
REQUESTS = pytest.StashKey[list]()  # --plan: the runs an item asked for, in its current pass
PLAN_PASS = pytest.StashKey[int]()  # --plan: which of the item's two passes is running
PLANNED = pytest.StashKey[tuple]()  # --plan: every run the item asked for, the dependent ones marked
CONFIGS = pytest.StashKey[dict]()  # --plan: the config of each missing run the item asked for, by key
AHEAD = pytest.StashKey[tuple]()  # --backend ray: (seeds, requests_ahead's answer) at collection
CALL_SEEDS = pytest.StashKey[list]()  # a sequential cell's seed now running, then those it runs for sure after it
