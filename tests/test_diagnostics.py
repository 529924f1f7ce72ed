"""The belief-calibration diagnostic: ECE of forecasts that are calibrated, and of ones that are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.diagnostics import belief_calibration, expected_calibration_error


def test_calibrated_forecasts_have_an_ece_near_zero():
    """Outcomes drawn with the forecast's own probability (seed 3, n = 200,000): ECE within
    sampling noise of 0 (each of 10 bins holds about 20,000 draws, standard error < 0.004)."""
    rng = np.random.default_rng(3)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(float)
    ece, table = expected_calibration_error(p, y)
    assert ece < 0.01
    assert len(table) == 10 and table["n"].sum() == p.size


def test_a_confident_wrong_forecast_has_the_gap_as_its_ece():
    """Always 0.9 when 20 % of outcomes happen: one bin, ECE = |0.9 - 0.2| exactly."""
    y = np.zeros(1000)
    y[:200] = 1
    ece, table = expected_calibration_error(np.full(1000, 0.9), y)
    assert ece == pytest.approx(0.7)
    assert len(table) == 1 and table.loc[0, "low"] == pytest.approx(0.9)


def test_forecasts_of_exactly_0_and_1_fall_in_the_end_bins():
    ece, table = expected_calibration_error(np.array([0.0, 1.0]), np.array([0.0, 1.0]), bins=4)
    assert ece == 0.0 and list(table["bin"]) == [0, 3]


def test_belief_calibration_reads_the_per_replication_table():
    """Bins of unequal size and gaps of both signs: the ECE weights each bin's absolute gap by its
    number of replications."""
    per = pd.DataFrame({"final_dprk_belief": [0.9, 0.9, 0.9, 0.1],
                        "us_resolute": [True, False, False, True]})
    out = belief_calibration(per)
    assert out["share_resolute"] == 0.5
    assert out["mean_belief_if_resolute"] == pytest.approx(0.5)
    assert out["mean_belief_if_irresolute"] == pytest.approx(0.9)
    assert out["ece"] == pytest.approx((3 * abs(0.9 - 1 / 3) + 1 * abs(0.1 - 1.0)) / 4)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        expected_calibration_error([0.5, 1.2], [0, 1])
    with pytest.raises(ValueError):
        expected_calibration_error([0.5], [0.5])
