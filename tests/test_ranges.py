"""Value ranges a user could mean: every numeric config field has a stated range (sim.params.RANGES),
anything outside it is one ConfigError line naming the field, the value and the range, and runs at
the ends of every range give finite outputs (no Inf or NaN in summary.json or the weekly series)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest

from sim import DeterrenceModel
from sim.outputs import summary_dict
from sim.params import (
    DATE_MAX,
    DATE_MIN,
    MAX_WEEKS,
    RANGES,
    CalendarEvent,
    ConfigError,
    CredibilityRule,
    DatedEvent,
    Era,
    ModelParams,
    Perception,
    PolicyConfig,
    Posture,
    PosturePeriod,
    RunConfig,
    ScenarioConfig,
)

CLASSES = (ModelParams, ScenarioConfig, PolicyConfig, CalendarEvent, DatedEvent, Era)
NUMERIC_TYPES = {"int", "float", "Optional[float]"}
FIELDS = [(cls, name) for cls in CLASSES for name in RANGES[cls.__name__]]
IDS = [f"{cls.__name__}.{name}" for cls, name in FIELDS]


def _is_int(cls, name: str) -> bool:
    return {f.name: f.type for f in dataclasses.fields(cls)}[name] == "int"


def test_every_numeric_field_has_a_range_and_no_range_is_stale():
    for cls in CLASSES:
        numeric = {f.name for f in dataclasses.fields(cls) if f.type in NUMERIC_TYPES}
        assert numeric == set(RANGES[cls.__name__]), cls.__name__


def _bad_values(cls, name: str) -> list:
    rng = RANGES[cls.__name__][name]
    values = [math.inf, -math.inf, math.nan, 1e308, -1e308,
              # just past each end: the bound itself where the end is open
              rng.high if rng.open_high else float(np.nextafter(rng.high, math.inf)),
              rng.low if rng.open_low else float(np.nextafter(rng.low, -math.inf)),
              True, "3"]
    if _is_int(cls, name):
        values += [int(rng.high) + 1, int(rng.low) - 1, (rng.low + rng.high) / 2 + 0.5, 10**400]
    return values


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=IDS)
def test_a_value_out_of_range_is_one_line_naming_field_value_and_range(cls, name):
    rng = RANGES[cls.__name__][name]
    for value in _bad_values(cls, name):
        with pytest.raises(ConfigError) as err:
            cls(**{name: value})
        msg = str(err.value)
        shown = repr(value) if isinstance(value, str) else str(value)
        assert f"{name}={shown} " in msg, msg
        assert str(rng) in msg and "\n" not in msg, msg


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=IDS)
def test_the_closed_ends_of_a_range_are_accepted(cls, name):
    rng = RANGES[cls.__name__][name]
    context = {"rotation_interval_weeks": MAX_WEEKS} if name.startswith("rotation_") else {}
    if name == "rotation_interval_weeks":
        context = {"rotation_duration_weeks": 1}
    for end, is_open in ((rng.low, rng.open_low), (rng.high, rng.open_high)):
        if is_open or (name == "day" and end == 31):  # day 31 is tested with a month that has it
            continue
        value = int(end) if _is_int(cls, name) else float(end)
        if name == "weeks" and cls is ScenarioConfig:
            context = {"start_date": "2026-01-05"}
        assert getattr(cls(**context, **{name: value}), name) == value
    assert CalendarEvent(month=12, day=31).day == 31


def test_dates_must_lie_in_the_window_where_calendar_and_figures_work():
    for bad in ("1949-12-31", "0001-01-01", "2201-01-01", "9999-06-01"):
        with pytest.raises(ConfigError, match=f"start_date={bad} is out of range: give a date from "
                                              f"{DATE_MIN} to {DATE_MAX}"):
            ScenarioConfig(start_date=bad)
        for make in (lambda d: DatedEvent(name="e", date=d), lambda d: Era(name="e", start_date=d),
                     lambda d: PosturePeriod(name="e", start_date=d)):
            with pytest.raises(ConfigError, match=f"'e': .*{bad} is out of range"):
                make(bad)
    # The horizon's last day may be the window's last day, not one day later.
    weeks = 100
    last_start = DATE_MAX - dt.timedelta(weeks=weeks) + dt.timedelta(days=1)
    assert ScenarioConfig(start_date=last_start.isoformat(), weeks=weeks).weeks == weeks
    late = (last_start + dt.timedelta(days=1)).isoformat()
    with pytest.raises(ConfigError, match=f"scenario.weeks={weeks} from {late} ends on "
                                          f"{DATE_MAX + dt.timedelta(days=1)}, after {DATE_MAX}"):
        ScenarioConfig(start_date=late, weeks=weeks)
    assert ScenarioConfig(start_date=DATE_MIN.isoformat()).start == DATE_MIN


# ------------------------------------------------------------------ runs at the ends of the ranges
def _at(cls, end: str, **fixed):
    """An instance of ``cls`` with every ranged field at its ``end`` ('high' or 'low'; the nearest
    float inside an open end), except ``fixed``."""
    values = {}
    for name, rng in RANGES[cls.__name__].items():
        bound, is_open, inward = ((rng.high, rng.open_high, rng.low) if end == "high"
                                  else (rng.low, rng.open_low, rng.high))
        value = float(np.nextafter(bound, inward)) if is_open else bound
        values[name] = int(value) if _is_int(cls, name) else float(value)
    return cls(**{**values, **fixed})


def _config(end: str, posture: Posture, rule: CredibilityRule, weeks: int = 30, **params) -> RunConfig:
    if end == "high":  # the horizon ends on the window's last day
        start = DATE_MAX - dt.timedelta(weeks=weeks) + dt.timedelta(days=1)
    else:
        start = DATE_MIN
    event = _at(CalendarEvent, end, name="e", day=28)
    dated = _at(DatedEvent, end, name="d", date=(start + dt.timedelta(weeks=2)).isoformat())
    era = _at(Era, end, name="era", start_date=(start + dt.timedelta(weeks=3)).isoformat())
    scenario = _at(ScenarioConfig, end, weeks=weeks, start_date=start.isoformat(), exercises=[event],
                   consultations=[event], dated_events=[dated], eras=[era])
    return RunConfig(replications=40, seed=3, progress=False,
                     policy=_at(PolicyConfig, end, name=posture),
                     scenario=scenario,
                     params=_at(ModelParams, end, credibility_rule=rule, **params))


def _nonfinite(obj, path: str = "") -> list[str]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _nonfinite(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in _nonfinite(v, f"{path}[{i}]")]
    if isinstance(obj, float) and not math.isfinite(obj):
        return [path]
    return []


# Every likelihood at its end gives no evidence (L_res = L_irr); the mixed cases give the strongest a
# misperceiving DPRK can read, and type-dependent deferral the strongest schedule evidence (a deferral
# only the irresolute makes: the bound).
NEAR_1, NEAR_0 = float(np.nextafter(1.0, 0.0)), float(np.nextafter(0.0, 1.0))
STRONG = {"perception": Perception.costly_signals,
          "lik_deploy_res": NEAR_1, "lik_deploy_irr": NEAR_0,
          "lik_presence_res": NEAR_0, "lik_presence_irr": NEAR_1,
          "us_skip_resolute": 0.0, "us_skip_irresolute": 1.0}
COSTLY = {"perception": Perception.costly_signals}
CASES = {
    "high-bayes-permanent": ("high", Posture.permanent, CredibilityRule.bayes, {}),
    "high-bayes-permanent-costly": ("high", Posture.permanent, CredibilityRule.bayes, COSTLY),
    "high-cc-rotational": ("high", Posture.rotational, CredibilityRule.current_calculus, {}),
    "high-strong-signals-reactive": ("high", Posture.reactive, CredibilityRule.bayes, STRONG),
    "low-bayes-rotational": ("low", Posture.rotational, CredibilityRule.bayes, STRONG),
    "low-bayes-rotational-consistent": ("low", Posture.rotational, CredibilityRule.bayes, {}),
    # every likelihood at its low end (equal, no evidence) and no clash ever: the misperceiving DPRK
    # reads all 30 weeks (at the high end every replication ends in war in week 0)
    "low-bayes-rotational-costly": ("low", Posture.rotational, CredibilityRule.bayes, COSTLY),
    "low-cc-permanent": ("low", Posture.permanent, CredibilityRule.current_calculus, {}),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_run_at_the_ends_of_every_range_has_finite_outputs(case):
    """R = 40, 30 weeks ending on the last day of the date window (or starting on its first), every
    parameter, scenario, policy and calendar value at the same end of its range, under each
    perception."""
    end, posture, rule, params = CASES[case]
    results = DeterrenceModel(_config(end, posture, rule, **params)).run()
    summary = summary_dict(results)
    assert summary["metrics"] and not _nonfinite(summary["metrics"]), _nonfinite(summary["metrics"])
    numeric = results.timeseries.select_dtypes(include="number")
    assert np.isfinite(numeric.to_numpy()).all(), numeric.columns[~np.isfinite(numeric).all()].tolist()
    per = results.per_replication()
    for col in ("us_cost", "final_dprk_belief", "dprk_missiles"):
        assert np.isfinite(per[col].to_numpy(dtype=float)).all(), col
