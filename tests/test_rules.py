"""Each scalar rule of ``sim.rules`` (part 1), called directly from Python on one record of the
parameter table, against an independent oracle where one exists (scipy's softmax for quantal
probabilities, closed-form Bayes, scipy's negative-binomial quantile, the formulas of the
docstrings written out by hand) and in the directions the literature states.

A rule is called as the kernels call it: ``q = param_table(ModelParams(...), 1, {}, credibility,
prior)[0]``, then ``rules.<rule>(q, ...)``. numba compiles each rule on its first call (cached on
disk after that).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import expit, logit, softmax

from sim import ModelParams, rules
from sim.rules import (
    BORDER,
    DPRK_SEVERITY,
    LRBM,
    MAJOR_SEVERITY,
    NUCLEAR,
    RESTRAINT,
    RHETORIC,
    ROK_REQUEST,
    SRBM,
    TALKS,
    US_HOLD,
    US_STATEMENT,
    US_SURGE,
    US_THREAT,
)

BOUND = rules.LOGIT_BOUND
finite_utility = st.floats(-20.0, 20.0, allow_nan=False, allow_infinity=False)
unit = st.floats(0.0, 1.0, allow_nan=False)
open_unit = st.floats(1e-6, 1 - 1e-6, allow_nan=False)


def record(credibility: float = 0.5, dprk_prior: float | None = None, **params) -> np.void:
    """One record of the parameter table, as the kernels pass it to a rule."""
    prior = credibility if dprk_prior is None else dprk_prior
    return rules.param_table(ModelParams(**params), 1, {}, credibility, prior)[0]


P = ModelParams()
Q = record()  # the default parameters, as the kernels see them


# ----------------------------------------------------------------------------- the table
def test_param_table_holds_every_numeric_field_and_the_block_settings():
    """One column per numeric ModelParams field (the enums stay out: they choose code paths), a value
    per block where overridden, and the block's credibility and prior."""
    p = ModelParams(spiral_weight=0.4)
    table = rules.param_table(p, 3, {"salvo_extra": np.array([0.1, 0.2, 0.3])},
                              np.array([0.2, 0.5, 0.9]), np.array([0.5, 0.5, 0.5]))
    assert "credibility_rule" not in table.dtype.names and "perception" not in table.dtype.names
    for name in rules.PARAM_FIELDS:
        if name != "salvo_extra":
            np.testing.assert_array_equal(table[name], float(getattr(p, name)), err_msg=name)
    np.testing.assert_array_equal(table["salvo_extra"], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(table["credibility"], [0.2, 0.5, 0.9])
    np.testing.assert_array_equal(table["dprk_prior"], 0.5)


# ------------------------------------------------------------------------ logistic, quantal
@given(x=st.floats(-700, 700))
def test_expit_and_logit_are_scipys(x):
    assert rules.expit(x) == pytest.approx(expit(x), rel=1e-12, abs=1e-300)
    p = expit(x / 100.0)
    assert rules.logit(p) == pytest.approx(logit(p), rel=1e-9, abs=1e-12)


def _softmax(u, precision):
    """The quantal-response oracle: scipy's softmax of ``precision * u``; -inf marks an unavailable
    action, and precision 0 is uniform play over the available ones (McKelvey & Palfrey 1995)."""
    u = np.asarray(u, dtype=float)
    scaled = np.where(np.isneginf(u), -np.inf, precision * np.where(np.isneginf(u), 0.0, u))
    return softmax(scaled)


@given(u=st.lists(finite_utility | st.just(-np.inf), min_size=4, max_size=4),
       precision=st.floats(0.0, 20.0))
def test_quantal_probabilities_are_scipys_softmax(u, precision):
    assume(any(np.isfinite(u)))
    expected = _softmax(u, precision)
    got = [rules.quantal_probability4(*u, precision, a) for a in range(4)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    assert sum(got) == pytest.approx(1.0, abs=1e-12)
    for a in range(4):
        if u[a] == -np.inf:
            assert got[a] == 0.0
    # the shift leaves the best action at 0 and exp of the rest in (0, 1]
    z = rules.quantal_shift4(*u, precision)
    assert max(z) == 0.0


@given(u=st.lists(finite_utility, min_size=4, max_size=4, unique=True),
       precisions=st.lists(st.floats(0.0, 20.0), min_size=2, max_size=6))
def test_the_best_action_gains_probability_with_precision(u, precisions):
    best = int(np.argmax(u))
    p = [rules.quantal_probability4(*u, lam, best) for lam in sorted(precisions)]
    assert all(b >= a - 1e-12 for a, b in zip(p, p[1:], strict=False))


def test_precision_zero_is_uniform_over_the_available_actions():
    assert rules.quantal_probability4(3.0, -2.0, 0.5, 1.0, 0.0, 1) == pytest.approx(0.25)
    assert rules.quantal_probability4(3.0, -2.0, 0.5, -np.inf, 0.0, 1) == pytest.approx(1 / 3)
    assert rules.quantal_probability4(3.0, -2.0, 0.5, -np.inf, 0.0, 3) == 0.0


# ---------------------------------------------------------------------------------- DPRK
def _dprk(q=Q, belief=0.5, on_station=False, pressure=0.0, tension=2.0, outreach=0.0, drive=1.0,
          diplomacy=0.0, moratorium=False):
    return np.array(rules.dprk_utilities(q, belief, on_station, pressure, tension, outreach, drive,
                                         diplomacy, moratorium))


def test_dprk_utilities_by_hand():
    """The docstring's formula written out for one state, action by action."""
    p = ModelParams()
    b, pressure, tension, outreach, drive, diplomacy = 0.6, 1.5, 3.0, 1.0, 1.2, 0.5
    w = p.spiral_weight
    scale = b * (1 + p.presence_deterrence) * (1 + (1 - w) * p.deterrence_gain * pressure)
    spiral = w * p.spiral_gain * pressure
    expected = [
        0.0,
        (-p.dprk_cost_talks + p.dprk_talks_outreach_gain * outreach + p.dprk_talks_diplomacy_gain * diplomacy
         - p.dprk_talks_tension_loss * tension),
        -p.dprk_cost_rhetoric - p.dprk_punish_rhetoric * scale + 0.2 * spiral,
        -p.dprk_cost_srbm + drive * p.dprk_dev_srbm - p.dprk_punish_srbm * scale + 0.5 * spiral,
        -p.dprk_cost_lrbm + drive * p.dprk_dev_lrbm - p.dprk_punish_lrbm * scale + 1.0 * spiral,
        -p.dprk_cost_nuclear + drive * p.dprk_dev_nuclear - p.dprk_punish_nuclear * scale + 1.5 * spiral,
        -p.dprk_cost_border - p.dprk_punish_border * scale + 1.5 * spiral,
    ]
    got = _dprk(belief=b, on_station=True, pressure=pressure, tension=tension, outreach=outreach,
                drive=drive, diplomacy=diplomacy)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


PROVOCATIONS = [RHETORIC, SRBM, LRBM, NUCLEAR, BORDER]


def test_dprk_deterrence_directions():
    """Deterrence by punishment (Schelling 1966; Huth 1999): every provocation loses utility as the
    belief that the US is resolute rises, and more with an asset on station (presence_deterrence
    > 0); under the pure deterrence model (spiral weight 0) allied pressure deters, under the pure
    spiral model (Jervis 1976) it provokes. Restraint and talks do not depend on the belief."""
    low, high = _dprk(belief=0.2), _dprk(belief=0.8)
    assert np.all(high[PROVOCATIONS] < low[PROVOCATIONS])
    np.testing.assert_array_equal(high[[RESTRAINT, TALKS]], low[[RESTRAINT, TALKS]])
    assert np.all(_dprk(on_station=True)[PROVOCATIONS] < _dprk(on_station=False)[PROVOCATIONS])
    assert np.all(_dprk(record(presence_deterrence=0.0), on_station=True)
                  == _dprk(record(presence_deterrence=0.0), on_station=False))
    for w, sign in ((0.0, -1), (1.0, +1)):
        q = record(spiral_weight=w)
        change = _dprk(q, pressure=2.0)[PROVOCATIONS] - _dprk(q, pressure=0.0)[PROVOCATIONS]
        assert np.all(sign * change > 0), (w, change)


def test_dprk_talks_moratorium_and_weapons_drive():
    base = _dprk()
    assert _dprk(outreach=1.0)[TALKS] > base[TALKS] > _dprk(tension=10.0)[TALKS]
    assert _dprk(diplomacy=1.0)[TALKS] > base[TALKS]
    assert _dprk(moratorium=True)[NUCLEAR] == -np.inf
    assert np.all(np.isfinite(base))
    tests = [SRBM, LRBM, NUCLEAR]
    assert np.all(_dprk(drive=2.0)[tests] > base[tests])
    np.testing.assert_array_equal(_dprk(drive=2.0)[[RHETORIC, BORDER]], base[[RHETORIC, BORDER]])


# ---------------------------------------------------------------------------------- US
def test_us_need_is_severity_plus_the_weighted_request():
    for action in range(7):
        assert rules.us_need(action, False, 0.5) == DPRK_SEVERITY[action]
        assert rules.us_need(action, True, 0.5) == pytest.approx(DPRK_SEVERITY[action] + 0.5)


def _us(q=Q, type_factor=1.0, need=1.0, on_station=0, surge_allowed=True, challenged=False,
        back_down=0.0):
    return np.array(rules.us_response_utilities(q, type_factor, need, on_station, surge_allowed,
                                                challenged, back_down))


@given(f=unit, need=st.floats(0.0, 2.5), on=st.sampled_from([0, 1]), allowed=st.booleans(),
       challenged=st.booleans(), back=unit, a=st.floats(0.0, 10.0))
def test_us_response_utilities_by_hand(f, need, on, allowed, challenged, back, a):
    """``U_hold = -a [challenged]``, ``U_statement = g_st N - c_st - a [challenged]``,
    ``U_threat = f g_th N - c_th - a [challenged] - a E[back down]``,
    ``U_surge = f g_su N - c_su - r S`` (or unavailable)."""
    p = ModelParams(us_audience_cost=a)
    cost = a if challenged else 0.0
    expected = [-cost, p.us_statement_gain * need - p.us_statement_cost - cost,
                f * p.us_threat_gain * need - p.us_threat_cost - cost - a * back,
                (f * p.us_surge_gain * need - p.us_surge_cost - p.us_surge_redundancy * on) if allowed
                else -np.inf]
    got = _us(record(us_audience_cost=a), f, need, on, allowed, challenged, back)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_a_resolute_us_values_costly_responses_more_and_cheap_talk_alike():
    """Fearon (1997): a resolute US values surges and threats more; statements cost little and both
    types make them alike. A surge is worth less with an asset on station (us_surge_redundancy)."""
    resolute, irresolute = _us(type_factor=1.0), _us(type_factor=P.us_irresolute_factor)
    assert resolute[US_SURGE] > irresolute[US_SURGE] and resolute[US_THREAT] > irresolute[US_THREAT]
    assert resolute[US_HOLD] == irresolute[US_HOLD] and resolute[US_STATEMENT] == irresolute[US_STATEMENT]
    assert _us(on_station=1)[US_SURGE] < _us(on_station=0)[US_SURGE]
    assert _us(surge_allowed=False)[US_SURGE] == -np.inf


def test_backing_down_costs_the_audience_cost():
    """Tied hands (Fearon 1994): challenged while a threat binds, every response short of a surge costs
    the audience cost; a surge does not."""
    free, challenged = _us(challenged=False), _us(challenged=True)
    np.testing.assert_allclose((free - challenged)[[US_HOLD, US_STATEMENT, US_THREAT]], P.us_audience_cost)
    assert free[US_SURGE] == challenged[US_SURGE]


@given(f=unit, on=st.sampled_from([0.0, 1.0]), a=st.floats(0.0, 10.0), precision=st.floats(0.0, 10.0))
def test_back_down_probability_is_one_minus_the_surge_probability_when_challenged(f, on, a, precision):
    """One minus the quantal probability of a surge at need MAJOR_SEVERITY, challenged (softmax
    oracle); certain when surges are not available (posture none)."""
    q = record(us_audience_cost=a, us_precision=precision)
    u = rules.us_response_utilities(q, f, MAJOR_SEVERITY, on, True, True, 0.0)
    assert rules.back_down_probability(q, f, on, True) == pytest.approx(1 - _softmax(u, precision)[US_SURGE],
                                                                        rel=1e-12, abs=1e-15)
    assert rules.back_down_probability(q, f, on, False) == 1.0


def test_with_the_audience_cost_the_irresolute_backs_down_more_and_threatens_less():
    """Fearon (1994): the irresolute type backs down more when challenged, so it expects to pay the
    audience cost more often and threatens less; with no audience cost a threat made when nothing
    calls for one (need 0) is the same for both types."""
    def p_threat(q, f, need):
        back = rules.back_down_probability(q, f, 0.0, True)
        u = rules.us_response_utilities(q, f, need, 0, True, False, back)
        return rules.quantal_probability4(*u, q["us_precision"], US_THREAT)

    f_irr = P.us_irresolute_factor
    for on in (0.0, 1.0):
        assert rules.back_down_probability(Q, f_irr, on, True) > rules.back_down_probability(Q, 1.0, on, True)
    # the audience cost makes following through more attractive for both
    for f in (f_irr, 1.0):
        assert (rules.back_down_probability(record(us_audience_cost=4.0), f, 0.0, True)
                < rules.back_down_probability(record(us_audience_cost=0.0), f, 0.0, True))
    no_cost = record(us_audience_cost=0.0)
    for need in (0.0, 1.0):
        assert p_threat(Q, f_irr, need) < p_threat(no_cost, f_irr, need)
        assert p_threat(Q, f_irr, need) < p_threat(Q, 1.0, need)
    assert p_threat(no_cost, f_irr, 0.0) == p_threat(no_cost, 1.0, 0.0)


# ------------------------------------------------------------------ what a US response tells
US_STATE = dict(need=st.floats(0.0, 2.5), on=st.sampled_from([0, 1]), allowed=st.booleans(),
                challenged=st.booleans(), back_res=unit, back_irr=unit)
US_PARAMS = dict(precision=st.floats(0.0, 8.0), f_irr=unit, a=st.floats(0.0, 8.0),
                 redundancy=st.floats(0.0, 4.0))


@given(action=st.integers(0, 3), **US_STATE, **US_PARAMS)
def test_us_log_likelihood_ratio_is_bayes_with_the_us_own_choice_probabilities(
        action, need, on, allowed, challenged, back_res, back_irr, precision, f_irr, a, redundancy):
    """``log P(a | resolute) - log P(a | irresolute)``, each the softmax of that type's utilities
    (closed-form Bayes; Fearon 1997)."""
    assume(allowed or action != US_SURGE)  # an unavailable surge is never observed
    q = record(us_precision=precision, us_irresolute_factor=f_irr, us_audience_cost=a,
               us_surge_redundancy=redundancy)
    p_res = _softmax(rules.us_response_utilities(q, 1.0, need, on, allowed, challenged, back_res), precision)
    p_irr = _softmax(rules.us_response_utilities(q, f_irr, need, on, allowed, challenged, back_irr),
                     precision)
    got = rules.us_log_likelihood_ratio(q, action, need, on, allowed, challenged, back_res, back_irr)
    assert got == pytest.approx(math.log(p_res[action] / p_irr[action]), rel=1e-9, abs=1e-9)
    # the likelihood ratio has expectation one under the irresolute type (Bayes' rule is consistent)
    ratios = [rules.us_log_likelihood_ratio(q, b, need, on, allowed, challenged, back_res, back_irr)
              for b in range(4 if allowed else 3)]
    assert sum(p_irr[b] * math.exp(ratios[b]) for b in range(len(ratios))) == pytest.approx(1.0, rel=1e-9)


@given(action=st.integers(0, 3), **{k: v for k, v in US_STATE.items() if k != "back_irr"})
def test_a_us_of_one_kind_tells_nothing(action, need, on, allowed, challenged, back_res):
    """When both types value responses alike (us_irresolute_factor 1) and expect to back down alike,
    no response carries information: the ratio is exactly 0."""
    assume(allowed or action != US_SURGE)
    q = record(us_irresolute_factor=1.0)
    assert rules.us_log_likelihood_ratio(q, action, need, on, allowed, challenged, back_res, back_res) == 0.0


def _llr(action, need=1.0, on=0, q=Q, challenged=False):
    """The ratio in the state the kernels use: each type's own probability of backing down."""
    f_irr = q["us_irresolute_factor"]
    return rules.us_log_likelihood_ratio(q, action, need, on, True, challenged,
                                         rules.back_down_probability(q, 1.0, float(on), True),
                                         rules.back_down_probability(q, f_irr, float(on), True))


@pytest.mark.parametrize("need", [DPRK_SEVERITY[LRBM], DPRK_SEVERITY[NUCLEAR]])
def test_directions_of_the_us_response_signal_after_a_major_provocation(need):
    """Fearon (1997) in the model's own world, after a major provocation: a surge raises the belief,
    no response lowers it, and less so with an asset on station (the US surges less then:
    us_surge_redundancy); a statement (cheap talk) moves it less than a threat."""
    for on in (0, 1):
        assert _llr(US_SURGE, need, on) > 0
        assert _llr(US_HOLD, need, on) < 0
        assert abs(_llr(US_STATEMENT, need, on)) < _llr(US_THREAT, need, on)
    assert _llr(US_HOLD, need, 0) < _llr(US_HOLD, need, 1) < 0
    # a surge is worth the same to both types when nothing calls for one
    assert _llr(US_SURGE, need=0.0) == pytest.approx(_llr(US_HOLD, need=0.0), abs=1e-12)


def test_the_audience_cost_makes_threats_informative():
    """Tied hands (Fearon 1994): with no audience cost a threat made when nothing calls for one
    (need 0) tells nothing; with one it raises the belief, by as much as the types differ in the cost
    they expect, ``a (P_irr(back down) - P_res(back down))`` (a very large cost makes both types
    follow through, and a threat tells less again). A hold while a threat binds and is challenged
    (backing down) lowers the belief more than an ordinary hold."""
    assert _llr(US_THREAT, need=0.0, q=record(us_audience_cost=0.0)) == 0.0
    for a in (0.5, 2.0, 4.0, 8.0):
        q = record(us_audience_cost=a)
        expected_cost_gap = a * (rules.back_down_probability(q, P.us_irresolute_factor, 0.0, True)
                                 - rules.back_down_probability(q, 1.0, 0.0, True))
        assert 0 < _llr(US_THREAT, need=0.0, q=q) <= expected_cost_gap, a
    assert _llr(US_HOLD, need=1.0, challenged=True) < _llr(US_HOLD, need=1.0, challenged=False)


# ---------------------------------------------------------------------- scheduled rotations
@given(s=unit, arrived=st.booleans())
def test_with_equal_skip_probabilities_a_scheduled_arrival_is_exactly_zero(s, arrived):
    assert rules.schedule_log_likelihood_ratio(arrived, s, s, BOUND) == 0.0


@given(s_res=open_unit, s_irr=open_unit)
def test_schedule_log_likelihood_ratio_by_hand(s_res, s_irr):
    """``P(deferred | type) = skip_type``: an arrival reads ``log((1 - s_res) / (1 - s_irr))``, a
    deferral ``log(s_res / s_irr)``; an irresolute US that defers more makes an arrival good news and
    a deferral bad news."""
    made = rules.schedule_log_likelihood_ratio(True, s_res, s_irr, BOUND)
    deferred = rules.schedule_log_likelihood_ratio(False, s_res, s_irr, BOUND)
    assert made == pytest.approx(np.clip(math.log((1 - s_res) / (1 - s_irr)), -BOUND, BOUND), abs=1e-12)
    assert deferred == pytest.approx(np.clip(math.log(s_res / s_irr), -BOUND, BOUND), abs=1e-12)
    if s_irr > s_res:
        assert made > 0 > deferred


@pytest.mark.parametrize("x", [-BOUND, -3.0, 0.0, 5.0, BOUND])
def test_a_deferral_only_one_type_makes_reveals_it(x):
    """Bayes: an observation one type never makes gives that type probability 0, from any belief."""
    def read(*observation):
        return rules.update_log_odds(x, rules.schedule_log_likelihood_ratio(*observation, BOUND), BOUND)

    assert read(False, 0.0, 0.3) == -BOUND
    assert read(False, 0.3, 0.0) == BOUND
    assert read(True, 0.0, 1.0) == BOUND
    assert rules.schedule_log_likelihood_ratio(True, 0.0, 0.5, BOUND) == pytest.approx(math.log(2.0))


# -------------------------------------------------------------------------- belief updates
@given(b=st.floats(0.001, 0.999),
       lrs=st.lists(st.tuples(open_unit, open_unit), min_size=1, max_size=4))
def test_update_log_odds_is_bayes_rule(b, lrs):
    """Adding log-likelihood ratios to the log-odds is Bayes' rule: the closed-form posterior
    ``b L_res / (b L_res + (1 - b) L_irr)`` applied observation by observation."""
    x, posterior = logit(b), b
    for l_res, l_irr in lrs:
        x_next = rules.update_log_odds(x, math.log(l_res) - math.log(l_irr), BOUND)
        posterior = posterior * l_res / (posterior * l_res + (1 - posterior) * l_irr)
        assume(abs(logit(posterior)) < BOUND - 1e-6)
        x = x_next
    assert expit(x) == pytest.approx(posterior, rel=1e-9, abs=1e-12)


def test_update_log_odds_is_bounded():
    assert rules.update_log_odds(0.0, 100.0, BOUND) == BOUND
    assert rules.update_log_odds(0.0, -np.inf, BOUND) == -BOUND
    assert rules.update_log_odds(3.0, 0.0, BOUND) == 3.0


@given(b=st.floats(1e-5, 1 - 1e-5), prior=unit, rho=unit)
def test_turnover_is_the_prediction_step_toward_the_prior(b, prior, rho):
    """A new administration: ``b' = (1 - rho) b + rho pi`` (Wolford 2007; Lupton 2020): the belief
    moves toward the prior by the share rho of the way, exactly."""
    out = expit(rules.turnover_log_odds(logit(b), prior, rho, BOUND))
    expected = (1 - rho) * b + rho * prior
    lo, hi = expit(-BOUND), expit(BOUND)
    assert out == pytest.approx(min(max(expected, lo), hi), rel=1e-9, abs=1e-12)
    assert abs(out - prior) <= abs(b - prior) + 1e-12


def test_turnover_ends_and_bounds():
    assert rules.turnover_log_odds(2.0, 0.3, 0.0, BOUND) == pytest.approx(2.0, abs=1e-12)
    assert rules.turnover_log_odds(2.0, 0.3, 1.0, BOUND) == pytest.approx(logit(0.3), abs=1e-12)
    assert rules.turnover_log_odds(0.0, 0.0, 1.0, BOUND) == -BOUND
    assert rules.turnover_log_odds(0.0, 1.0, 1.0, BOUND) == BOUND


def _cc(q=None, prior=0.6, on_station=False, intensity=0.0, capability=0.5):
    q = record(credibility=0.5, dprk_prior=prior) if q is None else q
    return expit(rules.current_calculus_log_odds(q, on_station, intensity, capability))


def test_current_calculus_by_hand_and_directions():
    """Press (2005): ``logit b = c0 + c_int logit(prior) + c_pres S + c_ex E - c_dec K``; the prior is
    the DPRK's, not the true share (two axes)."""
    p = ModelParams()
    q = record(credibility=0.1, dprk_prior=0.7)
    expected = expit(p.cc_intercept + p.cc_interest * logit(0.7) + p.cc_presence + p.cc_exercise * 2.0
                     - p.cc_decoupling * 0.4)
    assert _cc(q, on_station=True, intensity=2.0, capability=0.4) == pytest.approx(expected, rel=1e-12)
    priors = [0.05, 0.2, 0.5, 0.8, 0.95]
    assert all(_cc(prior=a) < _cc(prior=b) for a, b in zip(priors, priors[1:], strict=False))
    assert _cc(on_station=True) > _cc() > _cc(capability=0.9)
    assert _cc(intensity=2.0) > _cc()
    assert 0 < _cc(prior=0.0) < _cc(prior=1.0) < 1  # the prior is clipped away from 0 and 1


# ----------------------------------------------------------------------- allies' choices
def test_rok_utilities_by_hand_and_hedging():
    """Hedging below the assurance threshold (Snyder 1984), requests for assets after provocations
    when assurance is low, outreach after a talks offer at low tension."""
    p = ModelParams()
    a, tension = 0.3, 2.0
    need = DPRK_SEVERITY[LRBM]
    expected = [0.0,
                (-p.rok_strike_cost + p.rok_hedge_gain * (p.rok_hedge_threshold - a)
                 + p.rok_strike_response * need),
                -p.rok_request_cost + p.rok_request_gain * (1 - a) * need,
                -p.rok_outreach_cost - p.rok_outreach_tension_loss * tension]
    np.testing.assert_allclose(rules.rok_utilities(Q, a, LRBM, tension), expected, rtol=1e-12)
    strike = [rules.rok_utilities(Q, x, RESTRAINT, 2.0)[1] for x in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert strike[0] > strike[1] > strike[2] == strike[3] == strike[4]  # flat above the threshold
    request = [rules.rok_utilities(Q, x, LRBM, 2.0)[ROK_REQUEST] for x in (0.2, 0.8)]
    assert request[0] > request[1]
    assert rules.rok_utilities(Q, 0.5, TALKS, 1.0)[3] > rules.rok_utilities(Q, 0.5, RESTRAINT, 1.0)[3]


def test_japan_utilities_by_hand():
    p = ModelParams()
    a = 0.4
    for action in range(7):
        need = DPRK_SEVERITY[action]
        expected = [0.0, -p.japan_protest_cost + p.japan_protest_gain * need,
                    -p.japan_alert_cost + p.japan_alert_gain * (action == LRBM),
                    -p.japan_trilateral_cost + p.japan_trilateral_gain * need
                    + p.japan_trilateral_assurance_gain * (1 - a)]
        np.testing.assert_allclose(rules.japan_utilities(Q, a, action), expected, rtol=1e-12)


# ------------------------------------------------------------------- capability and salvos
@given(k=unit, action=st.integers(0, 6), learning=unit, nuclear=unit)
def test_capability_step_by_hand(k, action, learning, nuclear):
    gain = learning * (action == LRBM) + nuclear * (action == NUCLEAR)
    out = rules.capability_step(k, action, learning, nuclear)
    assert out == pytest.approx(k + gain * (1 - k), abs=1e-15)
    assert k - 1e-15 <= out <= 1.0


def test_negative_binomial_quantile_is_scipys():
    """Seed 17, 20,000 (u, mean) pairs per size, u uniform, means uniform in [0, 30]: every quantile
    equals ``scipy.stats.nbinom.ppf(u, size, size / (size + mean))``."""
    rng = np.random.default_rng(17)
    for size in (0.01, 0.5, 3.0, 50.0):
        u, mean = rng.random(20_000), rng.uniform(0.0, 30.0, 20_000)
        got = np.array([rules.negative_binomial_quantile(a, m, size, rules.MAX_QUANTILE_TERMS)
                        for a, m in zip(u, mean, strict=True)])
        expected = stats.nbinom.ppf(u, size, size / (size + mean))
        assert got.max() > 10  # the recursion ran many terms, not just k = 0
        np.testing.assert_array_equal(got, expected, err_msg=f"size {size}")
    assert rules.negative_binomial_quantile(0.0, 3.0, 0.5, rules.MAX_QUANTILE_TERMS) == 0
    assert rules.negative_binomial_quantile(0.999, 1e6, 0.5, 7) == 7  # stops at max_terms


def test_the_largest_uniform_below_one_does_not_reach_the_cap():
    """``Generator.random()`` can return 1 - 2^-53; the summed cdf never reaches it, so the draw must
    end where the cdf stops growing (about 226 here, scipy's quantile), not at the 10,000 cap."""
    u = float(np.nextafter(1.0, 0.0))
    assert rules.negative_binomial_quantile(u, 3.0, 0.5, rules.MAX_QUANTILE_TERMS) < 1_000


@given(u=st.floats(0.0, 0.999999), tension=st.floats(0.0, 30.0))
def test_salvo_size_is_one_plus_the_negative_binomial_at_the_tension_mean(u, tension):
    mean = P.salvo_extra * (1 + P.salvo_tension_gain * tension)
    size = P.salvo_dispersion
    expected = 1 + max(stats.nbinom.ppf(u, size, size / (size + mean)), 0)
    assert rules.salvo_size(u, tension, Q, 1, rules.MAX_QUANTILE_TERMS) == expected


def test_salvos_grow_with_tension():
    """The mean salvo is 1 + salvo_extra (1 + gain T): computed exactly from the quantile function on
    a fine grid of u (midpoints of 200,000 equal slices)."""
    u = (np.arange(200_000) + 0.5) / 200_000
    means = [np.mean([rules.salvo_size(x, t, Q, 1, rules.MAX_QUANTILE_TERMS) for x in u[::50]])
             for t in (0.0, 10.0, 30.0)]
    assert means[0] < means[1] < means[2]
    for t, m in zip((0.0, 10.0, 30.0), means, strict=True):
        assert m == pytest.approx(1 + P.salvo_extra * (1 + P.salvo_tension_gain * t), rel=0.05)


# ----------------------------------------------------------------------- presence, assurance
def test_habituation_is_exp_minus_weeks_over_the_habituation_time():
    w = np.arange(200.0)
    h = np.array([rules.habituation(x, 26.0) for x in w])
    np.testing.assert_allclose(h, np.exp(-w / 26.0), rtol=1e-12)
    assert h[0] == 1.0 and np.all(np.diff(h) < 0)
    assert all(rules.habituation(x, 5.0) < rules.habituation(x, 26.0) for x in w[1:])


@given(a=unit, gain=st.floats(0.0, 3.0), shock=st.floats(0.0, 3.0), anchor=st.floats(-1.0, 1.0),
       reversion=unit)
def test_assurance_step_by_hand_and_in_the_unit_interval(a, gain, shock, anchor, reversion):
    x = a + min(gain, 1) * (1 - a)
    x = x - min(shock, 1) * x
    x = x + reversion * (anchor - x)
    out = rules.assurance_step(a, gain, shock, anchor, reversion)
    assert out == pytest.approx(min(max(x, 0.0), 1.0), abs=1e-12)
    assert 0.0 <= out <= 1.0


@given(a=unit, g1=unit, g2=unit, anchor=unit, reversion=unit)
def test_assurance_rises_with_the_signal_gain(a, g1, g2, anchor, reversion):
    lo, hi = sorted((g1, g2))
    assert rules.assurance_step(a, hi, 0.0, anchor, reversion) >= rules.assurance_step(a, lo, 0.0, anchor,
                                                                                       reversion) - 1e-12


def test_pressure_step_by_hand():
    p = ModelParams()
    expected = (p.pressure_memory * 2.0 + p.pressure_exercise * 1.5 + p.pressure_asset + p.pressure_surge
                + p.pressure_threat + p.pressure_strike_drill + p.pressure_trilateral)
    assert rules.pressure_step(Q, 2.0, 1.5, True, True, True, True, True) == pytest.approx(expected)
    assert rules.pressure_step(Q, 2.0, 0.0, False, False, False, False, False) == pytest.approx(
        p.pressure_memory * 2.0)


# ----------------------------------------------------------------------- tension and clashes
def test_tension_impulse_by_hand():
    p = ModelParams()
    own = {RESTRAINT: 0.0, TALKS: p.tension_talks, RHETORIC: p.tension_rhetoric, SRBM: p.tension_srbm,
           LRBM: p.tension_lrbm, NUCLEAR: p.tension_nuclear, BORDER: p.tension_border}
    for action, value in own.items():
        impulse = rules.tension_impulse(Q, action, 0, 0.0, False, False, False, False, False)
        assert impulse == pytest.approx(value)
    signals = (p.tension_per_missile * 3 + p.tension_exercise * 2.0 + p.tension_deploy + p.tension_threat
               + p.tension_strike_drill + p.tension_outreach + p.tension_trilateral)
    assert rules.tension_impulse(Q, SRBM, 3, 2.0, True, True, True, True, True) == pytest.approx(
        p.tension_srbm + signals)


@given(t=st.floats(0.0, 100.0), impulse=st.floats(-50.0, 50.0), decay=unit)
def test_tension_step_decays_and_stays_non_negative(t, impulse, decay):
    assert rules.tension_step(t, impulse, decay) == pytest.approx(max(decay * t + impulse, 0.0), abs=1e-12)


@given(intercept=st.floats(-15, 0), slope=st.floats(0.01, 2.0), t1=st.floats(0, 50), t2=st.floats(0, 50))
def test_clash_probability_rises_with_tension(intercept, slope, t1, t2):
    """Schelling (1960, ch. 8): the risk of losing control rises with tension; ``expit(a + b T)``."""
    lo, hi = sorted((t1, t2))
    assert rules.clash_probability(hi, intercept, slope) >= rules.clash_probability(lo, intercept, slope)
    assert rules.clash_probability(t1, intercept, slope) == pytest.approx(expit(intercept + slope * t1),
                                                                          rel=1e-12)


# -------------------------------------------------------------------------- launch days (issue 12)
@pytest.mark.parametrize("n, p", [(6, 0.02), (6, 0.3), (6, 0.9), (1, 0.5)])
def test_binomial_quantile_is_scipys(n, p):
    """Inverse-CDF sampling gives scipy's binomial quantile at every uniform."""
    u = np.random.default_rng(5).random(20_000)
    got = np.array([rules.binomial_quantile(float(x), n, p) for x in u])
    np.testing.assert_array_equal(got, stats.binom.ppf(u, n, p).astype(int))


def test_binomial_quantile_ends():
    assert rules.binomial_quantile(0.99, 6, 0.0) == 0
    assert rules.binomial_quantile(0.01, 6, 1.0) == 6
    assert rules.binomial_quantile(1.0 - 2.0**-53, 6, 0.3) == 6


def test_launch_days_rise_with_tension_and_stay_in_a_week():
    q = record(launch_day_intercept=-2.0, launch_day_tension_gain=0.3)
    u = np.random.default_rng(8).random(5_000)
    calm = np.array([rules.launch_days(float(x), 0.0, q) for x in u])
    tense = np.array([rules.launch_days(float(x), 10.0, q) for x in u])
    assert calm.min() >= 1 and tense.max() <= 7
    assert tense.mean() > calm.mean() + 0.5  # expit(1) vs expit(-2): about 4.4 vs 1.7 days


def test_missiles_over_launch_days_sum_each_days_salvo():
    """A week's missiles over d launch days have the law of d independent days' salvos: mean
    d (1 + extra) and the negative binomial's variance d extra (1 + extra / size)."""
    q = record(salvo_extra=1.2, salvo_tension_gain=0.0, salvo_dispersion=0.7)
    u = np.random.default_rng(9).random(40_000)
    for days in (1, 3):
        m = np.array([rules.salvo_size(float(x), 0.0, q, days, rules.MAX_QUANTILE_TERMS) for x in u])
        assert m.min() >= days
        assert m.mean() == pytest.approx(days * 2.2, rel=0.03)
        assert m.var() == pytest.approx(days * 1.2 * (1 + 1.2 / 0.7), rel=0.08)
