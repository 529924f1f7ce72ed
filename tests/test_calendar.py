"""Calendar arithmetic and posture schedules (``sim.calendar``), and the model's agreement with them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from conftest import small_config
from hypothesis import given
from hypothesis import strategies as st

from sim import CalendarEvent, DeterrenceModel, PolicyConfig, Posture, run
from sim.calendar import (
    event_start_weeks,
    inauguration_weeks,
    posture_schedule,
    week_dates,
    week_of,
    week_years,
)


# ------------------------------------------------------------------------- posture schedules
@st.composite
def rotations(draw):
    interval = draw(st.integers(1, 20))
    duration = draw(st.integers(1, interval))
    offset = draw(st.integers(0, interval - 1))
    return PolicyConfig(name=Posture.rotational, rotation_interval_weeks=interval,
                        rotation_duration_weeks=duration, rotation_offset_weeks=offset)


@given(policy=rotations(), n_weeks=st.integers(1, 200))
def test_rotational_arrivals_at_offset_plus_multiples_of_interval(policy, n_weeks):
    arrival, _ = posture_schedule(policy, n_weeks)
    expected = list(range(policy.rotation_offset_weeks, n_weeks, policy.rotation_interval_weeks))
    assert np.flatnonzero(arrival).tolist() == expected


@given(policy=rotations(), n_weeks=st.integers(1, 200))
def test_rotational_on_station_for_exactly_duration_weeks_after_each_arrival(policy, n_weeks):
    arrival, on_station = posture_schedule(policy, n_weeks)
    assert arrival.dtype == bool and on_station.dtype == bool
    assert arrival.shape == on_station.shape == (n_weeks,)
    d = policy.rotation_duration_weeks
    arrivals = np.flatnonzero(arrival)
    expected = np.zeros(n_weeks, dtype=bool)
    for a in arrivals:
        # on station in weeks a .. a + d - 1 ...
        assert on_station[a : a + d].all()
        # ... and gone in week a + d unless the next asset arrives that very week (d == interval)
        if a + d < n_weeks:
            assert on_station[a + d] == arrival[a + d]
        expected[a : a + d] = True
    np.testing.assert_array_equal(on_station, expected)
    assert not on_station[: policy.rotation_offset_weeks].any()


@given(n_weeks=st.integers(1, 300))
def test_permanent_one_arrival_in_week_zero_then_always_on_station(n_weeks):
    arrival, on_station = posture_schedule(PolicyConfig(name=Posture.permanent), n_weeks)
    assert np.flatnonzero(arrival).tolist() == [0]
    assert on_station.all()


@pytest.mark.parametrize("posture", [Posture.reactive, Posture.none])
def test_reactive_and_none_schedule_nothing(posture):
    arrival, on_station = posture_schedule(PolicyConfig(name=posture), 120)
    assert arrival.shape == on_station.shape == (120,)
    assert not arrival.any()
    assert not on_station.any()


# ------------------------------------------------------------------------------ calendar dates
def test_week_dates_are_seven_days_apart():
    start = dt.date(2026, 1, 5)
    d = week_dates(start, 60)
    assert d[0] == np.datetime64("2026-01-05")
    assert np.all(np.diff(d) == np.timedelta64(7, "D"))
    years = week_years(start, 60)
    assert [int(y) for y in years] == [(start + dt.timedelta(weeks=k)).year for k in range(60)]


@st.composite
def calendar_events(draw):
    month = draw(st.integers(1, 12))
    days_in_month = (dt.date(2001 + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    day = draw(st.integers(1, days_in_month))
    return CalendarEvent(name="e", month=month, day=day, weeks=draw(st.integers(1, 4)))


@given(
    start=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31)),
    n_weeks=st.integers(1, 800),
    event=calendar_events(),
)
def test_event_start_weeks_fall_in_the_week_containing_the_date(start, n_weeks, event):
    weeks = event_start_weeks(start, n_weeks, event)
    end = start + dt.timedelta(days=7 * n_weeks)  # first day after the horizon
    expected_dates = [
        dt.date(y, event.month, event.day)
        for y in range(start.year, end.year + 1)
        if start <= dt.date(y, event.month, event.day) < end
    ]
    # one start week per simulated year that holds the date, in order
    assert len(weeks) == len(expected_dates)
    assert weeks == sorted(weeks)
    for k, day in zip(weeks, expected_dates, strict=True):
        assert 0 <= k < n_weeks
        first = start + dt.timedelta(days=7 * k)
        assert first <= day < first + dt.timedelta(days=7), (start, k, day)
        assert week_of(start, day) == k


def test_event_start_weeks_on_the_baseline_calendar_by_hand():
    start = dt.date(2026, 1, 5)  # a Monday
    spring = CalendarEvent(name="spring", month=3, day=10, weeks=2)
    # 10 Mar 2026 is 64 days after 5 Jan 2026 -> week 9; 10 Mar 2027 is 429 days after -> week 61
    assert (dt.date(2026, 3, 10) - start).days // 7 == 9
    assert event_start_weeks(start, 61, spring) == [9]
    assert event_start_weeks(start, 62, spring) == [9, 61]
    # an event whose date precedes the start in the first year happens first in the next year
    assert event_start_weeks(dt.date(2026, 3, 11), 60, spring) == [52]


# ------------------------------------------------------- the model agrees with the pure functions
def _timeseries(policy: dict | None = None, scenario: dict | None = None, weeks: int = 60):
    cfg = small_config(replications=5, weeks=weeks, policy=policy or {}, scenario=scenario or {})
    return cfg, run(cfg).timeseries


POSTURE_CASES = [
    {"name": Posture.rotational},
    {"name": Posture.rotational, "rotation_interval_weeks": 4, "rotation_duration_weeks": 4},
    {"name": Posture.rotational, "rotation_interval_weeks": 7, "rotation_duration_weeks": 3,
     "rotation_offset_weeks": 5},
    {"name": Posture.rotational, "rotation_interval_weeks": 1, "rotation_duration_weeks": 1},
    {"name": Posture.rotational, "rotation_interval_weeks": 13, "rotation_duration_weeks": 1,
     "rotation_offset_weeks": 12},
    {"name": Posture.permanent},
    {"name": Posture.reactive},
    {"name": Posture.none},
]


@pytest.mark.parametrize("policy", POSTURE_CASES,
                         ids=lambda p: "-".join(str(v.value if isinstance(v, Posture) else v)
                                                for v in p.values()))
def test_model_schedule_matches_posture_schedule(policy):
    cfg, ts = _timeseries(policy=policy)
    arrival, on_station = posture_schedule(cfg.policy, cfg.scenario.weeks)
    np.testing.assert_array_equal(ts["scheduled_arrival"].to_numpy(), arrival.astype(float))
    np.testing.assert_array_equal(ts["scheduled_on_station"].to_numpy(), on_station.astype(float))
    # scheduled presence is a floor on the share of replications with an asset on station
    assert np.all(ts["asset_on_station"].to_numpy()[on_station] == 1.0)


def test_model_rotation_whose_offset_lies_beyond_a_short_horizon():
    cfg, ts = _timeseries(policy={"rotation_interval_weeks": 20, "rotation_offset_weeks": 15}, weeks=10)
    arrival, on_station = posture_schedule(cfg.policy, 10)
    assert not arrival.any()
    np.testing.assert_array_equal(ts["scheduled_arrival"].to_numpy(), arrival.astype(float))
    np.testing.assert_array_equal(ts["scheduled_on_station"].to_numpy(), on_station.astype(float))


def _expected_calendar(cfg):
    sc = cfg.scenario
    n = sc.weeks
    intensity = np.zeros(n)
    for ev in sc.exercises:
        for k in event_start_weeks(sc.start, n, ev):
            intensity[k : min(k + ev.weeks, n)] += ev.intensity * sc.exercise_scale
    consultation = np.zeros(n, dtype=bool)
    for ev in sc.consultations:
        consultation[event_start_weeks(sc.start, n, ev)] = True
    return intensity, consultation


CALENDAR_CASES = {
    # the baseline calendar; week 61 starts the 2027 spring exercise, which runs past the horizon
    "baseline-62-weeks": ({}, 62),
    # a mid-week start after the 2027 summer exercise date, and scaled exercises
    "wednesday-start": ({"start_date": "2027-08-25", "exercise_scale": 1.5}, 60),
    "exercises-suspended": ({"exercise_scale": 0.0}, 60),
}


@pytest.mark.parametrize("case", list(CALENDAR_CASES), ids=list(CALENDAR_CASES))
def test_model_calendar_matches_event_start_weeks(case):
    scenario, weeks = CALENDAR_CASES[case]
    cfg, ts = _timeseries(scenario=scenario, weeks=weeks)
    intensity, consultation = _expected_calendar(cfg)
    got = ts["exercise_intensity"].to_numpy()
    np.testing.assert_array_equal(got > 0, intensity > 0)
    np.testing.assert_allclose(got, intensity, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ts["consultation"].to_numpy(), consultation.astype(float))
    if cfg.scenario.exercise_scale > 0:
        assert (intensity > 0).sum() >= 2  # the case really contains exercise weeks
    assert consultation.sum() >= 2


def test_model_calendar_with_overlapping_exercises():
    """Two overlapping exercises (0.2 from 10 Mar for 2 weeks, 0.5 from 17 Mar for 2 weeks).

    ``exercise_intensity`` is the sum of the exercises under way (docs: ``E >= 0``); it must be 0
    again, not a rounding residue, once both have ended.
    """
    exercises = [CalendarEvent(name="a", month=3, day=10, weeks=2, intensity=0.2),
                 CalendarEvent(name="b", month=3, day=17, weeks=2, intensity=0.5)]
    cfg, ts = _timeseries(scenario={"exercises": exercises, "consultations": []}, weeks=30)
    intensity, _ = _expected_calendar(cfg)
    got = ts["exercise_intensity"].to_numpy()
    np.testing.assert_allclose(got, intensity, rtol=0, atol=1e-12)
    assert np.all(got >= 0), got
    np.testing.assert_array_equal(got > 0, intensity > 0)


def test_model_week_and_date_columns():
    cfg, ts = _timeseries(scenario={"start_date": "2026-01-05"}, weeks=60)
    assert ts["week"].tolist() == list(range(60))
    np.testing.assert_array_equal(ts["date"].to_numpy().astype("datetime64[D]"),
                                  week_dates(cfg.scenario.start, 60))



# ------------------------------------------------------------------------ US inaugurations
@given(start=st.dates(dt.date(1950, 1, 1), dt.date(2150, 12, 31)), n_weeks=st.integers(1, 600))
def test_inauguration_weeks_hold_every_20_january_after_an_election(start, n_weeks):
    """The Twentieth Amendment: a presidential term begins on 20 January of the year after an
    election (years 1953, 1957, ... 2029: year mod 4 == 1). Each returned week contains such a date,
    and every such date inside the horizon is returned, once."""
    weeks = inauguration_weeks(start, n_weeks)
    days = [start + dt.timedelta(days=d) for d in range(7 * n_weeks)]
    expected = sorted({(d - start).days // 7 for d in days
                       if (d.month, d.day) == (1, 20) and d.year % 4 == 1})
    assert weeks == expected


def test_inauguration_weeks_on_the_baseline_horizon_by_hand():
    """From Monday 5 January 2026, ten years: 20 January 2029 (a Saturday) falls in week 158
    (1111 days later), 20 January 2033 (a Thursday) in week 367 (2572 days later)."""
    assert inauguration_weeks(dt.date(2026, 1, 5), 520) == [158, 367]


def test_the_model_redraws_us_types_only_in_inauguration_weeks():
    """With ``us_type_turnover`` 1, credibility 0.5, seed 31, R = 400, from 5 June 2028 for 100 weeks,
    stepped week by week: some US types change in the week of 20 January 2029 and none in any other
    week."""
    model = DeterrenceModel(small_config(replications=400, weeks=100, seed=31, credibility=0.5,
                                         scenario={"start_date": "2028-06-05"},
                                         params={"us_type_turnover": 1.0}))
    changed = []
    for week in range(model.n_weeks):
        before = model.us.resolute.copy()
        model.step()
        if (model.us.resolute != before).any():
            changed.append(week)
    assert changed == inauguration_weeks(model.scenario_cfg.start, model.n_weeks) == [32]
