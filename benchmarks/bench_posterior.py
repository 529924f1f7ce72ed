"""Throughput of the posterior calibration (dsim-calibrate method=posterior), at its default settings.

    uv run python benchmarks/bench_posterior.py [--calls 5]

Prints one `name: value` line per figure: the time of one likelihood call (one half-ensemble of
proposals, `walkers / 2` points x `replications` histories, simulated as one batched model, then
the summaries and the synthetic likelihoods), split into the model's weeks, the summaries and the
likelihood; simulated histories per second (the "simulations per second"); and the projected wall
time of the default run (chains in parallel processes, 2 calls per step, plus the initial
evaluation) on this machine. Times are medians over --calls calls; the machine's load average is
printed with them.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5)
    args = ap.parse_args()
    from sim.config import load_config
    from sim.posterior import (
        calibrated_point,
        make_run,
        replication_summaries,
        seed_of_call,
        synthetic_log_likelihood,
    )

    cc = load_config([], config_name="calibrate")
    pc = cc.posterior
    run = make_run(cc)
    half = pc.walkers // 2
    centre = calibrated_point(run.names)
    rng = np.random.default_rng(0)
    span = run.upper - run.lower
    points = np.clip(np.array([centre[n] for n in run.names])
                     + 0.05 * span * rng.standard_normal((half, len(span))),
                     run.lower, run.upper)
    run.log_prob(points, 1)  # compile and warm up
    totals, sims, likes = [], [], []
    for k in range(args.calls):
        t0 = time.perf_counter()
        x = replication_summaries(run.problem, points, pc.replications, seed_of_call(cc.seed, 0, k), run.keys,
                                  independent=True)
        t1 = time.perf_counter()
        [synthetic_log_likelihood(s, run.observed) for s in x]
        t2 = time.perf_counter()
        sims.append(t1 - t0)
        likes.append(t2 - t1)
        totals.append(t2 - t0)
    call = float(np.median(totals))
    histories = half * pc.replications
    rounds = -(-pc.chains // pc.workers)
    projected = rounds * (2 * pc.steps + 1) * call
    print(f"load_average_1min: {os.getloadavg()[0]:.2f}")
    print(f"free_parameters: {len(run.names)}")
    print(f"statistics: {len(run.keys)}")
    print(f"proposals_per_call: {half}")
    print(f"histories_per_call: {histories}")
    print(f"weeks_per_history: {run.problem.base.scenario.weeks}")
    print(f"seconds_per_call: {call:.3f}")
    print(f"seconds_per_call_simulation_and_summaries: {np.median(sims):.3f}")
    print(f"seconds_per_call_synthetic_likelihood: {np.median(likes):.4f}")
    print(f"simulated_histories_per_s: {histories / call:.0f}")
    print(f"replication_weeks_per_s: {histories * run.problem.base.scenario.weeks / call:.0f}")
    print(f"projected_default_run_s: {projected:.0f}  "
          f"({pc.chains} chains x {pc.steps} steps x 2 calls, {min(pc.workers, pc.chains)} processes, "
          "one chain per core)")


if __name__ == "__main__":
    main()
