"""Evidence that the calibration procedure works: it recovers known parameters from synthetic
targets, and the committed calibrated parameters fit the record better than the defaults."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from sim.calibrate import (
    CalibrationConfig,
    OptimiserConfig,
    ParameterSpec,
    build_problem,
    calibrate,
    loss,
    simulate_moments,
)
from sim.cli import config_dir
from sim.events import default_events_path, load_events
from sim.history import ERA_DRIVE_PARAMS
from sim.params import ConfigError


@pytest.fixture(scope="module")
def events():
    return load_events(default_events_path())


@pytest.mark.slow
def test_parameter_recovery_from_synthetic_targets(events):
    """Simulate targets at known parameters (seed 7, R=2000, 2016-2017), then calibrate from other
    seeds (seed 11, R=300) starting blind inside the bounds: each estimate must land within 15 % of
    its bound range of the truth."""
    truth = {"dprk_cost_srbm": 1.6, "salvo_extra": 1.4}
    specs = [ParameterSpec("dprk_cost_srbm", 0.0, 4.0), ParameterSpec("salvo_extra", 0.1, 3.0)]
    weights = {"dprk_launch_weeks": 1.0, "dprk_missiles": 1.0}
    synth_cc = CalibrationConfig(years=[2016, 2017], replications=2000, seed=7, parameters=specs,
                                 weights=weights, progress=False)
    problem = build_problem(synth_cc, events)
    moments, _ = simulate_moments(problem.config(np.array([truth[s.name] for s in specs])))
    observed = moments.yearly.reindex(problem.observed.index)

    cc = dataclasses.replace(
        synth_cc, replications=300, seed=11, write_params="", write_scenario="",
        optimiser=OptimiserConfig(popsize=5, maxiter=6, polish_maxiter=40, bootstrap=0, workers=2),
    )
    result = calibrate(cc, events, observed=observed)
    for spec in specs:
        est = result["parameters"][spec.name]["estimate"]
        assert abs(est - truth[spec.name]) < 0.15 * (spec.upper - spec.lower), (spec.name, est)
    assert result["loss"] < result["loss_at_defaults"]


def test_calibrated_parameters_fit_better_than_defaults(events):
    """The committed configs/params/calibrated.yaml and scenario/historical.yaml give a lower loss
    than the defaults on the default targets (seed 20161220, R=200)."""
    path = config_dir() / "params" / "calibrated.yaml"
    fitted = yaml.safe_load(path.read_text())
    scenario = yaml.safe_load((config_dir() / "scenario" / "historical.yaml").read_text())
    drives = {name: era["weapons_drive"]
              for name, era in zip(ERA_DRIVE_PARAMS, scenario["eras"], strict=False)}
    cc = CalibrationConfig(replications=200, progress=False)
    problem = build_problem(cc, events)
    names = [p.name for p in cc.parameters]
    values = {**fitted, **drives}
    theta = np.array([values[n] for n in names])
    default = np.array([getattr(problem.base.params, n) if hasattr(problem.base.params, n) else 1.0
                        for n in names])
    assert loss(theta, problem) < loss(default, problem)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: ParameterSpec("no_such_param", 0, 1), "unknown"),
        (lambda: ParameterSpec("salvo_extra", 2, 1), "must be below"),
        (lambda: CalibrationConfig(years=[2010]), "subset"),
        (lambda: CalibrationConfig(weights={"bogus": 1.0}), "unknown target group"),
        (lambda: CalibrationConfig(policy="bogus"), "unknown"),
        (lambda: CalibrationConfig(parameters=[]), "empty"),
    ],
)
def test_bad_calibration_config_is_one_line(make, fragment):
    with pytest.raises(ConfigError) as err:
        make()
    assert fragment in str(err.value) and "\n" not in str(err.value)
