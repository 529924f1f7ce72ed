"""The least a study can take with this engine: `uv run python benchmarks/study_floor.py [OVERRIDES]`.

Does only the work that `dsim -m experiment=rotational_vs_permanent` cannot skip, in the same way:
it composes and checks every point (`sim.cli.preflight`, as `dsim` does before Hydra starts), loads
the compiled kernels, groups the points as dsim's sweeper does (`sim.batching.group_points`, one
group per worker at least) and runs every group as one batched model (`sim.batching.run_points`,
the results split per point) in one process per core forked from this one, the largest groups
first. It writes nothing: no Hydra job, no point folders, no sweep tables, no figures.

`bench_experiment.py --floor` times it as a whole command next to one point (`dsim
params=calibrated replications=2000`): its wall time over the point's is the smallest ratio the
study could reach on this machine if everything else it does (Hydra's jobs, 88 point folders, the
aggregation and its three figures) cost nothing. It also prints its own phases (seconds from its
first line, so the interpreter's start is not in them).

Extra arguments are overrides of the study (e.g. `replications=500`).
"""

from __future__ import annotations

import multiprocessing
import sys
import time

T0 = time.perf_counter()

from sim.batching import group_points, run_points  # noqa: E402 - timed from the first line
from sim.cli import preflight, sweep_workers  # noqa: E402
from sim.progress import warm_kernels  # noqa: E402

_CONFIGS: list = []


def _run(group: list[int]) -> int:
    """In a worker: run one group (discarding the results); its number of points."""
    run_points([_CONFIGS[i] for i in group])
    return len(group)


def main(argv: list[str]) -> None:
    imported = time.perf_counter()
    configs = preflight(["-m", "experiment=rotational_vs_permanent", "progress=false", *argv])
    composed = time.perf_counter()
    warm_kernels(announce=False)
    warmed = time.perf_counter()
    workers = sweep_workers(None)
    groups = sorted(group_points(configs, None, min_groups=workers), key=len, reverse=True)
    _CONFIGS[:] = configs
    done = 0
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for n in pool.imap_unordered(_run, groups):
            done += n
    simulated = time.perf_counter()
    print(f"points: {done} in {len(groups)} groups on {workers} workers")
    print(f"imports_s: {imported - T0:.2f}")
    print(f"compose_s: {composed - imported:.2f}")
    print(f"kernels_s: {warmed - composed:.2f}")
    print(f"simulate_s: {simulated - warmed:.2f}")
    print(f"total_s: {simulated - T0:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
