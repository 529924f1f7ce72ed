"""Event-study statistics of the DPRK's launch timing and the US response, one code for the record and
the model.

The record (``data/events.csv``, :func:`sim.events.load_events`) and a simulation are both turned into
a :class:`WeeklySeries` on the simulation's weekly calendar (week ``k`` covers ``start + 7k`` to
``start + 7k + 6``, :func:`sim.calendar.week_of`); :func:`timing_statistics` then computes the same
quantities from either:

* ``exercise_launch_ratio``: the share of combined-exercise weeks (scale > 0) with at least one DPRK
  launch day, over the share of the other weeks; ``_full`` and ``_reduced``: the same for full-scale
  (scale >= 1) and reduced (0 < scale < 1) exercise weeks against the weeks without an exercise
  (launch days during Key Resolve/Foal Eagle, 10 and 18 Mar 2016 and 6 and 22 Mar 2017, and during
  Vigilant Storm, 2, 3 and 5 Nov 2022, are rows of data/events.csv).
* ``post_arrival_launch_ratio``: the share of weeks 1-4 after a US strategic-asset arrival week (the
  arrival week itself not included) with a launch, over the share of all other weeks.
* ``deployment_within_1_week``, ``deployment_within_4_weeks``: the share of major-provocation weeks
  (long-range launch or nuclear test, :func:`sim.events.is_major_provocation`) with a US arrival in
  the same week or the next 1 (4) weeks. A major provocation whose window runs past the last week is
  censored and left out of the share.
* ``consultation_launch_ratio``: the share of weeks with an allied consultation or summit, or the week
  after one, with a launch, over the share of the other weeks.

Ratios compare shares of weeks with a launch (not launch-day counts), so one busy week does not
dominate; a ratio with no window weeks, no other weeks or no launch in the other weeks is ``nan``.
Pooled over several series (replications) the shares are of all their weeks together, so a
simulation's value is its ensemble's.

Uncertainty: :func:`record_intervals` gives percentile bootstrap intervals (Efron & Tibshirani 1993,
*An Introduction to the Bootstrap*, ch. 13) with ``scipy.stats.bootstrap``, resampling weeks; each
week keeps the window flags it has in the original sequence. For a ratio the window weeks and the
other weeks are resampled separately (the two-sample bootstrap, Efron & Tibshirani 1993, ch. 8), so
every resample has the observed number of each; for a deployment share the major-provocation weeks
are resampled. Weeks are treated as independent; where launches cluster over consecutive weeks (as
in 2022, data/events.csv) the intervals are likely too narrow, and a moving-block bootstrap (Kuensch
1989, Annals of Statistics 17(3)) would be the check (not done here). :func:`simulated_ranges`
gives the spread of each statistic across single replications: the range in which one simulated
history's value falls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from .calendar import week_of
from .events import is_major_provocation

POST_ARRIVAL_WEEKS = 4  # weeks 1..4 after an arrival week
RESPONSE_WEEKS = (1, 4)  # deployment_within_1_week, deployment_within_4_weeks
CONSULTATION_TYPES = ("consultation", "summit")


class Statistic(NamedTuple):
    name: str
    kind: str  # "ratio" (of two shares of weeks with a launch) or "share"
    label: str  # plain description, for tables and figures


STATISTICS = (
    Statistic("exercise_launch_ratio", "ratio",
              "Launch-week share in combined-exercise weeks / in other weeks"),
    Statistic("exercise_launch_ratio_full", "ratio",
              "Launch-week share in full-scale exercise weeks / in weeks without an exercise"),
    Statistic("exercise_launch_ratio_reduced", "ratio",
              "Launch-week share in reduced-scale exercise weeks / in weeks without an exercise"),
    Statistic("post_arrival_launch_ratio", "ratio",
              "Launch-week share 1-4 weeks after a US strategic-asset arrival / in other weeks"),
    Statistic("deployment_within_1_week", "share",
              "Share of major-provocation weeks with a US arrival the same or the next week"),
    Statistic("deployment_within_4_weeks", "share",
              "Share of major-provocation weeks with a US arrival the same week or within 4 weeks"),
    Statistic("consultation_launch_ratio", "ratio",
              "Launch-week share in weeks with a consultation or summit or the week after / in other weeks"),
)
STATISTIC_NAMES = tuple(s.name for s in STATISTICS)


@dataclasses.dataclass(frozen=True)
class WeeklySeries:
    """Weekly event indicators of ``S`` series (1 for the record, one per replication for a run) on
    one weekly calendar of ``W`` weeks from ``week_start``.

    ``launch_days`` (S, W) int: DPRK launch days per week; ``arrival`` (S, W) bool: a US
    strategic-asset arrival that week; ``major`` (S, W) bool: a major provocation (long-range launch
    or nuclear test) that week; ``exercise`` (W,) float: the combined-exercise scale in force that week
    (0 if none); ``consultation`` (W,) bool: an allied consultation or summit that week. The arrays are
    stored as read-only copies.
    """

    launch_days: np.ndarray
    arrival: np.ndarray
    major: np.ndarray
    exercise: np.ndarray
    consultation: np.ndarray
    week_start: dt.date

    def __post_init__(self) -> None:
        launch = np.array(self.launch_days)
        if launch.ndim != 2:
            raise ValueError(f"WeeklySeries: launch_days must be (series, weeks), got shape {launch.shape}")
        if not np.issubdtype(launch.dtype, np.integer) or (launch < 0).any():
            raise ValueError("WeeklySeries: launch_days must be whole numbers >= 0")
        fields = {"launch_days": launch.astype(np.int64)}
        for name in ("arrival", "major"):
            a = np.array(getattr(self, name))
            if a.shape != launch.shape:
                raise ValueError(f"WeeklySeries: {name} has shape {a.shape}, launch_days {launch.shape}")
            fields[name] = a.astype(bool)
        exercise = np.array(self.exercise, dtype=float)
        consultation = np.array(self.consultation).astype(bool)
        for name, a in (("exercise", exercise), ("consultation", consultation)):
            if a.shape != launch.shape[1:]:
                raise ValueError(f"WeeklySeries: {name} has shape {a.shape}, expected ({launch.shape[1]},)")
        if not (np.isfinite(exercise) & (exercise >= 0)).all():
            raise ValueError("WeeklySeries: exercise scales must be finite and >= 0")
        fields.update(exercise=exercise, consultation=consultation)
        for name, a in fields.items():
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        object.__setattr__(self, "week_start", _as_date(self.week_start))

    @property
    def n_series(self) -> int:
        return self.launch_days.shape[0]

    @property
    def n_weeks(self) -> int:
        return self.launch_days.shape[1]

    def select(self, rows: slice | np.ndarray | list[int]) -> WeeklySeries:
        """The series ``rows`` (the calendar is shared)."""
        return dataclasses.replace(self, launch_days=self.launch_days[rows], arrival=self.arrival[rows],
                                   major=self.major[rows])


def _as_date(day: str | dt.date | pd.Timestamp) -> dt.date:
    return pd.Timestamp(day).date()


# ---------------------------------------------------------------------------------------- building
def record_series(events: pd.DataFrame, start: str | dt.date, weeks: int,
                  consultation_types: tuple[str, ...] = CONSULTATION_TYPES) -> WeeklySeries:
    """The record (``data/events.csv`` as :func:`sim.events.load_events` returns it) on the
    simulation's weekly calendar: ``weeks`` weeks from ``start``, week of a day as
    :func:`sim.calendar.week_of` gives it (the model's mapping). Rows outside the window are ignored.

    * launch days: distinct dates of DPRK ``launch_day`` rows in the week;
    * arrival: an ``asset_deployment`` row dated in the week (its first day; a stay's end is ignored);
    * major: :func:`sim.events.is_major_provocation` (nuclear tests and long-range launch days);
    * exercise: the largest ``scale`` of the ``combined_exercise`` rows whose [date, end_date]
      overlaps the week (a row without end_date covers its date's week); 0 if none;
    * consultation: a row of ``consultation_types`` (consultations and summits) dated in the week.
    """
    start = _as_date(start)
    if weeks < 1:
        raise ValueError(f"record_series: weeks must be >= 1, got {weeks}")

    def week(day: pd.Timestamp) -> int:
        return week_of(start, day.date())

    launch_days = np.zeros(weeks, dtype=np.int64)
    arrival = np.zeros(weeks, dtype=bool)
    major = np.zeros(weeks, dtype=bool)
    exercise = np.zeros(weeks)
    consultation = np.zeros(weeks, dtype=bool)
    is_launch = (events["actor"] == "DPRK") & (events["type"] == "launch_day")
    for day in events.loc[is_launch, "date"].drop_duplicates():
        if 0 <= (k := week(day)) < weeks:
            launch_days[k] += 1
    for flags, mask in ((arrival, events["type"] == "asset_deployment"),
                        (major, is_major_provocation(events)),
                        (consultation, events["type"].isin(consultation_types))):
        for day in events.loc[mask, "date"]:
            if 0 <= (k := week(day)) < weeks:
                flags[k] = True
    for row in events[events["type"] == "combined_exercise"].itertuples(index=False):
        first = week(row.date)
        last = week(row.date if pd.isna(row.end_date) else row.end_date)
        lo, hi = max(first, 0), min(last, weeks - 1)
        if lo <= hi:
            exercise[lo:hi + 1] = np.maximum(exercise[lo:hi + 1], row.scale)
    return WeeklySeries(launch_days[None], arrival[None], major[None], exercise, consultation, start)


def simulated_series(detail: Mapping[str, np.ndarray], timeseries: pd.DataFrame,
                     week_start: str | dt.date) -> WeeklySeries:
    """A simulation's replications as series: ``detail`` holds the per-replication weekly arrays
    ``launch_days`` (W, R) (launch days), ``arrival`` (W, R) (a US strategic-asset arrival, scheduled or
    surge) and ``major`` (W, R) (an LRBM launch or a nuclear test); ``timeseries`` is the run's weekly
    table, whose calendar columns give ``exercise_intensity`` (the model's exercise intensity, the sum
    of the running exercises' scales times the scenario's exercise scale) and ``consultation``.
    Where exercises overlap, that sum can exceed the largest scale that :func:`record_series` takes
    (two reduced exercises add up to a full one), so the calibration puts the simulation on the
    record's own calendar instead (:func:`sim.calibrate.simulated_on_calendar`).
    """
    missing = [k for k in ("launch_days", "arrival", "major") if k not in detail]
    if missing:
        raise ValueError(f"simulated_series: detail lacks {', '.join(missing)}")
    cols = [c for c in ("exercise_intensity", "consultation") if c not in timeseries.columns]
    if cols:
        raise ValueError(f"simulated_series: the timeseries lacks the column(s) {', '.join(cols)}")
    arrays = {k: np.asarray(detail[k]) for k in ("launch_days", "arrival", "major")}
    n_weeks = len(timeseries)
    for k, a in arrays.items():
        if a.ndim != 2 or a.shape[0] != n_weeks:
            raise ValueError(f"simulated_series: {k} has shape {a.shape}, expected ({n_weeks}, replications)")
    return WeeklySeries(
        launch_days=arrays["launch_days"].T.astype(np.int64), arrival=arrays["arrival"].T,
        major=arrays["major"].T, exercise=timeseries["exercise_intensity"].to_numpy(dtype=float),
        consultation=timeseries["consultation"].to_numpy(dtype=float) > 0, week_start=week_start)


# ---------------------------------------------------------------------------------------- windows
def _after(flags: np.ndarray, weeks: int) -> np.ndarray:
    """(S, W): True in weeks 1..``weeks`` after a flagged week (not the flagged week itself)."""
    padded = np.pad(flags, ((0, 0), (weeks, 0)))
    return sliding_window_view(padded, weeks, axis=1)[:, : flags.shape[1]].any(axis=-1)


def _within(flags: np.ndarray, weeks: int) -> np.ndarray:
    """(S, W): True where a flagged week falls in the same week or the next ``weeks`` weeks."""
    padded = np.pad(flags, ((0, 0), (0, weeks)))
    return sliding_window_view(padded, weeks + 1, axis=1)[:, : flags.shape[1]].any(axis=-1)


def _comparisons(series: WeeklySeries) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each ratio statistic: the (S, W) window weeks and the (S, W) weeks it is compared with."""
    shape = series.launch_days.shape
    ex = series.exercise
    none = np.broadcast_to(ex == 0, shape)
    after_arrival = _after(series.arrival, POST_ARRIVAL_WEEKS)
    consult = series.consultation.copy()
    consult[1:] |= series.consultation[:-1]  # the week of a consultation and the week after
    consult = np.broadcast_to(consult, shape)
    return {
        "exercise_launch_ratio": (~none, none),
        "exercise_launch_ratio_full": (np.broadcast_to(ex >= 1, shape), none),
        "exercise_launch_ratio_reduced": (np.broadcast_to((ex > 0) & (ex < 1), shape), none),
        "post_arrival_launch_ratio": (after_arrival, ~after_arrival),
        "consultation_launch_ratio": (consult, ~consult),
    }


def _responses(series: WeeklySeries, weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, W) major-provocation weeks whose window of ``weeks`` weeks lies inside the series, and
    whether an arrival followed in it."""
    eligible = series.major.copy()
    eligible[:, max(series.n_weeks - weeks, 0):] = False  # censored: the window runs past the end
    return eligible, _within(series.arrival, weeks)


def _response_name(weeks: int) -> str:
    return f"deployment_within_{weeks}_week" + ("s" if weeks > 1 else "")


def _ratio(num_w, den_w, num_b, den_b):
    """(num_w / den_w) / (num_b / den_b), nan where a denominator or the base share is 0."""
    num_w, den_w, num_b, den_b = (np.asarray(x, dtype=float) for x in (num_w, den_w, num_b, den_b))
    ok = (den_w > 0) & (den_b > 0) & (num_b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, (num_w / den_w) / (num_b / den_b), np.nan)


def _share(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _tallies(series: WeeklySeries) -> dict[str, tuple[np.ndarray, ...]]:
    """Per series (arrays of length S): for a ratio (window weeks with a launch, window weeks, other
    weeks with a launch, other weeks); for a share (hits, eligible major-provocation weeks)."""
    launch = series.launch_days > 0
    out: dict[str, tuple[np.ndarray, ...]] = {}
    for name, (window, base) in _comparisons(series).items():
        out[name] = ((launch & window).sum(axis=1), window.sum(axis=1),
                     (launch & base).sum(axis=1), base.sum(axis=1))
    for weeks in RESPONSE_WEEKS:
        eligible, hit = _responses(series, weeks)
        out[_response_name(weeks)] = ((eligible & hit).sum(axis=1), eligible.sum(axis=1))
    return out


def _values(tallies: dict[str, tuple[np.ndarray, ...]]) -> dict[str, np.ndarray]:
    return {s.name: (_ratio if s.kind == "ratio" else _share)(*tallies[s.name]) for s in STATISTICS}


# ---------------------------------------------------------------------------------------- statistics
def timing_statistics(series: WeeklySeries) -> dict[str, float]:
    """The event-study statistics (module docstring), pooled over all series: shares are of all the
    series' weeks together, so a simulation's value is its ensemble's. ``nan`` where undefined."""
    pooled = {k: tuple(a.sum() for a in v) for k, v in _tallies(series).items()}
    return {k: float(v) for k, v in _values(pooled).items()}


def _counts_text(series: WeeklySeries) -> dict[str, str]:
    """The pooled counts behind each statistic, in words (for the table)."""
    out = {}
    for s in STATISTICS:
        t = [int(a.sum()) for a in _tallies(series)[s.name]]
        out[s.name] = (f"{t[0]}/{t[1]} weeks vs {t[2]}/{t[3]}" if s.kind == "ratio"
                       else f"{t[0]}/{t[1]} major-provocation weeks")
    return out


def record_intervals(series: WeeklySeries, n_resamples: int = 2000, confidence: float = 0.9,
                     seed: int = 20240512) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (``scipy.stats.bootstrap``; Efron & Tibshirani 1993, ch. 13) of
    each statistic of ``series`` (the record; with several series their weeks are pooled).

    A ratio resamples its window weeks and its other weeks separately (the two-sample bootstrap,
    Efron & Tibshirani 1993, ch. 8), each week with the window flags it has in the original sequence;
    a deployment share resamples the major-provocation weeks. A resample with launches in the window
    but none in the other weeks has ratio +inf (it sorts above every finite value); a bound that is
    infinite is returned as nan (the interval is unbounded above). ``(nan, nan)`` when the statistic
    is undefined, a sample has fewer than two weeks, or some resample has no launch at all (0/0).
    Deterministic for a seed (each statistic draws from ``numpy.random.default_rng(seed)``).
    """
    launch = series.launch_days > 0
    samples: dict[str, tuple[np.ndarray, ...]] = {}
    for name, (window, base) in _comparisons(series).items():
        samples[name] = (launch[window].astype(float), launch[base].astype(float))
    for weeks in RESPONSE_WEEKS:
        eligible, hit = _responses(series, weeks)
        samples[_response_name(weeks)] = (hit[eligible].astype(float),)

    def ratio(a, b, axis=-1):
        # extended reals: a resample without a launch in the other weeks but with one in the window
        # has ratio +inf and sorts above every finite value (0/0 stays undefined)
        value = _ratio(a.sum(axis=axis), a.shape[axis], b.sum(axis=axis), b.shape[axis])
        return np.where((b.sum(axis=axis) == 0) & (a.sum(axis=axis) > 0), np.inf, value)

    def share(a, axis=-1):
        return a.mean(axis=axis)

    observed = timing_statistics(series)
    out = {}
    for s in STATISTICS:
        data = samples[s.name]
        if np.isnan(observed[s.name]) or min(len(d) for d in data) < 2:
            out[s.name] = (np.nan, np.nan)
            continue
        # a resample with an undefined value gives a nan interval; an infinite one a nan standard
        # error (not used)
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            res = stats.bootstrap(data, ratio if s.kind == "ratio" else share, n_resamples=n_resamples,
                                  vectorized=True, paired=False, confidence_level=confidence,
                                  method="percentile", rng=np.random.default_rng(seed))
        low, high = (float(x) for x in res.confidence_interval)
        out[s.name] = (low if np.isfinite(low) else np.nan, high if np.isfinite(high) else np.nan)
    return out


def simulated_ranges(series: WeeklySeries, quantiles: tuple[float, float] = (0.05, 0.95)
                     ) -> dict[str, tuple[float, float]]:
    """The ``quantiles`` of each statistic across single series (replications): the range in which
    one simulated history's value falls. Replications where the statistic is undefined are left out;
    ``(nan, nan)`` if it is undefined in all of them."""
    out = {}
    for name, values in _values(_tallies(series)).items():
        finite = values[np.isfinite(values)]
        out[name] = ((float(np.quantile(finite, quantiles[0])), float(np.quantile(finite, quantiles[1])))
                     if finite.size else (np.nan, np.nan))
    return out


def event_study_table(record_series: WeeklySeries, sim_series: WeeklySeries | None = None, *,
                      n_resamples: int = 2000, confidence: float = 0.9,
                      quantiles: tuple[float, float] = (0.05, 0.95), seed: int = 20240512) -> pd.DataFrame:
    """One row per statistic: ``observed`` (the record) with its bootstrap interval
    (``observed_low``, ``observed_high``; :func:`record_intervals`), the counts behind it
    (``observed_counts``), ``simulated`` (pooled over the replications) with the range of single
    replications (``simulated_low``, ``simulated_high``; :func:`simulated_ranges`), and ``in_fit``
    (whether the calibration fits it; False here, set by the caller). Without ``sim_series`` the
    simulated columns are nan. ``table.attrs`` holds the confidence and quantiles."""
    observed = timing_statistics(record_series)
    intervals = record_intervals(record_series, n_resamples=n_resamples, confidence=confidence, seed=seed)
    nan2 = (np.nan, np.nan)
    simulated = timing_statistics(sim_series) if sim_series is not None else {}
    ranges = simulated_ranges(sim_series, quantiles) if sim_series is not None else {}
    counts = _counts_text(record_series)
    table = pd.DataFrame([{
        "statistic": s.name, "kind": s.kind, "description": s.label,
        "observed": observed[s.name], "observed_low": intervals[s.name][0],
        "observed_high": intervals[s.name][1], "observed_counts": counts[s.name],
        "simulated": simulated.get(s.name, np.nan), "simulated_low": ranges.get(s.name, nan2)[0],
        "simulated_high": ranges.get(s.name, nan2)[1], "in_fit": False,
    } for s in STATISTICS])
    table.attrs.update(confidence=confidence, quantiles=tuple(quantiles), n_resamples=n_resamples)
    return table


# ---------------------------------------------------------------------------------------- figure
RECORD_COLOUR, MODEL_COLOUR = "#000000", "#0072B2"  # Okabe-Ito palette, as sim.outputs


def plot_event_study(table: pd.DataFrame, path: str | Path,
                     title: str = "Event study: the record against the model", *,
                     confidence: float | None = None, quantiles: tuple[float, float] | None = None) -> Path:
    """Write :func:`event_study_figure` of ``table`` to ``path`` (PNG by its suffix) and return it."""
    path = Path(path)
    event_study_figure(table, title, confidence=confidence, quantiles=quantiles).savefig(path, dpi=130)
    return path


def event_study_figure(table: pd.DataFrame, title: str = "Event study: the record against the model", *,
                       confidence: float | None = None, quantiles: tuple[float, float] | None = None):
    """One figure, one row per statistic of ``table`` (:func:`event_study_table`): the record's value
    with its bootstrap interval and the model's pooled value with the range of single replications,
    one above the other, numbers written at the right; ratios share one axis with a dashed line at 1
    (no difference), shares run from 0 to 1. The legend states ``confidence`` and ``quantiles``: by
    default those in ``table.attrs`` (lost when the table goes through JSON), else 0.9 and 5-95 %.
    A ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot state, no display needed)."""
    from matplotlib.figure import Figure

    conf = confidence if confidence is not None else table.attrs.get("confidence", 0.9)
    q = quantiles if quantiles is not None else table.attrs.get("quantiles", (0.05, 0.95))
    n = len(table)
    fig = Figure(figsize=(9.0, 1.0 + 0.95 * n), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n, 1, squeeze=False)[:, 0])
    ratio_rows = table["kind"] == "ratio"
    finite = table.loc[ratio_rows, ["observed", "observed_low", "observed_high", "simulated",
                                    "simulated_low", "simulated_high"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    ratio_max = max(2.0, 1.1 * float(finite.max())) if finite.size else 2.0
    rows = [("observed", RECORD_COLOUR, "o", f"record (data/events.csv), {conf:.0%} bootstrap interval"),
            ("simulated", MODEL_COLOUR, "s",
             f"model (all replications), {q[0]:.0%}-{q[1]:.0%} range of single replications")]
    for ax, row in zip(axes, table.itertuples(index=False), strict=True):
        is_ratio = row.kind == "ratio"
        fitted = " (in the fit)" if row.in_fit else " (not in the fit)"
        ax.set_title(row.description + fitted, fontsize=8.5, loc="left")
        for y, (col, colour, marker, label) in zip((1, 0), rows, strict=True):
            value, low, high = (getattr(row, col), getattr(row, f"{col}_low"), getattr(row, f"{col}_high"))
            if np.isfinite(low) and np.isfinite(high):
                ax.hlines(y, low, high, color=colour, lw=2.2, label=label)
            if np.isfinite(value):
                ax.plot([value], [y], marker=marker, color=colour, ls="none", ms=6)
                text = f"{value:.2f}" + (f" [{low:.2f}, {high:.2f}]" if np.isfinite(low) else "")
            else:
                text = "undefined (no weeks or no base rate)"
            ax.annotate(text, (1.005, y), xycoords=("axes fraction", "data"), fontsize=7.5,
                        va="center", color=colour)
        if is_ratio:
            ax.axvline(1.0, color="#777777", ls="--", lw=0.9, label="ratio 1: no difference")
            ax.set_xlim(0, ratio_max)
        else:
            ax.set_xlim(0, 1)
        ax.set_ylim(-0.7, 1.7)
        ax.set_yticks([1, 0], ["record", "model"], fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#dddddd", lw=0.6)
    handles: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=2, fontsize=7.5,
               frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig
