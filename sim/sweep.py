"""Sweeps: resume-safe points, aggregation, paired policy comparisons and sweep figures.

A sweep is a Hydra multirun (``uv run dsim -m ...`` or ``experiment=...``); each point writes its
run files into ``<sweep dir>/<overrides>/`` (:func:`sim.outputs.write_run`, ``manifest.json``
last; no ``escalation.png`` unless ``run_figure`` asks for it). Points that differ only in numeric
parameters, credibility or the DPRK's prior run as the blocks of one batched model, one job per
group (``hydra_plugins/dsim_sweeper``, :mod:`sim.batching`), with the same files as one job per
point. At the end (:class:`SweepCallback`) or on demand (``dsim-report SWEEP_DIR``)
:func:`aggregate` reads every complete point and writes, into the sweep folder:

* ``sweep.parquet``: one row per point and metric, with the point's overrides as columns;
* ``comparison.csv``: per level of the other swept keys (one column each), each metric's
  difference between postures, every posture minus the reference posture (the
  ``reference_policy`` setting, ``rotational`` by default; ``dsim-report --reference`` overrides
  it), with a 95 % interval from the *paired* replications (same seed and R: replication i faces
  the same random numbers and US type under every posture, so differences are paired; common
  random numbers, Law 2015, *Simulation Modeling and Analysis*, 5th ed., ch. 11), and each
  posture's deployment cost. Every metric of :func:`sim.metrics.replication_metrics` is compared.
  **When no point has the reference posture** (or every point has it) there is nothing to compare:
  ``comparison.csv`` is *not written* (an earlier one is removed, as it no longer matches the
  other files) and a warning names the reference and the postures present;
* ``escalation_curves.png``, ``policy_comparison.png``, ``sweep_heatmap.png``. The x-axis is
  ``credibility`` if it is swept (else the first swept key); every other swept key is shown
  separately, never averaged over: line style in the policy comparison, one heatmap panel and one
  row of escalation curves per level. Titles name only what is fixed across the sweep.

**Resume.** A point is complete when its ``manifest.json`` is present, every checksum in it
matches and its identity (:meth:`sim.params.RunConfig.identity`: every setting that changes
results, so not ``progress`` or ``reference_policy``) is the one asked for
(:func:`point_complete`). A point that fails is recomputed by ``dsim`` and skipped, with a
warning naming it, by the aggregation. Stale ``.partial-*`` staging folders (left by a killed
point or aggregation) are removed by the next write into the same folder, and by the aggregation
in the sweep folder and its point folders.

**Failures.** A folder that cannot be aggregated raises :class:`SweepError` (one line); the sweep
command and ``dsim-report`` end with that line and exit code 2; any other failure ends them with
one line and exit code 1. The sweep files are staged and moved into place together, so a failed
aggregation leaves none of them half-written.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import numbers
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from scipy.special import stdtrit

from .agents import RUNGS
from .metrics import METRIC_UNITS, file_replication_metrics, rung_metric
from .outputs import RUN_FILES, remove_stale_staging, staging_folder, verify_run
from .params import NON_RESULT_FIELDS, Posture, RunConfig
from .recording import RUNG_SLUGS

log = logging.getLogger("dsim")

SWEEP_FILES = ("sweep.parquet", "comparison.csv", "escalation_curves.png", "policy_comparison.png",
               "sweep_heatmap.png")
POSTURE_ORDER = tuple(p.value for p in Posture)
POSTURE_COLOURS = {"rotational": "tab:blue", "permanent": "tab:red", "reactive": "tab:green",
                   "none": "tab:gray"}
PLOTTED_METRICS = ("dprk_launch_days_per_year", "p_kinetic_clash", "final_dprk_belief",
                   "us_deployment_cost_per_year")
LABELS = {
    "dprk_launch_days_per_year": "DPRK launch days per year",
    "p_kinetic_clash": "P(kinetic clash within the horizon)",
    "final_dprk_belief": "DPRK belief that the US is resolute (last week)",
    "us_deployment_cost_per_year": "US deployment cost per year (asset-weeks)",
}
# The ladder levels drawn in escalation_curves.png: the timeseries column of each and its text.
ESCALATION_RUNGS = tuple((rung_metric(slug), f"highest rung \u2265 {name}")
                         for slug, name in zip(RUNG_SLUGS, RUNGS, strict=True)
                         if slug in ("nuclear_test", "kinetic_clash"))
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


class SweepError(ValueError):
    """A sweep folder that cannot be reported on; the message is one line."""


class _Unusable(Exception):
    """A folder of a sweep folder that is not a usable point (the message says why)."""


# ---------------------------------------------------------------------------- points
def run_identity(config: RunConfig | Mapping) -> dict:
    """The identity of a run: :meth:`RunConfig.identity`, or a config dict (``to_dict()``) or an
    identity dict without the :data:`~sim.params.NON_RESULT_FIELDS`."""
    if isinstance(config, RunConfig):
        return config.identity()
    return {k: v for k, v in dict(config).items() if k not in NON_RESULT_FIELDS}


def point_complete(folder: str | os.PathLike, config: RunConfig | Mapping, figure: bool = False) -> bool:
    """Whether ``folder`` holds a finished run with the identity of ``config`` (and its
    ``escalation.png`` if ``figure``).

    ``config`` is a RunConfig (preferred) or its ``to_dict()``/``identity()``; settings that do not
    change results (``progress``, ``reference_policy``, ``run_figure``) are ignored. The run's
    ``manifest.json`` must be present and every file must match its checksum there
    (:func:`sim.outputs.verify_run`), so a killed, truncated or edited point is recomputed.
    """
    return verify_run(folder, run_identity(config), figure=figure) is None


@dataclass
class Point:
    folder: Path
    overrides: dict
    summary: dict

    @property
    def policy(self) -> str:
        return self.summary["policy"]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_summary(summary: Any) -> None:
    """Raise _Unusable unless ``summary`` has what the aggregation reads."""
    if not isinstance(summary, dict):
        raise _Unusable("summary.json does not hold a dsim summary")
    metrics = summary.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise _Unusable("summary.json has no metrics")
    for name, m in metrics.items():
        value = m.get("estimate", m.get("mean")) if isinstance(m, dict) else None
        if not _is_number(value) or not isinstance(m.get("n"), int):
            raise _Unusable(f"summary.json: metric {name!r} has no value")
    if summary.get("policy") not in POSTURE_ORDER:
        raise _Unusable(f"summary.json: policy {summary.get('policy')!r} is not a posture")
    for key in ("seed", "replications", "credibility"):
        if not _is_number(summary.get(key)):
            raise _Unusable(f"summary.json: {key} is missing")
    if not isinstance(summary.get("config"), dict):
        raise _Unusable("summary.json: config is missing")


def _scalar(value: Any) -> Any:
    """A value fit for a table column and a group key (lists and dicts as their JSON text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@functools.lru_cache(maxsize=4096)
def _parsed_override(line: str):
    """Hydra's parse of one override line (the points of a sweep share most of their lines, and
    Hydra's parser takes a millisecond or so a line)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([line])[0]


def _overrides(folder: Path) -> dict:
    """The point's command-line overrides (``.hydra/overrides.yaml``), parsed as Hydra does;
    Hydra's own keys and settings that do not change results are left out."""
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError) as exc:
        raise _Unusable(f".hydra/overrides.yaml cannot be read ({type(exc).__name__})") from None
    items = [] if items is None else items
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise _Unusable(".hydra/overrides.yaml is not a list of overrides")
    try:
        parsed = [_parsed_override(line) for line in items]
    except Exception as exc:  # noqa: BLE001 - Hydra's parser raises its own exception types
        raise _Unusable(f".hydra/overrides.yaml: {_first_line(exc)}") from None
    out = {}
    for o in parsed:
        key = o.key_or_group
        if o.is_delete() or key.split(".")[0] == "hydra" or key in ("experiment", *NON_RESULT_FIELDS):
            continue
        if o.is_sweep_override():
            raise _Unusable(f".hydra/overrides.yaml: {o.input_line} lists several values")
        out[key] = _scalar(o.value())
    return out


def _load_point(folder: Path) -> Point:
    reason = verify_run(folder)
    if reason is not None:
        raise _Unusable(reason)
    try:
        summary = json.loads((folder / "summary.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise _Unusable(f"summary.json cannot be read ({type(exc).__name__})") from None
    _check_summary(summary)
    overrides = _overrides(folder)
    overrides.setdefault("policy", summary["policy"])
    overrides.setdefault("credibility", summary["credibility"])
    return Point(folder, overrides, summary)


def _subfolders(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _first_point(sweep_dir: Path) -> Point:
    """The first point of :func:`load_points` (the first folder that is a complete point), without
    checking the others."""
    if sweep_dir.is_dir():
        for folder in _subfolders(sweep_dir):
            try:
                return _load_point(folder)
            except _Unusable:
                continue
    return load_points(sweep_dir)[0]  # raises SweepError, with its warnings


def load_points(sweep_dir: str | os.PathLike) -> list[Point]:
    """Every complete point below ``sweep_dir``.

    A folder that is not one (no manifest, a checksum that fails, an unreadable summary or
    overrides file, the same settings as an earlier folder) is skipped with a warning naming it;
    SweepError if no point remains.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir}: no such folder: give the folder of a dsim multirun")
    points: list[Point] = []
    seen: dict[tuple, Path] = {}
    skipped = 0
    for folder in _subfolders(sweep_dir):
        try:
            pt = _load_point(folder)
            key = tuple(sorted((k, repr(v)) for k, v in pt.overrides.items()))
            if key in seen:
                raise _Unusable(f"the same settings as {seen[key].name}")
        except _Unusable as exc:
            log.warning("skipping %s: %s", folder.name, exc)
            skipped += 1
            continue
        seen[key] = folder
        points.append(pt)
    if not points:
        why = f" ({skipped} folders skipped, see the warnings)" if skipped else ""
        raise SweepError(f"{sweep_dir}: no complete sweep points found{why}: run `dsim -m ...` into it first")
    return points


# ---------------------------------------------------------------------------- tables
def _value(pt: Point, metric: str) -> float:
    m = pt.summary["metrics"].get(metric)
    return float(m.get("estimate", m.get("mean"))) if isinstance(m, dict) else float("nan")


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
    return sorted({k for p in points for k in p.overrides if k != "policy"})


def paired_difference(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float, float]:
    """Mean of a - b with a 95 % interval: paired t if paired, else Welch."""
    if paired:
        d = a - b
        n = d.size
        half = stdtrit(n - 1, 0.975) * d.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else 1.0
    half = stdtrit(dof, 0.975) * se
    diff = float(a.mean() - b.mean())
    return diff, diff - half, diff + half


def comparison_table(points: list[Point], reference: str = "rotational") -> pd.DataFrame:
    """Every posture minus ``reference``, per level of the other swept keys, for every metric of
    :func:`sim.metrics.replication_metrics` (paired when seed and R agree). Levels without a
    point of the reference posture are left out with a warning; empty if nothing compares."""
    reference = getattr(reference, "value", reference)
    keys = _group_keys(points)
    groups: dict[tuple, dict[str, Point]] = {}
    for pt in points:
        groups.setdefault(tuple(pt.overrides.get(k) for k in keys), {})[pt.policy] = pt
    rows = []
    cache: dict[Path, tuple[dict[str, np.ndarray], dict[str, float]]] = {}

    def metrics(pt: Point) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The point's replication metrics (only the columns they need are read) and their means."""
        if pt.folder not in cache:
            columns = dict(file_replication_metrics(pt.folder / "replications.parquet").items())
            cache[pt.folder] = ({c: v.to_numpy() for c, v in columns.items()},
                                {c: float(v.mean()) for c, v in columns.items()})
        return cache[pt.folder]

    missing = []
    for level, by_policy in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if reference not in by_policy:
            missing.append(", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, level, strict=True)))
            continue
        ref = by_policy[reference]
        for policy in POSTURE_ORDER:
            if policy == reference or policy not in by_policy:
                continue
            other = by_policy[policy]
            paired = (other.summary["seed"] == ref.summary["seed"]
                      and other.summary["replications"] == ref.summary["replications"])
            (ma, mean_a), (mb, mean_b) = metrics(other), metrics(ref)
            n = len(next(iter(ma.values())))
            for metric in ma:
                diff, lo, hi = paired_difference(ma[metric], mb[metric], paired)
                # a = the posture, b = the reference
                rows.append({**dict(zip(keys, level, strict=True)), "comparison": f"{policy} - {reference}",
                             "metric": metric, "difference": diff, "ci_low": lo, "ci_high": hi,
                             "significant": bool(lo > 0 or hi < 0), "paired": paired, "n": n,
                             "mean_a": mean_a[metric], "mean_b": mean_b[metric],
                             "cost_per_year_a": mean_a["us_deployment_cost_per_year"],
                             "cost_per_year_b": mean_b["us_deployment_cost_per_year"]})
    if missing and len(missing) < len(groups):
        log.warning("comparison.csv leaves out %d level(s) without a point of the reference posture "
                    "'%s': %s", len(missing), reference, "; ".join(missing))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- sweep layout
def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _sort_key(v: Any) -> tuple:
    return (0, float(v), "") if _is_number(v) else (1, 0.0, str(v))


@dataclass
class SweepLayout:
    """How a sweep's points are laid out in its figures.

    ``x``: the x-axis key; ``facets``: every other swept key (not ``policy``), each level of which
    is drawn separately; ``fixed``: the override keys with one value across the sweep.
    """

    x: str
    facets: list[str]
    fixed: dict[str, Any]
    levels: list[tuple] = field(default_factory=list)

    def level(self, pt: Point) -> tuple:
        return tuple(_fmt(pt.overrides.get(k)) for k in self.facets)

    def label(self, level: tuple) -> str:
        return ", ".join(f"{k}={v}" for k, v in zip(self.facets, level, strict=True))


def sweep_layout(points: list[Point]) -> SweepLayout:
    keys = _group_keys(points)
    swept = [k for k in keys if len({_fmt(p.overrides.get(k)) for p in points}) > 1]
    x = "credibility" if "credibility" in swept or not swept else swept[0]
    facets = [k for k in swept if k != x]
    fixed = {k: points[0].overrides.get(k) for k in keys if k not in swept}
    layout = SweepLayout(x, facets, fixed)
    levels = {layout.level(p): [p.overrides.get(k) for k in facets] for p in points}
    layout.levels = sorted(levels, key=lambda lv: [_sort_key(v) for v in levels[lv]])
    return layout


def _x_values(points: list[Point], x: str) -> list:
    values = {_fmt(p.overrides.get(x)): p.overrides.get(x) for p in points}
    return sorted(values.values(), key=_sort_key)


def _postures(points: list[Point]) -> list[str]:
    present = {p.policy for p in points}
    return [p for p in POSTURE_ORDER if p in present]


def _title_context(points: list[Point], layout: SweepLayout) -> str:
    """What is fixed across the sweep (only that: what varies is in legends and panel titles)."""
    def same(get):
        values = {json.dumps(get(p), sort_keys=True, default=str) for p in points}
        return get(points[0]) if len(values) == 1 else None

    parts = []
    scenario = same(lambda p: p.summary.get("scenario"))
    if scenario is not None:
        parts.append(f"scenario '{scenario}'")
    r = same(lambda p: p.summary["replications"])
    if r is not None:
        parts.append(f"{r:,} replications per point")
    seed = same(lambda p: p.summary["seed"])
    if seed is not None:
        parts.append(f"seed {seed}")
    spiral = same(lambda p: (p.summary["config"].get("params") or {}).get("spiral_weight"))
    if _is_number(spiral):
        parts.append(f"spiral weight {spiral:g}")
    described = {"replications", "seed", "scenario", "params.spiral_weight", layout.x}
    parts += [f"{k}={_fmt(v)}" for k, v in layout.fixed.items() if k not in described]
    return ", ".join(parts)


def _suptitle(fig, lines: list[str], fontsize: float) -> None:
    """The figure title, each line wrapped to the figure's width."""
    width = max(30, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))  # characters of ~0.55 em
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in lines if line), fontsize=fontsize)


def _positions(values: list) -> tuple[list, list[str] | None]:
    """Numeric x-values as they are; other values at 0, 1, ... with their text as tick labels."""
    if all(_is_number(v) for v in values):
        return [float(v) for v in values], None
    return list(range(len(values))), [_fmt(v) for v in values]


# ---------------------------------------------------------------------------- figures
def plot_policy_comparison(table: pd.DataFrame, points: list[Point], path: Path) -> dict:
    """Four metrics against the x key: one line per posture (colour) and level of the other swept
    keys (line style and marker). Returns the series drawn, keyed (metric, posture, level label)."""
    layout = sweep_layout(points)
    x = layout.x
    xs = _x_values(points, x)
    pos, ticks = _positions(xs)
    where = {_fmt(v): p for v, p in zip(xs, pos, strict=True)}
    # each (point, metric)'s value and interval, as the table holds them (looked up 1,000 times)
    rows = {(p, m): (v, lo, hi) for p, m, v, lo, hi in zip(
        *(table[c].to_numpy() for c in ("point", "metric", "value", "ci_low", "ci_high")), strict=True)}
    drawn: dict[tuple, pd.DataFrame] = {}
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
    for ax, metric in zip(axes.flat, PLOTTED_METRICS, strict=True):
        for policy in _postures(points):
            for i, level in enumerate(layout.levels):
                pts = sorted((p for p in points if p.policy == policy and layout.level(p) == level),
                             key=lambda p: _sort_key(p.overrides.get(x)))
                if not pts or (pts[0].folder.name, metric) not in rows:
                    continue
                d = pd.DataFrame({
                    "x": [where[_fmt(p.overrides.get(x))] for p in pts],
                    **{c: [rows[(p.folder.name, metric)][k] for p in pts]
                       for k, c in enumerate(("value", "ci_low", "ci_high"))},
                }).astype(float)
                label = policy if not layout.facets else f"{policy}, {layout.label(level)}"
                ax.plot(d["x"], d["value"], color=POSTURE_COLOURS[policy], ls=LINE_STYLES[i % 4],
                        marker=MARKERS[i % len(MARKERS)], ms=4, label=label)
                if d["ci_low"].notna().all():
                    ax.fill_between(d["x"], d["ci_low"], d["ci_high"], color=POSTURE_COLOURS[policy],
                                    alpha=0.15 if layout.facets else 0.2, lw=0)
                drawn[(metric, policy, layout.label(level))] = d
        ax.set_title(LABELS[metric], fontsize=12)
        ax.set_xlabel(f"{x} (probability that the US is resolute)" if x == "credibility" else x,
                      fontsize=11)
        if ticks is not None:
            ax.set_xticks(pos, ticks)
        unit = METRIC_UNITS.get(metric, "probability")
        ax.set_ylabel("probability" if unit.startswith("probability") else unit, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if layout.facets:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=9,
                   title=f"posture (colour), {', '.join(layout.facets)} (line style)")
    elif handles:
        axes.flat[0].legend(title="posture", fontsize=10)
    _suptitle(fig, [f"Deployment postures compared across {x} (mean and 95 % CI of the mean)",
                    _title_context(points, layout)], fontsize=13)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn


def plot_heatmap(table: pd.DataFrame, points: list[Point], path: Path,
                 metric: str = "p_kinetic_clash") -> dict[str, pd.DataFrame]:
    """``metric`` by posture (rows) and the x key (columns): one panel per level of the other swept
    keys, on one colour scale. Returns the grids drawn, keyed by level label."""
    del table  # the values come from the points' summaries (the table holds the same numbers)
    layout = sweep_layout(points)
    x = layout.x
    columns = [_fmt(v) for v in _x_values(points, x)]
    postures = _postures(points)
    grids: dict[str, pd.DataFrame] = {}
    for level in layout.levels:
        grid = pd.DataFrame(np.nan, index=postures, columns=columns)
        for p in points:
            if layout.level(p) == level:
                grid.loc[p.policy, _fmt(p.overrides.get(x))] = _value(p, metric)
        grids[layout.label(level)] = grid
    values = np.concatenate([g.to_numpy().ravel() for g in grids.values()])
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    n = len(grids)
    size = (max(7, 0.8 * len(columns) + 3), 1.2 + (0.55 * len(postures) + 1.3) * n)
    fig, axes = plt.subplots(n, 1, figsize=size, layout="constrained", squeeze=False)
    im = None
    for ax, (label, grid) in zip(axes[:, 0], grids.items(), strict=True):
        a = grid.to_numpy()
        im = ax.imshow(a, aspect="auto", cmap="magma_r", vmin=vmin, vmax=vmax)
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(postures)), postures)
        for (i, j), v in np.ndenumerate(a):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if v > (vmin + vmax) / 2 else "black")
        ax.set_ylabel("posture", fontsize=11)
        if label:
            ax.set_title(label, fontsize=11)
    axes[-1, 0].set_xlabel(x, fontsize=11)
    fig.colorbar(im, ax=axes[:, 0].tolist(), label=LABELS.get(metric, metric))
    per = f"; one panel per {', '.join(layout.facets)}" if layout.facets else ""
    _suptitle(fig, [f"{LABELS.get(metric, metric)} by posture and {x}{per}", _title_context(points, layout)],
              fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return grids


def plot_escalation_curves(points: list[Point], path: Path, levels: int = 4) -> dict[tuple, pd.Series]:
    """P(reached a rung by week t), one column per posture and one row per rung and level of the
    other swept keys; colours are up to ``levels`` values of the x key. Returns the series drawn,
    keyed (timeseries column, posture, level label, x value)."""
    layout = sweep_layout(points)
    x = layout.x
    values = _x_values(points, x)
    idx = np.unique(np.linspace(0, len(values) - 1, min(levels, len(values))).round().astype(int))
    pick = [values[i] for i in idx]
    postures = _postures(points)
    rows = [(level, rung) for level in layout.levels for rung in ESCALATION_RUNGS]
    fig, axes = plt.subplots(len(rows), len(postures), figsize=(4.2 * len(postures), 1.5 + 3.0 * len(rows)),
                             sharex=True, sharey=True, layout="constrained", squeeze=False)
    colours = plt.cm.viridis(np.linspace(0.1, 0.9, len(pick)))
    drawn: dict[tuple, pd.Series] = {}
    tables: dict[Path, pd.DataFrame] = {}  # each point's curves, read once for every rung

    def curves(pt: Point) -> pd.DataFrame:
        if pt.folder not in tables:
            tables[pt.folder] = pd.read_parquet(pt.folder / "timeseries.parquet",
                                                columns=["date", *(c for c, _ in ESCALATION_RUNGS)])
        return tables[pt.folder]

    for j, policy in enumerate(postures):
        for r, (level, (col, name)) in enumerate(rows):
            ax = axes[r, j]
            for v, colour in zip(pick, colours, strict=True):
                pt = next((p for p in points if p.policy == policy and layout.level(p) == level
                           and _fmt(p.overrides.get(x)) == _fmt(v)), None)  # one at most (load_points)
                if pt is None:
                    continue
                ts = curves(pt)
                series = pd.Series(ts[col].to_numpy(), index=pd.DatetimeIndex(ts["date"]), name=col)
                ax.plot(series.index, series.to_numpy(), color=colour, lw=1.8, label=f"{x} {_fmt(v)}")
                drawn[(col, policy, layout.label(level), _fmt(v))] = series
            ax.margins(x=0)
            ax.grid(alpha=0.3)
            if r == 0:
                ax.set_title(policy, fontsize=12)
            if j == 0:
                facet = f"\n{layout.label(level)}" if layout.facets else ""
                ax.set_ylabel(f"P({name}\nby week t){facet}", fontsize=10)
        locator = mdates.AutoDateLocator(maxticks=5)
        axes[-1, j].xaxis.set_major_locator(locator)
        axes[-1, j].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes[-1, j].set_xlabel("date", fontsize=11)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, 0].legend(handles, labels, fontsize=9)
    per = f" and {', '.join(layout.facets)} (rows)" if layout.facets else ""
    _suptitle(fig, [f"Escalation curves by posture (columns){per} and {x} (colours)",
                    _title_context(points, layout)], fontsize=13)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


# ---------------------------------------------------------------------------- aggregate
def _reference_policy(sweep_dir: Path, reference: Any) -> str:
    """The posture comparison.csv compares against: ``reference`` if given, else the sweep's own
    ``reference_policy`` (from the ``multirun.yaml`` Hydra wrote into the folder), else the default."""
    if reference is None:
        try:
            recorded = yaml.safe_load((sweep_dir / "multirun.yaml").read_bytes())
            reference = recorded.get("reference_policy") if isinstance(recorded, dict) else None
        except (OSError, yaml.YAMLError):
            reference = None
    if reference is None:
        reference = next(f.default for f in dataclasses.fields(RunConfig) if f.name == "reference_policy")
    reference = getattr(reference, "value", reference)
    if reference not in POSTURE_ORDER:
        raise SweepError(f"reference_policy={reference!r} is not a posture: choose one of "
                         f"{', '.join(POSTURE_ORDER)}")
    return reference


def _comparison(points: list[Point], reference: str, sweep_dir: Path) -> pd.DataFrame | None:
    """The comparison table, or None (with a warning saying why) when there is nothing to compare."""
    present = _postures(points)
    if reference not in present:
        log.warning("comparison.csv not written: no point has the reference posture '%s' (postures "
                    "present: %s): rerun with reference_policy=%s, or run dsim-report %s --reference %s",
                    reference, ", ".join(present), present[0], sweep_dir, present[0])
        return None
    table = comparison_table(points, reference)
    if table.empty:
        log.warning("comparison.csv not written: no posture other than the reference '%s' has a "
                    "point at the same settings (postures present: %s)", reference, ", ".join(present))
        return None
    return table


def aggregate(sweep_dir: str | os.PathLike, reference: str | Posture | None = None) -> dict[str, Path]:
    """Write the sweep files into ``sweep_dir``, all moved into place together; return their paths.

    ``reference``: the posture comparison.csv compares against (default: the sweep's
    ``reference_policy``). comparison.csv is absent when nothing compares (see the module doc).
    """
    sweep_dir = Path(sweep_dir)
    points = load_points(sweep_dir)
    reference = _reference_policy(sweep_dir, reference)
    table = sweep_table(points)
    for folder in _subfolders(sweep_dir):  # staging left by killed points (staging_folder cleans sweep_dir)
        remove_stale_staging(folder)
    figures = {"escalation_curves.png": (plot_escalation_curves, (points,)),
               "policy_comparison.png": (plot_policy_comparison, (table, points)),
               "sweep_heatmap.png": (plot_heatmap, (table, points))}
    with staging_folder(sweep_dir) as staging, _Forked(figures) as drawing:
        # the figures are drawn in forked processes while this one compares the postures
        drawing.start({name: staging / name for name in figures})
        comparison = _comparison(points, reference, sweep_dir)
        table.to_parquet(staging / "sweep.parquet", index=False)
        if comparison is not None:
            comparison.to_csv(staging / "comparison.csv", index=False, float_format="%.6g")
        drawing.wait()
        written = [name for name in SWEEP_FILES if (staging / name).is_file()]
        if comparison is None:
            (sweep_dir / "comparison.csv").unlink(missing_ok=True)  # it would not match the others
        for name in written:
            os.replace(staging / name, sweep_dir / name)
    compared = ("no comparison.csv" if comparison is None
                else f"comparison.csv: every posture minus {reference}")
    log.info("aggregated %d points into %s (%s)", len(points), sweep_dir, compared)
    return {name: sweep_dir / name for name in written}


# What the processes forked by :class:`_Forked` inherit: each task's function and arguments.
_TASKS: dict[str, tuple] = {}


def _run_task(name: str, path: Path) -> None:
    function, args = _TASKS[name]
    function(*args, path)


class _Forked:
    """Run ``tasks`` (name -> (function, args); each is called as ``function(*args, path)``) in
    processes forked from this one, up to one per usable core, while this process goes on; one
    after another here where processes cannot be forked or there is one core.

    The processes are forked on entering (they inherit the arguments without copying them);
    :meth:`start` hands them their paths,
    :meth:`wait` waits for every task and raises the first task's exception (by name order of
    ``tasks``). Leaving the block stops the processes."""

    def __init__(self, tasks: dict[str, tuple]) -> None:
        self.tasks = tasks
        self.pool = None
        self.pending: dict = {}

    def __enter__(self) -> _Forked:
        import multiprocessing
        import warnings

        from .cli import can_fork, usable_cores

        workers = min(len(self.tasks), usable_cores())
        if workers > 1 and can_fork():
            _TASKS.clear()
            _TASKS.update(self.tasks)
            with warnings.catch_warnings():  # Python 3.12 on forking with BLAS threads: see the sweeper
                warnings.simplefilter("ignore", DeprecationWarning)
                self.pool = multiprocessing.get_context("fork").Pool(workers)
        return self

    def start(self, paths: dict[str, Path]) -> None:
        for name, path in paths.items():
            if self.pool is None:
                _TASKS[name] = self.tasks[name]
                _run_task(name, path)
            else:
                self.pending[name] = self.pool.apply_async(_run_task, (name, path))

    def wait(self) -> None:
        for result in self.pending.values():
            result.get()
        self.pending.clear()

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            if exc[0] is None:
                self.pool.close()
            else:
                self.pool.terminate()
            self.pool.join()
            self.pool = None
        _TASKS.clear()


def _failure(exc: BaseException, sweep_dir: Any) -> tuple[int, str]:
    """Exit code and one line for an aggregation that raised ``exc``."""
    if isinstance(exc, SweepError):
        return 2, str(exc)
    if isinstance(exc, OSError):
        return 2, f"cannot write the sweep files into {sweep_dir}: {exc.strerror or _first_line(exc)}"
    log.debug("aggregation failed", exc_info=exc)
    return 1, (f"aggregating {sweep_dir} failed ({type(exc).__name__}: {_first_line(exc)}); the points "
               f"are kept: fix the cause, then run `dsim-report {sweep_dir}`")


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse's hook; one line instead of usage + error
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"dsim-report: {record.levelname.lower()}: {record.getMessage()}"


def run_named_study(sweep_dir: Path, reference: str | None = None) -> dict[str, Path]:
    """The named study of the sweep's points (``study.name``, e.g. posture_robustness:
    :func:`sim.robustness.run_study`) into ``sweep_dir``; nothing when they name none."""
    from .params import run_config_from_dict

    first = _first_point(Path(sweep_dir))  # the points' settings, the study's among them
    base = run_config_from_dict(first.summary["config"])
    if base.study.name is None:
        return {}
    from .robustness import run_study

    return run_study(sweep_dir, base, reference=reference or base.reference_policy.value)


def report_main(argv: list[str] | None = None) -> None:
    """``dsim-report SWEEP_DIR [--reference POSTURE]``: redo an existing sweep folder's files."""
    from .cli import use_file_backend

    parser = _OneLineParser(
        prog="dsim-report",
        description="Redo the aggregation and figures of a finished (or partly finished) `dsim -m` "
                    "sweep folder: sweep.parquet, comparison.csv (every posture minus the reference "
                    "posture, 95 % intervals from paired replications), escalation_curves.png, "
                    "policy_comparison.png and sweep_heatmap.png, and the named study of its points "
                    "(study.name, e.g. posture_robustness: decision.csv, sobol.csv, prim_boxes.csv). "
                    "Points that are incomplete or fail their manifest.json checksums are skipped "
                    "with a warning.",
        epilog="example: dsim-report multirun/rotational_vs_permanent/2026-01-05/10-00-00 "
               "--reference permanent")
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR",
                        help="the folder of a `dsim -m` run (hydra.sweep.dir), e.g. multirun/<date>/<time>")
    parser.add_argument("--reference", choices=POSTURE_ORDER, metavar="POSTURE",
                        help="the posture comparison.csv compares every other posture with: one of "
                             f"{', '.join(POSTURE_ORDER)} (default: the sweep's reference_policy setting)")
    args = parser.parse_args(argv)
    use_file_backend()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        paths = aggregate(args.sweep_dir, reference=args.reference)
        paths.update(run_named_study(Path(args.sweep_dir), reference=args.reference))
    except Exception as exc:  # noqa: BLE001 - every failure is one line and an exit code
        code, line = _failure(exc, args.sweep_dir)
        print(f"dsim-report: error: {line}", file=sys.stderr)
        sys.exit(code)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
    for path in paths.values():
        print(path)


try:  # the Hydra callback (Hydra is a dependency; the guard keeps this module importable alone)
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class SweepCallback(Callback):
    """Aggregates a multirun when it ends (configured in configs/config.yaml, hydra.callbacks).

    Hydra turns an exception raised by a callback into a warning and carries on, so the command
    would exit 0 without its sweep files; a failure here therefore ends the command itself with one
    line and ``SystemExit`` (which Hydra's callback and error handlers let through; they catch
    ``Exception`` only: hydra/_internal/callbacks.py and hydra/_internal/utils.py, Hydra 1.3).
    """

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        if hc.mode is not None and hc.mode.name == "MULTIRUN":
            log.info("point finished: %s", hc.job.override_dirname or hc.job.num)

    def on_multirun_end(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf

        sweep_dir = config.hydra.sweep.dir
        try:
            written = aggregate(Path(sweep_dir), reference=OmegaConf.select(config, "reference_policy"))
            written.update(run_named_study(Path(sweep_dir)))
            # the console shows warnings only in a sweep (configs/config.yaml): say where it went
            print(f"dsim: sweep written to {sweep_dir} ({', '.join(sorted(written))})", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - every failure is one line and an exit code
            code, line = _failure(exc, sweep_dir)
            print(f"dsim: error: {line}", file=sys.stderr)
            raise SystemExit(code) from None


__all__ = ["RUN_FILES", "SWEEP_FILES", "Point", "SweepCallback", "SweepError", "aggregate",
           "comparison_table", "load_points", "paired_difference", "point_complete", "report_main",
           "run_identity", "sweep_layout"]
