"""Batched parameter points (the calibration's fast path) against the plain one-point path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim import ConfigError, DeterrenceModel, Posture, RunConfig, rules
from sim.calendar import week_of
from sim.params import Era, PosturePeriod


def _plain(cfg, **params):
    return DeterrenceModel(cfg.replace(params=params)).run()


def test_each_block_of_a_batch_reproduces_its_plain_run_exactly():
    """Seed 3, R=60 per point, 150 weeks, reactive posture: block j of a 3-point batch equals the
    plain run at point j, row for row, and so does its response-lag histogram."""
    cfg = RunConfig(replications=60, seed=3, progress=False).replace(
        policy={"name": Posture.reactive}, scenario={"weeks": 150})
    points = {"dprk_cost_srbm": [0.5, 1.0, 2.5], "salvo_extra": [0.3, 1.0, 2.0],
              "spiral_weight": [0.0, 0.5, 1.0]}
    batch = DeterrenceModel(cfg, batch=points).run()
    for j in range(3):
        plain = _plain(cfg, **{k: v[j] for k, v in points.items()})
        block = batch.replications[batch.replications["block"] == j].drop(columns="block")
        pd.testing.assert_frame_equal(block.reset_index(drop=True), plain.replications)
        assert batch.meta["response_lag_histogram_by_block"][j] == plain.meta["response_lag_histogram"]


def _assert_same_results(got, want):
    pd.testing.assert_frame_equal(got.timeseries, want.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(got.replications, want.replications, check_exact=True)
    pd.testing.assert_frame_equal(got.monthly, want.monthly, check_exact=True)
    assert got.meta == want.meta
    assert got.config == want.config


def test_results_by_block_are_the_plain_runs_results():
    """Seed 11, R=40 per point, 120 weeks, rotational: three points differing in credibility, the
    DPRK's prior and a behavioural parameter run as one batch; each block's Results (weekly
    statistics, per replication-year table, monthly band, response lags, config) equal the plain
    run's exactly, and ``results()`` keeps the whole ensemble with a block column."""
    cfg = RunConfig(replications=40, seed=11, progress=False).replace(scenario={"weeks": 120})
    points = {"credibility": [0.1, 0.5, 0.9], "dprk_prior": [0.3, 0.5, 0.7],
              "spiral_weight": [0.0, 0.5, 1.0]}
    configs = [cfg.replace(credibility=points["credibility"][j],
                           scenario={"dprk_prior": points["dprk_prior"][j]},
                           params={"spiral_weight": points["spiral_weight"][j]}) for j in range(3)]
    model = DeterrenceModel(cfg, batch=points)
    whole = model.run()
    blocks = model.recorder.results_by_block(configs)
    for j, config in enumerate(configs):
        _assert_same_results(blocks[j], DeterrenceModel(config).run())
        rows = whole.timeseries[whole.timeseries["block"] == j].drop(columns="block")
        pd.testing.assert_frame_equal(rows.reset_index(drop=True), blocks[j].timeseries)
    assert len(whole.replications) == 3 * len(blocks[0].replications)
    with pytest.raises(ValueError, match="2 configs for 3 blocks"):
        model.recorder.results_by_block(configs[:2])


@pytest.mark.parametrize("points", [None, {"credibility": [0.2, 0.8]}])
def test_the_replications_table_alone_is_the_results_table(points):
    """Seed 5, R=30 (per point), 80 weeks, weekly statistics off as calibration runs: after
    ``simulate()``, ``recorder.replications_table()`` equals ``run()``'s replications table, for one
    point and for a batch (with its block column), and the recorder's detail equals the results'."""
    cfg = RunConfig(replications=30, seed=5, progress=False).replace(scenario={"weeks": 80})
    model = DeterrenceModel(cfg, batch=points, weekly=False, detail=True)
    model.simulate()
    table = model.recorder.replications_table()
    results = DeterrenceModel(cfg, batch=points, weekly=False, detail=True).run()
    pd.testing.assert_frame_equal(table, results.replications, check_exact=True)
    for name, values in results.detail.items():
        np.testing.assert_array_equal(model.recorder.detail[name], values)


def test_era_drive_in_a_batch_matches_the_configured_era():
    """An era's drive given through the batch equals the same drive written in the scenario."""
    eras = [Era("early", "2025-01-01", 1.0, 0.0), Era("late", "2027-01-01", 1.0, 0.0)]
    cfg = RunConfig(replications=40, seed=5, progress=False).replace(scenario={"eras": eras, "weeks": 160})
    batch = DeterrenceModel(cfg, batch={"era:late": [0.2, 2.5]}).run()
    for j, drive in enumerate((0.2, 2.5)):
        conf = cfg.replace(scenario={"eras": [eras[0], Era("late", "2027-01-01", drive, 0.0)]})
        plain = DeterrenceModel(conf).run()
        block = batch.replications[batch.replications["block"] == j].drop(columns="block")
        pd.testing.assert_frame_equal(block.reset_index(drop=True), plain.replications)


def test_batch_rejects_scalar_only_parameters():
    cfg = RunConfig(replications=5, progress=False)
    with pytest.raises(ConfigError, match="cannot be varied"):
        DeterrenceModel(cfg, batch={"credibility_rule": [0.0, 1.0]})
    with pytest.raises(ConfigError, match="equal lengths"):
        DeterrenceModel(cfg, batch={"dprk_cost_srbm": [1.0, 2.0], "salvo_extra": [1.0]})


def test_posture_periods_switch_the_schedule():
    """A rotational period followed by none: arrivals only inside the rotational period."""
    cfg = RunConfig(replications=10, seed=1, progress=False).replace(
        scenario={"weeks": 60, "posture_periods": [
            PosturePeriod("rot", "2026-01-05", Posture.rotational),
            PosturePeriod("off", "2026-05-04", Posture.none)]})
    ts = DeterrenceModel(cfg).run().timeseries
    switch = week_of(cfg.scenario.start, pd.Timestamp("2026-05-04").date())
    arrivals = np.flatnonzero(ts["scheduled_arrival"].to_numpy())
    assert arrivals.size > 0 and arrivals.max() < switch
    assert ts["us_surge_deployment"].iloc[switch:].sum() == 0  # `none` allows no surges
    assert ts["scheduled_on_station"].iloc[switch + cfg.policy.rotation_duration_weeks:].sum() == 0


def _nb_quantiles(u, mean, size) -> np.ndarray:
    """``rules.negative_binomial_quantile`` (a compiled scalar rule) at every (u, mean)."""
    mean = np.broadcast_to(mean, np.shape(u))
    return np.array([rules.negative_binomial_quantile(a, b, size, rules.MAX_QUANTILE_TERMS)
                     for a, b in zip(u, mean, strict=True)], dtype=np.int64)


def test_salvo_size_is_the_negative_binomial():
    """200k draws (seed 0) of the inverse-CDF salvo extra (``salvo_size`` - 1 at tension 0) match
    scipy's negative binomial law (n = dispersion, p = dispersion / (dispersion + mean);
    chi-square over counts 0..14 and a tail bin, alpha 0.001)."""
    rng = np.random.default_rng(0)
    n, dispersion, extra = 200_000, 0.5, 1.5
    draws = _nb_quantiles(rng.random(n), extra, dispersion)
    p = dispersion / (dispersion + extra)
    expected = stats.nbinom.pmf(np.arange(15), dispersion, p)
    expected = np.append(expected, 1 - expected.sum()) * n
    observed = np.append(np.bincount(np.minimum(draws, 15), minlength=16)[:15],
                         (draws >= 15).sum())
    assert draws.min() >= 0
    assert stats.chisquare(observed, expected).pvalue > 0.001


@pytest.mark.parametrize("size", [0.3, 0.5, 2.0, 10.0])
def test_negative_binomial_quantile_is_the_inverse_cdf(size):
    """Seed 1, 5000 (u, mean) pairs, means uniform in [0, 30]: k is the smallest count whose
    scipy nbinom cdf reaches u (cdf(k) >= u and cdf(k - 1) < u, to 1e-12)."""
    rng = np.random.default_rng(1)
    mean = rng.uniform(0, 30, 5000)
    u = rng.random(5000)
    k = _nb_quantiles(u, mean, size)
    p = size / (size + mean)
    assert k.min() >= 0
    assert np.all(stats.nbinom.cdf(k, size, p) >= u - 1e-12)
    assert np.all((k == 0) | (stats.nbinom.cdf(k - 1, size, p) < u + 1e-12))


def test_independent_blocks_draw_their_own_noise_from_the_same_law():
    """``independent=True`` (for simulation-based inference): three blocks with the same parameters
    differ replication by replication, yet their launch days come from one law (block means within
    4 standard errors of each other; seed 5, R = 300, two years); with common random numbers
    (the default) the same blocks are identical."""
    cfg = RunConfig(replications=300, seed=5, progress=False).replace(scenario={"weeks": 104})
    same = {"spiral_weight": np.full(3, cfg.params.spiral_weight)}
    crn = DeterrenceModel(cfg, batch=same).run().per_replication()
    ind = DeterrenceModel(cfg, batch=same, independent=True).run().per_replication()
    days = [ind.xs(j, level="block")["dprk_launch_days"].to_numpy() for j in range(3)]
    assert not np.array_equal(days[0], days[1]) and not np.array_equal(days[1], days[2])
    for j in (1, 2):
        se = np.sqrt(days[0].var(ddof=1) / days[0].size + days[j].var(ddof=1) / days[j].size)
        assert abs(days[0].mean() - days[j].mean()) < 4 * se
    np.testing.assert_array_equal(crn.xs(0, level="block")["dprk_launch_days"],
                                  crn.xs(2, level="block")["dprk_launch_days"])
