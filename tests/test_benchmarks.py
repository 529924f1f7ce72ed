"""The benchmark scripts that docs/performance.md quotes still run (what they print is measured,
never asserted here: speed is not a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_study_floor_runs_every_point_and_prints_its_phases(tmp_path):
    """study_floor.py on a small study (10 replications, 20 weeks): it simulates all 88 points of
    rotational_vs_permanent and prints each phase it times."""
    res = subprocess.run([sys.executable, str(BENCHMARKS / "study_floor.py"), "replications=10",
                          "scenario.weeks=20"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert lines["points"].startswith("88 in ")
    for phase in ("imports_s", "compose_s", "kernels_s", "simulate_s", "total_s"):
        assert float(lines[phase]) >= 0
    assert list(tmp_path.iterdir()) == []  # it writes nothing
