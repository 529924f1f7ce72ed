"""The calibration's loss scale, profile loss and the seasonality check against its flat null."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.calibrate import (
    CalibrationConfig,
    OptimiserConfig,
    ParameterSpec,
    build_problem,
    count_residuals,
    loss,
    profile_interval,
    profile_loss,
    profile_noise,
    timing_interval,
)
from sim.calibration_report import seasonality_check
from sim.events import default_events_path, load_events


def test_count_residuals_are_pearson_residuals_over_the_groups_mean_count():
    observed = np.array([15.0, 0.0, 4.0, 34.0])
    simulated = np.array([13.0, 1.0, 3.0, 18.0])
    floor = 2.0
    scale = np.maximum(observed, floor)
    pearson_sq = (simulated - observed) ** 2 / scale
    assert np.allclose(count_residuals(simulated, observed, floor) ** 2 * scale.mean(), pearson_sq)


def test_a_big_miss_in_a_busy_year_weighs_more_than_a_small_miss_in_a_quiet_one():
    """Relative errors weighed 16 of 34 like 2 of 4 (both about 0.5); Pearson scaling must not."""
    observed = np.array([34.0, 4.0])
    r = count_residuals(np.array([18.0, 2.0]), observed, 2.0)
    assert r[0] ** 2 > 5 * r[1] ** 2


def test_profile_interval_keeps_the_values_within_twice_their_noise_of_the_minimum():
    rows = [{"value": v, "loss": loss_} for v, loss_ in [(0.0, 3.0), (0.25, 1.0), (0.5, 1.05), (0.75, 1.2),
                                                         (1.0, 2.0)]]
    assert profile_interval(rows, [0.05] * 5) == [0.25, 0.5]
    assert profile_interval(rows, [0.11] * 5) == [0.25, 0.75]
    assert profile_interval(rows, [0.0] * 5) == [0.25, 0.25]
    assert profile_interval(rows, [1.1, 0, 0, 0, 0]) == [0.0, 0.25]  # noise is per point


def test_timing_interval_keeps_the_values_whose_statistics_lie_in_the_records_interval():
    rows = [{"value": v, "timing": {"a": a, "b": b}}
            for v, a, b in [(0.0, 1.0, 0.5), (0.5, 1.5, 0.5), (1.0, 2.0, 0.5), (1.5, 2.0, 0.9)]]
    assert timing_interval(rows, {"a": (1.4, 2.5)}) == [0.5, 1.5]
    assert timing_interval(rows, {"a": (1.4, 2.5), "b": (0.4, 0.6)}) == [0.5, 1.0]
    assert timing_interval(rows, {"a": (3.0, 4.0)}) is None


@pytest.fixture(scope="module")
def small_problem():
    cc = CalibrationConfig(events_file=str(default_events_path()), years=[2016, 2017], replications=30,
                           parameters=[ParameterSpec("salvo_extra", 0.1, 2.0),
                                       ParameterSpec("dprk_cost_srbm", 0.0, 6.0)],
                           profile=["salvo_extra"], progress=False,
                           optimiser=OptimiserConfig(profile_points=2, profile_maxiter=2))
    return build_problem(cc, load_events(default_events_path()))


def test_profile_holds_its_parameter_fixed_and_never_loses_to_the_start(small_problem):
    """At each grid value the profiled parameter stays where it is put, the others move, and the
    re-fitted loss is no worse than the loss at the starting point with that value."""
    x_hat = np.array([0.6, 2.0])
    bounds = [(0.1, 2.0), (0.0, 6.0)]
    rows = profile_loss(small_problem, x_hat, bounds, "salvo_extra", [0.3, 1.5], maxiter=3)
    assert [r["point"]["salvo_extra"] for r in rows] == [0.3, 1.5]
    for r in rows:
        start = loss(np.array([r["value"], 2.0]), small_problem)
        assert r["loss"] <= start + 1e-12
        assert r["loss"] == pytest.approx(sum(r["terms"].values()))
        assert set(r["timing"]) >= {"exercise_launch_ratio", "deployment_within_4_weeks"}


def test_profile_noise_is_zero_at_the_best_point_and_shrinks_with_more_replications(small_problem):
    """Seeds 20161220 + 7919 k, 6 seeds: the noise of the loss difference between two points,
    30 vs 300 replications."""
    rows = [{"loss": 1.0, "point": {"salvo_extra": 0.6, "dprk_cost_srbm": 2.0}},
            {"loss": 2.0, "point": {"salvo_extra": 1.2, "dprk_cost_srbm": 2.0}}]
    small = profile_noise(small_problem, rows)
    big = profile_noise(dataclasses.replace(small_problem,
                                            base=small_problem.base.replace(replications=300)), rows)
    assert small[0] == big[0] == 0.0
    assert 0 < big[1] < small[1]


SEASONAL = np.array([1, 1, 30, 2, 2, 2, 2, 2, 2, 2, 2, 2], dtype=float)  # a March-heavy record


def test_a_model_with_the_records_profile_beats_flat_by_a_margin():
    obs = SEASONAL / SEASONAL.sum()
    check = seasonality_check(SEASONAL, obs)
    assert check["total_variation_distance"] == 0
    assert check["tvd_model_minus_flat"] < 0
    assert check["tvd_model_minus_flat_90"][1] < 0  # the whole interval below 0
    assert check["march_share_observed"] == pytest.approx(30 / 50)
    lo, hi = check["march_share_observed_90"]
    assert lo < 30 / 50 < hi


def test_a_flat_model_does_not_beat_flat():
    check = seasonality_check(SEASONAL, np.full(12, 1 / 12))
    assert check["tvd_model_minus_flat"] == pytest.approx(0)
    assert check["tvd_model_minus_flat_90"] == pytest.approx([0, 0])


def test_a_flat_record_gives_an_interval_that_straddles_zero_for_a_mild_profile():
    """With 96 launch days spread evenly, a model a little off flat is not told apart from flat."""
    record = np.full(12, 8.0)
    mild = np.full(12, 1 / 12) + np.r_[0.01, -0.01, 0.01, -0.01, 0.01, -0.01, 0.01, -0.01, 0.01, -0.01,
                                       0.01, -0.01]
    lo, hi = seasonality_check(record, mild)["tvd_model_minus_flat_90"]
    assert lo < 0 < hi
