"""What each tab of the explorer shows, computed in the worker thread (no Solara here).

A view is built from validated settings (:class:`sim.explore.settings.Resolved`): it runs the model
(or takes the run from the cache), draws the figures as PNG bytes and builds the tables, so the
page only has to display it. Progress runs from 0 to 1: the weeks simulated, then the figures drawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ..recording import Results
from . import compute, figures
from .settings import Resolved, command, comparison_command, override_key

SIMULATION_SHARE = 0.75  # of the progress bar; the rest is drawing


@dataclass
class RunView:
    """One run: its settings, results, headline metrics and figures."""

    label: str
    overrides: list[str]
    command: str
    results: Results
    metrics: pd.DataFrame
    images: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class CompareView:
    """Two runs with common random numbers, overlaid, and their paired differences."""

    a: RunView
    b: RunView
    differences: pd.DataFrame
    display: pd.DataFrame
    sweep_command: str | None
    images: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class HistoryView:
    """The historical replay against the documented record."""

    run: RunView
    record: compute.Record
    images: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0


def _phase(progress: Callable[[float], None] | None, low: float, high: float):
    def report(fraction: float) -> None:
        if progress is not None:
            progress(low + (high - low) * fraction)
    return report


def _draw(builders: dict, progress: Callable[[float], None] | None, start: float) -> dict[str, bytes]:
    out = {}
    for i, (name, build) in enumerate(builders.items()):
        if progress is not None:
            progress(start + (1 - start) * i / len(builders))
        out[name] = figures.png(build())
    if progress is not None:
        progress(1.0)
    return out


def labels(a: list[str], b: list[str]) -> tuple[str, str]:
    """Short names of two settings: what differs between them (e.g. ``policy=permanent``)."""
    da, db = {override_key(o): o for o in a}, {override_key(o): o for o in b}
    keys = [k for k in {**da, **db} if da.get(k) != db.get(k)]
    if not keys:
        return "A", "B (same settings)"
    return ("A: " + ", ".join(da.get(k, f"{k} as configured") for k in keys),
            "B: " + ", ".join(db.get(k, f"{k} as configured") for k in keys))


def run_view(resolved: Resolved, progress: Callable[[float], None] | None = None,
             cache: compute.RunCache = compute.CACHE) -> RunView:
    t0 = time.monotonic()
    (results,) = compute.run_many([resolved.config], _phase(progress, 0.0, SIMULATION_SHARE), cache=cache)
    runs = [("run", results)]
    images = _draw({
        "escalation": lambda: figures.escalation_figure(runs),
        "launches": lambda: figures.launches_figure(runs),
        "beliefs": lambda: figures.beliefs_figure(runs),
        "cost": lambda: figures.cost_figure(runs),
    }, progress, SIMULATION_SHARE)
    return RunView(label="run", overrides=resolved.overrides, command=command(resolved.overrides),
                   results=results, metrics=compute.metrics_table(results), images=images,
                   seconds=time.monotonic() - t0)


def compare_view(a: Resolved, b: Resolved, progress: Callable[[float], None] | None = None,
                 cache: compute.RunCache = compute.CACHE) -> CompareView:
    t0 = time.monotonic()
    ra, rb = compute.run_many([a.config, b.config], _phase(progress, 0.0, SIMULATION_SHARE), cache=cache)
    la, lb = labels(a.overrides, b.overrides)
    runs = [(la, ra), (lb, rb)]
    table = compute.paired_differences(ra, rb)
    images = _draw({
        "differences": lambda: figures.differences_figure(table, la, lb),
        "escalation": lambda: figures.escalation_figure(runs),
        "launches": lambda: figures.launches_figure(runs),
        "beliefs": lambda: figures.beliefs_figure(runs),
        "cost": lambda: figures.cost_figure(runs),
    }, progress, SIMULATION_SHARE)
    views = [RunView(label=label, overrides=r.overrides, command=command(r.overrides), results=res,
                     metrics=pd.DataFrame()) for label, r, res in ((la, a, ra), (lb, b, rb))]
    return CompareView(a=views[0], b=views[1], differences=table,
                       display=compute.differences_display(table),
                       sweep_command=comparison_command(a.overrides, b.overrides), images=images,
                       seconds=time.monotonic() - t0)


def history_view(resolved: Resolved, progress: Callable[[float], None] | None = None,
                 cache: compute.RunCache = compute.CACHE) -> HistoryView:
    t0 = time.monotonic()
    (results,) = compute.run_many([resolved.config], _phase(progress, 0.0, SIMULATION_SHARE), cache=cache)
    record = compute.record_for(resolved.config)
    images = _draw({
        "history": lambda: figures.history_figure(results, record),
        "yearly": lambda: figures.yearly_figure(results, record),
    }, progress, SIMULATION_SHARE)
    run = RunView(label="replay", overrides=resolved.overrides, command=command(resolved.overrides),
                  results=results, metrics=compute.metrics_table(results))
    return HistoryView(run=run, record=record, images=images, seconds=time.monotonic() - t0)
