"""Rolling-origin hindcasts of the model against four baselines (issue 13; docs/validation.md).

    uv run python experiments/hindcasts/run.py            # the committed reference (about 30 min)
    uv run python experiments/hindcasts/run.py --quick --out /tmp/h   # a minute, for the tests

For each fold Y (2019-2022): a short SMM fit on 2016..Y (the chains' start), the posterior on
2016..Y (sim.posterior), and the forecast of Y+1 and Y+2 within the record (sim.forecast, regime
rule: the last era and posture continue, the calendar is known); the baselines (sim.validation)
are fitted on the same years. Writes into --out (default: this folder's reference/):
model_samples.parquet, scores.csv (one row per source x resolution x metric x horizon, with the
CRPS skill against the constant negative binomial), targets.csv (every target's scores),
folds.json (each fold's posterior summary and times) and validation.png/.pdf. The chains go to
outputs/hindcasts/fold_<Y>/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.calibrate import OptimiserConfig, PosteriorConfig
from sim.config import load_config
from sim.events import load_events
from sim.hindcast import run_fold
from sim.validation import (
    observed_counts,
    plot_validation,
    run_baselines,
    score_table,
    score_targets,
    skill_vs,
)

HERE = Path(__file__).resolve().parent
FULL = {"posterior": PosteriorConfig(chains=2, walkers=32, steps=300, burn=150, replications=50,
                                     predictive=50, workers=2, start="calibrated", start_spread=0.1),
        "optimiser": OptimiserConfig(popsize=4, maxiter=10, polish_maxiter=4, bootstrap=0, profile_points=0,
                                     workers=1),
        "replications": 4000, "blocks": 200, "smm_replications": 100, "folds": (2019, 2020, 2021, 2022),
        "baseline_draws": 4000}
QUICK = {"posterior": PosteriorConfig(chains=1, walkers=30, steps=4, burn=2, replications=8, predictive=10,
                                      workers=1, pilot=30),
         "optimiser": OptimiserConfig(popsize=1, maxiter=1, polish_maxiter=1, bootstrap=0, profile_points=0,
                                      workers=1),
         "replications": 200, "blocks": 20, "smm_replications": 10, "folds": (2022,), "baseline_draws": 400}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny settings, one fold (for the tests)")
    ap.add_argument("--out", default=str(HERE / "reference"), help="folder for the results")
    ap.add_argument("--chains", default="outputs/hindcasts", help="folder for the folds' chains")
    args = ap.parse_args()
    s = QUICK if args.quick else FULL
    out, chains = Path(args.out), Path(args.chains)
    out.mkdir(parents=True, exist_ok=True)
    base = load_config([], config_name="calibrate")
    events = load_events(base.events_file)
    yearly, monthly = observed_counts(events)
    started = time.perf_counter()
    samples, folds = [], []
    for y in s["folds"]:
        t = time.perf_counter()
        fold_samples, summary = run_fold(base, y, chains / f"fold_{y}", s["posterior"], s["optimiser"],
                                         replications=s["replications"], blocks=s["blocks"],
                                         smm_replications=s["smm_replications"])
        summary["seconds"] = time.perf_counter() - t
        samples.append(fold_samples)
        folds.append(summary)
        print(f"fold {y}: {summary['seconds']:.0f} s, acceptance {summary['acceptance']}, "
              f"spiral weight {summary['posterior'].get('spiral_weight', {}).get('q50', float('nan')):.2f}",
              flush=True)
    model = pd.concat(samples, ignore_index=True)
    baselines = run_baselines(yearly, monthly, folds=s["folds"], n=s["baseline_draws"], seed=13)
    forecasts = pd.concat([model, baselines.astype({"source": str, "metric": str, "resolution": str})],
                          ignore_index=True)
    rng = np.random.default_rng(20161220)
    table = skill_vs(score_table(forecasts, yearly, monthly, rng))
    targets = score_targets(forecasts, yearly, monthly, np.random.default_rng(20161220))
    model.to_parquet(out / "model_samples.parquet", index=False)
    table.to_csv(out / "scores.csv", index=False, float_format="%.4g")
    targets.to_csv(out / "targets.csv", index=False, float_format="%.4g")
    plot_validation(forecasts, yearly, out / "validation.png")
    (out / "folds.json").write_text(json.dumps({"seconds": time.perf_counter() - started, "folds": folds},
                                               indent=2, default=float) + "\n")
    print(table.to_string())
    print(f"wrote model_samples.parquet, scores.csv, targets.csv, folds.json, validation.png -> {out}")


if __name__ == "__main__":
    main()
