"""Metrics that mean what their names say, and the per-run figure (``escalation.png``).

In-process and small (a few hundred replications), so the file runs in a few seconds.
"""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import small_config
from PIL import Image
from scipy import stats

from sim import Results, load_config, run
from sim.agents import RUNGS
from sim.events import default_events_path, load_events
from sim.metrics import (
    METRIC_DESCRIPTIONS,
    METRIC_UNITS,
    headline_metrics,
    replication_metrics,
    rung_metric,
    wilson_interval,
)
from sim.outputs import plot_escalation, run_title
from sim.params import Era
from sim.recording import COUNT_COLUMNS, RUNG_SLUGS, WEEKLY_COLUMNS, per_replication

matplotlib.use("Agg")


# ----------------------------------------------------------------------------- metrics
@pytest.fixture(scope="module")
def no_test_run() -> Results:
    """Nuclear tests impossible (a moratorium era from the first week), clashes frequent."""
    cfg = small_config(replications=300, weeks=260,
                       scenario={"eras": [Era(name="moratorium", start_date="2000-01-01",
                                              nuclear_moratorium=True)]})
    return run(cfg)


@pytest.fixture(scope="module")
def cheap_test_run() -> Results:
    """Nuclear tests cheap enough that some replications test and others do not."""
    return run(small_config(replications=300, weeks=260, params={"dprk_cost_nuclear": 4.0}))


def test_p_nuclear_test_is_zero_when_tests_are_impossible_though_the_rung_is_reached(no_test_run):
    m = headline_metrics(no_test_run.replications)
    assert per_replication(no_test_run.replications)["dprk_nuclear_test"].sum() == 0
    assert m["p_nuclear_test"]["estimate"] == 0.0
    # clashes put replications on the ladder above 'nuclear test' without any test
    assert m["p_kinetic_clash"]["estimate"] > 0.1
    assert m[rung_metric("nuclear_test")]["estimate"] >= m["p_kinetic_clash"]["estimate"]


def test_p_nuclear_test_is_the_share_of_replications_with_a_test(cheap_test_run):
    reps = cheap_test_run.replications
    tested = reps.groupby("replication")["dprk_nuclear_test"].sum() > 0
    m = headline_metrics(reps)["p_nuclear_test"]
    assert 0.0 < tested.mean() < 1.0  # the check is not trivial
    assert m["estimate"] == tested.mean()
    assert m["n"] == len(tested)
    lo, hi = stats.binomtest(int(tested.sum()), len(tested)).proportion_ci(method="wilson")
    assert m["ci95"] == pytest.approx([lo, hi])
    # a test puts a replication at rung 'nuclear test' or higher, never the other way round
    assert headline_metrics(reps)[rung_metric("nuclear_test")]["estimate"] >= m["estimate"]


def _grouped(replications: pd.DataFrame) -> pd.DataFrame:
    """per_replication's definition: a pandas groupby (sorted keys, sums, first values)."""
    keys = ["block", "replication"] if "block" in replications.columns else "replication"
    g = replications.groupby(keys, sort=True)
    fields = ["us_resolute", "max_rung", "first_clash_week", "war_week", "us_cost", "final_dprk_belief",
              "final_rok_assurance", "final_japan_assurance"]
    return g[list(COUNT_COLUMNS)].sum().join(g[fields].first())


def test_per_replication_is_the_groupby(cheap_test_run):
    """The reshaping fast path gives the groupby's frame, dtypes and index included: on a run's
    table and on a two-block batch table; rows in reverse (replications in runs, but descending)
    and shuffled rows go through the groupby itself."""
    reps = cheap_test_run.replications
    pd.testing.assert_frame_equal(per_replication(reps), _grouped(reps), check_exact=True)
    batch = pd.concat([reps.assign(block=0), reps.assign(block=1)], ignore_index=True)
    batch = batch[["block", *reps.columns]]
    pd.testing.assert_frame_equal(per_replication(batch), _grouped(batch), check_exact=True)
    backwards = reps.iloc[::-1]
    pd.testing.assert_frame_equal(per_replication(backwards), _grouped(backwards), check_exact=True)
    shuffled = reps.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(per_replication(shuffled), _grouped(shuffled), check_exact=True)


@pytest.mark.parametrize("fixture", ["cheap_test_run", "no_test_run"])
def test_metrics_of_the_lean_collapse_are_those_of_the_whole_table(fixture, request, tmp_path):
    """replication_metrics (summaries) and file_replication_metrics (the sweep's comparison: only
    the metrics' columns, read with pyarrow) collapse only the columns the metrics read; their
    frames are those of per_replication's whole table, bit for bit: on a point's table (through
    the lean collapse: years summed, clashes in some replications only, in memory and from its
    file) and on tables they hand to per_replication (a batch's blocks, shuffled rows)."""
    from sim.metrics import _frame_column, _lean_per_replication, _metrics_of, file_replication_metrics

    reps = request.getfixturevalue(fixture).replications
    assert reps["first_clash_week"].isna().any() and reps["first_clash_week"].notna().any()
    assert reps.groupby("replication").size().min() > 1  # several years a replication
    batch = pd.concat([reps.assign(block=0), reps.assign(block=1)], ignore_index=True)
    tables = {"point": reps, "batch": batch[["block", *reps.columns]],
              "shuffled": reps.sample(frac=1.0, random_state=0)}
    for name, table in tables.items():
        path = tmp_path / f"{name}.parquet"
        table.to_parquet(path, index=False)  # as sim.outputs.write_run writes it
        expected = _metrics_of(per_replication(table))
        for got in (replication_metrics(table), replication_metrics(pd.read_parquet(path)),
                    file_replication_metrics(path)):
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            for column in expected:
                assert got[column].to_numpy().tobytes() == expected[column].to_numpy().tobytes(), column
    lean = [_lean_per_replication(t["replication"].to_numpy(), lambda n, t=t: _frame_column(t[n]))
            for t in (reps, tables["shuffled"])]
    assert lean[0] is not None and lean[1] is None  # the point's own path was the one tested
    import pyarrow.parquet as pq

    from sim.metrics import _arrow_column

    table = pq.read_table(tmp_path / "point.parquet")
    ids, _ = _arrow_column(table.column("replication"))
    assert _lean_per_replication(ids, lambda n: _arrow_column(table.column(n))) is not None


def test_every_metric_has_a_unit_and_a_description(cheap_test_run):
    names = list(replication_metrics(cheap_test_run.replications).columns)
    assert names == list(METRIC_UNITS) == list(METRIC_DESCRIPTIONS)
    for name in names:  # the sweep figures label an axis "probability" by this word
        if name.startswith("p_"):
            assert METRIC_UNITS[name].startswith("probability"), name
    for slug, rung in zip(RUNG_SLUGS[1:], RUNGS[1:], strict=True):
        assert f"'{rung}' or higher" in METRIC_DESCRIPTIONS[rung_metric(slug)]


def test_ladder_metrics_have_one_name_in_summary_and_timeseries(cheap_test_run):
    """The weekly column and the summary metric share a name, and the last week equals the horizon."""
    summary = headline_metrics(cheap_test_run.replications)
    last = cheap_test_run.timeseries.iloc[-1]
    for slug in RUNG_SLUGS[1:]:
        name = rung_metric(slug)
        assert name in WEEKLY_COLUMNS
        assert last[name] == pytest.approx(summary[name]["estimate"])
    assert not [c for c in WEEKLY_COLUMNS if c.startswith(("p_reach_", "p_reached_"))]


@pytest.mark.parametrize("n", [1, 7, 100, 2000])
def test_vectorised_wilson_interval_is_scipys(n):
    k = np.unique(np.linspace(0, n, 12).round().astype(int))
    lo, hi = wilson_interval(k, n)
    for kk, a, b in zip(k, lo, hi, strict=True):
        ci = stats.binomtest(int(kk), n).proportion_ci(method="wilson")
        assert (a, b) == pytest.approx((ci.low, ci.high), abs=1e-12)


# ----------------------------------------------------------------------------- the figure
@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    cfg = load_config(["scenario=historical", "policy=reactive", "params=calibrated",
                       "replications=100", "progress=false"])
    results = run(cfg)
    path = tmp_path_factory.mktemp("replay") / "escalation.png"
    return results, plot_escalation(results, path), path


@pytest.fixture(scope="module")
def forward(cheap_test_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("forward") / "escalation.png"
    return cheap_test_run, plot_escalation(cheap_test_run, path), path


def _line(ax, label_start: str):
    lines = [ln for ln in ax.get_lines() if ln.get_label().startswith(label_start)]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    return lines[0]


def test_replay_overlay_holds_the_records_monthly_counts(replay):
    results, fig, _ = replay
    start = pd.Timestamp(results.config.scenario.start)
    end = start + pd.Timedelta(weeks=results.config.scenario.weeks)
    ev = load_events(default_events_path())
    days = ev.loc[(ev["actor"] == "DPRK") & (ev["type"] == "launch_day") & (ev["date"] >= start)
                  & (ev["date"] < end), "date"]
    assert len(days) > 50
    per_month = days.dt.to_period("M").value_counts()

    ax = fig.axes["launches"]
    for label, expected in (("record: launch days", per_month),):
        line = _line(ax, label)
        drawn = pd.Series(line.get_ydata(), index=pd.to_datetime(line.get_xdata()).to_period("M"))
        assert drawn.index.min() == start.to_period("M")
        assert drawn.sum() == expected.sum()
        assert drawn.to_dict() == {m: float(expected.get(m, 0)) for m in drawn.index}


def test_replay_shows_the_records_nuclear_tests(replay):
    results, fig, _ = replay
    drawn = pd.to_datetime(_line(fig.axes["rare"], "record: DPRK nuclear test").get_xdata())
    ev = load_events(default_events_path())
    start = pd.Timestamp(results.config.scenario.start)
    tests = ev.loc[(ev["type"] == "nuclear_test") & (ev["date"] >= start), "date"]
    assert list(drawn) == list(tests) and len(tests) == 3


def test_simulated_monthly_launches_are_the_weekly_means_summed(forward):
    results, fig, _ = forward
    ts = results.timeseries
    line = _line(fig.axes["launches"], "model: mean")
    months = pd.to_datetime(ts["date"]).dt.to_period("M")
    expected = ts["dprk_launch_days"].groupby(months.to_numpy()).sum()
    assert list(line.get_ydata()) == pytest.approx(list(expected))
    # launch days, not launch weeks: a launch week holds one or more of them
    weeks = (ts["dprk_srbm_launch"] + ts["dprk_lrbm_launch"]).groupby(months.to_numpy()).sum()
    assert np.all(expected.to_numpy() >= weeks.to_numpy() - 1e-9) and expected.sum() > weeks.sum()


def test_rare_events_are_on_a_log_axis_apart_from_the_lower_rungs(forward):
    results, fig, _ = forward
    ax = fig.axes["rare"]
    assert ax.get_yscale() == "log"
    labels = " ".join(ln.get_label() for ln in ax.get_lines())
    assert "rhetoric" not in labels and "missile test" not in labels
    assert fig.axes["rare"] is not fig.axes["launches"]
    # what is drawn: the clash curve is the ladder column (a clash is rung 4), the nuclear-test curve
    # ends at p_nuclear_test, not at the ladder level 'nuclear test or higher'
    summary = headline_metrics(results.replications)
    clash = _line(ax, "\u2265 1 kinetic clash")
    assert np.nan_to_num(clash.get_ydata()) == pytest.approx(
        results.timeseries[rung_metric("kinetic_clash")].to_numpy())
    nuclear = _line(ax, "\u2265 1 DPRK nuclear test")
    assert nuclear.get_ydata()[-1] == pytest.approx(summary["p_nuclear_test"]["estimate"])
    assert nuclear.get_ydata()[-1] < summary[rung_metric("nuclear_test")]["estimate"]


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_replay_title_names_every_posture_period(replay):
    results, fig, _ = replay
    scenario = results.config.scenario
    start = pd.Timestamp(scenario.start)
    title = _words(fig.figure._suptitle.get_text())
    assert title == _words(run_title(results))
    assert len(scenario.posture_periods) == 5
    for period in scenario.posture_periods:
        begins = max(start, pd.Timestamp(period.start_date)).date()
        assert f"{period.posture.value} from {begins}" in title
    assert f"posture {results.config.policy.name.value} throughout" not in title
    labels = [t.get_text() for t in fig.axes["periods"].texts]
    assert [p.posture.value for p in scenario.posture_periods] == labels[:5]


def test_forward_title_names_its_one_posture(forward):
    results, fig, _ = forward
    assert "US posture: rotational throughout" in _words(fig.title)
    assert "periods" not in fig.axes


@pytest.mark.parametrize("which", ["replay", "forward"])
def test_png_is_written_at_150_dpi(which, request):
    _, _, path = request.getfixturevalue(which)
    with Image.open(path) as img:
        assert img.info["dpi"] == pytest.approx((150, 150), abs=0.5)
        assert img.width >= 1500


@pytest.mark.skipif(not hasattr(Results, "monthly"),
                    reason="the run does not record launch days per month and replication yet")
def test_monthly_band_is_drawn_from_the_runs_quantiles(replay):
    results, fig, _ = replay
    band = results.monthly
    # the per-replication monthly counts average to the weekly shares summed over each month
    assert band["mean"].to_numpy() == pytest.approx(fig.monthly["simulated_mean"].to_numpy())
    assert (band["q05"] <= band["q50"]).all() and (band["q50"] <= band["q95"]).all()
    assert (band[["q05", "q50", "q95"]] % 1 == 0).all().all()  # observed counts, not interpolated
    assert fig.monthly["simulated_q05"].to_numpy() == pytest.approx(band["q05"].to_numpy())
    assert fig.monthly["simulated_q95"].to_numpy() == pytest.approx(band["q95"].to_numpy())
    assert any(c.get_label() == "model: 5-95 % of replications"
               for c in fig.axes["launches"].collections)
