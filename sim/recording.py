"""Preallocated recording of ensemble statistics during a run, and the tidy tables it yields.

Per week the recorder keeps ensemble means and 5/50/95 % quantiles of the state variables, the mean
count of each action per actor and, per ladder rung, the share of replications whose highest rung
so far is at least that rung (``p_rung_at_least_<rung>``). Per replication it keeps counts of each
action per calendar year. It never stores R full trajectories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import record_kernels
from .agents import DPRK_ACTIONS, JAPAN_ACTIONS, LRBM, NUCLEAR, ROK_ACTIONS, RUNGS, US_ACTIONS
from .calendar import week_dates

if TYPE_CHECKING:
    from .model import DeterrenceModel
    from .params import RunConfig

STATE_VARIABLES = ("tension", "dprk_belief", "rok_assurance", "japan_assurance")
QUANTILES = (0.05, 0.5, 0.95)
RUNG_SLUGS = tuple(r.replace(" ", "_") for r in RUNGS)
ACTION_COLUMNS = (
    [f"dprk_{a}" for a in DPRK_ACTIONS]
    + [f"us_{a}" for a in US_ACTIONS]
    + [f"rok_{a}" for a in ROK_ACTIONS]
    + [f"japan_{a}" for a in JAPAN_ACTIONS]
)
# Per replication-year counts: every action, then these derived counts.
EXTRA_COUNTS = ("dprk_launch_days", "dprk_launch_weeks", "dprk_missiles", "us_deployments", "clashes",
                "weeks")
COUNT_COLUMNS = tuple(ACTION_COLUMNS) + EXTRA_COUNTS
MAX_LAG_WEEKS = 8
# Per replication-week arrays kept with DeterrenceModel(detail=True), for sim.event_study.
DETAIL_ARRAYS = {"launch_days": np.int8, "missiles": np.int16, "arrival": np.bool_, "major": np.bool_}


def _weekly_columns() -> list[str]:
    cols = []
    for v in STATE_VARIABLES:
        cols += [f"{v}_mean"] + [f"{v}_q{int(q * 100):02d}" for q in QUANTILES]
    cols += list(ACTION_COLUMNS)
    cols += ["dprk_missiles", "dprk_launch_days", "clash", "war", "asset_on_station", "us_cost_cumulative"]
    cols += [f"p_rung_at_least_{s}" for s in RUNG_SLUGS[1:]]
    cols += ["exercise_intensity", "consultation", "scheduled_arrival", "scheduled_on_station"]
    return cols


WEEKLY_COLUMNS = tuple(_weekly_columns())


class Recorder:
    """Fills preallocated arrays once a week; :meth:`results` turns them into DataFrames.

    In a batch (``model.blocks`` > 1: blocks of ``model.base_replications`` replications, one per
    parameter point) every statistic is kept per block, so that :meth:`results_by_block` gives
    each point exactly the results of its run alone.
    """

    def __init__(self, model: DeterrenceModel, weekly: bool = True, detail: bool = False) -> None:
        self.model = model
        self.weekly_on = weekly
        n, weeks = model.replications, model.n_weeks
        # statistics per block of a batch, or over the pooled ensemble (params=posterior)
        self.blocks, r = model.stat_blocks, model.stat_replications
        self.r = r
        years = model.week_years
        self.years, self.year_index = np.unique(years, return_inverse=True)
        # (week, block, column): a week's rows are one contiguous (block, column) array for the
        # kernel; untouched (never paged in) when weekly statistics are off
        self.weekly = np.zeros((weeks, self.blocks, len(WEEKLY_COLUMNS)))
        # (year, column, replication): each week adds into one contiguous (column, R) block.
        self.counts = np.zeros((len(self.years), len(COUNT_COLUMNS), n), dtype=np.int32)
        col = {c: i for i, c in enumerate(WEEKLY_COLUMNS)}
        self._wcol = col
        self._state_cols = [col[f"{v}_mean"] for v in STATE_VARIABLES]
        self._offsets = np.cumsum([0, len(DPRK_ACTIONS), len(US_ACTIONS), len(ROK_ACTIONS)])
        self._extra = {c: len(ACTION_COLUMNS) + i for i, c in enumerate(EXTRA_COUNTS)}
        self._n_actions = len(ACTION_COLUMNS)
        # Response lags (a calibration target): weeks from a major provocation (long-range launch or
        # nuclear test) to the next US strategic-asset arrival, a response in the same week being a lag
        # of 0. A clock starts only when none is running, and no arrival within MAX_LAG_WEEKS counts
        # as no response: the definition sim.events.median_response_lag_weeks applies to the record.
        self._pending = np.full(n, -1, dtype=np.int64)
        # one histogram per batch block; last bin: no response within MAX_LAG_WEEKS
        self.lag_histogram = np.zeros((self.blocks, MAX_LAG_WEEKS + 2), dtype=np.int64)
        # DPRK launch days per calendar month and replication (uint8: at most 5 weeks start in a
        # month), for the monthly band of escalation.png (sim.metrics.monthly_band).
        months = week_dates(model.scenario_cfg.start, weeks).astype("datetime64[M]")
        self.month_starts, self.month_index = np.unique(months, return_inverse=True)
        self.monthly_launch_days = np.zeros((len(self.month_starts), n), dtype=np.uint8)
        self._extra_index = np.array([self._extra[c] for c in EXTRA_COUNTS])
        # Per replication and week, for the event study (sim.event_study): launch days, a US arrival,
        # a major provocation, and the missiles. (weeks, R) each, 5 bytes per replication-week:
        # only when asked.
        self.detail = ({name: np.zeros((weeks, n), dtype=dtype) for name, dtype in DETAIL_ARRAYS.items()}
                       if detail else None)
        # Ranks of the order statistics that the weekly quantiles (over one block's R replications)
        # interpolate between (numpy's 'linear' method): virtual index h = (R - 1) q, then floor(h)
        # and floor(h) + 1.
        h = (r - 1) * np.asarray(QUANTILES)
        below = np.floor(h)
        self._q_weight = h - below
        self._q_ranks = np.stack([below, np.minimum(below + 1, r - 1)], axis=1).astype(np.int64)
        self._rank_order = self._q_ranks.reshape(-1)
        self._order_stats = np.empty(self._rank_order.size)
        self._bins = np.empty(r, dtype=np.int32)
        # this week's count of each action in each block (record_week -> weekly_statistics)
        self._tallies = np.zeros((self.blocks, len(ACTION_COLUMNS)), dtype=np.int64)
        self._cols = np.array(self._state_cols + [col[c] for c in (
            ACTION_COLUMNS[0], "dprk_missiles", "clash", "war", "asset_on_station", "us_cost_cumulative",
            "p_rung_at_least_rhetoric", "scheduled_arrival", "scheduled_on_station", "dprk_launch_days")])

    def record(self, week: int) -> None:
        m = self.model
        alive = m.active  # not ended by war at the start of this week: its actions count
        record_kernels.record_week(
            self.counts[self.year_index[week]], self._offsets, m.dprk.choice, m.us.choice, m.rok.choice,
            m.japan.choice, m.dprk.launch_days, m.dprk.missiles, alive, m.us.scheduled_arrival,
            m.us.surge_arrival, m.clash, LRBM, NUCLEAR, self._pending, self.lag_histogram,
            self.r, MAX_LAG_WEEKS, self._extra_index, self.monthly_launch_days[self.month_index[week]],
            self._tallies)
        if self.detail is not None:
            d = self.detail
            np.multiply(m.dprk.launch_days, alive, out=d["launch_days"][week], casting="unsafe")
            # missiles count in a week with a launch day, as the yearly counts take them
            np.multiply(m.dprk.missiles, (m.dprk.launch_days > 0) & alive, out=d["missiles"][week],
                        casting="unsafe")
            np.logical_and(m.us.scheduled_arrival | m.us.surge_arrival, alive, out=d["arrival"][week])
            np.logical_and((m.dprk.choice == LRBM) | (m.dprk.choice == NUCLEAR), alive, out=d["major"][week])
        if self.weekly_on:
            self._record_weekly(week, alive)

    def _record_weekly(self, week: int, alive: np.ndarray) -> None:
        """Weekly ensemble statistics of each block: means and quantiles, action shares, ladder,
        calendar."""
        m = self.model
        rows = self.weekly[week]
        w = self._wcol
        rows[:, w["exercise_intensity"]] = m.exercise_intensity
        rows[:, w["consultation"]] = float(m.consultation_now)
        # the shares of scheduled arrivals and presence are shares of replications: a rotation
        # deferred by an irresolute US is missing in some
        record_kernels.weekly_statistics(
            rows, self._cols, self.r, m.tension, m.dprk.belief, m.rok.assurance,
            m.japan.assurance, self._rank_order, self._q_weight, self._order_stats, self._bins,
            self._tallies, alive, m.dprk.missiles, m.clash, m.alive, m.on_station, m.us.cost, m.max_rung,
            len(RUNGS), m.us.scheduled_arrival, m.us.scheduled_present, m.dprk.launch_days)

    # ------------------------------------------------------------------ results
    def results(self) -> Results:
        """The run's results. In a batch (``blocks`` > 1) the whole ensemble: the per
        replication-year table and the weekly and monthly tables with a ``block`` column (the
        weekly and monthly statistics are per block), the response lags summed over blocks and
        per block (``meta["response_lag_histogram_by_block"]``). :meth:`results_by_block` splits
        it into one :class:`Results` per point."""
        if self.blocks == 1:
            return self._block_results(0, self.model.config)
        m = self.model
        blocks = range(self.blocks)
        ts = pd.concat([self._timeseries(j).assign(block=j) for j in blocks], ignore_index=True)
        monthly = pd.concat([self._monthly(j).assign(block=j) for j in blocks], ignore_index=True)
        reps = self.replications_table()
        return Results(config=m.config, timeseries=_block_first(ts), replications=reps,
                       monthly=_block_first(monthly),
                       meta={"response_lag_histogram": self.lag_histogram.sum(axis=0).tolist(),
                             "response_lag_histogram_by_block": self.lag_histogram.tolist()},
                       detail=self.detail)

    def replications_table(self) -> pd.DataFrame:
        """The per replication-year table of :meth:`results` (with a ``block`` column in a batch)
        alone: what calibration reads, without building the weekly and monthly tables (a quarter of
        a posterior likelihood call)."""
        if self.blocks == 1:
            return self._replications(slice(0, self.r))
        reps = self._replications(slice(None))
        reps.insert(0, "block", np.repeat(np.arange(self.model.replications) // self.r, len(self.years)))
        return reps

    def results_by_block(self, configs: Sequence[RunConfig]) -> list[Results]:
        """One :class:`Results` per block, each exactly the results of its point run alone.

        ``configs`` are the points' configurations, one per block in block order (each block's
        results carry its own config; :func:`sim.batching.run_points` builds the batch and the
        configs together).
        """
        if len(configs) != self.blocks:
            raise ValueError(f"results_by_block: {len(configs)} configs for {self.blocks} blocks")
        return [self._block_results(j, c) for j, c in enumerate(configs)]

    def _block_results(self, j: int, config: RunConfig) -> Results:
        r = self.r
        return Results(config=config, timeseries=self._timeseries(j),
                       replications=self._replications(slice(j * r, (j + 1) * r)),
                       monthly=self._monthly(j),
                       meta={"response_lag_histogram": self.lag_histogram[j].tolist(),
                             "response_lag_histogram_by_block": [self.lag_histogram[j].tolist()]},
                       detail=None if self.detail is None else
                       {k: v[:, j * r:(j + 1) * r] for k, v in self.detail.items()})

    def _timeseries(self, j: int) -> pd.DataFrame:
        m = self.model
        ts = pd.DataFrame(self.weekly[:, j], columns=list(WEEKLY_COLUMNS))
        ts.insert(0, "date", week_dates(m.scenario_cfg.start, m.n_weeks))
        ts.insert(0, "week", np.arange(m.n_weeks))
        return ts

    def _monthly(self, j: int) -> pd.DataFrame:
        from .metrics import monthly_band

        r = self.r
        return monthly_band(self.month_starts,
                            np.ascontiguousarray(self.monthly_launch_days[:, j * r:(j + 1) * r]))

    def _replications(self, rows: slice) -> pd.DataFrame:
        """The per replication-year table of the replications ``rows`` (numbered from 0 in each
        block), built in one go from its columns."""
        m = self.model
        counts = self.counts[:, :, rows]
        n, n_years = counts.shape[2], len(self.years)
        by_rep = counts.transpose(2, 0, 1).reshape(n * n_years, -1)
        first = rows.start or 0
        columns = {"replication": np.repeat(np.arange(first, first + n) % self.r, n_years),
                   "year": np.tile(self.years, n)}
        columns.update({name: by_rep[:, k] for k, name in enumerate(COUNT_COLUMNS)})
        per_rep = {
            "us_resolute": m.us.resolute,
            "max_rung": m.max_rung,
            "first_clash_week": m.first_clash_week,
            "war_week": m.war_week,
            "us_cost": m.us.cost,
            "final_dprk_belief": m.dprk.belief,
            "final_rok_assurance": m.rok.assurance,
            "final_japan_assurance": m.japan.assurance,
        }
        for name, values in per_rep.items():
            columns[name] = np.repeat(values[rows], n_years)
        for name in ("first_clash_week", "war_week"):  # -1 (never) becomes a null
            weeks = columns[name]
            columns[name] = pd.arrays.IntegerArray(weeks.astype(np.int64), weeks < 0)
        return pd.DataFrame(columns)


def _block_first(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its ``block`` column first."""
    return frame[["block", *(c for c in frame.columns if c != "block")]]


@dataclass
class Results:
    """The outputs of one run: the config, a weekly time series and per replication-year counts."""

    config: RunConfig
    timeseries: pd.DataFrame
    replications: pd.DataFrame
    meta: dict = field(default_factory=dict)
    # DPRK launch days per calendar month: mean and 5/50/95 % over replications (not written to a
    # file; escalation.png draws it)
    monthly: pd.DataFrame | None = None
    # with DeterrenceModel(detail=True): per week and replication (weeks, R) arrays DETAIL_ARRAYS
    detail: dict | None = None

    def median_response_lag(self) -> float:
        """Median weeks from a major provocation to the next US arrival, answered ones only."""
        return median_from_histogram(self.meta["response_lag_histogram"][:-1])

    def per_replication(self) -> pd.DataFrame:
        """One row per replication: action counts summed over years, plus per-replication fields."""
        return per_replication(self.replications)


PER_REPLICATION_FIELDS = ("us_resolute", "max_rung", "first_clash_week", "war_week", "us_cost",
                          "final_dprk_belief", "final_rok_assurance", "final_japan_assurance")


def _fields_in(replications: pd.DataFrame) -> list[str]:
    """The per-replication fields a table holds (tables written before the final assurance was
    recorded lack those two)."""
    return [c for c in PER_REPLICATION_FIELDS if c in replications.columns]


def per_replication(replications: pd.DataFrame) -> pd.DataFrame:
    """Collapse replication-year rows to one row per replication (by ``block`` and
    ``replication`` in a batch's table): the counts summed over years, the per-replication fields
    as they are. The result of a pandas ``groupby`` (sorted keys, sums, first values).

    A table as the recorder writes it (each replication's years in consecutive rows, the same
    number for each, replications in order) is collapsed by reshaping its columns, several times
    faster than the ``groupby``, with the same frame (``tests/test_outputs.py``).
    """
    keys = ["block", "replication"] if "block" in replications.columns else ["replication"]
    fast = _per_replication_in_runs(replications, keys)
    return fast if fast is not None else _per_replication_grouped(replications, keys)


def _per_replication_grouped(replications: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = replications.groupby(keys if len(keys) > 1 else keys[0], sort=True)
    return g[list(COUNT_COLUMNS)].sum().join(g[_fields_in(replications)].first())


def _per_replication_in_runs(replications: pd.DataFrame, keys: list[str]) -> pd.DataFrame | None:
    """:func:`per_replication` of a table whose replications are consecutive runs of equal length
    in increasing key order; None for any other table."""
    n = len(replications)
    ids = [replications[k].to_numpy() for k in keys]
    if n == 0 or any(a.dtype.kind not in "iu" for a in ids):
        return None
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for a in ids:
        change[1:] |= a[1:] != a[:-1]
    starts = np.flatnonzero(change)
    size = n // starts.size
    if size * starts.size != n or not np.array_equal(starts, np.arange(0, n, size)):
        return None
    heads = [a[starts] for a in ids]
    later = np.zeros(starts.size - 1, dtype=bool)  # each run's key above the one before
    tied = np.ones(starts.size - 1, dtype=bool)
    for h in heads:
        later |= tied & (h[1:] > h[:-1])
        tied &= h[1:] == h[:-1]
    if not later.all():
        return None
    index = (pd.Index(heads[0], name=keys[0]) if len(keys) == 1
             else pd.MultiIndex.from_arrays(heads, names=keys))
    counts = replications[list(COUNT_COLUMNS)]
    dtypes = counts.dtypes.unique()
    if dtypes.size != 1 or dtypes[0].kind not in "iu":
        return None
    totals = counts.to_numpy().reshape(starts.size, size, len(COUNT_COLUMNS)).sum(axis=1, dtype=dtypes[0])
    columns = dict(zip(COUNT_COLUMNS, totals.T, strict=True))
    columns.update({c: replications[c].array[starts] for c in _fields_in(replications)})
    return pd.DataFrame(columns, index=index)


def median_from_histogram(counts) -> float:
    """Median of integer values 0, 1, 2, ... given their counts (the lower median; NaN if empty)."""
    c = np.cumsum(np.asarray(counts, dtype=float))
    if c.size == 0 or c[-1] == 0:
        return float("nan")
    return float(np.searchsorted(c, c[-1] / 2.0))
