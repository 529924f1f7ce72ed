"""Forecast scores and baselines of the rolling-origin hindcasts (sim.validation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim import validation as v
from sim.calibrate import observed_targets
from sim.events import default_events_path, load_events

SEED = 20240613
N = 400  # draws per baseline forecast in these tests (4000 in the hindcasts)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return load_events(default_events_path())


@pytest.fixture(scope="module")
def observed(events) -> tuple[pd.DataFrame, pd.DataFrame]:
    return v.observed_counts(events)


@pytest.fixture(scope="module")
def baselines(observed) -> pd.DataFrame:
    return v.run_baselines(*observed, n=N, seed=SEED)


def _train(observed, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    yearly, monthly = observed
    return yearly[yearly.index <= fold], monthly[monthly.index.year <= fold]


# ---------------------------------------------------------------------------- the record
def test_observed_yearly_counts_equal_the_calibration_targets(events, observed):
    yearly, monthly = observed
    targets = observed_targets(events)["yearly"]
    assert list(yearly.index) == list(targets.index) == list(range(2016, 2024))
    np.testing.assert_array_equal(yearly["launch_days"], targets["dprk_launch_days"])
    np.testing.assert_array_equal(yearly["missiles"], targets["dprk_missiles"])
    # every month of 2016-01 .. 2023-12, summing to the years
    assert len(monthly) == 96 and isinstance(monthly.index, pd.PeriodIndex)
    assert monthly.index[0] == pd.Period("2016-01", "M") and monthly.index[-1] == pd.Period("2023-12", "M")
    sums = monthly.groupby(monthly.index.year).sum()
    pd.testing.assert_frame_equal(sums.rename_axis("year"), yearly, check_dtype=False)


def test_year_era_is_the_era_in_force_on_1_july():
    assert v.era_of_year(2017) == "test_campaign_2016_17"
    assert v.era_of_year(2018) == "diplomacy_2018"
    assert v.era_of_year(2019) == "after_hanoi_2019"  # began 1 Mar 2019
    assert v.era_of_year(2021) == "lull_2020_21"


# ---------------------------------------------------------------------------- scores
def test_crps_of_a_point_mass_is_the_absolute_error():
    samples = np.repeat([[7.0, 0.0, 30.0]], 50, axis=0)  # (n = 50 draws, m = 3 targets)
    observed = np.array([3.0, 0.0, 41.0])
    result = v.score(samples, observed, np.random.default_rng(SEED))
    np.testing.assert_allclose(result["crps"], np.abs(samples[0] - observed), atol=1e-9)


def test_sharper_correct_forecast_scores_better():
    rng = np.random.default_rng(SEED)
    y, mu = 10, 10.0
    sharp = rng.negative_binomial(50.0, 50.0 / (50.0 + mu), size=4000)
    wide = rng.negative_binomial(2.0, 2.0 / (2.0 + mu), size=4000)
    s_sharp, s_wide = v.score(sharp, [y], rng), v.score(wide, [y], rng)
    assert s_sharp["crps"].iloc[0] < s_wide["crps"].iloc[0]
    assert s_sharp["log_score"].iloc[0] < s_wide["log_score"].iloc[0]


def test_log_score_is_the_empirical_probability_inside_and_finite_outside_the_ensemble():
    samples = np.array([0] * 25 + [1] * 25 + [2] * 50, dtype=float)
    rng = np.random.default_rng(SEED)
    w = v.LOG_SCORE_WEIGHT
    inside = v.score(samples, [1], rng)["log_score"].iloc[0]
    # the mixture (1 - w) * 0.25 + w * NB(1) lies in [(1 - w) 0.25, (1 - w) 0.25 + w]
    assert -np.log((1 - w) * 0.25 + w) <= inside <= -np.log((1 - w) * 0.25)
    outside = v.score(np.column_stack([samples, samples]), [40, 3], rng)["log_score"].to_numpy()
    assert np.isfinite(outside).all()
    assert outside[0] > outside[1] > inside  # further out scores worse


def test_interval_flags_on_hand_made_cases():
    samples = np.arange(100, dtype=float)  # 0..99: F(x) = (x + 1) / 100
    # the lower quantile function F^-1(a) = min{x: F(x) >= a}: central 50 % [24, 74], central 90 %
    # [4, 94] (linear interpolation would give [24.75, 74.25] and [4.95, 94.05]); bounds included
    y = np.array([23, 24, 74, 75, 3, 4, 94, 95], dtype=float)
    result = v.score(np.repeat(samples[:, None], len(y), axis=1), y, np.random.default_rng(SEED))
    assert result["in50"].tolist() == [False, True, True, False, False, False, False, False]
    assert result["in90"].tolist() == [True, True, True, True, False, True, True, False]


def test_randomised_pit_is_uniform_for_a_calibrated_count_forecast():
    """Observations drawn from the forecast distribution itself (many small means, where counts are
    most discrete): the randomised PIT must pass a KS test of uniformity; a too-sharp forecast (a
    Poisson for overdispersed counts) must fail the same test (so the test has power)."""
    rng = np.random.default_rng(SEED)
    m, n, size = 600, 2000, 1.5
    mu = rng.uniform(0.3, 8.0, size=m)
    p = size / (size + mu)
    truth = rng.negative_binomial(size, p)
    calibrated = rng.negative_binomial(size, p, size=(n, m))
    too_sharp = rng.poisson(mu, size=(n, m))
    pit = v.score(calibrated, truth, rng)["pit"]
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    pit_sharp = v.score(too_sharp, truth, rng)["pit"]
    assert stats.kstest(pit_sharp, "uniform").pvalue < 0.01
    # too sharp: too many PITs in the tails (a U-shaped histogram)
    assert np.mean((pit_sharp < 0.1) | (pit_sharp > 0.9)) > 0.25


def test_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        v.score(np.zeros((10, 3)), [1, 2], np.random.default_rng(SEED))


# ---------------------------------------------------------------------------- baselines
def test_long_format_shapes_and_columns(baselines, observed):
    assert list(baselines.columns) == list(v.FORECAST_COLUMNS)
    assert set(baselines["source"].unique()) == set(v.BASELINES)
    assert set(baselines["metric"].unique()) == set(v.METRICS)
    yearly = baselines[baselines["resolution"] == "year"]
    monthly = baselines[baselines["resolution"] == "month"]
    assert (yearly["month"] == 0).all() and set(monthly["month"].unique()) == set(range(1, 13))
    assert (baselines["year"] == baselines["fold"] + baselines["horizon"]).all()
    assert baselines["year"].max() == 2023  # fold 2022's second year (2024) is not in the record
    per_target = baselines.groupby(["source", "fold", "metric", "resolution", "year", "month"],
                                   observed=True)["draw"]
    assert (per_target.nunique() == N).all() and (per_target.size() == N).all()
    # 4 folds x 2 horizons - 1 (2024) = 7 target years x (1 + 12) x 2 metrics per baseline
    assert len(baselines) == len(v.BASELINES) * 7 * 13 * 2 * N


def test_baselines_are_fitted_only_on_training_years(observed, baselines):
    """Changing 2021's counts changes no forecast of folds 2019 and 2020 (they do not train on 2021,
    fold 2020 forecasts it) and changes the folds that train on it."""
    yearly, monthly = (o.copy() for o in observed)
    yearly.loc[2021] += 17
    monthly.loc[monthly.index.year == 2021] += 3
    changed = v.run_baselines(yearly, monthly, n=N, seed=SEED)
    for source in v.BASELINES:
        for fold in v.FOLDS:
            a = baselines[(baselines["source"] == source) & (baselines["fold"] == fold)]
            b = changed[(changed["source"] == source) & (changed["fold"] == fold)]
            same = np.array_equal(a["value"].to_numpy(), b["value"].to_numpy())
            assert same == (fold < 2021), (source, fold)


@pytest.mark.parametrize("name", list(v.BASELINES))
def test_baseline_refuses_training_data_that_reach_a_target_year(observed, name):
    train_y, train_m = _train(observed, 2021)
    with pytest.raises(ValueError, match="fit only on the years before"):
        v.BASELINES[name](train_y, train_m, [2021, 2022], 10, np.random.default_rng(SEED))


@pytest.mark.parametrize("name", list(v.BASELINES))
def test_every_baseline_is_a_proper_forecast_with_spread(baselines, name):
    draws = baselines[baselines["source"] == name]
    spread = draws.groupby(["fold", "metric", "resolution", "year", "month"], observed=True)["value"].std()
    assert (spread > 0).all()


def test_constant_negbin_is_the_maximum_likelihood_fit(observed):
    train_y, train_m = _train(observed, 2022)
    params = v.fit_constant_negbin(train_y, train_m, [2023])
    row = params[(params["metric"] == "missiles") & (params["resolution"] == "year")].iloc[0]
    x = train_y["missiles"].to_numpy()

    def nll(mu, r):
        return -stats.nbinom.logpmf(x, r, r / (r + mu)).sum()

    best = nll(row["mu"], row["size"])
    for mu, r in [(row["mu"] * 1.05, row["size"]), (row["mu"] / 1.05, row["size"]),
                  (row["mu"], row["size"] * 1.2), (row["mu"], row["size"] / 1.2)]:
        assert nll(mu, r) > best
    # one distribution for every target month, fitted to all training months
    months = params[(params["metric"] == "missiles") & (params["resolution"] == "month")]
    assert np.allclose(months["mu"], train_m["missiles"].mean())


def test_persistence_centres_on_the_last_training_year(observed, baselines):
    train_y, train_m = _train(observed, 2021)
    params = v.fit_persistence(train_y, train_m, [2022, 2023])
    for metric in v.METRICS:
        p = params[params["metric"] == metric]
        year = p[p["resolution"] == "year"]
        assert (year["mu"] == max(train_y.loc[2021, metric], v.JEFFREYS_ZERO)).all()
        for target in (2022, 2023):
            month = p[(p["resolution"] == "month") & (p["year"] == target)].sort_values("month")
            expected = np.maximum(train_m.loc[train_m.index.year == 2021, metric].to_numpy(),
                                  v.JEFFREYS_ZERO)
            np.testing.assert_array_equal(month["mu"].to_numpy(), expected)
    # the draws' mean is the last year's count, within 4 standard errors
    draws = baselines[(baselines["source"] == "persistence") & (baselines["fold"] == 2021)
                      & (baselines["resolution"] == "year") & (baselines["metric"] == "launch_days")
                      & (baselines["year"] == 2022)]["value"]
    assert abs(draws.mean() - train_y.loc[2021, "launch_days"]) < 4 * draws.std() / np.sqrt(len(draws))


def test_persistence_dispersion_comes_from_the_series_changes():
    """A series that barely changes from year to year gets a tighter persistence forecast than one
    that swings, at the same last value."""
    years = list(range(2016, 2022))
    months = pd.period_range("2016-01", "2021-12", freq="M", name="month")

    def frames(series):
        yearly = pd.DataFrame({"launch_days": series, "missiles": series}, index=pd.Index(years, name="year"))
        monthly = pd.DataFrame({"launch_days": np.repeat(series, 12) // 12,
                                "missiles": np.repeat(series, 12) // 12}, index=months)
        return yearly, monthly

    steady = v.fit_persistence(*frames(np.array([22, 18, 21, 19, 23, 20])), [2022])
    swinging = v.fit_persistence(*frames(np.array([40, 3, 35, 2, 38, 20])), [2022])

    def size(p):
        return p[(p["metric"] == "launch_days") & (p["resolution"] == "year")]["size"].iloc[0]

    assert size(steady) > 10 * size(swinging)


def test_era_mean_centres_on_the_last_era_of_the_training_years(observed):
    train_y, train_m = _train(observed, 2021)  # last era: lull_2020_21 (2020, 2021)
    params = v.fit_era_mean(train_y, train_m, [2022, 2023])
    for metric in v.METRICS:
        p = params[params["metric"] == metric]
        year = p[p["resolution"] == "year"]
        assert np.allclose(year["mu"], train_y.loc[[2020, 2021], metric].mean())
        month = p[p["resolution"] == "month"]
        assert np.allclose(month["mu"], train_m.loc[train_m.index.year >= 2020, metric].mean())


def test_month_climatology_reproduces_the_months_means(observed, baselines):
    train_y, train_m = _train(observed, 2022)
    params = v.fit_month_climatology(train_y, train_m, [2023])
    for metric in v.METRICS:
        means = train_m[metric].groupby(train_m.index.month).mean().to_numpy()
        k = len(train_y)
        month = params[(params["metric"] == metric) & (params["resolution"] == "month")]
        np.testing.assert_allclose(month.sort_values("month")["mu"], np.maximum(means, 0.5 / k))
    # the draws: each month's mean within 4 standard errors; the year is the sum of the months
    d = baselines[(baselines["source"] == "month_climatology") & (baselines["fold"] == 2022)
                  & (baselines["metric"] == "launch_days")]
    months = d[d["resolution"] == "month"].pivot(index="draw", columns="month", values="value")
    means = train_m["launch_days"].groupby(train_m.index.month).mean()
    se = months.std() / np.sqrt(len(months))
    assert (np.abs(months.mean() - means) < 4 * se + 1e-9).all()
    year = d[d["resolution"] == "year"].set_index("draw")["value"].sort_index()
    np.testing.assert_array_equal(year.to_numpy(), months.sum(axis=1).sort_index().to_numpy())


# ---------------------------------------------------------------------------- table and figure
def _hand_forecasts(observed) -> pd.DataFrame:
    """Two sources on two folds: 'oracle' is a point mass at the record, 'off' is 5 above it."""
    yearly, monthly = observed
    rows = []
    for source, shift in (("oracle", 0), ("off", 5)):
        for fold in (2021, 2022):
            for h in (1, 2):
                year = fold + h
                for metric in v.METRICS:
                    obs_y = yearly.loc[year, metric] if year in yearly.index else 0
                    targets = [("year", 0, obs_y)]
                    if year in yearly.index:
                        targets += [("month", m, monthly.loc[pd.Period(year=year, month=m, freq="M"),
                                                             metric]) for m in range(1, 13)]
                    else:
                        targets += [("month", m, 0) for m in range(1, 13)]
                    for res, month, value in targets:
                        rows += [(source, fold, h, metric, res, year, month, d, value + shift)
                                 for d in range(5)]
    return pd.DataFrame(rows, columns=v.FORECAST_COLUMNS)


def test_score_table_and_skill(observed):
    forecasts = _hand_forecasts(observed)
    table = v.score_table(forecasts, *observed, np.random.default_rng(SEED))
    # one row per source x resolution x metric x horizon; 2024 (fold 2022, h = 2) is not scored
    assert len(table) == 2 * 2 * 2 * 2
    assert set(table.loc[table["resolution"] == "year", "n_targets"]) == {2, 1}
    oracle, off = table[table["source"] == "oracle"], table[table["source"] == "off"]
    assert np.allclose(oracle["crps"], 0) and np.allclose(off["crps"], 5)
    assert (oracle["coverage90"] == 1).all() and (off["coverage90"] == 0).all()
    assert (oracle["log_score"].to_numpy() < off["log_score"].to_numpy()).all()
    skill = v.skill_vs(table, reference="off")
    assert np.allclose(skill.loc[skill["source"] == "oracle", "crps_skill"], 1.0)
    assert np.allclose(skill.loc[skill["source"] == "off", "crps_skill"], 0.0)
    with pytest.raises(ValueError, match="not a source"):
        v.skill_vs(table, reference="nobody")


def test_score_table_of_the_baselines(observed, baselines):
    table = v.score_table(baselines, *observed, np.random.default_rng(SEED))
    assert len(table) == len(v.BASELINES) * 2 * 2 * 2
    year_h1 = table[(table["resolution"] == "year") & (table["horizon"] == 1)]
    assert (year_h1["n_targets"] == 4).all()  # 2020 .. 2023
    month_h2 = table[(table["resolution"] == "month") & (table["horizon"] == 2)]
    assert (month_h2["n_targets"] == 36).all()  # 2021 .. 2023
    assert table[["crps", "log_score", "pit_ks"]].notna().all().all()


def test_plot_validation_writes_png_and_pdf(observed, baselines, tmp_path):
    two_folds = baselines[baselines["fold"] <= 2020]
    written = v.plot_validation(two_folds, observed[0], tmp_path / "fig" / "validation")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
