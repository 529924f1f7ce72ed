"""Calendar arithmetic and posture schedules, as pure functions of the configuration.

Week ``k`` (0-based) covers the seven days from ``start + 7k``. The model turns the outputs of these
functions into Mesa events (``schedule_event`` / ``schedule_recurring``); tests check that what the
model did matches what these functions say.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .params import CalendarEvent, PolicyConfig, Posture


def week_dates(start: dt.date, n_weeks: int) -> np.ndarray:
    """First day of every simulated week, as ``datetime64[D]``."""
    return np.datetime64(start, "D") + 7 * np.arange(n_weeks)


def week_years(start: dt.date, n_weeks: int) -> np.ndarray:
    """Calendar year of the first day of every simulated week."""
    return week_dates(start, n_weeks).astype("datetime64[Y]").astype(int) + 1970


def week_of(start: dt.date, day: dt.date) -> int:
    """Index of the week that contains ``day`` (negative if before the start)."""
    return (day - start).days // 7


def first_week_from(start: dt.date, day: dt.date) -> int:
    """Index of the first week that begins on or after ``day`` (for eras and posture periods, so
    that a change dated 1 January counts in the new year, not the old year's last week)."""
    return -(-(day - start).days // 7)


def event_start_weeks(start: dt.date, n_weeks: int, event: CalendarEvent) -> list[int]:
    """Weeks in which a yearly calendar event begins, one per simulated year that holds its date."""
    first_year = start.year
    last_year = (start + dt.timedelta(weeks=n_weeks)).year
    weeks = []
    for year in range(first_year, last_year + 1):
        k = week_of(start, dt.date(year, event.month, event.day))
        if 0 <= k < n_weeks:
            weeks.append(k)
    return weeks


def inauguration_weeks(start: dt.date, n_weeks: int) -> list[int]:
    """Weeks in which a US presidential term begins: 20 January of every year after a presidential
    election (2017, 2021, 2025, 2029, ...; the Twentieth Amendment fixes the date). A new
    administration may bring a new resolve (``params.us_type_turnover``)."""
    last_year = (start + dt.timedelta(weeks=n_weeks)).year
    weeks = []
    for year in range(start.year, last_year + 1):
        if year % 4 == 1:
            k = week_of(start, dt.date(year, 1, 20))
            if 0 <= k < n_weeks:
                weeks.append(k)
    return weeks


def posture_schedule(policy: PolicyConfig, n_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """Scheduled arrivals and on-station weeks of a posture (docs/model.md, Section 3.3).

    Returns two boolean arrays of length ``n_weeks``: ``arrival[k]`` (an asset arrives in week k)
    and ``on_station[k]``. Surges after provocations are decided in the run and are not included.

    * ``rotational``: arrivals every ``rotation_interval_weeks`` from ``rotation_offset_weeks``, each
      on station for ``rotation_duration_weeks`` (the first EDSCG's 'regular deployment';
      Qatar News Agency, 21 Dec 2016).
    * ``permanent``: one arrival in week 0 (the sunk basing signal), on station throughout (Seoul's
      ask at the first EDSCG; Yonhap, 1 Feb 2017).
    * ``reactive`` and ``none``: nothing scheduled (reactive deploys only as surges, as in 2016).
    """
    arrival = np.zeros(n_weeks, dtype=bool)
    on_station = np.zeros(n_weeks, dtype=bool)
    if policy.name == Posture.rotational:
        for k in range(policy.rotation_offset_weeks, n_weeks, policy.rotation_interval_weeks):
            arrival[k] = True
            on_station[k : k + policy.rotation_duration_weeks] = True
    elif policy.name == Posture.permanent:
        arrival[0] = True
        on_station[:] = True
    return arrival, on_station
