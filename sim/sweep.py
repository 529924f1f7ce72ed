"""Sweeps: resume-safe points, aggregation, paired policy comparisons and sweep figures.

A sweep is a Hydra multirun (``uv run dsim -m ...`` or ``experiment=...``); each point writes its
run files into ``<sweep dir>/<overrides>/``. At the end (:class:`SweepCallback`) or on demand
(``dsim-report SWEEP_DIR``) :func:`aggregate` reads every complete point and writes, into the
sweep folder:

* ``sweep.parquet``: one row per point and metric, with the point's overrides as columns;
* ``comparison.csv``: per level of the other swept keys, each metric's difference between
  postures (every posture minus ``rotational``), with a 95 % interval from the *paired*
  replications (same seed and R: replication i faces the same random numbers and US type under
  every posture, so differences are paired), and each posture's deployment cost;
* ``escalation_curves.png``, ``policy_comparison.png``, ``sweep_heatmap.png``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml
from scipy import stats

from .metrics import METRIC_UNITS, replication_metrics
from .outputs import RUN_FILES

log = logging.getLogger("dsim")

SWEEP_FILES = ("sweep.parquet", "comparison.csv", "escalation_curves.png", "policy_comparison.png",
               "sweep_heatmap.png")
POSTURE_ORDER = ("rotational", "permanent", "reactive", "none")
POSTURE_COLOURS = {"rotational": "tab:blue", "permanent": "tab:red", "reactive": "tab:green",
                   "none": "tab:gray"}
COMPARED_METRICS = (
    "dprk_launch_days_per_year", "dprk_missiles_per_year", "dprk_nuclear_tests_per_year",
    "p_kinetic_clash", "p_reach_nuclear_test", "final_dprk_belief", "rok_strike_drills_per_year",
    "us_deployments_per_year", "us_deployment_cost_per_year",
)
LABELS = {
    "dprk_launch_days_per_year": "DPRK launch days per year",
    "p_kinetic_clash": "P(kinetic clash within the horizon)",
    "final_dprk_belief": "DPRK belief that the US is resolute (last week)",
    "us_deployment_cost_per_year": "US deployment cost per year (asset-weeks)",
}


class SweepError(ValueError):
    """A sweep folder that cannot be reported on; the message is one line."""


# ---------------------------------------------------------------------------- points
def point_complete(folder: Path, config: dict) -> bool:
    """Whether ``folder`` holds a finished run of exactly ``config`` (all files readable).

    ``summary.json`` is moved into place last (:func:`sim.outputs.write_run`), so a killed run
    never leaves it next to missing or partial files; a corrupted file fails the check and the
    point is recomputed.
    """
    try:
        summary = json.loads((folder / "summary.json").read_text())
        if summary.get("config") != config:
            return False
        for name in ("timeseries.parquet", "replications.parquet"):
            pq.read_metadata(folder / name)
        return (folder / "escalation.png").stat().st_size > 0
    except (OSError, ValueError, KeyError):
        return False
    except Exception:  # pyarrow raises its own errors on a corrupt file
        return False


@dataclass
class Point:
    folder: Path
    overrides: dict
    summary: dict

    @property
    def policy(self) -> str:
        return self.summary["policy"]


def _overrides(folder: Path) -> dict:
    path = folder / ".hydra" / "overrides.yaml"
    out = {}
    if path.is_file():
        for item in yaml.safe_load(path.read_text()) or []:
            key, _, value = str(item).partition("=")
            key = key.lstrip("+~")
            if key.startswith("hydra") or key in ("experiment", "progress"):
                continue
            try:
                out[key] = yaml.safe_load(value)
            except yaml.YAMLError:
                out[key] = value
    return out


def load_points(sweep_dir: Path) -> list[Point]:
    """Every complete point below ``sweep_dir`` (incomplete ones are skipped with a warning)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir}: no such folder: give the folder of a dsim multirun")
    points = []
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / "summary.json").is_file():
            continue
        summary = json.loads((folder / "summary.json").read_text())
        if not point_complete(folder, summary.get("config")):
            log.warning("skipping incomplete point %s", folder.name)
            continue
        ov = _overrides(folder)
        ov.setdefault("policy", summary["policy"])
        ov.setdefault("credibility", summary["credibility"])
        points.append(Point(folder, ov, summary))
    if not points:
        raise SweepError(f"{sweep_dir}: no complete sweep points found: run `dsim -m ...` into it first")
    return points


# ---------------------------------------------------------------------------- tables
def sweep_table(points: list[Point]) -> pd.DataFrame:
    rows = []
    for pt in points:
        for metric, m in pt.summary["metrics"].items():
            value = m["estimate"] if "estimate" in m else m["mean"]
            ci = m.get("ci95") or [None, None]
            rng = m.get("range95") or [None, None]
            rows.append({"point": pt.folder.name, **pt.overrides, "metric": metric, "value": value,
                         "ci_low": ci[0], "ci_high": ci[1], "range_low": rng[0], "range_high": rng[1],
                         "n": m["n"], "unit": METRIC_UNITS.get(metric, "probability"),
                         "seed": pt.summary["seed"], "replications": pt.summary["replications"]})
    return pd.DataFrame(rows)


def _group_keys(points: list[Point]) -> list[str]:
    keys = sorted({k for p in points for k in p.overrides if k != "policy"})
    return keys


def paired_difference(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float, float]:
    """Mean of a - b with a 95 % interval: paired t if paired, else Welch."""
    if paired:
        d = a - b
        n = d.size
        half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else 1.0
    half = stats.t.ppf(0.975, dof) * se
    diff = float(a.mean() - b.mean())
    return diff, diff - half, diff + half


def comparison_table(points: list[Point], reference: str = "rotational") -> pd.DataFrame:
    keys = _group_keys(points)
    groups: dict[tuple, dict[str, Point]] = {}
    for pt in points:
        groups.setdefault(tuple(pt.overrides.get(k) for k in keys), {})[pt.policy] = pt
    rows = []
    cache: dict[Path, pd.DataFrame] = {}

    def metrics(pt: Point) -> pd.DataFrame:
        if pt.folder not in cache:
            cache[pt.folder] = replication_metrics(pd.read_parquet(pt.folder / "replications.parquet"))
        return cache[pt.folder]

    for level, by_policy in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if reference not in by_policy:
            continue
        ref = by_policy[reference]
        for policy in POSTURE_ORDER:
            if policy == reference or policy not in by_policy:
                continue
            other = by_policy[policy]
            paired = (other.summary["seed"] == ref.summary["seed"]
                      and other.summary["replications"] == ref.summary["replications"])
            ma, mb = metrics(other), metrics(ref)
            for metric in COMPARED_METRICS:
                diff, lo, hi = paired_difference(ma[metric].to_numpy(), mb[metric].to_numpy(), paired)
                # a = the posture, b = the reference
                rows.append({**dict(zip(keys, level, strict=True)), "comparison": f"{policy} - {reference}",
                             "metric": metric, "difference": diff, "ci_low": lo, "ci_high": hi,
                             "significant": bool(lo > 0 or hi < 0), "paired": paired, "n": len(ma),
                             "mean_a": float(ma[metric].mean()), "mean_b": float(mb[metric].mean()),
                             "cost_per_year_a": float(ma["us_deployment_cost_per_year"].mean()),
                             "cost_per_year_b": float(mb["us_deployment_cost_per_year"].mean())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- figures
def _x_key(points: list[Point]) -> str:
    varying = [k for k in _group_keys(points) if len({str(p.overrides.get(k)) for p in points}) > 1]
    return "credibility" if "credibility" in varying or not varying else varying[0]


def _postures(points: list[Point]) -> list[str]:
    present = {p.policy for p in points}
    return [p for p in POSTURE_ORDER if p in present]


def _title_context(points: list[Point]) -> str:
    s = points[0].summary
    return (f"scenario '{s['scenario']}', {s['replications']:,} replications per point, seed {s['seed']}, "
            f"spiral weight {s['config']['params']['spiral_weight']:g}")


def plot_policy_comparison(table: pd.DataFrame, points: list[Point], path: Path) -> None:
    x = _x_key(points)
    metrics = ["dprk_launch_days_per_year", "p_kinetic_clash", "final_dprk_belief",
               "us_deployment_cost_per_year"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        sub = table[table["metric"] == metric]
        for policy in _postures(points):
            d = sub[sub["policy"] == policy].sort_values(x)
            ax.plot(d[x], d["value"], "o-", color=POSTURE_COLOURS[policy], label=policy, ms=4)
            if d["ci_low"].notna().all():
                ax.fill_between(d[x], d["ci_low"], d["ci_high"], color=POSTURE_COLOURS[policy], alpha=0.2)
        ax.set_title(LABELS[metric], fontsize=12)
        ax.set_xlabel(f"{x} (probability that the US is resolute)" if x == "credibility" else x,
                      fontsize=11)
        unit = METRIC_UNITS.get(metric, "probability")
        ax.set_ylabel("probability" if unit.startswith("probability") else unit, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(title="posture", fontsize=10)
    fig.suptitle("Deployment postures compared across commitment credibility (mean and 95 % CI "
                 f"of the mean)\n{_title_context(points)}", fontsize=13)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_heatmap(table: pd.DataFrame, points: list[Point], path: Path,
                 metric: str = "p_kinetic_clash") -> None:
    x = _x_key(points)
    sub = table[table["metric"] == metric]
    grid = sub.pivot_table(index="policy", columns=x, values="value").reindex(_postures(points))
    fig, ax = plt.subplots(figsize=(max(7, 0.8 * grid.shape[1] + 3), 3.8), constrained_layout=True)
    im = ax.imshow(grid.to_numpy(), aspect="auto", cmap="magma_r")
    ax.set_xticks(range(grid.shape[1]), [f"{c:g}" if isinstance(c, float) else str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), grid.index)
    for (i, j), v in np.ndenumerate(grid.to_numpy()):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                color="white" if v > np.nanmean(grid.to_numpy()) else "black")
    ax.set_xlabel(x, fontsize=11)
    ax.set_ylabel("posture", fontsize=11)
    fig.colorbar(im, ax=ax, label=LABELS.get(metric, metric))
    ax.set_title(f"{LABELS.get(metric, metric)} by posture and {x}\n{_title_context(points)}", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_escalation_curves(points: list[Point], path: Path, levels: int = 4) -> None:
    x = _x_key(points)
    values = sorted({p.overrides.get(x) for p in points}, key=lambda v: (str(type(v)), v))
    idx = np.unique(np.linspace(0, len(values) - 1, min(levels, len(values))).round().astype(int))
    pick = [values[i] for i in idx]
    postures = _postures(points)
    rungs = (("p_reached_nuclear_test", "nuclear test or higher"),
             ("p_reached_kinetic_clash", "kinetic clash or higher"))
    fig, axes = plt.subplots(len(rungs), len(postures), figsize=(4.2 * len(postures), 7.5),
                             sharex=True, sharey="row", constrained_layout=True, squeeze=False)
    colours = plt.cm.viridis(np.linspace(0.1, 0.9, len(pick)))
    for j, policy in enumerate(postures):
        for v, colour in zip(pick, colours, strict=True):
            pt = next((p for p in points if p.policy == policy and p.overrides.get(x) == v), None)
            if pt is None:
                continue
            ts = pd.read_parquet(pt.folder / "timeseries.parquet", columns=["date", *(r for r, _ in rungs)])
            for i, (col, _) in enumerate(rungs):
                axes[i, j].plot(pd.to_datetime(ts["date"]), ts[col], color=colour, lw=1.8,
                                label=f"{x} {v:g}" if isinstance(v, float) else f"{x} {v}")
        axes[0, j].set_title(policy, fontsize=12)
        for i, (_, name) in enumerate(rungs):
            axes[i, j].grid(alpha=0.3)
            if j == 0:
                axes[i, j].set_ylabel(f"P(reached {name} by week t)", fontsize=10)
        axes[-1, j].set_xlabel("date", fontsize=11)
        locator = mdates.AutoDateLocator(maxticks=5)
        axes[-1, j].xaxis.set_major_locator(locator)
        axes[-1, j].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes[0, 0].legend(fontsize=9)
    fig.suptitle(f"Escalation curves by posture (columns) and {x} (colours)\n{_title_context(points)}",
                 fontsize=13)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- aggregate
def aggregate(sweep_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the sweep files into ``sweep_dir`` (atomically, each file replaced when complete)."""
    sweep_dir = Path(sweep_dir)
    points = load_points(sweep_dir)
    table = sweep_table(points)
    comparison = comparison_table(points)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=sweep_dir))
    try:
        table.to_parquet(staging / "sweep.parquet", index=False)
        comparison.to_csv(staging / "comparison.csv", index=False, float_format="%.6g")
        plot_escalation_curves(points, staging / "escalation_curves.png")
        plot_policy_comparison(table, points, staging / "policy_comparison.png")
        plot_heatmap(table, points, staging / "sweep_heatmap.png")
        for name in SWEEP_FILES:
            os.replace(staging / name, sweep_dir / name)
    finally:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()
    log.info("aggregated %d points into %s", len(points), sweep_dir)
    return {name: sweep_dir / name for name in SWEEP_FILES}


def report_main() -> None:
    """``dsim-report SWEEP_DIR``: redo the aggregation and figures of an existing sweep folder."""
    from .cli import use_file_backend

    use_file_backend()
    args = sys.argv[1:]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: dsim-report SWEEP_DIR  (the folder of a `dsim -m` run, e.g. multirun/<date>/<time>)",
              file=sys.stderr)
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    try:
        paths = aggregate(args[0])
    except SweepError as exc:
        print(f"dsim-report: error: {exc}", file=sys.stderr)
        sys.exit(2)
    for path in paths.values():
        print(path)


try:  # the Hydra callback (Hydra is a dependency; the guard keeps this module importable alone)
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class SweepCallback(Callback):
    """Aggregates a multirun when it ends (configured in configs/config.yaml, hydra.callbacks)."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        if hc.mode is not None and hc.mode.name == "MULTIRUN":
            log.info("point finished: %s", hc.job.override_dirname or hc.job.num)

    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            aggregate(Path(config.hydra.sweep.dir))
        except SweepError as exc:
            log.error("sweep not aggregated: %s", exc)


__all__ = ["RUN_FILES", "SWEEP_FILES", "SweepCallback", "aggregate", "point_complete"]
