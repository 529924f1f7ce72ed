"""Preallocated recording of ensemble statistics during a run, and the tidy tables it yields.

Per week the recorder keeps ensemble means and 5/50/95 % quantiles of the state variables, the mean
count of each action per actor and, per ladder rung, the share of replications whose highest rung
so far is at least that rung (``p_rung_at_least_<rung>``). Per replication it keeps counts of each
action per calendar year. It never stores R full trajectories.
"""

from __future__ import annotations

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
EXTRA_COUNTS = ("dprk_launch_days", "dprk_missiles", "us_deployments", "clashes", "weeks")
COUNT_COLUMNS = tuple(ACTION_COLUMNS) + EXTRA_COUNTS
MAX_LAG_WEEKS = 8


def _weekly_columns() -> list[str]:
    cols = []
    for v in STATE_VARIABLES:
        cols += [f"{v}_mean"] + [f"{v}_q{int(q * 100):02d}" for q in QUANTILES]
    cols += list(ACTION_COLUMNS)
    cols += ["dprk_missiles", "clash", "war", "asset_on_station", "us_cost_cumulative"]
    cols += [f"p_rung_at_least_{s}" for s in RUNG_SLUGS[1:]]
    cols += ["exercise_intensity", "consultation", "scheduled_arrival", "scheduled_on_station"]
    return cols


WEEKLY_COLUMNS = tuple(_weekly_columns())


class Recorder:
    """Fills preallocated arrays once a week; :meth:`results` turns them into DataFrames."""

    def __init__(self, model: DeterrenceModel, weekly: bool = True) -> None:
        self.model = model
        self.weekly_on = weekly
        n, weeks = model.replications, model.n_weeks
        years = model.week_years
        self.years, self.year_index = np.unique(years, return_inverse=True)
        self.weekly = np.zeros((weeks, len(WEEKLY_COLUMNS)))
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
        self.lag_histogram = np.zeros((model.blocks, MAX_LAG_WEEKS + 2), dtype=np.int64)
        self._block_offset = (np.arange(n) // model.base_replications) * (MAX_LAG_WEEKS + 2)
        # DPRK launch days per calendar month and replication (uint8: at most 5 weeks start in a
        # month), for the monthly band of escalation.png (sim.metrics.monthly_band).
        months = week_dates(model.scenario_cfg.start, weeks).astype("datetime64[M]")
        self.month_starts, self.month_index = np.unique(months, return_inverse=True)
        self.monthly_launch_days = np.zeros((len(self.month_starts), n), dtype=np.uint8)
        self._extra_index = np.array([self._extra[c] for c in EXTRA_COUNTS[:4]] + [self._extra["weeks"]])
        # Ranks of the order statistics that the weekly quantiles interpolate between (numpy's
        # 'linear' method): virtual index h = (n - 1) q, then floor(h) and floor(h) + 1.
        h = (n - 1) * np.asarray(QUANTILES)
        below = np.floor(h)
        self._q_weight = h - below
        self._q_ranks = np.stack([below, np.minimum(below + 1, n - 1)], axis=1).astype(np.int64)
        self._rank_order = self._q_ranks.reshape(-1)
        self._order_stats = np.empty(self._rank_order.size)
        self._bins = np.empty(n, dtype=np.int32)
        self._cols = np.array(self._state_cols + [col[c] for c in (
            ACTION_COLUMNS[0], "dprk_missiles", "clash", "war", "asset_on_station", "us_cost_cumulative",
            "p_rung_at_least_rhetoric")])

    def record(self, week: int) -> None:
        m = self.model
        alive = m.active  # not ended by war at the start of this week: its actions count
        record_kernels.record_week(
            self.counts[self.year_index[week]], self._offsets, m.dprk.choice, m.us.choice, m.rok.choice,
            m.japan.choice, m.dprk.missiles, alive, m.us.scheduled_arrival, m.us.surge_arrival, m.clash,
            LRBM, NUCLEAR, self._pending, self.lag_histogram, m.base_replications, MAX_LAG_WEEKS,
            self._extra_index)
        self.monthly_launch_days[self.month_index[week]] += (m.dprk.missiles > 0) & alive
        if self.weekly_on:
            self._record_weekly(week, alive)

    def _record_weekly(self, week: int, alive: np.ndarray) -> None:
        """Weekly ensemble statistics: means and quantiles, action shares, ladder, calendar."""
        m = self.model
        row = self.weekly[week]
        w = self._wcol
        row[w["exercise_intensity"]] = m.exercise_intensity
        row[w["consultation"]] = float(m.consultation_now)
        # shares of replications: a rotation deferred by an irresolute US is missing in some
        row[w["scheduled_arrival"]] = m.us.scheduled_arrival.mean()
        row[w["scheduled_on_station"]] = m.us.scheduled_present.mean()
        record_kernels.weekly_statistics(
            row, self._cols, m.tension, m.dprk.belief, m.rok.assurance, m.japan.assurance,
            self._rank_order, self._q_weight, self._order_stats, self._bins, m.dprk.choice,
            m.us.choice, m.rok.choice, m.japan.choice, self._offsets, alive, m.dprk.missiles, m.clash,
            m.alive, m.on_station, m.us.cost, m.max_rung, len(RUNGS))

    def results(self) -> Results:
        m = self.model
        ts = pd.DataFrame(self.weekly, columns=list(WEEKLY_COLUMNS))
        ts.insert(0, "date", week_dates(m.scenario_cfg.start, m.n_weeks))
        ts.insert(0, "week", np.arange(m.n_weeks))

        n, n_years = m.replications, len(self.years)
        by_rep = self.counts.transpose(2, 0, 1).reshape(n * n_years, -1)
        reps = pd.DataFrame(by_rep, columns=list(COUNT_COLUMNS))
        reps.insert(0, "year", np.tile(self.years, n))
        r = m.base_replications
        reps.insert(0, "replication", np.repeat(np.arange(n) % r, n_years))
        if m.blocks > 1:  # a batch: which parameter point each row belongs to
            reps.insert(0, "block", np.repeat(np.arange(n) // r, n_years))
        per_rep = {
            "us_resolute": m.us.resolute,
            "max_rung": m.max_rung,
            "first_clash_week": m.first_clash_week,
            "war_week": m.war_week,
            "us_cost": m.us.cost,
            "final_dprk_belief": m.dprk.belief,
        }
        for name, values in per_rep.items():
            reps[name] = np.repeat(values, n_years)
        for name in ("first_clash_week", "war_week"):  # -1 (never) becomes a null
            reps[name] = reps[name].where(reps[name] >= 0).astype("Int64")
        from .metrics import monthly_band

        return Results(config=m.config, timeseries=ts, replications=reps,
                       monthly=monthly_band(self.month_starts, self.monthly_launch_days),
                       meta={"response_lag_histogram": self.lag_histogram.sum(axis=0).tolist(),
                             "response_lag_histogram_by_block": self.lag_histogram.tolist()})


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

    def median_response_lag(self) -> float:
        """Median weeks from a major provocation to the next US arrival, answered ones only."""
        return median_from_histogram(self.meta["response_lag_histogram"][:-1])

    def per_replication(self) -> pd.DataFrame:
        """One row per replication: action counts summed over years, plus per-replication fields."""
        return per_replication(self.replications)


def per_replication(replications: pd.DataFrame) -> pd.DataFrame:
    """Collapse replication-year rows to one row per replication."""
    keys = ["block", "replication"] if "block" in replications.columns else "replication"
    g = replications.groupby(keys, sort=True)
    totals = g[list(COUNT_COLUMNS)].sum()
    firsts = g[["us_resolute", "max_rung", "first_clash_week", "war_week", "us_cost",
                "final_dprk_belief"]].first()
    return totals.join(firsts)


def median_from_histogram(counts) -> float:
    """Median of integer values 0, 1, 2, ... given their counts (the lower median; NaN if empty)."""
    c = np.cumsum(np.asarray(counts, dtype=float))
    if c.size == 0 or c[-1] == 0:
        return float("nan")
    return float(np.searchsorted(c, c[-1] / 2.0))
