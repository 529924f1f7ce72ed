"""Diagnostics of the model's own consistency, computed from a run's per-replication results.

:func:`belief_calibration`: is the DPRK's belief that the US is resolute a probability in the
model's own world? Each replication draws whether the US is resolute (``us_resolute``) and ends
with the DPRK's belief (``final_dprk_belief``). A Bayesian whose likelihoods are the model's own
probabilities holds calibrated beliefs: among replications where it believes about 0.7, about 70 %
have a resolute US (DeGroot & Fienberg 1983). The expected calibration error (ECE; Naeini, Cooper
& Hauskrecht 2015; Guo et al. 2017) summarises the gap: the replication-weighted mean, over equal-
width bins of belief, of |mean belief - share resolute| in the bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["belief_calibration", "expected_calibration_error"]


def expected_calibration_error(forecast, outcome, bins: int = 10) -> tuple[float, pd.DataFrame]:
    """ECE of probability forecasts ``forecast`` of 0/1 ``outcome`` over ``bins`` equal-width bins.

    Returns the ECE and the table behind it (one row per non-empty bin: its range, the number of
    forecasts, their mean and the observed share of outcomes).
    """
    p = np.asarray(forecast, dtype=float)
    y = np.asarray(outcome, dtype=float)
    if p.shape != y.shape or p.size == 0:
        raise ValueError("forecast and outcome must be non-empty and of the same length")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("forecasts must lie in [0, 1] and outcomes be 0 or 1")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    table = (pd.DataFrame({"bin": index, "forecast": p, "outcome": y})
             .groupby("bin").agg(n=("forecast", "size"), mean_forecast=("forecast", "mean"),
                                 share_observed=("outcome", "mean"))
             .reset_index())
    table.insert(1, "low", edges[table["bin"]])
    table.insert(2, "high", edges[table["bin"] + 1])
    ece = float((table["n"] * (table["mean_forecast"] - table["share_observed"]).abs()).sum() / p.size)
    return ece, table


def belief_calibration(per_replication: pd.DataFrame, bins: int = 10) -> dict:
    """Calibration of the DPRK's final belief against the drawn US type, from
    ``Results.per_replication()`` (columns ``final_dprk_belief`` and ``us_resolute``).

    Returns the ECE, the mean final belief among resolute and among irresolute replications (a
    calibrated belief separates the two and matches the shares), the share resolute, and the table.
    """
    belief = per_replication["final_dprk_belief"].to_numpy(dtype=float)
    resolute = per_replication["us_resolute"].to_numpy(dtype=bool)
    ece, table = expected_calibration_error(belief, resolute.astype(float), bins)
    return {
        "ece": ece,
        "share_resolute": float(resolute.mean()),
        "mean_belief": float(belief.mean()),
        "mean_belief_if_resolute": float(belief[resolute].mean()) if resolute.any() else float("nan"),
        "mean_belief_if_irresolute": float(belief[~resolute].mean()) if (~resolute).any() else float("nan"),
        "n": int(belief.size),
        "table": table,
    }
