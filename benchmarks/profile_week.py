"""Where a week's time goes: `uv run python benchmarks/profile_week.py [R] [BLOCKS]` (R = 10,000).

Runs the default scenario (520 weeks) once with the compiled engine after a warm-up, timing every
kernel call and the uniform draws (with BLOCKS > 1, a batch of that many credibilities of R
replications each, as a batched sweep runs: the study's groups are 11 blocks of 2,000), and prints
microseconds per week for each, and for the rest (Mesa's scheduler, Python glue, and assembling the
results at the end). The timers add about a microsecond per call, so the total is a little above
an untimed run.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import numpy as np

from sim import DeterrenceModel, RunConfig, record_kernels, rules
from sim.model import DeterrenceModel as _Model
from sim.progress import warm_kernels

# Kernels called from Python, by module (a kernel that other kernels call, such as
# `rules.negative_binomial_quantile`, is timed inside its caller).
TIMED = {rules: ("dprk_week_utilities", "dprk_act", "us_week_weights", "us_act", "rok_week_utilities",
                 "japan_week_utilities", "quantal_draw", "beliefs_week", "escalation_week", "rotation_due",
                 "new_administration", "week_begin", "week_end"),
         record_kernels: ("record_week", "weekly_statistics")}


def main() -> None:
    r = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    batch = {"credibility": np.linspace(0.0, 1.0, blocks)} if blocks > 1 else None
    spent: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*args):
            t0 = time.perf_counter()
            out = fn(*args)
            spent[name] += time.perf_counter() - t0
            return out
        return wrapper

    for module, names in TIMED.items():
        for name in names:
            setattr(module, name, timed(name, getattr(module, name)))
    _Model.draw = timed("uniform draws", _Model.draw)

    cfg = RunConfig(replications=r, progress=False)
    warm_kernels(announce=False)  # load the compiled kernels
    spent.clear()
    model = DeterrenceModel(cfg, batch=batch)
    t0 = time.perf_counter()
    model.run()
    total = time.perf_counter() - t0
    weeks = model.n_weeks
    n = r * blocks
    print(f"R = {r:,} x {blocks} block(s), {weeks} weeks: {total:.2f} s, "
          f"{n * weeks / total:,.0f} rep-steps/s (timed)")
    print(f"{'part':22s} {'us/week':>8s} {'share':>6s}")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:22s} {seconds / weeks * 1e6:8.0f} {seconds / total:6.0%}")
    rest = total - sum(spent.values())
    print(f"{'rest':22s} {rest / weeks * 1e6:8.0f} {rest / total:6.0%}")


if __name__ == "__main__":
    main()
