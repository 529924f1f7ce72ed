"""Event-study statistics (sim.event_study): known answers on hand-built series, the record's mapping
onto the weekly calendar, the bootstrap's determinism, the replications' range and the real record."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from sim.event_study import (
    STATISTIC_NAMES,
    WeeklySeries,
    event_study_figure,
    event_study_table,
    plot_event_study,
    record_intervals,
    record_series,
    simulated_ranges,
    simulated_series,
    timing_statistics,
)
from sim.events import COLUMNS, default_events_path, load_events
from sim.history import END, START

MONDAY = dt.date(2016, 1, 4)


def weeks_series(launch, *, arrival=(), major=(), exercise=None, consultation=(), n=None) -> WeeklySeries:
    """One series: ``launch`` launch days per week; the other arguments list the flagged weeks
    (``exercise`` a full list of scales)."""
    launch = np.atleast_2d(np.asarray(launch, dtype=np.int64))
    w = launch.shape[1] if n is None else n

    def flags(weeks):
        a = np.zeros((launch.shape[0], w), dtype=bool)
        a[:, list(weeks)] = True
        return a

    cons = np.zeros(w, dtype=bool)
    cons[list(consultation)] = True
    return WeeklySeries(launch, flags(arrival), flags(major),
                        np.zeros(w) if exercise is None else np.asarray(exercise, dtype=float), cons,
                        MONDAY)


def launch_in(weeks, n) -> list[int]:
    out = [0] * n
    for k in weeks:
        out[k] += 1
    return out


# ------------------------------------------------------------------------------- known answers
def test_exercise_ratios_compare_shares_of_weeks_with_a_launch():
    exercise = [0, 1, 1, 0.5, 0, 0, 0.5, 0, 0, 0]
    launch = launch_in([0, 0, 0, 1, 2, 3, 8], 10)  # three launch days in week 0 count as one week
    stats = timing_statistics(weeks_series(launch, exercise=exercise))
    # exercise weeks 1, 2, 3, 6: launches in 1, 2, 3 -> 3/4; other weeks 0, 4, 5, 7, 8, 9: 0, 8 -> 2/6
    assert stats["exercise_launch_ratio"] == pytest.approx((3 / 4) / (2 / 6))
    assert stats["exercise_launch_ratio_full"] == pytest.approx((2 / 2) / (2 / 6))  # weeks 1, 2
    assert stats["exercise_launch_ratio_reduced"] == pytest.approx((1 / 2) / (2 / 6))  # weeks 3, 6


def test_post_arrival_window_is_weeks_one_to_four_after_and_stops_at_the_end():
    # arrivals in week 2 and in the last week (its window lies beyond the series)
    series = weeks_series(launch_in([2, 3, 6, 7, 11], 12), arrival=[2, 11])
    # window: weeks 3-6 (not the arrival week 2): launches 3, 6 -> 2/4; other weeks 0-2, 7-11: 2, 7,
    # 11 -> 3/8
    assert timing_statistics(series)["post_arrival_launch_ratio"] == pytest.approx((2 / 4) / (3 / 8))
    # overlapping windows form their union: arrivals 2 and 4 -> weeks 3-8
    series = weeks_series(launch_in([3, 8, 9], 12), arrival=[2, 4])
    assert timing_statistics(series)["post_arrival_launch_ratio"] == pytest.approx((2 / 6) / (1 / 6))


def test_deployment_shares_leave_out_censored_provocations():
    series = weeks_series(launch_in([], 10), major=[0, 1, 3, 7, 9], arrival=[0, 6, 8])
    stats = timing_statistics(series)
    # within 1 week: majors 0, 1, 3, 7 (9 is censored); arrivals in 0-1 yes, 1-2 no, 3-4 no, 7-8 yes
    assert stats["deployment_within_1_week"] == pytest.approx(2 / 4)
    # within 4 weeks: majors 0, 1, 3 (7 and 9 censored); 0-4 yes, 1-5 no, 3-7 yes
    assert stats["deployment_within_4_weeks"] == pytest.approx(2 / 3)


def test_consultation_window_is_the_week_and_the_week_after():
    series = weeks_series(launch_in([0, 3, 5, 7], 8), consultation=[2, 7])
    # window: weeks 2, 3, 7: launches 3, 7 -> 2/3; other weeks 0, 1, 4, 5, 6: 0, 5 -> 2/5
    assert timing_statistics(series)["consultation_launch_ratio"] == pytest.approx((2 / 3) / (2 / 5))


def test_undefined_statistics_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # no exercise, no arrival, no major provocation, no consultation
        stats = timing_statistics(weeks_series(launch_in([1, 2], 6)))
        assert all(math.isnan(v) for v in stats.values()), stats
        # exercise weeks but no launch in the other weeks (zero base rate); no reduced-scale weeks
        stats = timing_statistics(weeks_series(launch_in([0], 4), exercise=[1, 0, 0, 0]))
        assert math.isnan(stats["exercise_launch_ratio"])
        assert math.isnan(stats["exercise_launch_ratio_reduced"])
        # every week is an exercise week: no other weeks
        stats = timing_statistics(weeks_series(launch_in([0], 3), exercise=[1, 1, 0.5]))
        assert math.isnan(stats["exercise_launch_ratio"])
        # window weeks without a launch against launches elsewhere: 0, not nan
        stats = timing_statistics(weeks_series(launch_in([3], 4), exercise=[1, 0, 0, 0]))
        assert stats["exercise_launch_ratio"] == 0.0
        # a major provocation only in the last week: censored, nothing to count
        stats = timing_statistics(weeks_series(launch_in([], 5), major=[4], arrival=[4]))
        assert math.isnan(stats["deployment_within_1_week"])
        assert all(not math.isinf(v) for v in stats.values())


def test_statistics_pool_the_weeks_of_all_series():
    # series A: 2/2 vs 1/2 -> 2; series B: 1/2 vs 0/2 -> undefined; pooled: 3/4 vs 1/4 -> 3
    series = weeks_series([[1, 1, 0, 1], [1, 0, 0, 0]], exercise=[1, 1, 0, 0])
    assert timing_statistics(series)["exercise_launch_ratio"] == pytest.approx(3.0)
    # one replication's value: B's is undefined and left out of the range
    assert simulated_ranges(series)["exercise_launch_ratio"] == pytest.approx((2.0, 2.0))


def test_simulated_range_of_identical_series_collapses_to_the_value():
    one = weeks_series(launch_in([0, 1, 3, 4, 7, 9, 10], 12), arrival=[2, 6], major=[1, 4, 7],
                       exercise=[0, 1, 1, 0, 0.5, 0, 0, 0, 0, 0, 0, 0], consultation=[5])
    many = one.select(np.zeros(6, dtype=int))
    assert many.n_series == 6
    single, pooled = timing_statistics(one), timing_statistics(many)
    ranges = simulated_ranges(many)
    for name in STATISTIC_NAMES:
        assert math.isfinite(single[name]), name
        assert pooled[name] == pytest.approx(single[name]), name
        assert ranges[name] == pytest.approx((single[name], single[name])), name


def test_simulated_ranges_follow_the_replications_quantiles():
    # five replications whose exercise ratios are 0, 1, 2, 3, 4 (base share 1/4 in each)
    base = [1, 0, 0, 0]
    reps = [[*[1] * k, *[0] * (4 - k), *base] for k in range(5)]
    series = WeeklySeries(np.array(reps) * 1, np.zeros((5, 8), bool), np.zeros((5, 8), bool),
                          [1] * 4 + [0] * 4, np.zeros(8, bool), MONDAY)
    values = [4 * k / 4 for k in range(5)]  # (k/4) / (1/4)
    low, high = simulated_ranges(series, quantiles=(0.25, 0.75))["exercise_launch_ratio"]
    assert (low, high) == pytest.approx(tuple(np.quantile(values, [0.25, 0.75])))


def test_simulated_series_reads_week_by_replication_arrays():
    w, r = 5, 3
    launch = np.zeros((w, r), dtype=np.int8)
    launch[1, 2] = 3
    launch[0, 0] = 1
    arrival = np.zeros((w, r), bool)
    arrival[2, 1] = True
    major = np.zeros((w, r), bool)
    major[1, 2] = True
    ts = pd.DataFrame({"week": range(w), "exercise_intensity": [0, 1.5, 0.5, 0, 0],
                       "consultation": [0.0, 0, 1.0, 0, 0]})
    series = simulated_series({"launch_days": launch, "arrival": arrival, "major": major}, ts, "2016-01-04")
    assert series.launch_days.shape == (r, w)
    assert series.launch_days[2, 1] == 3 and series.launch_days[0, 0] == 1
    assert series.arrival[1, 2] and series.major[2, 1] and series.arrival.sum() == 1
    assert series.consultation.tolist() == [False, False, True, False, False]
    assert series.exercise.tolist() == [0, 1.5, 0.5, 0, 0]
    assert series.week_start == MONDAY
    with pytest.raises(ValueError, match="major"):
        simulated_series({"launch_days": launch, "arrival": arrival}, ts, MONDAY)
    with pytest.raises(ValueError, match="shape"):
        simulated_series({"launch_days": launch.T, "arrival": arrival, "major": major}, ts, MONDAY)


def test_weekly_series_rejects_inconsistent_arrays():
    with pytest.raises(ValueError, match="arrival"):
        WeeklySeries(np.zeros((1, 4), int), np.zeros((1, 3), bool), np.zeros((1, 4), bool),
                     np.zeros(4), np.zeros(4, bool), MONDAY)
    with pytest.raises(ValueError, match="exercise"):
        WeeklySeries(np.zeros((1, 4), int), np.zeros((1, 4), bool), np.zeros((1, 4), bool),
                     [0, np.nan, 0, 0], np.zeros(4, bool), MONDAY)
    series = weeks_series(launch_in([1], 4))
    with pytest.raises(ValueError):
        series.launch_days[0, 0] = 5  # read-only


# ------------------------------------------------------------------------------- the record's mapping
def test_record_series_maps_rows_onto_the_models_weeks(tmp_path):
    def row(date, type_, actor="DPRK", kind="", end="", scale=""):
        return f"{date},{end},{actor},{type_},{kind},1,{scale},test row,test source,false"

    rows = [
        row("2015-12-30", "launch_day", kind="srbm"),  # before the start: ignored
        row("2016-01-05", "launch_day", kind="srbm"),
        row("2016-01-05", "launch_day", kind="srbm"),  # the same day again: one launch day
        row("2016-01-07", "launch_day", kind="irbm"),  # major
        row("2016-01-10", "launch_day", kind="srbm"),  # Sunday: still week 0
        row("2016-01-11", "launch_day", kind="srbm"),  # Monday: week 1
        row("2016-01-20", "nuclear_test"),  # week 2, major
        row("2016-01-21", "asset_deployment", actor="US", kind="bomber", end="2016-02-05"),
        row("2015-12-28", "combined_exercise", actor="US-ROK", end="2016-01-05", scale="0.5"),
        row("2016-01-09", "combined_exercise", actor="US-ROK", end="2016-01-12", scale="0.5"),
        row("2016-01-12", "combined_exercise", actor="US-ROK", end="2016-01-25", scale="1.0"),
        row("2016-02-01", "combined_exercise", actor="US-ROK", scale="0.0"),  # suspended, no end
        row("2016-01-27", "consultation", actor="US-ROK"),
        row("2016-02-02", "talks", actor="US-DPRK"),  # not a consultation
        row("2016-02-09", "summit", actor="ROK-DPRK"),
        row("2016-02-15", "launch_day", kind="icbm"),  # week 6: after the window
    ]
    path = tmp_path / "events.csv"
    path.write_text("\n".join([",".join(COLUMNS), *rows]) + "\n")
    series = record_series(load_events(path), "2016-01-04", 6)
    assert series.n_series == 1 and series.week_start == MONDAY
    assert series.launch_days[0].tolist() == [3, 1, 0, 0, 0, 0]
    assert series.major[0].tolist() == [True, False, True, False, False, False]
    assert series.arrival[0].tolist() == [False, False, True, False, False, False]
    # overlapping exercises: the largest scale in force; an exercise covers every week it overlaps
    assert series.exercise.tolist() == [0.5, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert series.consultation.tolist() == [False, False, False, True, False, True]
    only = record_series(load_events(path), "2016-01-04", 6, consultation_types=("consultation",))
    assert only.consultation.tolist() == [False, False, False, True, False, False]


# ------------------------------------------------------------------------------- bootstrap
def patterned_series(repeat: int) -> WeeklySeries:
    """A fixed 20-week pattern repeated: exercise weeks launch more often than others."""
    exercise = np.array([1, 1, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] * repeat, float)
    launch = np.array([1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0] * repeat)
    arrival = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0] * repeat, bool)
    major = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0] * repeat, bool)
    consultation = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] * repeat, bool)
    return WeeklySeries(launch[None], arrival[None], major[None], exercise, consultation, MONDAY)


def test_record_intervals_are_deterministic_for_a_seed_and_bracket_the_value():
    series = patterned_series(10)
    first = record_intervals(series, n_resamples=500, seed=7)
    assert record_intervals(series, n_resamples=500, seed=7) == first
    assert record_intervals(series, n_resamples=500, seed=8) != first
    observed = timing_statistics(series)
    for name in STATISTIC_NAMES:
        low, high = first[name]
        assert low <= observed[name] <= high, (name, low, observed[name], high)
        assert low < high, name
    # four times the weeks, the same shares: narrower intervals
    wide = record_intervals(series, n_resamples=500, seed=7)["exercise_launch_ratio"]
    narrow = record_intervals(patterned_series(40), n_resamples=500, seed=7)["exercise_launch_ratio"]
    assert narrow[1] - narrow[0] < 0.75 * (wide[1] - wide[0])


def test_record_intervals_resample_window_and_other_weeks_separately():
    # every exercise week has a launch: any resample of those weeks has share 1, so the ratio's
    # interval is 1 / (the other weeks' resampled share); resampling all weeks together would
    # sometimes draw no exercise week at all (an undefined ratio) and give no interval
    exercise = np.r_[np.ones(2), np.zeros(18)]
    launch = np.r_[np.ones(2, int), launch_in([0, 5, 9, 13], 18)]
    series = WeeklySeries(launch[None], np.zeros((1, 20), bool), np.zeros((1, 20), bool), exercise,
                          np.zeros(20, bool), MONDAY)
    low, high = record_intervals(series, n_resamples=400, seed=1)["exercise_launch_ratio"]
    assert math.isfinite(low) and math.isfinite(high)
    assert 1.0 < low < timing_statistics(series)["exercise_launch_ratio"] < high


def test_record_intervals_are_nan_where_undefined():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # no exercise, no major provocation
        out = record_intervals(weeks_series(launch_in([1, 3], 8)), n_resamples=100)
        assert all(math.isnan(x) for pair in out.values() for x in pair)
        # a single reduced-scale week: no interval from one week
        out = record_intervals(weeks_series(launch_in([0, 2, 5, 9, 13, 17, 21, 25, 28, 29], 33),
                                            exercise=[0.5, 1, 1] + [0] * 30), n_resamples=100)
        assert all(math.isnan(x) for x in out["exercise_launch_ratio_reduced"])
        assert all(math.isfinite(x) for x in out["exercise_launch_ratio_full"])


# ------------------------------------------------------------------------------- table and figure
def test_table_has_one_row_per_statistic_and_the_figure_one_axes_per_row(tmp_path):
    record = patterned_series(5)
    sim = patterned_series(5).select([0, 0, 0])
    table = event_study_table(record, sim, n_resamples=200, confidence=0.9)
    assert table["statistic"].tolist() == list(STATISTIC_NAMES)
    assert not table["in_fit"].any()
    observed = timing_statistics(record)
    for row in table.itertuples():
        assert row.observed == pytest.approx(observed[row.statistic])
        assert row.simulated == pytest.approx(observed[row.statistic])  # the same history
        assert row.simulated_low == pytest.approx(row.simulated_high)
    # exercise weeks 0-3 of every 20, launches in 0 and 2; other weeks: launches in 4, 7, 9, 12, 18
    assert table.loc[0, "observed_counts"] == "10/20 weeks vs 25/80"
    alone = event_study_table(record, n_resamples=200)
    assert alone["simulated"].isna().all() and alone["observed"].notna().all()

    fig = event_study_figure(table)
    axes = fig.axes
    assert len(axes) == len(table)
    for ax, kind in zip(axes, table["kind"], strict=True):
        at_one = [line for line in ax.get_lines() if list(line.get_xdata()) == [1.0, 1.0]]
        assert bool(at_one) == (kind == "ratio"), kind
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("90% bootstrap" in t for t in labels) and any("5%-95% range" in t for t in labels)
    # a table read back from JSON has no attrs: the caller states the levels
    plain = pd.DataFrame(table.to_dict(orient="records"))
    labels = [t.get_text() for t in event_study_figure(plain, confidence=0.8, quantiles=(0.1, 0.9))
              .legends[0].get_texts()]
    assert any("80% bootstrap" in t for t in labels) and any("10%-90% range" in t for t in labels)
    path = plot_event_study(alone, tmp_path / "event_study.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------- the real record
def test_the_record_2016_2023_has_more_launches_in_exercise_weeks():
    start, end = dt.date.fromisoformat(START), dt.date.fromisoformat(END)
    weeks = (end - start).days // 7 + 1
    series = record_series(load_events(default_events_path()), start, weeks)
    stats = timing_statistics(series)
    intervals = record_intervals(series)
    ratio = stats["exercise_launch_ratio"]
    low, high = intervals["exercise_launch_ratio"]
    assert math.isfinite(ratio) and ratio > 1
    assert 1 < low < ratio < high
    for name in STATISTIC_NAMES:  # the record defines every statistic
        assert math.isfinite(stats[name]), name
        assert all(math.isfinite(x) for x in intervals[name]), name
