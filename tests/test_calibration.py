"""Evidence that the calibration procedure works: it recovers known parameters from synthetic
targets, and the committed calibrated parameters fit the record better than the defaults. Then its
inputs: every bad setting or events file is one line before anything is written, and its outputs
go only into the output folder unless install=true."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim.calibration_report
from sim.calibrate import (
    FITTED_PARAMS,
    FITTED_SCENARIO,
    INSTALL_TARGETS,
    CalibrationConfig,
    OptimiserConfig,
    ParameterSpec,
    build_problem,
    calibrate,
    check_calibration_inputs,
    install_path,
    loss,
    parameter_range,
    simulate_moments,
)
from sim.calibration_report import CALIBRATION_FILES, install_fitted_configs, run_calibration
from sim.cli import config_dir
from sim.events import COLUMNS, EventDataError, default_events_path, load_events
from sim.history import ERAS, PARAM_OF_ERA
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
    weights = {"dprk_launch_days": 1.0, "dprk_missiles": 1.0}
    synth_cc = CalibrationConfig(years=[2016, 2017], replications=2000, seed=7, parameters=specs,
                                 weights=weights, progress=False, profile=[])
    problem = build_problem(synth_cc, events)
    moments, _, _ = simulate_moments(problem.config(np.array([truth[s.name] for s in specs])),
                                     problem.calendar)
    observed = moments.yearly.reindex(problem.observed.index)

    cc = dataclasses.replace(
        synth_cc, replications=300, seed=11,
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
    drives = {PARAM_OF_ERA[era["name"]]: era["weapons_drive"] for era in scenario["eras"]
              if era["name"] in PARAM_OF_ERA}
    cc = CalibrationConfig(replications=200, progress=False)
    problem = build_problem(cc, events)
    names = [p.name for p in cc.parameters]
    values = {**fitted, **drives}
    theta = np.array([values[n] for n in names])
    default = np.array([getattr(problem.base.params, n) if hasattr(problem.base.params, n) else 1.0
                        for n in names])
    assert loss(theta, problem) < loss(default, problem)


# ------------------------------------------------------------------ settings: one line each
BAD_SETTINGS = {
    "unknown-parameter": (lambda: ParameterSpec("no_such_param", 0, 1), "is not a numeric parameter"),
    "non-numeric-parameter": (lambda: ParameterSpec("credibility_rule", 0, 1), "not a numeric"),
    "lower-above-upper": (lambda: ParameterSpec("salvo_extra", 2, 1), "must be below"),
    "lower-equals-upper": (lambda: ParameterSpec("salvo_extra", 1, 1), "must be below"),
    "infinite-upper": (lambda: ParameterSpec("salvo_extra", 0, math.inf), "upper=inf is out of range"),
    "nan-lower": (lambda: ParameterSpec("salvo_extra", math.nan, 1), "lower=nan is out of range"),
    "upper-past-range": (lambda: ParameterSpec("salvo_extra", 0, 1000), "give a number in [0, 100]"),
    "lower-past-range": (lambda: ParameterSpec("spiral_weight", -1, 1), "give a number in [0, 1]"),
    "era-drive-past-range": (lambda: ParameterSpec("era_drive_2018", 0, 1e9), "upper=1000000000.0"),
    "years-outside": (lambda: CalibrationConfig(years=[2010]), "within 2016..2023"),
    "years-repeated": (lambda: CalibrationConfig(years=[2017, 2017]), "each year once"),
    "years-unsorted": (lambda: CalibrationConfig(years=[2018, 2016]), "must be increasing"),
    "years-empty": (lambda: CalibrationConfig(years=[]), "at least one whole year"),
    "years-not-whole": (lambda: CalibrationConfig(years=[2016.5]), "at least one whole year"),
    "weights-unknown": (lambda: CalibrationConfig(weights={"bogus": 1.0}), "unknown target group"),
    "weights-nan": (lambda: CalibrationConfig(weights={"p_war": math.nan}), "weights.p_war=nan"),
    "weights-inf": (lambda: CalibrationConfig(weights={"p_war": math.inf}), "weights.p_war=inf"),
    "weights-negative": (lambda: CalibrationConfig(weights={"p_war": -1.0}), "weights.p_war=-1.0"),
    "weights-all-zero": (lambda: CalibrationConfig(weights={"p_war": 0.0, "dprk_missiles": 0}),
                         "all 0"),
    "policy": (lambda: CalibrationConfig(policy="bogus"), "unknown"),
    "parameters-empty": (lambda: CalibrationConfig(parameters=[]), "empty"),
    "profile-not-free": (lambda: CalibrationConfig(parameters=[ParameterSpec("salvo_extra", 0, 1)]),
                         "spiral_weight, which is not a free parameter"),
    "profile-one-point": (lambda: OptimiserConfig(profile_points=1), "optimiser.profile_points=1"),
    "profile-negative": (lambda: OptimiserConfig(profile_points=-1), "optimiser.profile_points=-1"),
    "parameters-twice": (lambda: CalibrationConfig(parameters=[ParameterSpec("salvo_extra", 0, 1)] * 2),
                         "salvo_extra twice"),
    "replications-fraction": (lambda: CalibrationConfig(replications=2.5), "replications=2.5"),
    "replications-zero": (lambda: CalibrationConfig(replications=0), "replications=0"),
    "credibility-nan": (lambda: CalibrationConfig(credibility=math.nan), "credibility=nan"),
    "events-file-empty": (lambda: CalibrationConfig(events_file=" "), "events_file is empty"),
    "optimiser-zero": (lambda: OptimiserConfig(maxiter=0), "optimiser.maxiter=0"),
    "optimiser-fraction": (lambda: OptimiserConfig(popsize=2.5), "optimiser.popsize=2.5"),
    "optimiser-bool": (lambda: OptimiserConfig(workers=True), "optimiser.workers=True"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS), ids=list(BAD_SETTINGS))
def test_bad_calibration_config_is_one_line(case):
    make, fragment = BAD_SETTINGS[case]
    with pytest.raises(ConfigError) as err:
        make()
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_every_default_bound_lies_in_its_parameters_valid_range():
    for spec in CalibrationConfig().parameters:
        valid = parameter_range(spec.name)
        assert valid.admits(spec.lower) and valid.admits(spec.upper), spec


def test_calibrate_yaml_holds_every_setting_with_a_one_line_comment():
    """configs/calibrate.yaml lists every CalibrationConfig field, each with the comment that
    `dsim-calibrate --help` shows, and no other key (write_params and write_scenario are gone)."""
    text = (config_dir() / "calibrate.yaml").read_text(encoding="utf-8")
    keys = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]\w*):.*#\s*(\S.*)$", line) or re.match(r"^([a-z_]\w*):", line)
        if m and m.group(1) not in ("defaults", "hydra"):
            keys[m.group(1)] = m.group(2) if m.lastindex == 2 else ""
    # policy comes from the `policy` config group (the defaults list), not a key of its own
    assert set(keys) | {"policy"} == {f.name for f in dataclasses.fields(CalibrationConfig)}
    assert "- policy: reactive" in text
    assert all(keys.values()), [k for k, v in keys.items() if not v]
    assert yaml.safe_load(text)["install"] is False


# ------------------------------------------------------------------ events file and folders
HEADER = ",".join(COLUMNS)
ROW_2016 = "2016-01-06,,DPRK,nuclear_test,,1,,x,src,false"
ROW_2017 = "2017-09-03,,DPRK,nuclear_test,,1,,x,src,false"


def _events(tmp_path: Path, body: bytes) -> CalibrationConfig:
    path = tmp_path / "events.csv"
    path.write_bytes(body)
    return CalibrationConfig(events_file=str(path), years=[2016, 2017], progress=False)


BAD_EVENTS = {
    "not-utf8": ((HEADER + "\n" + ROW_2016 + "\n2016-02-07,,DPRK,nuclear_test,,1,,S\xe9oul,src,false\n")
                 .encode("latin-1"), ":3: byte 0xe9 is not UTF-8"),
    "header-only": ((HEADER + "\n").encode(), "no events follow"),
    "count-1e30": ((HEADER + "\n" + ROW_2016.replace(",1,,x", ",1" + "0" * 30 + ",,x") + "\n").encode(),
                   ":2: count '1" + "0" * 30),
    "years-outside-record": ((HEADER + "\n" + ROW_2016 + "\n").encode(), "from 2016 to 2016"),
}


@pytest.mark.parametrize("case", list(BAD_EVENTS), ids=list(BAD_EVENTS))
def test_a_bad_events_file_is_one_line_before_anything_is_written(tmp_path, case):
    body, fragment = BAD_EVENTS[case]
    cc = _events(tmp_path, body)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises((ConfigError, EventDataError)) as err:
        check_calibration_inputs(cc, config_dir())
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert sorted(tmp_path.rglob("*")) == before


def test_the_shipped_inputs_pass_the_check_and_a_missing_file_does_not(tmp_path):
    check_calibration_inputs(CalibrationConfig(), config_dir())
    check_calibration_inputs(_events(tmp_path, (HEADER + f"\n{ROW_2016}\n{ROW_2017}\n").encode()),
                             config_dir())
    with pytest.raises(EventDataError, match="no such file"):
        check_calibration_inputs(CalibrationConfig(events_file=str(tmp_path / "absent.csv")), config_dir())


@pytest.fixture()
def configs_copy(tmp_path) -> Path:
    """A copy of configs/ to install into (the repository's own files are never touched)."""
    return Path(shutil.copytree(config_dir(), tmp_path / "configs"))


def _no_fit(*_args, **_kwargs):
    raise AssertionError("the fit started although an input was bad")


def test_an_unwritable_install_target_is_found_before_the_fit(configs_copy, monkeypatch, tmp_path):
    monkeypatch.setattr(sim.calibration_report, "calibrate", _no_fit)
    shutil.rmtree(configs_copy / "params")
    (configs_copy / "params").write_text("a file where the folder should be\n")
    cc = CalibrationConfig(install=True, progress=False)
    with pytest.raises(ConfigError, match=r"^install=true: cannot write into .*params") as err:
        check_calibration_inputs(cc, configs_copy)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="install=true"):
        run_calibration(cc, tmp_path / "out", configs_copy)
    assert not (tmp_path / "out").exists()
    # without install=true configs/ is not needed to be writable
    check_calibration_inputs(dataclasses.replace(cc, install=False), configs_copy)


def test_an_unwritable_output_folder_is_found_before_the_fit(monkeypatch, tmp_path):
    monkeypatch.setattr(sim.calibration_report, "calibrate", _no_fit)
    (tmp_path / "file").write_text("x\n")
    with pytest.raises(ConfigError, match="cannot make the output folder"):
        run_calibration(CalibrationConfig(progress=False), tmp_path / "file" / "out", config_dir())


def test_install_goes_only_to_the_fixed_places_inside_configs(configs_copy, tmp_path):
    for bad in ("../x.yaml", "/tmp/x.yaml", "params/other.yaml", "params/../../x.yaml", "calibrated.yaml"):
        with pytest.raises(ConfigError, match="fitted configs go only to"):
            install_fitted_configs({bad: "x: 1\n"}, configs_copy)
    # a group folder that is a link to elsewhere is refused too
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(configs_copy / "scenario")
    (configs_copy / "scenario").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="leads outside"):
        install_path(configs_copy, FITTED_SCENARIO)
    assert list(elsewhere.iterdir()) == []


def test_install_replaces_atomically_and_keeps_the_files_mode(configs_copy):
    target = configs_copy / FITTED_PARAMS
    target.chmod(0o664)
    written = install_fitted_configs({FITTED_PARAMS: "salvo_extra: 0.5\n"}, configs_copy)
    assert written == [target.resolve()]
    assert target.read_text() == "salvo_extra: 0.5\n"
    assert target.stat().st_mode & 0o777 == 0o664
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failed_install_leaves_configs_as_it_was(configs_copy, monkeypatch):
    before = _tree(configs_copy)
    calls = []

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second file does not fit
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sim.calibration_report.os, "fsync", full_disk)
    files = {FITTED_PARAMS: "salvo_extra: 0.5\n", FITTED_SCENARIO: "name: historical\n"}
    with pytest.raises(OSError, match="No space left"):
        install_fitted_configs(files, configs_copy)
    assert _tree(configs_copy) == before  # neither file replaced, no temporary left


def _stub_fit(cc, events):
    """What calibrate() returns, without fitting (for the tests of the writing stage)."""
    weeks = pd.date_range("2016-01-04", periods=3, freq="7D")
    return {"loss": 1.0, "loss_at_defaults": 2.0, "run_time_seconds": 0.0, "parameters": {},
            "targets": [], "_fitted": {"salvo_extra": 0.5}, "_problem": None,
            "_timeseries": pd.DataFrame({"date": weeks, "dprk_launch_days": 1.0})}


def test_a_full_disk_while_writing_leaves_no_half_written_output(monkeypatch, tmp_path):
    def write_one_then_fail(folder, *_args):
        (folder / "calibration.json").write_text("{}")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sim.calibration_report, "calibrate", _stub_fit)
    monkeypatch.setattr(sim.calibration_report, "_write_outputs", write_one_then_fail)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        run_calibration(CalibrationConfig(progress=False), out, config_dir())
    assert list(out.iterdir()) == []  # the staging folder and its one file are gone


# ------------------------------------------------------------------ a tiny fit, end to end
TINY = dict(events_file=str(default_events_path()), years=[2016, 2017], replications=20,
            parameters=[ParameterSpec("salvo_extra", 0.1, 2.0)], progress=False, profile=["salvo_extra"],
            optimiser=OptimiserConfig(popsize=2, maxiter=1, polish_maxiter=1, bootstrap=0, workers=1,
                                      profile_points=2, profile_maxiter=1))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_fits(tmp_path_factory):
    """Two tiny fits (R = 20, one generation of 2 points, one polish step, no bootstrap; about 5 s
    each): one by default, one with install=true, each into its own copy of configs/."""
    out = {}
    for install in (False, True):
        tmp = tmp_path_factory.mktemp(f"install_{install}")
        configs = Path(shutil.copytree(config_dir(), tmp / "configs"))
        before = _tree(configs)
        result = run_calibration(CalibrationConfig(**TINY, install=install), tmp / "out", configs)
        out[install] = (tmp / "out", configs, before, result)
    return out


def test_by_default_the_fit_is_written_only_into_the_output_folder(tiny_fits):
    out, configs, before, result = tiny_fits[False]
    assert _tree(configs) == before  # configs/ untouched
    assert sorted(_tree(out)) == sorted(CALIBRATION_FILES)
    fitted = yaml.safe_load((out / FITTED_PARAMS).read_text())
    assert fitted == {"salvo_extra": pytest.approx(result["parameters"]["salvo_extra"]["estimate"],
                                                   abs=1e-6)}
    scenario = yaml.safe_load((out / FITTED_SCENARIO).read_text())
    assert scenario["name"] == "historical"
    assert [e["name"] for e in scenario["eras"]] == [e.name for e in ERAS]
    assert not [p for p in out.rglob(".*")]  # no staging folder left


def test_install_true_also_installs_the_fitted_configs(tiny_fits):
    out, configs, before, _ = tiny_fits[True]
    after = _tree(configs)
    for rel in INSTALL_TARGETS:
        assert after[rel] == (out / rel).read_bytes() != before[rel]
    assert {k: v for k, v in after.items() if k not in INSTALL_TARGETS} == \
        {k: v for k, v in before.items() if k not in INSTALL_TARGETS}
