"""Directions the literature predicts, as comparisons of ensemble means with a margin of 3 standard
errors computed from the data (never a fixed expected value).

The two arms of each comparison use different seeds, so they are independent samples and the Welch
standard error of the difference applies.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import provocations, small_config, welch_se
from scipy.special import expit, logit

from sim import CredibilityRule, DeterrenceModel, ModelParams, Posture, rules, run
from sim.agents import RESTRAINT, US_HOLD, US_STATEMENT, US_SURGE

Z = 3.0  # required margin, in standard errors of the difference


def _provocations(seed: int, replications: int, weeks: int, **changes) -> np.ndarray:
    return provocations(run(small_config(replications=replications, weeks=weeks, seed=seed,
                                         **changes)).per_replication())


def _assert_greater(a: np.ndarray, b: np.ndarray, what: str) -> None:
    diff = a.mean() - b.mean()
    se = welch_se(a, b)
    assert se > 0
    assert diff > Z * se, f"{what}: {a.mean():.4g} vs {b.mean():.4g}, diff {diff:.4g}, SE {se:.3g}"


# ---------------------------------------------------------------- deterrence by punishment
def test_credibility_deters_provocations_without_spiral():
    """Deterrence (Schelling 1966; Huth 1999), spiral_weight = 0: credibility 0.2 gives more DPRK
    provocations (launch days + nuclear tests + border incidents per replication) than 0.9.

    Seeds 101 (c = 0.2) and 102 (c = 0.9), R = 2000 replications each, 104 weeks.
    """
    low = _provocations(101, 2000, 104, credibility=0.2, params={"spiral_weight": 0.0})
    high = _provocations(102, 2000, 104, credibility=0.9, params={"spiral_weight": 0.0})
    _assert_greater(low, high, "provocations, credibility 0.2 vs 0.9")


# -------------------------------------------------------------------- deterrence vs spiral
def test_exercises_provoke_under_the_spiral_model():
    """Spiral model (Jervis 1976; Bernhardt & Sukin 2021), spiral_weight = 1: exercise_scale 2.0
    gives more provocations than 0.5.

    Seeds 201 (scale 2.0) and 202 (scale 0.5), R = 1000 each, 104 weeks.
    """
    big = _provocations(201, 1000, 104, params={"spiral_weight": 1.0}, scenario={"exercise_scale": 2.0})
    small = _provocations(202, 1000, 104, params={"spiral_weight": 1.0}, scenario={"exercise_scale": 0.5})
    _assert_greater(big, small, "provocations, spiral_weight 1, exercise_scale 2.0 vs 0.5")


def test_exercises_deter_under_the_pure_deterrence_model():
    """Deterrence model, spiral_weight = 0: the same exercise increase (0.5 -> 2.0) now gives fewer
    provocations, since pressure only raises the expected punishment.

    Seeds 203 (scale 0.5) and 204 (scale 2.0), R = 2000 each, 104 weeks.
    """
    small = _provocations(203, 2000, 104, params={"spiral_weight": 0.0}, scenario={"exercise_scale": 0.5})
    big = _provocations(204, 2000, 104, params={"spiral_weight": 0.0}, scenario={"exercise_scale": 2.0})
    _assert_greater(small, big, "provocations, spiral_weight 0, exercise_scale 0.5 vs 2.0")


# ------------------------------------------------------------------ costly signals vs cheap talk
def test_model_likelihood_ratios_rank_costly_signals_above_cheap_talk():
    """Fearon (1997): sunk costs and tied hands are informative, cheap talk barely is."""
    llr = DeterrenceModel(small_config(replications=2, weeks=2))._llr
    assert llr["permanent"] > llr["deploy"] > llr["statement"] > 0
    assert llr["inaction"] < 0
    p = ModelParams()
    assert rules.bayes_update(0.5, p.lik_deploy_res, p.lik_deploy_irr) > \
        rules.bayes_update(0.5, p.lik_statement_res, p.lik_statement_irr) > 0.5


def _one_signal_week(posture: Posture) -> DeterrenceModel:
    """A model at its prior (credibility 0.5) with no calendar events, ready for hand-set signals."""
    cfg = small_config(replications=3, weeks=2, credibility=0.5, policy={"name": posture},
                       scenario={"exercises": [], "consultations": []})
    model = DeterrenceModel(cfg)
    model.dprk.choice[:] = RESTRAINT  # no provocation: no 'inaction' evidence
    return model


def test_a_deployment_moves_the_model_belief_more_than_a_statement():
    """The model's own signal path (_update_beliefs_and_assurance): one week, three replications
    at the prior 0.5 that see a surge deployment, a statement, and nothing."""
    m = _one_signal_week(Posture.reactive)
    m.us.choice[:] = [US_SURGE, US_STATEMENT, US_HOLD]
    m.us.surge_arrival[:] = [True, False, False]
    m.on_station[:] = [True, False, False]
    rok_before = m.rok.assurance.copy()
    m._update_beliefs_and_assurance()
    b = m.dprk.belief
    p = m.params
    assert b[0] - 0.5 > b[1] - 0.5 > 0
    assert b[2] == pytest.approx(0.5)
    # each shift is exactly one Bayes update with that signal's likelihoods
    assert b[0] == pytest.approx(rules.bayes_update(0.5, p.lik_deploy_res, p.lik_deploy_irr))
    assert b[1] == pytest.approx(rules.bayes_update(0.5, p.lik_statement_res, p.lik_statement_irr))
    # the allies are assured more by the deployment as well (second audience, Snyder 1984)
    assert m.rok.assurance[0] - rok_before[0] > m.rok.assurance[1] - rok_before[1]


def test_permanent_basing_moves_the_model_belief_more_than_a_rotation():
    """Sunk basing (the week-0 permanent arrival) versus a scheduled rotational arrival."""
    beliefs = {}
    for posture in (Posture.permanent, Posture.rotational):
        m = _one_signal_week(posture)
        m.run_until(0.9)  # fire the week-0 posture event (at t = 0.5), not the step (t = 1)
        assert m.us.scheduled_arrival
        m.on_station[:] = True
        m.us.choice[:] = US_HOLD
        m._update_beliefs_and_assurance()
        beliefs[posture] = m.dprk.belief.copy()
    assert np.all(beliefs[Posture.permanent] > beliefs[Posture.rotational])
    assert np.all(beliefs[Posture.rotational] > 0.5)


def test_deployments_read_as_costly_raise_the_belief_more_than_as_cheap_talk():
    """Run level: the same rotational schedule, its arrivals read with the default (costly)
    deployment likelihoods versus the statement (cheap-talk) likelihoods. Mean final DPRK belief.

    Credibility 0.5; seeds 301 (costly) and 302 (cheap), R = 1000 each, 104 weeks.
    """
    p = ModelParams()
    cheap = {"lik_deploy_res": p.lik_statement_res, "lik_deploy_irr": p.lik_statement_irr}
    costly = run(small_config(replications=1000, weeks=104, seed=301, credibility=0.5)).per_replication()
    talk = run(small_config(replications=1000, weeks=104, seed=302, credibility=0.5,
                            params=cheap)).per_replication()
    _assert_greater(costly["final_dprk_belief"].to_numpy(), talk["final_dprk_belief"].to_numpy(),
                    "final DPRK belief, deployments costly vs cheap")


# ----------------------------------------------------------------------- learning the US type
def test_bayesian_dprk_ends_more_convinced_facing_a_resolute_us():
    """Bayes rule, credibility 0.5: the mean final DPRK belief is higher in replications whose US
    is resolute (its costly responses are more frequent) than where it is irresolute.

    Seed 401, R = 2000 (about 1000 of each type), 104 weeks.
    """
    per = run(small_config(replications=2000, weeks=104, seed=401, credibility=0.5)).per_replication()
    resolute = per["us_resolute"].to_numpy(dtype=bool)
    assert 800 < resolute.sum() < 1200
    belief = per["final_dprk_belief"].to_numpy()
    _assert_greater(belief[resolute], belief[~resolute], "final belief, resolute vs irresolute US")


# ------------------------------------------------------------------- current calculus (Press 2005)
CC_FIXED = {
    "credibility_rule": CredibilityRule.current_calculus,
    "capability_learning": 0.0,
    "capability_learning_nuclear": 0.0,
    "war_intercept": -60.0,  # no war: a replication ended by war would keep an older belief
}


def _cc_expected(cfg, on_station: float, exercise_intensity: np.ndarray) -> np.ndarray:
    p = cfg.params
    return expit(p.cc_intercept + p.cc_interest * logit(cfg.credibility) + p.cc_presence * on_station
                 + p.cc_exercise * exercise_intensity - p.cc_decoupling * cfg.scenario.dprk_capability)


@pytest.mark.parametrize(("posture", "on_station"), [(Posture.none, 0.0), (Posture.permanent, 1.0)])
def test_current_calculus_belief_follows_forces_and_exercises_only(posture, on_station):
    """With capability fixed, the belief is the closed form of on_station and exercises: the same in
    every replication, whatever the US says or does."""
    cfg = small_config(replications=50, weeks=60, seed=501, credibility=0.6,
                       policy={"name": posture}, params=CC_FIXED)
    ts = run(cfg).timeseries
    expected = _cc_expected(cfg, on_station, ts["exercise_intensity"].to_numpy())
    for col in ("dprk_belief_mean", "dprk_belief_q05", "dprk_belief_q95"):
        np.testing.assert_allclose(ts[col].to_numpy(), expected, rtol=1e-9)
    assert ts["exercise_intensity"].max() > 0  # exercises happen in these 60 weeks, and show


def test_current_calculus_ignores_us_statements_and_threats_but_bayes_does_not():
    """Make US statements and threats frequent (zero cost) or not: the current-calculus belief series
    is unchanged, while the Bayesian one changes (control). Posture none, seed 502, R = 200, 60 weeks."""
    talkative = {"us_statement_cost": 0.0, "us_threat_cost": 0.0}
    out = {}
    for rule in CredibilityRule:
        base = {**CC_FIXED, "credibility_rule": rule}
        cfgs = [small_config(replications=200, weeks=60, seed=502, credibility=0.6,
                             policy={"name": Posture.none}, params={**base, **extra})
                for extra in ({}, talkative)]
        quiet, loud = (run(c).timeseries for c in cfgs)
        assert loud["us_statement"].mean() > quiet["us_statement"].mean()  # the manipulation works
        out[rule] = (quiet, loud)
    quiet, loud = out[CredibilityRule.current_calculus]
    belief_cols = [c for c in quiet.columns if c.startswith("dprk_belief")]
    np.testing.assert_array_equal(quiet[belief_cols].to_numpy(), loud[belief_cols].to_numpy())
    quiet, loud = out[CredibilityRule.bayes]
    assert not np.array_equal(quiet["dprk_belief_mean"].to_numpy(), loud["dprk_belief_mean"].to_numpy())
