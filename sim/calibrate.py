"""Calibration by the simulated method of moments with common random numbers.

Targets are computed from ``data/events.csv`` by code (:mod:`sim.events`, :mod:`sim.event_study`):
per year 2016-2023 the DPRK's launch days and launch weeks, missiles and nuclear tests, US
strategic-asset deployments and DMZ/NLL incidents; the median lag from a major provocation to the
next deployment; the share of replications reaching war; and two timing statistics of the event
study (:data:`TIMING_TARGETS`: the exercise-week launch ratio and the share of major provocations
answered by a US arrival within 4 weeks), computed by one code from the record and the replay. The
model replays history (:mod:`sim.history`) with the same seed at every parameter point (common
random numbers, so the loss surface is not re-drawn between points), and the loss is

``L(theta) = sum_g w_g * mean_k r_k^2``

over target groups ``g``: for a yearly count ``r_k`` is a Pearson residual scaled by the group's
mean count (:func:`count_residuals`), for the other targets a relative error with a floor ``f_g``
(``(m - o) / max(o, f_g)``). The optimiser is scipy's differential evolution (derivative-free,
global, bounded), with each generation's whole population simulated as one batched model, then a
compass search polish from its best point (:func:`compass_search`). The profile loss of chosen
parameters (:func:`profile_loss`) shows what identifies them, with the Monte Carlo noise of its
differences (:func:`profile_noise`) and the values the record's timing admits
(:func:`timing_interval`); a lower loss found by the profile is polished and adopted. Uncertainty:
a bootstrap that redraws the years of the targets (with replacement) and the simulation seed, then
re-polishes from the estimate; the spread of the replicate estimates is reported for each
parameter.

The other event-study statistics, the month-of-year pattern of launch days and the missiles per
launch day are *not* targets: they are the out-of-sample checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import numbers
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pandas as pd
from scipy import optimize

from .event_study import WeeklySeries, event_study_table, record_series, timing_statistics
from .events import EventDataError, load_events, median_response_lag_weeks, yearly_counts
from .history import ERA_DRIVE_PARAMS, ERA_OF_PARAM, PARAM_OF_ERA, START, YEARS, historical_scenario
from .model import DeterrenceModel
from .params import (
    RANGES,
    ConfigError,
    Era,
    ModelParams,
    PolicyConfig,
    Posture,
    Range,
    RunConfig,
    field_range,
)
from .recording import median_from_histogram

TARGET_GROUPS = ("dprk_launch_days", "dprk_launch_weeks", "dprk_missiles", "dprk_nuclear_tests",
                 "us_deployments", "kinetic_incidents", "response_lag_weeks", "p_war",
                 "exercise_launch_ratio", "deployment_within_4_weeks")
# Timing targets of the event study (sim.event_study) that can enter the fit; the others it reports
# (post_arrival_launch_ratio, consultation_launch_ratio, the exercise ratio by scale,
# deployment_within_1_week) stay out of it, as out-of-sample checks.
TIMING_TARGETS = ("exercise_launch_ratio", "deployment_within_4_weeks")
# yearly target -> the per replication-year column of the model that it is compared with
SIM_COLUMNS = {"dprk_launch_days": "dprk_launch_days", "dprk_launch_weeks": "dprk_launch_weeks",
               "dprk_missiles": "dprk_missiles", "dprk_nuclear_tests": "dprk_nuclear_test",
               "us_deployments": "us_deployments", "kinetic_incidents": "clashes"}
FLOORS = {"dprk_launch_days": 2.0, "dprk_launch_weeks": 2.0, "dprk_missiles": 4.0,
          "dprk_nuclear_tests": 1.0, "us_deployments": 2.0, "kinetic_incidents": 1.0,
          "response_lag_weeks": 1.0, "p_war": 0.05, "exercise_launch_ratio": 1.0,
          "deployment_within_4_weeks": 0.1}
# No war broke out in 2016-2023: the share of replications that reach war is fitted to 0.
OBSERVED_P_WAR = 0.0


@dataclass
class Moments:
    """Simulated moments of one parameter point."""

    yearly: pd.DataFrame  # index year, columns SIM_COLUMNS keys: means over replications
    lag: float  # median response lag, weeks
    p_war: float  # share of replications that reached war
    timing: dict  # the event study's statistics, pooled over replications (sim.event_study)


def _moments(reps: pd.DataFrame, lag_histogram, detail: dict, calendar: WeeklySeries) -> Moments:
    yearly = reps.groupby("year")[list(SIM_COLUMNS.values())].mean()
    yearly.columns = list(SIM_COLUMNS)
    first = reps.groupby("replication")["war_week"].first()
    return Moments(yearly, median_from_histogram(lag_histogram[:-1]), float(first.notna().mean()),
                   timing_statistics(simulated_on_calendar(detail, calendar)))


def simulated_on_calendar(detail: dict, calendar: WeeklySeries) -> WeeklySeries:
    """A simulation's per replication-week arrays (``Results.detail``, (weeks, R)) on the record's
    calendar of exercises and consultations (the replay's calendar is the record's)."""
    return dataclasses.replace(calendar, launch_days=np.ascontiguousarray(detail["launch_days"].T),
                               arrival=np.ascontiguousarray(detail["arrival"].T),
                               major=np.ascontiguousarray(detail["major"].T))


# ---------------------------------------------------------------------------- settings
def _whole(label: str, value: Any, low: int, high: int | None = None) -> None:
    """A whole number in [low, high] (no bools, no 2.5), else one ConfigError line."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low
    ok = ok and (high is None or value <= high)
    if not ok:
        span = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{label}={value} is out of range: give a whole number {span}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def parameter_range(name: str) -> Range:
    """The valid range of a free parameter: its ModelParams range, or an era's weapons drive."""
    if name in ERA_DRIVE_PARAMS:
        return field_range(Era, "weapons_drive")
    return field_range(ModelParams, name)


@dataclass(frozen=True)
class ParameterSpec:
    """A free parameter: a ModelParams field or an era drive of the historical scenario."""

    name: str = "dprk_cost_srbm"  # a params.* field, or an era drive (era_drive_2016_17, ...)
    lower: float = 0.0  # lower bound of the search, inside the parameter's valid range
    upper: float = 1.0  # upper bound of the search, above lower, inside the valid range

    def __post_init__(self) -> None:
        numeric = set(RANGES["ModelParams"]) | set(ERA_DRIVE_PARAMS)
        if self.name not in numeric:
            raise ConfigError(f"calibration parameter '{self.name}' is not a numeric parameter: use a "
                              f"params.* field such as dprk_cost_srbm, or one of "
                              f"{', '.join(ERA_DRIVE_PARAMS)}")
        valid = parameter_range(self.name)
        for end in ("lower", "upper"):
            value = getattr(self, end)
            if not (_is_real(value) and valid.admits(value)):
                raise ConfigError(f"calibration parameter '{self.name}': {end}={value} is out of "
                                  f"range: give a number in {valid}, the parameter's valid range")
        if not self.lower < self.upper:
            raise ConfigError(f"calibration parameter '{self.name}': lower={self.lower} must be below "
                              f"upper={self.upper}")


def _default_parameters() -> List[ParameterSpec]:
    return [
        ParameterSpec("dprk_cost_srbm", 0.0, 6.0),
        ParameterSpec("dprk_cost_lrbm", 1.0, 14.0),
        ParameterSpec("dprk_cost_nuclear", 1.0, 14.0),
        ParameterSpec("dprk_dev_srbm", 0.0, 5.0),
        ParameterSpec("salvo_extra", 0.1, 4.0),
        ParameterSpec("launch_day_intercept", -8.0, 0.0),
        ParameterSpec("launch_day_tension_gain", 0.0, 3.0),
        ParameterSpec("us_surge_cost", 1.0, 8.0),
        ParameterSpec("spiral_weight", 0.0, 1.0),
        ParameterSpec("spiral_gain", 0.0, 5.0),
        ParameterSpec("clash_intercept", -14.0, -6.0),
        ParameterSpec("era_drive_2016_17", 0.0, 3.0),
        ParameterSpec("era_drive_2019", 0.0, 3.0),
        ParameterSpec("era_drive_2020_21", 0.0, 3.0),
        ParameterSpec("era_drive_2022", 0.0, 3.0),
    ]


def _default_weights() -> Dict[str, float]:
    return {"dprk_launch_days": 1.0, "dprk_launch_weeks": 1.0, "dprk_missiles": 1.0,
            "dprk_nuclear_tests": 0.5, "us_deployments": 0.5, "kinetic_incidents": 0.5,
            "response_lag_weeks": 0.5, "p_war": 1.0, "exercise_launch_ratio": 1.0,
            "deployment_within_4_weeks": 0.5}


@dataclass(frozen=True)
class OptimiserConfig:
    """Differential evolution, then a compass-search polish, then the bootstrap."""

    popsize: int = 5  # scipy's multiplier: population = popsize x number of parameters
    maxiter: int = 40  # generations of differential evolution
    polish_maxiter: int = 12  # compass-search iterations (each one batched run of 2N + 2 points)
    bootstrap: int = 6  # bootstrap replicates, years resampled and a new seed (0: no uncertainty)
    bootstrap_maxiter: int = 10  # compass-search iterations of each bootstrap replicate
    workers: int = 2  # processes for the bootstrap replicates
    seed: int = 1  # the optimiser's own seed (not the model's)
    profile_points: int = 11  # grid points of each profile, evenly over the bounds (0: no profile)
    profile_maxiter: int = 6  # compass-search iterations re-fitting the others at each grid point

    def __post_init__(self) -> None:
        for f in ("popsize", "maxiter", "polish_maxiter", "bootstrap_maxiter", "workers",
                  "profile_maxiter"):
            _whole(f"optimiser.{f}", getattr(self, f), 1)
        _whole("optimiser.bootstrap", self.bootstrap, 0)
        _whole("optimiser.profile_points", self.profile_points, 0, 101)
        if self.profile_points == 1:
            raise ConfigError("optimiser.profile_points=1 is out of range: give 0 (no profile) or at "
                              "least 2 grid points")
        _whole("optimiser.seed", self.seed, 0)


@dataclass(frozen=True)
class PosteriorConfig:
    """Bayesian synthetic likelihood by ensemble MCMC (sim.posterior; method=posterior)."""

    chains: int = 2  # independent ensembles, run in parallel processes (their agreement is checked)
    walkers: int = 32  # walkers per ensemble (at least twice the number of free parameters)
    steps: int = 700  # MCMC steps per ensemble (a resumed run continues to this many)
    burn: int = 300  # steps discarded as burn-in from the start of each ensemble
    replications: int = 50  # simulated histories per proposal for the synthetic likelihood
    pilot: int = 256  # prior draws whose best `walkers` start each ensemble
    predictive: int = 400  # posterior draws simulated once each for the predictive check
    workers: int = 2  # processes (one ensemble each at a time)
    seed: int = 1  # the sampler's own seed (the model's is `seed`)
    exclude: List[str] = field(default_factory=lambda: ["kinetic_incidents"])  # target groups left out
    # where the walkers start: calibrated = a small ball around the installed point estimate
    # (params/calibrated.yaml and the era drives of scenario/historical.yaml); prior = the best
    # `pilot` prior draws
    start: str = "calibrated"
    start_spread: float = 0.1  # the ball's standard deviation, as a share of each prior range
    move: str = "de"  # emcee move: stretch (Goodman & Weare 2010) or de (differential evolution)

    def __post_init__(self) -> None:
        for f in ("chains", "steps", "replications", "workers", "predictive"):
            _whole(f"posterior.{f}", getattr(self, f), 1)
        _whole("posterior.burn", self.burn, 0)
        _whole("posterior.seed", self.seed, 0)
        _whole("posterior.walkers", self.walkers, 4)
        _whole("posterior.pilot", self.pilot, 1)
        if self.replications < 5:
            raise ConfigError(f"posterior.replications={self.replications} is too few to estimate a "
                              "covariance: give at least 5 (50 is the default)")
        if self.burn >= self.steps:
            raise ConfigError(f"posterior.burn={self.burn} must be below posterior.steps={self.steps}: "
                              "some steps must remain after the burn-in")
        if self.pilot < self.walkers:
            raise ConfigError(f"posterior.pilot={self.pilot} must be at least posterior.walkers="
                              f"{self.walkers}: the walkers start at the best pilot draws")
        if self.start not in ("calibrated", "prior"):
            raise ConfigError(f"posterior.start={self.start!r} is unknown: choose calibrated or prior")
        if self.move not in ("stretch", "de"):
            raise ConfigError(f"posterior.move={self.move!r} is unknown: choose stretch or de")
        if not (_is_real(self.start_spread) and 0 < self.start_spread <= 1):
            raise ConfigError(f"posterior.start_spread={self.start_spread} is out of range: give a share "
                              "of each prior range in (0, 1]")
        unknown = set(self.exclude) - set(TARGET_GROUPS)
        if unknown:
            raise ConfigError(f"posterior.exclude: unknown target group(s) {', '.join(sorted(unknown))}: "
                              f"use {', '.join(TARGET_GROUPS)}")


METHODS = ("posterior", "point")

# The fitted configs, at these places inside configs/ (and inside the run's output folder).
FITTED_PARAMS = "params/calibrated.yaml"
FITTED_SCENARIO = "scenario/historical.yaml"
INSTALL_TARGETS = (FITTED_PARAMS, FITTED_SCENARIO)
# ... and those of method=posterior (sim.posterior_report)
POSTERIOR_INSTALL_TARGETS = ("params/posterior.yaml", "params/posterior_draws.parquet")


@dataclass(frozen=True)
class CalibrationConfig:
    """What is fitted to what (configs/calibrate.yaml, where each key has its one-line help, shown
    by ``dsim-calibrate --help``; a test checks that every field is there with its comment)."""

    # The event record the targets come from (relative: from the working folder, then dsim's data/).
    events_file: str = "data/events.csv"
    # Years whose targets are fitted, increasing, within 2016-2023; the replay runs from 2016 to the
    # end of the last one.
    years: List[int] = field(default_factory=lambda: list(YEARS))
    replications: int = 200  # replications per parameter point
    seed: int = 20161220  # the model's seed, the same at every parameter point (common random numbers)
    credibility: float = 0.7  # probability that the US is resolute, in [0, 1]
    # Cadence and costs of the replay's postures, from the `policy` config group (its posture
    # periods set which posture is in force when): `dsim-calibrate policy=permanent` takes
    # configs/policy/permanent.yaml, as `dsim` does.
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(name=Posture.reactive))
    # Free parameters {name, lower, upper}: params.* fields or era drives, bounds inside each one's
    # valid range (sim.params.RANGES; an era drive: Era.weapons_drive).
    parameters: List[ParameterSpec] = field(default_factory=_default_parameters)
    # Weight of each target group in the loss (TARGET_GROUPS): finite, >= 0, not all 0.
    weights: Dict[str, float] = field(default_factory=_default_weights)
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    # posterior: Bayesian synthetic likelihood (sim.posterior), draws and their checks; point: the
    # simulated-method-of-moments fit (differential evolution, polish, profile, bootstrap).
    method: str = "posterior"
    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)
    # Free parameters whose profile loss is computed (each one also in `parameters`), reported in
    # calibration.json and profile.png with the values the fit cannot tell from the best.
    profile: List[str] = field(default_factory=lambda: ["spiral_weight"])
    # Also install the fitted params/calibrated.yaml and scenario/historical.yaml into configs/
    # (atomically). Without it they are written only into the run's output folder.
    install: bool = False
    progress: bool = True  # progress bars on stderr

    def __post_init__(self) -> None:
        if not isinstance(self.events_file, str) or not self.events_file.strip():
            raise ConfigError("events_file is empty: give the path of the event record (data/events.csv)")
        _whole("replications", self.replications, 1, 1_000_000)
        _whole("seed", self.seed, 0)
        if not (_is_real(self.credibility) and 0.0 <= self.credibility <= 1.0):
            raise ConfigError(f"credibility={self.credibility} is out of range: give a number in [0, 1]")
        if isinstance(self.policy, (str, Posture)):  # a posture name, from Python code
            try:
                object.__setattr__(self, "policy", PolicyConfig(name=Posture(self.policy)))
            except ValueError:
                raise ConfigError(f"policy={self.policy!r} is unknown: choose rotational, permanent, "
                                  "reactive or none") from None
        unknown = set(self.weights) - set(TARGET_GROUPS)
        if unknown:
            raise ConfigError(f"weights: unknown target group(s) {', '.join(sorted(unknown))}: use "
                              f"{', '.join(TARGET_GROUPS)}")
        for group, w in self.weights.items():
            if not (_is_real(w) and math.isfinite(w) and w >= 0):
                raise ConfigError(f"weights.{group}={w} is out of range: give a finite weight >= 0")
        if not any(w > 0 for w in self.weights.values()):
            raise ConfigError("weights are all 0: give at least one target group a weight > 0")
        years = list(self.years)
        if not years or not all(isinstance(y, numbers.Integral) and not isinstance(y, bool)
                                for y in years):
            raise ConfigError(f"years={years} must list at least one whole year from {YEARS[0]} to "
                              f"{YEARS[-1]}")
        if any(b <= a for a, b in zip(years, years[1:], strict=False)):
            raise ConfigError(f"years={years} must be increasing, each year once (e.g. "
                              f"[{YEARS[0]}, {YEARS[1]}])")
        if not set(years) <= set(YEARS):
            raise ConfigError(f"years={years} must lie within {YEARS[0]}..{YEARS[-1]}, the years the "
                              "historical replay covers")
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r} is unknown: choose posterior or point")
        if isinstance(self.posterior, dict):
            object.__setattr__(self, "posterior", PosteriorConfig(**self.posterior))
        names = [p.name for p in self.parameters]
        if not names:
            raise ConfigError("parameters is empty: list at least one parameter to fit")
        if self.method == "posterior" and self.posterior.walkers < 2 * len(names):
            raise ConfigError(f"posterior.walkers={self.posterior.walkers} is too few for {len(names)} free "
                              f"parameters: give at least {2 * len(names)} (twice their number)")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"parameters lists {', '.join(twice)} twice: give each parameter once")
        missing = [n for n in self.profile if n not in names]
        if missing:
            raise ConfigError(f"profile names {', '.join(map(str, missing))}, which is not a free parameter: "
                              f"profile only parameters listed in `parameters` ({', '.join(names)}), or "
                              "give profile=[]")


# ---------------------------------------------------------------------------- inputs, before any output
def resolve_events_file(name: str, config_dir: Path) -> Path:
    """A relative events_file is looked up from the working folder, then next to ``configs/`` (the
    repository root, or the installed package, which holds ``data/events.csv``)."""
    path = Path(name).expanduser()
    if path.is_absolute() or path.is_file():
        return path
    candidate = Path(config_dir).parent / name
    if candidate.is_file():
        return candidate
    raise EventDataError(f"{name}: no such file: give events_file as a path to the event record "
                         "(data/events.csv)")


def load_calibration_inputs(cc: CalibrationConfig, config_dir: Path) -> tuple[Path, pd.DataFrame]:
    """The events file of ``cc``, resolved, loaded and checked against the fitted years, and (with
    ``install=true``) the install folders checked writable. Raises ConfigError / EventDataError
    with one line. Nothing is written."""
    path = resolve_events_file(cc.events_file, config_dir)
    events = load_events(path)
    first, last = int(events["date"].dt.year.min()), int(events["date"].dt.year.max())
    if min(cc.years) < first or max(cc.years) > last:
        raise ConfigError(f"years={list(cc.years)} reach outside the event record {path}, which holds "
                          f"events from {first} to {last}: fit years inside it")
    if cc.install:
        for target in INSTALL_TARGETS:
            check_writable(install_path(config_dir, target).parent, "install=true")
    return path, events


def check_calibration_inputs(cc: CalibrationConfig, config_dir: Path) -> None:
    """Every check of a calibration's inputs that needs more than the config itself (the events
    file, its years, the install folders), for the command line's check before Hydra makes the
    output folder. One ConfigError / EventDataError line on the first problem."""
    load_calibration_inputs(cc, config_dir)


def install_path(config_dir: Path, relative: str) -> Path:
    """Where a fitted config is installed: only at the fixed places :data:`INSTALL_TARGETS` inside
    ``config_dir`` (a folder that resolves elsewhere, e.g. by a link, is refused)."""
    if relative not in INSTALL_TARGETS + POSTERIOR_INSTALL_TARGETS:
        raise ConfigError(f"cannot install {relative!r}: fitted configs go only to "
                          f"{', '.join(INSTALL_TARGETS + POSTERIOR_INSTALL_TARGETS)} inside configs/")
    root = Path(config_dir).resolve()
    target = root / relative
    if target.parent.resolve() != root / Path(relative).parent:
        raise ConfigError(f"cannot install {relative}: {target.parent} leads outside {root}")
    return target


def check_writable(folder: Path, why: str) -> None:
    """Create and remove a file in ``folder`` (the only test that also holds for root, read-only
    mounts and full disks); one ConfigError line if that fails."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dsim-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{why}: cannot write into {folder} ({exc.strerror or exc}): make it "
                          "writable or leave the option out") from None


# ---------------------------------------------------------------------------- targets
def observed_targets(events: pd.DataFrame, years: list[int] = YEARS) -> dict:
    """The observed moments, computed from the event record."""
    counts = yearly_counts(events, sorted(years), week_start=START)
    return {
        "yearly": counts,
        "response_lag_weeks": median_response_lag_weeks(events, f"{min(years)}-01-01",
                                                        f"{max(years)}-12-31"),
    }


# ---------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class Problem:
    """Everything one loss evaluation needs (picklable for worker processes)."""

    base: RunConfig
    names: tuple[str, ...]
    observed: pd.DataFrame  # index year, columns TARGET_GROUPS[:-1]
    observed_lag: float
    weights: tuple[tuple[str, float], ...]
    events: pd.DataFrame
    calendar: WeeklySeries  # the record on the replay's weekly calendar (sim.event_study)
    observed_timing: dict  # the record's event-study statistics
    year_weights: tuple[float, ...] | None = None  # bootstrap multiplicities (timing targets: not resampled)

    def batch(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter points (S, N) as a model batch: ModelParams names and ``era:<name>`` keys."""
        points = np.atleast_2d(points)
        return {(f"era:{ERA_OF_PARAM[n]}" if n in ERA_OF_PARAM else n): points[:, i]
                for i, n in enumerate(self.names)}

    def config(self, theta: np.ndarray) -> RunConfig:
        values = dict(zip(self.names, (float(v) for v in theta), strict=True))
        drives = {k: v for k, v in values.items() if k in ERA_DRIVE_PARAMS}
        params = {k: v for k, v in values.items() if k not in ERA_DRIVE_PARAMS}
        cfg = self.base.replace(params=params)
        if drives:
            eras = [dataclasses.replace(e, weapons_drive=drives.get(PARAM_OF_ERA.get(e.name),
                                                                    e.weapons_drive))
                    for e in cfg.scenario.eras]
            cfg = cfg.replace(scenario={"eras": eras, "weapons_drive": eras[0].weapons_drive})
        return cfg


def simulate_moments(cfg: RunConfig, calendar: WeeklySeries
                     ) -> tuple[Moments, pd.DataFrame, WeeklySeries]:
    """Simulated moments, the weekly series and the event study's series of one configuration."""
    results = DeterrenceModel(cfg, detail=True).run()
    moments = _moments(results.replications, results.meta["response_lag_histogram"], results.detail,
                       calendar)
    return moments, results.timeseries, simulated_on_calendar(results.detail, calendar)


def simulate_batch(problem: Problem, points: np.ndarray) -> list[Moments]:
    """Moments at each of S parameter points (rows of ``points``), simulated side by side in one
    model with common random numbers (:class:`sim.model.DeterrenceModel`, ``batch``)."""
    points = np.atleast_2d(points)
    model = DeterrenceModel(problem.base, batch=problem.batch(points), weekly=False, detail=True)
    model.simulate()  # the replications table, the lags and the per-week detail are all it reads
    reps = model.recorder.replications_table()
    if model.blocks == 1:
        reps = reps.assign(block=0)
    hists = model.recorder.lag_histogram.tolist()
    r = problem.base.replications
    return [_moments(block, hists[j], {k: v[:, j * r:(j + 1) * r] for k, v in model.recorder.detail.items()},
                     problem.calendar)
            for j, block in reps.groupby("block", sort=True)]


def count_residuals(simulated: np.ndarray, observed: np.ndarray, floor: float) -> np.ndarray:
    """Scaled residuals of yearly counts: ``(s - o) / sqrt(max(o, floor) * mean_y max(o, floor))``.

    A Pearson residual ``(s - o) / sqrt(o)`` (a count's variance grows with its mean, as for Poisson
    and negative-binomial counts; the diagonal weighting of simulated method of moments, McFadden
    1989) divided by ``sqrt`` of the group's mean count, so that every group's squared residuals are
    dimensionless and a year at the group's mean weighs as a relative error would. Relative errors
    ``(s - o) / o`` weighed a miss of 16 of 2022's 34 launch days like a miss of 2 of 2020's 4; here
    it weighs 8 times more, as its sampling variance says it should.
    """
    scale = np.maximum(observed, floor)
    return (simulated - observed) / np.sqrt(scale * scale.mean())


def loss_terms(problem: Problem, m: Moments) -> dict[str, float]:
    obs = problem.observed
    yw = np.ones(len(obs)) if problem.year_weights is None else np.asarray(problem.year_weights)
    terms = {}
    for group, w in problem.weights:
        if group == "response_lag_weeks":
            o = problem.observed_lag
            if np.isnan(o):
                continue
            s = m.lag if not np.isnan(m.lag) else 3 * max(o, FLOORS[group])  # no responses: far off
            terms[group] = w * ((s - o) / max(o, FLOORS[group])) ** 2
        elif group == "p_war":
            terms[group] = w * ((m.p_war - OBSERVED_P_WAR) / FLOORS[group]) ** 2
        elif group in TIMING_TARGETS:
            o, s = problem.observed_timing[group], m.timing[group]
            if np.isnan(o):
                continue
            rel = (s - o) / max(o, FLOORS[group]) if np.isfinite(s) else 3.0  # undefined: far off
            terms[group] = w * rel**2
        else:
            o = obs[group].to_numpy()
            s = m.yearly.reindex(obs.index)[group].to_numpy()
            terms[group] = w * float(np.sum(yw * count_residuals(s, o, FLOORS[group])**2) / yw.sum())
    return terms


def loss_batch(problem: Problem, points: np.ndarray) -> np.ndarray:
    """The SMM loss at each row of ``points`` (same seed at every point: common random numbers)."""
    return np.array([sum(loss_terms(problem, m).values()) for m in simulate_batch(problem, points)])


def loss(theta: np.ndarray, problem: Problem) -> float:
    """The SMM loss at one point ``theta``."""
    return float(loss_batch(problem, np.asarray(theta, dtype=float)[None, :])[0])


def build_problem(cc: CalibrationConfig, events: pd.DataFrame | None = None,
                  params: ModelParams | None = None) -> Problem:
    events = load_events(cc.events_file) if events is None else events
    scenario = historical_scenario(events)
    last_day = dt.date(max(cc.years), 12, 31)
    weeks = (last_day - scenario.start).days // 7 + 1
    scenario = dataclasses.replace(scenario, weeks=weeks)
    base = RunConfig(credibility=cc.credibility, replications=cc.replications, seed=cc.seed,
                     progress=False, policy=cc.policy,
                     scenario=scenario, params=params or ModelParams())
    targets = observed_targets(events, cc.years)
    calendar = record_series(events, scenario.start, weeks)
    return Problem(base=base, names=tuple(p.name for p in cc.parameters), observed=targets["yearly"],
                   observed_lag=targets["response_lag_weeks"],
                   weights=tuple((g, float(w)) for g, w in cc.weights.items()), events=events,
                   calendar=calendar, observed_timing=timing_statistics(calendar))


# ---------------------------------------------------------------------------- optimisation
def compass_search(problem: Problem, x0: np.ndarray, bounds: list[tuple[float, float]],
                   maxiter: int, step: float = 0.1, min_step: float = 0.005) -> tuple[np.ndarray, float]:
    """Local polish by compass (pattern) search (Kolda, Lewis & Torczon 2003, SIAM Review 45:385).

    Each iteration evaluates the centre, its 2N neighbours ``x +/- s_i e_i`` and one pattern move
    (the sum of last iteration's improving coordinate steps, as in Hooke & Jeeves 1961) in one
    batched run, moves to the best if it improves, otherwise halves the steps; it stops when every
    step is below ``min_step`` of its range. Derivative-free and convergent on the smooth losses that common
    random numbers give; chosen over scipy's Nelder-Mead because all 2N + 1 points of an iteration
    run together in one model, which a sequential simplex cannot do.
    """
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    steps = step * (hi - lo)
    n = len(x)
    pattern = np.zeros(n)
    best = None
    for _ in range(maxiter):
        cand = np.repeat(x[None, :], 2 * n + 2, axis=0)
        cand[1 : n + 1][np.arange(n), np.arange(n)] += steps
        cand[n + 1 : 2 * n + 1][np.arange(n), np.arange(n)] -= steps
        cand[-1] += pattern
        cand = np.clip(cand, lo, hi)
        losses = loss_batch(problem, cand)
        centre = losses[0] if best is None else min(best, losses[0])
        up, down = losses[1 : n + 1], losses[n + 1 : 2 * n + 1]
        pattern = np.where((up < centre) & (up <= down), steps, np.where(down < centre, -steps, 0.0))
        j = int(np.argmin(losses))
        if losses[j] < centre - 1e-12:
            x, best = cand[j], float(losses[j])
        else:
            best = centre
            steps = steps / 2
        if np.all(steps <= min_step * (hi - lo)):  # a fixed coordinate (lo = hi) has no step
            break
    return x, float(best)


def profile_loss(problem: Problem, x_hat: np.ndarray, bounds: list[tuple[float, float]], name: str,
                 grid: list[float], maxiter: int) -> list[dict]:
    """The profile loss of parameter ``name``: at each value of ``grid`` it is held fixed and the others
    are re-fitted by compass search from the fitted point (Venzon & Moolgavkar 1988, Applied
    Statistics 37(1), for the profile; Kolda et al. 2003 for the search). Each row holds the value,
    the profile loss and its terms, so the curve shows which targets pin the parameter down."""
    i = problem.names.index(name)
    rows = []
    for value in grid:
        b = list(bounds)
        b[i] = (float(value), float(value))
        x0 = np.array(x_hat, dtype=float)
        x0[i] = value
        x, best = compass_search(problem, x0, b, maxiter, step=0.05)
        moments = simulate_batch(problem, x)[0]
        rows.append({"value": float(value), "loss": float(best), "terms": loss_terms(problem, moments),
                     "timing": {k: float(v) for k, v in moments.timing.items()},
                     "point": dict(zip(problem.names, map(float, x), strict=True))})
    return rows


def profile_noise(problem: Problem, rows: list[dict], seeds: int = 6) -> list[float]:
    """Monte Carlo noise of each profile point's loss difference from the profile's best point.

    The profile's points are all simulated with the calibration's seed (common random numbers), so
    what matters is the noise of a *difference* in loss, not of the loss itself: for each of
    ``seeds`` other model seeds all the points run side by side in one batch, and the standard
    deviation over seeds of ``loss(point) - loss(best point)`` is returned per point (0 for the
    best point itself)."""
    points = np.array([[r["point"][n] for n in problem.names] for r in rows])
    best = int(np.argmin([r["loss"] for r in rows]))
    diffs = []
    for k in range(seeds):
        pk = dataclasses.replace(problem, base=problem.base.replace(seed=problem.base.seed + 7919 * (k + 1)))
        losses = loss_batch(pk, points)
        diffs.append(losses - losses[best])
    return [float(v) for v in np.std(np.array(diffs), axis=0, ddof=1)]


def profile_interval(rows: list[dict], noise: list[float]) -> list[float]:
    """The grid values whose profile loss lies within twice its difference's Monte Carlo noise
    (:func:`profile_noise`) of the profile's minimum: the values the fit cannot tell from the best
    at its number of replications ([lowest, highest])."""
    losses = np.array([r["loss"] for r in rows])
    ok = losses - losses.min() <= 2.0 * np.asarray(noise)
    values = np.array([r["value"] for r in rows])[ok]
    return [float(values.min()), float(values.max())]


def timing_interval(rows: list[dict], intervals: dict[str, tuple[float, float]]) -> list[float] | None:
    """The grid values at which every fitted timing statistic of the re-fitted model lies inside
    the record's 90 % bootstrap interval (``intervals``: statistic -> (low, high)): the values the
    record's timing admits, by inverting its interval (the confidence set of a test that rejects a
    value whose simulated statistic falls outside). ``None`` if no value is admitted."""
    ok = [all(lo <= r["timing"][k] <= hi for k, (lo, hi) in intervals.items()) for r in rows]
    values = [r["value"] for r, good in zip(rows, ok, strict=True) if good]
    return [float(min(values)), float(max(values))] if values else None


def _bootstrap_replicate(args) -> np.ndarray:
    problem, x0, bounds, maxiter = args
    return compass_search(problem, x0, bounds, maxiter, step=0.05)[0]


def calibrate(cc: CalibrationConfig, events: pd.DataFrame | None = None,
              observed: pd.DataFrame | None = None, observed_lag: float | None = None) -> dict:
    """Fit the parameters; return a JSON-able result (see ``calibration.json``)."""
    t0 = time.perf_counter()
    problem = build_problem(cc, events)
    if observed is not None:
        problem = dataclasses.replace(problem, observed=observed,
                                      observed_lag=problem.observed_lag if observed_lag is None
                                      else observed_lag)
    bounds = [(p.lower, p.upper) for p in cc.parameters]
    opt = cc.optimiser
    bar = _progress(cc.progress, opt.maxiter, "differential evolution (generations)")

    def on_generation(intermediate_result):
        bar.update(1)
        bar.set_postfix(loss=f"{intermediate_result.fun:.4f}")

    # The whole population of a generation runs as one batched model (vectorized=True).
    de = optimize.differential_evolution(
        lambda x: loss_batch(problem, np.asarray(x).T), bounds, popsize=opt.popsize,
        maxiter=opt.maxiter, seed=opt.seed, polish=False, init="sobol", updating="deferred",
        vectorized=True, tol=1e-3, callback=on_generation,
    )
    bar.close()
    if cc.progress:
        print(f"  polishing from loss {de.fun:.4f} (compass search, up to {opt.polish_maxiter} "
              "iterations)", flush=True)
    x_hat, loss_hat = compass_search(problem, de.x, bounds, opt.polish_maxiter)
    profiles, improved = {}, None
    if cc.profile and opt.profile_points:
        record = event_study_table(problem.calendar).set_index("statistic")
        fitted_timing = {g: (float(record.loc[g, "observed_low"]), float(record.loc[g, "observed_high"]))
                         for g, w in problem.weights if w > 0 and g in TIMING_TARGETS}
        bar = _progress(cc.progress, len(cc.profile) * opt.profile_points, "profile loss (grid points)")
        for name in cc.profile:
            lo, hi = bounds[problem.names.index(name)]
            rows = []
            for value in np.linspace(lo, hi, opt.profile_points):
                rows += profile_loss(problem, x_hat, bounds, name, [float(value)], opt.profile_maxiter)
                bar.update(1)
            noise = profile_noise(problem, rows)
            for row, sd in zip(rows, noise, strict=True):
                row["loss_difference_noise_sd"] = sd
            profiles[name] = {"estimate_before_profile": float(x_hat[problem.names.index(name)]),
                              "rows": rows, "indistinguishable_range": profile_interval(rows, noise),
                              "timing_intervals": {k: list(v) for k, v in fitted_timing.items()},
                              "admitted_by_timing": timing_interval(rows, fitted_timing)}
            best = min(rows, key=lambda r: r["loss"])
            if best["loss"] < loss_hat - 1e-12 and (improved is None or best["loss"] < improved[1]):
                improved = (np.array([best["point"][n] for n in problem.names]), best["loss"])
        bar.close()
    if improved is not None:  # the profile found a better point: polish from there
        if cc.progress:
            print(f"  the profile found loss {improved[1]:.4f} < {loss_hat:.4f}: polishing from it",
                  flush=True)
        x_hat, loss_hat = compass_search(problem, improved[0], bounds, opt.polish_maxiter)
    for name, prof in profiles.items():
        prof["estimate"] = float(x_hat[problem.names.index(name)])
    replicates = []
    if opt.bootstrap > 0:
        rng = np.random.default_rng(opt.seed + 7)
        jobs = []
        for b in range(opt.bootstrap):
            draw = rng.integers(0, len(problem.observed), len(problem.observed))
            yw = tuple(np.bincount(draw, minlength=len(problem.observed)).astype(float))
            pb = dataclasses.replace(problem, year_weights=yw,
                                     base=problem.base.replace(seed=cc.seed + 1000 * (b + 1)))
            jobs.append((pb, x_hat, bounds, opt.bootstrap_maxiter))
        bar = _progress(cc.progress, len(jobs), "bootstrap replicates")
        with _pool(min(opt.workers, len(jobs))) as pool:
            mapper = pool.imap if hasattr(pool, "imap") else map
            for x in mapper(_bootstrap_replicate, jobs):
                replicates.append(np.asarray(x))
                bar.update(1)
        bar.close()
    fitted_moments, timeseries, fitted_series = simulate_moments(problem.config(x_hat), problem.calendar)
    default_moments, _, _ = simulate_moments(problem.base, problem.calendar)
    study = event_study_table(problem.calendar, fitted_series)
    fitted_groups = {g for g, w in problem.weights if w > 0}
    study["in_fit"] = study["statistic"].isin(fitted_groups & set(TIMING_TARGETS))
    reps = np.array(replicates) if replicates else np.empty((0, len(x_hat)))
    fitted = dict(zip(problem.names, map(float, x_hat), strict=True))
    return {
        "parameters": {
            name: {
                "estimate": fitted[name],
                "bounds": list(bounds[i]),
                "bootstrap_se": float(reps[:, i].std(ddof=1)) if len(reps) > 1 else None,
                "bootstrap_range90": ([float(np.quantile(reps[:, i], 0.05)),
                                       float(np.quantile(reps[:, i], 0.95))] if len(reps) > 1 else None),
            }
            for i, name in enumerate(problem.names)
        },
        "loss": loss_hat,
        "loss_terms": loss_terms(problem, fitted_moments),
        "loss_at_defaults": float(sum(loss_terms(problem, default_moments).values())),
        "differential_evolution": {"loss": float(de.fun), "evaluations": int(de.nfev),
                                   "generations": int(de.nit)},
        "targets": _target_table(problem, problem.config(x_hat)),
        "event_study": study.to_dict(orient="records"),
        "bootstrap_replicates": reps.tolist(),
        "profiles": profiles,
        "run_time_seconds": time.perf_counter() - t0,
        "_timeseries": timeseries,
        "_fitted": fitted,
        "_problem": problem,
    }


def _target_table(problem: Problem, cfg: RunConfig) -> list[dict]:
    """Each target observed vs simulated, with the simulated 90 % interval across replications."""
    results = DeterrenceModel(cfg).run()
    reps = results.replications
    rows = []
    for group, col in SIM_COLUMNS.items():
        for year in problem.observed.index:
            values = reps.loc[reps["year"] == year, col].to_numpy()
            rows.append({"target": group, "year": int(year),
                         "observed": float(problem.observed.loc[year, group]),
                         "simulated": float(values.mean()),
                         "simulated_90": [float(np.quantile(values, 0.05)),
                                          float(np.quantile(values, 0.95))]})
    # Missiles per launch day (a check, not a target): "simulated" pools all replications' missiles
    # over all their launch days (the model's expected ratio); the band is the 5-95 % of single
    # replications' ratios (what one simulated history shows, as the record is one history).
    for year in problem.observed.index:
        sel = reps["year"] == year
        days = reps.loc[sel, "dprk_launch_days"].to_numpy()
        missiles = reps.loc[sel, "dprk_missiles"].to_numpy()
        o_days, o_missiles = (problem.observed.loc[year, g] for g in ("dprk_launch_days", "dprk_missiles"))
        per_day = missiles[days > 0] / days[days > 0]
        rows.append({"target": "missiles_per_launch_day", "year": int(year),
                     "observed": float(o_missiles / o_days) if o_days else None,
                     "simulated": float(missiles.sum() / days.sum()) if days.sum() else None,
                     "simulated_90": ([float(np.quantile(per_day, 0.05)), float(np.quantile(per_day, 0.95))]
                                      if len(per_day) else None)})
    rows.append({"target": "response_lag_weeks", "year": None, "observed": problem.observed_lag,
                 "simulated": results.median_response_lag(), "simulated_90": None})
    war = reps.groupby("replication")["war_week"].first().notna()
    rows.append({"target": "p_war", "year": None, "observed": OBSERVED_P_WAR,
                 "simulated": float(war.mean()), "simulated_90": None})
    return rows


class _Serial:
    def __enter__(self):
        return map

    def __exit__(self, *exc):
        return False


def _pool(workers: int):
    if workers <= 1:
        return _Serial()
    import multiprocessing as mp

    # forkserver, not fork: the parent holds threads (pyarrow, BLAS) that fork would copy mid-state.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["sim.calibrate"])
    return ctx.Pool(workers)


class _NoBar:
    def update(self, *_):
        pass

    def set_postfix(self, **_):
        pass

    def close(self):
        pass


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)
