"""The explorer's computations, without Solara: runs with progress and cancellation, paired
comparisons, the documented record for the historical view, and the download files.

Everything here goes through the library's API (:class:`sim.model.DeterrenceModel`,
:func:`sim.metrics.replication_metrics`, :func:`sim.sweep.paired_difference`,
:func:`sim.outputs.write_run`, :func:`sim.events.load_events`), so the page shows what ``dsim``
writes.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from cachetools import LRUCache

from ..calendar import week_years
from ..events import default_events_path, load_events, yearly_counts
from ..history import record_monthly_launches
from ..metrics import METRIC_UNITS, headline_metrics, replication_metrics
from ..model import DeterrenceModel
from ..outputs import RUN_FILES, simulated_monthly_launches, write_run
from ..params import RunConfig
from ..recording import Results
from ..sweep import paired_difference


class Cancelled(Exception):
    """The run was cancelled (the user pressed Cancel, or moved a control and a newer run began)."""


@dataclass
class Progress:
    """Reports progress at most every ``interval`` seconds (a week takes about a millisecond; the
    page need not redraw a thousand times a second) and asks whether to stop."""

    report: Callable[[float], None] | None = None
    stop: Callable[[], bool] | None = None
    interval: float = 0.1
    _last: float = 0.0

    def __call__(self, fraction: float) -> None:
        if self.stop is not None and self.stop():
            raise Cancelled
        now = time.monotonic()
        if self.report is not None and (now - self._last >= self.interval or fraction >= 1.0):
            self._last = now
            self.report(fraction)


def simulate(config: RunConfig, progress: Callable[[float], None] | None = None) -> Results:
    """Run ``config`` week by week, calling ``progress(fraction done)`` after each week.

    The same steps as :func:`sim.run` (a Mesa model stepped over the scenario's weeks, then its
    recorder's results), so the results are identical; ``progress`` may raise :class:`Cancelled`
    to stop between two weeks.
    """
    model = DeterrenceModel(config)
    n = model.n_weeks
    for week in range(n):
        model.step()
        if progress is not None:
            progress((week + 1) / n)
    return model.recorder.results()


def _key(config: RunConfig) -> str:
    return json.dumps(config.identity(), sort_keys=True, default=str)


class RunCache:
    """Finished runs of this server, by the settings that change results (:meth:`RunConfig.identity`).

    A run is deterministic given its config, so going back to a setting, or comparing against the
    run already shown, costs nothing. Cancelled runs are not kept. Shared by all browser sessions.
    """

    def __init__(self, maxsize: int = 12) -> None:
        self._cache: LRUCache = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def get(self, config: RunConfig) -> Results | None:
        with self._lock:
            return self._cache.get(_key(config))

    def run(self, config: RunConfig, progress: Callable[[float], None] | None = None) -> Results:
        hit = self.get(config)
        if hit is not None:
            if progress is not None:
                progress(1.0)
            return hit
        results = simulate(config, progress)
        with self._lock:
            self._cache[_key(config)] = results
        return results


CACHE = RunCache()


def run_many(configs: list[RunConfig], progress: Callable[[float], None] | None = None,
             cache: RunCache = CACHE) -> list[Results]:
    """Run several configs one after the other, with one progress bar over all their weeks."""
    total = sum(c.scenario.weeks for c in configs) or 1
    done = 0
    out = []
    for cfg in configs:
        base = done

        def part(fraction: float, base: int = base, weeks: int = cfg.scenario.weeks) -> None:
            if progress is not None:
                progress((base + fraction * weeks) / total)

        out.append(cache.run(cfg, part))
        done += cfg.scenario.weeks
    return out


# ---------------------------------------------------------------------------- tables
def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def metrics_table(results: Results) -> pd.DataFrame:
    """The headline metrics of ``summary.json`` (:func:`sim.metrics.headline_metrics`) as rows:
    estimate, 95 % interval of the estimate, and the 2.5-97.5 % range across replications."""
    rows = []
    for name, m in headline_metrics(results.replications).items():
        estimate = m.get("mean", m.get("estimate"))
        rng = m.get("range95")
        rows.append({
            "metric": name,
            "unit": METRIC_UNITS.get(name, "probability"),
            "estimate": _fmt(estimate),
            "95% interval": f"{_fmt(m['ci95'][0])} to {_fmt(m['ci95'][1])}",
            "2.5-97.5% of replications": f"{_fmt(rng[0])} to {_fmt(rng[1])}" if rng else "–",
        })
    return pd.DataFrame(rows)


def paired_differences(a: Results, b: Results) -> pd.DataFrame:
    """Every headline metric of B minus A, with a 95 % interval.

    The two runs share seed and replications, so replication i meets the same random numbers and
    the same US type in both (common random numbers) and the interval is the paired t interval of
    :func:`sim.sweep.paired_difference`, the one ``comparison.csv`` of a ``dsim -m`` sweep holds.
    """
    paired = (a.config.seed == b.config.seed and a.config.replications == b.config.replications)
    ma, mb = replication_metrics(a.replications), replication_metrics(b.replications)
    rows = []
    for metric in ma.columns:
        diff, lo, hi = paired_difference(mb[metric].to_numpy(), ma[metric].to_numpy(), paired)
        rows.append({"metric": metric, "unit": METRIC_UNITS.get(metric, "probability"),
                     "mean_a": float(ma[metric].mean()), "mean_b": float(mb[metric].mean()),
                     "difference": diff, "ci_low": lo, "ci_high": hi,
                     "significant": bool(lo > 0 or hi < 0), "paired": paired, "n": len(ma)})
    return pd.DataFrame(rows)


def differences_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`paired_differences` formatted for the page."""
    return pd.DataFrame({
        "metric": table["metric"], "unit": table["unit"],
        "A": [_fmt(x) for x in table["mean_a"]], "B": [_fmt(x) for x in table["mean_b"]],
        "B - A": [_fmt(x) for x in table["difference"]],
        "95% interval": [f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(table["ci_low"], table["ci_high"],
                                                                         strict=True)],
        "clear?": ["yes" if s else "no" for s in table["significant"]],
    })


# ---------------------------------------------------------------------------- the record
@dataclass
class Record:
    """The documented events of the replayed period, on the simulation's weekly calendar."""

    events: pd.DataFrame  # rows of data/events.csv inside the period
    monthly: pd.DataFrame  # per month: launch days and launch weeks (sim.history.record_monthly_launches)
    yearly: pd.DataFrame  # per year: data/events.csv counts (sim.events.yearly_counts)


def record_for(config: RunConfig, path: str | Path | None = None) -> Record:
    """The record (``data/events.csv``) over the simulated period of ``config``.

    Launch weeks (weeks of the simulation's calendar with at least one documented launch day) are
    the model's counterpart, since it takes at most one action a week (docs/model.md, section 9):
    per month from :func:`sim.history.record_monthly_launches`, per year from
    :func:`sim.events.yearly_counts`, both counted as the model's own calibration counts them.
    """
    events = load_events(path or default_events_path())
    start = pd.Timestamp(config.scenario.start)
    end = start + pd.Timedelta(weeks=config.scenario.weeks)
    inside = events[(events["date"] >= start) & (events["date"] < end)].reset_index(drop=True)
    years = sorted(set(week_years(config.scenario.start, config.scenario.weeks).tolist()))
    return Record(events=inside,
                  monthly=record_monthly_launches(events, str(start.date()), config.scenario.weeks),
                  yearly=yearly_counts(events, years, week_start=str(config.scenario.start)))


def simulated_monthly(results: Results) -> pd.DataFrame:
    """Mean launch days (:func:`sim.outputs.simulated_monthly_launches`) and missiles per month
    across replications, from the weekly means."""
    ts = results.timeseries
    month = pd.to_datetime(ts["date"]).dt.to_period("M")
    return pd.DataFrame({"launch_days": simulated_monthly_launches(ts),
                         "missiles": ts["dprk_missiles"].groupby(month.to_numpy()).sum()})


SIMULATED_YEARLY = {  # record column (sim.events.yearly_counts) -> per replication-year count
    "dprk_launch_days": "dprk_launch_days",
    "dprk_missiles": "dprk_missiles",
    "dprk_nuclear_tests": "dprk_nuclear_test",
    "us_deployments": "us_deployments",
}


def simulated_yearly(results: Results) -> pd.DataFrame:
    """Per calendar year and count: mean and 5/50/95 % quantiles across replications."""
    reps = results.replications
    rows = []
    for record_col, col in SIMULATED_YEARLY.items():
        g = reps.groupby("year")[col]
        q = g.quantile([0.05, 0.5, 0.95]).unstack()
        for year in q.index:
            rows.append({"year": int(year), "count": record_col, "mean": float(g.mean()[year]),
                         "q05": float(q.loc[year, 0.05]), "q50": float(q.loc[year, 0.5]),
                         "q95": float(q.loc[year, 0.95])})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- downloads
def run_files(results: Results) -> dict[str, bytes]:
    """The files ``dsim`` writes for this run, manifest included (:func:`sim.outputs.write_run`), as bytes."""
    with tempfile.TemporaryDirectory(prefix="dsim-explore-") as tmp:
        write_run(results, tmp)
        return {name: (Path(tmp) / name).read_bytes() for name in RUN_FILES}


class LazyFiles:
    """The download files of one run, written on the first click and kept for the next ones."""

    def __init__(self, results: Results, command_line: str) -> None:
        self.results = results
        self.command_line = command_line
        self._files: dict[str, bytes] | None = None
        self._lock = threading.Lock()

    def files(self) -> dict[str, bytes]:
        with self._lock:
            if self._files is None:
                self._files = run_files(self.results)
            return self._files

    def bundle(self) -> bytes:
        """A zip of the run files and ``command.txt`` (the ``dsim`` command that reproduces them)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in self.files().items():
                zf.writestr(name, data)
            zf.writestr("command.txt", self.command_line + "\n")
        return buf.getvalue()
