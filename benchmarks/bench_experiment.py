"""The rotational-vs-permanent study end to end: `uv run python benchmarks/bench_experiment.py`.

Measures, in one session and in turn, the wall time of

* one point: `dsim params=calibrated replications=2000` (the study's fixed settings, default posture
  and credibility), start-up, simulation and its files included;
* the study with one job per point: `dsim -m experiment=rotational_vs_permanent
  hydra.sweeper.batched=false` (every point, its files and the sweep's aggregation and figures);
* the batched study: `dsim -m experiment=rotational_vs_permanent` (the default: points that differ
  only in batchable settings run as the blocks of one model);

* with `--floor`, the study's floor (`study_floor.py`): only the work the study cannot skip (compose
  and check the 88 points, load the kernels, simulate every batched group on one process per core),
  no Hydra job, no files, no figures;

each into a temporary folder, and prints them with the ratio of the batched study to one point
(and of the floor to one point: the least the study's ratio could be with this engine on this machine),
whether the two studies' comparison.csv are identical, the machine's load (os.getloadavg: 1, 5
and 15-minute averages) before and after each command, and the processor time each command used
(user + system, its worker processes included: on a machine shared with other work this tells a
command that waited for a core from one that worked longer). Before each command a throw-away
process loads the compiled kernels, so that none of the timed commands compiles them (they are
compiled again whenever their source changes). The commands are the installed
`dsim` script of this environment (what `uv run dsim` starts, without uv's own check of the
environment).

Options: `--repeat N` runs the whole sequence N times and prints each measurement's spread;
`--no-unbatched` leaves out the one-job-per-point study (minutes); `--floor` adds the floor;
`--jobs N` runs the studies with the joblib launcher on N processes (default: Hydra's basic
launcher, as `dsim -m` does); `--workers N` sets dsim's sweeper's `hydra.sweeper.workers` (the
processes the basic launcher's jobs run in; default: one per core, as `dsim -m` does);
`--replications R` overrides the study's 2,000 (and the single point's).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def script(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.is_file() else (shutil.which(name) or name)


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def warm() -> None:
    """Load (or, if their source changed since, compile) the kernels in a throw-away process, so
    that no timed command pays a compilation (numba caches them on disk)."""
    subprocess.run([sys.executable, "-c", "from sim.progress import warm_kernels; warm_kernels(False)"],
                   check=True, capture_output=True)


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: str) -> tuple[float, float, str, str, str]:
    """Wall time and processor time of ``cmd`` (after :func:`warm`), the load before and after it,
    and what it printed."""
    warm()
    before = load()
    cpu0 = cpu_of_children()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    cpu = cpu_of_children() - cpu0
    if res.returncode != 0:
        sys.exit(f"bench_experiment: {' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return wall, cpu, before, load(), res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-unbatched", action="store_true")
    ap.add_argument("--floor", action="store_true", help="also time study_floor.py")
    ap.add_argument("--jobs", type=int, default=0, help="joblib launcher with N processes (0: basic)")
    ap.add_argument("--workers", type=int, default=None, help="hydra.sweeper.workers (default: one per core)")
    ap.add_argument("--replications", type=int, default=None)
    args = ap.parse_args()
    r = [f"replications={args.replications}"] if args.replications else []
    launcher = (["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs else [])
    if args.workers:
        launcher.append(f"hydra.sweeper.workers={args.workers}")
    study = [script("dsim"), "-m", "experiment=rotational_vs_permanent", "progress=false", *launcher, *r]
    single = [script("dsim"), "params=calibrated", "replications=2000", "progress=false", *r]
    floor = [sys.executable, str(Path(__file__).with_name("study_floor.py")), *r]
    times: dict[str, list[float]] = {"point": [], "batched": [], "floor": [], "one_job_per_point": []}
    workers = args.workers or "one per core"
    print(f"cores: {os.cpu_count()}, launcher: {f'joblib x {args.jobs}' if args.jobs else 'basic'}, "
          f"sweeper workers: {workers}, replications: {args.replications or 2000}", flush=True)
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs = [("point", [*single, f"hydra.run.dir={tmp}/point"]),
                    ("batched", [*study, f"hydra.sweep.dir={tmp}/batched"])]
            if args.floor:
                runs.append(("floor", floor))
            if not args.no_unbatched:
                runs.append(("one_job_per_point", [*study, "hydra.sweeper.batched=false",
                                                   f"hydra.sweep.dir={tmp}/unbatched"]))
            for name, cmd in runs:
                wall, cpu, before, after, printed = timed(cmd, tmp)
                times[name].append(wall)
                print(f"run {k + 1}: {name}: {wall:.1f} s, processor {cpu:.1f} s "
                      f"(load {before} before, {after} after)", flush=True)
                if name == "floor":  # its phases, from its own first line
                    phases = dict(line.split(": ", 1) for line in printed.splitlines() if "_s: " in line)
                    print(f"run {k + 1}: floor phases: " + ", ".join(f"{key[:-2]} {v} s" for key, v in
                                                                     phases.items()), flush=True)
            points = sum(1 for p in Path(tmp, "batched").iterdir() if p.is_dir() and "=" in p.name)
            if not args.no_unbatched:
                same = (Path(tmp, "batched", "comparison.csv").read_bytes()
                        == Path(tmp, "unbatched", "comparison.csv").read_bytes())
                print(f"run {k + 1}: comparison.csv identical: {same}", flush=True)
    print(f"points: {points}")
    for name, values in times.items():
        if values:
            spread = (f" (min {min(values):.1f}, max {max(values):.1f} over {len(values)})"
                      if len(values) > 1 else "")
            print(f"{name}_wall_s: {statistics.median(values):.1f}{spread}")
    for name in ("batched", "floor"):
        if not times[name]:
            continue
        ratio = [b / p for b, p in zip(times[name], times["point"], strict=True)]
        print(f"{name}_over_point: {statistics.median(ratio):.2f}"
              + (f" (min {min(ratio):.2f}, max {max(ratio):.2f})" if len(ratio) > 1 else ""))
    if times["one_job_per_point"]:
        speed = [u / b for u, b in zip(times["one_job_per_point"], times["batched"], strict=True)]
        print(f"one_job_per_point_over_batched: {statistics.median(speed):.2f}")
    print(f"load_after: {load()}")


if __name__ == "__main__":
    main()
