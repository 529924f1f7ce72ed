"""Rolling-origin hindcasts: fit the posterior on the record up to year Y, forecast Y+1 and Y+2 under
the regime rule of :mod:`sim.forecast`, and score the forecasts with :mod:`sim.validation` against
four baselines fitted on the same years (rolling-origin evaluation: Tashman 2000, Int. J. Forecast.
16:437; the scores and baselines as in the VIEWS prediction challenge: Hegre et al. 2024).

Each fold is a full calibration on its own years: the free parameters are those of the calibration
minus the era drives of eras that begin after Y (the record up to Y says nothing of them, and the
regime rule does not use them); a short simulated-method-of-moments fit on the fold's years gives
the point the chains start around (so no fold's chains start from a fit that saw its test years);
then the posterior (Bayesian synthetic likelihood, :mod:`sim.posterior`) on the fold's years; then
the forecast. ``experiments/hindcasts/run.py`` runs the folds and writes the reference results that
docs/validation.md reads.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pandas as pd

from .calibrate import CalibrationConfig, OptimiserConfig, PosteriorConfig, calibrate
from .events import load_events
from .forecast import forecast_scenario, simulate_counts
from .history import ERA_OF_PARAM, ERAS, YEARS

__all__ = ["fold_config", "run_fold"]


def fold_config(base: CalibrationConfig, last_year: int, posterior: PosteriorConfig,
                optimiser: OptimiserConfig, replications: int = 100) -> CalibrationConfig:
    """``base`` fitted on 2016..``last_year``, without the drives of eras that begin later."""
    starts = {e.name: int(e.start_date[:4]) for e in ERAS}
    keep = [p for p in base.parameters
            if p.name not in ERA_OF_PARAM or starts[ERA_OF_PARAM[p.name]] <= last_year]
    years = [y for y in YEARS if y <= last_year]
    return dataclasses.replace(base, years=years, parameters=keep, posterior=posterior, optimiser=optimiser,
                               profile=[], replications=replications, install=False, progress=False,
                               method="posterior")


def run_fold(base: CalibrationConfig, last_year: int, folder: Path, posterior: PosteriorConfig,
             optimiser: OptimiserConfig, horizons: tuple[int, ...] = (1, 2), replications: int = 4000,
             blocks: int = 200, smm_replications: int = 100) -> tuple[pd.DataFrame, dict]:
    """One fold: the start point (SMM), the posterior, the forecast of ``last_year + h``
    (record years only). Returns the model's forecast samples (long format of
    :mod:`sim.validation`, source ``model``) and a summary of the fold."""
    from .posterior import run_posterior

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    events = load_events(base.events_file)
    cc = fold_config(base, last_year, posterior, optimiser, smm_replications)
    t0 = time.perf_counter()
    point = calibrate(dataclasses.replace(cc, method="point"), events)
    t_point = time.perf_counter() - t0
    start = {k: float(v) for k, v in point["_fitted"].items()}
    result = run_posterior(cc, folder, events, start_at=start)
    draws = result.pop("_draws")
    result.pop("_predictive")
    targets = [last_year + h for h in horizons if last_year + h <= YEARS[-1]]
    scenario = forecast_scenario(events, last_fitted=last_year, through=max(targets))
    samples = simulate_counts(draws, scenario, targets, replications=replications, blocks=blocks,
                              seed=base.seed + last_year, credibility=cc.credibility, policy=cc.policy,
                              monthly=True)
    samples.insert(0, "horizon", samples["year"] - last_year)
    samples.insert(0, "fold", last_year)
    samples.insert(0, "source", "model")
    summary = {"fold": last_year, "years": cc.years, "parameters": [p.name for p in cc.parameters],
               "smm_loss": point["loss"], "smm_seconds": t_point,
               "posterior_seconds": result["run_time_seconds"], "acceptance": result["acceptance"],
               "min_ess": result["min_ess"],
               "posterior": {r["parameter"]: {k: r[k] for k in ("q05", "q50", "q95", "autocorr_steps", "ess")}
                             for r in result["parameters"]},
               "start": start}
    (folder / "fold.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return samples.drop(columns="posterior_row"), summary
