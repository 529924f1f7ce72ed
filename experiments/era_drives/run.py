"""One weapons drive per era, or one drive for all years plus the documented shocks? (issue 12)

Fits the calibration twice on the same targets, seed and optimiser budget (configs/calibrate.yaml,
without the bootstrap and the profile): once with the three era drives free (2016-17, 2019, 2020-21;
the committed fit's specification), and once with every era at the reference drive 1, so that the
years differ only by their documented shocks: the halt declared in April 2018 (drive 0 in 2018 in
both), the 2018-19 summitry (diplomacy) and the nuclear-test moratorium from 2018, the suspended or
scaled-down combined exercises, and the US postures of the record (sim.history). Writes
`reference/era_drives.csv`: per specification the loss, its terms, the exercise-week launch ratio,
the fitted spiral weight and how many of the 16 yearly launch-day and missile counts of 2016-2023
fall inside the replay's 90 % band.

    uv run python experiments/era_drives/run.py [OUT_DIR]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd

from sim.calibrate import calibrate
from sim.config import load_config
from sim.history import ERA_DRIVE_PARAMS


def main(out_dir: Path) -> pd.DataFrame:
    cc = dataclasses.replace(load_config([], config_name="calibrate"), progress=False)
    cc = dataclasses.replace(cc, profile=[],
                             optimiser=dataclasses.replace(cc.optimiser, bootstrap=0, profile_points=0))
    single = dataclasses.replace(cc, parameters=[p for p in cc.parameters
                                                 if p.name not in ERA_DRIVE_PARAMS])
    rows = []
    for label, spec in (("one drive per era (fitted)", cc),
                        ("one drive for all years (1) + documented shocks", single)):
        result = calibrate(spec)
        study = pd.DataFrame(result["event_study"]).set_index("statistic")
        counts = [t for t in result["targets"]
                  if t["target"] in ("dprk_launch_days", "dprk_missiles") and t["simulated_90"]]
        inside = sum(t["simulated_90"][0] <= t["observed"] <= t["simulated_90"][1] for t in counts)
        rows.append({"specification": label, "free_parameters": len(spec.parameters),
                     "loss": result["loss"], **{f"loss_{k}": v for k, v in result["loss_terms"].items()},
                     "exercise_launch_ratio": study.loc["exercise_launch_ratio", "simulated"],
                     "spiral_weight": result["parameters"]["spiral_weight"]["estimate"],
                     "counts_inside_90_band": f"{inside} of {len(counts)}",
                     "run_time_seconds": result["run_time_seconds"]})
        print(f"{label}: loss {result['loss']:.4f}, spiral weight "
              f"{result['parameters']['spiral_weight']['estimate']:.3f}")
    table = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "era_drives.csv", index=False, float_format="%.4f")
    return table


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "reference")
