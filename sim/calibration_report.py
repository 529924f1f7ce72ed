"""Outputs of ``dsim-calibrate``: calibration.json, fit.png, seasonality.png and the fitted configs."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from .calibrate import CalibrationConfig, calibrate
from .events import EventDataError, load_events
from .history import END, ERA_DRIVE_PARAMS, START, write_historical_scenario
from .outputs import code_version
from .params import _plain

CALIBRATION_FILES = ("calibration.json", "fit.png", "seasonality.png")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def resolve_events_file(name: str, config_dir: Path) -> Path:
    """A relative events_file is looked up from the working folder, then the repository root."""
    path = Path(name)
    if path.is_absolute() or path.is_file():
        return path
    candidate = config_dir.parent / name
    if candidate.is_file():
        return candidate
    raise EventDataError(f"{name}: no such file: give events_file as a path to the event record "
                         "(data/events.csv)")


def observed_month_shares(events: pd.DataFrame) -> np.ndarray:
    """Share of DPRK launch days falling in each calendar month, 2016-2023 (observed)."""
    ev = events[(events["type"] == "launch_day") & (events["actor"] == "DPRK")
                & (events["date"] >= START) & (events["date"] <= END)]
    counts = np.bincount(ev["date"].dt.month - 1, minlength=12).astype(float)
    return counts / counts.sum() if counts.sum() else counts


def simulated_month_shares(timeseries: pd.DataFrame) -> np.ndarray:
    """Share of simulated launch days in each calendar month (the week's first day decides)."""
    launches = timeseries["dprk_srbm_launch"] + timeseries["dprk_lrbm_launch"]
    month = pd.to_datetime(timeseries["date"]).dt.month - 1
    counts = np.bincount(month, weights=launches, minlength=12)
    return counts / counts.sum() if counts.sum() else counts


def plot_fit(targets: list[dict], path: Path, title: str) -> None:
    """Observed vs simulated per target and year, with the simulated 90 % interval."""
    labels = {"dprk_launch_weeks": "DPRK launch weeks / year (weeks with a launch day)",
              "dprk_missiles": "DPRK missiles / year",
              "dprk_nuclear_tests": "DPRK nuclear tests / year",
              "us_deployments": "US strategic-asset deployments / year",
              "kinetic_incidents": "DMZ/NLL incidents (model: clashes) / year"}
    groups = list(labels)
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5), constrained_layout=True)
    for ax, group in zip(axes.flat, groups, strict=False):
        rows = [r for r in targets if r["target"] == group]
        years = [r["year"] for r in rows]
        sim = np.array([r["simulated"] for r in rows])
        lo = np.array([r["simulated_90"][0] for r in rows])
        hi = np.array([r["simulated_90"][1] for r in rows])
        ax.fill_between(years, lo, hi, color="tab:blue", alpha=0.2, label="simulated 90 % of replications")
        ax.plot(years, sim, "o-", color="tab:blue", label="simulated mean")
        ax.plot(years, [r["observed"] for r in rows], "s--", color="black", label="observed (events.csv)")
        ax.set_title(labels[group])
        ax.set_xlabel("year")
        ax.set_ylabel("count per year")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=9)
    lag = next(r for r in targets if r["target"] == "response_lag_weeks")
    war = next(r for r in targets if r["target"] == "p_war")
    text = axes.flat[-1]
    text.axis("off")
    text.text(0.0, 0.9, "Other targets", fontsize=12, weight="bold", va="top")
    text.text(0.0, 0.7, f"median weeks from a major provocation\nto the next US deployment:\n"
                        f"observed {lag['observed']:g}, simulated {lag['simulated']:g}",
              fontsize=11, va="top")
    text.text(0.0, 0.3, f"share of replications reaching war\nby 2023: observed {war['observed']:g}, "
                        f"simulated {war['simulated']:.3f}", fontsize=11, va="top")
    fig.suptitle(title, fontsize=12)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_seasonality(observed: np.ndarray, simulated: np.ndarray, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
    x = np.arange(12)
    ax.bar(x - 0.2, observed, width=0.4, color="black", alpha=0.7, label="observed (events.csv)")
    ax.bar(x + 0.2, simulated, width=0.4, color="tab:blue", alpha=0.8, label="simulated (calibrated)")
    ax.set_xticks(x, MONTHS)
    ax.set_ylabel("share of the year's launch days")
    ax.set_xlabel("month")
    ax.set_title(title, fontsize=11)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def params_yaml(fitted: dict, result: dict, cc: CalibrationConfig) -> str:
    params = {k: round(v, 6) for k, v in fitted.items() if k not in ERA_DRIVE_PARAMS}
    head = (
        f"# GENERATED by dsim-calibrate on {dt.date.today().isoformat()} (do not edit by hand).\n"
        f"# Simulated method of moments against data/events.csv, {START}..{END}; loss "
        f"{result['loss']:.4f} (defaults: {result['loss_at_defaults']:.4f}).\n"
        f"# replications={cc.replications}, seed={cc.seed}, credibility={cc.credibility}, "
        f"policy={cc.policy}. Fields not listed keep their defaults (sim/params.py).\n"
        "# See docs/calibration.md for the fit and what the model gets wrong.\n"
    )
    return head + yaml.safe_dump(params, sort_keys=True)


def run_calibration(cc: CalibrationConfig, out_dir: Path, config_dir: Path) -> dict:
    """Run the calibration and write its files (atomically) and the fitted configs."""
    events_path = resolve_events_file(cc.events_file, config_dir)
    events = load_events(events_path)
    result = calibrate(cc, events)
    timeseries = result.pop("_timeseries")
    fitted = result.pop("_fitted")
    result.pop("_problem")
    obs_m, sim_m = observed_month_shares(events), simulated_month_shares(timeseries)
    result["seasonality"] = {"months": list(MONTHS), "observed_share": obs_m.tolist(),
                             "simulated_share": sim_m.tolist(),
                             "total_variation_distance": float(0.5 * np.abs(obs_m - sim_m).sum())}
    result.update({"config": _plain(_asdict(cc)), "events_file": str(events_path), **code_version()})

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        (staging / "calibration.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        title = (f"Calibration to the documented record {START[:4]}-{END[:4]} (historical replay, "
                 f"{cc.replications} replications, seed {cc.seed})")
        plot_fit(result["targets"], staging / "fit.png", title)
        plot_seasonality(obs_m, sim_m, staging / "seasonality.png",
                         "Out-of-sample check: month-of-year share of DPRK launch days, 2016-2023 "
                         "(not a calibration target)")
        for name in CALIBRATION_FILES:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    if cc.write_params:
        target = config_dir / cc.write_params
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(params_yaml(fitted, result, cc))
        print(f"wrote {target}")
    if cc.write_scenario:
        drives = {k: v for k, v in fitted.items() if k in ERA_DRIVE_PARAMS}
        target = write_historical_scenario(
            config_dir / cc.write_scenario, events_path, drives,
            note=f"Era drives fitted by dsim-calibrate on {dt.date.today().isoformat()}." if drives else "")
        print(f"wrote {target}")
    print(f"calibration: loss {result['loss']:.4f} (defaults {result['loss_at_defaults']:.4f}), "
          f"{result['run_time_seconds']:.0f} s -> {out_dir}")
    return result


def _asdict(obj):
    import dataclasses

    return dataclasses.asdict(obj)
