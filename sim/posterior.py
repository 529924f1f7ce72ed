"""Posterior calibration: approximate Bayesian computation by sequential Monte Carlo (ABC-SMC) with
pyabc, each population simulated as batched models (WORK IN PROGRESS, issue 13).

Why ABC-SMC (Toni et al. 2009, J. R. Soc. Interface 6:187; Beaumont et al. 2009, Biometrika 96:983)
through pyabc (Klinger, Rickert & Hasenauer 2018, Bioinformatics 34:3591; Schaelte et al. 2022,
JOSS 7:4304): the record is one history of eight years, the model's likelihood is intractable, and
pyabc brings adaptive distances and thresholds, a database that a run can resume from, the
effective sample size and weighted statistics, without a neural network and its heavy stack.

How the batched model enters: pyabc proposes and evaluates particles one at a time through the
function it hands to a sampler. :class:`BatchSampler` takes that function apart into pyabc's own
steps (``generate_valid_proposal`` and ``evaluate_proposal``, pinned pyabc version), draws a batch
of proposals, simulates them as the blocks of one model with **independent** random numbers
(``DeterrenceModel(independent=True)``: each particle must meet its own noise), and then lets pyabc
evaluate each proposal against its pre-computed output, in proposal order (deterministic for a given
seed). Each particle is one simulated history (R = 1), as the record is one history.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .calibrate import SIM_COLUMNS, TIMING_TARGETS, Problem, build_problem, simulated_on_calendar
from .event_study import _tallies, _values
from .model import DeterrenceModel

__all__ = ["BatchSampler", "BatchedOutputs", "observed_summary", "summary_keys", "simulate_summaries"]


def summary_keys(problem: Problem) -> list[str]:
    """The summary statistics, in a fixed order: each fitted yearly group per year, then the fitted
    timing targets and whether the history reached war."""
    groups = [g for g, w in problem.weights if w > 0]
    keys = [f"{g}_{int(y)}" for g in groups if g in SIM_COLUMNS for y in problem.observed.index]
    keys += [g for g in groups if g in TIMING_TARGETS]
    if any(g == "p_war" for g in groups):
        keys.append("war")
    return keys


def observed_summary(problem: Problem) -> dict[str, float]:
    """The record's summary statistics (:func:`summary_keys`)."""
    out = {}
    for key in summary_keys(problem):
        if key == "war":
            out[key] = 0.0
        elif key in TIMING_TARGETS:
            out[key] = float(problem.observed_timing[key])
        else:
            group, year = key.rsplit("_", 1)
            out[key] = float(problem.observed.loc[int(year), group])
    return out


def simulate_summaries(problem: Problem, points: np.ndarray, seed: int) -> list[dict[str, float]]:
    """One simulated history (R = 1) at each row of ``points``, the rows as independent blocks of one
    model with ``seed``; its summary statistics, computed for all blocks at once (the yearly counts
    by one group-by, the timing statistics by :mod:`sim.event_study` per series). An undefined
    timing ratio (no launch outside the window) counts as 0."""
    points = np.atleast_2d(points)
    base = problem.base.replace(replications=1, seed=int(seed))
    model = DeterrenceModel(base, batch=problem.batch(points), weekly=False, detail=True, independent=True)
    results = model.run()
    reps = results.replications
    if model.blocks == 1:
        reps = reps.assign(block=0)
    keys = summary_keys(problem)
    years = [int(y) for y in problem.observed.index]
    groups = sorted({k.rsplit("_", 1)[0] for k in keys if k not in TIMING_TARGETS and k != "war"})
    yearly = reps.groupby(["block", "year"])[[SIM_COLUMNS[g] for g in groups]].sum()
    yearly = yearly.reindex(pd.MultiIndex.from_product([range(model.blocks), years]), fill_value=0)
    timing = _values(_tallies(simulated_on_calendar(results.detail, problem.calendar)))
    war = reps.groupby("block")["war_week"].first().notna().to_numpy(dtype=float)
    columns: dict[str, np.ndarray] = {}
    for g in groups:
        table = yearly[SIM_COLUMNS[g]].to_numpy(dtype=float).reshape(model.blocks, len(years))
        for k, y in enumerate(years):
            columns[f"{g}_{y}"] = table[:, k]
    for g in TIMING_TARGETS:
        columns[g] = np.nan_to_num(np.asarray(timing[g], dtype=float), nan=0.0)
    columns["war"] = war
    return [{k: float(columns[k][j]) for k in keys} for j in range(model.blocks)]


class BatchedOutputs:
    """A pyabc model whose outputs were simulated beforehand, in proposal order, by
    :class:`BatchSampler` (it refuses to invent one)."""

    def __init__(self) -> None:
        self._queue: deque = deque()

    def feed(self, outputs: Sequence[dict]) -> None:
        self._queue = deque(outputs)

    def __call__(self, parameter) -> dict:
        if not self._queue:
            raise RuntimeError("BatchedOutputs: no pre-simulated output left; use BatchSampler")
        return self._queue.popleft()


def _pyabc_sampler_base():
    from pyabc.sampler import Sampler

    return Sampler


class BatchSampler(_pyabc_sampler_base()):
    """A pyabc sampler that simulates proposals in batches of one model each (module docstring).

    ``simulate(points, seed)`` returns one output dict per row of ``points`` (in ``names`` order);
    ``outputs`` is the :class:`BatchedOutputs` that pyabc's model calls; batches grow with the
    expected number of proposals still needed (from the last batch's acceptance rate) up to
    ``max_batch``. Batch ``k`` of the run uses seed ``seed + k``.
    """

    def __init__(self, simulate: Callable[[np.ndarray, int], list[dict]], names: Sequence[str],
                 outputs: BatchedOutputs, seed: int, max_batch: int = 2000, min_batch: int = 50) -> None:
        super().__init__()
        self.simulate, self.names, self.outputs = simulate, list(names), outputs
        self.seed, self.max_batch, self.min_batch = int(seed), int(max_batch), int(min_batch)
        self.batches = 0
        self.simulations = 0

    def _points(self, parameters) -> np.ndarray:
        return np.array([[float(p[n]) for n in self.names] for p in parameters])

    def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False,
                                ana_vars=None):
        from pyabc.inference_util import inference_util as iu
        from pyabc.population import Particle

        func, kw = simulate_one.func, simulate_one.keywords
        from_prior = func is iu._simulate_one_from_prior
        if not from_prior and func is not iu._simulate_one:
            raise RuntimeError("BatchSampler: unknown pyabc simulate function (pyabc version changed?)")
        if not from_prior and not kw["evaluate"]:
            raise RuntimeError("BatchSampler: look-ahead sampling is not supported")
        sample = self._create_empty_sample()
        accepted, evaluations, rate = 0, 0, 1.0
        while accepted < n and evaluations < max_eval:
            size = int(min(self.max_batch, max(self.min_batch, math.ceil(1.2 * (n - accepted) / rate))))
            if from_prior:
                proposals = []
                for _ in range(size):
                    m = int(kw["model_prior"].rvs())
                    proposals.append((m, kw["parameter_priors"][m].rvs()))
            else:
                proposals = [iu.generate_valid_proposal(
                    t=t, m=kw["m"], p=kw["p"], model_prior=kw["model_prior"],
                    parameter_priors=kw["parameter_priors"],
                    model_perturbation_kernel=kw["model_perturbation_kernel"],
                    transitions=kw["transitions"]) for _ in range(size)]
            outputs = self.simulate(self._points([theta for _, theta in proposals]), self.seed + self.batches)
            self.batches += 1
            self.simulations += len(proposals)
            self.outputs.feed(outputs)
            hits = 0
            for m, theta in proposals:
                if from_prior:
                    result = kw["models"][m].summary_statistics(0, theta, kw["summary_statistics"])
                    particle = Particle(m=m, parameter=theta, weight=1.0, sum_stat=result.sum_stat,
                                        distance=np.inf, accepted=True, proposal_id=0, preliminary=False)
                else:
                    particle = iu.evaluate_proposal(
                        m, theta, t=t, models=kw["models"], summary_statistics=kw["summary_statistics"],
                        distance_function=kw["distance_function"], eps=kw["eps"], acceptor=kw["acceptor"],
                        x_0=kw["x_0"], weight_function=kw["weight_function"],
                        proposal_id=kw["proposal_id"])
                evaluations += 1
                sample.append(particle)
                if particle.accepted:
                    accepted += 1
                    hits += 1
                if accepted >= n or evaluations >= max_eval:
                    break
            rate = max(hits / len(proposals), 1.0 / self.max_batch)
        self.nr_evaluations_ = evaluations
        return sample


def pilot_scales(problem: Problem, names: Sequence[str], bounds: dict, seed: int,
                 pilot: int = 400) -> dict[str, float]:
    """Each summary statistic's spread over the prior: a pilot of ``pilot`` prior draws (uniform on
    the bounds, ``seed``); the median absolute deviation, or the standard deviation where that is 0.
    Statistics with no spread at all are left out (nuclear tests under the moratorium, deployments
    in the years without a US posture: the model cannot move them)."""
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(*bounds[n], size=pilot) for n in names])
    rows = simulate_summaries(problem, points, seed)
    scales = {}
    for k in summary_keys(problem):
        v = np.array([r[k] for r in rows])
        mad = float(np.median(np.abs(v - np.median(v))))
        sd = float(v.std())
        if sd > 0:
            scales[k] = mad if mad > 0 else sd
    return scales


def informative_keys(problem: Problem, names: Sequence[str], bounds: dict, seed: int,
                     pilot: int = 400) -> list[str]:
    """The summary statistics that vary over the prior: a pilot of ``pilot`` prior draws (uniform on
    the bounds, ``seed``) is simulated and every statistic with no spread is left out (nuclear tests
    under the moratorium, deployments in the years without a US posture: the model cannot move them,
    and a zero spread would give them an infinite weight in an adaptive distance)."""
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(*bounds[n], size=pilot) for n in names])
    rows = simulate_summaries(problem, points, seed)
    keys = summary_keys(problem)
    return [k for k in keys if np.std([r[k] for r in rows]) > 0]


def problem_for(cc) -> Problem:
    """The calibration problem of ``cc`` (:func:`sim.calibrate.build_problem`)."""
    return build_problem(cc)


def run_abc(cc, db_path: str, population: int = 200, generations: int = 6, seed: int = 1,
            max_batch: int = 2000, resume: bool = False, adaptive: bool = True,
            transition: str = "normal"):
    """ABC-SMC over ``cc``'s free parameters with uniform priors on their bounds; returns pyabc's
    History. Generation by generation, so a run interrupted between generations resumes from its
    database (``resume=True``)."""
    import pyabc

    np.random.seed(seed)  # noqa: NPY002 (pyabc draws its proposals from numpy's global generator)
    problem = problem_for(cc)
    names = list(problem.names)
    bounds = {p.name: (p.lower, p.upper) for p in cc.parameters}
    prior = pyabc.Distribution(**{n: pyabc.RV("uniform", bounds[n][0], bounds[n][1] - bounds[n][0])
                                  for n in names})
    outputs = BatchedOutputs()
    scales = pilot_scales(problem, names, bounds, seed=cc.seed * 1000 + seed - 1)
    keys = list(scales)

    def simulate(points: np.ndarray, batch_seed: int) -> list[dict]:
        return [{k: row[k] for k in keys} for row in simulate_summaries(problem, points, batch_seed)]

    sampler = BatchSampler(simulate, names, outputs, seed=cc.seed * 1000 + seed, max_batch=max_batch,
                           min_batch=min(max_batch, 2 * population))
    if adaptive:
        distance = pyabc.AdaptivePNormDistance(p=2, max_scale_weight_ratio=100.0)
    else:  # weights fixed from the prior pilot's spread (Prangle 2017 adapts them; here they stay)
        distance = pyabc.PNormDistance(p=2, fixed_weights={k: 1.0 / scales[k] for k in keys})
    kernel = (pyabc.LocalTransition(k_fraction=0.25) if transition == "local"
              else pyabc.MultivariateNormalTransition())
    abc = pyabc.ABCSMC(outputs, prior, distance, population_size=population, sampler=sampler,
                       transitions=kernel)
    if resume:
        history = abc.load(db_path, 1)
        sampler.batches = 10_000 * history.max_t  # fresh seeds after a resume
    else:
        observed = observed_summary(problem)
        history = abc.new(db_path, {k: observed[k] for k in keys})
    remaining = generations - (history.max_t + 1)
    if remaining > 0:  # one call: pyabc re-initialises its distance and threshold at every run()
        history = abc.run(max_nr_populations=remaining, min_acceptance_rate=0.005)
    return history, sampler, problem


# ---------------------------------------------------------------------------- synthetic likelihood
def replication_summaries(problem: Problem, points: np.ndarray, replications: int, seed: int,
                          keys: Sequence[str]) -> np.ndarray:
    """(S, R, K): the summary statistics ``keys`` of ``replications`` histories at each of the S rows
    of ``points``, the rows as blocks of one model with common random numbers (``seed``)."""
    points = np.atleast_2d(points)
    base = problem.base.replace(replications=int(replications), seed=int(seed))
    model = DeterrenceModel(base, batch=problem.batch(points), weekly=False, detail=True)
    results = model.run()
    reps = results.replications
    s, r = model.blocks, int(replications)
    years = [int(y) for y in problem.observed.index]
    timing = _values(_tallies(simulated_on_calendar(results.detail, problem.calendar)))
    index = ["block", "replication"] if "block" in reps else ["replication"]
    war = reps.groupby(index)["war_week"].first().notna().to_numpy(dtype=float)
    out = np.zeros((s * r, len(keys)))
    by_year = {}
    for c, key in enumerate(keys):
        if key == "war":
            out[:, c] = war
        elif key in TIMING_TARGETS:
            out[:, c] = np.nan_to_num(np.asarray(timing[key], dtype=float), nan=0.0)
        else:
            group, year = key.rsplit("_", 1)
            col = SIM_COLUMNS[group]
            if col not in by_year:
                table = reps.pivot_table(index=index, columns="year", values=col, aggfunc="sum",
                                         fill_value=0)
                by_year[col] = table.reindex(columns=years, fill_value=0).to_numpy(dtype=float)
            out[:, c] = by_year[col][:, years.index(int(year))]
    return out.reshape(s, r, len(keys))


def synthetic_log_likelihood(samples: np.ndarray, observed: np.ndarray) -> float:
    """Gaussian synthetic log-likelihood (Wood 2010, Nature 466:1102; Price et al. 2018, J. Comput.
    Graph. Stat. 27:1) of ``observed`` (K,) under ``samples`` (R, K), with the Ledoit-Wolf shrunk
    covariance (Ledoit & Wolf 2004; An et al. 2019 for shrinkage in synthetic likelihood)."""
    from scipy import stats
    from sklearn.covariance import LedoitWolf

    cov = LedoitWolf().fit(samples).covariance_
    return float(stats.multivariate_normal(samples.mean(axis=0), cov, allow_singular=True).logpdf(observed))


def run_bsl(cc, walkers: int = 32, steps: int = 100, replications: int = 100, seed: int = 1,
            exclude: Sequence[str] = ("kinetic_incidents",), progress: bool = True,
            start_at: dict | None = None, start_spread: float = 0.05):
    """Bayesian synthetic likelihood by MCMC (emcee's affine-invariant ensemble, Goodman & Weare
    2010; Foreman-Mackey et al. 2013), uniform priors on the bounds. Every step's proposals run as
    the blocks of one model (``vectorize``), ``replications`` histories each, a new seed per step.
    Statistics in ``exclude`` (groups) and those without spread at the starting point are left out.
    Returns the sampler and the statistic keys."""
    import emcee

    problem = problem_for(cc)
    names = list(problem.names)
    lo = np.array([p.lower for p in cc.parameters])
    hi = np.array([p.upper for p in cc.parameters])
    rng = np.random.default_rng(seed)
    if start_at is None:  # anywhere in the prior
        start = lo + (hi - lo) * rng.random((walkers, len(names)))
    else:  # a small ball around a point (e.g. the SMM estimate), start_spread of each range
        centre = np.array([start_at[n] for n in names])
        noise = rng.standard_normal((walkers, len(names)))
        start = np.clip(centre + start_spread * (hi - lo) * noise, lo, hi)
    keys = [k for k in summary_keys(problem) if not any(k.startswith(g) for g in exclude)]
    pilot = replication_summaries(problem, start, replications, cc.seed, keys)
    keep = pilot.reshape(-1, len(keys)).std(axis=0) > 0
    keys = [k for k, ok in zip(keys, keep, strict=True) if ok]
    observed = observed_summary(problem)
    x0 = np.array([observed[k] for k in keys])
    calls = {"n": 0}

    def log_prob(thetas: np.ndarray) -> np.ndarray:
        thetas = np.atleast_2d(thetas)
        out = np.full(len(thetas), -np.inf)
        inside = np.all((thetas >= lo) & (thetas <= hi), axis=1)
        if inside.any():
            calls["n"] += 1
            sims = replication_summaries(problem, thetas[inside], replications,
                                         cc.seed + 7919 * calls["n"], keys)
            out[inside] = [synthetic_log_likelihood(x, x0) for x in sims]
        return out

    sampler = emcee.EnsembleSampler(walkers, len(names), log_prob, vectorize=True,
                                    parameter_names=None)
    np.random.seed(seed)  # noqa: NPY002 (emcee's moves draw from numpy's global generator)
    sampler.run_mcmc(start, steps, progress=progress)
    return sampler, keys, names
