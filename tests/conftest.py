"""Shared fixtures: a small-run config factory and the per-replication provocation count."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from sim import RunConfig

# Property tests run whole simulations: no per-example deadline, and no example database written
# into the repository (failures print the reproducing example instead).
settings.register_profile(
    "dsim",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("dsim")

SMALL_REPLICATIONS = 20
SMALL_WEEKS = 60
TEST_SEED = 12345


def small_config(
    *,
    replications: int = SMALL_REPLICATIONS,
    weeks: int = SMALL_WEEKS,
    seed: int = TEST_SEED,
    **changes: Any,
) -> RunConfig:
    """A RunConfig for tests: few replications, a short horizon, no progress bar.

    ``changes`` go to :meth:`RunConfig.replace` (nested groups as dicts); a ``scenario`` dict is
    merged with the horizon.
    """
    scenario = dict(changes.pop("scenario", {}))
    scenario.setdefault("weeks", weeks)
    return RunConfig(replications=replications, seed=seed, progress=False).replace(
        scenario=scenario, **changes
    )


@pytest.fixture
def make_config() -> Callable[..., RunConfig]:
    """Factory fixture: ``make_config(replications=..., weeks=..., policy={...}, params={...})``."""
    return small_config


def provocations(per_replication: pd.DataFrame) -> np.ndarray:
    """DPRK provocations per replication: launch days + nuclear tests + border incidents."""
    return (
        per_replication["dprk_launch_days"]
        + per_replication["dprk_nuclear_test"]
        + per_replication["dprk_border_incident"]
    ).to_numpy(dtype=float)


def welch_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of the difference of two independent sample means."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))


# The longest test files first: xdist (`--dist loadfile`, pyproject.toml) hands whole files to its
# two workers in collection order, so a long file collected last would run alone at the end. The
# order of the rest is unchanged.
LONGEST_FIRST = ("test_sweep.py", "test_progress.py", "test_notebooks.py", "test_explore.py",
                 "test_config.py", "test_explore_e2e.py", "test_cli.py", "test_calibration.py")


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
