"""Outputs of ``dsim-calibrate``: calibration.json, fit.png, seasonality.png, event_study.png,
profile.png and the fitted configs.

Everything is written into the run's output folder, atomically (a staging folder, then
``os.replace``): the five files and the fitted ``params/calibrated.yaml`` and
``scenario/historical.yaml``. Only with ``install=true`` are the two configs also installed into
dsim's ``configs/``, at those fixed places, each by a temporary file and ``os.replace`` in its
own folder, so that a reader never sees half a file. ``calibration.json`` is strict JSON: a value
that is not a number (an undefined ratio) is written as ``null``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from .calibrate import (
    FITTED_PARAMS,
    FITTED_SCENARIO,
    CalibrationConfig,
    calibrate,
    check_writable,
    install_path,
    load_calibration_inputs,
    resolve_events_file,
)
from .event_study import plot_event_study
from .history import END, ERA_DRIVE_PARAMS, START, write_historical_scenario
from .outputs import code_version
from .params import ConfigError, _plain

CALIBRATION_FILES = ("calibration.json", "fit.png", "seasonality.png", "event_study.png", "profile.png",
                     FITTED_PARAMS, FITTED_SCENARIO)
__all__ = ["CALIBRATION_FILES", "install_fitted_configs", "observed_month_shares", "resolve_events_file",
           "run_calibration", "simulated_month_shares"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def observed_month_counts(events: pd.DataFrame) -> np.ndarray:
    """DPRK launch days in each calendar month, 2016-2023 (observed)."""
    ev = events[(events["type"] == "launch_day") & (events["actor"] == "DPRK")
                & (events["date"] >= START) & (events["date"] <= END)]
    return np.bincount(ev["date"].dt.month - 1, minlength=12).astype(float)


def observed_month_shares(events: pd.DataFrame) -> np.ndarray:
    """Share of DPRK launch days falling in each calendar month, 2016-2023 (observed)."""
    counts = observed_month_counts(events)
    return counts / counts.sum() if counts.sum() else counts


def seasonality_check(observed_counts: np.ndarray, simulated: np.ndarray, resamples: int = 4000,
                      seed: int = 1) -> dict:
    """The month-of-year profile against its null, a flat 1/12 in every month.

    Total variation distance (TVD) of the model's and of the flat profile from the record's, their
    difference (model minus flat: below 0 means the model is closer), and March's share. The
    record's launch days are resampled (a multinomial with the observed shares, the bootstrap of
    categorical data; Efron & Tibshirani 1993, ch. 6) to give 90 % intervals of the difference and
    of the observed March share: the model beats flat by a margin only where the interval of the
    difference lies below 0.
    """
    n = int(observed_counts.sum())
    obs = observed_counts / n
    flat = np.full(12, 1 / 12)
    boot = np.random.default_rng(seed).multinomial(n, obs, size=resamples) / n
    diff = 0.5 * np.abs(boot - simulated).sum(axis=1) - 0.5 * np.abs(boot - flat).sum(axis=1)
    tvd_model = float(0.5 * np.abs(obs - simulated).sum())
    tvd_flat = float(0.5 * np.abs(obs - flat).sum())
    return {"months": list(MONTHS), "launch_days": n, "observed_share": obs.tolist(),
            "simulated_share": np.asarray(simulated).tolist(),
            "total_variation_distance": tvd_model, "total_variation_distance_flat": tvd_flat,
            "tvd_model_minus_flat": tvd_model - tvd_flat,
            "tvd_model_minus_flat_90": np.quantile(diff, [0.05, 0.95]).tolist(),
            "march_share_observed": float(obs[2]),
            "march_share_observed_90": np.quantile(boot[:, 2], [0.05, 0.95]).tolist(),
            "march_share_simulated": float(simulated[2]), "march_share_flat": 1 / 12}


def simulated_month_shares(timeseries: pd.DataFrame) -> np.ndarray:
    """Share of simulated launch days in each calendar month (the week's first day decides)."""
    launches = timeseries["dprk_launch_days"]
    month = pd.to_datetime(timeseries["date"]).dt.month - 1
    counts = np.bincount(month, weights=launches, minlength=12)
    return counts / counts.sum() if counts.sum() else counts


def plot_fit(targets: list[dict], path: Path, title: str) -> None:
    """Observed vs simulated per target and year, with the simulated 90 % interval."""
    labels = {"dprk_launch_days": "DPRK launch days / year",
              "dprk_launch_weeks": "weeks with a DPRK launch day / year",
              "dprk_missiles": "DPRK missiles / year",
              "dprk_nuclear_tests": "DPRK nuclear tests / year",
              "us_deployments": "US strategic-asset deployments / year",
              "kinetic_incidents": "DMZ/NLL incidents (model: clashes) / year",
              "missiles_per_launch_day": "missiles per launch day (check, not fitted)"}
    groups = [g for g in labels if any(r["target"] == g for r in targets)]
    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5), constrained_layout=True)
    nan = float("nan")
    for ax, group in zip(axes.flat, groups, strict=False):
        rows = [r for r in targets if r["target"] == group]
        years = [r["year"] for r in rows]
        sim = np.array([nan if r["simulated"] is None else r["simulated"] for r in rows])
        lo = np.array([nan if r["simulated_90"] is None else r["simulated_90"][0] for r in rows])
        hi = np.array([nan if r["simulated_90"] is None else r["simulated_90"][1] for r in rows])
        ax.fill_between(years, lo, hi, color="tab:blue", alpha=0.2, label="simulated 90 % of replications")
        ax.plot(years, sim, "o-", color="tab:blue", label="simulated mean")
        ax.plot(years, [nan if r["observed"] is None else r["observed"] for r in rows], "s--",
                color="black", label="observed (events.csv)")
        ax.set_title(labels[group])
        ax.set_xlabel("year")
        ax.set_ylabel("missiles per launch day" if group == "missiles_per_launch_day" else "count per year")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=9)
    lag = next(r for r in targets if r["target"] == "response_lag_weeks")
    war = next(r for r in targets if r["target"] == "p_war")
    for ax in axes.flat[len(groups):-1]:
        ax.axis("off")
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


def plot_profiles(profiles: dict, path: Path, title: str) -> None:
    """Each profiled parameter: the profile loss and its largest terms against the parameter's value,
    the band within twice the loss's Monte Carlo noise of the minimum, and the fitted value."""
    names = list(profiles) or ["(no profile)"]
    fig, axes = plt.subplots(1, len(names), figsize=(7.5 * len(names), 4.8), constrained_layout=True,
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        if name not in profiles:
            ax.axis("off")
            ax.text(0.5, 0.5, "no profile computed (profile=[] or optimiser.profile_points=0)",
                    ha="center", va="center")
            continue
        prof = profiles[name]
        rows = prof["rows"]
        x = [r["value"] for r in rows]
        total = np.array([r["loss"] for r in rows])
        ax.plot(x, total, "o-", color="black", lw=2, label="profile loss (others re-fitted)")
        terms = pd.DataFrame([r["terms"] for r in rows])
        for term in terms.max().sort_values(ascending=False).index[:4]:
            ax.plot(x, terms[term], ".--", alpha=0.8, label=f"term: {term}")
        noise = np.array([r["loss_difference_noise_sd"] for r in rows])
        ax.errorbar(x, total, yerr=2 * noise, fmt="none", ecolor="black", alpha=0.5, capsize=3,
                    label="2 Monte Carlo SD of the difference from the best point")
        admitted = prof.get("admitted_by_timing")
        if admitted:
            ax.axvspan(admitted[0], admitted[1], color="tab:green", alpha=0.12,
                       label="simulated timing inside the record's 90 % interval")
        if prof.get("estimate") is not None:
            ax.axvline(prof["estimate"], color="tab:red", lw=1, label=f"fitted {prof['estimate']:.2f}")
        lo, hi = prof["indistinguishable_range"]
        told = f"; record's timing admits {admitted[0]:g} to {admitted[1]:g}" if admitted else \
            "; no value's timing inside the record's interval"
        ax.set_title(f"{name}: within Monte Carlo noise of the best {lo:g} to {hi:g}{told}", fontsize=9)
        ax.set_xlabel(name)
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def params_yaml(fitted: dict, result: dict, cc: CalibrationConfig) -> str:
    params = {k: round(v, 6) for k, v in fitted.items() if k not in ERA_DRIVE_PARAMS}
    head = (
        f"# GENERATED by dsim-calibrate on {dt.date.today().isoformat()} (do not edit by hand).\n"
        f"# Simulated method of moments against {Path(cc.events_file).name}, years "
        f"{min(cc.years)}-{max(cc.years)}; loss "
        f"{result['loss']:.4f} (defaults: {result['loss_at_defaults']:.4f}).\n"
        f"# replications={cc.replications}, seed={cc.seed}, credibility={cc.credibility}, "
        f"policy={cc.policy.name.value}. Fields not listed keep their defaults (sim/params.py).\n"
        "# See docs/calibration.md for the fit and what the model gets wrong.\n"
    )
    return head + yaml.safe_dump(params, sort_keys=True)


def prepare_run(cc: CalibrationConfig, out_dir: Path, config_dir: Path) -> tuple[Path, pd.DataFrame]:
    """The event record (path, table) of ``cc``, checked, and ``out_dir`` made and writable: one
    ConfigError / EventDataError line before any work."""
    events_path, events = load_calibration_inputs(cc, config_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the output folder {out_dir} ({exc.strerror or exc}): choose "
                          "another hydra.run.dir") from None
    check_writable(out_dir, "the output folder")
    return events_path, events


def run_calibration(cc: CalibrationConfig, out_dir: Path, config_dir: Path) -> dict:
    """Run the calibration and write its files atomically into ``out_dir``; with ``install=true``
    also install the fitted configs into ``config_dir``. Every input and the folders to be written
    are checked before the fit starts (one ConfigError / EventDataError line)."""
    out_dir = Path(out_dir)
    events_path, events = prepare_run(cc, out_dir, config_dir)
    result = calibrate(cc, events)
    timeseries = result.pop("_timeseries")
    fitted = result.pop("_fitted")
    result.pop("_problem")
    obs_m, sim_m = observed_month_shares(events), simulated_month_shares(timeseries)
    result["seasonality"] = seasonality_check(observed_month_counts(events), sim_m)
    result.update({"config": _plain(_asdict(cc)), "events_file": str(events_path), **code_version()})

    publish(out_dir, lambda staging: _write_outputs(staging, result, fitted, cc, events_path, obs_m, sim_m),
            CALIBRATION_FILES, {rel: rel for rel in (FITTED_PARAMS, FITTED_SCENARIO)} if cc.install else {},
            config_dir, "the fit")
    print(f"calibration: loss {result['loss']:.4f} (defaults {result['loss_at_defaults']:.4f}), "
          f"{result['run_time_seconds']:.0f} s -> {out_dir}")
    return result


def _write_outputs(folder: Path, result: dict, fitted: dict, cc: CalibrationConfig, events_path: Path,
                   obs_m: np.ndarray, sim_m: np.ndarray) -> None:
    (folder / "calibration.json").write_text(json.dumps(_strict(result), indent=2, default=str,
                                                        allow_nan=False) + "\n",
                                             encoding="utf-8")
    title = (f"Calibration to the documented record {START[:4]}-{END[:4]} (historical replay, "
             f"{cc.replications} replications, seed {cc.seed})")
    plot_fit(result["targets"], folder / "fit.png", title)
    plot_event_study(pd.DataFrame(result["event_study"]), folder / "event_study.png",
                     f"Event study 2016-2023: record (90 % bootstrap over weeks) vs calibrated replay "
                     f"(5-95 % of {cc.replications} replications)")
    plot_profiles(result.get("profiles", {}), folder / "profile.png",
                  f"Profile loss ({cc.replications} replications, seed {cc.seed})")
    plot_seasonality(obs_m, sim_m, folder / "seasonality.png",
                     "Out-of-sample check: month-of-year share of DPRK launch days, 2016-2023 "
                     "(not a calibration target)")
    params_file = folder / FITTED_PARAMS
    params_file.parent.mkdir(parents=True, exist_ok=True)
    params_file.write_text(params_yaml(fitted, result, cc), encoding="utf-8")
    drives = {k: v for k, v in fitted.items() if k in ERA_DRIVE_PARAMS}
    scenario_file = folder / FITTED_SCENARIO
    scenario_file.parent.mkdir(parents=True, exist_ok=True)
    write_historical_scenario(
        scenario_file, events_path, drives,
        note=f"Era drives fitted by dsim-calibrate on {dt.date.today().isoformat()}." if drives else "")


def publish(out_dir: Path, write, names: tuple[str, ...], install: dict[str, str], config_dir: Path,
            what: str) -> None:
    """Write a run's files atomically: ``write(staging)`` fills a staging folder inside
    ``out_dir``, then each of ``names`` is moved into place (a disk that fills up raises OSError,
    the command line's one line with exit code 1, and the staging folder goes, so the output folder
    holds all the files or none of them). Then ``install`` (``{configs path: output file}``) is
    installed into ``config_dir`` (:func:`install_fitted_configs`)."""
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        write(staging)
        for name in names:
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {', '.join(names)} -> {out_dir}")
    if not install:
        return
    files = {rel: ((out_dir / src).read_bytes() if src.endswith(".parquet")
                   else (out_dir / src).read_text(encoding="utf-8")) for rel, src in install.items()}
    try:
        installed = install_fitted_configs(files, config_dir)
    except OSError as exc:
        raise OSError(exc.errno, f"{exc.strerror or exc} while installing into {config_dir} "
                                 f"(nothing there was changed; {what} is in {out_dir})") from None
    for target in installed:
        print(f"installed {target}")


def install_fitted_configs(files: dict[str, str | bytes], config_dir: Path) -> list[Path]:
    """Install fitted configs (``{relative path: text or bytes}``) into ``config_dir``, only at the places in
    :data:`sim.calibrate.INSTALL_TARGETS`; anything else is refused with one ConfigError line.

    Every file is first written in full to a temporary file in its target's folder, then all are
    moved into place with ``os.replace`` (atomic on POSIX and Windows within one folder): a
    failure while writing (OSError) leaves configs/ as it was.
    """
    targets = {rel: install_path(config_dir, rel) for rel in files}
    staged: list[tuple[Path, Path]] = []
    try:
        for rel, target in targets.items():
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((Path(tmp), target))
            # mkstemp makes the file private (0600): keep the installed file's mode, or rw-r--r--
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644)
            data = files[rel]
            with (os.fdopen(fd, "wb") if isinstance(data, bytes)
                  else os.fdopen(fd, "w", encoding="utf-8")) as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return list(targets.values())


def _strict(value):
    """``value`` with every float that is not finite (nan, inf) replaced by None, for strict JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def _asdict(obj):
    import dataclasses

    return dataclasses.asdict(obj)
