"""Unit and property tests of the pure behavioural rules in ``sim.rules``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit, logit

from sim import ModelParams, rules

finite_utility = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
open_unit = st.floats(min_value=1e-6, max_value=1 - 1e-6, allow_nan=False)


# --------------------------------------------------------------------------------------- Bayes
@pytest.mark.parametrize(
    ("b", "lr", "li"),
    [
        (0.5, 0.5, 0.4),
        (0.5, 0.6, 0.3),
        (0.2, 0.9, 0.1),
        (0.9, 0.1, 0.8),
        (0.01, 0.3, 0.6),
        (0.7, 0.5, 0.5),
        (0.999, 0.2, 0.7),
    ],
)
def test_bayes_update_matches_closed_form(b, lr, li):
    expected = b * lr / (b * lr + (1 - b) * li)
    assert rules.bayes_update(np.array([b]), lr, li)[0] == pytest.approx(expected, rel=1e-12)


def test_bayes_update_is_vectorised_over_replications():
    b = np.array([0.1, 0.5, 0.9])
    out = rules.bayes_update(b, 0.6, 0.3)
    assert out.shape == b.shape
    for i in range(3):
        assert out[i] == pytest.approx(rules.bayes_update(b[i], 0.6, 0.3))


@given(b=open_unit, l1r=open_unit, l1i=open_unit, l2r=open_unit, l2i=open_unit)
def test_two_sequential_updates_equal_one_with_the_product_of_likelihoods(b, l1r, l1i, l2r, l2i):
    twice = rules.bayes_update(rules.bayes_update(b, l1r, l1i), l2r, l2i)
    once = rules.bayes_update(b, l1r * l2r, l1i * l2i)
    assert float(twice) == pytest.approx(float(once), rel=1e-9, abs=1e-12)


@given(x=st.floats(-11.9, 11.9), x0=st.floats(-11.9, 11.9))
def test_update_log_odds_with_full_memory_and_no_evidence_is_the_identity(x, x0):
    out = rules.update_log_odds(np.array([x]), np.array([0.0]), np.array([x0]), 1.0)
    assert out[0] == pytest.approx(x, abs=1e-12)


@given(
    b=st.floats(0.01, 0.99),
    lrs=st.lists(st.tuples(st.floats(0.05, 0.95), st.floats(0.05, 0.95)), min_size=1, max_size=4),
)
def test_update_log_odds_with_evidence_is_the_logit_sum(b, lrs):
    x = logit(b)
    evidence = sum(rules.log_likelihood_ratio(r, i) for r, i in lrs)
    assume(abs(x + evidence) < rules.LOGIT_BOUND)
    out = rules.update_log_odds(np.array([x]), np.array([evidence]), np.array([x]), 1.0)
    assert out[0] == pytest.approx(x + sum(math.log(r) - math.log(i) for r, i in lrs), abs=1e-9)


@given(b=st.floats(0.001, 0.999), lr=open_unit, li=open_unit)
def test_log_odds_update_agrees_with_bayes_update(b, lr, li):
    via_log_odds = expit(logit(b) + math.log(lr / li))
    assert via_log_odds == pytest.approx(float(rules.bayes_update(b, lr, li)), rel=1e-9, abs=1e-12)
    # ... and the model's route: update_log_odds with full memory, evidence = the log-likelihood ratio
    x = rules.update_log_odds(np.array([logit(b)]), np.array([rules.log_likelihood_ratio(lr, li)]),
                              np.array([0.0]), 1.0)
    assume(abs(logit(b) + math.log(lr / li)) < rules.LOGIT_BOUND)
    assert expit(x[0]) == pytest.approx(float(rules.bayes_update(b, lr, li)), rel=1e-9, abs=1e-12)


@given(x=st.floats(-11, 11), x0=st.floats(-11, 11), memory=st.floats(0.0, 1.0))
def test_fading_memory_shrinks_the_distance_to_the_prior(x, x0, memory):
    out = rules.update_log_odds(np.array([x]), np.array([0.0]), np.array([x0]), memory)[0]
    assert abs(out - x0) == pytest.approx(memory * abs(x - x0), abs=1e-9)


def test_update_log_odds_is_bounded():
    out = rules.update_log_odds(np.array([0.0, 0.0]), np.array([100.0, -100.0]), np.array([0.0, 0.0]), 1.0)
    np.testing.assert_array_equal(out, [rules.LOGIT_BOUND, -rules.LOGIT_BOUND])
    assert 0.0 < expit(out[1]) < expit(out[0]) < 1.0


# ---------------------------------------------------------------------------- quantal response
@given(
    u=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=finite_utility),
    precision=st.floats(0.0, 50.0),
)
def test_quantal_response_rows_sum_to_one(u, precision):
    p = rules.quantal_response(u, precision)
    assert p.shape == u.shape
    assert np.all(np.isfinite(p))
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


@given(u=arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 7)), elements=finite_utility))
def test_quantal_response_precision_zero_is_uniform(u):
    p = rules.quantal_response(u, 0.0)
    np.testing.assert_allclose(p, 1.0 / u.shape[-1], rtol=1e-12)


@given(
    u=st.lists(finite_utility, min_size=2, max_size=7, unique=True),
    precisions=st.lists(st.floats(0.0, 50.0), min_size=2, max_size=10),
)
def test_probability_of_the_best_action_is_non_decreasing_in_precision(u, precisions):
    u = np.array(u)
    best = int(np.argmax(u))
    p_best = [rules.quantal_response(u[None, :], lam)[0, best] for lam in sorted(precisions)]
    assert all(b >= a - 1e-12 for a, b in zip(p_best, p_best[1:], strict=False))


def test_probability_of_the_best_action_tends_to_one():
    u = np.array([[0.3, 1.0, -2.0, 0.9]])
    p = [rules.quantal_response(u, lam)[0, 1] for lam in (0.0, 1.0, 10.0, 100.0, 1000.0)]
    assert p[0] == pytest.approx(0.25)
    assert p == sorted(p)
    assert p[-1] > 1 - 1e-12


@pytest.mark.parametrize("precision", [0.0, 0.1, 1.0, 50.0])
def test_minus_infinity_utilities_get_probability_zero(precision):
    u = np.array([[0.0, 1.0, -np.inf], [-np.inf, -3.0, 2.0]])
    p = rules.quantal_response(u, precision)
    assert p[0, 2] == 0.0
    assert p[1, 0] == 0.0
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    if precision == 0.0:  # uniform over the available actions
        np.testing.assert_allclose(p, [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])


# ------------------------------------------------------------------------------- sampling
def test_sample_choice_frequencies_match_probabilities():
    """Seed 2024, n = 200_000 draws: every frequency within 4 binomial standard errors."""
    n = 200_000
    probs = np.array([0.1, 0.0, 0.25, 0.05, 0.6, 0.0])
    rng = np.random.default_rng(2024)
    choice = rules.sample_choice(np.tile(probs, (n, 1)), rng.random(n))
    freq = np.bincount(choice, minlength=probs.size) / n
    se = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) <= 4 * se + 1e-15), (freq, probs)
    assert freq[1] == 0 and freq[5] == 0


def test_sample_choice_mixed_rows_match_probabilities():
    """Seed 7, n = 200_000: each row has its own probabilities (the vectorised case in the model)."""
    n = 200_000
    rng = np.random.default_rng(7)
    a = np.array([0.7, 0.2, 0.1])
    b = np.array([0.0, 0.5, 0.5])
    probs = np.where((np.arange(n) % 2 == 0)[:, None], a, b)
    choice = rules.sample_choice(probs, rng.random(n))
    for row_probs, chosen in ((a, choice[0::2]), (b, choice[1::2])):
        m = chosen.size
        freq = np.bincount(chosen, minlength=3) / m
        assert np.all(np.abs(freq - row_probs) <= 4 * np.sqrt(row_probs * (1 - row_probs) / m) + 1e-15)


@st.composite
def probability_rows_with_zeros(draw):
    k = draw(st.integers(2, 7))
    weights = draw(st.lists(st.floats(0.0, 10.0), min_size=k, max_size=k))
    zero_mask = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    w = np.array([0.0 if z else x for x, z in zip(weights, zero_mask, strict=True)])
    assume(w.sum() > 0)
    return w / w.sum()


@given(
    probs=probability_rows_with_zeros(),
    uniforms=st.lists(st.floats(0.0, 1.0, exclude_min=True, exclude_max=True), min_size=1, max_size=20),
)
def test_sample_choice_never_picks_a_zero_probability_action(probs, uniforms):
    u = np.array(uniforms)
    choice = rules.sample_choice(np.tile(probs, (u.size, 1)), u)
    assert np.all((choice >= 0) & (choice < probs.size))
    assert np.all(probs[choice] > 0), (probs, u, choice)


def test_sample_choice_at_uniform_zero_skips_a_leading_zero_probability_action():
    """u = 0.0 is a legal draw of Generator.random() ([0, 1)); it must not select an impossible action."""
    probs = np.array([[0.0, 0.3, 0.7], [0.0, 0.0, 1.0]])
    choice = rules.sample_choice(probs, np.array([0.0, 0.0]))
    assert np.all(probs[np.arange(2), choice] > 0), choice


# ------------------------------------------------------- the fast path used by the agents
@given(
    shape=st.tuples(st.integers(1, 7), st.integers(1, 40)),
    data=st.data(),
    precision=st.floats(0.0, 20.0),
    seed=st.integers(0, 2**32 - 1),
    unavailable_last=st.booleans(),
)
def test_sample_quantal_equals_quantal_response_then_sample_choice(shape, data, precision, seed,
                                                                    unavailable_last):
    """Same draws as the reference route, on utilities of shape (actions, R) and seeded uniforms."""
    u = data.draw(arrays(np.float64, shape, elements=finite_utility))
    if unavailable_last and shape[0] > 1:
        u[-1] = -np.inf  # e.g. a US surge under posture `none`
    uniforms = np.random.default_rng(seed).random(shape[1])
    fast = rules.sample_quantal(u, precision, uniforms)
    reference = rules.sample_choice(rules.quantal_response(u.T, precision), uniforms)
    np.testing.assert_array_equal(fast, reference)
    if unavailable_last and shape[0] > 1:
        assert np.all(fast < shape[0] - 1)


def test_sample_quantal_frequencies_match_quantal_response():
    """Seed 31, n = 200_000 replications sharing one utility column: each frequency within 4 SE."""
    n = 200_000
    col = np.array([0.5, -1.0, 2.0, 1.5, -np.inf])
    probs = rules.quantal_response(col, 1.3)
    u = np.tile(col[:, None], (1, n))
    choice = rules.sample_quantal(u, 1.3, np.random.default_rng(31).random(n))
    freq = np.bincount(choice, minlength=col.size) / n
    assert np.all(np.abs(freq - probs) <= 4 * np.sqrt(probs * (1 - probs) / n) + 1e-15), (freq, probs)
    assert freq[-1] == 0


def test_sample_quantal_precision_zero_is_uniform_over_available_actions():
    n = 120_000
    u = np.tile(np.array([[3.0], [-2.0], [-np.inf], [0.0]]), (1, n))
    choice = rules.sample_quantal(u, 0.0, np.random.default_rng(5).random(n))
    freq = np.bincount(choice, minlength=4) / n
    assert freq[2] == 0
    np.testing.assert_allclose(freq[[0, 1, 3]], 1 / 3, atol=4 * np.sqrt(2 / 9 / n))


def test_sample_quantal_at_uniform_zero_skips_a_zero_probability_first_action():
    """u = 0.0 (a legal Generator.random() draw) with a first action whose probability underflows to 0."""
    u = np.array([[-100.0, -np.inf], [0.0, 0.0], [1.0, 1.0]])  # precision 10: exp(-1010) == 0
    choice = rules.sample_quantal(u, 10.0, np.array([0.0, 0.0]))
    assert np.all(choice != 0), choice


# ------------------------------------------------------------------------ small state rules
def test_habituation_decreases_from_one():
    w = np.arange(0, 200)
    h = rules.habituation(w, 26.0)
    assert h[0] == 1.0
    assert np.all(np.diff(h) < 0)
    assert np.all(h > 0)
    # a shorter habituation time fades faster
    assert np.all(rules.habituation(w[1:], 5.0) < rules.habituation(w[1:], 26.0))


@given(
    a=arrays(np.float64, 5, elements=unit),
    gain=arrays(np.float64, 5, elements=st.floats(0.0, 3.0)),
    shock=arrays(np.float64, 5, elements=st.floats(0.0, 3.0)),
    anchor=arrays(np.float64, 5, elements=st.floats(-1.0, 1.0)),
    reversion=unit,
)
def test_assurance_step_stays_in_unit_interval(a, gain, shock, anchor, reversion):
    out = rules.assurance_step(a, gain, shock, anchor, reversion)
    assert out.shape == a.shape
    assert np.all((out >= 0.0) & (out <= 1.0))


@given(a=unit, g1=unit, g2=unit, anchor=unit, reversion=unit)
def test_assurance_step_rises_with_the_signal_gain(a, g1, g2, anchor, reversion):
    lo, hi = sorted((g1, g2))
    zero = np.zeros(1)
    out_lo = rules.assurance_step(np.array([a]), np.array([lo]), zero, np.array([anchor]), reversion)
    out_hi = rules.assurance_step(np.array([a]), np.array([hi]), zero, np.array([anchor]), reversion)
    assert out_hi[0] >= out_lo[0] - 1e-12


@given(
    t=arrays(np.float64, 6, elements=st.floats(0.0, 100.0)),
    impulse=arrays(np.float64, 6, elements=st.floats(-50.0, 50.0)),
    decay=unit,
)
def test_tension_step_is_non_negative(t, impulse, decay):
    out = rules.tension_step(t, impulse, decay)
    assert np.all(out >= 0)
    np.testing.assert_allclose(out, np.maximum(decay * t + impulse, 0.0))


def test_clash_probability_increases_with_tension():
    t = np.linspace(0, 60, 121)
    p = rules.clash_probability(t, -8.0, 0.35)
    assert np.all(np.diff(p) > 0)
    assert np.all((p > 0) & (p < 1))


@given(intercept=st.floats(-15, 0), slope=st.floats(0.01, 2.0), t1=st.floats(0, 50), t2=st.floats(0, 50))
def test_clash_probability_monotone_for_any_positive_slope(intercept, slope, t1, t2):
    lo, hi = sorted((t1, t2))
    assert rules.clash_probability(hi, intercept, slope) >= rules.clash_probability(lo, intercept, slope)


def _cc(credibility=0.6, on_station=False, intensity=0.0, capability=0.5, **kw):
    p = dict(intercept=0.0, interest=1.0, presence=0.5, exercise=0.3, decoupling=1.0)
    p.update(kw)
    return float(rules.current_calculus_belief(credibility, np.array([on_station]), intensity,
                                               np.array([capability]), **p)[0])


def test_current_calculus_belief_directions():
    creds = [0.05, 0.2, 0.5, 0.8, 0.95]
    assert all(_cc(credibility=a) < _cc(credibility=b) for a, b in zip(creds, creds[1:], strict=False))
    assert _cc(on_station=True) > _cc(on_station=False)
    caps = [0.0, 0.3, 0.7, 1.0]
    assert all(_cc(capability=a) > _cc(capability=b) for a, b in zip(caps, caps[1:], strict=False))
    assert _cc(intensity=2.0) > _cc(intensity=0.0)
    for b in (_cc(), _cc(credibility=1.0, on_station=True, intensity=3.0, capability=0.0)):
        assert 0.0 < b < 1.0


def test_current_calculus_belief_closed_form():
    c, k = 0.7, 0.4
    expected = expit(0.1 + 1.2 * logit(c) + 0.5 * 1 + 0.3 * 2.0 - 0.9 * k)
    got = _cc(credibility=c, on_station=True, intensity=2.0, capability=k,
              intercept=0.1, interest=1.2, presence=0.5, exercise=0.3, decoupling=0.9)
    assert got == pytest.approx(expected, rel=1e-12)


def _salvo(rng, tension, extra=0.8, gain=0.1, dispersion=0.5):
    n = tension.size
    return rules.salvo_size(rng.random(n), tension, extra, gain, dispersion)


def test_salvo_draw_at_least_one_missile():
    rng = np.random.default_rng(99)
    x = _salvo(rng, np.full(50_000, 3.0))
    assert x.min() >= 1
    assert np.issubdtype(x.dtype, np.integer)


def test_salvo_mean_increases_with_tension():
    """Seed 11, n = 200_000 launch days per tension level: mean difference > 3 standard errors."""
    rng = np.random.default_rng(11)
    n = 200_000
    means, ses = [], []
    for tension in (0.0, 5.0, 20.0):
        x = _salvo(rng, np.full(n, tension))
        assert x.min() >= 1
        means.append(x.mean())
        ses.append(x.std(ddof=1) / np.sqrt(n))
    for i in range(2):
        assert means[i + 1] - means[i] > 3 * np.hypot(ses[i], ses[i + 1]), (means, ses)


# --------------------------------------------------------------------- costly vs cheap signals
def test_costly_signals_have_larger_likelihood_ratios_than_statements():
    p = ModelParams()
    llr = {s: rules.log_likelihood_ratio(getattr(p, f"lik_{s}_res"), getattr(p, f"lik_{s}_irr"))
           for s in ("deploy", "permanent", "statement")}
    assert llr["deploy"] > llr["statement"]
    assert llr["permanent"] > llr["statement"]
    assert llr["statement"] >= 0


def test_bayes_update_moves_a_half_prior_more_for_a_deployment_than_a_statement():
    p = ModelParams()
    prior = 0.5
    deploy = rules.bayes_update(prior, p.lik_deploy_res, p.lik_deploy_irr) - prior
    permanent = rules.bayes_update(prior, p.lik_permanent_res, p.lik_permanent_irr) - prior
    statement = rules.bayes_update(prior, p.lik_statement_res, p.lik_statement_irr) - prior
    assert deploy > statement >= 0
    assert permanent > statement
