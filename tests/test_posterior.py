"""Posterior calibration (sim.posterior), parameter uncertainty in runs (sim.draws, params=posterior),
forecasts (sim.forecast), simulation-based calibration (sim.sbc): the machinery, at tiny sizes."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.calibrate import TIMING_TARGETS, CalibrationConfig, ParameterSpec, PosteriorConfig, _moments
from sim.config import config_dir
from sim.draws import load_draws
from sim.events import default_events_path, load_events
from sim.forecast import forecast_scenario, simulate_counts, summarise
from sim.model import DeterrenceModel
from sim.params import ConfigError, ParameterDraws, RunConfig
from sim.posterior import (
    load_chains,
    make_run,
    replication_summaries,
    run_chains,
    summary_keys,
    synthetic_log_likelihood,
)
from sim.sbc import Lockstep, run_sbc

EVENTS = str(default_events_path())
TINY_POSTERIOR = PosteriorConfig(chains=1, walkers=4, steps=5, burn=2, replications=5, pilot=4, predictive=5,
                                 workers=1, start="prior")
TINY = CalibrationConfig(events_file=EVENTS, years=[2016, 2017], replications=5,
                         parameters=[ParameterSpec("dprk_cost_srbm", 0.0, 6.0),
                                     ParameterSpec("salvo_extra", 0.1, 3.0)],
                         profile=[], progress=False, posterior=TINY_POSTERIOR)


def test_summaries_of_all_blocks_equal_each_blocks_own_moments():
    """Seed 3, 4 prior points x 3 histories, the default targets: the statistics computed for all
    blocks at once equal sim.calibrate._moments of each history alone."""
    cc = CalibrationConfig(events_file=EVENTS, progress=False)
    run = make_run(dataclasses.replace(cc, posterior=dataclasses.replace(cc.posterior, exclude=[])))
    problem, keys = run.problem, summary_keys(run.problem)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(p.lower, p.upper, 4) for p in cc.parameters])
    fast = replication_summaries(problem, points, 3, 3, keys, independent=True)
    base = problem.base.replace(replications=3, seed=3)
    res = DeterrenceModel(base, batch=problem.batch(points), weekly=False, detail=True,
                          independent=True).run()
    reps = res.replications
    for j in range(4):
        for i in range(3):
            one = reps[(reps["block"] == j) & (reps["replication"] == i)]
            col = j * 3 + i
            m = _moments(one, [0] * 10, {k: v[:, col:col + 1] for k, v in res.detail.items()},
                         problem.calendar)
            for c, key in enumerate(keys):
                if key == "war":
                    ref = m.p_war
                elif key in TIMING_TARGETS:
                    ref = m.timing[key] if math.isfinite(m.timing[key]) else 0.0
                else:
                    group, year = key.rsplit("_", 1)
                    ref = m.yearly.loc[int(year), group]
                assert fast[j, i, c] == pytest.approx(ref, abs=1e-12), (j, i, key)


def test_synthetic_likelihood_is_the_normal_density_and_prefers_the_centre():
    """Seed 0, 4000 draws of a 3-dimensional normal: the Ledoit-Wolf synthetic log-likelihood is
    close to the true log density (shrinkage is negligible at this size) and higher at the mean
    than two sds away."""
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    x = rng.multivariate_normal([1.0, 2.0, 3.0], cov, size=4000)
    truth = stats.multivariate_normal([1.0, 2.0, 3.0], cov)
    at = np.array([1.5, 2.0, 2.8])
    assert synthetic_log_likelihood(x, at) == pytest.approx(truth.logpdf(at), abs=0.05)
    far = np.array([1.0 + 2 * math.sqrt(2), 2.0, 3.0])
    assert synthetic_log_likelihood(x, np.array([1.0, 2.0, 3.0])) > synthetic_log_likelihood(x, far)


def test_an_interrupted_run_resumes_to_the_same_chain(tmp_path):
    """Tiny problem (2016-17, two parameters, 4 walkers): 3 steps, then resumed to 5, equal the
    5 steps run at once; a store made with other settings is refused."""
    whole = dataclasses.replace(TINY, posterior=dataclasses.replace(TINY_POSTERIOR, steps=5))
    run_chains(whole, tmp_path / "a")
    first = dataclasses.replace(TINY, posterior=dataclasses.replace(TINY_POSTERIOR, steps=3))
    run_chains(first, tmp_path / "b")
    run_chains(whole, tmp_path / "b")
    a, lpa, _ = load_chains(whole, tmp_path / "a")
    b, lpb, _ = load_chains(whole, tmp_path / "b")
    assert a.shape == (1, 5, 4, 2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(lpa, lpb)
    other = dataclasses.replace(TINY, posterior=dataclasses.replace(TINY_POSTERIOR, replications=6))
    with pytest.raises(ConfigError, match="other settings"):
        run_chains(other, tmp_path / "b")


def test_posterior_calibration_writes_its_files_and_installs_the_draws(tmp_path):
    """The tiny run writes every file; install=true puts params/posterior.yaml and the draws into a
    copy of configs/, and a run with those draws reads them."""
    from sim.posterior_report import POSTERIOR_FILES, run_posterior_calibration

    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    result = run_posterior_calibration(dataclasses.replace(TINY, install=True), tmp_path / "out", configs)
    for name in POSTERIOR_FILES:
        assert (tmp_path / "out" / name).is_file(), name
    draws = pd.read_parquet(tmp_path / "out" / "posterior_draws.parquet")
    assert len(draws) == 1 * (5 - 2) * 4 == result["draws"]
    assert draws["weight"].sum() == pytest.approx(1.0)
    assert set(draws.columns) >= {"chain", "step", "walker", "weight", "dprk_cost_srbm", "salvo_extra"}
    saved = json.loads((tmp_path / "out" / "posterior.json").read_text())
    assert {r["parameter"] for r in saved["parameters"]} == {"dprk_cost_srbm", "salvo_extra"}
    assert all(row["q05"] <= row["q95"] for row in saved["posterior_predictive"])
    installed = configs / "params" / "posterior_draws.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(installed), draws)
    assert (configs / "params" / "posterior.yaml").read_text().startswith("# @package _global_")


def _draws_file(tmp_path, n=30, seed=0, columns=("spiral_weight", "dprk_cost_srbm", "era_drive_2022")):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"weight": np.full(n, 1.0 / n)})
    bounds = {"spiral_weight": (0, 1), "dprk_cost_srbm": (0, 6), "era_drive_2022": (0, 3)}
    for c in columns:
        frame[c] = rng.uniform(*bounds.get(c, (0, 1)), n)
    path = tmp_path / "draws.parquet"
    frame.to_parquet(path)
    return path, frame


def test_a_posterior_run_is_its_blocks_pooled(tmp_path):
    """200 replications over 10 draws (seed 20161220): the pooled run's replications are exactly
    the independent blocks run as a batch at the same draws, its response lags their sum, and each
    block of 20 replications sits at one draw."""
    path, frame = _draws_file(tmp_path)
    cfg = RunConfig(replications=200, progress=False, posterior=ParameterDraws(draws=str(path), blocks=10))
    model = DeterrenceModel(cfg, weekly=False)
    pooled = model.run()
    rows = np.array(pooled.meta["posterior"]["rows"])
    batch = {c: frame[c].to_numpy()[rows] for c in ("spiral_weight", "dprk_cost_srbm")}
    plain = DeterrenceModel(cfg.replace(replications=20, posterior={"draws": None}), batch=batch,
                            weekly=False, independent=True).run()
    a = pooled.replications
    b = plain.replications.assign(
        replication=plain.replications["block"] * 20 + plain.replications["replication"])
    for column in ("dprk_launch_days", "dprk_missiles", "clashes", "us_deployments"):
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy())
    assert pooled.meta["response_lag_histogram"] == np.sum(plain.meta["response_lag_histogram_by_block"],
                                                           axis=0).tolist()
    per_rep = a.groupby("replication")["posterior_draw"].first().to_numpy()
    np.testing.assert_array_equal(per_rep, np.repeat(rows, 20))


def test_two_postures_meet_the_same_draws(tmp_path):
    """Common random numbers: the draws chosen depend on the seed only, not on the posture."""
    path, _ = _draws_file(tmp_path)
    base = RunConfig(replications=40, progress=False, posterior=ParameterDraws(draws=str(path), blocks=4))
    rows = [DeterrenceModel(base.replace(policy={"name": p}), weekly=False).run().meta["posterior"]["rows"]
            for p in ("rotational", "permanent")]
    assert rows[0] == rows[1]
    other = DeterrenceModel(base.replace(seed=7), weekly=False).run().meta["posterior"]["rows"]
    assert other != rows[0]


def test_bad_draws_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_draws(str(tmp_path / "missing.parquet"))
    path, frame = _draws_file(tmp_path)
    frame.assign(not_a_parameter=1.0).to_parquet(path)
    with pytest.raises(ConfigError, match="not_a_parameter"):
        load_draws(str(path))
    (tmp_path / "text.parquet").write_text("x")
    with pytest.raises(ConfigError, match="cannot be read as Parquet"):
        load_draws(str(tmp_path / "text.parquet"))
    with pytest.raises(ConfigError, match="multiple of posterior.blocks"):
        RunConfig(replications=55, posterior=ParameterDraws(draws="x", blocks=10))


def test_the_regime_rule_keeps_the_last_era_and_the_known_calendar():
    """A forecast after 2019 keeps the eras and postures begun by 2019, the record's calendar of
    2020-21; after the record, 2023's calendar repeats 52 weeks later."""
    events = load_events(EVENTS)
    s = forecast_scenario(events, last_fitted=2019, through=2021)
    assert [e.name for e in s.eras][-1] == "after_hanoi_2019"
    assert all(int(p.start_date[:4]) <= 2019 for p in s.posture_periods)
    assert any(e.date.startswith("2021") and e.kind == "exercise" for e in s.dated_events)
    late = forecast_scenario(events, last_fitted=2023, through=2025)
    ex2023 = sorted(e.date for e in late.dated_events if e.date.startswith("2023") and e.kind == "exercise")
    ex2025 = sorted(e.date for e in late.dated_events if e.date.startswith("2025") and e.kind == "exercise")
    assert len(ex2023) == len(ex2025) > 0
    assert [(pd.Timestamp(b) - pd.Timestamp(a)).days for a, b in zip(ex2023, ex2025, strict=True)] == \
        [728] * len(ex2023)


def test_forecast_samples_count_what_the_replay_counts(tmp_path):
    """40 histories at 4 draws through 2024: the yearly samples equal the replay's per-replication
    counts, and the months of a year add up to it."""
    _, frame = _draws_file(tmp_path)
    events = load_events(EVENTS)
    scenario = forecast_scenario(events, last_fitted=2023, through=2024)
    samples = simulate_counts(frame, scenario, [2024], replications=40, blocks=4, seed=5, monthly=True)
    yearly = samples[samples["resolution"] == "year"].set_index(["metric", "draw"])["value"]
    monthly = samples[samples["resolution"] == "month"].groupby(["metric", "draw"])["value"].sum()
    pd.testing.assert_series_equal(yearly.sort_index(), monthly.sort_index(), check_names=False)
    table = summarise(samples)
    assert list(table.columns) == ["year", "metric", "mean", "q05", "q50", "q95"]
    assert set(table["metric"]) == {"launch_days", "missiles"}


def test_lockstep_gathers_every_thread_and_lets_a_finished_one_go():
    calls = []

    def fn(pending):
        calls.append(sorted(pending))
        return {k: v * 10 for k, v in pending.items()}

    lock = Lockstep(3, fn)
    out = {}

    def worker(k, rounds):
        for r in range(rounds):
            out[(k, r)] = lock.call(k, k + r)
        lock.leave()

    threads = [threading.Thread(target=worker, args=(k, 2 if k == 0 else 3)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    assert calls == [[0, 1, 2], [0, 1, 2], [1, 2]]
    assert out[(2, 2)] == 40


def test_sbc_ranks_lie_in_range_and_the_truth_is_not_used_to_start():
    """Three synthetic records (seed 1), two parameters, a few steps: one row per dataset and
    parameter, ranks in 0..L, quantiles ordered."""
    cc = dataclasses.replace(TINY, posterior=dataclasses.replace(TINY_POSTERIOR, pilot=8, steps=4, burn=1))
    table = run_sbc(cc, ["dprk_cost_srbm", "salvo_extra"], 3, seed=1, ranks_of=9)
    assert len(table) == 6
    assert table["rank"].between(0, 9).all()
    assert (table["q05"] <= table["q50"]).all() and (table["q50"] <= table["q95"]).all()


def _program(name: str) -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).parent / name)


def test_dsim_forecast_writes_its_table_and_refuses_the_record_years(tmp_path):
    """`dsim-forecast` on a small draws file: forecast.csv holds year, metric, mean, q05, q50, q95
    for launch days and missiles in each forecast year; asking for 2023 is one line, exit 2, and no
    folder."""
    import subprocess

    path, _ = _draws_file(tmp_path)
    out = tmp_path / "fc"
    res = subprocess.run([_program("dsim-forecast"), f"draws={path}", "replications=40", "blocks=4",
                          "years=[2024,2025]", f"hydra.run.dir={out}"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    table = pd.read_csv(out / "forecast.csv")
    assert list(table.columns) == ["year", "metric", "mean", "q05", "q50", "q95"]
    assert sorted(zip(table["year"], table["metric"], strict=True)) == [
        (2024, "launch_days"), (2024, "missiles"), (2025, "launch_days"), (2025, "missiles")]
    assert (table["q05"] <= table["q95"]).all()
    samples = pd.read_parquet(out / "forecast_samples.parquet")
    assert samples["draw"].nunique() == 40
    for name in ("forecast.png", "forecast.pdf", "forecast.json"):
        assert (out / name).is_file()
    bad = subprocess.run([_program("dsim-forecast"), "years=[2023]", f"hydra.run.dir={tmp_path / 'bad'}"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "2023" in bad.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("posterior.burn=800", "must be below posterior.steps"),
    ("posterior.walkers=10", "too few for 15 free parameters"),
    ("posterior.move=gibbs", "is unknown"),
    ("posterior.replications=3", "too few to estimate a covariance"),
    ("method=bayes", "choose posterior or point"),
])
def test_bad_posterior_settings_are_one_line(override, message):
    from sim.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config([override], config_name="calibrate")


def test_the_hindcast_script_scores_the_model_and_the_four_baselines(tmp_path):
    """`experiments/hindcasts/run.py --quick` (one fold, tiny settings): scores.csv has a row for
    the model and each baseline at every resolution and metric, and the model's samples are
    forecasts of 2023 only (fold 2022, within the record)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "hindcasts" / "run.py"
    res = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path / "out"),
                          "--chains", str(tmp_path / "chains")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert set(scores["source"]) == {"model", "constant_negbin", "persistence", "era_mean",
                                     "month_climatology"}
    assert len(scores) == 5 * 2 * 2
    samples = pd.read_parquet(tmp_path / "out" / "model_samples.parquet")
    assert set(samples["year"]) == {2023} and set(samples["fold"]) == {2022}
