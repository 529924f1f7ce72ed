"""Forecasts from the posterior: the years after a fit, under a regime rule stated in advance.

**The regime rule** (fixed before any forecast was scored): in the forecast years *the last era and
the last US posture period of the fitted years continue* (no era or posture change that begins after
the last fitted year is known to the forecast), while *the allied calendar is known*: combined
exercises and consultations are announced months ahead, so a hindcast keeps the record's calendar,
and a forecast beyond the record (2024 on) repeats the 2023 calendar of the record, shifted by 52
weeks a year (Freedom Shield in March, Ulchi Freedom Shield in August, the consultations of
2023). The exact 2024-26 dates are not in the record; only its pattern is assumed.

**What is simulated.** The historical replay from 2016 to the end of the last forecast year, at
``blocks`` parameter sets drawn from the posterior (each block its own random numbers, pooled into
one ensemble: :mod:`sim.draws`), ``replications`` histories in all. The forecast of a year is the
distribution of its counts over the histories: the model's forecast given the calendar and the
parameters, not conditioned on the record's own path before the forecast year (the model has no
filter; docs/validation.md).

``dsim-forecast`` (configs/forecast.yaml) writes ``forecast.csv`` (``year, metric, mean, q05, q50,
q95`` for ``launch_days`` and ``missiles``), ``forecast_samples.parquet`` (every history's counts)
and ``forecast.png`` (a fan chart after the record) into its run folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from .history import END, START, historical_scenario
from .params import ConfigError, ModelParams, PolicyConfig, Posture, RunConfig, ScenarioConfig

__all__ = ["ForecastConfig", "forecast_scenario", "run_forecast", "simulate_counts", "summarise"]
METRICS = {"launch_days": "dprk_launch_days", "missiles": "dprk_missiles"}
LAST_RECORD_YEAR = int(END[:4])


def forecast_scenario(events: pd.DataFrame, last_fitted: int, through: int,
                      drives: dict[str, float] | None = None) -> ScenarioConfig:
    """The historical replay from 2016 to the end of ``through`` under the regime rule (module
    docstring): eras and posture periods that begin after ``last_fitted`` are dropped, the record's
    calendar is kept, and after the record the 2023 calendar repeats every 52 weeks."""
    base = historical_scenario(events, drives)
    cut = dt.date(last_fitted, 12, 31)
    eras = [e for e in base.eras if dt.date.fromisoformat(e.start_date) <= cut]
    periods = [p for p in base.posture_periods if dt.date.fromisoformat(p.start_date) <= cut]
    dated = list(base.dated_events)
    last_year_events = [e for e in dated if e.date.startswith(str(LAST_RECORD_YEAR))]
    for k, year in enumerate(range(LAST_RECORD_YEAR + 1, through + 1), start=1):
        del year
        for e in last_year_events:
            shifted = dt.date.fromisoformat(e.date) + dt.timedelta(weeks=52 * k)
            dated.append(dataclasses.replace(e, date=shifted.isoformat(), name=f"{e.name}_{shifted.year}"))
    start = dt.date.fromisoformat(START)
    weeks = (dt.date(through, 12, 31) - start).days // 7 + 1
    return dataclasses.replace(base, eras=eras, posture_periods=periods, dated_events=dated, weeks=weeks)


def simulate_counts(draws: pd.DataFrame, scenario: ScenarioConfig, years: list[int], *, replications: int,
                    blocks: int, seed: int, credibility: float = 0.7,
                    policy: PolicyConfig | None = None, monthly: bool = False) -> pd.DataFrame:
    """Counts of DPRK launch days and missiles in ``years`` for every history of the replay
    ``scenario`` at ``blocks`` posterior draws (weights, seed ``seed``). Long format (the columns of
    :mod:`sim.validation`): ``metric, resolution, year, month, draw, value`` plus ``posterior_row``;
    ``draw`` numbers the histories, shared by all targets. With ``monthly``, also per month."""
    if replications % blocks:
        raise ConfigError(f"replications={replications} must be a multiple of blocks={blocks}")
    from .draws import batch_of, draw_rows

    rows = draw_rows(draws, blocks, seed)
    batch = batch_of(draws, rows, {e.name for e in scenario.eras})
    r = replications // blocks
    config = RunConfig(credibility=credibility, replications=r, seed=int(seed), progress=False,
                       policy=policy or PolicyConfig(name=Posture.reactive), scenario=scenario,
                       params=ModelParams())
    from .model import DeterrenceModel

    model = DeterrenceModel(config, batch=batch, weekly=False, detail=monthly, independent=True)
    model.simulate()  # only the replications table and the detail are read
    reps = model.recorder.replications_table()
    block = reps["block"].to_numpy() if "block" in reps else np.zeros(len(reps), dtype=int)
    draw_id = block * r + reps["replication"].to_numpy()
    out = []
    keep = reps["year"].isin(years).to_numpy()
    for metric, column in METRICS.items():
        out.append(pd.DataFrame({"metric": metric, "resolution": "year",
                                 "year": reps["year"].to_numpy()[keep],
                                 "month": 0, "draw": draw_id[keep],
                                 "value": reps[column].to_numpy()[keep].astype(float),
                                 "posterior_row": rows[block[keep]]}))
    if monthly:
        out.append(_monthly_counts(model.recorder.detail, scenario, years, rows, r))
    frame = pd.concat(out, ignore_index=True)
    return frame.sort_values(["metric", "resolution", "year", "month", "draw"], kind="stable",
                             ignore_index=True)


def _monthly_counts(detail: dict, scenario: ScenarioConfig, years: list[int], rows: np.ndarray,
                    r: int) -> pd.DataFrame:
    """Launch days and missiles per calendar month (a week counts in the month of its first day, as
    the record's monthly counts and the replay's yearly counts do)."""
    from .calendar import week_dates

    dates = pd.DatetimeIndex(week_dates(scenario.start, scenario.weeks))
    frames = []
    for metric, key in (("launch_days", "launch_days"), ("missiles", "missiles")):
        weekly = detail[key].astype(float)  # (weeks, n)
        for year in years:
            for month in range(1, 13):
                sel = (dates.year == year) & (dates.month == month)
                values = weekly[sel].sum(axis=0)
                n = values.size
                frames.append(pd.DataFrame({"metric": metric, "resolution": "month", "year": year,
                                            "month": month, "draw": np.arange(n), "value": values,
                                            "posterior_row": rows[np.arange(n) // r]}))
    return pd.concat(frames, ignore_index=True)


def summarise(samples: pd.DataFrame) -> pd.DataFrame:
    """``year, metric, mean, q05, q50, q95`` of the yearly samples."""
    yearly = samples[samples["resolution"] == "year"]
    g = yearly.groupby(["year", "metric"], sort=True)["value"]
    out = pd.DataFrame({"mean": g.mean(), "q05": g.quantile(0.05), "q50": g.quantile(0.5),
                        "q95": g.quantile(0.95)}).reset_index()
    return out


# ---------------------------------------------------------------------------- dsim-forecast
@dataclass(frozen=True)
class ForecastConfig:
    """``dsim-forecast`` (configs/forecast.yaml): forecasts after the record from the posterior."""

    # The posterior draws (dsim-calibrate method=posterior): relative to dsim's configs/ folder or
    # the working folder, or absolute.
    draws: str = "params/posterior_draws.parquet"
    events_file: str = "data/events.csv"  # the event record (its calendar; the record itself ends in 2023)
    years: List[int] = field(default_factory=lambda: [2024, 2025, 2026])  # forecast years, after 2023
    replications: int = 4000  # simulated histories in all
    blocks: int = 200  # posterior draws (replications must be a multiple)
    seed: int = 20161220  # the model's seed (and the draws' choice)
    credibility: float = 0.7  # probability that the US is resolute, as in the calibration
    # cadence and costs of the replay's postures (configs/policy/), as in the calibration
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(name=Posture.reactive))
    progress: bool = True  # unused for now: the run takes seconds

    def __post_init__(self) -> None:
        years = list(self.years)
        if not years or any(not isinstance(y, int) or isinstance(y, bool) for y in years):
            raise ConfigError(f"years={years} must list whole years after {LAST_RECORD_YEAR}")
        if (min(years) <= LAST_RECORD_YEAR or max(years) > LAST_RECORD_YEAR + 10
                or sorted(set(years)) != years):
            raise ConfigError(f"years={years} must be increasing years from {LAST_RECORD_YEAR + 1} to "
                              f"{LAST_RECORD_YEAR + 10}: the record (2016-{LAST_RECORD_YEAR}) stays out "
                              "of the forecast so it can be checked independently")
        for name in ("replications", "blocks", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "seed" else 1):
                raise ConfigError(f"{name}={v} must be a whole number >= {0 if name == 'seed' else 1}")
        if self.replications % self.blocks:
            raise ConfigError(f"replications={self.replications} must be a multiple of blocks={self.blocks}")
        if not (isinstance(self.credibility, (int, float)) and 0 <= self.credibility <= 1):
            raise ConfigError(f"credibility={self.credibility} is out of range: give a number in [0, 1]")
        if isinstance(self.policy, (str, Posture)):
            object.__setattr__(self, "policy", PolicyConfig(name=Posture(self.policy)))


def plot_fan(record: pd.DataFrame, samples: pd.DataFrame, path: Path, title: str) -> None:
    """The record's yearly counts, then the forecast's median with 50 % and 90 % bands."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric in zip(axes, METRICS, strict=True):
        ax.plot(record.index, record[metric], "o-", color="black", label="record")
        s = samples[(samples["resolution"] == "year") & (samples["metric"] == metric)]
        q = s.groupby("year")["value"].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
        years = np.concatenate([[record.index[-1]], q.index])
        last = float(record[metric].iloc[-1])
        for lo, hi, alpha in ((0.05, 0.95, 0.2), (0.25, 0.75, 0.35)):
            ax.fill_between(years, np.concatenate([[last], q[lo]]), np.concatenate([[last], q[hi]]),
                            color="#4c72b0", alpha=alpha, lw=0,
                            label=f"forecast {int(round(100 * (hi - lo)))} %")
        ax.plot(years, np.concatenate([[last], q[0.5]]), "--", color="#4c72b0", label="forecast median")
        ax.set_title(f"DPRK {metric.replace('_', ' ')} per year", fontsize=10)
        ax.set_xticks(list(record.index) + list(q.index))
        ax.tick_params(labelsize=7)
        ax.axvline(record.index[-1] + 0.5, color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from .gsa import save_png_pdf

    save_png_pdf(fig, path, dpi=120)
    plt.close(fig)


def run_forecast(fc: ForecastConfig, out_dir: Path, config_dir: Path) -> pd.DataFrame:
    """Simulate the forecast and write forecast.csv, forecast_samples.parquet and the fan chart
    (PNG and PDF) atomically into ``out_dir``."""
    from .calibrate import resolve_events_file
    from .draws import load_draws
    from .events import load_events
    from .outputs import code_version
    from .validation import observed_counts

    draws = load_draws(fc.draws, "draws")
    events = load_events(resolve_events_file(fc.events_file, config_dir))
    scenario = forecast_scenario(events, last_fitted=LAST_RECORD_YEAR, through=max(fc.years))
    samples = simulate_counts(draws, scenario, list(fc.years), replications=fc.replications, blocks=fc.blocks,
                              seed=fc.seed, credibility=fc.credibility, policy=fc.policy)
    table = summarise(samples)
    record, _ = observed_counts(events)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    files = ("forecast.csv", "forecast_samples.parquet", "forecast.png", "forecast.pdf", "forecast.json")
    try:
        table.to_csv(staging / "forecast.csv", index=False, float_format="%.4g")
        samples.to_parquet(staging / "forecast_samples.parquet", index=False)
        plot_fan(record, samples, staging / "forecast.png",
                 f"Forecast {fc.years[0]}-{fc.years[-1]} from the posterior ({fc.blocks} draws, "
                 f"{fc.replications} histories); regime rule: the 2023 era and posture continue, "
                 "the 2023 allied calendar repeats")
        meta = {"config": {k: (v.name.value if isinstance(v, PolicyConfig) else v)
                           for k, v in dataclasses.asdict(fc).items() if k != "policy"},
                "policy": fc.policy.name.value, "draws_file": fc.draws,
                "regime_rule": "the last era and US posture of the record continue; the 2023 allied "
                               "calendar repeats every 52 weeks", **code_version()}
        (staging / "forecast.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        for name in files:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for row in table.itertuples(index=False):
        print(f"{row.year} {row.metric}: mean {row.mean:.1f}, median {row.q50:.0f}, "
              f"90 % [{row.q05:.0f}, {row.q95:.0f}]")
    print(f"wrote {', '.join(files)} -> {out_dir}")
    return table
