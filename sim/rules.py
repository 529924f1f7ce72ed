"""Pure, vectorised behavioural rules. Each works on numpy arrays of length R (one per replication).

These functions hold the model's equations; the agents in :mod:`sim.agents` only gather their inputs.
They are tested without a model in ``tests/test_rules.py``. Sources are cited per function; the
full list is in ``docs/model.md``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit, softmax

LOGIT_BOUND = 12.0  # beliefs are kept in [expit(-12), expit(12)] ~ [6e-6, 1 - 6e-6]


def quantal_response(utilities: np.ndarray, precision: float) -> np.ndarray:
    """Logit quantal-response choice probabilities (McKelvey & Palfrey 1995).

    ``P(a) = exp(lambda * U_a) / sum_b exp(lambda * U_b)`` over the last axis. ``precision`` (lambda)
    = 0 gives uniform play; as it grows the choice tends to the best response. Utilities of
    ``-inf`` mark actions that are unavailable (probability 0, also at precision 0).
    """
    u = np.asarray(utilities, dtype=float)
    z = precision * u if precision > 0 else np.where(np.isneginf(u), -np.inf, 0.0)
    return softmax(z, axis=-1)


def sample_choice(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Draw one action per row by inverse CDF from pre-drawn uniforms in [0, 1).

    Taking the uniforms as input keeps every agent's random stream consumption fixed (one uniform
    per replication per week) whatever the probabilities, so that policies compared at the same seed
    use common random numbers.
    """
    cdf = np.cumsum(probabilities, axis=-1)
    choice = (cdf <= uniforms[:, None] * cdf[:, -1:]).sum(axis=-1)
    return np.minimum(choice, probabilities.shape[-1] - 1)


def sample_quantal(utilities: np.ndarray, precision: float, uniforms: np.ndarray) -> np.ndarray:
    """Fast quantal-response draw; utilities have shape (actions, R), actions first.

    The same law as ``sample_choice(quantal_response(utilities.T, precision), uniforms)`` (a test
    checks it): with ``e_a = exp(lambda (U_a - max U))``, the action is the number of running sums
    ``e_0 + ... + e_a`` at or below ``u * sum(e)`` (so a zero-probability first action is never
    drawn, even for u = 0). Working on contiguous rows of length R instead of
    rows of a few actions avoids the per-row overhead of a general softmax; normalising is not
    needed because the threshold is scaled instead.
    """
    u = np.asarray(utilities, dtype=float)
    if precision > 0:
        z = precision * u
    else:
        z = np.where(np.isneginf(u), -np.inf, 0.0)
    z -= z.max(axis=0)
    np.exp(z, out=z)
    threshold = uniforms * z.sum(axis=0)
    running = np.zeros_like(threshold)
    choice = np.zeros(threshold.shape, dtype=np.int64)
    for row in z[:-1]:
        running += row
        choice += running <= threshold
    return choice


def bayes_update(prior: np.ndarray, lik_resolute: float, lik_irresolute: float) -> np.ndarray:
    """Posterior probability that the US is resolute after one signal (Bayes' rule).

    ``b' = b L_r / (b L_r + (1 - b) L_i)`` where ``L_r``, ``L_i`` are the probabilities that a
    resolute and an irresolute US send the signal. A signal that an irresolute US would rarely send
    (a costly one: sunk costs, Fearon 1997; tied hands, Fearon 1994) has a large ratio and moves the
    belief; cheap talk has a ratio near 1 and barely does.
    """
    prior = np.asarray(prior, dtype=float)
    num = prior * lik_resolute
    return num / (num + (1.0 - prior) * lik_irresolute)


def log_likelihood_ratio(lik_resolute: float, lik_irresolute: float) -> float:
    """``log(L_r / L_i)``: the shift a signal gives the log-odds of the belief."""
    return float(np.log(lik_resolute) - np.log(lik_irresolute))


def update_log_odds(
    log_odds: np.ndarray, evidence: np.ndarray, prior_log_odds: np.ndarray, memory: float
) -> np.ndarray:
    """Bayes in log-odds with fading memory.

    ``x' = x0 + memory * (x - x0) + evidence`` where ``evidence`` is the sum of log-likelihood ratios
    of the signals seen this week (independent signals multiply their likelihoods). ``memory`` = 1 is
    exact Bayesian updating; below 1 the belief drifts back to the prior ``x0`` unless signals renew
    it (discounted learning, a standard device for non-stationary opponents; e.g. Fudenberg & Levine
    1998, ch. 4). Bounded to +/- ``LOGIT_BOUND`` so that beliefs stay strictly inside (0, 1).
    """
    x = prior_log_odds + memory * (log_odds - prior_log_odds) + evidence
    return np.clip(x, -LOGIT_BOUND, LOGIT_BOUND)


def current_calculus_belief(
    credibility: float,
    on_station: np.ndarray,
    exercise_intensity: float,
    capability: np.ndarray,
    intercept: float,
    interest: float,
    presence: float,
    exercise: float,
    decoupling: float,
) -> np.ndarray:
    """Belief from capability and interest now, not past behaviour (Press 2005, *Calculating Credibility*).

    ``b = expit(c0 + c_int * logit(credibility) + c_pres * on_station + c_ex * exercise
    - c_dec * K)``: the known US stake (``credibility``), forces at hand, and the DPRK's long-range
    capability ``K``, which makes defending Seoul riskier for Washington (decoupling).
    """
    c = float(np.clip(credibility, 1e-4, 1 - 1e-4))
    x = (
        intercept
        + interest * logit(c)
        + presence * np.asarray(on_station, dtype=float)
        + exercise * exercise_intensity
        - decoupling * np.asarray(capability, dtype=float)
    )
    return expit(x)


def habituation(weeks_on_station: np.ndarray, habituation_weeks: float) -> np.ndarray:
    """Weight of a continuing presence as a signal: ``exp(-w / h)`` after ``w`` weeks on station.

    A permanent posture's signal value fades as it becomes the status quo: a continuing presence
    sinks no new cost (Fearon 1997), and stationing adds little (Fuhrmann & Sechser 2014).
    The count restarts only after a week with nothing on station, so back-to-back rotations
    habituate like a permanent presence.
    """
    return np.exp(-np.asarray(weeks_on_station, dtype=float) / habituation_weeks)


def assurance_step(
    assurance: np.ndarray,
    signal_gain: np.ndarray,
    shock: np.ndarray,
    anchor: np.ndarray,
    reversion: float,
) -> np.ndarray:
    """One week of allied assurance (Snyder 1984, two audiences; decoupling).

    Signals close part of the gap to full assurance (``A += g (1 - A)``), long-range or nuclear
    tests remove a share of it (``A -= s A``), and it reverts towards an anchor that falls with DPRK
    long-range capability. Stays in [0, 1] for gains and shocks in [0, 1].
    """
    a = assurance + np.minimum(signal_gain, 1.0) * (1.0 - assurance)
    a = a - np.minimum(shock, 1.0) * a
    a = a + reversion * (anchor - a)
    return np.clip(a, 0.0, 1.0)


def tension_step(tension: np.ndarray, impulse: np.ndarray, decay: float) -> np.ndarray:
    """``T' = max(0, decay * T + impulse)``: tension with exponential decay.

    Provocations and threatening signals add to it, reassurance subtracts: the competition in risk
    taking (Schelling 1966) and the spiral (Jervis 1976).
    """
    return np.maximum(decay * tension + impulse, 0.0)


def clash_probability(tension: np.ndarray, intercept: float, slope: float) -> np.ndarray:
    """Weekly chance of an unintended kinetic clash, ``expit(a + b T)``.

    Schelling's 'threat that leaves something to chance' (1960, ch. 8; 1966): the risk of losing
    control rises with tension even when no side chooses to fight.
    """
    return expit(intercept + slope * np.asarray(tension, dtype=float))


def salvo_size(uniforms: np.ndarray, tension: np.ndarray, extra, tension_gain,
               dispersion: float) -> np.ndarray:
    """Missiles on a launch day: ``1 + NegBin(size=dispersion, mean=extra * (1 + gain * T))``.

    Heavy-tailed for small ``dispersion``: most launch days fire one or two missiles, a few fire a
    barrage (more than 20 on 2 Nov 2022; Korea JoongAng Daily, 2 Nov 2022), more often when
    tension is high.

    Drawn by inverse CDF (:func:`negative_binomial_quantile`) from one uniform per replication,
    pre-drawn for every replication each week whether or not it launches: a fixed use of the stream,
    so that common random numbers hold across parameters and policies.
    """
    mean = extra * (1.0 + tension_gain * np.asarray(tension, dtype=float))
    return 1 + negative_binomial_quantile(uniforms, mean, dispersion)


MAX_QUANTILE_TERMS = 10_000  # a draw stops here (10,000 missiles: never reached at sane means)


def negative_binomial_quantile(uniforms: np.ndarray, mean, size: float) -> np.ndarray:
    """Smallest k with ``P(X <= k) >= u`` for ``X ~ NegBin(size, mean)``, elementwise.

    Exact inverse-CDF sampling, summing the pmf upwards from ``P(0) = (size / (size + mean))^size``
    with ``P(k + 1) = P(k) (k + size) / (k + 1) * mean / (size + mean)``. Each pass only touches the
    entries still below their uniform, so the cost grows with the largest count, not with the array
    size times it. The compiled engine runs the same recursion per value
    (:func:`sim.kernels.negative_binomial_quantile`).
    """
    u = np.asarray(uniforms, dtype=float)
    mean = np.broadcast_to(np.asarray(mean, dtype=float), u.shape)
    k = np.zeros(u.shape, dtype=np.int64)
    ratio = mean / (size + mean)
    pmf = np.exp(-np.minimum(size * np.log1p(mean / size), 700.0))  # exp(-700) > 0
    idx = np.flatnonzero(pmf < u)  # the rest stop at k = 0
    u_a, ratio_a, pmf_a = u[idx], ratio[idx], pmf[idx]
    cdf_a = pmf_a.copy()
    j = 0
    while idx.size and j < MAX_QUANTILE_TERMS:
        pmf_a = pmf_a * ((j + size) / (j + 1)) * ratio_a
        j += 1
        cdf_a = cdf_a + pmf_a
        # stop where the cdf reached u, or no longer grows (u within rounding of 1)
        go_on = (cdf_a < u_a) & (pmf_a > 0)
        k[idx[~go_on]] = j
        idx, u_a, ratio_a, pmf_a, cdf_a = idx[go_on], u_a[go_on], ratio_a[go_on], pmf_a[go_on], cdf_a[go_on]
    k[idx] = j  # the cap
    return k
