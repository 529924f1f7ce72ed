"""The rotational-vs-permanent experiment end to end: `uv run python benchmarks/bench_experiment.py`.

Runs `dsim -m experiment=rotational_vs_permanent` (11 credibilities x 4 postures x 2,000
replications x 520 weeks) with the joblib launcher on 2 processes into a temporary folder, and
prints the wall time of the whole command (start-up, 44 points with their files and figures, and
the aggregation) and of the aggregation alone (`dsim-report` on the finished folder).
Options: `--jobs N` (default 2), `--replications R` (default: the experiment's 2,000).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def script(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.is_file() else (shutil.which(name) or name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--replications", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [script("dsim"), "-m", "experiment=rotational_vs_permanent", "hydra/launcher=joblib",
               f"hydra.launcher.n_jobs={args.jobs}", f"hydra.sweep.dir={tmp}/sweep"]
        if args.replications:
            cmd.append(f"replications={args.replications}")
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)
        total = time.perf_counter() - t0
        points = sum(1 for p in Path(tmp, "sweep").iterdir() if p.is_dir() and "=" in p.name)
        t1 = time.perf_counter()
        subprocess.run([script("dsim-report"), f"{tmp}/sweep"], check=True, capture_output=True)
        report = time.perf_counter() - t1
    print(f"points: {points}, jobs: {args.jobs}, replications: {args.replications or 2000}")
    print(f"experiment wall time: {total:.1f} s")
    print(f"aggregation alone (dsim-report): {report:.1f} s")
    print(f"experiment_wall_s: {total:.1f}")


if __name__ == "__main__":
    main()
