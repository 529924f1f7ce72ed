"""Compiled (numba) weekly kernels: the model's fast engine.

Each kernel runs one phase of a week for every replication, in plain loops over preallocated
arrays (a few simple passes rather than one long loop where that pipelines better): the DPRK's
choice and salvo, the US response, the ROK and Japan responses, beliefs and assurance,
escalation, and the recorder's counts and weekly statistics. They implement the same equations as
the numpy reference engine (the agents' ``utilities`` methods and :mod:`sim.rules`, where each rule
cites its source) in the same order of operations, and draw the same random numbers: the numpy
generators of the agents still draw one array of uniforms per week, which the kernels read.
``tests/test_engine.py`` checks that both engines give the same results, and the rules' own tests
check the rules.

Parameters reach a kernel as a record array ``pt`` with one record per batch block (see
:func:`param_table`); replication ``i`` belongs to block ``i // r`` and reads the pre-drawn random
numbers at ``i % r`` (common random numbers across the blocks of a batch).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numba import njit

from .params import ModelParams

# Action codes and tables of sim.agents, repeated here as compile-time constants (sim.agents imports
# this module); tests/test_engine.py checks that they agree.
RESTRAINT, TALKS, RHETORIC, SRBM, LRBM, NUCLEAR, BORDER = range(7)
US_HOLD, US_STATEMENT, US_THREAT, US_SURGE = range(4)
ROK_HOLD, ROK_STRIKE, ROK_REQUEST, ROK_OUTREACH = range(4)
JP_HOLD, JP_PROTEST, JP_ALERT, JP_TRILATERAL = range(4)
_SEVERITY = np.array([0.0, 0.0, 0.2, 0.5, 1.0, 1.5, 1.5])  # sim.agents.DPRK_SEVERITY
_RUNG = np.array([0, 0, 1, 2, 2, 3, 4], dtype=np.int8)  # sim.agents.DPRK_RUNG
_MAJOR = 1.0  # sim.agents.MAJOR_SEVERITY

PARAM_FIELDS = tuple(f.name for f in dataclasses.fields(ModelParams) if f.name != "credibility_rule")


def param_table(params: ModelParams, blocks: int, overrides: dict[str, np.ndarray]) -> np.ndarray:
    """One record of the numeric ``ModelParams`` per batch block; ``overrides`` gives per-block values."""
    table = np.zeros(blocks, dtype=[(name, "f8") for name in PARAM_FIELDS])
    for name in PARAM_FIELDS:
        table[name] = overrides[name] if name in overrides else getattr(params, name)
    return table


@njit(cache=True, inline="always", error_model="numpy")
def _expit(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, inline="always", error_model="numpy")
def _shifted(u0, u1, u2, u3, precision):
    """Four utilities as ``lambda U - max(lambda U)``: sim.rules.sample_quantal before its exponential."""
    if precision > 0:
        u0, u1, u2, u3 = precision * u0, precision * u1, precision * u2, precision * u3
    else:
        u0 = -np.inf if u0 == -np.inf else 0.0
        u1 = -np.inf if u1 == -np.inf else 0.0
        u2 = -np.inf if u2 == -np.inf else 0.0
        u3 = -np.inf if u3 == -np.inf else 0.0
    top = max(max(max(u0, u1), u2), u3)
    return u0 - top, u1 - top, u2 - top, u3 - top


@njit(cache=True, error_model="numpy")
def choose(r, z, u, alive, choice, scratch):
    """Quantal-response draw (McKelvey & Palfrey 1995) from exponentiated weights ``z`` (actions, R).

    The second half of :func:`sim.rules.sample_quantal`: the action is the number of running sums
    ``e_0 + ... + e_a`` at or below ``u * sum(e)``. Ended (war) replications take action 0.
    ``scratch`` is a (3, R) work array; ``u`` holds one uniform per base replication (the same for
    every block of a batch).
    """
    a, n = z.shape
    threshold, running, count = scratch[0], scratch[1], scratch[2]
    z0 = z[0]
    for i in range(n):
        threshold[i] = z0[i]
        running[i] = 0.0
        count[i] = 0.0
    for k in range(1, a):
        zk = z[k]
        for i in range(n):
            threshold[i] += zk[i]
    for b in range(n // r):
        th = threshold[b * r:(b + 1) * r]
        for j in range(r):
            th[j] = u[j] * th[j]
    for k in range(a - 1):
        zk = z[k]
        for i in range(n):
            running[i] += zk[i]
            count[i] += running[i] <= threshold[i]
    for i in range(n):
        choice[i] = int(count[i]) if alive[i] else 0


@njit(cache=True, error_model="numpy")
def negative_binomial_quantile(u, mean, size, max_terms):
    """Smallest k with P(X <= k) >= u, X ~ NegBin(size, mean): sim.rules.negative_binomial_quantile,
    stopping after ``max_terms`` terms (``sim.rules.MAX_QUANTILE_TERMS``, passed in by the caller:
    a constant read from another module would be frozen into numba's cache and go stale)."""
    ratio = mean / (size + mean)
    pmf = math.exp(-min(size * math.log1p(mean / size), 700.0))
    if not pmf < u:
        return 0
    cdf = pmf
    j = 0
    while j < max_terms:
        pmf = pmf * ((j + size) / (j + 1)) * ratio
        j += 1
        cdf = cdf + pmf
        if not ((cdf < u) and (pmf > 0)):
            return j
    return j


@njit(cache=True, error_model="numpy")
def dprk_utilities(pt, r, z, belief, on_station, pressure, tension, outreach_last, drive, diplomacy,
                   moratorium):
    """The DPRK's utilities (sim.agents.DPRK.utilities, where the sources are), scaled for the draw.

    Each batch block works on slices of the arrays (loops from 0 over contiguous views vectorise).
    """
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        w = q.spiral_weight
        cost = np.array([0.0, -q.dprk_cost_talks, -q.dprk_cost_rhetoric, -q.dprk_cost_srbm,
                         -q.dprk_cost_lrbm, -q.dprk_cost_nuclear, -q.dprk_cost_border])
        dev = np.array([0.0, 0.0, 0.0, q.dprk_dev_srbm, q.dprk_dev_lrbm, q.dprk_dev_nuclear, 0.0])
        punish = np.array([0.0, 0.0, q.dprk_punish_rhetoric, q.dprk_punish_srbm, q.dprk_punish_lrbm,
                           q.dprk_punish_nuclear, q.dprk_punish_border])
        base = cost + drive[b] * dev
        pd, dg, sg = q.presence_deterrence, q.deterrence_gain, q.spiral_gain
        go, gd, lt = q.dprk_talks_outreach_gain, q.dprk_talks_diplomacy_gain, q.dprk_talks_tension_loss
        p0, p1, p2, p3 = -punish[0], -punish[1], -punish[2], -punish[3]
        p4, p5, p6 = -punish[4], -punish[5], -punish[6]
        s0, s1, s2, s3 = _SEVERITY[0], _SEVERITY[1], _SEVERITY[2], _SEVERITY[3]
        s4, s5, s6 = _SEVERITY[4], _SEVERITY[5], _SEVERITY[6]
        b0, b1, b2, b3, b4, b5, b6 = base[0], base[1], base[2], base[3], base[4], base[5], base[6]
        precision = q.dprk_precision
        bel, on, pr = belief[lo:hi], on_station[lo:hi], pressure[lo:hi]
        out, ten = outreach_last[lo:hi], tension[lo:hi]
        z0, z1, z2, z3 = z[0, lo:hi], z[1, lo:hi], z[2, lo:hi], z[3, lo:hi]
        z4, z5, z6 = z[4, lo:hi], z[5, lo:hi], z[6, lo:hi]
        for i in range(r):
            p_i = pr[i]
            scale = bel[i] * (1.0 + pd * on[i]) * (1.0 + (1.0 - w) * dg * p_i)
            spiral = w * sg * p_i
            # the same sums as the reference: (-punish * scale + severity * spiral) + base
            u0 = (p0 * scale + s0 * spiral) + b0
            u1 = (p1 * scale + s1 * spiral) + b1
            u2 = (p2 * scale + s2 * spiral) + b2
            u3 = (p3 * scale + s3 * spiral) + b3
            u4 = (p4 * scale + s4 * spiral) + b4
            u5 = -np.inf if moratorium else (p5 * scale + s5 * spiral) + b5
            u6 = (p6 * scale + s6 * spiral) + b6
            u1 += go * out[i] + gd * diplomacy - lt * ten[i]  # talks
            if precision > 0:
                u0, u1, u2, u3 = precision * u0, precision * u1, precision * u2, precision * u3
                u4, u5, u6 = precision * u4, precision * u5, precision * u6
            else:
                u0, u1, u2, u3, u4, u6 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
                u5 = -np.inf if moratorium else 0.0
            top = max(max(max(u0, u1), max(u2, u3)), max(max(u4, u5), u6))
            z0[i], z1[i], z2[i], z3[i] = u0 - top, u1 - top, u2 - top, u3 - top
            z4[i], z5[i], z6[i] = u4 - top, u5 - top, u6 - top


@njit(cache=True, error_model="numpy")
def dprk_act(pt, r, z, u_choice, alive, choice, missiles, capability, tension, u_salvo, scratch,
             max_terms):
    """The DPRK's draw, its salvo on a launch day and learning by testing (sim.agents.DPRK.step)."""
    choose(r, z, u_choice, alive, choice, scratch)
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        c_b, m_b, k_b, t_b = choice[lo:hi], missiles[lo:hi], capability[lo:hi], tension[lo:hi]
        learn, learn_nuclear = q.capability_learning, q.capability_learning_nuclear
        for j in range(r):  # branch-free: the reference's gain * (1 - K) with gain 0 off tests
            c = c_b[j]
            m_b[j] = 0
            gain = learn * (c == LRBM) + learn_nuclear * (c == NUCLEAR)
            k_b[j] += gain * (1.0 - k_b[j])
        extra, tension_gain, size = q.salvo_extra, q.salvo_tension_gain, q.salvo_dispersion
        for j in range(r):
            c = c_b[j]
            if c == SRBM or c == LRBM:
                mean = extra * (1.0 + tension_gain * t_b[j])
                m_b[j] = 1 + negative_binomial_quantile(u_salvo[j], mean, size, max_terms)


@njit(cache=True, error_model="numpy")
def us_utilities(pt, r, z, type_factor, dprk_choice, rok_choice, on_station, surge_allowed):
    """The US's utilities (sim.agents.US.utilities, where the sources are), scaled for the draw."""
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        z0, z1, z2, z3 = z[US_HOLD, lo:hi], z[US_STATEMENT, lo:hi], z[US_THREAT, lo:hi], z[US_SURGE, lo:hi]
        tf, d, rc, on = type_factor[lo:hi], dprk_choice[lo:hi], rok_choice[lo:hi], on_station[lo:hi]
        precision = q.us_precision
        for i in range(r):
            need = _SEVERITY[d[i]] + q.us_request_weight * (rc[i] == ROK_REQUEST)
            if surge_allowed:
                surge = tf[i] * q.us_surge_gain * need - q.us_surge_cost - q.us_surge_redundancy * on[i]
            else:
                surge = -np.inf
            z0[i], z1[i], z2[i], z3[i] = _shifted(
                0.0, q.us_statement_gain * need - q.us_statement_cost,
                tf[i] * q.us_threat_gain * need - q.us_threat_cost, surge, precision)


@njit(cache=True, error_model="numpy")
def us_act(r, z, u, alive, choice, surge_arrival, surge_left, cost, surge_weeks, transit_cost,
           scheduled_cost, scheduled_present, station_cost, scratch):
    """The US's draw, its surges and its cost account (sim.agents.US.step)."""
    choose(r, z, u, alive, choice, scratch)
    for i in range(choice.size):
        surge = choice[i] == US_SURGE
        surge_arrival[i] = surge
        if surge:
            surge_left[i] = surge_weeks
        if alive[i]:
            cost[i] += (surge * transit_cost + scheduled_cost * scheduled_present
                        + station_cost * (surge_left[i] > 0))


@njit(cache=True, error_model="numpy")
def rok_utilities(pt, r, z, assurance, dprk_choice, tension):
    """The ROK's utilities (sim.agents.ROK.utilities, where the sources are), scaled for the draw."""
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        z0, z1 = z[ROK_HOLD, lo:hi], z[ROK_STRIKE, lo:hi]
        z2, z3 = z[ROK_REQUEST, lo:hi], z[ROK_OUTREACH, lo:hi]
        a_b, d, t_b = assurance[lo:hi], dprk_choice[lo:hi], tension[lo:hi]
        precision = q.ally_precision
        for i in range(r):
            need = _SEVERITY[d[i]]
            a = a_b[i]
            z0[i], z1[i], z2[i], z3[i] = _shifted(
                0.0,
                (-q.rok_strike_cost + q.rok_hedge_gain * max(q.rok_hedge_threshold - a, 0.0)
                 + q.rok_strike_response * need),
                -q.rok_request_cost + q.rok_request_gain * (1.0 - a) * need,
                (-q.rok_outreach_cost + q.rok_outreach_talks_gain * (d[i] == TALKS)
                 - q.rok_outreach_tension_loss * t_b[i]), precision)


@njit(cache=True, error_model="numpy")
def japan_utilities(pt, r, z, assurance, dprk_choice):
    """Japan's utilities (sim.agents.Japan.utilities, where the sources are), scaled for the draw."""
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        z0, z1, z2, z3 = z[JP_HOLD, lo:hi], z[JP_PROTEST, lo:hi], z[JP_ALERT, lo:hi], z[JP_TRILATERAL, lo:hi]
        a_b, d = assurance[lo:hi], dprk_choice[lo:hi]
        precision = q.ally_precision
        for i in range(r):
            need = _SEVERITY[d[i]]
            z0[i], z1[i], z2[i], z3[i] = _shifted(
                0.0, -q.japan_protest_cost + q.japan_protest_gain * need,
                -q.japan_alert_cost + q.japan_alert_gain * (d[i] == LRBM),
                (-q.japan_trilateral_cost + q.japan_trilateral_gain * need
                 + q.japan_trilateral_assurance_gain * (1.0 - a_b[i])), precision)


@njit(cache=True, inline="always", error_model="numpy")
def _assurance_step(a, gain, shock, anchor, reversion):
    """sim.rules.assurance_step for one value (Snyder 1984; decoupling)."""
    x = a + min(gain, 1.0) * (1.0 - a)
    x = x - min(shock, 1.0) * x
    x = x + reversion * (anchor - x)
    return min(max(x, 0.0), 1.0)


@njit(cache=True, error_model="numpy")
def beliefs_week(pt, r, llr, habituation, log_odds, belief, prior_log_odds, current_calculus,
                 cc_logit_credibility,
                 exercise_intensity, capability, presence_weeks, on_station, scheduled_arrival,
                 setup_signal, surge_arrival, us_choice, dprk_choice, jp_choice, consultation,
                 rok_assurance, jp_assurance, alive, logit_bound):
    """Signals of the week -> DPRK belief and allied assurance (the model's _update_beliefs_and_assurance).

    ``logit_bound`` is ``sim.rules.LOGIT_BOUND``, passed in (not read as a global) so that changing
    it cannot leave numba's cached kernels clipping at the old value.

    ``llr`` holds the log-likelihood ratios of deploy, permanent, presence, consult, threat,
    statement and inaction, in that order; ``habituation[b, w]`` the weight of a presence after ``w``
    weeks on station in block ``b`` (sim.rules.habituation, tabulated once per run).
    """
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        lo_b, bel, cap, pw, on = (log_odds[lo:hi], belief[lo:hi], capability[lo:hi],
                                  presence_weeks[lo:hi], on_station[lo:hi])
        sa, uc, dc, jc = surge_arrival[lo:hi], us_choice[lo:hi], dprk_choice[lo:hi], jp_choice[lo:hi]
        ra, ja, al = rok_assurance[lo:hi], jp_assurance[lo:hi], alive[lo:hi]
        hab, memory = habituation[b], q.belief_memory
        ad, ap, ac, at, ast = (q.assure_deploy, q.assure_presence, q.assure_consult, q.assure_threat,
                               q.assure_statement)
        shock_lr, anchor0, dec, rev = q.decoupling_shock, q.assure_anchor, q.decoupling, q.assure_reversion
        tri = q.assure_trilateral
        if current_calculus:  # Press 2005: capability and interest, not past behaviour
            for i in range(r):
                if al[i]:
                    x = (q.cc_intercept + q.cc_interest * cc_logit_credibility
                         + q.cc_presence * on[i] + q.cc_exercise * exercise_intensity
                         - q.cc_decoupling * cap[i])
                    bel[i] = _expit(x)
                    bb = min(max(bel[i], 1e-12), 1 - 1e-12)
                    lo_b[i] = math.log(bb / (1.0 - bb))
        else:
            # Three simple passes (they pipeline and vectorise far better than one long loop body):
            # the log-odds from this week's evidence, then the belief, then presence and assurance.
            signal = llr[1] if setup_signal else 0.0
            for i in range(r):
                arrival = scheduled_arrival | sa[i]
                continuing = on[i] & (not arrival)
                threat = uc[i] == US_THREAT
                statement = uc[i] == US_STATEMENT
                inaction = (_SEVERITY[dc[i]] >= _MAJOR) & (not arrival) & (not threat)
                h = hab[int(pw[i])]
                evidence = ((signal if setup_signal else arrival * llr[0])
                            + continuing * h * llr[2] + consultation * llr[3] + threat * llr[4]
                            + statement * llr[5] + inaction * llr[6])
                x = prior_log_odds + memory * (lo_b[i] - prior_log_odds) + evidence
                x = min(max(x, -logit_bound), logit_bound)
                lo_b[i] = x if al[i] else lo_b[i]
            for i in range(r):
                bel[i] = _expit(lo_b[i])
        for i in range(r):
            arrival = scheduled_arrival | sa[i]
            continuing = on[i] & (not arrival)
            threat = uc[i] == US_THREAT
            statement = uc[i] == US_STATEMENT
            d = dc[i]
            gain = (arrival * ad + continuing * ap + consultation * ac + threat * at + statement * ast)
            shock = ((d == LRBM) | (d == NUCLEAR)) * shock_lr
            anchor = anchor0 - dec * cap[i]
            rok_new = _assurance_step(ra[i], gain, shock, anchor, rev)
            jp_gain = gain + (jc[i] == JP_TRILATERAL) * tri
            jp_new = _assurance_step(ja[i], jp_gain, shock, anchor, rev)
            ra[i] = rok_new if al[i] else ra[i]
            ja[i] = jp_new if al[i] else ja[i]
            pw[i] = pw[i] + 1.0 if on[i] else 0.0


@njit(cache=True, error_model="numpy")
def escalation_week(pt, r, week, pressure, tension, exercise_intensity, on_station, scheduled_arrival,
                    surge_arrival, us_choice, rok_choice, jp_choice, dprk_choice, missiles, u_clash, u_war,
                    clash, alive, max_rung, first_clash_week, war_week, scratch):
    """Pressure, tension, unintended clashes, war and the ladder (DeterrenceModel._advance_escalation)."""
    for b in range(pt.size):
        q = pt[b]
        lo, hi = b * r, (b + 1) * r
        tension_of = np.array([0.0, q.tension_talks, q.tension_rhetoric, q.tension_srbm, q.tension_lrbm,
                               q.tension_nuclear, q.tension_border])
        pm, pe, pa, ps, pth, psd, ptr = (q.pressure_memory, q.pressure_exercise, q.pressure_asset,
                                         q.pressure_surge, q.pressure_threat, q.pressure_strike_drill,
                                         q.pressure_trilateral)
        tpm, te, td, tt, tsd, to, ttr = (q.tension_per_missile, q.tension_exercise, q.tension_deploy,
                                         q.tension_threat, q.tension_strike_drill, q.tension_outreach,
                                         q.tension_trilateral)
        decay, ci, cs, tc, wi, ws = (q.tension_decay, q.clash_intercept, q.clash_slope, q.tension_clash,
                                     q.war_intercept, q.war_slope)
        pr, ten, on, sa = pressure[lo:hi], tension[lo:hi], on_station[lo:hi], surge_arrival[lo:hi]
        uc, rc, jc, dc, mis = (us_choice[lo:hi], rok_choice[lo:hi], jp_choice[lo:hi], dprk_choice[lo:hi],
                               missiles[lo:hi])
        cl, al, mr, fcw, ww = (clash[lo:hi], alive[lo:hi], max_rung[lo:hi], first_clash_week[lo:hi],
                               war_week[lo:hi])
        t_new = scratch[0, lo:hi]
        # Pressure and the tension before clashes, in one simple pass; clashes and war in a second.
        for i in range(r):
            arrival = scheduled_arrival | sa[i]
            threat = uc[i] == US_THREAT
            strike = rc[i] == ROK_STRIKE
            trilateral = jc[i] == JP_TRILATERAL
            pr[i] = (pm * pr[i] + pe * exercise_intensity + pa * on[i] + ps * sa[i] + pth * threat
                     + psd * strike + ptr * trilateral)
            impulse = (tension_of[dc[i]] + tpm * mis[i] + te * exercise_intensity + td * arrival
                       + tt * threat + tsd * strike + to * (rc[i] == ROK_OUTREACH) + ttr * trilateral)
            t_new[i] = max(decay * ten[i] + impulse, 0.0)
        for i in range(r):
            t = t_new[i]
            unintended = u_clash[i] < _expit(ci + cs * t)
            rung = _RUNG[dc[i]]
            is_clash = ((rung >= 4) | unintended) & al[i]
            cl[i] = is_clash
            if not is_clash:
                if al[i]:
                    ten[i] = t
                    if rung > mr[i]:
                        mr[i] = rung
                continue
            t = t + tc
            war = u_war[i] < _expit(wi + ws * t)
            ten[i] = t
            rung = 5 if war else max(rung, 4)
            if rung > mr[i]:
                mr[i] = rung
            if fcw[i] < 0:
                fcw[i] = week
            if war:
                ww[i] = week
                al[i] = False


@njit(cache=True, error_model="numpy")
def record_week(counts, offsets, dprk_choice, us_choice, rok_choice, jp_choice, missiles, active,
                scheduled_arrival, surge_arrival, clash, dprk_lrbm, dprk_nuclear, pending, lag_histogram,
                r, max_lag, extra):
    """One week of per replication-year counts and response lags (sim.recording.Recorder.record).

    ``counts`` is this year's (column, R) block; ``extra`` the columns of launch days, missiles,
    deployments, clashes and weeks.
    """
    n = dprk_choice.size
    for i in range(n):
        arrival = scheduled_arrival or surge_arrival[i]
        if active[i]:
            counts[offsets[0] + dprk_choice[i], i] += 1
            counts[offsets[1] + us_choice[i], i] += 1
            counts[offsets[2] + rok_choice[i], i] += 1
            counts[offsets[3] + jp_choice[i], i] += 1
            counts[extra[4], i] += 1
            if arrival:
                counts[extra[2], i] += 1
        if missiles[i] > 0:
            counts[extra[0], i] += 1
            counts[extra[1], i] += missiles[i]
        if clash[i]:
            counts[extra[3], i] += 1
        # Response lags: see Recorder._record_lags for the definition.
        d = dprk_choice[i]
        if (d == dprk_lrbm or d == dprk_nuclear) and active[i] and pending[i] < 0:
            pending[i] = 0
        if pending[i] >= 0:
            answered = arrival
            pending[i] += 1
            if answered:
                lag_histogram[i // r, pending[i] - 1] += 1
                pending[i] = -1
            elif pending[i] > max_lag:
                lag_histogram[i // r, max_lag + 1] += 1
                pending[i] = -1


@njit(cache=True, error_model="numpy")
def order_statistics(x, ranks, out, bins):
    """The ``ranks``-th smallest values of ``x`` (0-based, ascending ranks), exactly, in O(n).

    A histogram pass locates the bin of each rank (``bins`` is int scratch of x's length); one pass
    then collects the values of those bins, and a selection (``np.partition``) among them gives
    each value. The same values as sorting ``x``; ``tests/test_engine.py`` checks them against
    ``np.sort`` and the quantiles against ``np.quantile``. Returns the sum of ``x`` (for the mean).
    """
    n = x.size
    lo = x[0]
    hi = x[0]
    total = 0.0
    for i in range(n):
        v = x[i]
        lo = min(lo, v)
        hi = max(hi, v)
        total += v
    if not hi > lo:  # all equal (or NaN: let it propagate)
        for k in range(ranks.size):
            out[k] = hi if hi == lo else np.nan
        return total
    nbins = max(16, min(4096, n // 4))
    span = hi - lo
    scale = nbins / span
    if not (math.isfinite(span) and math.isfinite(scale) and scale > 0):  # extreme ranges: sort
        ordered = np.sort(x)
        for k in range(ranks.size):
            out[k] = ordered[ranks[k]]
        return total
    # four interleaved histograms, so that runs of equal bins do not serialise the increments
    counts4 = np.zeros((4, nbins), dtype=np.int64)
    for i in range(n):
        b = min(int((x[i] - lo) * scale), nbins - 1)
        bins[i] = b
        counts4[i & 3, b] += 1
    below = np.zeros(nbins + 1, dtype=np.int64)  # below[k] = number of values in bins under k
    for k in range(nbins):
        below[k + 1] = below[k] + counts4[0, k] + counts4[1, k] + counts4[2, k] + counts4[3, k]
    # the bin of each rank, and where its values go in one buffer
    target = np.empty(ranks.size, dtype=np.int64)
    slot = np.full(nbins, -1, dtype=np.int64)
    size = 0
    for k in range(ranks.size):
        t = np.searchsorted(below, ranks[k], side="right") - 1
        target[k] = t
        if slot[t] < 0:
            slot[t] = size
            size += below[t + 1] - below[t]
    members = np.empty(size)
    filled = slot.copy()
    for i in range(n):
        s = filled[bins[i]]
        if s >= 0:
            members[s] = x[i]
            filled[bins[i]] = s + 1
    for k in range(ranks.size):
        t = target[k]
        start = slot[t]
        part = np.partition(members[start:start + below[t + 1] - below[t]], ranks[k] - below[t])
        out[k] = part[ranks[k] - below[t]]
    return total


@njit(cache=True, error_model="numpy")
def weekly_statistics(row, cols, tension, belief, rok_assurance, jp_assurance, ranks, weights, order, bins,
                      dprk_choice, us_choice, rok_choice, jp_choice, offsets, active, missiles, clash,
                      alive, on_station, cost, max_rung, n_rungs):
    """One row of the weekly ensemble statistics (sim.recording.Recorder._record_weekly) in one call.

    ``cols`` holds the row's columns of the four state means (each followed by its quantiles), then
    the first action share, DPRK missiles, clash, war, asset on station, US cost and the first
    ladder rung reached. Quantiles interpolate the order statistics at ``ranks`` with ``weights``
    as numpy's 'linear' method does.
    """
    n = tension.size
    state = (tension, belief, rok_assurance, jp_assurance)
    nq = weights.size
    for v in range(4):
        x = state[v]
        c = cols[v]
        row[c] = order_statistics(x, ranks, order, bins) / n
        for k in range(nq):
            lo, hi, t = order[2 * k], order[2 * k + 1], weights[k]
            diff = hi - lo
            row[c + 1 + k] = hi - diff * (1 - t) if t >= 0.5 else lo + diff * t
    start = cols[4]
    width = offsets[3] + 4
    tallies = np.zeros((4, width), dtype=np.int64)  # four interleaved accumulators (see above)
    choices = (dprk_choice, us_choice, rok_choice, jp_choice)
    for a in range(4):
        choice = choices[a]
        base = offsets[a]
        for i in range(n):
            tallies[i & 3, base + choice[i]] += active[i]
    for k in range(width):
        row[start + k] = (tallies[0, k] + tallies[1, k] + tallies[2, k] + tallies[3, k]) / n
    launched = 0.0
    clashes = 0.0
    living = 0.0
    present = 0.0
    spent = 0.0
    for i in range(n):
        spent += cost[i]
        launched += missiles[i]
        clashes += clash[i]
        living += alive[i]
        present += on_station[i]
    row[cols[5]] = launched / n
    row[cols[6]] = clashes / n
    row[cols[7]] = 1.0 - living / n
    row[cols[8]] = present / n
    row[cols[9]] = spent / n
    rungs = np.zeros((4, n_rungs))
    for i in range(n):
        rungs[i & 3, max_rung[i]] += 1.0
    reached = rungs[0] + rungs[1] + rungs[2] + rungs[3]
    for k in range(n_rungs - 2, -1, -1):
        reached[k] += reached[k + 1]
    for k in range(1, n_rungs):
        row[cols[10] + k - 1] = reached[k] / n
