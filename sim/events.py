"""The documented event record (``data/events.csv``): loading with validation, and observed targets.

One row per documented event. The closed type vocabulary maps onto the model's actions:

============================ =====================================================================
type                         model counterpart
============================ =====================================================================
``launch_day``               DPRK ``srbm_launch`` / ``lrbm_launch`` week; ``count`` = missiles
``nuclear_test``             DPRK ``nuclear_test``
``asset_deployment``         US arrival (scheduled rotation or ``surge_deployment``); ``kind`` =
                             bomber, carrier, ssbn, ...
``combined_exercise``        allied calendar: an exercise with ``end_date`` and ``scale`` in [0, 1]
``consultation``             allied calendar: EDSCG / SCM / NCG / ministerial commitments
``summit``, ``talks``        DPRK ``talks_offer`` / ROK ``outreach`` (diplomacy eras)
``moratorium``               DPRK test moratorium announced or ended (diplomacy eras)
``border_incident``          DPRK ``border_incident`` (ladder rung 4)
============================ =====================================================================

A malformed file stops with one :class:`EventDataError` naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .params import DATE_MAX, DATE_MIN

COLUMNS = ("date", "end_date", "actor", "type", "kind", "count", "scale", "description", "source",
           "uncertain")
TYPES = ("launch_day", "nuclear_test", "asset_deployment", "combined_exercise", "consultation",
         "summit", "talks", "moratorium", "border_incident")
ACTORS = ("DPRK", "US", "ROK", "Japan", "US-ROK", "US-ROK-Japan", "US-Japan", "ROK-DPRK", "US-DPRK")
MAJOR_PROVOCATION_KINDS = ("irbm", "icbm", "slbm", "hypersonic", "satellite")
# The largest count a row may hold. The largest launch day reported, 2 Nov 2022, was counted as
# "more than 20 missiles" by the ROK (Korea JoongAng Daily / Yonhap, 2 Nov 2022; events.csv); no
# other type of row counts more than a handful. A count above 100 is a typo.
MAX_COUNT = 100


class EventDataError(ValueError):
    """A malformed event record; the message is one line: file, line, problem and fix."""


def _date(value: str, where: str, column: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise EventDataError(f"{where}: {column} '{value}' is not a date: write it as YYYY-MM-DD") from None
    if not DATE_MIN <= day <= DATE_MAX:  # the model's date window (sim.params.DATE_MIN, DATE_MAX)
        raise EventDataError(f"{where}: {column} {day} is outside {DATE_MIN}..{DATE_MAX}: correct the year")
    return day


def _read_text(path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark, as spreadsheet programs write, is allowed)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EventDataError(f"{path}: cannot read the event record ({exc.strerror or exc}): check "
                             "the path and its permissions") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EventDataError(f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 text: save the "
                             "file as UTF-8 (CSV UTF-8 in a spreadsheet program)") from None


def load_events(path: str | Path) -> pd.DataFrame:
    """Read and validate an event record; return it sorted by date with typed columns."""
    path = Path(path)
    if not path.is_file():
        raise EventDataError(f"{path}: no such file: give the path of the event record "
                             "(data/events.csv in the repository)")
    rows = []
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise EventDataError(f"{path}:1: missing column(s) {', '.join(missing)}: the header must "
                                 f"hold {','.join(COLUMNS)}")
        for rec in reader:
            where = f"{path}:{reader.line_num}"
            if None in rec or any(rec[c] is None for c in COLUMNS):
                raise EventDataError(f"{where}: wrong number of fields: expected {len(COLUMNS)} "
                                     "(quote fields that contain commas)")
            rows.append(_validate(rec, where))
    except csv.Error as exc:
        raise EventDataError(f"{path}:{reader.line_num + 1}: not readable as CSV ({exc}): check the "
                             "quotes on this line") from None
    if not rows:
        raise EventDataError(f"{path}: the header is there but no events follow: add one row per "
                             "event (see data/README.md)")
    df = pd.DataFrame(rows, columns=[*COLUMNS, "line"])
    df["date"] = pd.to_datetime(df["date"])
    df["end_date"] = pd.to_datetime(df["end_date"])
    df["count"] = df["count"].astype(int)
    df["scale"] = df["scale"].astype(float)
    df["uncertain"] = df["uncertain"].astype(bool)
    return df.sort_values(["date", "line"], kind="stable").reset_index(drop=True)


def _validate(rec: dict, where: str) -> dict:
    out = {c: (rec[c] or "").strip() for c in COLUMNS}
    start = _date(out["date"], where, "date")
    end = _date(out["end_date"], where, "end_date") if out["end_date"] else None
    if end is not None and end < start:
        raise EventDataError(f"{where}: end_date {end} is before date {start}: swap or correct them")
    if out["type"] not in TYPES:
        raise EventDataError(f"{where}: unknown type '{out['type']}': use one of {', '.join(TYPES)}")
    if out["actor"] not in ACTORS:
        raise EventDataError(f"{where}: unknown actor '{out['actor']}': use one of {', '.join(ACTORS)}")
    try:
        count = int(out["count"])
    except ValueError:
        count = -1
    if not 1 <= count <= MAX_COUNT:
        raise EventDataError(f"{where}: count '{out['count']}' must be a whole number from 1 to "
                             f"{MAX_COUNT} (more in one row is a typo)")
    scale = np.nan
    if out["scale"]:
        try:
            scale = float(out["scale"])
        except ValueError:
            scale = -1.0
        if not 0.0 <= scale <= 1.0:
            raise EventDataError(f"{where}: scale '{out['scale']}' must be a number in [0, 1]")
    if out["type"] == "combined_exercise" and np.isnan(scale):
        raise EventDataError(f"{where}: a combined_exercise needs a scale in [0, 1] (1 full, 0 suspended)")
    if out["uncertain"].lower() not in ("true", "false"):
        raise EventDataError(f"{where}: uncertain '{out['uncertain']}' must be true or false")
    if not out["source"]:
        raise EventDataError(f"{where}: the source is empty: name where the fact comes from")
    return {
        **out, "date": start, "end_date": end, "count": count, "scale": scale,
        "uncertain": out["uncertain"].lower() == "true", "line": int(where.rsplit(":", 1)[1]),
    }


def default_events_path() -> Path:
    """``data/events.csv`` of the repository (or bundled with the package)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data" / "events.csv", here.parent / "data" / "events.csv"):
        if candidate.is_file():
            return candidate
    return here.parent / "data" / "events.csv"


def yearly_counts(events: pd.DataFrame, years: list[int], week_start: str | None = None) -> pd.DataFrame:
    """Observed per-year DPRK launch days, missiles, nuclear tests and US strategic-asset deployments.

    With ``week_start`` (the simulation's first day) it also counts ``dprk_launch_weeks``: weeks of
    the simulation's calendar with at least one launch day, assigned to the year of the week's first
    day (the model's ``dprk_launch_weeks`` count; its ``dprk_launch_days`` are days, as the record's).
    """
    year = events["date"].dt.year
    out = pd.DataFrame(index=pd.Index(years, name="year"))

    def per_year(mask: pd.Series, values: pd.Series | None = None) -> pd.Series:
        v = values[mask] if values is not None else pd.Series(1, index=events.index)[mask]
        return v.groupby(year[mask]).sum().reindex(years, fill_value=0)

    dprk = events["actor"] == "DPRK"
    launch = dprk & (events["type"] == "launch_day")
    out["dprk_launch_days"] = per_year(launch)
    out["dprk_missiles"] = per_year(launch, events["count"])
    out["dprk_nuclear_tests"] = per_year(dprk & (events["type"] == "nuclear_test"))
    out["us_deployments"] = per_year(events["type"] == "asset_deployment")
    out["kinetic_incidents"] = per_year(dprk & (events["type"] == "border_incident"))
    if week_start is not None:
        origin = pd.Timestamp(week_start)
        first_day = origin + pd.to_timedelta(7 * ((events.loc[launch, "date"] - origin).dt.days // 7),
                                             unit="D")
        weeks = pd.Series(first_day.unique())
        out["dprk_launch_weeks"] = weeks.groupby(weeks.dt.year).size().reindex(years, fill_value=0)
    return out.astype(float)


def is_major_provocation(events: pd.DataFrame) -> pd.Series:
    """Nuclear tests and long-range (IRBM/ICBM/SLBM/hypersonic/satellite) launch days."""
    return (events["actor"] == "DPRK") & (
        (events["type"] == "nuclear_test")
        | ((events["type"] == "launch_day") & events["kind"].str.lower().isin(MAJOR_PROVOCATION_KINDS))
    )


def median_response_lag_weeks(events: pd.DataFrame, start: str, end: str, max_weeks: int = 8) -> float:
    """Median weeks from a major provocation to the next US strategic-asset deployment.

    The model's definition (:meth:`sim.recording.Recorder._record_lags`): a clock starts at a
    major provocation when none is running and stops at the next deployment; the lag is in whole
    weeks, ``floor(days / 7)``; no deployment within ``max_weeks`` counts as no response and is
    left out; the median is the lower median of the lags.
    """
    from .recording import median_from_histogram

    window = (events["date"] >= pd.Timestamp(start)) & (events["date"] <= pd.Timestamp(end))
    ev = events[window]
    provocations = np.sort(ev.loc[is_major_provocation(ev), "date"].to_numpy())
    deployments = np.sort(ev.loc[ev["type"] == "asset_deployment", "date"].to_numpy())
    lags = []
    clock_until = None  # provocations before this date fall while a clock is running
    for day in provocations:
        if clock_until is not None and day < clock_until:
            continue
        i = np.searchsorted(deployments, day, side="left")
        limit = day + np.timedelta64(7 * (max_weeks + 1), "D")
        if i < len(deployments) and deployments[i] < limit:
            lags.append(int((deployments[i] - day) / np.timedelta64(7, "D")))
            clock_until = deployments[i]
        else:
            clock_until = limit
    return median_from_histogram(np.bincount(lags)) if lags else float("nan")
