"""Posterior calibration (WIP, issue 13): the batched summaries and the batch sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.calibrate import TIMING_TARGETS, CalibrationConfig, ParameterSpec, _moments
from sim.events import default_events_path
from sim.model import DeterrenceModel
from sim.posterior import problem_for, run_abc, simulate_summaries, summary_keys

pyabc = pytest.importorskip("pyabc")

SMALL = CalibrationConfig(events_file=str(default_events_path()), years=[2016, 2017], replications=1,
                          parameters=[ParameterSpec("dprk_cost_srbm", 0.0, 6.0),
                                      ParameterSpec("salvo_extra", 0.1, 3.0)],
                          profile=[], progress=False)


def test_batched_summaries_equal_each_blocks_own_moments():
    """Seed 3, 5 prior points, the full default targets: the summaries computed for all blocks at
    once equal those of sim.calibrate._moments block by block."""
    cc = CalibrationConfig(events_file=str(default_events_path()), progress=False)
    problem = problem_for(cc)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(p.lower, p.upper, 5) for p in cc.parameters])
    fast = simulate_summaries(problem, points, 3)
    base = problem.base.replace(replications=1, seed=3)
    model = DeterrenceModel(base, batch=problem.batch(points), weekly=False, detail=True, independent=True)
    res = model.run()
    hists = res.meta["response_lag_histogram_by_block"]
    for j, block in res.replications.groupby("block", sort=True):
        m = _moments(block, hists[j], {k: v[:, j:j + 1] for k, v in res.detail.items()}, problem.calendar)
        for key in summary_keys(problem):
            if key == "war":
                ref = m.p_war
            elif key in TIMING_TARGETS:
                ref = m.timing[key] if math.isfinite(m.timing[key]) else 0.0
            else:
                group, year = key.rsplit("_", 1)
                ref = m.yearly.loc[int(year), group]
            assert fast[j][key] == pytest.approx(ref, abs=1e-12), (j, key)


def test_a_run_is_reproducible_and_its_weights_sum_to_one(tmp_path):
    """Population 20, 2 generations, 2016-2017, seed 20161220: two runs give the same posterior."""
    draws = []
    for k in range(2):
        history, sampler, _ = run_abc(SMALL, f"sqlite:///{tmp_path / f'run{k}.db'}", population=20,
                                      generations=2, max_batch=200)
        df, w = history.get_distribution()
        assert w.sum() == pytest.approx(1.0)
        assert sampler.simulations >= 40
        draws.append(df.sort_index(axis=1).to_numpy())
    np.testing.assert_array_equal(draws[0], draws[1])


def test_replication_summaries_match_the_per_block_moments_of_one_replication():
    """Seed 4, 3 points x 2 replications: each replication's yearly counts are its rows of the
    replication table, and its timing statistic is the event study's on that one history."""
    from sim.posterior import replication_summaries

    cc = CalibrationConfig(events_file=str(default_events_path()), progress=False)
    problem = problem_for(cc)
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(p.lower, p.upper, 3) for p in cc.parameters])
    keys = [k for k in summary_keys(problem) if k != "war"]
    got = replication_summaries(problem, points, 2, 4, keys)
    base = problem.base.replace(replications=2, seed=4)
    res = DeterrenceModel(base, batch=problem.batch(points), weekly=False, detail=True).run()
    reps = res.replications.set_index(["block", "replication", "year"])
    from sim.calibrate import SIM_COLUMNS, simulated_on_calendar
    from sim.event_study import timing_statistics
    series = simulated_on_calendar(res.detail, problem.calendar)
    for b in range(3):
        for r in range(2):
            for c, key in enumerate(keys):
                if key in TIMING_TARGETS:
                    v = timing_statistics(series.select([b * 2 + r]))[key]
                    expected = v if math.isfinite(v) else 0.0
                else:
                    group, year = key.rsplit("_", 1)
                    expected = reps.loc[(b, r, int(year)), SIM_COLUMNS[group]]
                assert got[b, r, c] == pytest.approx(expected), (b, r, key)


def test_the_synthetic_likelihood_is_highest_near_the_samples_mean():
    from sim.posterior import synthetic_log_likelihood

    x = np.random.default_rng(2).normal(size=(200, 3))
    assert synthetic_log_likelihood(x, x.mean(axis=0)) > synthetic_log_likelihood(x, x.mean(axis=0) + 2.0)
