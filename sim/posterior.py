"""Posterior calibration: Bayesian synthetic likelihood (BSL) sampled by ensemble MCMC, every step's
proposals simulated as the blocks of one batched model.

**The method.** The record is one history of eight years and the model's likelihood is intractable.
The Gaussian synthetic likelihood (Wood 2010, Nature 466:1102) replaces it by a normal density of
the record's summary statistics, whose mean and covariance are estimated from ``R`` simulated
histories at the proposed parameters; Bayesian synthetic likelihood (Price, Drovandi, Lee & Nott
2018, J. Comput. Graph. Stat. 27:1) samples the resulting posterior by MCMC, keeping the current
state's estimate (a pseudo-marginal-type chain). The covariance is the Ledoit-Wolf shrinkage
estimate (Ledoit & Wolf 2004, J. Multivar. Anal. 88:365; shrinkage in BSL: An, South, Nott &
Drovandi 2019, J. Comput. Graph. Stat. 28:471), because R (50) is not far above the number of
statistics (about 45). The sampler is emcee's affine-invariant ensemble (Goodman & Weare 2010,
Comm. App. Math. Comp. Sci. 5:65; Foreman-Mackey et al. 2013, PASP 125:306) with differential-
evolution moves (ter Braak 2006; ter Braak & Vrugt 2008), which the emcee documentation recommends
over the stretch move in more than a few dimensions. ``chains`` independent ensembles run in
parallel processes; their agreement is a convergence check.

**Why not ABC-SMC or neural posterior estimation** (the two methods issue 13 named): docs/
calibration.md gives the measurements. In short, ABC-SMC (pyabc, population 500, 15 parameters,
one history per particle) lost its effective sample size at the first SMC step (500 -> 22 with
pyabc's multivariate normal kernel, 127 then 13-18 with its local kernel) while its threshold hardly
fell and the spiral weight's spread stayed the prior's; single histories make most statistics noise.
A synthetic likelihood averages R histories per point, which the batched model simulates at almost
the cost of one. Neural posterior estimation (sbi) needs PyTorch, a multi-gigabyte install here.

**Priors.** Uniform on each free parameter's calibration bounds (configs/calibrate.yaml), which
docs/calibration.md states and cites parameter by parameter.

**Summaries.** Every fitted yearly count (launch days, launch weeks, missiles, nuclear tests, US
deployments per year), the two fitted timing statistics (sim.event_study) and war (0 in the record),
minus ``exclude`` (the DMZ/NLL incidents, a rung the model lacks: docs/calibration.md) and those
without spread at the initial points (nuclear tests under the moratorium).

**Reproducibility and resume.** Chain ``k``'s ``c``-th likelihood call simulates with seed
``seed_of_call(model seed, k, c)``; emcee's moves draw from its own generator, seeded per chain and
stored with every step in the chain's HDF5 file (emcee's HDFBackend). A run interrupted between steps
resumes from its files to the very chain it would have produced uninterrupted.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .calibrate import (
    SIM_COLUMNS,
    TIMING_TARGETS,
    CalibrationConfig,
    Problem,
    build_problem,
    simulated_on_calendar,
)
from .event_study import _tallies, _values
from .model import DeterrenceModel
from .params import ConfigError

__all__ = ["BSLRun", "observed_summary", "posterior_summary", "replication_summaries", "run_posterior",
           "seed_of_call", "summary_keys", "synthetic_log_likelihood"]


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


def replication_summaries(problem: Problem, points: np.ndarray, replications: int, seed: int,
                          keys: Sequence[str], independent: bool = False) -> np.ndarray:
    """(S, R, K): the summary statistics ``keys`` of ``replications`` histories at each of the S rows
    of ``points``, the rows as blocks of one model (``seed``; common random numbers across the
    rows, or each row its own with ``independent``). An undefined timing ratio (no launch outside
    the window) counts as 0."""
    points = np.atleast_2d(points)
    base = problem.base.replace(replications=int(replications), seed=int(seed))
    model = DeterrenceModel(base, batch=problem.batch(points), weekly=False, detail=True,
                            independent=independent)
    model.simulate()  # the replications table and the per-week detail are all it reads
    reps = model.recorder.replications_table()
    s, r = model.blocks, int(replications)
    years = [int(y) for y in problem.observed.index]
    n = s * r
    timing = None
    if any(k in TIMING_TARGETS for k in keys):
        timing = _values(_tallies(simulated_on_calendar(model.recorder.detail, problem.calendar)))
    row = (reps["block"].to_numpy() * r if "block" in reps else 0) + reps["replication"].to_numpy()
    year_col = np.searchsorted(years, reps["year"].to_numpy())
    out = np.zeros((n, len(keys)))
    by_year: dict[str, np.ndarray] = {}
    for c, key in enumerate(keys):
        if key == "war":
            war = np.zeros(n)
            war[row] = reps["war_week"].notna().to_numpy(dtype=float)
            out[:, c] = war
        elif key in TIMING_TARGETS:
            out[:, c] = np.nan_to_num(np.asarray(timing[key], dtype=float), nan=0.0)
        else:
            group, year = key.rsplit("_", 1)
            col = SIM_COLUMNS[group]
            if col not in by_year:
                table = np.zeros((n, len(years)))
                inside = year_col < len(years)
                np.add.at(table, (row[inside], year_col[inside]), reps[col].to_numpy(dtype=float)[inside])
                by_year[col] = table
            out[:, c] = by_year[col][:, years.index(int(year))]
    return out.reshape(s, r, len(keys))


def synthetic_log_likelihood(samples: np.ndarray, observed: np.ndarray) -> float:
    """Gaussian synthetic log-likelihood (Wood 2010; Price et al. 2018) of ``observed`` (K,) under
    ``samples`` (R, K), with the Ledoit-Wolf shrunk covariance (Ledoit & Wolf 2004; An et al. 2019
    for shrinkage in synthetic likelihood)."""
    from scipy import stats
    from sklearn.covariance import ledoit_wolf

    cov, _ = ledoit_wolf(samples)
    if not np.all(np.isfinite(cov)) or np.trace(cov) <= 0:
        return -np.inf
    return float(stats.multivariate_normal(samples.mean(axis=0), cov, allow_singular=True).logpdf(observed))


def seed_of_call(model_seed: int, chain: int, call: int) -> int:
    """The simulation seed of chain ``chain``'s ``call``-th likelihood evaluation (0 = the initial
    positions): distinct for every (chain, call), a pure function so that a resumed chain meets the
    same noise as an uninterrupted one."""
    return int(np.random.SeedSequence([int(model_seed), 7919, int(chain), int(call)]).generate_state(1)[0])


@dataclasses.dataclass
class BSLRun:
    """The likelihood of one calibration problem: which statistics, the record's values, bounds."""

    problem: Problem
    names: list[str]
    lower: np.ndarray
    upper: np.ndarray
    keys: list[str]
    observed: np.ndarray
    replications: int

    def log_prob(self, thetas: np.ndarray, seed: int) -> np.ndarray:
        """Log posterior (uniform prior: the synthetic log-likelihood inside the bounds, -inf
        outside) of each row of ``thetas``, all rows simulated as one model with ``seed``; each row
        meets its own random numbers (independent blocks)."""
        thetas = np.atleast_2d(thetas)
        out = np.full(len(thetas), -np.inf)
        inside = np.all((thetas >= self.lower) & (thetas <= self.upper), axis=1)
        if inside.any():
            sims = replication_summaries(self.problem, thetas[inside], self.replications, seed, self.keys,
                                         independent=True)
            out[inside] = [synthetic_log_likelihood(x, self.observed) for x in sims]
        return out


def make_run(cc: CalibrationConfig, events: pd.DataFrame | None = None) -> BSLRun:
    """The likelihood of ``cc``'s problem at ``cc.posterior``'s settings. Statistics in
    ``posterior.exclude`` and those that never vary over a pilot of prior draws are left out."""
    pc = cc.posterior
    problem = build_problem(cc, events)
    names = list(problem.names)
    lower = np.array([p.lower for p in cc.parameters], dtype=float)
    upper = np.array([p.upper for p in cc.parameters], dtype=float)
    keys = [k for k in summary_keys(problem) if not any(k.startswith(g) for g in pc.exclude)]
    rng = np.random.default_rng([cc.seed, 1])
    pilot_points = lower + (upper - lower) * rng.random((32, len(names)))
    pilot = replication_summaries(problem, pilot_points, 8, cc.seed, keys, independent=True)
    keep = pilot.reshape(-1, len(keys)).std(axis=0) > 0
    keys = [k for k, ok in zip(keys, keep, strict=True) if ok]
    obs = observed_summary(problem)
    return BSLRun(problem, names, lower, upper, keys, np.array([obs[k] for k in keys]), pc.replications)


def calibrated_point(names: Sequence[str]) -> dict[str, float]:
    """The installed point estimate (configs/params/calibrated.yaml, and the era drives of
    configs/scenario/historical.yaml) of ``names``; defaults where a name is not there."""
    import yaml

    from .config import config_dir
    from .history import ERAS, PARAM_OF_ERA
    from .params import ModelParams

    folder = config_dir()
    values = yaml.safe_load((folder / "params" / "calibrated.yaml").read_text()) or {}
    scenario = yaml.safe_load((folder / "scenario" / "historical.yaml").read_text()) or {}
    drives = {PARAM_OF_ERA[e["name"]]: float(e["weapons_drive"]) for e in scenario.get("eras", [])
              if e["name"] in PARAM_OF_ERA}
    defaults = {PARAM_OF_ERA[e.name]: e.weapons_drive for e in ERAS if e.name in PARAM_OF_ERA}
    out = {}
    for n in names:
        out[n] = float(values.get(n, drives.get(n, defaults.get(n, getattr(ModelParams(), n, np.nan)))))
    return out


def initial_positions(run: BSLRun, cc: CalibrationConfig, chain: int,
                      start_at: dict[str, float] | None = None) -> np.ndarray:
    """Starting walkers of chain ``chain``. ``posterior.start=calibrated``: a normal ball (sd
    ``start_spread`` of each prior range, clipped to the bounds) around ``start_at`` or the
    installed point estimate (:func:`calibrated_point`). ``prior``: the ``walkers`` best of
    ``pilot`` prior draws by their synthetic likelihood. Either way emcee evaluates the starts afresh
    and ``burn`` steps are discarded."""
    pc = cc.posterior
    if pc.start == "calibrated":
        centre_of = start_at if start_at is not None else calibrated_point(run.names)
        centre = np.array([centre_of[n] for n in run.names])
        noise = np.random.default_rng([cc.seed, 4, chain]).standard_normal((pc.walkers, len(run.names)))
        span = run.upper - run.lower
        return np.clip(centre + pc.start_spread * span * noise, run.lower, run.upper)
    rng = np.random.default_rng([cc.seed, 2, chain])
    draws = run.lower + (run.upper - run.lower) * rng.random((pc.pilot, len(run.names)))
    lp = np.concatenate([run.log_prob(part, seed_of_call(cc.seed, chain, 10**6 + i))
                         for i, part in enumerate(np.array_split(draws, max(1, pc.pilot // 64)))])
    best = np.argsort(-lp, kind="stable")[: pc.walkers]
    return draws[best]


# ---------------------------------------------------------------------------- the chains
_PROGRESS = None  # a shared counter of finished steps (set in each worker process)


def _init_worker(counter) -> None:
    global _PROGRESS
    _PROGRESS = counter


def _settings_digest(cc: CalibrationConfig) -> dict:
    """What a chain's files must agree with to be resumed: everything that changes its draws."""
    from .calibration_report import _asdict
    from .params import _plain

    plain = _plain(_asdict(cc))
    for key in ("install", "progress", "optimiser", "profile"):
        plain.pop(key, None)
    plain["posterior"] = {k: v for k, v in plain["posterior"].items() if k not in ("steps", "burn", "workers",
                                                                                   "predictive")}
    return plain


def _run_chain(args) -> dict:
    """Run (or resume) chain ``k`` to ``steps`` steps, storing every step in its HDF5 file."""
    import emcee

    cc, k, path, events, start_at = args
    pc = cc.posterior
    run = make_run(cc, events)
    backend = emcee.backends.HDFBackend(str(path))
    started = time.perf_counter()
    done = backend.iteration if path.exists() else 0
    calls = {"n": 1 + 2 * done}

    def log_prob(thetas: np.ndarray) -> np.ndarray:
        seed = seed_of_call(cc.seed, k, calls["n"])
        calls["n"] += 1
        return run.log_prob(thetas, seed)

    if done == 0:
        start = initial_positions(run, cc, k, start_at)
        backend.reset(pc.walkers, len(run.names))
        np.random.seed(np.random.SeedSequence([pc.seed, k]).generate_state(1)[0])  # noqa: NPY002
        calls["n"] = 0
    moves = ([(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)] if pc.move == "de"
             else emcee.moves.StretchMove())
    sampler = emcee.EnsembleSampler(pc.walkers, len(run.names), log_prob, vectorize=True, backend=backend,
                                    moves=moves)
    state = start if done == 0 else backend.get_last_sample()
    remaining = pc.steps - done
    for _ in sampler.sample(state, iterations=max(0, remaining), store=True):
        if _PROGRESS is not None:
            with _PROGRESS.get_lock():
                _PROGRESS.value += 1
    return {"chain": k, "steps_run": max(0, remaining), "seconds": time.perf_counter() - started,
            "keys": run.keys}


def run_chains(cc: CalibrationConfig, folder: Path, events: pd.DataFrame | None = None,
               start_at: dict[str, float] | None = None) -> list[dict]:
    """Run or resume ``posterior.chains`` chains in ``posterior.workers`` processes; each chain's
    steps go to ``folder/chains/chain_<k>.h5``. A store written with other settings is refused."""
    pc = cc.posterior
    store = Path(folder) / "chains"
    store.mkdir(parents=True, exist_ok=True)
    settings = store / "settings.json"
    digest = json.dumps(_settings_digest(cc), sort_keys=True, default=str)
    if settings.exists() and settings.read_text() != digest:
        raise ConfigError(f"{store} holds chains run with other settings: remove it, or run in another "
                          "folder (hydra.run.dir=...), or repeat the settings it was started with")
    settings.write_text(digest)
    paths = [store / f"chain_{k}.h5" for k in range(pc.chains)]
    counter = mp.get_context("fork").Value("i", 0)
    total = pc.chains * pc.steps
    already = 0
    for p in paths:
        if p.exists():
            import emcee

            already += min(pc.steps, emcee.backends.HDFBackend(str(p), read_only=True).iteration)
    from .calibrate import _progress

    bar = _progress(cc.progress, total, "posterior (MCMC steps over all chains)")
    bar.update(already)
    args = [(cc, k, paths[k], events, start_at) for k in range(pc.chains)]
    if pc.workers == 1 or pc.chains == 1:
        _init_worker(counter)
        out = []
        for a in args:
            before = counter.value
            out.append(_run_chain(a))
            bar.update(counter.value - before)
        bar.close()
        return out
    with mp.get_context("fork").Pool(min(pc.workers, pc.chains), initializer=_init_worker,
                                     initargs=(counter,)) as pool:
        pending = pool.map_async(_run_chain, args)
        seen = 0
        while not pending.ready():
            pending.wait(0.5)
            now = counter.value
            bar.update(now - seen)
            seen = now
        bar.update(counter.value - seen)
        bar.close()
        return pending.get()


# ---------------------------------------------------------------------------- the posterior
def load_chains(cc: CalibrationConfig, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chain, step, walker, parameter) samples, (chain, step, walker) log posteriors and each
    chain's acceptance fraction, from the chains' files."""
    import emcee

    samples, lps, acc = [], [], []
    for k in range(cc.posterior.chains):
        b = emcee.backends.HDFBackend(str(Path(folder) / "chains" / f"chain_{k}.h5"), read_only=True)
        samples.append(b.get_chain()[: cc.posterior.steps])
        lps.append(b.get_log_prob()[: cc.posterior.steps])
        acc.append(float(np.mean(b.accepted / max(b.iteration, 1))))
    return np.stack(samples), np.stack(lps), np.array(acc)


def posterior_draws(cc: CalibrationConfig, names: Sequence[str], samples: np.ndarray,
                    lps: np.ndarray) -> pd.DataFrame:
    """The draws after burn-in, one row per (chain, step, walker), equal weights summing to 1."""
    burn = cc.posterior.burn
    post = samples[:, burn:]
    c, s, w, d = post.shape
    chain, step, walker = np.meshgrid(np.arange(c), np.arange(burn, burn + s), np.arange(w), indexing="ij")
    frame = pd.DataFrame(post.reshape(-1, d), columns=list(names))
    frame.insert(0, "log_posterior", lps[:, burn:].reshape(-1))
    frame.insert(0, "weight", 1.0 / len(frame))
    frame.insert(0, "walker", walker.reshape(-1))
    frame.insert(0, "step", step.reshape(-1))
    frame.insert(0, "chain", chain.reshape(-1))
    return frame


def posterior_summary(cc: CalibrationConfig, names: Sequence[str], samples: np.ndarray,
                      draws: pd.DataFrame) -> list[dict]:
    """Per parameter: prior bounds, posterior mean, sd, 5/50/95 % quantiles, the integrated
    autocorrelation time (emcee's estimator, per chain over the walkers that moved after burn-in,
    averaged over chains), the effective sample size (draws / time), the number of walkers that
    never moved after burn-in (``stuck_walkers``: their autocorrelation is undefined; a sign of a
    sticky chain) and the largest difference between the chains' means in posterior sds (a
    convergence check: near 0 when the chains agree)."""
    import emcee

    burn = cc.posterior.burn
    bounds = {p.name: (p.lower, p.upper) for p in cc.parameters}
    rows = []
    for i, name in enumerate(names):
        x = draws[name].to_numpy()
        taus, stuck = [], 0
        for c in range(samples.shape[0]):
            series = samples[c, burn:, :, i]
            moved = np.ptp(series, axis=0) > 0  # exactly equal values: never moved
            stuck += int((~moved).sum())
            if moved.any():
                taus.append(float(emcee.autocorr.integrated_time(series[:, moved], quiet=True)[0]))
        tau = float(np.mean(taus)) if taus else float("nan")
        chain_means = draws.groupby("chain")[name].mean().to_numpy()
        sd = float(x.std())
        rows.append({"parameter": name, "prior_lower": bounds[name][0], "prior_upper": bounds[name][1],
                     "mean": float(x.mean()), "sd": sd, "q05": float(np.quantile(x, 0.05)),
                     "q50": float(np.quantile(x, 0.5)), "q95": float(np.quantile(x, 0.95)),
                     "autocorr_steps": tau, "ess": float(len(x) / tau) if tau > 0 else float("nan"),
                     "stuck_walkers": stuck,
                     "chain_mean_spread_sd": float((chain_means.max() - chain_means.min()) / sd) if sd > 0
                     else 0.0})
    return rows


def predictive(cc: CalibrationConfig, draws: pd.DataFrame, names: Sequence[str],
               events: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Posterior predictive: one history at each of ``posterior.predictive`` draws (chosen by the
    weights with the posterior seed), every summary statistic including the excluded ones; with
    the record's values."""
    pc = cc.posterior
    problem = build_problem(cc, events)
    rng = np.random.default_rng([pc.seed, 3])
    rows = rng.choice(len(draws), size=pc.predictive, replace=True, p=draws["weight"].to_numpy())
    points = draws.iloc[rows][list(names)].to_numpy()
    keys = summary_keys(problem)
    sims = replication_summaries(problem, points, 1, seed_of_call(cc.seed, 99, 0), keys, independent=True)
    return pd.DataFrame(sims[:, 0, :], columns=keys), observed_summary(problem)


def run_posterior(cc: CalibrationConfig, folder: Path, events: pd.DataFrame | None = None,
                  start_at: dict[str, float] | None = None) -> dict:
    """Run (or resume) the chains in ``folder`` and summarise them: returns the result dict with
    ``_draws`` (DataFrame) and ``_predictive`` (DataFrame, observed dict) for the report."""
    pc = cc.posterior
    if pc.burn >= pc.steps:
        raise ConfigError(f"posterior.burn={pc.burn} must be below posterior.steps={pc.steps}")
    started = time.perf_counter()
    infos = run_chains(cc, folder, events, start_at)
    seconds = time.perf_counter() - started
    names = [p.name for p in cc.parameters]
    samples, lps, acceptance = load_chains(cc, folder)
    draws = posterior_draws(cc, names, samples, lps)
    summary = posterior_summary(cc, names, samples, draws)
    sims, observed = predictive(cc, draws, names, events)
    steps_run = sum(i["steps_run"] for i in infos)
    histories = steps_run * pc.walkers * pc.replications
    ppc = []
    for key in sims.columns:
        v = sims[key].to_numpy()
        q05, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95])
        obs = observed[key]
        ppc.append({"statistic": key, "observed": obs, "mean": float(v.mean()), "q05": float(q05),
                    "q50": float(q50), "q95": float(q95), "inside_90": bool(q05 <= obs <= q95),
                    "fitted": key in infos[0]["keys"],
                    "predictive_p_upper": float(np.mean(v >= obs))})
    return {
        "method": "bayesian_synthetic_likelihood",
        "statistics": infos[0]["keys"],
        "chains": pc.chains, "walkers": pc.walkers, "steps": pc.steps, "burn": pc.burn,
        "replications_per_point": pc.replications,
        "draws": len(draws),
        "acceptance": acceptance.tolist(),
        "parameters": summary,
        "min_ess": float(min(r["ess"] for r in summary)),
        "posterior_predictive": ppc,
        "run_time_seconds": seconds,
        "steps_run": steps_run,
        "histories_simulated": int(histories),
        "histories_per_second": float(histories / seconds) if seconds > 0 and steps_run else float("nan"),
        "_draws": draws,
        "_predictive": (sims, observed),
    }


def spiral_share(draws: pd.DataFrame, threshold: float = 0.5) -> float:
    """Posterior probability that the spiral weight exceeds ``threshold``."""
    w = draws["weight"].to_numpy()
    return float(np.sum(w[draws["spiral_weight"].to_numpy() > threshold]) / np.sum(w))

