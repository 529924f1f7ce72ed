"""The `historical` scenario: the documented allied calendar and the DPRK's eras, 2016-2023.

History is not stationary (the record, data/events.csv, shows it): the 2016-17 test campaign, the
2018-19 talks and exercise suspension, the 2020-21 lull, the 2022-23 surge. The replay therefore
schedules, as exogenous inputs:

* every combined exercise of the record at its dates and documented scale (0 = suspended);
* every consultation (EDSCG, SCM, NCG, ministerial commitments);
* the DPRK's eras, with their documented start dates and a weapons drive per era (fitted by the
  calibration, the 2022-23 era being the reference, drive 1; the 2018 drive is 0 by the declared
  halt of April 2018, not fitted; 2018 and the post-Hanoi 2019 are separate eras) and a diplomacy
  flag (1 in 2018 and 2019);
* the documented US posture by period (reactive 2016, regular deployments 2017, none recorded
  2018-21, reactive 2022, regular again after the Washington Declaration of April 2023).

What stays endogenous: every DPRK action, US surges and the timing of arrivals, allied responses,
beliefs, tension. The behavioural parameters are shared across eras.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pandas as pd
import yaml

from .events import load_events
from .params import DatedEvent, Era, Posture, PosturePeriod, ScenarioConfig

START = "2016-01-04"  # the Monday of the week of the 6 Jan 2016 nuclear test
END = "2023-12-31"
YEARS = list(range(2016, 2024))

# Era boundaries with the documented turning point each rests on. `weapons_drive` here is the
# uncalibrated default; the calibration fits every era's drive relative to the last (2022-23 = 1).
ERAS = (
    Era(name="test_campaign_2016_17", start_date="2016-01-01", weapons_drive=1.0, diplomacy=0.0),
    # Kim Jong Un's New Year address of 1 Jan 2018 offered talks; summits followed (events.csv).
    # The nuclear-test halt declared on 20 Apr 2018 (Punggye-ri demolished in May) held through
    # 2023: no nuclear test is recorded after Sep 2017, so the moratorium is an input from 2018 on
    # (applied from 1 Jan 2018, three months early; no test fell in between).
    # Its drive is set to 0, not fitted: the party plenum of 20 Apr 2018 declared the weapons
    # programme complete ("no longer need" nuclear or ICBM tests) and the record holds no launch in
    # 2018 (KCNA, 21 Apr 2018).
    Era(name="diplomacy_2018", start_date="2018-01-01", weapons_drive=0.0, diplomacy=1.0,
        nuclear_moratorium=True),
    # The Hanoi summit ended without a deal (28 Feb 2019); short-range launches resumed on 4 May
    # while leader-level contact went on (Panmunjom, 30 Jun 2019).
    Era(name="after_hanoi_2019", start_date="2019-03-01", weapons_drive=1.0, diplomacy=1.0,
        nuclear_moratorium=True),
    # The Dec 2019 party plenum dropped the ICBM-test pledge; the border closed in Jan 2020.
    Era(name="lull_2020_21", start_date="2020-01-01", weapons_drive=1.0, diplomacy=0.0,
        nuclear_moratorium=True),
    # The five-year defence plan of the 8th Party Congress (Jan 2021) and the Politburo's order of
    # 19 Jan 2022 to review "all temporarily-suspended activities" (KCNA, 20 Jan 2022, a row of
    # data/events.csv) opened the 2022 test campaign; the ICBM moratorium ended on 24 Mar 2022.
    Era(name="campaign_2022", start_date="2022-01-01", weapons_drive=1.0, diplomacy=0.0,
        nuclear_moratorium=True),
    # The party plenum of 26-31 Dec 2022 turned the plan to building up the arsenal (an "exponential
    # increase", mass production of tactical nuclear weapons, a reconnaissance satellite; KCNA,
    # 1 Jan 2023). The reference era: drive 1.
    Era(name="build_up_2023", start_date="2023-01-01", weapons_drive=1.0, diplomacy=0.0,
        nuclear_moratorium=True),
)
# The calibration parameter that can set each era's drive, by parameter name. The reference era
# (2023) has none: its drive is 1 and the others are relative to it; the 2018 drive is 0 by the
# declared halt and fitted only if a calibration lists era_drive_2018.
ERA_OF_PARAM = {"era_drive_2016_17": "test_campaign_2016_17", "era_drive_2018": "diplomacy_2018",
                "era_drive_2019": "after_hanoi_2019", "era_drive_2020_21": "lull_2020_21",
                "era_drive_2022": "campaign_2022"}
ERA_DRIVE_PARAMS = tuple(ERA_OF_PARAM)
PARAM_OF_ERA = {era: param for param, era in ERA_OF_PARAM.items()}

# Documented US postures (the posture's cadence and costs come from the policy config).
POSTURE_PERIODS = (
    # 2016: bombers flown in after each nuclear test (B-52 in Jan, B-1B in Sep; Yonhap, 1 Feb 2017;
    # Qatar News Agency, 21 Dec 2016).
    PosturePeriod(name="reactive_2016", start_date="2016-01-01", posture=Posture.reactive),
    # The first EDSCG (20 Dec 2016) committed the US to regularly deploy strategic assets (Qatar News
    # Agency, 21 Dec 2016).
    PosturePeriod(name="regular_2017", start_date="2017-01-01", posture=Posture.rotational),
    # From the 2018 talks to 2021 no strategic-asset deployment to the peninsula is recorded.
    PosturePeriod(name="paused_2018_21", start_date="2018-01-01", posture=Posture.none),
    # Deployments resumed in response to the 2022 launches (events.csv).
    PosturePeriod(name="reactive_2022", start_date="2022-01-01", posture=Posture.reactive),
    # The Washington Declaration (26 Apr 2023) promised regular visibility of strategic assets.
    PosturePeriod(name="regular_2023", start_date="2023-04-26", posture=Posture.rotational),
)


def calendar_from_events(events: pd.DataFrame, start: str = START, end: str = END) -> list[DatedEvent]:
    """Exercises (with their scale) and consultations of the record inside [start, end]."""
    window = (events["date"] >= pd.Timestamp(start)) & (events["date"] <= pd.Timestamp(end))
    out = []
    for row in events[window].itertuples(index=False):
        if row.type == "combined_exercise":
            last = row.end_date if not pd.isna(row.end_date) else row.date
            weeks = max(1, math.ceil(((last - row.date).days + 1) / 7))
            out.append(DatedEvent(name=_slug(row.description or row.kind or "exercise"),
                                  kind="exercise", date=row.date.date().isoformat(),
                                  weeks=min(weeks, 26), intensity=float(row.scale)))
        elif row.type == "consultation":
            out.append(DatedEvent(name=_slug(row.description or "consultation"), kind="consultation",
                                  date=row.date.date().isoformat()))
    return out


def _slug(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in str(text)).split()[:6]
    return "_".join(words).lower() or "event"


def historical_scenario(events: pd.DataFrame, drives: dict[str, float] | None = None) -> ScenarioConfig:
    """The historical ScenarioConfig, with era drives from ``drives`` (defaults: :data:`ERAS`)."""
    drives = drives or {}
    eras = []
    for era in ERAS:
        drive = drives.get(PARAM_OF_ERA.get(era.name), era.weapons_drive)
        eras.append(dataclasses.replace(era, weapons_drive=float(drive)))
    weeks = (dt.date.fromisoformat(END) - dt.date.fromisoformat(START)).days // 7 + 1
    return ScenarioConfig(
        name="historical",
        start_date=START,
        weeks=weeks,
        dprk_prior=None,
        rok_assurance=0.6,
        japan_assurance=0.6,
        dprk_capability=0.3,  # before the first ICBM flight (4 Jul 2017)
        initial_tension=2.0,
        weapons_drive=eras[0].weapons_drive,
        exercise_scale=1.0,
        exercises=[],
        consultations=[],
        dated_events=calendar_from_events(events),
        eras=eras,
        posture_periods=list(POSTURE_PERIODS),
    )


def scenario_yaml(scenario: ScenarioConfig, header: str) -> str:
    """The scenario as a Hydra config file (for configs/scenario/)."""
    import dataclasses

    from .params import _plain

    body = yaml.safe_dump(_plain(dataclasses.asdict(scenario)), sort_keys=False, width=110)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body


def write_historical_scenario(path: str | Path, events_path: str | Path,
                              drives: dict[str, float] | None = None, note: str = "") -> Path:
    """Write configs/scenario/historical.yaml from the event record (and fitted era drives)."""
    events = load_events(events_path)
    scenario = historical_scenario(events, drives)
    header = (
        "Historical replay 2016-2023, GENERATED from data/events.csv by sim.history "
        "(do not edit by hand).\n"
        "Exogenous inputs: the dated combined exercises (scale 0 = suspended) and consultations of\n"
        "the record, the DPRK eras (weapons drive, diplomacy, nuclear moratorium) and the US posture\n"
        "periods.\n"
        + (note + "\n" if note else "")
    )
    path = Path(path)
    path.write_text(scenario_yaml(scenario, header))
    return path


def record_monthly_launches(events: pd.DataFrame, start: str, weeks: int) -> pd.DataFrame:
    """The record's DPRK launch days and launch weeks per calendar month of a simulated window.

    One row per month (a ``pandas.Period``) of the window ``[start, start + weeks)`` that lies in
    the record's launch coverage ``[START, END]``; other months are left out, not counted as zero.
    ``launch_days`` counts the ``launch_day`` rows by their date. ``launch_weeks`` counts the weeks
    of the simulation's calendar (weeks from ``start``) with at least one launch day, in the month
    of the week's first day, as :func:`sim.events.yearly_counts` counts them per year; the model
    counts both, and its monthly figure compares launch days.
    """
    origin = pd.Timestamp(start)
    first = max(origin, pd.Timestamp(START))
    last = min(origin + pd.Timedelta(weeks=weeks) - pd.Timedelta(days=1), pd.Timestamp(END))
    if first > last:
        return pd.DataFrame({"launch_days": [], "launch_weeks": []},
                            index=pd.PeriodIndex([], freq="M", name="month"))
    months = pd.period_range(first, last, freq="M", name="month")
    days = events.loc[(events["actor"] == "DPRK") & (events["type"] == "launch_day")
                      & (events["date"] >= first) & (events["date"] <= last), "date"]
    week_start = pd.Series((origin + pd.to_timedelta(7 * ((days - origin).dt.days // 7), unit="D"))
                           .unique())
    return pd.DataFrame({
        "launch_days": days.groupby(days.dt.to_period("M")).size().reindex(months, fill_value=0),
        "launch_weeks": week_start.groupby(week_start.dt.to_period("M")).size()
                                  .reindex(months, fill_value=0),
    })
