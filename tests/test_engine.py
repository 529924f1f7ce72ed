"""The compiled engine (``engine="numba"``, :mod:`sim.kernels`) against the numpy reference engine.

Both engines draw the same random numbers, so per-replication results must be identical and the
weekly ensemble statistics equal up to the summation order of the means (rtol 1e-12).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sim.config
from sim import ConfigError, CredibilityRule, DeterrenceModel, Posture, RunConfig, kernels, rules
from sim.params import Era

TS_TOLERANCE = dict(check_exact=False, rtol=1e-12, atol=1e-9)


def _config(seed: int, posture: Posture, **params) -> RunConfig:
    return RunConfig(replications=200, seed=seed, progress=False).replace(
        policy={"name": posture}, scenario={"weeks": 200}, params=params)


def _historical() -> RunConfig:
    return sim.config.load_config(["scenario=historical", "params=calibrated", "replications=100",
                                   "progress=false"])


CONFIGS = {
    "rotational": lambda: _config(101, Posture.rotational),
    "permanent": lambda: _config(102, Posture.permanent),
    "reactive": lambda: _config(103, Posture.reactive),
    "none": lambda: _config(104, Posture.none),
    "current_calculus": lambda: _config(105, Posture.reactive,
                                        credibility_rule=CredibilityRule.current_calculus),
    # escalation-prone: clashes, wars and large salvos happen, so those paths are compared too
    "escalatory": lambda: _config(106, Posture.reactive, spiral_weight=0.9, salvo_extra=2.0,
                                  clash_intercept=-5.0, war_intercept=-3.0),
    "historical": _historical,
}


def _both(cfg: RunConfig, **kw):
    return (DeterrenceModel(cfg, engine="numba", **kw).run(),
            DeterrenceModel(cfg, engine="numpy", **kw).run())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_engines_agree(name):
    """Seeds 101..106, R=200, 200 weeks (one config per posture, the current-calculus rule and an
    escalation-prone one), and the historical replay (calibrated params, its own seed, R=100, 417
    weeks): replications equal exactly, weekly statistics to rtol 1e-12, meta equal."""
    cfg = CONFIGS[name]()
    fast, ref = _both(cfg)
    assert len(ref.replications) > 0 and len(ref.timeseries) == cfg.scenario.weeks
    pd.testing.assert_frame_equal(fast.replications, ref.replications)
    pd.testing.assert_frame_equal(fast.timeseries, ref.timeseries, **TS_TOLERANCE)
    assert fast.meta == ref.meta


def test_escalatory_config_exercises_clashes_wars_and_salvos():
    """Seed 106, R=200, 200 weeks: the escalation-prone config of :func:`test_engines_agree` does
    reach clashes, wars and multi-missile launch days (so that comparison covers those paths)."""
    ts = DeterrenceModel(CONFIGS["escalatory"](), engine="numpy").run().timeseries
    assert ts["clash"].sum() > 0
    assert ts["war"].iloc[-1] > 0
    launch_share = ts[["dprk_srbm_launch", "dprk_lrbm_launch"]].sum(axis=1)
    assert (ts["dprk_missiles"] > launch_share).any()


def test_engines_agree_on_a_batch():
    """Seed 7, R=60 per point, 120 weeks, reactive posture, a 3-point batch of spiral weight and
    salvo extra (weekly statistics off): identical replications, blocks and lag histograms."""
    cfg = RunConfig(replications=60, seed=7, progress=False).replace(
        policy={"name": Posture.reactive}, scenario={"weeks": 120})
    batch = {"spiral_weight": [0.0, 0.5, 0.9], "salvo_extra": [0.5, 1.0, 2.0]}
    fast, ref = _both(cfg, batch=batch, weekly=False)
    assert set(ref.replications["block"]) == {0, 1, 2}
    pd.testing.assert_frame_equal(fast.replications, ref.replications)
    assert fast.meta == ref.meta


def test_engines_agree_on_an_era_drive_batch():
    """Seed 5, R=40 per point, 160 weeks, two eras with the late era's drive batched (0.2, 2.5):
    identical replications in both engines."""
    eras = [Era("early", "2025-01-01", 1.0, 0.0), Era("late", "2027-01-01", 1.0, 0.0)]
    cfg = RunConfig(replications=40, seed=5, progress=False).replace(scenario={"eras": eras, "weeks": 160})
    fast, ref = _both(cfg, batch={"era:late": [0.2, 2.5]}, weekly=False)
    assert set(ref.replications["block"]) == {0, 1}
    pd.testing.assert_frame_equal(fast.replications, ref.replications)
    assert fast.meta == ref.meta


# ------------------------------------------------------------------------- order statistics
def _order_statistics(x: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    out = np.full(ranks.size, -12345.0)
    kernels.order_statistics(x, ranks, out, np.empty(x.size, dtype=np.int32))
    return out


TIES = st.sampled_from([0.0, 0.25, 0.5, 1.0, -3.0, 7.5])


@given(values=st.lists(TIES | st.floats(0, 1), min_size=1, max_size=500),
       data=st.data())
def test_order_statistics_match_sorting(values, data):
    """Hypothesis (default 100 examples): arrays of up to 500 floats in [0, 1] with many ties, any
    ascending subset of ranks (repeats allowed): the k-th smallest values equal those of ``np.sort``."""
    x = np.array(values, dtype=float)
    ranks = np.array(sorted(data.draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=8))),
                     dtype=np.int64)
    np.testing.assert_array_equal(_order_statistics(x, ranks), np.sort(x)[ranks])


@given(x=hnp.arrays(np.float64, st.integers(1, 300),
                    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)))
def test_all_order_statistics_match_sorting(x):
    """Hypothesis (default 100 examples): arrays of up to 300 finite floats in [-1e6, 1e6] (hypothesis
    favours ties and extremes, subnormals included), every rank: equal to
    ``np.sort``."""
    ranks = np.arange(x.size, dtype=np.int64)
    np.testing.assert_array_equal(_order_statistics(x, ranks), np.sort(x))


_DEGENERATE = """
import numpy as np
from sim import kernels
bad = []
for x in ([0.0, 5e-324], [1e-300, np.nextafter(1e-300, 1.0)], [0.0, 1e-308], [-1e308, 1e308, 0.0]):
    x = np.array(x)
    ranks = np.arange(x.size, dtype=np.int64)
    out = np.full(x.size, -1.0)
    try:
        kernels.order_statistics(x, ranks, out, np.empty(x.size, dtype=np.int32))
        ok = np.array_equal(out, np.sort(x))
    except Exception as exc:
        ok = False
        out = type(exc).__name__
    if not ok:
        bad.append((x.tolist(), out if isinstance(out, str) else out.tolist()))
print(bad)
assert not bad
"""


def test_order_statistics_on_degenerate_ranges():
    """No randomness, 2-3 values each: a range too small for ``nbins / range`` (subnormal and
    tiny values) or too large for ``max - min`` (+-1e308) must still give ``np.sort``'s values.
    Runs in a subprocess with a 30 s limit: before the kernel fell back to sorting on such ranges,
    it wrote out of bounds and now and then looped forever."""
    try:
        proc = subprocess.run([sys.executable, "-c", _DEGENERATE], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("order_statistics did not return within 30 s on a degenerate range")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_order_statistics_on_a_large_array():
    """Seed 3, 100,000 rounded normals (many ties, more bins than the minimum) and 50 random ranks."""
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=100_000), 2)
    ranks = np.sort(rng.choice(x.size, 50, replace=False)).astype(np.int64)
    np.testing.assert_array_equal(_order_statistics(x, ranks), np.sort(x)[ranks])


def test_weekly_quantiles_of_the_compiled_engine_are_numpys():
    """Seed 2024, R=500, 30 weeks, numba engine: the last week's 5/50/95 % quantiles of tension,
    DPRK belief and ROK/Japan assurance equal ``np.quantile`` of the final state (rtol 1e-12)."""
    cfg = RunConfig(replications=500, seed=2024, progress=False).replace(
        policy={"name": Posture.reactive}, scenario={"weeks": 30})
    model = DeterrenceModel(cfg, engine="numba")
    last = model.run().timeseries.iloc[-1]
    state = {"tension": model.tension, "dprk_belief": model.dprk.belief,
             "rok_assurance": model.rok.assurance, "japan_assurance": model.japan.assurance}
    for name, values in state.items():
        assert np.unique(values).size > 3, name  # a spread-out state, not a constant
        got = last[[f"{name}_q05", f"{name}_q50", f"{name}_q95"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, np.quantile(values, [0.05, 0.5, 0.95]), rtol=1e-12, atol=0,
                                   err_msg=name)
        np.testing.assert_allclose(last[f"{name}_mean"], values.mean(), rtol=1e-12, err_msg=name)


# ------------------------------------------------------------------------- salvo sampler
@pytest.mark.parametrize("size", [0.5, 3.0])
def test_compiled_negative_binomial_quantile_is_the_rules_one(size):
    """Seed 17 (+ size), 20,000 (u, mean) pairs, u uniform, means uniform in [0, 30]: the compiled
    per-value quantile equals :func:`sim.rules.negative_binomial_quantile` exactly, every one."""
    rng = np.random.default_rng(17 + int(10 * size))
    u = rng.random(20_000)
    mean = rng.uniform(0, 30, 20_000)
    expected = rules.negative_binomial_quantile(u, mean, size)
    got = np.array([kernels.negative_binomial_quantile(float(a), float(m), size, rules.MAX_QUANTILE_TERMS)
                    for a, m in zip(u, mean, strict=True)])
    assert expected.max() > 10  # the recursion ran many terms, not just k = 0
    np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------------- configuration
def test_unknown_engine_is_a_config_error():
    """No run: the constructor rejects an unknown engine name before any work."""
    cfg = RunConfig(replications=5, progress=False)
    with pytest.raises(ConfigError, match="engine"):
        DeterrenceModel(cfg, engine="bogus")


def test_kernel_constants_match_the_agents():
    """The compiled kernels repeat the action codes and tables of sim.agents (no randomness)."""
    from sim import agents

    np.testing.assert_array_equal(kernels._SEVERITY, agents.DPRK_SEVERITY)
    np.testing.assert_array_equal(kernels._RUNG, agents.DPRK_RUNG)
    assert kernels._MAJOR == agents.MAJOR_SEVERITY
    for name in ("RESTRAINT", "TALKS", "RHETORIC", "SRBM", "LRBM", "NUCLEAR", "BORDER", "US_HOLD",
                 "US_STATEMENT", "US_THREAT", "US_SURGE", "ROK_HOLD", "ROK_STRIKE", "ROK_REQUEST",
                 "ROK_OUTREACH", "JP_HOLD", "JP_PROTEST", "JP_ALERT", "JP_TRILATERAL"):
        assert getattr(kernels, name) == getattr(agents, name), name


def test_constants_of_other_modules_reach_the_compiled_kernels(monkeypatch):
    """A constant the kernels use but another module defines (``rules.LOGIT_BOUND``) is passed in
    at each call: numba's cache keys on kernels.py alone, so a global read from sim.rules would stay
    frozen at its value when the kernels were first compiled (issue 11). With a bound of 0.5 the
    compiled engine's beliefs must stay within expit(+/-0.5), as the reference engine's do."""
    monkeypatch.setattr(rules, "LOGIT_BOUND", 0.5)
    cfg = RunConfig(replications=200, seed=3, credibility=0.9, progress=False).replace(
        scenario={"weeks": 80}, policy={"name": Posture.rotational})
    for engine in ("numba", "numpy"):
        model = DeterrenceModel(cfg, engine=engine)
        model.run()
        belief = model.dprk.belief
        assert belief.max() <= rules.expit(0.5) + 1e-12 and belief.min() >= rules.expit(-0.5) - 1e-12, engine
        assert belief.max() == pytest.approx(rules.expit(0.5))  # the bound binds in this run
