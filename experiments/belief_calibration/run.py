"""Is the DPRK's belief a probability in the model's own world? (issue 11's yardstick)

Runs the rotational-vs-permanent study's configuration (calibrated parameters, 2,000 replications,
ten years from 2026) for every posture at credibility 0.2 and 0.8, for the consistent DPRK and the
misperceiving one (`params.perception=costly_signals`), and writes, per point, the expected
calibration error of the DPRK's final belief against the US type at the end
(`sim.diagnostics.belief_calibration`) into `reference/belief_calibration.csv` (or the folder given).

    uv run python experiments/belief_calibration/run.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from sim import load_config, run
from sim.diagnostics import belief_calibration

POSTURES = ("rotational", "permanent", "reactive", "none")
CREDIBILITIES = (0.2, 0.8)
PERCEPTIONS = ("consistent", "costly_signals")


def main(out_dir: Path) -> pd.DataFrame:
    rows = []
    for perception in PERCEPTIONS:
        for posture in POSTURES:
            for credibility in CREDIBILITIES:
                rows.append(_point(perception, posture, credibility))
    table = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "belief_calibration.csv", index=False, float_format="%.4f")
    return table


def _point(perception: str, posture: str, credibility: float) -> dict:
    cfg = load_config(["experiment=rotational_vs_permanent", f"policy={posture}",
                       f"credibility={credibility}", f"params.perception={perception}", "progress=false"])
    cal = belief_calibration(run(cfg).per_replication())
    print(f"{perception:>14} {posture:>10} credibility {credibility}: ECE {cal['ece']:.3f}, mean belief "
          f"{cal['mean_belief_if_resolute']:.2f} if resolute, "
          f"{cal['mean_belief_if_irresolute']:.2f} if not (share resolute {cal['share_resolute']:.3f})")
    return {"perception": perception, "policy": posture, "credibility": credibility,
            "replications": cfg.replications, "seed": cfg.seed, "spiral_weight": cfg.params.spiral_weight,
            **{k: v for k, v in cal.items() if k != "table"}}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "reference")
