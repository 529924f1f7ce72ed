"""Headline metrics with intervals, computed from the per-replication table only.

Every metric is a function of ``replications.parquet``, so a summary can be recomputed from stored
files. Means carry a 95 % confidence interval of the ensemble mean (Student t) and the 2.5-97.5 %
range across replications; probabilities carry a 95 % Wilson score interval (Wilson 1927; Brown,
Cai & DasGupta 2001 recommend it over the normal interval for small or extreme proportions).

Two kinds of probability are reported, and their names keep them apart:

* an **event** probability, ``p_<event>``: the share of replications in which the event happened
  at least once within the horizon (``p_nuclear_test``, ``p_kinetic_clash``);
* a **ladder** probability, ``p_rung_at_least_<rung>``: the share of replications whose highest
  escalation rung reached is that rung or a higher one. ``p_rung_at_least_nuclear_test`` counts a
  replication that never tested but had a kinetic clash, so it is not the probability of a test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri, stdtrit

from .agents import RUNGS
from .recording import RUNG_SLUGS, per_replication

WEEKS_PER_YEAR = 365.25 / 7


def mean_interval(values: np.ndarray, level: float = 0.95) -> dict:
    """Mean, its t-based confidence interval, and the central range of the values themselves."""
    x = np.asarray(values, dtype=float)
    n = x.size
    mean = float(x.mean())
    lo_q, hi_q = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    if n > 1:
        half = float(stdtrit(n - 1, (1 + level) / 2) * x.std(ddof=1) / math.sqrt(n))
        ci = [mean - half, mean + half]
    else:
        ci = [None, None]
    return {"mean": mean, "ci95": ci, "range95": [float(lo_q), float(hi_q)], "n": int(n)}


def proportion_interval(successes: int, n: int, level: float = 0.95) -> dict:
    """Proportion with its Wilson score interval (Wilson 1927; good near 0 and 1, unlike the normal
    one). The closed form of :func:`wilson_interval`, which ``tests/test_outputs.py`` checks
    against scipy's ``binomtest(...).proportion_ci(method="wilson")``; scipy.stats itself is not
    imported, because loading it costs every process about a second."""
    low, high = wilson_interval(int(successes), int(n), level)
    return {"estimate": successes / n, "ci95": [float(low), float(high)], "n": int(n)}


def replication_metrics(replications: pd.DataFrame) -> pd.DataFrame:
    """One row per replication, one column per headline metric (rates per year; 0/1 indicators for
    the probabilities). Summaries and paired policy comparisons are both computed from this."""
    per = None
    if "block" not in replications.columns and set(METRIC_COLUMNS) <= set(replications.columns):
        per = _lean_per_replication(replications["replication"].to_numpy(),
                                    lambda name: _frame_column(replications[name]))
    return _metrics_of(per_replication(replications) if per is None else per)


# The columns of a replication table that the metrics read: counts summed over a replication's
# years, and per-replication fields (its first row's value). Only these are collapsed per
# replication (:func:`_lean_per_replication`) and read from a file (:func:`file_replication_metrics`);
# a metric that reads another column must add it here (``tests/test_outputs.py`` compares the
# metrics with those of sim.recording.per_replication's whole table).
METRIC_COUNTS = ("weeks", "dprk_launch_days", "dprk_missiles", "dprk_nuclear_test", "us_deployments",
                 "rok_strike_drill")
METRIC_FIELDS = ("us_cost", "final_dprk_belief", "first_clash_week", "max_rung")
METRIC_COLUMNS = ("replication", *METRIC_COUNTS, *METRIC_FIELDS)


def file_replication_metrics(path) -> pd.DataFrame:
    """``replication_metrics(pd.read_parquet(path))`` of a ``replications.parquet``, the same
    frame, reading only :data:`METRIC_COLUMNS` with pyarrow (a third of the time: the sweep's
    comparison reads 88 of them). A table that is not a point's (blocks, replications not in
    consecutive runs of equal length, missing columns, missing values outside
    ``first_clash_week``) is read and collapsed in full, as :func:`replication_metrics` does."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as file:
        names = set(file.schema_arrow.names)
        if "block" not in names and names.issuperset(METRIC_COLUMNS):
            table = file.read(columns=list(METRIC_COLUMNS), use_threads=False, use_pandas_metadata=False)
            ids, _ = _arrow_column(table.column("replication"))
            per = (None if ids is None
                   else _lean_per_replication(ids, lambda name: _arrow_column(table.column(name))))
            if per is not None:
                return _metrics_of(per)
    return replication_metrics(pd.read_parquet(path))


def _arrow_column(column) -> tuple[np.ndarray | None, np.ndarray]:
    """A pyarrow column's values (None if any is missing) and where values are missing."""
    missing = column.is_null().to_numpy(zero_copy_only=False)
    return (None if column.null_count else column.to_numpy()), missing


def _frame_column(column: pd.Series) -> tuple[np.ndarray | None, np.ndarray]:
    """A frame column's values (None for a pandas extension type, e.g. nullable integers) and
    where values are missing (``isna``)."""
    missing = column.isna().to_numpy()
    return (column.to_numpy() if isinstance(column.dtype, np.dtype) else None), missing


def _lean_per_replication(ids: np.ndarray, column) -> pd.DataFrame | None:
    """:func:`sim.recording.per_replication` of a point's replication table (``ids``: its
    ``replication`` column; ``column(name)``: :func:`_frame_column` or :func:`_arrow_column` of
    another) for :data:`METRIC_COUNTS` and :data:`METRIC_FIELDS` only, with the values and index
    it gives: each replication's years are a run of rows (sim.recording._per_replication_in_runs),
    so its counts are summed per run and its fields are the run's first row. None where that does
    not hold or a value it needs is missing or not a plain array (the caller collapses the whole
    table then); only whether ``first_clash_week`` is set is kept (the metrics read ``notna``)."""
    n = ids.size
    if n == 0 or ids.dtype.kind not in "iu":
        return None
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    size = n // starts.size
    if size * starts.size != n or not np.array_equal(starts, np.arange(0, n, size)):
        return None
    heads = ids[starts]
    if not (heads[1:] > heads[:-1]).all():
        return None
    columns = {}
    for name in METRIC_COUNTS:
        values, _ = column(name)
        if values is None or values.dtype.kind not in "iu":
            return None
        columns[name] = values.reshape(starts.size, size).sum(axis=1, dtype=values.dtype)
    for name in METRIC_FIELDS:
        values, missing = column(name)
        if name == "first_clash_week":
            columns[name] = np.where(missing[starts], np.nan, 0.0)
        elif values is None:
            return None
        else:
            columns[name] = values[starts]
    return pd.DataFrame(columns, index=pd.Index(heads, name="replication"))


def _metrics_of(per: pd.DataFrame) -> pd.DataFrame:
    """:func:`replication_metrics` of the per-replication table ``per``."""
    years = per["weeks"].to_numpy() / WEEKS_PER_YEAR
    years = np.where(years > 0, years, np.nan)

    def rate(col: str) -> np.ndarray:
        return np.nan_to_num(per[col].to_numpy() / years)

    columns = {
        "dprk_launch_days_per_year": rate("dprk_launch_days"),
        "dprk_missiles_per_year": rate("dprk_missiles"),
        "dprk_nuclear_tests_per_year": rate("dprk_nuclear_test"),
        "us_deployments_per_year": rate("us_deployments"),
        "us_deployment_cost": per["us_cost"].to_numpy(),
        "us_deployment_cost_per_year": rate("us_cost"),
        "rok_strike_drills_per_year": rate("rok_strike_drill"),
        "final_dprk_belief": per["final_dprk_belief"].to_numpy(dtype=float),
        "p_nuclear_test": (per["dprk_nuclear_test"].to_numpy() > 0).astype(float),
        "p_kinetic_clash": per["first_clash_week"].notna().to_numpy(dtype=float),
    }
    rungs = per["max_rung"].to_numpy()
    for k, slug in enumerate(RUNG_SLUGS):
        if k > 0:
            columns[rung_metric(slug)] = (rungs >= k).astype(float)
    return pd.DataFrame(columns, index=per.index)  # one frame: inserting columns one by one is slow


def rung_metric(slug: str) -> str:
    """Name of the ladder probability for a rung (``RUNG_SLUGS``): the share of replications whose
    highest rung so far is at least this one. The same name is the metric in ``summary.json`` (at
    the horizon) and the column of ``timeseries.parquet`` (by week t)."""
    return f"p_rung_at_least_{slug}"


def headline_metrics(replications: pd.DataFrame) -> dict:
    """The metrics of ``summary.json`` (see README, 'What dsim writes')."""
    per = replication_metrics(replications)
    return {
        name: (proportion_interval(int(values.sum()), len(per)) if name.startswith("p_")
               else mean_interval(values.to_numpy()))
        for name, values in per.items()
    }


def wilson_interval(successes, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``successes / n``, elementwise (arrays of counts, e.g. a curve).

    scipy's ``binomtest(...).proportion_ci(method="wilson")`` (Wilson 1927) in closed form,
    because scipy's is one scalar at a time and a curve needs one interval per week;
    ``tests/test_outputs.py`` checks the two agree.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = ndtri((1 + level) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def monthly_band(month_starts, counts: np.ndarray, quantiles=(0.05, 0.5, 0.95)) -> pd.DataFrame:
    """Mean and quantiles over replications of a count per calendar month.

    ``counts`` has one row per month (first days in ``month_starts``) and one column per
    replication. The quantiles are of integer counts, so they are taken as observed values
    (numpy's ``inverted_cdf``, definition 1 of Hyndman & Fan 1996) rather than interpolated.
    """
    counts = np.asarray(counts)
    out = pd.DataFrame({"month": pd.to_datetime(np.asarray(month_starts, dtype="datetime64[D]")),
                        "mean": counts.mean(axis=1)})
    if counts.shape[1]:
        values = count_quantiles(counts, quantiles)
        for q, row in zip(quantiles, values, strict=True):
            out[f"q{round(q * 100):02d}"] = row.astype(float)
    return out


def count_quantiles(counts: np.ndarray, quantiles) -> np.ndarray:
    """``np.quantile(counts, quantiles, axis=1, method="inverted_cdf")`` for small non-negative integer
    counts (one row per month), from a histogram of each row instead of a partial sort: the order
    statistic numpy picks (sorted index ``n q - 1``, rounded up unless whole, at least 0) is the
    smallest count whose cumulative frequency reaches that rank. Other inputs go to ``np.quantile``.
    ``tests/test_metrics_quantiles.py`` checks the two agree."""
    q = np.asarray(quantiles, dtype=float)
    if counts.dtype.kind not in "ui" or counts.size == 0 or counts.min() < 0 or counts.max() > 4096:
        return np.quantile(counts, q, axis=1, method="inverted_cdf")
    rows, n = counts.shape
    top = int(counts.max()) + 1
    cells = (np.arange(rows)[:, None] * top + counts).ravel()
    cumulative = np.bincount(cells, minlength=rows * top).reshape(rows, top).cumsum(axis=1)
    index = n * q - 1  # numpy's virtual index for inverted_cdf (numpy.lib._function_base_impl)
    below = np.floor(index)
    sorted_index = np.maximum(np.where(index - below == 0, below, below + 1), 0).astype(np.intp)
    return np.stack([np.argmax(cumulative > k, axis=1) for k in sorted_index]).astype(counts.dtype)


# Unit of every metric of ``replication_metrics`` (summary.json "units"; axis labels of the sweep
# figures, which treat a unit starting with "probability" as a probability).
METRIC_UNITS = {
    "dprk_launch_days_per_year": "launch days / year",
    "dprk_missiles_per_year": "missiles / year",
    "dprk_nuclear_tests_per_year": "nuclear tests / year",
    "us_deployments_per_year": "strategic-asset arrivals / year",
    "us_deployment_cost": "cost units over the horizon (1 = one asset-week on station)",
    "us_deployment_cost_per_year": "cost units / year",
    "rok_strike_drills_per_year": "ROK strike drills / year",
    "final_dprk_belief": "probability (DPRK belief that the US is resolute, last week)",
    "p_nuclear_test": "probability of at least one DPRK nuclear test within the horizon",
    "p_kinetic_clash": "probability of at least one kinetic clash within the horizon",
    **{rung_metric(slug): f"probability that the highest rung within the horizon is '{name}' or higher"
       for slug, name in zip(RUNG_SLUGS[1:], RUNGS[1:], strict=True)},
}

# What each metric means, in a sentence (summary.json "descriptions", docs/model.md Section 4.11).
METRIC_DESCRIPTIONS = {
    "dprk_launch_days_per_year": "DPRK launch days per simulated year, mean over replications (a "
                                 "launch week holds one or more launch days)",
    "dprk_missiles_per_year": "DPRK missiles fired per simulated year, mean over replications",
    "dprk_nuclear_tests_per_year": "DPRK nuclear tests per simulated year, mean over replications",
    "us_deployments_per_year": "weeks with a US strategic-asset arrival (scheduled or surge) per "
                               "simulated year, mean over replications",
    "us_deployment_cost": "US deployment cost over the horizon (transits, weeks on station, basing), "
                          "mean over replications",
    "us_deployment_cost_per_year": "US deployment cost per simulated year, mean over replications",
    "rok_strike_drills_per_year": "ROK strike drills per simulated year, mean over replications",
    "final_dprk_belief": "the DPRK's belief that the US is resolute in the last week, mean over "
                         "replications",
    "p_nuclear_test": "share of replications with at least one DPRK nuclear test within the horizon",
    "p_kinetic_clash": "share of replications with at least one kinetic clash within the horizon",
    **{rung_metric(slug): (f"share of replications whose highest escalation rung within the horizon "
                           f"is '{name}' or higher; a ladder level, not the share in which the "
                           f"'{name}' event happened (a replication that never tested but clashed "
                           f"counts at every rung up to 'kinetic clash')")
       for slug, name in zip(RUNG_SLUGS[1:], RUNGS[1:], strict=True)},
}
