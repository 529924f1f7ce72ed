"""Every speed figure of docs/performance.md in one sitting: `uv run python benchmarks/bench_all.py`.

Runs, one after the other on this machine, and prints their outputs and a summary at the end:

1. the ensemble engine (`bench_ensemble.py --quick`): the compiled engine at R = 1 ... 100,000, and
   the plain Mesa way (one model per replication) at R = 100;
2. the first run after an install (`bench_first_run.py`): a fresh clone, `uv sync`, its first
   `uv run dsim` and warm ones;
3. the rotational-vs-permanent study (`bench_experiment.py`): one point, the study batched, the
   study one job per point, and the study's floor (`--floor`: `study_floor.py`);
4. the posterior calibration's likelihood call (`bench_posterior.py`);
5. the explorer's first answer: in a fresh process, the imports of the explorer, then its default
   run and four figures (`sim.explore.views.run_view`, the page's first answer after the browser
   connects).

Each part prints the machine's load average before and after it. Takes about 4 minutes here.
`--skip NAME` (ensemble, first_run, experiment, posterior, explorer) leaves a part out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

EXPLORER = """
import time
t0 = time.perf_counter()
from sim.explore import compute
from sim.explore.settings import Settings, resolve
from sim.explore.views import run_view
t1 = time.perf_counter()
view = run_view(resolve(Settings.initial()), cache=compute.RunCache())
t2 = time.perf_counter()
print(f"explorer imports: {t1 - t0:.2f} s")
print(f"explorer first answer (default run and four figures): {t2 - t1:.2f} s")
"""

PARTS = {
    "ensemble": [sys.executable, str(HERE / "bench_ensemble.py"), "--quick"],
    "first_run": [sys.executable, str(HERE / "bench_first_run.py")],
    "experiment": [sys.executable, str(HERE / "bench_experiment.py"), "--floor"],
    "posterior": [sys.executable, str(HERE / "bench_posterior.py")],
    "explorer": [sys.executable, "-c", EXPLORER],
}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", action="append", default=[], choices=sorted(PARTS))
    args = parser.parse_args()
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}; {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.platform()}, Python {platform.python_version()}", flush=True)
    summary = []
    for name, cmd in PARTS.items():
        if name in args.skip:
            continue
        before = load()
        t0 = time.perf_counter()
        print(f"\n== {name} (load {before})", flush=True)
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        seconds = time.perf_counter() - t0
        print(res.stdout.rstrip(), flush=True)
        if res.returncode != 0:
            print(f"{name} failed:\n{res.stderr[-3000:]}", flush=True)
        summary.append(f"{name}: {seconds:.0f} s, load {before} -> {load()}, exit {res.returncode}")
    print("\n== summary")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
