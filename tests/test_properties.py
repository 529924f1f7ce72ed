"""Invariants of whole runs over the parameter space (hypothesis), and R = 1 versus large R."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_config
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim import CredibilityRule, DeterrenceModel, Perception, Posture, rules, run
from sim.agents import DPRK_ACTIONS, JAPAN_ACTIONS, ROK_ACTIONS, RUNGS, US_ACTIONS
from sim.recording import ACTION_COLUMNS, COUNT_COLUMNS, RUNG_SLUGS

R_PROPERTY = 20
WEEKS_PROPERTY = 60

P_REACHED = [f"p_rung_at_least_{s}" for s in RUNG_SLUGS[1:]]
ACTOR_ACTIONS = {
    "dprk": DPRK_ACTIONS, "us": US_ACTIONS, "rok": ROK_ACTIONS, "japan": JAPAN_ACTIONS,
}

unit = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def run_configs(draw):
    posture = draw(st.sampled_from(list(Posture)))
    rule = draw(st.sampled_from(list(CredibilityRule)))
    params = {
        "spiral_weight": draw(unit),
        "credibility_rule": rule,
        "perception": draw(st.sampled_from(list(Perception))),
        "dprk_precision": draw(st.floats(0.1, 5.0)),
        "us_precision": draw(st.floats(0.1, 5.0)),
        "ally_precision": draw(st.floats(0.1, 5.0)),
        "us_type_turnover": draw(unit),
        "us_skip_resolute": draw(unit),
        "us_skip_irresolute": draw(unit),
        "us_audience_cost": draw(st.floats(0.0, 10.0)),
        "us_threat_window_weeks": draw(st.integers(1, 52)),
    }
    return small_config(
        replications=R_PROPERTY,
        weeks=WEEKS_PROPERTY,
        seed=draw(st.integers(0, 2**32 - 1)),
        credibility=draw(unit),
        policy={"name": posture},
        params=params,
        # a start from which an inauguration (20 January 2029) may fall inside the horizon
        scenario={"exercise_scale": draw(st.floats(0.0, 3.0)), "dprk_prior": draw(st.none() | unit),
                  "start_date": draw(st.sampled_from(["2026-01-05", "2028-09-04"]))},
    )


def _unit_interval_columns(ts: pd.DataFrame) -> list[str]:
    prefixes = ("dprk_belief_", "rok_assurance_", "japan_assurance_", "p_rung_at_least_")
    cols = [c for c in ts.columns if c.startswith(prefixes)]
    cols += list(ACTION_COLUMNS)
    cols += ["clash", "war", "asset_on_station", "consultation", "scheduled_arrival",
             "scheduled_on_station"]
    return cols


@settings(max_examples=20)
@given(cfg=run_configs())
def test_run_invariants_over_the_parameter_space(cfg):
    res = run(cfg)
    ts, reps = res.timeseries, res.replications
    weeks, n = cfg.scenario.weeks, cfg.replications
    assert len(ts) == weeks

    numeric = ts.select_dtypes(include="number")
    assert np.isfinite(numeric.to_numpy()).all(), numeric.columns[~np.isfinite(numeric).all()].tolist()

    for col in _unit_interval_columns(ts):
        v = ts[col].to_numpy()
        assert np.all((v >= 0.0) & (v <= 1.0)), col

    for col in ("tension_mean", "tension_q05", "tension_q50", "tension_q95"):
        assert (ts[col] >= 0).all(), col
    for var in ("tension", "dprk_belief", "rok_assurance", "japan_assurance"):
        q05, q50, q95 = (ts[f"{var}_q{q}"].to_numpy() for q in ("05", "50", "95"))
        assert np.all(q05 <= q50 + 1e-12) and np.all(q50 <= q95 + 1e-12), var

    # the escalation curve: non-decreasing in time, nested across rungs
    reached = ts[P_REACHED].to_numpy()
    assert np.all(np.diff(reached, axis=0) >= 0)
    assert np.all(np.diff(reached, axis=1) <= 0)
    assert np.all(np.diff(ts["war"].to_numpy()) >= 0)
    assert np.all(np.diff(ts["us_cost_cumulative"].to_numpy()) >= -1e-9)

    # each actor's action shares add up to the share of replications still counted that week
    for actor, actions in ACTOR_ACTIONS.items():
        total = ts[[f"{actor}_{a}" for a in actions]].sum(axis=1).to_numpy()
        assert np.all(total <= 1.0 + 1e-12), actor
        assert np.all(total >= 1.0 - ts["war"].to_numpy() - 1e-12), actor

    # per replication-year counts
    counts = reps[list(COUNT_COLUMNS)]
    assert (counts >= 0).all().all()
    assert reps["replication"].nunique() == n
    per = res.per_replication()
    assert len(per) == n
    assert (per["weeks"] <= weeks).all()
    for actor, actions in ACTOR_ACTIONS.items():
        np.testing.assert_array_equal(per[[f"{actor}_{a}" for a in actions]].sum(axis=1), per["weeks"])
    # a launch week is an SRBM or LRBM week and holds 1 to 7 launch days (rules.launch_days)
    np.testing.assert_array_equal(per["dprk_launch_weeks"],
                                  per["dprk_srbm_launch"] + per["dprk_lrbm_launch"])
    assert (per["dprk_launch_days"] >= per["dprk_launch_weeks"]).all()
    assert (per["dprk_launch_days"] <= 7 * per["dprk_launch_weeks"]).all()
    assert (per["dprk_missiles"] >= per["dprk_launch_days"]).all()
    assert per["max_rung"].between(0, len(RUNGS) - 1).all()
    bound = rules.expit(rules.LOGIT_BOUND)
    assert per["final_dprk_belief"].between(1.0 - bound, bound).all()  # strictly inside (0, 1)
    assert (per["us_cost"] >= 0).all()

    fcw = per["first_clash_week"]
    assert fcw.dropna().between(0, weeks - 1).all()
    war = per["war_week"]
    assert war.dropna().between(0, weeks - 1).all()
    # war only follows a clash, and only then is the top rung reached
    has_war = war.notna().to_numpy()
    assert fcw[has_war].notna().all()
    assert (war[has_war] >= fcw[has_war]).all()
    np.testing.assert_array_equal(per["max_rung"].to_numpy() == len(RUNGS) - 1, has_war)
    np.testing.assert_array_equal(per["max_rung"].to_numpy() >= 4, fcw.notna().to_numpy())

    # the last week's escalation curve is the per-replication max_rung distribution
    final = ts[P_REACHED].iloc[-1].to_numpy()
    expected = [(per["max_rung"] >= k).mean() for k in range(1, len(RUNGS))]
    np.testing.assert_allclose(final, expected)

    if cfg.policy.name == Posture.none:
        assert (ts["us_surge_deployment"] == 0).all()
        assert (per["us_deployments"] == 0).all()
    if cfg.policy.name in (Posture.none, Posture.reactive):
        assert (ts["scheduled_arrival"] == 0).all() and (ts["scheduled_on_station"] == 0).all()


# --------------------------------------------------------------------------- R = 1 versus R
N_SEEDS = 300
WEEKS_R = 52


def _per_rep(replications: int, seed: int) -> pd.DataFrame:
    return run(small_config(replications=replications, weeks=WEEKS_R, seed=seed)).per_replication()


@pytest.fixture(scope="module")
def r1_and_rn():
    singles = pd.concat([_per_rep(1, s) for s in range(N_SEEDS)], ignore_index=True)
    ensemble = _per_rep(N_SEEDS, 20240601)
    return singles, ensemble


@pytest.mark.parametrize("column", ["dprk_launch_days", "dprk_missiles", "us_statement"])
def test_one_replication_per_run_matches_one_run_of_many(r1_and_rn, column):
    """R = 1 with seeds 0..299 versus R = 300 with seed 20240601, 52 weeks each (n = 300 vs 300).

    The replications of one run are independent draws of the same process, so the per-replication
    counts must have the same distribution: Mann-Whitney U and two-sample Kolmogorov-Smirnov, each
    at alpha = 0.001 (deterministic given the seeds).
    """
    singles, ensemble = r1_and_rn
    a = singles[column].to_numpy(dtype=float)
    b = ensemble[column].to_numpy(dtype=float)
    assert a.size == b.size == N_SEEDS
    assert a.std() > 0 and b.std() > 0  # the statistic varies, so the comparison has power
    assert stats.mannwhitneyu(a, b).pvalue > 0.001
    assert stats.ks_2samp(a, b).pvalue > 0.001


def test_single_replication_runs_the_vectorised_code_path():
    model = DeterrenceModel(small_config(replications=1, weeks=20))
    assert model.replications == 1
    for arr in (model.tension, model.pressure, model.alive, model.dprk.belief, model.dprk.capability,
                model.us.resolute, model.us.cost, model.rok.assurance, model.japan.assurance):
        assert np.shape(arr) == (1,)
    res = model.run()
    for agent in (model.dprk, model.us, model.rok, model.japan):
        assert agent.choice.shape == (1,)
    assert len(res.timeseries) == 20
    assert res.per_replication().shape[0] == 1
    ts = res.timeseries
    # with one replication every quantile is the value itself
    for var in ("tension", "dprk_belief", "rok_assurance", "japan_assurance"):
        for q in ("05", "50", "95"):
            np.testing.assert_allclose(ts[f"{var}_q{q}"], ts[f"{var}_mean"])
    # action shares are 0/1 indicators of the one replication's choice
    for actor, actions in ACTOR_ACTIONS.items():
        shares = ts[[f"{actor}_{a}" for a in actions]].to_numpy()
        assert set(np.unique(shares)) <= {0.0, 1.0}
