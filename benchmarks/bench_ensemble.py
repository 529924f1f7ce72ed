"""Ensemble speed and memory: `uv run python benchmarks/bench_ensemble.py [--quick]`.

Times the default scenario (baseline, 520 weeks, default parameters) for R = 1, 100, 10,000 and
100,000 replications in one model, several repetitions each, and prints the median wall time,
replication-steps per second and the peak resident memory of the process that ran it. Each R runs
in a fresh single-threaded subprocess (so peaks do not accumulate and BLAS threads do not help).
It also times the plain Mesa way, R separate one-replication models, for R = 100, and prints the
ratio, and the machine's load average before and after. Each row first runs a 10-replication model
(numba's compiled kernels load from the cache then; the first run after an install compiles them,
about half a minute). A step is one simulated week. The last line is
``replication_steps_per_s_R10000: <number>``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap

WEEKS = 520
WORKER = textwrap.dedent("""
    import json, resource, sys, time
    from sim import RunConfig, DeterrenceModel
    from sim.progress import warm_kernels
    R, reps, separate = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    cfg = RunConfig(replications=1 if separate else R, progress=False)
    warm_kernels(announce=False)  # load the compiled kernels
    times = []
    for rep in range(reps):
        t0 = time.perf_counter()
        if separate:  # the plain Mesa way: one model per replication
            for seed in range(R):
                DeterrenceModel(cfg.replace(seed=seed)).run()
        else:
            DeterrenceModel(cfg).run()
        times.append(time.perf_counter() - t0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"times": times, "peak_mib": peak_kib / 1024}))
""")


def measure(r: int, reps: int, separate: bool = False) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", WORKER, str(r), str(reps), "1" if separate else "0"],
                         capture_output=True, text=True, check=True, env=env)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    median = statistics.median(data["times"])
    return {"R": r, "median_s": median, "steps_per_s": r * WEEKS / median, "peak_mib": data["peak_mib"],
            "reps": reps}


def main() -> None:
    quick = "--quick" in sys.argv
    plan = [(1, 5), (100, 5), (10_000, 3 if quick else 5), (100_000, 1 if quick else 2)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    print(f"default scenario, {WEEKS} weeks (step = 1 simulated week); one single-threaded process per "
          f"row; load average {os.getloadavg()[0]:.2f}")
    print(f"{'R':>8} {'reps':>5} {'median wall s':>14} {'rep-steps/s':>14} {'peak RSS MiB':>13}")
    rows = {}
    for r, reps in plan:
        row = measure(r, reps)
        rows[r] = row
        print(f"{r:>8} {reps:>5} {row['median_s']:>14.3f} {row['steps_per_s']:>14,.0f} "
              f"{row['peak_mib']:>13.0f}", flush=True)
    plain = measure(100, 1 if quick else 3, separate=True)
    print(f"\nplain Mesa, 100 separate one-replication models: {plain['median_s']:.2f} s, "
          f"{plain['steps_per_s']:,.0f} rep-steps/s")
    print(f"ensemble R=100 / separate: {rows[100]['steps_per_s'] / plain['steps_per_s']:.1f}x; "
          f"ensemble R=10,000 / separate: {rows[10_000]['steps_per_s'] / plain['steps_per_s']:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("step_length: 1 week")
    print(f"replication_steps_per_s_R10000: {rows[10_000]['steps_per_s']:.0f}")


if __name__ == "__main__":
    main()
