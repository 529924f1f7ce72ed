"""Forecast scores and naive baselines for the rolling-origin hindcasts (issue 13, point 4).

Pure functions, no simulation. A *fold* ``Y`` fits on the record's years up to ``Y`` and forecasts
``Y + 1`` and ``Y + 2`` (the horizon), for ``Y = 2019 ... 2022``: evaluation on a rolling forecasting
origin (Tashman 2000, Int. J. Forecast. 16:437; Hyndman & Athanasopoulos 2021, *Forecasting:
Principles and Practice*, 3rd ed., Sec. 5.10). The record is 2016-2023 (:data:`sim.history.YEARS`):
a target year after 2023 is not scored. The targets are the DPRK's launch days and missiles, per
year and per month (:func:`observed_counts`).

Forecasts are Monte Carlo samples in one *long format* (:data:`LONG_COLUMNS`), so the model's
forecasts and the baselines' are scored by the same code: one row per draw of one target, with

========== ==========================================================================
metric     ``launch_days`` or ``missiles``
resolution ``year`` or ``month``
year       the target year
month      1-12 for a monthly target, 0 for a yearly one
draw       0 ... n-1, the draw's number (draws of one forecast share numbers across targets)
value      the forecast count of that draw
========== ==========================================================================

and, for scoring (:data:`FORECAST_COLUMNS`), ``source`` (``model`` or a baseline's name), ``fold``
(the last training year) and ``horizon`` (the target year minus the fold, 1 or 2).

Scoring follows the VIEWS prediction challenge (Hegre et al. 2024, *The 2023/24 VIEWS prediction
challenge: predicting the number of fatalities in armed conflict, with uncertainty*, arXiv:2407.11045):
sample forecasts of counts, scored by the CRPS and the logarithmic (ignorance) score, which are
strictly proper (Gneiting & Raftery 2007, JASA 102:359), against naive benchmark models, plus the
calibration checks of Czado, Gneiting & Held (2009, Biometrics 65:1254): the randomised PIT and
the coverage of central prediction intervals.

The four baselines (:data:`BASELINES`) are negative binomial forecasts fitted by maximum likelihood
on the training years only; each one exists for both metrics and both resolutions:

``constant_negbin``
    one negative binomial for every target, fitted to all training years (months).
``persistence``
    next year like the last training year (the naive method; monthly: the seasonal naive method,
    each month like the same month of the last training year; Hyndman & Athanasopoulos 2021,
    Sec. 5.2), with a dispersion fitted on the training series' changes over the horizon.
``era_mean``
    the mean of the training years of the last DPRK era in the training data (the regime rule
    stated in advance: the last era continues), with a dispersion fitted within eras.
``month_climatology``
    each calendar month's mean over the training years, with one shared dispersion; the yearly
    forecast is the sum of the twelve months' draws.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .history import ERAS, YEARS

METRICS = ("launch_days", "missiles")
RESOLUTIONS = ("year", "month")
FOLDS = (2019, 2020, 2021, 2022)
HORIZONS = (1, 2)
LONG_COLUMNS = ("metric", "resolution", "year", "month", "draw", "value")
FORECAST_COLUMNS = ("source", "fold", "horizon", *LONG_COLUMNS)
PARAM_COLUMNS = ("metric", "resolution", "year", "month", "mu", "size")
GROUP = ["source", "resolution", "metric", "horizon"]
SCORE_COLUMNS = ("observed", "crps", "log_score", "pit", "in50", "in90")

# The negative binomial's size r (variance mu + mu^2 / r) is searched on [1e-2, 1e4]: at 1e4 the
# distribution is a Poisson for every count here (variance within 1 % of the mean for mu <= 100).
SIZE_BOUNDS = (1e-2, 1e4)
# A series of k zero counts has mean 0, a point mass with no spread. Its mean is set to 0.5 / k, the
# posterior mean of a Poisson rate after k zero counts under Jeffreys' prior Gamma(1/2, 0) (Jeffreys
# 1946, Proc. R. Soc. A 186:453), so that every forecast keeps a positive spread.
JEFFREYS_ZERO = 0.5
# The weight of the fitted negative binomial mixed into an ensemble's empirical probabilities for
# the log score (:func:`score`).
LOG_SCORE_WEIGHT = 0.01


# ---------------------------------------------------------------------------- the record
def observed_counts(events: pd.DataFrame, years: list[int] | range = YEARS
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The record's yearly and monthly DPRK launch days and missiles, 2016-2023.

    A launch day is a row with ``actor == "DPRK"`` and ``type == "launch_day"``; its ``count`` is its
    missiles: the counts of :func:`sim.events.yearly_counts`, which the calibration's
    :func:`sim.calibrate.observed_targets` uses. Returns ``(yearly, monthly)``: ``yearly`` indexed by
    ``year``, ``monthly`` by a ``pandas.Period`` month (``month``) with every month of the years
    present (zeros filled); columns ``launch_days`` and ``missiles`` (int).
    """
    years = list(range(min(years), max(years) + 1))
    launch = events[(events["actor"] == "DPRK") & (events["type"] == "launch_day")]
    launch = launch[launch["date"].dt.year.isin(years)]

    def counts(key: pd.Series, index: pd.Index) -> pd.DataFrame:
        out = pd.DataFrame({"launch_days": launch.groupby(key).size(),
                            "missiles": launch.groupby(key)["count"].sum()})
        return out.reindex(index, fill_value=0).astype(int).rename_axis(index.name)

    yearly = counts(launch["date"].dt.year, pd.Index(years, name="year"))
    months = pd.period_range(f"{years[0]}-01", f"{years[-1]}-12", freq="M", name="month")
    monthly = counts(launch["date"].dt.to_period("M"), months)
    return yearly, monthly


def era_of_year(year: int) -> str:
    """The DPRK era (:data:`sim.history.ERAS`) in force on 1 July of ``year``: a year's era."""
    mid = dt.date(int(year), 7, 1)
    started = [e for e in ERAS if dt.date.fromisoformat(e.start_date) <= mid]
    if not started:
        raise ValueError(f"year {year} is before the first era ({ERAS[0].start_date}): "
                         "use a year of the record")
    return started[-1].name


# ---------------------------------------------------------------------------- negative binomial
def _nb_p(mu: np.ndarray, size: np.ndarray) -> np.ndarray:
    """scipy's / numpy's ``p`` of the negative binomial with mean ``mu`` and size ``size``."""
    return size / (size + mu)


def _mean(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """The sample mean (the maximum-likelihood mean of a negative binomial), floored at
    :data:`JEFFREYS_ZERO` / k for an all-zero series of k counts."""
    x = np.asarray(x, dtype=float)
    k = x.size if axis is None else x.shape[axis]
    return np.maximum(x.mean(axis=axis), JEFFREYS_ZERO / k)


def fit_size(x: np.ndarray, mu: np.ndarray) -> float:
    """Maximum-likelihood size ``r`` of a negative binomial for counts ``x`` with known means ``mu``.

    The log-likelihood ``sum log NB(x_i; mu_i, r)`` is maximised over ``log r`` in
    :data:`SIZE_BOUNDS` by scipy's bounded scalar minimiser; counts no more spread than a Poisson
    give the upper bound (a Poisson). For i.i.d. counts the maximum-likelihood mean is the sample
    mean whatever ``r``, so fitting ``r`` with ``mu`` fixed at the sample mean is the joint
    maximum-likelihood fit (the profile likelihood; Lawless 1987, Can. J. Stat. 15:209).
    """
    x = np.asarray(x, dtype=float)
    mu = np.broadcast_to(np.asarray(mu, dtype=float), x.shape).ravel()
    x = x.ravel()

    def nll(log_r: float) -> float:
        r = np.exp(log_r)
        return -float(stats.nbinom.logpmf(x, r, _nb_p(mu, r)).sum())

    res = optimize.minimize_scalar(nll, bounds=np.log(SIZE_BOUNDS), method="bounded",
                                   options={"xatol": 1e-4})
    return float(np.exp(res.x))


# ---------------------------------------------------------------------------- baselines: fits
def _check_training(train_yearly: pd.DataFrame, train_monthly: pd.DataFrame,
                    target_years: list[int]) -> tuple[np.ndarray, dict, dict]:
    """The training years and, per metric, the yearly series (k,) and the monthly matrix (k, 12).

    Refuses training data that reach into a target year (a forecast must be fitted only on the
    years before it) or yearly and monthly data of different years.
    """
    if len(train_yearly) == 0:
        raise ValueError("no training years: give the record's years up to the fold")
    if not target_years:
        raise ValueError("no target years: give the years to forecast")
    years = np.asarray(train_yearly.index, dtype=int)
    if np.any(np.diff(years) != 1):
        raise ValueError(f"training years {list(years)} are not consecutive: give a run of years")
    if years[-1] >= min(target_years):
        raise ValueError(f"training years reach {years[-1]}, not before the first target year "
                         f"{min(target_years)}: fit only on the years before the forecast")
    if not isinstance(train_monthly.index, pd.PeriodIndex):
        raise ValueError("train_monthly must be indexed by pandas.Period months (observed_counts)")
    month_years = train_monthly.index.year
    if sorted(set(month_years)) != list(years) or len(train_monthly) != 12 * len(years):
        raise ValueError("train_monthly must hold the twelve months of each training year, no more")
    yearly, monthly = {}, {}
    for metric in METRICS:
        if metric not in train_yearly or metric not in train_monthly:
            raise ValueError(f"training data lack the column '{metric}': use observed_counts")
        yearly[metric] = train_yearly[metric].to_numpy(dtype=float)
        m = train_monthly[metric].sort_index()
        monthly[metric] = m.to_numpy(dtype=float).reshape(len(years), 12)
    return years, yearly, monthly


def _rows(metric: str, target_years: list[int], year_mu, year_size, month_mu, month_size
          ) -> list[dict]:
    """Parameter rows: per target year one yearly row and twelve monthly rows."""
    rows = []
    for i, year in enumerate(target_years):
        rows.append({"metric": metric, "resolution": "year", "year": year, "month": 0,
                     "mu": float(np.broadcast_to(year_mu, len(target_years))[i]),
                     "size": float(np.broadcast_to(year_size, len(target_years))[i])})
        mu = np.broadcast_to(month_mu, (len(target_years), 12))[i]
        size = np.broadcast_to(month_size, (len(target_years), 12))[i]
        rows.extend({"metric": metric, "resolution": "month", "year": year, "month": m + 1,
                     "mu": float(mu[m]), "size": float(size[m])} for m in range(12))
    return rows


def fit_constant_negbin(train_yearly: pd.DataFrame, train_monthly: pd.DataFrame,
                        target_years: list[int]) -> pd.DataFrame:
    """One negative binomial fitted by maximum likelihood to all training years (yearly targets) or
    all training months (monthly targets), the same for every target: the "no-change" benchmark of
    a count series with no trend (Hegre et al. 2024 use such distributional benchmarks)."""
    _, yearly, monthly = _check_training(train_yearly, train_monthly, target_years)
    rows = []
    for metric in METRICS:
        y, m = yearly[metric], monthly[metric].ravel()
        y_mu, m_mu = _mean(y), _mean(m)
        rows += _rows(metric, target_years, y_mu, fit_size(y, y_mu), m_mu, fit_size(m, m_mu))
    return pd.DataFrame(rows, columns=PARAM_COLUMNS)


def _lag_pairs(series: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) counts ``h`` years apart along the first axis, flattened."""
    if len(series) <= h:
        raise ValueError(f"persistence at horizon {h} needs more than {h} training years, "
                         f"got {len(series)}: start the folds later")
    return series[:-h].ravel(), series[h:].ravel()


def fit_persistence(train_yearly: pd.DataFrame, train_monthly: pd.DataFrame,
                    target_years: list[int]) -> pd.DataFrame:
    """Next year like the last training year: the naive forecast (Hyndman & Athanasopoulos 2021,
    Sec. 5.2) as a negative binomial.

    Yearly: mean = the last training year's count. Monthly: the seasonal naive forecast, mean = the
    same calendar month of the last training year (so a month's forecast keeps last year's timing;
    a zero month gets mean :data:`JEFFREYS_ZERO`). The size for horizon ``h`` (target year minus the
    last training year) is fitted by maximum likelihood to the training series' own ``h``-year
    changes: every training count ``x_t`` as a draw from NB(mean = ``x_{t-h}``, r), with ``x_{t-h}``
    floored at :data:`JEFFREYS_ZERO` (the same months ``h`` years apart for the monthly series).
    The spread thus grows with the horizon if the series wanders more over two years than over one.
    """
    years, yearly, monthly = _check_training(train_yearly, train_monthly, target_years)
    rows = []
    for metric in METRICS:
        y, m = yearly[metric], monthly[metric]
        horizons = [int(t) - int(years[-1]) for t in target_years]
        y_size = [fit_size(nxt, np.maximum(prev, JEFFREYS_ZERO)) for prev, nxt in
                  (_lag_pairs(y, h) for h in horizons)]
        m_size = [np.full(12, fit_size(nxt, np.maximum(prev, JEFFREYS_ZERO))) for prev, nxt in
                  (_lag_pairs(m, h) for h in horizons)]
        rows += _rows(metric, target_years, max(y[-1], JEFFREYS_ZERO), np.array(y_size),
                      np.maximum(m[-1], JEFFREYS_ZERO), np.array(m_size))
    return pd.DataFrame(rows, columns=PARAM_COLUMNS)


def _within_era_size(series: np.ndarray, eras: np.ndarray) -> float:
    """Shared size of negative binomials around each era's mean (rows of ``series`` = years).

    Only eras with at least two training observations inform a within-era spread (an era of one
    observation fits its mean exactly, which would push the size to a Poisson); with no such era
    the size is the one of all training observations around their mean.
    """
    x, mu = [], []
    for era in dict.fromkeys(eras):
        group = series[eras == era].ravel()
        if group.size >= 2:
            x.append(group)
            mu.append(np.full(group.size, _mean(group)))
    if not x:
        flat = series.ravel()
        return fit_size(flat, _mean(flat))
    return fit_size(np.concatenate(x), np.concatenate(mu))


def fit_era_mean(train_yearly: pd.DataFrame, train_monthly: pd.DataFrame,
                 target_years: list[int]) -> pd.DataFrame:
    """The last era continues: a negative binomial around the mean of the training years of the
    last DPRK era present in the training data, with a size fitted within eras.

    A year's era is the era of :data:`sim.history.ERAS` in force on 1 July (:func:`era_of_year`);
    a month belongs to its year's era. Yearly: mean = the mean of the last era's training years.
    Monthly: mean = the mean of all months of those years (no seasonality). The size is fitted by
    maximum likelihood to the training years (months) around their own era's mean
    (:func:`_within_era_size`). The regime rule is stated in advance of the forecast, as issue 13
    asks, and it is the one the model's hindcasts use (the last era continues).
    """
    years, yearly, monthly = _check_training(train_yearly, train_monthly, target_years)
    eras = np.array([era_of_year(y) for y in years])
    last = eras == eras[-1]
    rows = []
    for metric in METRICS:
        y, m = yearly[metric], monthly[metric]
        rows += _rows(metric, target_years, _mean(y[last]), _within_era_size(y, eras),
                      _mean(m[last]), _within_era_size(m, eras))
    return pd.DataFrame(rows, columns=PARAM_COLUMNS)


def fit_month_climatology(train_yearly: pd.DataFrame, train_monthly: pd.DataFrame,
                          target_years: list[int]) -> pd.DataFrame:
    """Each calendar month's mean over the training years, as a negative binomial per month with
    one size shared by the twelve months (fitted by maximum likelihood to all training months
    around their month's mean); a month with no launch in any training year gets
    :data:`JEFFREYS_ZERO` / k. The yearly forecast is the sum of the twelve months' draws: its
    rows hold ``mu`` = the sum of the months' means and ``size`` = NaN (no single negative
    binomial; :func:`sample_forecast` sums the months' draws).
    """
    _, _, monthly = _check_training(train_yearly, train_monthly, target_years)
    rows = []
    for metric in METRICS:
        m = monthly[metric]
        mu = _mean(m, axis=0)
        size = fit_size(m, np.broadcast_to(mu, m.shape))
        rows += _rows(metric, target_years, mu.sum(), np.nan, mu, size)
    return pd.DataFrame(rows, columns=PARAM_COLUMNS)


FITS: dict[str, Callable[..., pd.DataFrame]] = {
    "constant_negbin": fit_constant_negbin,
    "persistence": fit_persistence,
    "era_mean": fit_era_mean,
    "month_climatology": fit_month_climatology,
}


# ---------------------------------------------------------------------------- baselines: samples
def _long(params: pd.DataFrame, draws: np.ndarray) -> pd.DataFrame:
    """Rows of ``params`` (m targets) and their draws (n, m) in the long format."""
    n, m = draws.shape
    out = {c: np.tile(params[c].to_numpy(), n) for c in ("metric", "resolution", "year", "month")}
    out["draw"] = np.repeat(np.arange(n), m)
    out["value"] = draws.ravel()
    frame = pd.DataFrame(out, columns=LONG_COLUMNS)
    return frame.astype({"year": int, "month": int, "draw": int, "value": int})


def sample_forecast(params: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` draws of every target of a fitted baseline (:data:`PARAM_COLUMNS`), long format.

    Rows with a size draw from their negative binomial (independently across targets); rows with
    size NaN (the climatology's years) are the sum of the same draw's twelve months of that year.
    """
    if n < 2:
        raise ValueError(f"n={n}: give at least 2 draws per forecast")
    params = params.reset_index(drop=True)
    nb = params["size"].notna().to_numpy()
    mu, size = params["mu"].to_numpy(float), params["size"].to_numpy(float)
    draws = np.zeros((n, len(params)), dtype=np.int64)
    draws[:, nb] = rng.negative_binomial(size[nb], _nb_p(mu[nb], size[nb]), size=(n, int(nb.sum())))
    for i in np.flatnonzero(~nb):
        row = params.loc[i]
        months = ((params["metric"] == row["metric"]) & (params["resolution"] == "month")
                  & (params["year"] == row["year"])).to_numpy()
        if months.sum() != 12 or not nb[months].all():
            raise ValueError(f"{row['metric']} {row['year']}: a summed yearly row needs twelve "
                             "monthly negative binomials")
        draws[:, i] = draws[:, months].sum(axis=1)
    return _long(params, draws)


def _baseline(name: str) -> Callable[..., pd.DataFrame]:
    fit = FITS[name]

    def forecast(train_yearly: pd.DataFrame, train_monthly: pd.DataFrame, target_years: list[int],
                 n: int, rng: np.random.Generator) -> pd.DataFrame:
        return sample_forecast(fit(train_yearly, train_monthly, list(target_years)), n, rng)

    forecast.__name__ = name
    forecast.__doc__ = (f"``n`` draws of the ``{name}`` baseline for ``target_years``, fitted on the "
                        f"training years only, in the long format ({fit.__name__}).")
    return forecast


constant_negbin = _baseline("constant_negbin")
persistence = _baseline("persistence")
era_mean = _baseline("era_mean")
month_climatology = _baseline("month_climatology")
BASELINES: dict[str, Callable[..., pd.DataFrame]] = {
    "constant_negbin": constant_negbin, "persistence": persistence, "era_mean": era_mean,
    "month_climatology": month_climatology,
}


def run_baselines(observed_yearly: pd.DataFrame, observed_monthly: pd.DataFrame,
                  folds: tuple[int, ...] = FOLDS, horizons: tuple[int, ...] = HORIZONS,
                  n: int = 4000, seed: int = 13) -> pd.DataFrame:
    """All four baselines on every fold: :data:`FORECAST_COLUMNS`, long format.

    Fold ``Y`` trains on the record's years up to ``Y`` and forecasts ``Y + h`` for each horizon
    ``h`` whose year is in the record (later years cannot be scored). Each baseline and fold draws
    from its own generator, seeded by ``(seed, baseline, fold)``, so a forecast does not depend on
    which other folds or baselines are run.
    """
    frames = []
    record = set(observed_yearly.index)
    for b, (name, forecast) in enumerate(BASELINES.items()):
        for fold in folds:
            targets = [fold + h for h in horizons if fold + h in record]
            if not targets:
                continue
            train_y = observed_yearly[observed_yearly.index <= fold]
            train_m = observed_monthly[observed_monthly.index.year <= fold]
            rng = np.random.default_rng([seed, b, fold])
            frame = forecast(train_y, train_m, targets, n, rng)
            frame.insert(0, "horizon", frame["year"] - fold)
            frame.insert(0, "fold", fold)
            frame.insert(0, "source", name)
            frames.append(frame)
    out = pd.concat(frames, ignore_index=True)[list(FORECAST_COLUMNS)]
    return out.astype({c: "category" for c in ("source", "metric", "resolution")})


# ---------------------------------------------------------------------------- scores
def _smoothing_logpmf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log pmf at ``y`` of a negative binomial matched to each column's mean and variance (a
    Poisson where the ensemble is no more spread than one); an all-zero column has mean
    :data:`JEFFREYS_ZERO` / n."""
    mean = _mean(x, axis=0)
    var = x.var(axis=0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
    over = var > mean * (1 + 1e-9)
    size = np.where(over, mean**2 / np.where(over, var - mean, 1.0), 1.0)
    nb = stats.nbinom.logpmf(y, size, _nb_p(mean, size))
    return np.where(over, nb, stats.poisson.logpmf(y, mean))


def score(samples: np.ndarray, observed, rng: np.random.Generator,
          weight: float = LOG_SCORE_WEIGHT) -> pd.DataFrame:
    """Per-target scores of count forecasts given as samples (n,) or (n, m) against ``observed`` (m,).

    Columns (lower is better for the two scores):

    ``crps``
        the CRPS of the ensemble's empirical distribution (scoringrules' ``crps_ensemble`` with
        the ensemble on axis 0 and its quantile-decomposition estimator, which equals the
        kernel form E|X - y| - E|X - X'| / 2 of Gneiting & Raftery 2007 on the empirical
        distribution). Krüger, Lerch, Thorarinsdottir & Gneiting (2021, Int. Stat. Rev. 89:274)
        show that this empirical CRPS is consistent under minimal conditions.
    ``log_score``
        ``-log p(y)``. The empirical probability of the observed count can be 0 (an observation
        outside the ensemble scores infinity), and Krüger et al. (2021) find that the log score of
        sample output, unlike the CRPS, needs more than the empirical distribution (a smoothed or
        parametric estimate). The estimate here is the exact log score of the
        mixture ``(1 - w) * empirical pmf + w * NB``, with ``w`` = ``weight`` (default 0.01) and
        NB a negative binomial matched to the ensemble's mean and variance (a Poisson if the
        ensemble is not overdispersed). The mixture is itself a predictive distribution, so the
        score stays proper (Gneiting & Raftery 2007) and is never infinite. Where the ensemble has
        draws at ``y`` the score is at most ``-log(1 - w)`` (about 0.01) above the empirical
        ``-log p(y)``; where it has none it is ``-log(w * NB(y))``: a fixed penalty of ``-log w``
        (4.6) plus the fitted tail, the same rule for every source.
    ``pit``
        the randomised probability integral transform for counts, ``F(y - 1) + V (F(y) - F(y - 1))``
        with ``V ~ U(0, 1)`` from ``rng`` (Czado, Gneiting & Held 2009, Biometrics 65:1254);
        uniform on [0, 1] if the forecast is calibrated.
    ``in50``, ``in90``
        whether ``y`` lies in the central 50 % / 90 % interval ``[F^-1(a/2), F^-1(1 - a/2)]``
        of the ensemble, bounds included (``F^-1`` the lower quantile function, numpy's
        ``inverted_cdf``; the central prediction intervals of Gneiting & Raftery 2007, Sec. 6).
    """
    x = np.asarray(samples, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    y = np.atleast_1d(np.asarray(observed, dtype=float))
    if x.ndim != 2 or y.ndim != 1 or x.shape[1] != y.shape[0]:
        raise ValueError(f"samples {np.shape(samples)} and observed {np.shape(observed)} do not "
                         "match: give samples (n, m) and observed (m,)")
    if x.shape[0] < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("samples need at least 2 finite draws per target and finite observations")
    if not 0.0 < weight < 1.0:
        raise ValueError(f"weight={weight}: the smoothing weight must be in (0, 1)")
    import scoringrules as sr  # compiles its numba kernels on import (seconds): only when scoring

    crps = np.asarray(sr.crps_ensemble(y, x, m_axis=0), dtype=float)
    below = (x < y).mean(axis=0)
    upto = (x <= y).mean(axis=0)
    with np.errstate(divide="ignore"):
        log_emp = np.log(upto - below)
    log_p = np.logaddexp(np.log1p(-weight) + log_emp, np.log(weight) + _smoothing_logpmf(x, y))
    pit = below + rng.uniform(size=y.shape) * (upto - below)
    q = np.quantile(x, [0.25, 0.75, 0.05, 0.95], axis=0, method="inverted_cdf")
    return pd.DataFrame({
        "observed": y, "crps": crps, "log_score": -log_p, "pit": pit,
        "in50": (q[0] <= y) & (y <= q[1]), "in90": (q[2] <= y) & (y <= q[3]),
    })


def _observed(row_keys: pd.DataFrame, resolution: str, metric: str, observed_yearly: pd.DataFrame,
              observed_monthly: pd.DataFrame) -> np.ndarray:
    if resolution == "year":
        return observed_yearly.loc[row_keys["year"].to_numpy(), metric].to_numpy(dtype=float)
    months = pd.PeriodIndex([pd.Period(year=y, month=m, freq="M")
                             for y, m in zip(row_keys["year"], row_keys["month"], strict=True)])
    return observed_monthly.loc[months, metric].to_numpy(dtype=float)


def score_targets(forecasts: pd.DataFrame, observed_yearly: pd.DataFrame,
                  observed_monthly: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per forecast target (source, fold, horizon, resolution, metric, year, month) with the
    scores of :func:`score`. Targets in years the record does not hold (after 2023) are dropped:
    they cannot be scored."""
    missing = [c for c in FORECAST_COLUMNS if c not in forecasts]
    if missing:
        raise ValueError(f"forecasts lack column(s) {', '.join(missing)}: use the long format "
                         f"{', '.join(FORECAST_COLUMNS)}")
    bad = (set(forecasts["resolution"].unique()) - set(RESOLUTIONS)
           | set(forecasts["metric"].unique()) - set(METRICS))
    if bad:
        raise ValueError(f"unknown resolution or metric {sorted(bad)}: use {RESOLUTIONS} and {METRICS}")
    scored = forecasts[forecasts["year"].isin(observed_yearly.index)]
    keys = ["source", "fold", "horizon", "resolution", "metric"]
    frames = []
    for key, group in scored.groupby(keys, sort=True, observed=True):
        wide = group.pivot(index="draw", columns=["year", "month"], values="value")
        if wide.isna().any().any():
            raise ValueError(f"forecast {dict(zip(keys, key, strict=True))}: the targets do not "
                             "share the same draws")
        targets = wide.columns.to_frame(index=False)
        obs = _observed(targets, key[3], key[4], observed_yearly, observed_monthly)
        result = score(wide.to_numpy(), obs, rng)
        frames.append(pd.concat([targets.assign(**dict(zip(keys, key, strict=True))), result], axis=1))
    if not frames:
        raise ValueError("no forecast falls in the record's years: nothing to score")
    return pd.concat(frames, ignore_index=True)[[*keys, "year", "month", *SCORE_COLUMNS]]


def score_table(forecasts: pd.DataFrame, observed_yearly: pd.DataFrame,
                observed_monthly: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The hindcast score table: one row per source x resolution x metric x horizon.

    Columns: ``crps`` and ``log_score`` (means over the targets: every fold's target years, or
    target months), ``coverage50`` and ``coverage90`` (shares of targets inside the central
    intervals; nominal 0.5 and 0.9), ``n_targets``, and the PIT's uniformity: ``pit_ks``, the
    Kolmogorov-Smirnov distance of the randomised PITs from the uniform (0 = uniform), and its
    p-value ``pit_ks_p`` (scipy's ``kstest``; Czado et al. 2009 read the PIT by its histogram,
    which :func:`score_targets`' ``pit`` column gives). The means follow the VIEWS evaluation
    (Hegre et al. 2024): the average score over all forecast targets.
    """
    per_target = score_targets(forecasts, observed_yearly, observed_monthly, rng)

    def summary(g: pd.DataFrame) -> pd.Series:
        ks = stats.kstest(g["pit"].to_numpy(), "uniform")
        return pd.Series({"crps": g["crps"].mean(), "log_score": g["log_score"].mean(),
                          "coverage50": g["in50"].mean(), "coverage90": g["in90"].mean(),
                          "n_targets": len(g), "pit_ks": ks.statistic, "pit_ks_p": ks.pvalue})

    columns = ["crps", "log_score", "in50", "in90", "pit"]
    table = per_target.groupby(GROUP, sort=True, observed=True)[columns].apply(summary).reset_index()
    return table.astype({"n_targets": int})


def skill_vs(table: pd.DataFrame, reference: str = "constant_negbin") -> pd.DataFrame:
    """The score table with ``crps_skill`` = 1 - CRPS / CRPS of ``reference`` (the CRPS skill
    score; Gneiting & Raftery 2007: positive = better than the reference, 1 = perfect)
    and ``log_score_gain`` = the reference's log score minus the source's (positive = better), per
    resolution x metric x horizon."""
    ref = table[table["source"] == reference]
    if ref.empty:
        raise ValueError(f"reference '{reference}' is not a source of the table: use one of "
                         f"{', '.join(sorted(set(table['source'])))}")
    on = ["resolution", "metric", "horizon"]
    ref = ref[[*on, "crps", "log_score"]].rename(columns={"crps": "crps_ref", "log_score": "log_ref"})
    out = table.merge(ref, on=on, how="left")
    out["crps_skill"] = 1.0 - out["crps"] / out["crps_ref"]
    out["log_score_gain"] = out["log_ref"] - out["log_score"]
    return out.drop(columns=["crps_ref", "log_ref"])


# ---------------------------------------------------------------------------- figure
def plot_validation(forecasts: pd.DataFrame, observed_yearly: pd.DataFrame, path: str | Path
                    ) -> list[Path]:
    """Every fold's 1-year-ahead yearly forecasts next to the record: launch days (left panel) and
    missiles (right). The record is black diamonds; each source's forecast for a year is its 90 %
    central interval (a bar, the interval of :func:`score`) and median (a dot), the sources side by
    side. The panel's height is twice the largest record or median value; a bar reaching above it
    ends in an arrowhead with its upper end written beside it. Writes ``path`` as PNG and PDF (the
    suffix is replaced) and returns both paths."""
    from matplotlib.figure import Figure

    one = forecasts[(forecasts["resolution"] == "year") & (forecasts["horizon"] == 1)]
    if one.empty:
        raise ValueError("no yearly 1-year-ahead forecasts to plot")
    sources = sorted(one["source"].unique(), key=lambda s: (s != "model", s))
    width = 0.8 / len(sources)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric, label in zip(axes, METRICS, ("launch days per year", "missiles per year"),
                                 strict=True):
        part = one[one["metric"] == metric]
        bands = {}
        for source in sources:
            wide = part[part["source"] == source].pivot(index="draw", columns="year", values="value")
            q = np.quantile(wide.to_numpy(dtype=float), [0.05, 0.5, 0.95], axis=0, method="inverted_cdf")
            bands[source] = (wide.columns.to_numpy(), q)
        top = 2.0 * max(observed_yearly[metric].max(), max(q[1].max() for _, q in bands.values()), 1)
        for i, source in enumerate(sources):
            years, q = bands[source]
            x = years + (i - (len(sources) - 1) / 2) * width
            colour = f"C{i % 10}"
            ax.vlines(x, q[0], np.minimum(q[2], top), colors=colour, linewidth=2.2, alpha=0.75)
            ax.plot(x, q[1], "o", color=colour, markersize=4, label=source.replace("_", " "))
            for xi, hi in zip(x[q[2] > top], q[2][q[2] > top], strict=True):
                ax.plot(xi, top, "^", color=colour, markersize=5, clip_on=False)
                ax.annotate(f"{hi:.0f}", (xi, top), xytext=(2, -9), textcoords="offset points",
                            fontsize=6, color=colour, rotation=90, ha="left", va="top")
        ax.plot(observed_yearly.index, observed_yearly[metric], "D", color="black", markersize=5,
                label="record", zorder=5)
        ax.set_xticks(observed_yearly.index)
        ax.set_ylabel(label)
        ax.set_ylim(0, top)
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].legend(frameon=False, fontsize=8, loc="upper left")
    fig.suptitle("1-year-ahead forecasts of each fold (median, 90 % interval) and the record",
                 fontsize=10)
    from .gsa import save_png_pdf

    return save_png_pdf(fig, path, dpi=150)
