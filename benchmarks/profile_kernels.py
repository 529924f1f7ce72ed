"""Each kernel timed alone: `uv run python benchmarks/profile_kernels.py [R] [BLOCKS] [WEEK]`.

Runs the calibrated scenario (`params=calibrated`, R = 10,000, or BLOCKS blocks of R replications at
credibilities 0 ... 1 as a batched sweep runs them) and captures every kernel's arguments at the
WEEK-th call (default 200). Then it times each captured call alone: its arrays restored from the
capture before every call (the restore timed apart and subtracted), best of 7 rounds of 50 calls.
It prints microseconds per call. This is how docs/performance.md measured the kernels one by one.
Before and after a change to a kernel, run it on each version in turn: the same capture gives the
same inputs.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sim import DeterrenceModel, load_config, record_kernels, rules
from sim.progress import warm_kernels

# The kernels called from Python (quantal_draw: the ROK's, then Japan's draw of the week).
KERNELS = {rules: ("dprk_week_utilities", "dprk_act", "us_week_weights", "us_act", "rok_week_utilities",
                   "japan_week_utilities", "quantal_draw", "beliefs_week", "escalation_week", "week_begin",
                   "week_end"),
           record_kernels: ("record_week", "weekly_statistics")}


def capture(r: int, blocks: int, week: int) -> dict[str, list]:
    """Each kernel's arguments at its ``week``-th call (and the next: the ROK's and Japan's draws)."""
    saved: dict[str, list] = {}
    calls: dict[str, int] = {}
    originals = {}

    def spy(name, fn):
        def wrapper(*args):
            calls[name] = calls.get(name, 0) + 1
            if calls[name] in (week, week + 1):
                key = f"{name}#{calls[name]}"
                saved[key] = [np.array(a) if isinstance(a, np.ndarray) else a for a in args]
            return fn(*args)
        return wrapper

    for module, names in KERNELS.items():
        for name in names:
            originals[(module, name)] = getattr(module, name)
            setattr(module, name, spy(name, originals[(module, name)]))
    try:
        cfg = load_config(["params=calibrated", f"replications={r}"]).replace(progress=False)
        batch = {"credibility": np.linspace(0.0, 1.0, blocks)} if blocks > 1 else None
        DeterrenceModel(cfg, batch=batch).run()
    finally:
        for (module, name), fn in originals.items():
            setattr(module, name, fn)
    return saved


def time_call(fn, captured: list, rounds: int = 7, calls: int = 50) -> float:
    """Seconds per call of ``fn`` on fresh copies of ``captured`` (the restore subtracted)."""
    work = [a.copy() if isinstance(a, np.ndarray) else a for a in captured]
    arrays = [(w, c) for w, c in zip(work, captured, strict=True) if isinstance(w, np.ndarray)]
    fn(*work)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            for w, c in arrays:
                np.copyto(w, c)
        restore = (time.perf_counter() - t0) / calls
        t0 = time.perf_counter()
        for _ in range(calls):
            for w, c in arrays:
                np.copyto(w, c)
            fn(*work)
        best = min(best, (time.perf_counter() - t0) / calls - restore)
    return best


def main() -> None:
    r = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    week = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    warm_kernels(announce=False)
    saved = capture(r, blocks, week)
    print(f"R = {r:,} x {blocks} block(s), arguments of call {week} (and {week + 1}); us per call, "
          "best of 7 x 50")
    total = 0.0
    for key in sorted(saved):
        name = key.split("#")[0]
        fn = getattr(rules, name, None) or getattr(record_kernels, name)
        seconds = time_call(fn, saved[key])
        total += seconds
        print(f"{key:28s} {seconds * 1e6:8.1f}")
    print(f"{'total':28s} {total * 1e6:8.1f}")


if __name__ == "__main__":
    main()
