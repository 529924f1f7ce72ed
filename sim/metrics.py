"""Headline metrics with intervals, computed from the per-replication table only.

Every metric is a function of ``replications.parquet``, so a summary can be recomputed from stored
files. Means carry a 95 % confidence interval of the ensemble mean (Student t) and the 2.5-97.5 %
range across replications; probabilities carry a 95 % Wilson score interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .recording import RUNG_SLUGS, per_replication

WEEKS_PER_YEAR = 365.25 / 7


def mean_interval(values: np.ndarray, level: float = 0.95) -> dict:
    """Mean, its t-based confidence interval, and the central range of the values themselves."""
    x = np.asarray(values, dtype=float)
    n = x.size
    mean = float(x.mean())
    lo_q, hi_q = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    if n > 1:
        half = float(stats.t.ppf((1 + level) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
        ci = [mean - half, mean + half]
    else:
        ci = [None, None]
    return {"mean": mean, "ci95": ci, "range95": [float(lo_q), float(hi_q)], "n": int(n)}


def proportion_interval(successes: int, n: int, level: float = 0.95) -> dict:
    """Proportion with its Wilson score interval (good near 0 and 1, unlike the normal one)."""
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return {"estimate": successes / n, "ci95": [float(ci.low), float(ci.high)], "n": int(n)}


def replication_metrics(replications: pd.DataFrame) -> pd.DataFrame:
    """One row per replication, one column per headline metric (rates per year; 0/1 indicators for
    the probabilities). Summaries and paired policy comparisons are both computed from this."""
    per = per_replication(replications)
    years = per["weeks"].to_numpy() / WEEKS_PER_YEAR
    years = np.where(years > 0, years, np.nan)

    def rate(col: str) -> np.ndarray:
        return np.nan_to_num(per[col].to_numpy() / years)

    out = pd.DataFrame({
        "dprk_launch_days_per_year": rate("dprk_launch_days"),
        "dprk_missiles_per_year": rate("dprk_missiles"),
        "dprk_nuclear_tests_per_year": rate("dprk_nuclear_test"),
        "us_deployments_per_year": rate("us_deployments"),
        "us_deployment_cost": per["us_cost"].to_numpy(),
        "us_deployment_cost_per_year": rate("us_cost"),
        "rok_strike_drills_per_year": rate("rok_strike_drill"),
        "final_dprk_belief": per["final_dprk_belief"].to_numpy(dtype=float),
        "p_kinetic_clash": per["first_clash_week"].notna().to_numpy(dtype=float),
    }, index=per.index)
    for k, slug in enumerate(RUNG_SLUGS):
        if k > 0:
            out[f"p_reach_{slug}"] = (per["max_rung"].to_numpy() >= k).astype(float)
    return out


def headline_metrics(replications: pd.DataFrame) -> dict:
    """The metrics of ``summary.json`` (see README, 'What dsim writes')."""
    per = replication_metrics(replications)
    return {
        name: (proportion_interval(int(per[name].sum()), len(per)) if name.startswith("p_")
               else mean_interval(per[name].to_numpy()))
        for name in per.columns
    }


METRIC_UNITS = {
    "dprk_launch_days_per_year": "launch days / year",
    "dprk_missiles_per_year": "missiles / year",
    "dprk_nuclear_tests_per_year": "nuclear tests / year",
    "us_deployments_per_year": "strategic-asset arrivals / year",
    "us_deployment_cost": "cost units over the horizon (1 = one asset-week on station)",
    "us_deployment_cost_per_year": "cost units / year",
    "rok_strike_drills_per_year": "ROK strike drills / year",
    "final_dprk_belief": "probability (DPRK belief that the US is resolute, last week)",
    "p_kinetic_clash": "probability of at least one kinetic clash within the horizon",
}
