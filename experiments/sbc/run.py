"""Simulation-based calibration of the posterior procedure (issue 13; docs/calibration.md).

    uv run python experiments/sbc/run.py            # the committed reference
    uv run python experiments/sbc/run.py --quick --out /tmp/sbc   # seconds, for the tests

Synthetic records from prior draws of four parameters (the spiral weight and gain, the SRBM cost
and the launch-day intercept; the others at the installed point estimate), each one history of
2016-2023; the posterior of each by the procedure of sim.posterior (sim.sbc: all datasets in
lockstep, one batched model per likelihood call). Writes sbc.csv (one row per dataset and
parameter: truth, rank among 99 draws, quantiles, coverage), summary.json (coverage of the 50 %
and 90 % intervals with binomial 90 % intervals, a chi-square test of the rank histogram) and
ranks.png (the rank histograms) into --out (default: this folder's reference/).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402

from sim.calibrate import PosteriorConfig  # noqa: E402
from sim.config import config_dir, load_config  # noqa: E402
from sim.posterior import calibrated_point  # noqa: E402
from sim.sbc import run_sbc  # noqa: E402

HERE = Path(__file__).resolve().parent
FREE = ["spiral_weight", "spiral_gain", "dprk_cost_srbm", "launch_day_intercept"]
FULL = {"datasets": 30, "posterior": PosteriorConfig(walkers=12, steps=200, burn=100, replications=30,
                                                     pilot=96, start="prior", move="de")}
QUICK = {"datasets": 3, "posterior": PosteriorConfig(walkers=8, steps=6, burn=2, replications=6, pilot=8,
                                                     start="prior", move="de")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "reference"))
    args = ap.parse_args()
    s = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = load_config([], config_name="calibrate")
    cc = dataclasses.replace(base, parameters=[p for p in base.parameters if p.name in FREE],
                             posterior=s["posterior"], profile=[])
    fitted = yaml.safe_load((config_dir() / "params" / "calibrated.yaml").read_text())
    fixed = calibrated_point([f for f in fitted if f not in FREE])
    t = time.perf_counter()
    table = run_sbc(cc, FREE, s["datasets"], seed=1, fixed=fixed)
    seconds = time.perf_counter() - t
    table.to_csv(out / "sbc.csv", index=False, float_format="%.5g")
    summary = {"datasets": s["datasets"], "free": FREE, "seconds": seconds,
               "posterior": s["posterior"].__dict__, "parameters": {}}
    fig, axes = plt.subplots(1, len(FREE), figsize=(3.2 * len(FREE), 2.8))
    for ax, name in zip(axes, FREE, strict=True):
        d = table[table["parameter"] == name]
        n = len(d)
        cov = {}
        for level in ("in50", "in90"):
            k = int(d[level].sum())
            ci = stats.binomtest(k, n).proportion_ci(0.9) if n else None
            cov[level] = {"covered": k, "of": n, "rate": k / n if n else None,
                          "interval90": [ci.low, ci.high] if ci else None}
        bins = 10
        counts = np.histogram(d["rank"], bins=bins, range=(0, d["draws"].iloc[0] + 1))[0]
        chi = stats.chisquare(counts) if n >= bins else None
        summary["parameters"][name] = {**cov, "rank_histogram": counts.tolist(),
                                       "chi2_p": float(chi.pvalue) if chi else None,
                                       "mean_acceptance": float(d["acceptance"].mean())}
        ax.hist(d["rank"], bins=bins, range=(0, d["draws"].iloc[0] + 1), color="#4c72b0", edgecolor="white")
        ax.axhline(n / bins, color="black", lw=1, ls="--")
        ax.set_title(f"{name}\n50 %: {cov['in50']['rate']:.2f}, 90 %: {cov['in90']['rate']:.2f}", fontsize=8)
        ax.set_xlabel("rank of the truth", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Simulation-based calibration: {s['datasets']} synthetic records (dashed: uniform)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "ranks.png", dpi=120)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps(summary["parameters"], indent=1))
    print(f"{seconds:.0f} s; wrote sbc.csv, summary.json, ranks.png -> {out}")


if __name__ == "__main__":
    main()
