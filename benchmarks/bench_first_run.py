"""The first run after an install against a warm one: `uv run python benchmarks/bench_first_run.py`.

Clones this repository's committed HEAD into a temporary folder, installs it there (`uv sync
--locked`, from uv's package cache: no download when the packages are cached), then times, in that
clone:

1. the first `uv run dsim` after the install (the default scenario, 1,000 replications x 520 weeks,
   its files and figure), as a newcomer runs it;
2. `--repeat` (default 3) warm runs of the same command;

and prints each wall time, the ratio of the first to the median warm run, and the machine's load
(1, 5 and 15-minute averages) before and after each. With `--native` it does the same with
``DSIM_NATIVE_KERNELS=1`` (the kernels compiled for this machine's own CPU on first use, which is
what every first run did before the compiled kernels were shipped; ``sim.kernel_cache``).

Needs git and uv (`uv` on the PATH, else `python3 -m uv`) and a Python >= 3.12 for uv (`UV_PYTHON`,
or pyenv's 3.12.1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str, str]:
    before = load()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return seconds, before, load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm runs after the first (default 3)")
    parser.add_argument("--native", action="store_true",
                        help="compile for this CPU instead (DSIM_NATIVE_KERNELS=1)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "VIRTUAL_ENV"))}
    env.pop("DSIM_NATIVE_KERNELS", None)
    if args.native:
        env["DSIM_NATIVE_KERNELS"] = "1"
    if "UV_PYTHON" not in env:
        prefix = subprocess.run(["pyenv", "prefix", "3.12.1"], capture_output=True, text=True).stdout.strip()
        if prefix:
            env["UV_PYTHON"] = f"{prefix}/bin/python"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3", "-m", "uv"]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    kind = "native (compiled on first use)" if args.native else "shipped (portable target)"
    print(f"commit {head}; {os.cpu_count()} cores; kernels: {kind}")
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        seconds, before, after = timed(uv + ["sync", "--locked"], clone, env)
        print(f"uv sync --locked: {seconds:.1f} s (load {before} -> {after})")
        dsim = uv + ["run", "dsim", "progress=false"]
        first, before, after = timed(dsim + [f"hydra.run.dir={tmp}/run0"], clone, env)
        print(f"first uv run dsim: {first:.2f} s (load {before} -> {after})")
        warm = []
        for i in range(args.repeat):
            seconds, before, after = timed(dsim + [f"hydra.run.dir={tmp}/run{i + 1}"], clone, env)
            warm.append(seconds)
            print(f"warm run {i + 1}: {seconds:.2f} s (load {before} -> {after})")
    median = statistics.median(warm)
    print(f"first / median warm: {first / median:.2f}")


if __name__ == "__main__":
    main()
