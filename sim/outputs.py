"""Writing a run's files: two Parquet tables, summary.json and the escalation figure.

Files are first written into a hidden staging folder next to their destination and moved into
place only when all of them exist, so a failed or killed run leaves no half-written output.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

from .agents import RUNGS
from .metrics import METRIC_UNITS, headline_metrics
from .recording import RUNG_SLUGS, Results

RUN_FILES = ("timeseries.parquet", "replications.parquet", "summary.json", "escalation.png")


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
        "seed": cfg.seed,
        "replications": cfg.replications,
        "credibility": cfg.credibility,
        "policy": cfg.policy.name.value,
        "scenario": cfg.scenario.name,
        "start_date": str(cfg.scenario.start),
        "weeks": cfg.scenario.weeks,
        "config": cfg.to_dict(),
        **code_version(),
        **results.meta,
    }


def plot_escalation(timeseries: pd.DataFrame, title: str, path: Path) -> None:
    """Probability of having reached each rung by week t, and the tension band, for one run."""
    dates = pd.to_datetime(timeseries["date"])
    # Fixed margins instead of a layout engine: constrained layout re-draws the text several times
    # and took about 60 % of the figure's time (a sweep writes one figure per point).
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    fig.subplots_adjust(left=0.055, right=0.985, bottom=0.11, top=0.85, wspace=0.2)
    colours = plt.cm.plasma_r([0.15, 0.35, 0.55, 0.75, 0.95])
    for k, (slug, name) in enumerate(zip(RUNG_SLUGS[1:], RUNGS[1:], strict=True)):
        ax1.plot(dates, timeseries[f"p_reached_{slug}"], color=colours[k], lw=2,
                 label=f"\u2265 {k + 1}: {name}")
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_ylabel("P(highest rung so far \u2265 k)")
    ax1.set_title("Escalation ladder: share of replications at rung k or higher by week t")
    ax1.legend(title="rung k", fontsize=9, loc="center right")
    ax2.fill_between(dates, timeseries["tension_q05"], timeseries["tension_q95"], color="tab:red",
                     alpha=0.2, label="5-95 % of replications")
    ax2.plot(dates, timeseries["tension_q50"], color="tab:red", lw=1.5, label="median")
    ax2.plot(dates, timeseries["tension_mean"], color="black", lw=1, ls="--", label="mean")
    ax2.set_ylabel("tension (index, 0 = calm)")
    ax2.set_title("Tension across replications")
    ax2.legend(fontsize=9, loc="upper right")
    for ax in (ax1, ax2):
        ax.set_xlabel("date (weekly steps)")
        ax.xaxis.set_major_locator(mdates.YearLocator(base=max(1, len(dates) // 260)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=12)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_title(results: Results) -> str:
    cfg = results.config
    return (f"Scenario '{cfg.scenario.name}', posture {cfg.policy.name.value}, credibility "
            f"{cfg.credibility:g}, spiral weight {cfg.params.spiral_weight:g}, "
            f"{cfg.replications:,} replications, seed {cfg.seed}")


def write_run(results: Results, out_dir: str | os.PathLike) -> dict:
    """Write the four run files into ``out_dir`` atomically; return the summary dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    try:
        results.timeseries.to_parquet(staging / "timeseries.parquet", index=False)
        results.replications.to_parquet(staging / "replications.parquet", index=False)
        summary = summary_dict(results)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        plot_escalation(results.timeseries, run_title(results), staging / "escalation.png")
        # summary.json goes last: its presence marks a complete point (sim.sweep.point_complete)
        for name in sorted(RUN_FILES, key=lambda n: n == "summary.json"):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
