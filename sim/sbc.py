"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018, arXiv:1804.06788;
Cook, Gelman & Rubin 2006): does the posterior procedure of :mod:`sim.posterior` cover the truth?

For each of ``datasets`` synthetic records: true parameters are drawn from the prior, one history
is simulated at them (the synthetic record: the same summary statistics as the real one), and the
posterior is sampled exactly as for the record (Bayesian synthetic likelihood, emcee, the walkers
started at the best prior pilot draws, so nothing of the truth enters). If the procedure is
calibrated, the rank of each true value among ``L`` posterior draws is uniform on 0..L, and the
central 50 % and 90 % posterior intervals cover it at those rates.

To make many posteriors affordable the datasets run **in lockstep**: every dataset's sampler runs
in its own thread, and each likelihood call waits until all of them have proposed, then all
proposals of all datasets are simulated as the blocks of one batched model (the per-week cost of
the model is shared, as in calibration). The free parameters are a subset (``free``); the others
stay at the installed point estimate.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .calibrate import CalibrationConfig, ParameterSpec, build_problem
from .params import ModelParams

__all__ = ["Lockstep", "run_sbc"]


class Lockstep:
    """A barrier that gathers one call from each of ``n`` threads, runs ``fn`` once on all of them
    (``{thread: argument}`` -> ``{thread: result}``) and hands each thread its result."""

    def __init__(self, n: int, fn) -> None:
        self.n, self.fn = n, fn
        self.cond = threading.Condition()
        self.pending: dict = {}
        self.results: dict = {}
        self.generation = 0
        self.error: BaseException | None = None

    def _run_if_complete(self) -> None:
        if self.pending and len(self.pending) >= self.n:
            try:
                self.results = self.fn(self.pending)
            except BaseException as exc:  # every waiting thread must learn of it
                self.error = exc
            self.pending = {}
            self.generation += 1
            self.cond.notify_all()

    def call(self, key, argument):
        with self.cond:
            generation = self.generation
            self.pending[key] = argument
            self._run_if_complete()
            while self.generation == generation and self.error is None:
                self.cond.wait()
            if self.error is not None:
                raise RuntimeError("a lockstep call failed") from self.error
            return self.results[key]

    def leave(self) -> None:
        """A thread is done (or failed): the others no longer wait for it."""
        with self.cond:
            self.n -= 1
            self._run_if_complete()


def run_sbc(cc: CalibrationConfig, free: Sequence[str], datasets: int, seed: int = 1,
            ranks_of: int = 99, fixed: dict[str, float] | None = None) -> pd.DataFrame:
    """SBC over ``datasets`` synthetic records with ``free`` parameters (bounds from ``cc``) and
    the posterior settings of ``cc.posterior`` (``start`` is taken as ``prior``). Returns one row
    per dataset and parameter: the truth, its rank among ``ranks_of`` posterior draws (evenly
    thinned after burn-in), the posterior 5/25/50/75/95 % quantiles and whether the central 50 % and
    90 % intervals hold the truth."""
    import emcee

    from .posterior import replication_summaries, summary_keys, synthetic_log_likelihood

    pc = cc.posterior
    specs = {p.name: p for p in cc.parameters}
    params = [specs[n] if n in specs else ParameterSpec(n, *_bounds(n)) for n in free]
    fixed = dict(fixed or {})
    base_params = ModelParams(**{k: v for k, v in fixed.items() if k in ModelParams.__dataclass_fields__})
    sub = dataclasses.replace(cc, parameters=list(params), profile=[])
    problem = build_problem(sub, params=base_params)
    names = [p.name for p in params]
    lo = np.array([p.lower for p in params])
    hi = np.array([p.upper for p in params])
    keys = [k for k in summary_keys(problem) if not any(k.startswith(g) for g in pc.exclude)]
    rng = np.random.default_rng([seed, 11])
    truths = lo + (hi - lo) * rng.random((datasets, len(names)))
    synthetic = replication_summaries(problem, truths, 1, seed + 101, keys, independent=True)[:, 0, :]
    pilot_sd = replication_summaries(problem, truths, 8, seed + 202, keys, independent=True)
    keep = pilot_sd.reshape(-1, len(keys)).std(axis=0) > 0
    keys = [k for k, ok in zip(keys, keep, strict=True) if ok]
    synthetic = synthetic[:, keep]
    calls = {"n": 0}

    def batch_log_prob(pending: dict) -> dict:
        order = sorted(pending)
        thetas = [np.atleast_2d(pending[d]) for d in order]
        stacked = np.vstack(thetas)
        inside = np.all((stacked >= lo) & (stacked <= hi), axis=1)
        out = np.full(len(stacked), -np.inf)
        if inside.any():
            calls["n"] += 1
            sims = replication_summaries(problem, stacked[inside], pc.replications, seed * 1000 + calls["n"],
                                         keys, independent=True)
            owner = np.repeat(np.arange(len(order)), [len(t) for t in thetas])[inside]
            out[inside] = [synthetic_log_likelihood(x, synthetic[order[o]])
                           for x, o in zip(sims, owner, strict=True)]
        result, start = {}, 0
        for d, t in zip(order, thetas, strict=True):
            result[d] = out[start:start + len(t)]
            start += len(t)
        return result

    lockstep = Lockstep(datasets, batch_log_prob)
    # starts: the best `walkers` of `pilot` prior draws per dataset, all datasets in one model
    pilot_pts = lo + (hi - lo) * rng.random((datasets, pc.pilot, len(names)))
    pilot_lp = batch_log_prob({d: pilot_pts[d] for d in range(datasets)})
    starts = [pilot_pts[d][np.argsort(-pilot_lp[d], kind="stable")[: pc.walkers]] for d in range(datasets)]
    samplers = []
    for d in range(datasets):
        np.random.seed(np.random.SeedSequence([seed, 7, d]).generate_state(1)[0])  # noqa: NPY002
        moves = ([(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)] if pc.move == "de"
                 else emcee.moves.StretchMove())
        samplers.append(emcee.EnsembleSampler(pc.walkers, len(names),
                                              lambda th, d=d: lockstep.call(d, th), vectorize=True,
                                              moves=moves))
    errors: list[BaseException] = []

    def work(d: int) -> None:
        try:
            samplers[d].run_mcmc(starts[d], pc.steps, progress=False)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            lockstep.leave()

    threads = [threading.Thread(target=work, args=(d,)) for d in range(datasets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    rows = []
    for d, sampler in enumerate(samplers):
        chain = sampler.get_chain(discard=pc.burn, flat=True)
        pick = np.linspace(0, len(chain) - 1, ranks_of).round().astype(int)
        thinned = chain[pick]
        for i, name in enumerate(names):
            truth = truths[d, i]
            q = np.quantile(chain[:, i], [0.05, 0.25, 0.5, 0.75, 0.95])
            rows.append({"dataset": d, "parameter": name, "truth": truth,
                         "rank": int(np.sum(thinned[:, i] < truth)), "draws": ranks_of,
                         "q05": q[0], "q25": q[1], "q50": q[2], "q75": q[3], "q95": q[4],
                         "in50": bool(q[1] <= truth <= q[3]), "in90": bool(q[0] <= truth <= q[4]),
                         "acceptance": float(np.mean(sampler.acceptance_fraction))})
    return pd.DataFrame(rows)


def _bounds(name: str) -> tuple[float, float]:
    from .calibrate import _default_parameters

    for p in _default_parameters():
        if p.name == name:
            return p.lower, p.upper
    raise ValueError(f"no default bounds for {name}")
