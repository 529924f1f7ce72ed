"""Directions the literature predicts, as comparisons of ensemble means with a margin of 3 standard
errors computed from the data (never a fixed expected value).

The two arms of each comparison use different seeds, so they are independent samples and the Welch
standard error of the difference applies.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import provocations, small_config, welch_se
from scipy.special import expit, logit

from sim import CredibilityRule, DeterrenceModel, ModelParams, Posture, run
from sim.agents import DPRK_SEVERITY, RESTRAINT, US_HOLD, US_STATEMENT, US_SURGE, US_THREAT

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
def test_a_consistent_dprk_is_moved_more_by_costly_responses_than_by_cheap_talk():
    """Fearon (1997), in the model's own world: a surge or a threat, which an irresolute US makes less
    often, raises the consistent DPRK's belief; a statement, which both types make alike, does not
    (after a provocation it reads like no response). And the allies are assured more by a surge than
    by a statement (the second audience, Snyder 1984).

    One week (the state is the start), reactive posture, credibility 0.5, seed 311, R = 4000: for
    each DPRK action, the belief after a surge and after a threat is above the prior and above the
    belief after a statement, and ROK assurance after a surge above that after a statement.
    """
    model = DeterrenceModel(small_config(replications=4000, weeks=1, seed=311, credibility=0.5,
                                         policy={"name": Posture.reactive}))
    model.run()
    belief, us, dprk = model.dprk.belief, model.us.choice, model.dprk.choice
    compared = 0
    for action in np.unique(dprk):
        after = {a: belief[(dprk == action) & (us == a)] for a in (US_STATEMENT, US_THREAT, US_SURGE)}
        assurance = {a: model.rok.assurance[(dprk == action) & (us == a)] for a in (US_STATEMENT, US_SURGE)}
        if after[US_STATEMENT].size == 0:
            continue
        for costly in (US_THREAT, US_SURGE):
            if after[costly].size and DPRK_SEVERITY[action] > 0:
                assert after[costly].min() > 0.5 and after[costly].min() > after[US_STATEMENT].max(), action
                compared += 1
        if assurance[US_SURGE].size:
            assert assurance[US_SURGE].mean() > assurance[US_STATEMENT].mean()
        assert after[US_STATEMENT].max() <= 0.5
    assert compared >= 4


def test_the_misperceiving_dprk_s_table_ranks_sunk_costs_above_scheduled_arrivals():
    """The default likelihoods of perception=costly_signals (Jervis 1976: a DPRK that reads
    scheduled signals as costly whatever the type): basing, a sunk cost, reads more than a rotation's
    arrival, which reads more than a week of continuing presence; each is read as good news."""
    p = ModelParams()

    def llr(signal):
        return math.log(getattr(p, f"lik_{signal}_res") / getattr(p, f"lik_{signal}_irr"))

    assert llr("permanent") > llr("deploy") > llr("presence") > 0
    assert llr("consult") > 0


def _one_signal_week(posture: Posture, perception: str) -> DeterrenceModel:
    """A model at its prior (credibility 0.5) with no calendar events, the week-0 posture event fired
    (at t = 0.5, not the step at t = 1), an asset on station, a US that holds and tells nothing."""
    cfg = small_config(replications=3, weeks=2, credibility=0.5, policy={"name": posture},
                       scenario={"exercises": [], "consultations": []}, params={"perception": perception})
    model = DeterrenceModel(cfg)
    model.run_until(0.9)
    assert model.us.scheduled_arrival.all()
    model.dprk.choice[:] = RESTRAINT
    model.on_station[:] = True
    model.us.choice[:] = US_HOLD
    model.us.evidence[:] = 0.0
    return model


def test_basing_moves_only_a_misperceiving_dprk_and_it_more_than_a_rotation():
    """The model's own signal path (``_update_beliefs_and_assurance``) in the week of the first
    scheduled arrival: a DPRK that reads arrivals as costly signals (costly_signals) is moved more by
    sunk basing than by a rotation's arrival, each exactly one Bayes step with its likelihoods; a
    consistent DPRK, who knows that both types keep the schedule alike, is not moved at all."""
    beliefs = {}
    p = ModelParams()
    for perception in ("costly_signals", "consistent"):
        for posture in (Posture.permanent, Posture.rotational):
            m = _one_signal_week(posture, perception)
            m._update_beliefs_and_assurance()
            beliefs[perception, posture] = m.dprk.belief.copy()
    bayes = {s: 0.5 * getattr(p, f"lik_{s}_res") / (0.5 * getattr(p, f"lik_{s}_res")
                                                     + 0.5 * getattr(p, f"lik_{s}_irr"))
             for s in ("permanent", "deploy")}
    np.testing.assert_allclose(beliefs["costly_signals", Posture.permanent], bayes["permanent"], rtol=1e-12)
    np.testing.assert_allclose(beliefs["costly_signals", Posture.rotational], bayes["deploy"], rtol=1e-12)
    assert bayes["permanent"] > bayes["deploy"] > 0.5
    for posture in (Posture.permanent, Posture.rotational):
        np.testing.assert_array_equal(beliefs["consistent", posture], 0.5)


def test_deployments_read_as_costly_raise_a_misperceiving_dprk_s_belief():
    """Run level, perception=costly_signals: the same rotational schedule, its arrivals read with the
    default likelihoods (0.5 / 0.4) versus as no signal (0.45 / 0.45). Mean final DPRK belief higher
    when they are read as costly; credibility 0.5, seeds 301 (costly) and 302 (no signal), R = 1000
    each, 104 weeks. Control: a consistent DPRK does not use the table, so the same change leaves its
    run identical (seed 303, R = 200)."""
    costly = run(small_config(replications=1000, weeks=104, seed=301, credibility=0.5,
                              params={"perception": "costly_signals"})).per_replication()
    flat = {"lik_deploy_res": 0.45, "lik_deploy_irr": 0.45}
    talk = run(small_config(replications=1000, weeks=104, seed=302, credibility=0.5,
                            params={"perception": "costly_signals", **flat})).per_replication()
    _assert_greater(costly["final_dprk_belief"].to_numpy(), talk["final_dprk_belief"].to_numpy(),
                    "final DPRK belief, deployments costly vs no signal")
    base = dict(replications=200, weeks=104, seed=303, credibility=0.5)
    pd.testing.assert_frame_equal(run(small_config(**base)).replications,
                                  run(small_config(**base, params=flat)).replications)


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
