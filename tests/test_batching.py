"""Which sweep points run as one batched model (sim.batching), decided from composed configs."""

from __future__ import annotations

import pandas as pd
import pytest

from sim import Posture, RunConfig, load_config
from sim.batching import balanced, batch_for, group_points, makespan, max_blocks_in_memory, run_points
from sim.memory import estimated_memory_bytes
from sim.model import run
from sim.params import Perception


def _base() -> RunConfig:
    return RunConfig(replications=30, seed=4, progress=False).replace(scenario={"weeks": 80})


def test_points_differing_in_batchable_settings_share_a_group():
    base = _base()
    configs = [
        base,
        base.replace(credibility=0.3),
        base.replace(params={"spiral_weight": 0.2}),
        base.replace(scenario={"dprk_prior": 0.4}),
        base.replace(params={"us_threat_window_weeks": 6}),  # a whole number
        base.replace(progress=True, reference_policy=Posture.permanent),  # not results: still one
    ]
    assert group_points(configs) == [[0, 1, 2, 3, 4, 5]]


@pytest.mark.parametrize("change", [
    {"policy": {"name": Posture.permanent}},
    {"seed": 5},
    {"replications": 31},
    {"scenario": {"weeks": 81}},
    {"params": {"perception": Perception.costly_signals}},  # not numeric: not batchable
    {"policy": {"rotation_interval_weeks": 5}},
])
def test_points_differing_in_anything_else_run_apart(change):
    base = _base()
    other = base.replace(**change)
    assert group_points([base, other, base.replace(credibility=0.2)]) == [[0, 2], [1]]
    with pytest.raises(ValueError, match="cannot run in one batch"):
        batch_for([base, other])


def test_groups_are_capped_and_split_for_parallel_workers():
    base = _base()
    configs = [base.replace(credibility=c / 10) for c in range(7)] + [
        base.replace(seed=9, credibility=c / 10) for c in range(2)]
    assert group_points(configs, max_blocks=3) == [[0, 1, 2], [3, 4], [5, 6], [7, 8]]
    assert group_points(configs, min_groups=4) == [[0, 1], [2, 3], [4, 5, 6], [7, 8]]
    assert group_points(configs[:1], min_groups=4) == [[0]]


def test_groups_are_balanced_over_the_workers():
    """Three postures of 11 points on two workers: one group is halved (its halves go to the
    worker that has the third group, 12 + 12 against 6 + 7 + 11 ... in points plus a group's cost);
    eight groups of 11 (the rotational-vs-permanent study) already balance and stay whole."""
    base = _base()
    configs = [base.replace(seed=s, credibility=c / 10) for s in (1, 2, 3) for c in range(11)]
    groups = group_points(configs, min_groups=2)
    assert sorted(len(g) for g in groups) == [5, 6, 11, 11]
    assert sorted(i for g in groups for i in g) == list(range(33))
    assert makespan([len(g) for g in groups], 2) < makespan([11, 11, 11], 2)
    eight = [list(range(11 * k, 11 * k + 11)) for k in range(8)]
    assert balanced(eight, 2) == eight
    assert group_points(configs, min_groups=1) == [list(range(11 * k, 11 * k + 11)) for k in range(3)]
    assert makespan([6, 5, 1], 2) == 8 and makespan([11, 1], 2) == 12


def test_memory_caps_the_number_of_blocks():
    """A budget of 5 points' worth of replications beyond the fixed part holds 5 blocks."""
    config = RunConfig(replications=1_000, progress=False)
    one = estimated_memory_bytes(config)
    two = estimated_memory_bytes(config.replace(replications=2_000))
    per_block = two - one
    assert max_blocks_in_memory(config, one - per_block + 5 * per_block) == 5
    assert max_blocks_in_memory(config, 1) == 1
    assert max_blocks_in_memory(config, None) is None


def test_batch_gives_the_prior_of_a_point_without_one_as_its_credibility():
    base = _base()
    _, batch = batch_for([base.replace(credibility=0.2), base.replace(credibility=0.6,
                                                                      scenario={"dprk_prior": 0.5})])
    assert batch == {"credibility": [0.2, 0.6], "dprk_prior": [0.2, 0.5]}


def test_groups_come_from_the_composed_configs(tmp_path):
    """A user's posture file that composes to the rotational posture batches with `rotational`
    (other name, same config); one that changes a cadence does not; a params file that changes
    only a numeric parameter does."""
    (tmp_path / "policy").mkdir()
    (tmp_path / "params").mkdir()
    (tmp_path / "policy" / "same.yaml").write_text("defaults:\n  - rotational\n  - _self_\n")
    (tmp_path / "policy" / "fast.yaml").write_text(
        "defaults:\n  - rotational\n  - _self_\nrotation_interval_weeks: 3\n")
    (tmp_path / "params" / "spiral.yaml").write_text(
        "defaults:\n  - default\n  - _self_\nspiral_weight: 0.9\n")
    small = ["replications=30", "scenario.weeks=80", "progress=false"]
    configs = [load_config([*small, *extra], config_dirs=[tmp_path]) for extra in (
        ["policy=rotational"], ["policy=same", "credibility=0.3"], ["policy=fast"],
        ["params=spiral"])]
    assert group_points(configs) == [[0, 1, 3], [2]]


def test_run_points_equals_the_plain_runs():
    """Seed 4, R=30, 80 weeks: three points run as one model give each point's plain results."""
    base = _base()
    configs = [base.replace(credibility=0.1), base.replace(credibility=0.9, scenario={"dprk_prior": 0.3}),
               base.replace(credibility=0.5, params={"spiral_weight": 0.1, "us_threat_window_weeks": 6})]
    for got, config in zip(run_points(configs), configs, strict=True):
        want = run(config)
        assert got.config == config
        pd.testing.assert_frame_equal(got.replications, want.replications, check_exact=True)
        pd.testing.assert_frame_equal(got.timeseries, want.timeseries, check_exact=True)
        assert got.meta == want.meta
