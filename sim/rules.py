"""The model's behavioural rules, each written once, and the weekly kernels that apply them.

Part 1 holds the rules as scalar functions of one replication's state and the parameters ``q`` (one
record of :func:`param_table`), each with its source. They are compiled by numba and callable from
Python as they are, so ``tests/test_rules.py`` tests each rule directly. Part 2 holds the kernels: the
loops that apply the rules to every replication of a week, one phase at a time (the DPRK's choice
and salvo, the US response and its reading by the DPRK, the ROK and Japan, beliefs and assurance,
escalation). The Mesa agents (:mod:`sim.agents`) own the state and the random streams and call the
kernels; no equation is written anywhere else.

Everything compiled for behaviour lives in this one file on purpose: numba's on-disk cache
(``cache=True``) is keyed on the file of each compiled function, so a rule kept in another module
could change while the kernels that inline it stay cached. The run-time constants (the log-odds bound,
the quantile cap) reach the kernels as arguments, because numba freezes a global's value into the
compiled code, where a change made from outside (a test, a user) would never reach it.

Parameters reach a kernel as a record array ``pt`` with one record per batch block; replication ``i``
belongs to block ``i // r`` and reads the pre-drawn random numbers at ``i % r`` (common random
numbers across the blocks of a batch).
"""

from __future__ import annotations

import dataclasses
import math
from collections import namedtuple

import numpy as np

from . import kernel_cache

kernel_cache.prepare()  # before numba loads: the portable target and the shipped compiled kernels

from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

from .params import ModelParams  # noqa: E402

LOGIT_BOUND = 12.0  # beliefs are kept in [expit(-12), expit(12)] ~ [6e-6, 1 - 6e-6]
MAX_QUANTILE_TERMS = 10_000  # a salvo draw stops here (10,000 missiles: never reached at sane means)

# Action codes (the vocabularies are in sim.agents; their order is part of the output schema).
RESTRAINT, TALKS, RHETORIC, SRBM, LRBM, NUCLEAR, BORDER = range(7)
US_HOLD, US_STATEMENT, US_THREAT, US_SURGE = range(4)
ROK_HOLD, ROK_STRIKE, ROK_REQUEST, ROK_OUTREACH = range(4)
JP_HOLD, JP_PROTEST, JP_ALERT, JP_TRILATERAL = range(4)
# Severity of each DPRK action as the allies see it: how strongly it calls for a response. Ordered like
# the escalation ladder; long-range launches, nuclear tests and border incidents are 'major' (>= 1).
DPRK_SEVERITY = np.array([0.0, 0.0, 0.2, 0.5, 1.0, 1.5, 1.5])
MAJOR_SEVERITY = 1.0
# Escalation ladder rung reached by each DPRK action (Kahn 1965 in spirit; sim.agents.RUNGS).
DPRK_RUNG = np.array([0, 0, 1, 2, 2, 3, 4], dtype=np.int8)

# Numeric ModelParams fields, one column each of the parameter table (enums stay out: they select
# code paths and are the same for every block).
PARAM_FIELDS = tuple(f.name for f in dataclasses.fields(ModelParams)
                     if f.name not in ("credibility_rule", "perception"))
# Per-block settings that are not ModelParams: the true share of resolute US, the DPRK's prior.
BLOCK_FIELDS = ("credibility", "dprk_prior")

# One block's parameters as a named tuple, a value the compiler keeps in registers. A record of the
# table is a pointer into memory that the kernels' stores might alias, so the compiled loops re-read
# every field for every replication; with the tuple the DPRK's utilities ran 30 % faster (126 ->
# 88 us per week at R = 10,000). The kernels call ``q = block_params(pt[b])``; the rules read ``q.x``
# from either. Generated from the fields, so that it cannot fall out of step with the table.
BlockParams = namedtuple("BlockParams", PARAM_FIELDS + BLOCK_FIELDS)
_source = ("def block_params(record):\n    return BlockParams("
           + ", ".join(f"record.{name}" for name in BlockParams._fields) + ")\n")
_namespace = {"BlockParams": BlockParams}
exec(compile(_source, "<sim.rules.block_params>", "exec"), _namespace)  # noqa: S102 - fixed text, above
block_params = njit(error_model="numpy")(_namespace["block_params"])


def param_table(params: ModelParams, blocks: int, overrides: dict[str, np.ndarray],
                credibility, dprk_prior) -> np.ndarray:
    """One record of the numeric ``ModelParams`` (and the block's credibility and prior) per batch
    block; ``overrides`` gives per-block values of ModelParams fields."""
    table = np.zeros(blocks, dtype=[(name, "f8") for name in PARAM_FIELDS + BLOCK_FIELDS])
    for name in PARAM_FIELDS:
        table[name] = overrides[name] if name in overrides else getattr(params, name)
    table["credibility"] = credibility
    table["dprk_prior"] = dprk_prior
    return table


# =============================================================================== part 1: rules
@njit(cache=True, error_model="numpy")
def expit(x):
    """The logistic function ``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, error_model="numpy")
def logit(p):
    """``log(p / (1 - p))``, the inverse of :func:`expit`."""
    return math.log(p / (1.0 - p))


@njit(cache=True, error_model="numpy")
def quantal_shift4(u0, u1, u2, u3, precision):
    """Logit quantal response (McKelvey & Palfrey 1995) before its exponential, four actions.

    ``P(a) = exp(lambda U_a) / sum_b exp(lambda U_b)``; this returns ``lambda U_a - max_b lambda U_b``,
    so that ``exp`` of it are unnormalised probabilities in (0, 1]. ``precision`` (lambda) = 0 gives
    uniform play over the available actions; ``-inf`` marks an unavailable action (probability 0).
    """
    if precision > 0:
        u0, u1, u2, u3 = precision * u0, precision * u1, precision * u2, precision * u3
    else:
        u0 = -np.inf if u0 == -np.inf else 0.0
        u1 = -np.inf if u1 == -np.inf else 0.0
        u2 = -np.inf if u2 == -np.inf else 0.0
        u3 = -np.inf if u3 == -np.inf else 0.0
    top = max(max(u0, u1), max(u2, u3))
    return u0 - top, u1 - top, u2 - top, u3 - top


@njit(cache=True, error_model="numpy")
def quantal_probability4(u0, u1, u2, u3, precision, action):
    """Probability that a quantal responder with utilities ``u0..u3`` picks ``action``."""
    z0, z1, z2, z3 = quantal_shift4(u0, u1, u2, u3, precision)
    e0, e1, e2, e3 = math.exp(z0), math.exp(z1), math.exp(z2), math.exp(z3)
    chosen = e0 if action == 0 else (e1 if action == 1 else (e2 if action == 2 else e3))
    return chosen / (e0 + e1 + e2 + e3)


@njit(cache=True, error_model="numpy")
def dprk_utilities(q, belief, on_station, pressure, tension, outreach, drive, diplomacy, moratorium):
    """Expected utility of the DPRK's seven actions (restraint, talks, rhetoric, SRBM, LRBM, nuclear
    test, border incident).

    ``U_a = -c_a + drive d_a - pi_a b (1 + delta S) (1 + (1 - w) g_d P) + w g_s P sigma_a``, and for
    talks ``+ g_o outreach + g_dip diplomacy - l_T T``; ``b`` is the belief that the US is resolute,
    ``S`` an asset on station, ``P`` allied military pressure, ``sigma_a`` the action's severity
    (:data:`DPRK_SEVERITY`), ``w`` the spiral weight.

    * Deterrence by punishment: the expected cost of an action is the belief times its punishment
      (Schelling 1966; Huth 1999), raised by forces at hand (``delta``; Fuhrmann & Sechser 2014 find
      the effect of stationing small).
    * Deterrence vs spiral (Jervis 1976, ch. 3): allied pressure raises expected punishment (the
      deterrence model, weight 1 - w) and the value of showing resolve by provoking (the spiral
      model, weight w; Bernhardt & Sukin 2021 find exercise-linked aggression, Cha, Lee & Lim 2016
      little).
    * Tests have development value under the regime's weapons plan (the exogenous ``drive`` of the
      scenario and its eras); talks gain in eras of summitry (``diplomacy``), after allied outreach,
      and lose at high tension; an era's declared moratorium makes the nuclear test unavailable.
    """
    w = q.spiral_weight
    scale = (belief * (1.0 + q.presence_deterrence * on_station)
             * (1.0 + (1.0 - w) * q.deterrence_gain * pressure))
    spiral = w * q.spiral_gain * pressure
    talks = (-q.dprk_cost_talks + q.dprk_talks_outreach_gain * outreach
             + q.dprk_talks_diplomacy_gain * diplomacy - q.dprk_talks_tension_loss * tension)
    rhetoric = -q.dprk_cost_rhetoric - q.dprk_punish_rhetoric * scale + DPRK_SEVERITY[RHETORIC] * spiral
    srbm = (-q.dprk_cost_srbm + drive * q.dprk_dev_srbm - q.dprk_punish_srbm * scale
            + DPRK_SEVERITY[SRBM] * spiral)
    lrbm = (-q.dprk_cost_lrbm + drive * q.dprk_dev_lrbm - q.dprk_punish_lrbm * scale
            + DPRK_SEVERITY[LRBM] * spiral)
    if moratorium:
        nuclear = -np.inf
    else:
        nuclear = (-q.dprk_cost_nuclear + drive * q.dprk_dev_nuclear - q.dprk_punish_nuclear * scale
                   + DPRK_SEVERITY[NUCLEAR] * spiral)
    border = -q.dprk_cost_border - q.dprk_punish_border * scale + DPRK_SEVERITY[BORDER] * spiral
    return 0.0, talks, rhetoric, srbm, lrbm, nuclear, border


@njit(cache=True, error_model="numpy")
def us_need(dprk_action, rok_request, request_weight):
    """The US's need to respond: the severity of this week's DPRK action plus ``request_weight`` if
    the ROK asked for assets last week (Yonhap, 1 Feb 2017; Korea Times, 3 Feb 2017)."""
    return DPRK_SEVERITY[dprk_action] + request_weight * rok_request


@njit(cache=True, error_model="numpy")
def us_response_utilities(q, type_factor, need, on_station, surge_allowed, challenged, back_down_expected):
    """Utility of hold, statement, threat and surge for a US of the given type.

    ``U_statement = g_st N - c_st``, ``U_threat = f g_th N - c_th - a E[back down]``,
    ``U_surge = f g_su N - c_su - r S`` (unavailable under the ``none`` posture), where ``N`` is the
    need to respond (:func:`us_need`) and ``f`` is 1 for a resolute US and ``us_irresolute_factor``
    otherwise: a resolute US values costly responses more, which is what makes them informative
    (Fearon 1997); statements cost little and both types make them alike (cheap talk).

    Tied hands (Fearon 1994): a threat binds for ``us_threat_window_weeks``; when the DPRK commits a
    major provocation while it binds (``challenged``), any response short of a surge is backing down
    and costs the audience cost ``a`` (hold, statement, and a new threat alike). A US that threatens
    expects to pay it with its own probability of backing down when challenged
    (``back_down_expected``, :func:`back_down_probability`), so an irresolute US, which backs down
    more, threatens less. A surge is worth less when an asset is already on station (``r``: the
    second asset adds less; a stylised assumption of diminishing returns, no study estimates it).
    """
    cost = q.us_audience_cost if challenged else 0.0
    statement = q.us_statement_gain * need - q.us_statement_cost - cost
    threat = (type_factor * q.us_threat_gain * need - q.us_threat_cost - cost
              - q.us_audience_cost * back_down_expected)
    if surge_allowed:
        surge = type_factor * q.us_surge_gain * need - q.us_surge_cost - q.us_surge_redundancy * on_station
    else:
        surge = -np.inf
    return -cost, statement, threat, surge


@njit(cache=True, error_model="numpy")
def back_down_probability(q, type_factor, on_station, surge_allowed):
    """Probability that a US of this type backs down when a threat of its binds and the DPRK answers
    with a major provocation (need ``MAJOR_SEVERITY``): one minus its quantal-response probability of
    a surge in that state (Fearon 1994; the expectation is taken one step ahead, with no further
    anticipation inside it)."""
    u0, u1, u2, u3 = us_response_utilities(q, type_factor, MAJOR_SEVERITY, on_station, surge_allowed,
                                           True, 0.0)
    return 1.0 - quantal_probability4(u0, u1, u2, u3, q.us_precision, US_SURGE)


@njit(cache=True, error_model="numpy")
def us_log_likelihood_ratio(q, action, need, on_station, surge_allowed, challenged, back_down_resolute,
                            back_down_irresolute):
    """What a US response tells the DPRK: ``log P(action | resolute) - log P(action | irresolute)``.

    Both probabilities are the model's own quantal-response probabilities
    (:func:`us_response_utilities`) in the state the US chose in, which the DPRK sees (its own action,
    the ROK's public request, assets on station, the posture, a binding threat). A Bayesian DPRK that
    adds this to its log-odds holds beliefs that are calibrated in the model's world (Bayes' rule;
    Fearon 1997: a response an irresolute US rarely makes moves the belief, cheap talk barely does).
    """
    r0, r1, r2, r3 = us_response_utilities(q, 1.0, need, on_station, surge_allowed, challenged,
                                           back_down_resolute)
    i0, i1, i2, i3 = us_response_utilities(q, q.us_irresolute_factor, need, on_station, surge_allowed,
                                           challenged, back_down_irresolute)
    p_res = quantal_probability4(r0, r1, r2, r3, q.us_precision, action)
    p_irr = quantal_probability4(i0, i1, i2, i3, q.us_precision, action)
    return math.log(p_res) - math.log(p_irr)


@njit(cache=True, error_model="numpy")
def rok_utilities(q, assurance, dprk_action, tension):
    """Utility of the ROK's hold, own strike drill, request for US assets and outreach.

    ``U_strike = -c + h max(0, A* - A) + g N``: hedging by its own strike capability when assurance
    ``A`` falls below ``A*`` (abandonment fear, Snyder 1984); ``U_request = -c + g (1 - A) N``: Seoul
    asks for assets (Yonhap, 1 Feb 2017; Korea Times, 3 Feb 2017); ``U_outreach = -c + g [talks] -
    l T``: engagement when the DPRK offers talks and tension is low. ``N`` is the DPRK action's severity.
    """
    need = DPRK_SEVERITY[dprk_action]
    strike = (-q.rok_strike_cost + q.rok_hedge_gain * max(q.rok_hedge_threshold - assurance, 0.0)
              + q.rok_strike_response * need)
    request = -q.rok_request_cost + q.rok_request_gain * (1.0 - assurance) * need
    outreach = (-q.rok_outreach_cost + q.rok_outreach_talks_gain * (dprk_action == TALKS)
                - q.rok_outreach_tension_loss * tension)
    return 0.0, strike, request, outreach


@njit(cache=True, error_model="numpy")
def japan_utilities(q, assurance, dprk_action):
    """Utility of Japan's hold, protest, missile alert and trilateral drill.

    ``U_protest = -c + g N``; ``U_alert = -c + g [long-range launch]`` (J-Alert after launches that
    threaten or overfly Japan); ``U_trilateral = -c + g N + g_A (1 - A)``: trilateral drills with the
    US and ROK (EFE, 31 Jan 2023), sought more when assurance is low (Snyder 1984).
    """
    need = DPRK_SEVERITY[dprk_action]
    protest = -q.japan_protest_cost + q.japan_protest_gain * need
    alert = -q.japan_alert_cost + q.japan_alert_gain * (dprk_action == LRBM)
    trilateral = (-q.japan_trilateral_cost + q.japan_trilateral_gain * need
                  + q.japan_trilateral_assurance_gain * (1.0 - assurance))
    return 0.0, protest, alert, trilateral


@njit(cache=True, error_model="numpy")
def capability_step(capability, dprk_action, learning, learning_nuclear):
    """Learning by testing: each long-range launch or nuclear test closes a share of the gap to full
    long-range capability, ``K += gain (1 - K)`` (the DPRK's programme advanced through testing,
    2016-17; Yonhap, 1 Feb 2017)."""
    gain = learning * (dprk_action == LRBM) + learning_nuclear * (dprk_action == NUCLEAR)
    return capability + gain * (1.0 - capability)


@njit(cache=True, error_model="numpy")
def negative_binomial_quantile(u, mean, size, max_terms):
    """Smallest k with ``P(X <= k) >= u`` for ``X ~ NegBin(size, mean)``, stopping after ``max_terms``.

    Exact inverse-CDF sampling, summing the pmf upwards from ``P(0) = (size / (size + mean))^size``
    with ``P(k + 1) = P(k) (k + size) / (k + 1) * mean / (size + mean)``.
    """
    ratio = mean / (size + mean)
    pmf = math.exp(-min(size * math.log1p(mean / size), 700.0))  # exp(-700) > 0
    if not pmf < u:
        return 0
    cdf = pmf
    j = 0
    while j < max_terms:
        pmf = pmf * ((j + size) / (j + 1)) * ratio
        j += 1
        grown = cdf + pmf
        if not (grown < u and grown > cdf):  # reached u, or the cdf no longer grows (u within rounding of 1)
            return j
        cdf = grown
    return j


@njit(cache=True, error_model="numpy")
def binomial_quantile(u, n, p):
    """Smallest k with ``P(X <= k) >= u`` for ``X ~ Binomial(n, p)``: exact inverse-CDF sampling,
    summing the pmf upwards from ``P(0) = (1 - p)^n``, ``P(k + 1) = P(k) (n - k) / (k + 1) p / (1 - p)``."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    ratio = p / (1.0 - p)
    pmf = (1.0 - p) ** n
    cdf = pmf
    k = 0
    while k < n and cdf < u:
        pmf = pmf * ((n - k) / (k + 1)) * ratio
        grown = cdf + pmf
        k += 1
        if not grown > cdf:  # the cdf no longer grows (u within rounding of 1)
            break
        cdf = grown
    return k


@njit(cache=True, error_model="numpy")
def launch_days(u, tension, q):
    """Launch days in a week the DPRK launches: ``1 + Binomial(6, p)``, ``p = expit(a + b T)``.

    The record counts launch days, and a busy week holds several: 34 launch days fell in 24 launch
    weeks in 2022, 14 in 12 in 2019, 20 in 17 in 2023, one a week in 2016-17 (data/events.csv,
    whose counts follow the CNS North Korea Missile Test Database; data/README.md). More of them
    come when tension is high (``b``, the competition in risk taking; Schelling 1966). Drawn by
    inverse CDF from one uniform pre-drawn for every replication each week (common random numbers).
    """
    p = expit(q.launch_day_intercept + q.launch_day_tension_gain * tension)
    return 1 + binomial_quantile(u, 6, p)


@njit(cache=True, error_model="numpy")
def salvo_size(u, tension, q, days, max_terms):
    """Missiles over ``days`` launch days: each day fires ``1 + NegBin(size=dispersion,
    mean=extra (1 + gain T))``, so the week fires ``days + NegBin(days dispersion, days mean)`` (a
    sum of independent negative binomials with one success probability is negative binomial).

    Heavy-tailed for a small ``dispersion``: most launch days fire one or two missiles, a few fire a
    barrage (more than 20 on 2 Nov 2022; Korea JoongAng Daily, 2 Nov 2022), more often when tension is
    high. Drawn by inverse CDF from one uniform pre-drawn for every replication each week, whether or
    not it launches (common random numbers across parameters and policies).
    """
    mean = q.salvo_extra * (1.0 + q.salvo_tension_gain * tension)
    return days + negative_binomial_quantile(u, days * mean, days * q.salvo_dispersion, max_terms)


@njit(cache=True, error_model="numpy")
def habituation(weeks_on_station, habituation_weeks):
    """Weight of a continuing presence as a signal to a misperceiving DPRK: ``exp(-w / h)`` after ``w``
    weeks on station. A presence sinks no new cost as it becomes the status quo (Fearon 1997;
    Fuhrmann & Sechser 2014: stationing adds little); the count restarts only after a week with
    nothing on station, so back-to-back rotations habituate like a permanent presence."""
    return math.exp(-weeks_on_station / habituation_weeks)


@njit(cache=True, error_model="numpy")
def update_log_odds(log_odds, evidence, logit_bound):
    """Bayes' rule in log-odds: ``x' = x + sum of the week's log-likelihood ratios`` (independent
    observations multiply their likelihoods), kept within +/- ``logit_bound`` so that beliefs stay
    strictly inside (0, 1)."""
    return min(max(log_odds + evidence, -logit_bound), logit_bound)


@njit(cache=True, error_model="numpy")
def turnover_log_odds(log_odds, prior, turnover, logit_bound):
    """The DPRK's belief across a change of US administration: ``b' = (1 - rho) b + rho pi``.

    With probability ``rho`` (``us_type_turnover``) a new administration's resolve is drawn afresh
    from the prior ``pi``; otherwise it is the old one (reputations for resolve attach to leaders:
    Wolford 2007; Lupton 2020). This is the exact Bayesian prediction step of that change, so a DPRK
    whose prior is the true share stays calibrated.
    """
    b = expit(log_odds)
    b = (1.0 - turnover) * b + turnover * prior
    return min(max(logit(b), -logit_bound), logit_bound)


@njit(cache=True, error_model="numpy")
def schedule_log_likelihood_ratio(arrived, skip_resolute, skip_irresolute, logit_bound):
    """What a due rotation tells the DPRK, which knows the schedule: ``log P(obs | resolute) -
    log P(obs | irresolute)`` with ``P(deferred | type) = skip_type``. Exactly 0 when both types keep
    the schedule alike (a scheduled arrival is then no signal of resolve); a deferral that only one
    type ever makes reveals it (+/- twice ``logit_bound``, so that :func:`update_log_odds` lands on the
    bound from any belief)."""
    p_resolute = 1.0 - skip_resolute if arrived else skip_resolute
    p_irresolute = 1.0 - skip_irresolute if arrived else skip_irresolute
    if p_resolute == p_irresolute:
        return 0.0
    if p_resolute == 0.0:  # only the irresolute type does this: certainty, whatever the belief was
        return -2.0 * logit_bound
    if p_irresolute == 0.0:
        return 2.0 * logit_bound
    x = math.log(p_resolute) - math.log(p_irresolute)
    return min(max(x, -logit_bound), logit_bound)


@njit(cache=True, error_model="numpy")
def current_calculus_log_odds(q, on_station, exercise_intensity, capability):
    """Belief from capability and interest now, not past behaviour (Press 2005, *Calculating
    Credibility*): ``logit b = c0 + c_int logit(pi) + c_pres S + c_ex E - c_dec K``: the US stake as
    the DPRK sees it (its prior ``pi``), forces at hand, exercises, and its own long-range capability
    ``K``, which makes defending Seoul riskier for Washington (decoupling)."""
    prior = min(max(q.dprk_prior, 1e-4), 1.0 - 1e-4)
    return (q.cc_intercept + q.cc_interest * logit(prior) + q.cc_presence * on_station
            + q.cc_exercise * exercise_intensity - q.cc_decoupling * capability)


@njit(cache=True, error_model="numpy")
def assurance_step(assurance, gain, shock, anchor, reversion):
    """One week of allied assurance (Snyder 1984: the alliance's second audience; decoupling).

    Signals close part of the gap to full assurance (``A += g (1 - A)``), long-range or nuclear tests
    remove a share of it (``A -= s A``), and it reverts towards an anchor that falls with DPRK
    long-range capability. Stays in [0, 1] for gains and shocks in [0, 1].
    """
    a = assurance + min(gain, 1.0) * (1.0 - assurance)
    a = a - min(shock, 1.0) * a
    a = a + reversion * (anchor - a)
    return min(max(a, 0.0), 1.0)


@njit(cache=True, error_model="numpy")
def pressure_step(q, pressure, exercise_intensity, on_station, surge_arrival, threat, strike_drill,
                  trilateral):
    """Allied military pressure as the DPRK feels it: last week's, retained at ``pressure_memory``,
    plus this week's exercises, assets on station, a surge's arrival, a public threat, a ROK strike
    drill and a trilateral drill (the pressure that feeds deterrence and the spiral: Jervis 1976)."""
    return (q.pressure_memory * pressure + q.pressure_exercise * exercise_intensity
            + q.pressure_asset * on_station + q.pressure_surge * surge_arrival
            + q.pressure_threat * threat + q.pressure_strike_drill * strike_drill
            + q.pressure_trilateral * trilateral)


@njit(cache=True, error_model="numpy")
def pressure_at_move(q, pressure, exercise_intensity, on_station):
    """The part of this week's allied pressure (:func:`pressure_step`) the DPRK knows when it moves:
    last week's, retained at ``pressure_memory``, plus this week's combined exercise and the assets
    on station at the start of the week. Exercises are announced before they start (Combined Forces
    Command / USFK announcements, data/events.csv) and the DPRK answers them while they run: launch
    days fell during Key Resolve/Foal Eagle in March 2016 and 2017 and during Vigilant Storm on 2, 3
    and 5 Nov 2022 (data/events.csv), so an exercise weighs on the week it is held, not a week later.
    The week's surges, threats and drills come after the DPRK's move and count from the next week."""
    return (q.pressure_memory * pressure + q.pressure_exercise * exercise_intensity
            + q.pressure_asset * on_station)


@njit(cache=True, error_model="numpy")
def tension_impulse(q, dprk_action, missiles, exercise_intensity, arrival, threat, strike_drill, outreach,
                    trilateral):
    """Tension added this week: each side's provocations and threatening signals add to it,
    reassurance (talks, outreach) subtracts (the competition in risk taking, Schelling 1966; the
    spiral, Jervis 1976)."""
    return tension_impulse_from(q, tension_own(q, dprk_action), missiles, exercise_intensity, arrival, threat,
                                strike_drill, outreach, trilateral)


@njit(cache=True, error_model="numpy")
def tension_own(q, dprk_action):
    """The tension a DPRK action adds by itself, the first term of :func:`tension_impulse` (the
    competition in risk taking, Schelling 1966; the spiral, Jervis 1976). The kernels look it up in a
    table of the seven actions, made once per block, instead of branching on the action."""
    if dprk_action == TALKS:
        own = q.tension_talks
    elif dprk_action == RHETORIC:
        own = q.tension_rhetoric
    elif dprk_action == SRBM:
        own = q.tension_srbm
    elif dprk_action == LRBM:
        own = q.tension_lrbm
    elif dprk_action == NUCLEAR:
        own = q.tension_nuclear
    elif dprk_action == BORDER:
        own = q.tension_border
    else:
        own = 0.0
    return own


@njit(cache=True, error_model="numpy")
def tension_impulse_from(q, own, missiles, exercise_intensity, arrival, threat, strike_drill, outreach,
                         trilateral):
    """:func:`tension_impulse` given the DPRK action's own tension (:func:`tension_own`): the other
    side's signals and reassurance added to it in the same order (Schelling 1966; Jervis 1976)."""
    return (own + q.tension_per_missile * missiles + q.tension_exercise * exercise_intensity
            + q.tension_deploy * arrival + q.tension_threat * threat
            + q.tension_strike_drill * strike_drill + q.tension_outreach * outreach
            + q.tension_trilateral * trilateral)


@njit(cache=True, error_model="numpy")
def tension_step(tension, impulse, decay):
    """``T' = max(0, decay T + impulse)``: tension with exponential decay."""
    return max(decay * tension + impulse, 0.0)


@njit(cache=True, error_model="numpy")
def clash_probability(tension, intercept, slope):
    """Weekly chance of an unintended kinetic clash (and of a clash becoming war), ``expit(a + b T)``:
    Schelling's 'threat that leaves something to chance' (1960, ch. 8; 1966): the risk of losing
    control rises with tension even when no side chooses to fight."""
    return expit(intercept + slope * tension)


# ============================================================================= part 2: kernels
# The kernels the model calls from Python (the rules above are compiled into them). progress.py checks
# numba's cache for these; tests/test_progress.py checks that the list names every kernel sim/ calls.
KERNELS = ("quantal_draw", "dprk_week_utilities", "dprk_act", "us_block_tables", "us_week_weights", "us_act",
           "rotation_due", "new_administration", "rok_week_utilities", "japan_week_utilities",
           "current_calculus_belief", "beliefs_week", "escalation_week", "week_begin", "week_end")


# Constants of exp_in_place: log2(e), ln 2 split in a high part exact in 42 bits and the rest (Cody and
# Waite 1980), and 1.5 * 2**52, whose addition rounds a double of magnitude below 2**51 to an integer.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_ROUNDER = 6755399441055744.0
_ROUNDER_BITS = int(np.array([_ROUNDER]).view(np.int64)[0])
# Below this, exp underflows to a subnormal or zero: exp_in_place returns exactly 0 there; above the
# ceiling it returns inf (np.exp overflows from 709.78 on).
_EXP_FLOOR = -708.0
_EXP_CEILING = 709.0


@intrinsic
def _float_bits(typingctx, x):
    """The 64 bits of a double as an integer."""
    signature = types.int64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return signature, codegen


@intrinsic
def _bits_float(typingctx, bits):
    """The double whose 64 bits are the integer ``bits``."""
    signature = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return signature, codegen


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def fast_exp(v):
    """``exp(v)`` for finite or infinite ``v`` (the scaled utilities of the quantal response, the clash
    probabilities), within one unit in the last place of ``np.exp``; exactly 0 below -708 (where
    ``np.exp`` gives a subnormal below 3e-308, or 0) and for ``-inf``, ``inf`` above 709 (``np.exp``
    from 709.78 on).

    Why not ``np.exp`` or ``math.exp``: numpy's float64 exponential is vectorised only with AVX-512, and
    the C library's is a function call; on AVX2 machines both are a scalar loop (5-7 ns a value here),
    a quarter of the week at R = 10,000. This is the textbook method (Cody and Waite 1980; Muller,
    *Elementary Functions*, 3rd ed. 2016, ch. 11): ``v = k ln 2 + t`` with ``|t| <= ln 2 / 2``,
    ``exp(t)`` by its Taylor polynomial of degree 13 (truncation error below 4e-18 relative) and the
    factor ``2**k`` built in the exponent bits (:func:`_bits_float`): branch-free, so that loops calling
    it vectorise (FMA contraction only; no reassociation). ``tests/test_kernels.py`` checks it against
    ``np.exp``.
    """
    c = min(max(v, _EXP_FLOOR), _EXP_CEILING)
    shifted = c * _LOG2E + _ROUNDER  # k + 1.5 * 2**52: k = round(c / ln 2) in the low bits
    k = shifted - _ROUNDER
    t = (c - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * t + 1.0 / 479001600.0
    p = p * t + 1.0 / 39916800.0
    p = p * t + 1.0 / 3628800.0
    p = p * t + 1.0 / 362880.0
    p = p * t + 1.0 / 40320.0
    p = p * t + 1.0 / 5040.0
    p = p * t + 1.0 / 720.0
    p = p * t + 1.0 / 120.0
    p = p * t + 1.0 / 24.0
    p = p * t + 1.0 / 6.0
    p = p * t + 0.5
    p = p * t + 1.0
    p = p * t + 1.0
    scale = _bits_float((_float_bits(shifted) - _ROUNDER_BITS + 1023) << 52)  # 2**k: exponent field k + 1023
    return 0.0 if v < _EXP_FLOOR else (np.inf if v > _EXP_CEILING else p * scale)


@njit(cache=True, error_model="numpy")
def exp_in_place(x):
    """``x = exp(x)`` in place (:func:`fast_exp`), in a loop that vectorises."""
    for i in range(x.size):
        x[i] = fast_exp(x[i])


@njit(cache=True, error_model="numpy")
def quantal_draw(r, z, u, alive, choice, scratch):
    """The quantal-response draw from scaled utilities ``z`` (actions, R; ``lambda U - max``):
    exponentiated in place (:func:`exp_in_place`), then :func:`choose`; for four and seven actions
    both in one pass (:func:`draw_four`, :func:`draw_seven`)."""
    if z.shape[0] == 4:
        draw_four(r, z, u, alive, choice, True)
    elif z.shape[0] == 7:
        draw_seven(r, z, u, alive, choice)
    else:
        for k in range(z.shape[0]):
            exp_in_place(z[k])
        choose(r, z, u, alive, choice, scratch)


@njit(cache=True, error_model="numpy")
def _count_step(running, count, weight, threshold):
    """One more running sum of :func:`choose`: ``running + weight``, and the count of running sums at or
    below ``threshold`` with it."""
    running = running + weight
    return running, count + (running <= threshold)


@njit(cache=True, error_model="numpy")
def draw_four(r, z, u, alive, choice, exponentiate):
    """:func:`choose` for four actions (``exponentiate``: of ``exp(z)``, exponentiated in place
    first, as :func:`quantal_draw` does), in one pass over the replications with every weight in
    registers: the same sums in the same order, so the same draws, with no passes over work arrays."""
    z0, z1, z2, z3 = z[0], z[1], z[2], z[3]
    for b in range(z.shape[1] // r):
        lo = b * r
        ub = u[lo % u.size:]  # the block's uniforms: its own, or the shared ones
        for j in range(r):
            i = lo + j
            e0, e1, e2, e3 = z0[i], z1[i], z2[i], z3[i]
            if exponentiate:
                e0, e1, e2, e3 = fast_exp(e0), fast_exp(e1), fast_exp(e2), fast_exp(e3)
                z0[i], z1[i], z2[i], z3[i] = e0, e1, e2, e3
            threshold = ub[j] * (((e0 + e1) + e2) + e3)
            running, count = e0, 1.0 * (e0 <= threshold)
            running, count = _count_step(running, count, e1, threshold)
            running, count = _count_step(running, count, e2, threshold)
            choice[i] = int(count) if alive[i] else 0


@njit(cache=True, error_model="numpy")
def draw_seven(r, z, u, alive, choice):
    """:func:`quantal_draw` for seven actions (the DPRK's) in one pass, as :func:`draw_four`."""
    z0, z1, z2, z3, z4, z5, z6 = z[0], z[1], z[2], z[3], z[4], z[5], z[6]
    for b in range(z.shape[1] // r):
        lo = b * r
        ub = u[lo % u.size:]
        for j in range(r):
            i = lo + j
            e0, e1, e2, e3 = fast_exp(z0[i]), fast_exp(z1[i]), fast_exp(z2[i]), fast_exp(z3[i])
            e4, e5, e6 = fast_exp(z4[i]), fast_exp(z5[i]), fast_exp(z6[i])
            z0[i], z1[i], z2[i], z3[i], z4[i], z5[i], z6[i] = e0, e1, e2, e3, e4, e5, e6
            threshold = ub[j] * ((((((e0 + e1) + e2) + e3) + e4) + e5) + e6)
            running, count = e0, 1.0 * (e0 <= threshold)
            for e in (e1, e2, e3, e4, e5):
                running, count = _count_step(running, count, e, threshold)
            choice[i] = int(count) if alive[i] else 0


@njit(cache=True, error_model="numpy")
def choose(r, z, u, alive, choice, scratch):
    """Quantal-response draw from exponentiated weights ``z`` (actions, R), by inverse CDF.

    The action is the number of running sums ``e_0 + ... + e_a`` at or below ``u * sum(e)`` (so a
    zero-probability first action is never drawn, even for u = 0); one uniform per replication
    whatever the probabilities, so that runs compared at the same seed use common random numbers.
    Ended (war) replications take action 0. ``scratch`` is a (3, R) work array; ``u`` holds one
    uniform per base replication (the same for every block of a batch).
    """
    if z.shape[0] == 4:
        draw_four(r, z, u, alive, choice, False)
        return
    a, n = z.shape
    threshold = scratch[0]
    z0 = z[0]
    for i in range(n):
        threshold[i] = z0[i]
    for k in range(1, a):
        zk = z[k]
        for i in range(n):
            threshold[i] += zk[i]
    running, count = scratch[1], scratch[2]
    for i in range(n):
        running[i] = 0.0
        count[i] = 0.0
    for b in range(n // r):
        th = threshold[b * r:(b + 1) * r]
        ub = u[(b * r) % u.size:]  # the block's uniforms: its own, or the shared ones
        for j in range(r):
            th[j] = ub[j] * th[j]
    for k in range(a - 1):
        zk = z[k]
        for i in range(n):
            running[i] += zk[i]
            count[i] += running[i] <= threshold[i]
    for i in range(n):
        choice[i] = int(count[i]) if alive[i] else 0


@njit(cache=True, error_model="numpy")
def dprk_week_utilities(pt, r, z, belief, on_station, pressure, tension, outreach_last, drive, diplomacy,
                        moratorium, exercise_intensity):
    """The DPRK's utilities (:func:`dprk_utilities`) as ``lambda U - max``, into ``z`` (7, R), under
    the pressure it knows when it moves (:func:`pressure_at_move`)."""
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        precision = q.dprk_precision
        for j in range(r):
            i = lo + j
            seen = pressure_at_move(q, pressure[i], exercise_intensity, on_station[i])
            u0, u1, u2, u3, u4, u5, u6 = dprk_utilities(q, belief[i], on_station[i], seen, tension[i],
                                                        outreach_last[i], drive[b], diplomacy, moratorium)
            if precision > 0:
                u0, u1, u2, u3 = precision * u0, precision * u1, precision * u2, precision * u3
                u4, u5, u6 = precision * u4, precision * u5, precision * u6
            else:
                u0 = -np.inf if u0 == -np.inf else 0.0
                u1 = -np.inf if u1 == -np.inf else 0.0
                u2 = -np.inf if u2 == -np.inf else 0.0
                u3 = -np.inf if u3 == -np.inf else 0.0
                u4 = -np.inf if u4 == -np.inf else 0.0
                u5 = -np.inf if u5 == -np.inf else 0.0
                u6 = -np.inf if u6 == -np.inf else 0.0
            top = max(max(max(max(max(max(max(-np.inf, u0), u1), u2), u3), u4), u5), u6)
            z[0, i], z[1, i], z[2, i], z[3, i] = u0 - top, u1 - top, u2 - top, u3 - top
            z[4, i], z[5, i], z[6, i] = u4 - top, u5 - top, u6 - top


@njit(cache=True, error_model="numpy")
def dprk_act(pt, r, z, u_choice, alive, choice, days, missiles, capability, tension, u_days, u_salvo,
             scratch, max_terms):
    """The DPRK's draw (:func:`quantal_draw`; ``z`` its scaled utilities); in a launch week its launch
    days (:func:`launch_days`) and missiles (:func:`salvo_size`); learning by testing
    (:func:`capability_step`)."""
    quantal_draw(r, z, u_choice, alive, choice, scratch)
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        ud, us = u_days[lo % u_days.size:], u_salvo[lo % u_salvo.size:]
        # two passes: learning and the non-launch weeks branch-free (vectorised), then the launch weeks
        for j in range(r):
            i = lo + j
            c = choice[i]
            capability[i] = capability_step(capability[i], c, q.capability_learning,
                                            q.capability_learning_nuclear)
            days[i] = 0
            missiles[i] = 0
        for j in range(r):
            i = lo + j
            c = choice[i]
            if c == SRBM or c == LRBM:
                days[i] = launch_days(ud[j], tension[i], q)
                missiles[i] = salvo_size(us[j], tension[i], q, days[i], max_terms)


@njit(cache=True, error_model="numpy")
def us_state(q, d, request, on, challenged, back, surge_allowed, weights, llr):
    """The US's choice weights for both types (``weights[type, k]``, type 1 = resolute) and what each
    choice tells the DPRK (``llr[k]``) in one state: DPRK action ``d``, a ROK request, an asset on
    station, a binding threat (``challenged``); ``back[type, on]`` the types' back-down
    probabilities. One state of :func:`us_tables`."""
    need = us_need(d, request, q.us_request_weight)
    major = DPRK_SEVERITY[d] >= MAJOR_SEVERITY
    ch = challenged == 1 and major
    f_irr = q.us_irresolute_factor
    for resolute in range(2):
        f = 1.0 if resolute == 1 else f_irr
        u0, u1, u2, u3 = us_response_utilities(q, f, need, on, surge_allowed, ch, back[resolute, on])
        z0, z1, z2, z3 = quantal_shift4(u0, u1, u2, u3, q.us_precision)
        weights[resolute, 0], weights[resolute, 1] = math.exp(z0), math.exp(z1)
        weights[resolute, 2], weights[resolute, 3] = math.exp(z2), math.exp(z3)
    for k in range(4):
        llr[k] = us_log_likelihood_ratio(q, k, need, on, surge_allowed, ch, back[1, on], back[0, on])


@njit(cache=True, error_model="numpy")
def us_back_down(q, surge_allowed):
    """``back[type, on]``: each type's back-down probability without and with an asset on station
    (:func:`back_down_probability`; type 1 = resolute)."""
    back = np.empty((2, 2))
    for on in range(2):
        back[0, on] = back_down_probability(q, q.us_irresolute_factor, on, surge_allowed)
        back[1, on] = back_down_probability(q, 1.0, on, surge_allowed)
    return back


@njit(cache=True, error_model="numpy")
def us_tables(q, surge_allowed, weights, llr):
    """The US's choice weights and what each choice tells the DPRK, for every state it can meet.

    The US's utilities depend on its type, the DPRK action (7), whether the ROK asked for assets last
    week, an asset on station and a binding threat challenged: 2 x 56 states, tabulated once per block
    and run instead of once per replication and week (:func:`us_state` for each). Fills
    ``weights[type, state, k]`` = ``exp(lambda U_k - max)`` (:func:`us_response_utilities`, type 1 =
    resolute) and ``llr[state, k]`` (:func:`us_log_likelihood_ratio`), where ``state = ((action_d * 2
    + request) * 2 + on) * 2 + challenged``. (Flat tables: six-dimensional ones with slice
    assignments took numba 6 s to compile.)
    """
    back = us_back_down(q, surge_allowed)
    w = np.empty((2, 4))
    out = np.empty(4)
    for state in range(llr.shape[0]):
        d, rest = divmod(state, 8)
        request, rest = divmod(rest, 4)
        on, challenged = divmod(rest, 2)
        us_state(q, d, request, on, challenged, back, surge_allowed, w, out)
        for k in range(4):
            weights[0, state, k] = w[0, k]
            weights[1, state, k] = w[1, k]
            llr[state, k] = out[k]


@njit(cache=True, error_model="numpy")
def us_block_tables(pt, surge_allowed, weights, evidence_table):
    """Every block's :func:`us_tables`: ``weights`` (blocks, 2, 56, 4) and what each response tells the
    DPRK, ``evidence_table`` (blocks, 56, 4). They depend only on the block's parameters and whether
    surges are allowed, so the US computes them once per run (and again when a posture period
    changes that permission), not every week."""
    for b in range(pt.size):
        us_tables(block_params(pt[b]), surge_allowed, weights[b], evidence_table[b])


@njit(cache=True, error_model="numpy")
def us_week_weights(r, z, resolute, dprk_choice, rok_choice, on_station, threat_left, weights):
    """The US's quantal-response weights (its own type, in the state it chooses in) into ``z`` (4, R),
    looked up in its block's table of :func:`us_block_tables`."""
    for b in range(z.shape[1] // r):
        table = weights[b]
        for i in range(b * r, (b + 1) * r):
            state = (((dprk_choice[i] * 2 + int(rok_choice[i] == ROK_REQUEST)) * 2 + int(on_station[i])) * 2
                     + int(threat_left[i] > 0))
            w = table[int(resolute[i]), state]
            z[0, i], z[1, i], z[2, i], z[3, i] = w[0], w[1], w[2], w[3]


@njit(cache=True, error_model="numpy")
def us_act(pt, r, z, u, alive, choice, dprk_choice, rok_choice, on_station, threat_left, evidence_table,
           evidence, surge_arrival, surge_left, cost, surge_weeks, transit_cost, scheduled_cost,
           scheduled_present, station_cost, scratch):
    """The US's draw, what it tells the DPRK (:func:`us_log_likelihood_ratio`, looked up in the week's
    ``evidence_table`` of :func:`us_week_weights`, into ``evidence``), its threats' binding window, its
    surges and its cost account.

    ``on_station`` is the state the US chose in (before this week's surge), and on return the state for
    the rest of the week (a scheduled asset or a surge on station); ``threat_left`` the weeks a
    threat still binds. A challenge while a threat binds is answered this week whatever the response
    (followed through or backed down), so the binding ends; a threat made this week binds for
    ``us_threat_window_weeks`` from next week. Costs: an arrival's transit, every asset-week on station
    (a surge on top of a scheduled asset is a second asset); ended (war) replications accrue nothing.
    """
    choose(r, z, u, alive, choice, scratch)
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        window = int(q.us_threat_window_weeks)
        table = evidence_table[b]
        for j in range(r):
            i = lo + j
            c = choice[i]
            d = dprk_choice[i]
            binding = threat_left[i] > 0
            state = (((d * 2 + int(rok_choice[i] == ROK_REQUEST)) * 2 + int(on_station[i])) * 2
                     + int(binding))
            evidence[i] = table[state, c] if alive[i] else 0.0
            if binding and DPRK_SEVERITY[d] >= MAJOR_SEVERITY:  # challenged: answered this week
                threat_left[i] = 0
            if c == US_THREAT:
                threat_left[i] = window + 1  # counted down at the end of this week
            surge = c == US_SURGE
            surge_arrival[i] = surge
            if surge:
                surge_left[i] = surge_weeks
            if alive[i]:
                cost[i] += (surge * transit_cost + scheduled_cost * scheduled_present[i]
                            + station_cost * (surge_left[i] > 0))
            # a surge ordered this week is on station for the rest of it
            on_station[i] = scheduled_present[i] | (surge_left[i] > 0)


@njit(cache=True, error_model="numpy")
def week_begin(alive, active, surge_left, scheduled_present, on_station):
    """The start of a week: ``active`` = not ended by war (this week's actions count), and the assets on
    station as the DPRK moves (scheduled presence or a surge still there)."""
    for i in range(alive.size):
        active[i] = alive[i]
        on_station[i] = scheduled_present[i] | (surge_left[i] > 0)


@njit(cache=True, error_model="numpy")
def week_end(surge_left, threat_left):
    """The end of a week: surges and binding threats count down one week (not below 0)."""
    for i in range(surge_left.size):
        surge_left[i] = max(surge_left[i] - 1, 0)
        threat_left[i] = max(threat_left[i] - 1, 0)


@njit(cache=True, error_model="numpy")
def rotation_due(pt, r, u, resolute, alive, arrived, evidence, logit_bound):
    """A rotation falls due: each US type defers it with its skip probability (``u`` one uniform per
    base replication); ``arrived`` and the DPRK's reading (:func:`schedule_log_likelihood_ratio`, into
    ``evidence``) per replication. Ended (war) replications neither arrive nor update."""
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        ub = u[lo % u.size:]
        for j in range(r):
            i = lo + j
            skip = q.us_skip_resolute if resolute[i] else q.us_skip_irresolute
            arrived[i] = alive[i] & (ub[j] >= skip)
            evidence[i] = (schedule_log_likelihood_ratio(arrived[i], q.us_skip_resolute,
                                                         q.us_skip_irresolute, logit_bound)
                           if alive[i] else 0.0)


@njit(cache=True, error_model="numpy")
def new_administration(pt, r, u_redraw, u_type, resolute, log_odds, belief, alive, logit_bound):
    """A new US administration: with probability ``us_type_turnover`` its type is drawn afresh (resolute
    with probability ``credibility``; Wolford 2007; Lupton 2020), and the DPRK's belief takes the
    matching prediction step (:func:`turnover_log_odds`). Two uniforms per base replication."""
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        redraw, new_type = u_redraw[lo % u_redraw.size:], u_type[lo % u_type.size:]
        for j in range(r):
            i = lo + j
            # an ended replication keeps its last type
            if redraw[j] < q.us_type_turnover and alive[i]:
                resolute[i] = new_type[j] < q.credibility
            if alive[i]:
                log_odds[i] = turnover_log_odds(log_odds[i], q.dprk_prior, q.us_type_turnover, logit_bound)
                belief[i] = expit(log_odds[i])


@njit(cache=True, error_model="numpy")
def rok_week_utilities(pt, r, z, assurance, dprk_choice, tension):
    """The ROK's utilities (:func:`rok_utilities`) as ``lambda U - max``."""
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        for j in range(r):
            i = lo + j
            u0, u1, u2, u3 = rok_utilities(q, assurance[i], dprk_choice[i], tension[i])
            z[0, i], z[1, i], z[2, i], z[3, i] = quantal_shift4(u0, u1, u2, u3, q.ally_precision)


@njit(cache=True, error_model="numpy")
def japan_week_utilities(pt, r, z, assurance, dprk_choice):
    """Japan's utilities (:func:`japan_utilities`) as ``lambda U - max``."""
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        for j in range(r):
            i = lo + j
            u0, u1, u2, u3 = japan_utilities(q, assurance[i], dprk_choice[i])
            z[0, i], z[1, i], z[2, i], z[3, i] = quantal_shift4(u0, u1, u2, u3, q.ally_precision)


@njit(cache=True, error_model="numpy")
def current_calculus_belief(pt, r, on_station, exercise_intensity, capability, log_odds, belief, logit_bound):
    """Set every replication's belief to the current calculus (:func:`current_calculus_log_odds`); the
    rule's belief at the start of a run."""
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        for j in range(r):
            i = lo + j
            x = current_calculus_log_odds(q, on_station[i], exercise_intensity, capability[i])
            log_odds[i] = min(max(x, -logit_bound), logit_bound)
            belief[i] = expit(log_odds[i])


@njit(cache=True, error_model="numpy")
def beliefs_week(pt, r, log_odds, belief, us_evidence, schedule_evidence, perception_costly,
                 current_calculus, exercise_intensity, capability, presence_weeks, on_station,
                 scheduled_arrival, setup_signal, surge_arrival, us_choice, dprk_choice, jp_choice,
                 consultation, rok_assurance, jp_assurance, alive, logit_bound):
    """The week's signals -> the DPRK's belief that the US is resolute, and allied assurance.

    The DPRK adds what it reads this week to its log-odds (:func:`update_log_odds`): the US response
    (``us_evidence``) and, under type-dependent scheduling, a scheduled arrival made or deferred
    (``schedule_evidence``). Both are the model's own likelihoods. A DPRK that misperceives
    (``perception_costly``: reads scheduled arrivals, basing, presence and consultations as costly
    signals whatever the type; Jervis 1976) adds the fixed ``lik_*`` table's readings of them on top.
    Under the current-calculus rule the belief is :func:`current_calculus_log_odds` instead.
    Ended (war) replications keep their last values.
    """
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        deploy = math.log(q.lik_deploy_res) - math.log(q.lik_deploy_irr)
        permanent = math.log(q.lik_permanent_res) - math.log(q.lik_permanent_irr)
        presence = math.log(q.lik_presence_res) - math.log(q.lik_presence_irr)
        consult = math.log(q.lik_consult_res) - math.log(q.lik_consult_irr)
        if current_calculus:
            for j in range(r):
                i = lo + j
                x = current_calculus_log_odds(q, on_station[i], exercise_intensity, capability[i])
                x = min(max(x, -logit_bound), logit_bound)
                log_odds[i] = x if alive[i] else log_odds[i]
        elif perception_costly:
            for j in range(r):
                i = lo + j
                e = us_evidence[i] + schedule_evidence[i]
                continuing = on_station[i] & (not (scheduled_arrival[i] | surge_arrival[i]))
                hab = habituation(presence_weeks[i], q.habituation_weeks) if continuing else 0.0
                e += ((permanent if setup_signal else deploy * scheduled_arrival[i])
                      + continuing * hab * presence + consultation * consult)
                x = update_log_odds(log_odds[i], e, logit_bound)
                log_odds[i] = x if alive[i] else log_odds[i]
        else:
            for j in range(r):
                i = lo + j
                x = update_log_odds(log_odds[i], us_evidence[i] + schedule_evidence[i], logit_bound)
                log_odds[i] = x if alive[i] else log_odds[i]
        for j in range(r):
            i = lo + j
            if alive[i]:
                belief[i] = expit(log_odds[i])
        for j in range(r):
            i = lo + j
            arrival = scheduled_arrival[i] | surge_arrival[i]
            continuing = on_station[i] & (not arrival)
            threat = us_choice[i] == US_THREAT
            statement = us_choice[i] == US_STATEMENT
            d = dprk_choice[i]
            gain = (arrival * q.assure_deploy + continuing * q.assure_presence
                    + consultation * q.assure_consult + threat * q.assure_threat
                    + statement * q.assure_statement)
            shock = ((d == LRBM) | (d == NUCLEAR)) * q.decoupling_shock
            anchor = q.assure_anchor - q.decoupling * capability[i]
            # (selects rather than a branch around the stores: the loop vectorises)
            jp_gain = gain + (jp_choice[i] == JP_TRILATERAL) * q.assure_trilateral
            rok_next = assurance_step(rok_assurance[i], gain, shock, anchor, q.assure_reversion)
            jp_next = assurance_step(jp_assurance[i], jp_gain, shock, anchor, q.assure_reversion)
            rok_assurance[i] = rok_next if alive[i] else rok_assurance[i]
            jp_assurance[i] = jp_next if alive[i] else jp_assurance[i]
            presence_weeks[i] = presence_weeks[i] + 1.0 if on_station[i] else 0.0


@njit(cache=True, error_model="numpy")
def escalation_week(pt, r, week, pressure, tension, exercise_intensity, on_station, scheduled_arrival,
                    surge_arrival, us_choice, rok_choice, jp_choice, dprk_choice, missiles, u_clash, u_war,
                    clash, alive, max_rung, first_clash_week, war_week, scratch):
    """Pressure (:func:`pressure_step`), tension (:func:`tension_impulse`, :func:`tension_step`),
    unintended clashes and war (:func:`clash_probability`) and the ladder.

    A border incident (rung 4) is a clash by itself; a clash adds ``tension_clash`` and becomes war
    with ``expit(war_intercept + war_slope T)``, which ends the replication (its week goes into
    ``war_week``; the first clash's into ``first_clash_week``).

    In three passes, so that the clash probabilities' exponentials are one vectorised
    :func:`exp_in_place` (``scratch`` is (3, R) float work space): pressure and tension; the
    exponentials; clashes, war and the ladder. The clash probability is :func:`clash_probability`'s
    ``1 / (1 + exp(-x))`` with that exponential.
    """
    minus_x = scratch[0]
    own = np.empty(8)
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        for a in range(7):
            own[a] = tension_own(q, a)
        for j in range(r):
            i = lo + j
            arrival = scheduled_arrival[i] | surge_arrival[i]
            threat = us_choice[i] == US_THREAT
            strike = rok_choice[i] == ROK_STRIKE
            trilateral = jp_choice[i] == JP_TRILATERAL
            p = pressure_step(q, pressure[i], exercise_intensity, on_station[i], surge_arrival[i],
                              threat, strike, trilateral)
            impulse = tension_impulse_from(q, own[dprk_choice[i]], missiles[i], exercise_intensity, arrival,
                                           threat, strike, rok_choice[i] == ROK_OUTREACH, trilateral)
            t = tension_step(tension[i], impulse, q.tension_decay)
            live = alive[i]
            pressure[i] = p if live else pressure[i]
            tension[i] = t if live else tension[i]
            minus_x[i] = -(q.clash_intercept + q.clash_slope * t) if live else 0.0
    exp_in_place(minus_x)
    for b in range(pt.size):
        q = block_params(pt[b])
        lo = b * r
        uc, uw = u_clash[lo % u_clash.size:], u_war[lo % u_war.size:]
        for j in range(r):
            i = lo + j
            if not alive[i]:
                clash[i] = False
                continue
            rung = DPRK_RUNG[dprk_choice[i]]
            is_clash = (rung >= 4) | (uc[j] < 1.0 / (1.0 + minus_x[i]))
            clash[i] = is_clash
            if is_clash:
                t = tension[i] + q.tension_clash
                tension[i] = t
                rung = max(rung, 4)
                if first_clash_week[i] < 0:
                    first_clash_week[i] = week
                if uw[j] < clash_probability(t, q.war_intercept, q.war_slope):
                    rung = 5
                    alive[i] = False
                    war_week[i] = week
            if rung > max_rung[i]:
                max_rung[i] = rung
