"""The explorer's plots: matplotlib figures drawn off the page's thread and sent as PNG images.

Each function takes one run or two (``[(label, results), ...]``; the second is drawn dashed) and
returns a :class:`matplotlib.figure.Figure` built without pyplot, so figures can be drawn in the
worker thread that ran the model while the page stays responsive. :func:`png` turns one into bytes.
"""

from __future__ import annotations

import io

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..agents import RUNGS
from ..metrics import rung_metric, wilson_interval
from ..recording import RUNG_SLUGS, Results
from .compute import Record, simulated_monthly, simulated_yearly

Runs = list[tuple[str, Results]]
STYLES = ("-", "--")
RUN_COLOURS = ("tab:blue", "tab:red")


def png(fig: Figure, dpi: int = 90) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _dates(results: Results) -> pd.Series:
    return pd.to_datetime(results.timeseries["date"])


def _year_axis(ax, dates: pd.Series) -> None:
    years = max(1, (dates.iloc[-1] - dates.iloc[0]).days // 365)
    ax.xaxis.set_major_locator(mdates.YearLocator(base=max(1, years // 8)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(alpha=0.3)


def escalation_figure(runs: Runs) -> Figure:
    """Escalation, three panels:

    * the ladder: the share of replications whose highest rung so far is at least k, by date, with
      95 % Wilson bands (the intervals of ``summary.json``, :func:`sim.metrics.wilson_interval`);
    * the rare events (at least one nuclear test, kinetic clash, war by each date) on a log axis,
      from :func:`sim.outputs.rare_event_curves`, as in ``escalation.png``: next to the lower rungs,
      which every replication reaches within weeks, they are unreadable on a linear axis;
    * tension: median and 5-95 % of replications.
    """
    from ..outputs import RARE_EVENTS, rare_event_curves

    fig = Figure(figsize=(13, 4.4))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.1, top=0.88, wspace=0.22)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    rung_colours = colormaps["plasma_r"]([0.15, 0.35, 0.55, 0.75, 0.95])
    two = len(runs) > 1
    floor = 1.0
    for (label, res), style, colour in zip(runs, STYLES, RUN_COLOURS, strict=False):
        dates, ts, n = _dates(res), res.timeseries, res.config.replications
        floor = min(floor, 0.3 / n)
        for k, (slug, name) in enumerate(zip(RUNG_SLUGS[1:], RUNGS[1:], strict=True)):
            share = ts[rung_metric(slug)].to_numpy()
            low, high = wilson_interval(np.rint(share * n), n)
            ax1.fill_between(dates, low, high, color=rung_colours[k], alpha=0.18, lw=0)
            ax1.plot(dates, share, color=rung_colours[k], lw=1.8, ls=style,
                     label=f"\u2265 {k + 1}: {name}" + (f" ({label})" if two else ""))
        curves = rare_event_curves(res)
        for key, name, ecolour, _, marker in RARE_EVENTS:
            c = curves[key]
            ax2.plot(c["date"], c["p"].where(c["p"] > 0), color=ecolour, ls=style, marker=marker, ms=3,
                     lw=1.6, label=name + (f" ({label})" if two else ""))
            ax2.fill_between(c["date"], np.maximum(c["ci_low"], 0.3 / n), c["ci_high"], color=ecolour,
                             alpha=0.15, lw=0)
        ax3.fill_between(dates, ts["tension_q05"], ts["tension_q95"], color=colour, alpha=0.15)
        ax3.plot(dates, ts["tension_q50"], color=colour, lw=1.5, ls=style, label=f"{label}: median")
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel("share of replications")
    ax1.set_title("Ladder: highest rung so far \u2265 k (bands: 95 % Wilson)", fontsize=10)
    ax1.legend(fontsize=7, loc="center right", ncol=2 if two else 1)
    ax2.set_yscale("log")
    ax2.set_ylim(floor, 1.5)
    ax2.set_title("Rare events by each date (log scale; 95 % Wilson)", fontsize=10)
    ax2.legend(fontsize=7, loc="lower right")
    ax3.set_ylabel("tension (index, 0 = calm)")
    ax3.set_title("Tension: median and 5-95 % of replications", fontsize=10)
    ax3.legend(fontsize=8, loc="upper right")
    for ax in (ax1, ax2, ax3):
        _year_axis(ax, _dates(runs[0][1]))
    return fig


def launches_figure(runs: Runs, record: Record | None = None) -> Figure:
    """DPRK launch days and missiles per month: the mean across replications (and the record)."""
    fig = Figure(figsize=(12, 3.8))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.12, top=0.88, wspace=0.18)
    axes = fig.subplots(1, 2)
    for ax, col, title in zip(axes, ("launch_days", "missiles"),
                              ("Launch days per month", "Missiles per month"),
                              strict=True):
        if record is not None and col in record.monthly.columns and len(record.monthly):
            months = record.monthly.index.to_timestamp()
            ax.bar(months, record.monthly[col], width=25, color="0.6", label="record (data/events.csv)")
        for (label, res), style, colour in zip(runs, STYLES, RUN_COLOURS, strict=False):
            sim = simulated_monthly(res)
            ax.step(sim.index.to_timestamp(), sim[col], where="post", color=colour, ls=style, lw=1.4,
                    label=f"{label}: mean of replications")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper left")
        _year_axis(ax, _dates(runs[0][1]))
    return fig


STATES = (("dprk_belief", "DPRK belief that the US is resolute"),
          ("rok_assurance", "ROK assurance"), ("japan_assurance", "Japan assurance"))


def beliefs_figure(runs: Runs) -> Figure:
    """DPRK belief and allied assurance: median and 5-95 % of replications, week by week."""
    fig = Figure(figsize=(12, 3.6))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.12, top=0.87, wspace=0.2)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (var, title) in zip(axes, STATES, strict=True):
        for (label, res), style, colour in zip(runs, STYLES, RUN_COLOURS, strict=False):
            ts, dates = res.timeseries, _dates(res)
            ax.fill_between(dates, ts[f"{var}_q05"], ts[f"{var}_q95"], color=colour, alpha=0.15)
            ax.plot(dates, ts[f"{var}_q50"], color=colour, ls=style, lw=1.5, label=f"{label}: median")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1)
        _year_axis(ax, _dates(runs[0][1]))
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].set_ylabel("probability (band: 5-95 % of replications)")
    return fig


def cost_figure(runs: Runs) -> Figure:
    """US deployment cost: mean cumulative cost by date, and its spread over replications at the end
    (stylised units: 1 = one asset-week on station; docs/model.md section 9)."""
    fig = Figure(figsize=(12, 3.6))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.87, wspace=0.18)
    ax1, ax2 = fig.subplots(1, 2)
    totals = []
    for (label, res), style, colour in zip(runs, STYLES, RUN_COLOURS, strict=False):
        ax1.plot(_dates(res), res.timeseries["us_cost_cumulative"], color=colour, ls=style,
                 label=f"{label}: mean")
        totals.append((label, res.per_replication()["us_cost"].to_numpy(dtype=float), colour))
    allv = np.concatenate([t[1] for t in totals])
    bins = np.histogram_bin_edges(allv, bins=40) if np.ptp(allv) > 0 else 10
    for label, values, colour in totals:
        ax2.hist(values, bins=bins, color=colour, alpha=0.5, label=label)
    ax1.set_title("US deployment cost so far (asset-weeks, mean of replications)", fontsize=10)
    ax1.legend(fontsize=8)
    _year_axis(ax1, _dates(runs[0][1]))
    ax2.set_title("Cost over the whole horizon, per replication", fontsize=10)
    ax2.set_xlabel("asset-weeks")
    ax2.set_ylabel("replications")
    ax2.legend(fontsize=8)
    return fig


def differences_figure(table: pd.DataFrame, label_a: str, label_b: str) -> Figure:
    """The paired differences B - A of the probabilities, with their 95 % intervals."""
    probs = table[table["metric"].str.startswith("p_") | (table["metric"] == "final_dprk_belief")]
    fig = Figure(figsize=(12, 0.45 * len(probs) + 1.2))
    fig.subplots_adjust(left=0.22, right=0.98, bottom=0.12 + 0.5 / max(len(probs), 1), top=0.9)
    ax = fig.subplots()
    y = np.arange(len(probs))[::-1]
    for clear, colour in ((True, "tab:red"), (False, "0.4")):
        sel = (probs["significant"] == clear).to_numpy()
        d = probs[sel]
        err = np.vstack([d["difference"] - d["ci_low"], d["ci_high"] - d["difference"]])
        ax.errorbar(d["difference"], y[sel], xerr=err, fmt="o", color=colour, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, probs["metric"])
    ax.set_xlabel(f"{label_b} minus {label_a} (paired replications; red: the 95 % interval excludes 0)")
    ax.set_title("Differences in probabilities, with 95 % intervals", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return fig


def history_figure(res: Results, record: Record) -> Figure:
    """The replay over the documented record: simulated tension band with the record's exercises
    (shaded by scale), consultations (lines), strategic-asset deployments (triangles) and launch
    days (ticks); then launch days per month, simulated mean against the record."""
    fig = Figure(figsize=(13, 6.4))
    fig.subplots_adjust(left=0.055, right=0.77, bottom=0.07, top=0.94, hspace=0.3)
    outside = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False}
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ts, dates = res.timeseries, _dates(res)
    ev = record.events
    for row in ev[ev["type"] == "combined_exercise"].itertuples():
        end = row.end_date if pd.notna(row.end_date) else row.date + pd.Timedelta(days=7)
        ax1.axvspan(row.date, end, color="tab:green", alpha=0.08 + 0.25 * float(row.scale), lw=0)
    for day in ev.loc[ev["type"] == "consultation", "date"]:
        ax1.axvline(day, color="tab:purple", lw=0.7, alpha=0.6)
    ax1.fill_between(dates, ts["tension_q05"], ts["tension_q95"], color="tab:red", alpha=0.15,
                     label="simulated tension, 5-95 % of replications")
    ax1.plot(dates, ts["tension_q50"], color="tab:red", lw=1.3, label="simulated tension, median")
    top = float(np.nanmax(ts["tension_q95"])) if len(ts) else 1.0
    deploy = ev.loc[ev["type"] == "asset_deployment", "date"]
    ax1.plot(deploy, np.full(len(deploy), top * 1.05), "v", color="tab:blue", ms=5,
             label="record: strategic-asset deployment")
    launch = ev.loc[(ev["actor"] == "DPRK") & (ev["type"] == "launch_day"), "date"]
    ax1.plot(launch, np.full(len(launch), top * 1.12), "|", color="black", ms=8,
             label="record: DPRK launch day")
    ax1.plot([], [], color="tab:purple", lw=0.7, label="record: consultation")
    ax1.fill_between([], [], [], color="tab:green", alpha=0.3, label="record: combined exercise")
    ax1.set_ylim(0, top * 1.2)
    ax1.set_ylabel("tension (index)")
    ax1.set_title("Historical replay with the documented events (data/events.csv)", fontsize=10)
    ax1.legend(**outside)
    months = record.monthly.index.to_timestamp()
    if len(record.monthly):
        ax2.bar(months, record.monthly["launch_days"], width=25, color="0.6",
                label="record: launch days")
    sim = simulated_monthly(res)
    ax2.step(sim.index.to_timestamp(), sim["launch_days"], where="post", color="tab:blue",
             label="simulated: mean of replications")
    ax2.set_ylabel("launch days per month")
    ax2.legend(**outside)
    _year_axis(ax2, dates)
    return fig


YEARLY_TITLES = {"dprk_launch_days": "DPRK launch days", "dprk_missiles": "DPRK missiles",
                 "dprk_nuclear_tests": "DPRK nuclear tests", "us_deployments": "US strategic-asset arrivals"}


def yearly_figure(res: Results, record: Record) -> Figure:
    """Per calendar year: the simulated median and 5-95 % of replications against the record."""
    sim = simulated_yearly(res)
    fig = Figure(figsize=(12, 3.4))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.86, wspace=0.25)
    axes = fig.subplots(1, len(YEARLY_TITLES))
    for ax, (col, title) in zip(axes, YEARLY_TITLES.items(), strict=True):
        s = sim[sim["count"] == col]
        ax.vlines(s["year"], s["q05"], s["q95"], color="tab:blue", lw=4, alpha=0.35,
                  label="simulated 5-95 %")
        ax.plot(s["year"], s["q50"], "_", color="tab:blue", ms=12, mew=2, label="simulated median")
        if col in record.yearly.columns:
            ax.plot(record.yearly.index, record.yearly[col], "o", color="black", ms=4, label="record")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    return fig
