"""The `historical` scenario: the documented allied calendar and the DPRK's eras, 2016-2023.

History is not stationary (DESIGN.md, 'Data and calibration'): the 2016-17 test campaign, the
2018-19 talks and exercise suspension, the 2020-21 lull, the 2022-23 surge. The replay therefore
schedules, as exogenous inputs:

* every combined exercise of the record at its dates and documented scale (0 = suspended);
* every consultation (EDSCG, SCM, NCG, ministerial commitments);
* the DPRK's eras, with their documented start dates and a weapons drive per era (fitted by the
  calibration, the 2022-23 era being the reference, drive 1) and a diplomacy flag (1 in 2018-19).

What stays endogenous: every DPRK action, US surges (the posture is ``reactive``, as in 2016),
allied responses, beliefs, tension. The behavioural parameters are shared across eras.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import yaml

from .events import load_events
from .params import DatedEvent, Era, ScenarioConfig

START = "2016-01-04"  # the Monday of the week of the 6 Jan 2016 nuclear test
END = "2023-12-31"
YEARS = list(range(2016, 2024))

# Era boundaries with the documented turning point each rests on. `weapons_drive` here is the
# uncalibrated default; the calibration fits the first three relative to the last.
ERAS = (
    Era(name="test_campaign_2016_17", start_date="2016-01-01", weapons_drive=1.0, diplomacy=0.0),
    # Kim Jong Un's New Year address of 1 Jan 2018 offered talks; summits followed (events.csv).
    Era(name="diplomacy_2018_19", start_date="2018-01-01", weapons_drive=1.0, diplomacy=1.0),
    # The Dec 2019 party plenum dropped the test moratorium pledge; the border closed in Jan 2020.
    Era(name="lull_2020_21", start_date="2020-01-01", weapons_drive=1.0, diplomacy=0.0),
    # The five-year defence plan of the 8th Party Congress (Jan 2021) drove the 2022-23 surge.
    Era(name="surge_2022_23", start_date="2022-01-01", weapons_drive=1.0, diplomacy=0.0),
)
ERA_DRIVE_PARAMS = ("era_drive_2016_17", "era_drive_2018_19", "era_drive_2020_21")


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
    """The historical ScenarioConfig, with era drives from ``drives`` (defaults: 1)."""
    drives = drives or {}
    eras = []
    for era, name in zip(ERAS, (*ERA_DRIVE_PARAMS, None), strict=True):
        drive = drives.get(name, era.weapons_drive) if name else era.weapons_drive
        eras.append(Era(name=era.name, start_date=era.start_date, weapons_drive=float(drive),
                        diplomacy=era.diplomacy))
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
        "the record, and the DPRK eras (weapons drive, diplomacy). Use with policy=reactive.\n"
        + (note + "\n" if note else "")
    )
    path = Path(path)
    path.write_text(scenario_yaml(scenario, header))
    return path
