"""Writing a run's files: two Parquet tables, summary.json, the escalation figure and the manifest.

Files are first written into a hidden staging folder (``.partial-*``) next to their destination
and moved into place only when all of them exist, so a failed or killed run leaves no half-written
output. ``manifest.json`` goes last: it holds the SHA-256 of every other run file and the run's
identity (:meth:`sim.params.RunConfig.identity`), so a folder is a finished run exactly when its
manifest is present and every checksum matches (:func:`verify_run`). Checksums catch what a
readability check cannot, such as flipped bytes inside a Parquet page or an edited number in
``summary.json``; the design is BagIt's payload manifest of per-file checksums, verified before
the files are used (Kunze et al. 2018, RFC 8493, "The BagIt File Packaging Format"). A staging
folder is locked (``flock``) while in use; one left by a killed run (unlocked) is removed by the
next write into the same folder (:func:`remove_stale_staging`). Two processes writing the same
run folder at the same moment are not supported (the last complete write wins).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stale staging folders are removed unconditionally
    fcntl = None

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .events import EventDataError, default_events_path, load_events
from .history import record_monthly_launches
from .metrics import METRIC_DESCRIPTIONS, METRIC_UNITS, headline_metrics, wilson_interval
from .recording import Results

MANIFEST = "manifest.json"
FIGURE = "escalation.png"
# Every file of a finished run; the manifest (written last) holds the checksums of the others.
RUN_FILES = ("timeseries.parquet", "replications.parquet", "summary.json", FIGURE, MANIFEST)
CHECKED_FILES = tuple(name for name in RUN_FILES if name != MANIFEST)
# The files every finished run has: the figure is optional (a sweep's points skip it by default).
DATA_FILES = tuple(name for name in CHECKED_FILES if name != FIGURE)
STAGING_PREFIX = ".partial-"
_LOCK = ".lock"

log = logging.getLogger("dsim")


@functools.cache
def code_version() -> dict:
    """Git commit of the installed code (and whether the work tree had changes), if known.

    Asked once per process (a sweep worker runs many points)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip() != ""
        return {"git_commit": commit, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return {"git_commit": None, "package_version": version("dsim")}
        except PackageNotFoundError:
            return {"git_commit": None}


def summary_dict(results: Results) -> dict:
    """Everything ``summary.json`` holds: metrics with intervals, seed, resolved config, code version."""
    cfg = results.config
    return {
        "metrics": headline_metrics(results.replications),
        "units": METRIC_UNITS,
        "descriptions": METRIC_DESCRIPTIONS,
        "seed": cfg.seed,
        "replications": cfg.replications,
        "credibility": cfg.credibility,
        "policy": cfg.policy.name.value,
        "scenario": cfg.scenario.name,
        "start_date": str(cfg.scenario.start),
        "weeks": cfg.scenario.weeks,
        "config": cfg.to_dict(),
        "identity": canonical(cfg.identity()),  # what resume compares (sim.sweep.point_complete)
        **code_version(),
        **results.meta,
    }


# Okabe & Ito (2008), "Color universal design": a palette that stays distinct under the common
# colour-vision deficiencies; each rare event also has its own line style and marker.
RARE_EVENTS = (  # (key, label, colour, line style, marker)
    ("nuclear_test", "\u2265 1 DPRK nuclear test", "#0072B2", "--", "o"),
    ("kinetic_clash", "\u2265 1 kinetic clash", "#D55E00", "-", None),
    ("war", "war", "#CC79A7", "-.", None),
)
LAUNCH_COLOUR, TENSION_COLOUR, BELIEF_COLOUR = "#0072B2", "#D55E00", "#009E73"
EXERCISE_COLOUR, RECORD_COLOUR = "#E69F00", "#000000"
POSTURE_STRIP_COLOURS = {"rotational": "#56B4E9", "permanent": "#CC79A7", "reactive": "#F0E442",
                         "none": "#DDDDDD"}


@dataclass
class EscalationFigure:
    """What :func:`plot_escalation` drew, so that tests and callers can check or restyle it.

    ``axes`` maps a panel name (``rare``, ``launches``, ``tension``, ``belief`` and, for a run with
    posture periods or eras, ``periods``) to its matplotlib Axes; ``rare`` holds the plotted event
    probabilities with their Wilson bounds; ``monthly`` the launch days per month (simulated, and
    the record's for a replay).
    """

    figure: Figure
    axes: dict[str, Axes]
    title: str
    rare: dict[str, pd.DataFrame]
    monthly: pd.DataFrame


def is_replay(scenario) -> bool:
    """A run of a documented period: the `historical` scenario or any scenario with dated events,
    eras or posture periods."""
    return bool(scenario.name == "historical" or scenario.dated_events or scenario.eras
                or scenario.posture_periods)


def _periods_in_horizon(items, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple]:
    """(item, first day, day after the last) of each dated period that overlaps [start, end)."""
    items = sorted(items, key=lambda p: str(p.start_date))
    out = []
    for k, item in enumerate(items):
        a = pd.Timestamp(str(item.start_date))
        b = pd.Timestamp(str(items[k + 1].start_date)) if k + 1 < len(items) else end
        if b > start and a < end:
            out.append((item, max(a, start), min(b, end)))
    return out


def rare_event_curves(results: Results) -> dict[str, pd.DataFrame]:
    """Share of replications in which each rare event has happened by week t, with 95 % Wilson bounds.

    Kinetic clash and war come week by week from ``first_clash_week`` and ``war_week``. A nuclear
    test is known per replication and calendar year only (``replications.parquet``), so its curve
    has one point per year, at the year's last simulated week. These are event probabilities
    (``p_nuclear_test``, ``p_kinetic_clash`` at the horizon); the ladder level "highest rung >=
    nuclear test" would count every clash as well (see :mod:`sim.metrics`).
    """
    ts_dates = pd.to_datetime(results.timeseries["date"]).reset_index(drop=True)
    weeks = len(ts_dates)
    per = results.per_replication()
    n = len(per)
    curves = {}
    for key, column in (("kinetic_clash", "first_clash_week"), ("war", "war_week")):
        hit = per[column].dropna().to_numpy(dtype=np.int64)
        counts = np.bincount(hit, minlength=weeks)[:weeks].cumsum()
        curves[key] = (ts_dates, counts)
    reps = results.replications
    keys = [k for k in ("block", "replication") if k in reps.columns]
    reps = reps.sort_values([*keys, "year"], kind="stable")
    tested_by = reps.groupby(keys, sort=False)["dprk_nuclear_test"].cumsum() > 0
    tested = tested_by.groupby(reps["year"].to_numpy()).sum()
    year_end = ts_dates.groupby(ts_dates.dt.year).max()
    curves["nuclear_test"] = (pd.Series(year_end.loc[tested.index].to_numpy()), tested.to_numpy())
    out = {}
    for key, (dates, counts) in curves.items():
        low, high = wilson_interval(counts, n)
        out[key] = pd.DataFrame({"date": dates.to_numpy(), "count": counts, "p": counts / n,
                                 "ci_low": low, "ci_high": high})
    return out


def simulated_monthly_launches(timeseries: pd.DataFrame) -> pd.Series:
    """Mean DPRK launch days per calendar month over replications (a week's launch days count in the
    month of its first day)."""
    month = pd.to_datetime(timeseries["date"]).dt.to_period("M")
    return timeseries["dprk_launch_days"].groupby(month.to_numpy()).sum().rename("simulated_mean")


@functools.lru_cache(maxsize=2)
def _cached_events(path: str, mtime_ns: int) -> pd.DataFrame:
    """The event record, read once per process while the file is unchanged (a sweep of replays
    draws one figure per point)."""
    return load_events(path)


def _record_overlay(results: Results) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The record's launch days and launch weeks per month, and its nuclear tests and border
    incidents, inside the replay's window (None where the record cannot be read)."""
    cfg = results.config
    start = pd.Timestamp(cfg.scenario.start)
    end = start + pd.Timedelta(weeks=cfg.scenario.weeks)
    try:
        path = default_events_path()
        events = _cached_events(str(path), path.stat().st_mtime_ns)
    except (EventDataError, OSError) as exc:
        log.warning("no record overlay in escalation.png: %s", exc)
        return None, None
    monthly = record_monthly_launches(events, str(start.date()), cfg.scenario.weeks)
    window = (events["date"] >= start) & (events["date"] < end) & (events["actor"] == "DPRK")
    marks = events.loc[window & events["type"].isin(["nuclear_test", "border_incident"]),
                       ["date", "type"]]
    return monthly, marks


def plot_escalation(results: Results, path: str | os.PathLike | None = None,
                    dpi: int = 150) -> EscalationFigure:
    """The per-run figure (``escalation.png``): rare events, launches per month, tension and belief.

    Panels, sharing the date axis:

    * (a) the share of replications with at least one nuclear test, kinetic clash or war by each
      date, on a log axis (these are rare: on a linear axis next to the lower rungs, which every
      replication reaches within weeks, they were unreadable), with 95 % Wilson bands;
    * (b) DPRK launch days per month: the simulated mean (and 5-95 % band of replications when the
      run recorded monthly counts) with combined-exercise weeks shaded; for a replay, the record's
      launch days per month, the same count;
    * (c) tension and (d) the DPRK's belief that the US is resolute: median, mean and 5-95 % band.

    For a run with posture periods or eras (a replay) a strip on top shows them, and dashed lines
    mark posture changes in every panel. Legends sit right of the panels, clear of the data.
    Returns what it drew; with ``path`` it also saves a PNG and closes the figure.
    """
    cfg = results.config
    ts = results.timeseries
    dates = pd.to_datetime(ts["date"])
    start, end = dates.iloc[0], dates.iloc[-1] + pd.Timedelta(days=7)
    n = cfg.replications
    replay = is_replay(cfg.scenario)
    periods = _periods_in_horizon(cfg.scenario.posture_periods, start, end)
    eras = _periods_in_horizon(cfg.scenario.eras, start, end)
    strip = bool(periods or eras)
    record, marks = _record_overlay(results) if replay else (None, None)

    panels = (["periods"] if strip else []) + ["rare", "launches", "tension", "belief"]
    ratios = {"periods": 0.45, "rare": 2.2, "launches": 1.8, "tension": 1.2, "belief": 1.2}
    height = 1.35 + 1.9 * sum(ratios[p] for p in panels) / 1.2
    # Fixed margins instead of a layout engine: constrained layout re-draws the text several times
    # and took about 60 % of the figure's time (a sweep writes one figure per point).
    fig, axs = plt.subplots(len(panels), 1, figsize=(11, height),
                            gridspec_kw={"height_ratios": [ratios[p] for p in panels]})
    title = run_title(results)
    title_lines = [textwrap.fill(line, 125, break_on_hyphens=False) for line in title.splitlines()]
    top = 1 - (0.45 + 0.17 * sum(t.count("\n") + 1 for t in title_lines)) / height
    fig.subplots_adjust(left=0.075, right=0.72, bottom=0.5 / height, top=top, hspace=0.28)
    axes = dict(zip(panels, axs, strict=True))
    legend = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False,
              "borderaxespad": 0.0}

    # (strip) posture periods and DPRK eras
    if strip:
        ax = axes["periods"]
        width_in, span_days = 11 * (0.72 - 0.075), (end - start).days
        rows = [("US posture", periods, lambda p: p.posture.value),
                ("DPRK era", eras, lambda e: e.name)]
        for y, (_, items, label) in enumerate(rows):
            ax.broken_barh([(mdates.date2num(a), (b - a).days) for _, a, b in items], (0.6 - y, 0.8),
                           facecolors=[POSTURE_STRIP_COLOURS.get(label(item), "#DDDDDD") if y == 0
                                       else ("#EEEEEE", "#CCCCCC")[k % 2]
                                       for k, (item, _, _) in enumerate(items)], edgecolor="white")
            for item, a, b in items:
                # wrap a label to its bar: about 0.055 inch a character at 6.5 pt
                chars = max(4, int(width_in * (b - a).days / span_days / 0.055))
                text = re.sub(r"(\d{4})_(\d{2})\b", r"\1-\2", label(item)).replace("_", " ")
                ax.text(a + (b - a) / 2, 1 - y, textwrap.fill(text, chars),
                        ha="center", va="center", fontsize=6.5, linespacing=0.9, clip_on=True)
        ax.set_yticks([1, 0], [r[0] for r in rows], fontsize=8)
        ax.set_ylim(-0.5, 1.5)
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.set_title(f"Inputs: US posture by period (cadence and costs from policy "
                     f"'{cfg.policy.name.value}') and DPRK eras", fontsize=9, loc="left")
    changes = [mdates.date2num(a) for _, a, _ in periods[1:]]
    if changes:
        for name in panels:
            axes[name].vlines(changes, 0, 1, transform=axes[name].get_xaxis_transform(),
                              colors="grey", lw=0.8, linestyles="--", zorder=0)

    # (a) rare events on a log axis
    ax = axes["rare"]
    rare = rare_event_curves(results)
    floor = 0.3 / n
    for key, label, colour, style, marker in RARE_EVENTS:
        c = rare[key]
        last = c.iloc[-1]
        text = (f"{label}: {_p(last['p'])} [{_p(last['ci_low'])}, {_p(last['ci_high'])}]"
                if last["count"] else f"{label}: none of {n:,} (95 % bound {_p(last['ci_high'])})")
        if key == "nuclear_test":
            text += "\n(known per calendar year)"
        shown = c["p"].where(c["p"] > 0)  # a log axis cannot show 0: the curve starts at the first event
        ax.plot(c["date"], shown, color=colour, ls=style, marker=marker, ms=4, lw=1.8, label=text)
        ax.fill_between(c["date"], np.maximum(c["ci_low"], floor), c["ci_high"], color=colour,
                        alpha=0.18, lw=0, step="post" if key != "nuclear_test" else None)
    ax.set_yscale("log")
    ax.set_ylim(floor, 1.5)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_locator(mticker.NullLocator())  # decades suffice; minor ticks cost time
    reached = ts["p_rung_at_least_missile_test"].to_numpy() >= 1.0
    lower = (f"every replication had reached 'missile test' by {dates[int(reached.argmax())].date()}"
             if reached.any() else
             f"a share {_p(ts['p_rung_at_least_missile_test'].iloc[-1])} reached 'missile test'")
    note = (f"Not drawn: the ladder's rungs 1-2 (rhetoric, missile test): {lower}. Share whose "
            f"highest rung reached 'nuclear test' or higher (a test or a clash) by the horizon: "
            f"{_p(ts['p_rung_at_least_nuclear_test'].iloc[-1])}.")
    ax.text(1.01, 0.0, textwrap.fill(note, 44), transform=ax.transAxes, fontsize=7, va="bottom",
            color="#444444")
    ax.set_ylabel("share of replications\n(log scale)", fontsize=9)
    ax.set_title(f"(a) Rare events: share of replications in which it has happened by each date; "
                 f"bands: 95 % Wilson interval (n = {n:,})", fontsize=9, loc="left")
    if marks is not None and len(marks):
        for kind, label, marker in (("nuclear_test", "record: DPRK nuclear test", "v"),
                                    ("border_incident", "record: border incident (DMZ/NLL)", "|")):
            when = marks.loc[marks["type"] == kind, "date"]
            if len(when):
                ax.plot(when, np.full(len(when), 0.04), transform=ax.get_xaxis_transform(),
                        ls="none", marker=marker, ms=6, color=RECORD_COLOUR, label=label)
    # (b) launch days per month
    ax = axes["launches"]
    monthly = simulated_monthly_launches(ts).to_frame()
    mid = monthly.index.to_timestamp() + pd.Timedelta(days=14)
    on = ts["exercise_intensity"].to_numpy() > 0
    ax.fill_between(np.r_[dates, end], 0, 1, where=np.r_[on, on[-1]], step="post",
                    transform=ax.get_xaxis_transform(), color=EXERCISE_COLOUR, alpha=0.35, lw=0,
                    label="combined exercise (weeks)")
    band = getattr(results, "monthly", None)
    if band is not None:
        band = band.set_index(band["month"].dt.to_period("M")).reindex(monthly.index)
        monthly["simulated_q05"], monthly["simulated_q95"] = band["q05"], band["q95"]
        ax.fill_between(mid, monthly["simulated_q05"], monthly["simulated_q95"], color=LAUNCH_COLOUR,
                        alpha=0.15, lw=0, step="mid", label="model: 5-95 % of replications")
    ax.plot(mid, monthly["simulated_mean"], color=LAUNCH_COLOUR, lw=1.6,
            label="model: mean over replications")
    if record is not None:
        monthly = monthly.join(record, how="left")
        at = record.index.to_timestamp() + pd.Timedelta(days=14)
        ax.plot(at, record["launch_days"], ls="none", marker="o", ms=4, color=RECORD_COLOUR,
                label="record: launch days")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("launch days\nper month", fontsize=9)
    ax.set_title("(b) DPRK launch days per month" + (" against the record (data/events.csv)"
                                                     if record is not None else ""),
                 fontsize=9, loc="left")

    # (c) tension, (d) belief
    for name, var, colour, label in (("tension", "tension", TENSION_COLOUR,
                                      "(c) Tension (index, 0 = calm)"),
                                     ("belief", "dprk_belief", BELIEF_COLOUR,
                                      "(d) DPRK belief that the US is resolute")):
        ax = axes[name]
        ax.fill_between(dates, ts[f"{var}_q05"], ts[f"{var}_q95"], color=colour, alpha=0.2, lw=0,
                        label="5-95 % of replications")
        ax.plot(dates, ts[f"{var}_q50"], color=colour, lw=1.5, label="median")
        ax.plot(dates, ts[f"{var}_mean"], color="black", lw=0.9, ls="--", label="mean")
        ax.set_title(label, fontsize=9, loc="left")
    axes["belief"].set_ylim(0, 1)
    axes["tension"].set_ylabel("tension", fontsize=9)
    axes["belief"].set_ylabel("P(US resolute)", fontsize=9)

    # One date axis, labelled at the bottom only. The panels do not share it: each would build its
    # own year ticks (matplotlib's ticks were the largest cost of this figure); the upper panels
    # get the year lines as one collection instead.
    years = mdates.YearLocator(base=max(1, round((end - start).days / 3650))).tick_values(start, end)
    years = years[(years >= mdates.date2num(start)) & (years <= mdates.date2num(end))]
    for name in panels:
        ax = axes[name]
        ax.set_xlim(start, end)
        if name == panels[-1]:
            ax.xaxis.set_major_locator(mticker.FixedLocator(years))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
            ax.grid(alpha=0.3, lw=0.6)
        else:
            ax.xaxis.set_major_locator(mticker.NullLocator())
            if name != "periods":
                ax.vlines(years, 0, 1, transform=ax.get_xaxis_transform(), color="#b0b0b0",
                          alpha=0.3, lw=0.6, zorder=0)
                ax.grid(axis="y", alpha=0.3, lw=0.6)
        if name != "periods":
            ax.legend(**legend)
        ax.tick_params(labelsize=8)
    fig.suptitle("\n".join(title_lines), fontsize=9.5, x=0.075, y=1 - 0.12 / height, ha="left",
                 va="top")
    if path is not None:
        # zlib level 1: about a third of the figure's time went into level-6 compression, for a
        # file only about a tenth smaller
        fig.savefig(path, dpi=dpi, pil_kwargs={"compress_level": 1})
        plt.close(fig)
    return EscalationFigure(figure=fig, axes=axes, title=title, rare=rare, monthly=monthly)


def _p(x: float) -> str:
    """A probability for a legend: three decimals, or two significant digits below 0.01."""
    return f"{x:.3f}" if x >= 0.01 or x == 0 else f"{x:.2g}"


def run_title(results: Results) -> str:
    """The figure's title: scenario, window, credibility, spiral weight, replications and seed, and
    the posture, or for a run with posture periods (a replay) every period's posture and start."""
    cfg = results.config
    sc = cfg.scenario
    start = pd.Timestamp(sc.start)
    end = start + pd.Timedelta(weeks=sc.weeks)
    periods = _periods_in_horizon(sc.posture_periods, start, end)
    head = (f"Scenario '{sc.name}', {start.date()} to {(end - pd.Timedelta(days=1)).date()}; "
            f"credibility {cfg.credibility:g}, spiral weight {cfg.params.spiral_weight:.3g}, "
            f"{cfg.replications:,} replications, seed {cfg.seed}")
    if periods:
        return head + "\nUS postures by period: " + ", ".join(
            f"{p.posture.value} from {a.date()}" for p, a, _ in periods)
    return head + f"\nUS posture: {cfg.policy.name.value} throughout"


def canonical(obj):
    """``obj`` as it reads back from JSON (dates and enums as strings), so stored and fresh
    identities compare equal."""
    return json.loads(json.dumps(obj, default=str))


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_manifest(folder: Path, identity: dict, files: tuple[str, ...] = CHECKED_FILES) -> Path:
    """Write ``manifest.json`` into ``folder``: the SHA-256 and size of each of ``files`` (the run
    files written, all of :data:`CHECKED_FILES` by default), and the identity of the run that made
    them."""
    files = {name: {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size}
             for name in files}
    path = folder / MANIFEST
    path.write_text(json.dumps({"identity": canonical(identity), "files": files}, indent=2) + "\n")
    return path


def verify_run(folder: str | os.PathLike, identity: dict | None = None,
               figure: bool = False) -> str | None:
    """Why ``folder`` is not a finished run (of ``identity``, if given), or None if it is.

    A finished run has ``manifest.json``, which lists at least :data:`DATA_FILES` (and
    ``escalation.png`` when ``figure`` is asked for), and every file it lists matches its SHA-256
    there.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
    except FileNotFoundError:
        return f"no {MANIFEST} (the run did not finish, or an older dsim wrote it)"
    except (OSError, ValueError) as exc:
        return f"{MANIFEST} cannot be read ({type(exc).__name__})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        return f"{MANIFEST} is not a dsim manifest"
    if identity is not None and manifest.get("identity") != canonical(identity):
        return "it was computed with other settings"
    if figure and FIGURE not in files:
        return f"it has no {FIGURE} (written without the figure)"
    for name in (*DATA_FILES, *(n for n in CHECKED_FILES if n in files and n not in DATA_FILES)):
        entry = files.get(name)
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(expected, str):
            return f"{MANIFEST} has no checksum for {name}"
        try:
            digest = _sha256(folder / name)
        except OSError:
            return f"{name} is missing or unreadable"
        if digest != expected:
            return f"{name} does not match its checksum in {MANIFEST}"
    return None


def remove_stale_staging(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.partial-*`` staging folders in ``folder`` that no live writer holds (left by a
    killed run); return them. Nothing else is touched, and a staging folder in use is kept."""
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(STAGING_PREFIX)
                      and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for path in candidates:
        try:
            with open(path / _LOCK, "a") as lock:
                if fcntl is not None:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a live writer holds it
                shutil.rmtree(path)
        except OSError:
            continue  # vanished meanwhile or not ours to remove: leave it
        log.info("removed stale staging folder %s", path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def staging_folder(parent: Path) -> Iterator[Path]:
    """A new locked ``.partial-*`` folder in ``parent`` (stale ones removed first); removed on exit."""
    remove_stale_staging(parent)
    path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
    try:
        with open(path / _LOCK, "w") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_run(results: Results, out_dir: str | os.PathLike, figure: bool = True) -> dict:
    """Write the run files into ``out_dir`` atomically, ``manifest.json`` last; return the summary.

    ``figure=False`` leaves out ``escalation.png`` (a sweep's points, by default: drawing it took
    most of a point's writing time) and removes one left by an earlier run, which would not match
    the new data. An earlier manifest is removed before any file is replaced, so a folder caught
    between two writes never passes :func:`verify_run`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = CHECKED_FILES if figure else DATA_FILES
    with staging_folder(out) as staging:
        results.timeseries.to_parquet(staging / "timeseries.parquet", index=False)
        results.replications.to_parquet(staging / "replications.parquet", index=False)
        summary = summary_dict(results)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if figure:
            plot_escalation(results, staging / FIGURE)
        write_manifest(staging, results.config.identity(), files)
        (out / MANIFEST).unlink(missing_ok=True)
        if not figure:
            (out / FIGURE).unlink(missing_ok=True)
        for name in files:
            os.replace(staging / name, out / name)
        os.replace(staging / MANIFEST, out / MANIFEST)
    return summary
