"""The compiled kernels: the quantal draw, the weekly kernels applying the scalar rules replication by
replication and block by block, the recorder's order statistics, and numba's cache.

``sim.rules`` holds every behavioural rule once; its weekly kernels (part 2) loop over replications
and call those rules. These tests check that the loops apply the rules they name to the right
record of the parameter table, that the quantal draw matches the quantal probabilities, and that
nothing compiled can go stale: behavioural ``@njit`` functions live in ``sim/rules.py`` only (numba
keys its cache on the file of each function), and constants of other modules reach the kernels as
arguments.
"""

from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import softmax

import sim
from sim import DeterrenceModel, ModelParams, Posture, RunConfig, record_kernels, rules

SIM = Path(sim.__file__).resolve().parent
COMPILED_FILES = {"rules.py", "record_kernels.py", "uniforms.py"}
NUMBA_DECORATORS = {"njit", "jit", "vectorize", "guvectorize", "cfunc", "stencil", "generated_jit"}


# ---------------------------------------------------------------------------- the quantal draw
def _choose(z: np.ndarray, u: np.ndarray, r: int | None = None, alive: np.ndarray | None = None):
    n = z.shape[1]
    choice = np.full(n, -1, dtype=np.int64)
    alive = np.ones(n, dtype=bool) if alive is None else alive
    rules.choose(n if r is None else r, np.ascontiguousarray(z), u, alive, choice, np.empty((3, n)))
    return choice


@pytest.mark.parametrize(("utilities", "precision", "seed"), [
    ([0.5, -1.0, 2.0, 1.5], 1.3, 31),
    ([0.0, 1.0, -2.0, -np.inf], 1.0, 32),  # a surge under posture none
    ([3.0, -2.0, 0.0, 0.4, -0.5, 1.0, -np.inf], 0.7, 33),  # the DPRK's seven actions
    ([3.0, -2.0, -np.inf, 0.0], 0.0, 34),  # precision 0: uniform over the available actions
])
def test_choose_frequencies_match_the_quantal_probabilities(utilities, precision, seed):
    """n = 200,000 replications sharing one utility column, uniforms from ``seed``: each action's
    frequency within 4 binomial standard errors of scipy's softmax of ``precision * U`` (McKelvey &
    Palfrey 1995); an unavailable action is never drawn."""
    n = 200_000
    u = np.array(utilities)
    scaled = np.where(np.isneginf(u), -np.inf, precision * np.where(np.isneginf(u), 0.0, u))
    probs = softmax(scaled)
    weights = np.exp(scaled - scaled.max())
    choice = _choose(np.tile(weights[:, None], (1, n)), np.random.default_rng(seed).random(n))
    freq = np.bincount(choice, minlength=u.size) / n
    assert np.all(np.abs(freq - probs) <= 4 * np.sqrt(probs * (1 - probs) / n) + 1e-15), (freq, probs)
    assert np.all(freq[np.isneginf(u)] == 0)


@st.composite
def weight_columns(draw):
    k = draw(st.integers(2, 7))
    w = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k)))
    assume(w.max() > 0)
    return w / w.max()  # the kernels' form: exp(lambda U - max), the largest exactly 1


@given(weights=weight_columns(),
       uniforms=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20))
def test_choose_never_draws_a_zero_weight_action(weights, uniforms):
    """Including u = 0.0, a legal draw of ``Generator.random()``, with leading zero weights."""
    u = np.array(uniforms)
    choice = _choose(np.tile(weights[:, None], (1, u.size)), u)
    assert np.all(weights[choice] > 0), (weights, u, choice)


def test_choose_at_u_zero_skips_leading_impossible_actions():
    z = np.array([[0.0, 0.0], [0.0, 0.3], [1.0, 1.0]])
    np.testing.assert_array_equal(_choose(z, np.array([0.0, 0.0])), [2, 1])


def test_choose_gives_every_block_the_same_uniforms_and_ended_replications_action_zero():
    """Three blocks of r = 5 replications with the same weights draw the same actions (common random
    numbers: ``u`` holds one uniform per base replication); an ended (war) replication takes 0."""
    r, blocks = 5, 3
    rng = np.random.default_rng(8)
    column = rng.random((4, r))
    z = np.tile(column, (1, blocks))
    alive = np.ones(r * blocks, dtype=bool)
    alive[7] = False
    choice = _choose(z, rng.random(r), r=r, alive=alive)
    assert len(set(choice[:r].tolist())) > 1
    np.testing.assert_array_equal(choice[2 * r:], choice[:r])
    expected = choice[:r].copy()
    expected[7 - r] = 0
    np.testing.assert_array_equal(choice[r:2 * r], expected)


def _exp(x: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=float)
    rules.exp_in_place(out)
    return out


@given(weights=hnp.arrays(np.float64, st.tuples(st.integers(2, 7), st.integers(1, 30)),
                         elements=st.floats(0.0, 1.0) | st.just(0.0)),
       blocks=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_choose_is_the_inverse_cdf_of_numpys_running_sums(weights, blocks, seed):
    """Hypothesis (default 100 examples): 2-7 actions (the one-pass paths for four and seven, the
    general one otherwise), 1-3 blocks of up to 30 replications sharing their uniforms, some ended:
    the action is the number of running sums ``np.cumsum`` at or below ``u`` times the total (the
    same sums in the same order), and 0 for an ended replication."""
    weights[0] = np.where(weights.sum(axis=0) > 0, weights[0], 1.0)  # at least one possible action
    r = weights.shape[1]
    z = np.tile(weights, (1, blocks))
    rng = np.random.default_rng(seed)
    u = rng.random(r)
    alive = rng.random(r * blocks) < 0.9
    running = np.cumsum(z, axis=0)
    expected = (running[:-1] <= np.tile(u, blocks) * running[-1]).sum(axis=0)
    np.testing.assert_array_equal(_choose(z, u, r=r, alive=alive), np.where(alive, expected, 0))


def test_exp_in_place_is_numpys_exp_within_one_unit_in_the_last_place():
    """Every value from -708 to 709 in steps of 1/64, 200,000 uniform draws from [-40, 0] (seed 5,
    where the quantal weights live) and the ends: within 1 ulp of ``np.exp`` (relative error at most
    2**-52); exactly 0 for -inf and below -708, exactly 1 at 0, inf above 709."""
    x = np.concatenate([np.arange(-708 * 64, 709 * 64 + 1) / 64.0,
                        np.random.default_rng(5).uniform(-40.0, 0.0, 200_000)])
    got, want = _exp(x), np.exp(x)
    assert np.all(np.abs(got - want) <= np.spacing(want)), np.max(np.abs(got - want) / np.spacing(want))
    ends = np.array([-np.inf, -1e300, -745.0, -708.5, 0.0, -0.0, 709.5, 1e300, np.inf])
    np.testing.assert_array_equal(_exp(ends), [0, 0, 0, 0, 1, 1, np.inf, np.inf, np.inf])


@given(z=hnp.arrays(np.float64, st.tuples(st.integers(2, 7), st.integers(1, 40)),
                    elements=st.one_of(st.floats(-60.0, 0.0), st.just(-np.inf))),
       seed=st.integers(0, 2**32 - 1))
def test_quantal_draw_is_choose_of_numpys_exponentials(z, seed):
    """The draw from scaled utilities (the agents' path) picks what :func:`sim.rules.choose` picks from
    ``np.exp`` of them, for any utilities at or below 0 (with impossible actions) and any uniforms."""
    z[0] = np.where(np.isneginf(z).all(axis=0), 0.0, z[0])  # at least one possible action
    n = z.shape[1]
    u = np.random.default_rng(seed).random(n)
    alive = np.ones(n, dtype=bool)
    drawn = np.full(n, -1, dtype=np.int64)
    rules.quantal_draw(n, z.copy(), u, alive, drawn, np.empty((3, n)))  # exponentiates in place
    np.testing.assert_array_equal(drawn, _choose(np.exp(z), u))


# --------------------------------------------------------------- the weekly kernels apply the rules
def _table(blocks: int, **by_block) -> np.ndarray:
    overrides = {k: np.asarray(v, dtype=float) for k, v in by_block.items()}
    return rules.param_table(ModelParams(), blocks, overrides, np.full(blocks, 0.5), np.full(blocks, 0.5))


def test_dprk_week_utilities_apply_the_rule_with_each_block_s_record():
    """Seed 9, two blocks of r = 4 with different punishments, precisions and drives, random states:
    column i is ``lambda U - max`` of :func:`sim.rules.dprk_utilities` with record ``i // r``."""
    r, blocks = 4, 2
    pt = _table(blocks, dprk_punish_lrbm=[1.0, 3.0], dprk_precision=[0.5, 2.0])
    rng = np.random.default_rng(9)
    n = r * blocks
    belief, pressure, tension, outreach = rng.random(n), 2 * rng.random(n), 5 * rng.random(n), rng.random(n)
    on_station = rng.random(n) < 0.5
    drive = np.array([0.7, 1.8])
    z = np.empty((7, n))
    exercise = 0.5
    rules.dprk_week_utilities(pt, r, z, belief, on_station, pressure, tension, outreach, drive, 0.3, False,
                              exercise)
    for i in range(n):
        q = pt[i // r]
        seen = (q["pressure_memory"] * pressure[i] + q["pressure_exercise"] * exercise
                + q["pressure_asset"] * on_station[i])  # what the DPRK knows when it moves
        u = np.array(rules.dprk_utilities(q, belief[i], on_station[i], seen, tension[i], outreach[i],
                                          drive[i // r], 0.3, False))
        expected = q["dprk_precision"] * u - (q["dprk_precision"] * u).max()
        np.testing.assert_allclose(z[:, i], expected, rtol=1e-12, atol=1e-12, err_msg=str(i))


def test_the_allies_and_the_current_calculus_kernels_apply_their_rules_with_each_block_s_record():
    """Seed 14, two blocks of r = 5 with different hedging gains, protest gains, precisions and DPRK
    priors: the ROK's and Japan's weights are ``lambda U - max`` of :func:`sim.rules.rok_utilities`
    and :func:`sim.rules.japan_utilities`, and the current-calculus belief is
    :func:`sim.rules.current_calculus_log_odds` with the block's prior, kept within the bound."""
    r, blocks = 5, 2
    n = r * blocks
    pt = rules.param_table(ModelParams(), blocks, {"rok_hedge_gain": np.array([2.0, 9.0]),
                                                   "japan_protest_gain": np.array([1.0, 4.0]),
                                                   "ally_precision": np.array([0.7, 2.5])},
                           np.array([0.5, 0.5]), np.array([0.1, 0.9]))
    rng = np.random.default_rng(14)
    assurance, tension, dprk = rng.random(n), 5 * rng.random(n), rng.integers(0, 7, n)
    on_station, capability = rng.random(n) < 0.5, rng.random(n)
    z_rok, z_japan = np.empty((4, n)), np.empty((4, n))
    rules.rok_week_utilities(pt, r, z_rok, assurance, dprk, tension)
    rules.japan_week_utilities(pt, r, z_japan, assurance, dprk)
    log_odds, belief = np.empty(n), np.empty(n)
    rules.current_calculus_belief(pt, r, on_station, 1.5, capability, log_odds, belief, rules.LOGIT_BOUND)
    for i in range(n):
        q = pt[i // r]
        for z, u in ((z_rok, rules.rok_utilities(q, assurance[i], dprk[i], tension[i])),
                     (z_japan, rules.japan_utilities(q, assurance[i], dprk[i]))):
            np.testing.assert_allclose(z[:, i], rules.quantal_shift4(*u, q["ally_precision"]), rtol=1e-12,
                                       atol=1e-12, err_msg=str(i))
        x = rules.current_calculus_log_odds(q, on_station[i], 1.5, capability[i])
        assert log_odds[i] == pytest.approx(min(max(x, -rules.LOGIT_BOUND), rules.LOGIT_BOUND), rel=1e-12)
        assert belief[i] == pytest.approx(rules.expit(log_odds[i]), rel=1e-12)
    assert log_odds[:r].max() < log_odds[r:].min()  # prior 0.1 against 0.9


def _us_state(seed: int, n: int):
    rng = np.random.default_rng(seed)
    return dict(resolute=rng.random(n) < 0.5, dprk=rng.integers(0, 7, n), rok=rng.integers(0, 4, n),
                on=rng.random(n) < 0.5, threat_left=rng.integers(0, 3, n))


@pytest.mark.parametrize("r, blocks", [(200, 2), (4, 100)], ids=["large-blocks", "small-blocks"])
@pytest.mark.parametrize("surge_allowed", [True, False])
def test_the_us_kernels_use_each_type_s_own_utilities_and_read_the_state_the_us_chose_in(surge_allowed, r,
                                                                                          blocks):
    """Seed 10, two blocks of r = 200, or 100 blocks of r = 4, audience costs from 2 to 5 across blocks,
    random types, DPRK actions, ROK requests, assets on station and binding threats:

    * weights: ``exp(lambda U - max)`` of :func:`sim.rules.us_response_utilities` of the US's own
      type, with its own probability of backing down (:func:`sim.rules.back_down_probability`) in
      that state (the kernels tabulate them per block once per run: :func:`sim.rules.us_block_tables`);
    * what the DPRK reads: :func:`sim.rules.us_log_likelihood_ratio` of the drawn response in the
      state the US chose in (need with last week's ROK request, station before the surge,
      challenged if a threat bound and the DPRK committed a major provocation);
    * the binding window: a challenge ends it, a new threat binds for ``us_threat_window_weeks``
      (+1, counted down at the end of the week)."""
    n = r * blocks
    pt = _table(blocks, us_audience_cost=np.linspace(2.0, 5.0, blocks))
    s = _us_state(10, n)
    z = np.empty((4, n))
    threat_left = s["threat_left"].astype(np.int64)
    table = np.full((blocks, 56, 4), np.nan)
    weights = np.full((blocks, 2, 56, 4), np.nan)
    rules.us_block_tables(pt, surge_allowed, weights, table)
    rules.us_week_weights(r, z, s["resolute"], s["dprk"], s["rok"], s["on"], threat_left, weights)
    states = []
    for i in range(n):
        q = pt[i // r]
        f = 1.0 if s["resolute"][i] else q["us_irresolute_factor"]
        on = int(s["on"][i])
        need = rules.us_need(s["dprk"][i], s["rok"][i] == rules.ROK_REQUEST, q["us_request_weight"])
        challenged = bool(threat_left[i] > 0 and rules.DPRK_SEVERITY[s["dprk"][i]] >= rules.MAJOR_SEVERITY)
        u = rules.us_response_utilities(q, f, need, on, surge_allowed, challenged,
                                        rules.back_down_probability(q, f, float(on), surge_allowed))
        np.testing.assert_allclose(z[:, i], np.exp(rules.quantal_shift4(*u, q["us_precision"])), rtol=1e-12,
                                   atol=1e-300, err_msg=str(i))
        states.append((q, need, on, challenged))
    assert any(c for *_, c in states) and not all(c for *_, c in states)

    choice = np.zeros(n, dtype=np.int64)
    evidence = np.full(n, np.nan)
    before = threat_left.copy()
    rules.us_act(pt, r, z, np.random.default_rng(11).random(n), np.ones(n, dtype=bool), choice, s["dprk"],
                 s["rok"], s["on"], threat_left, table, evidence, np.zeros(n, dtype=bool),
                 np.zeros(n, dtype=np.int64), np.zeros(n), 1, 1.0, 1.0, np.zeros(n, dtype=bool), 1.0,
                 np.empty((3, n)))
    assert len(set(choice.tolist())) >= 3
    for i, (q, need, on, challenged) in enumerate(states):
        expected = rules.us_log_likelihood_ratio(
            q, choice[i], need, on, surge_allowed, challenged,
            rules.back_down_probability(q, 1.0, float(on), surge_allowed),
            rules.back_down_probability(q, q["us_irresolute_factor"], float(on), surge_allowed))
        assert evidence[i] == pytest.approx(expected, rel=1e-12, abs=1e-12), i
        window = int(q["us_threat_window_weeks"])
        if choice[i] == rules.US_THREAT:
            assert threat_left[i] == window + 1
        elif challenged:
            assert threat_left[i] == 0
        else:
            assert threat_left[i] == before[i]


def test_rotation_due_defers_by_type_and_reads_the_schedule():
    """Two blocks (skip probabilities (0.1, 0.6) and (0, 0)), r = 1000, seed 12: a due rotation
    arrives where the uniform is at least the type's skip probability; the DPRK reads
    :func:`sim.rules.schedule_log_likelihood_ratio` of it; an ended replication neither arrives nor
    updates."""
    r, blocks = 1000, 2
    n = r * blocks
    pt = _table(blocks, us_skip_resolute=[0.1, 0.0], us_skip_irresolute=[0.6, 0.0])
    rng = np.random.default_rng(12)
    resolute, alive, u = rng.random(n) < 0.5, rng.random(n) < 0.95, rng.random(r)
    arrived, evidence = np.zeros(n, dtype=bool), np.full(n, np.nan)
    rules.rotation_due(pt, r, u, resolute, alive, arrived, evidence, rules.LOGIT_BOUND)
    skip = np.where(resolute, pt["us_skip_resolute"].repeat(r), pt["us_skip_irresolute"].repeat(r))
    np.testing.assert_array_equal(arrived, alive & (np.tile(u, blocks) >= skip))
    for i in range(n):
        q = pt[i // r]
        expected = (rules.schedule_log_likelihood_ratio(arrived[i], q["us_skip_resolute"],
                                                        q["us_skip_irresolute"], rules.LOGIT_BOUND)
                    if alive[i] else 0.0)
        assert evidence[i] == expected
    assert np.all(evidence[r:] == 0.0) and np.all(arrived[r:] == alive[r:])  # block 1: no deferral


def test_new_administration_redraws_types_and_steps_the_belief_toward_the_prior():
    """Two blocks (turnover 0.5 with credibility 0.3, turnover 0 with credibility 0.9), r = 1000,
    seed 13: a living replication's type is redrawn where the first uniform is below the turnover,
    resolute where the second is below the block's credibility (an ended one keeps its last type and
    belief); every living DPRK's belief takes :func:`sim.rules.turnover_log_odds` toward its prior."""
    r, blocks = 1000, 2
    n = r * blocks
    pt = rules.param_table(ModelParams(), blocks, {"us_type_turnover": np.array([0.5, 0.0])},
                           np.array([0.3, 0.9]), np.array([0.4, 0.6]))
    rng = np.random.default_rng(13)
    u_redraw, u_type = rng.random(r), rng.random(r)
    resolute0 = rng.random(n) < 0.5
    log_odds0 = rng.uniform(-5, 5, n)
    alive = rng.random(n) < 0.95
    resolute, log_odds, belief = resolute0.copy(), log_odds0.copy(), np.zeros(n)
    rules.new_administration(pt, r, u_redraw, u_type, resolute, log_odds, belief, alive, rules.LOGIT_BOUND)
    redrawn = alive & (np.tile(u_redraw, blocks) < pt["us_type_turnover"].repeat(r))
    new_type = np.tile(u_type, blocks) < pt["credibility"].repeat(r)
    np.testing.assert_array_equal(resolute, np.where(redrawn, new_type, resolute0))
    for i in range(n):
        q = pt[i // r]
        expected = (rules.turnover_log_odds(log_odds0[i], q["dprk_prior"], q["us_type_turnover"],
                                            rules.LOGIT_BOUND) if alive[i] else log_odds0[i])
        assert log_odds[i] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(log_odds[r:], log_odds0[r:], rtol=1e-12)  # turnover 0: no step


# ------------------------------------------------------------------------- order statistics
def _order_statistics(x: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    out = np.full(ranks.size, -12345.0)
    record_kernels.order_statistics(x, x.min(), x.max(), ranks, out, np.empty(x.size, dtype=np.int32))
    return out


TIES = st.sampled_from([0.0, 0.25, 0.5, 1.0, -3.0, 7.5])


@given(values=st.lists(TIES | st.floats(0, 1), min_size=1, max_size=500), data=st.data())
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
    favours ties and extremes, subnormals included), every rank: equal to ``np.sort``."""
    ranks = np.arange(x.size, dtype=np.int64)
    np.testing.assert_array_equal(_order_statistics(x, ranks), np.sort(x))


_DEGENERATE = """
import numpy as np
from sim import record_kernels
bad = []
for x in ([0.0, 5e-324], [1e-300, np.nextafter(1e-300, 1.0)], [0.0, 1e-308], [-1e308, 1e308, 0.0]):
    x = np.array(x)
    ranks = np.arange(x.size, dtype=np.int64)
    out = np.full(x.size, -1.0)
    try:
        record_kernels.order_statistics(x, x.min(), x.max(), ranks, out, np.empty(x.size, dtype=np.int32))
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
                              cwd=SIM.parent, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("order_statistics did not return within 30 s on a degenerate range")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_order_statistics_on_a_large_array():
    """Seed 3, 100,000 rounded normals (many ties, more bins than the minimum) and 50 random ranks."""
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=100_000), 2)
    ranks = np.sort(rng.choice(x.size, 50, replace=False)).astype(np.int64)
    np.testing.assert_array_equal(_order_statistics(x, ranks), np.sort(x)[ranks])


def test_order_statistics_with_masses_of_ties_at_the_ends():
    """Seed 11, 300 arrays of 100-3,000 values shaped like the weekly beliefs of a batch block (up to
    60 % tied at the lower bound, up to half at the upper one, the rest spread) and like rounded
    normals, each with three pairs of adjacent ranks as the weekly quantiles take them (every third
    array: runs of four adjacent ranks instead): the k-th smallest values equal ``np.sort``'s (the
    branch-free partition of ``select_kth`` and the shortcut for the rank after a selected one)."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(100, 3000))
        spread = rng.random(n) * rng.choice([0.004, 1.0])
        low, high = rng.random(n) < rng.uniform(0, 0.6), rng.random(n) < rng.uniform(0, 0.5)
        x = (np.round(rng.normal(size=n), 1) if trial % 4 == 0 else
             np.where(low, 6.144174602214718e-06, np.where(high, 0.9999938558253978, spread)))
        h = np.floor((n - 1) * np.array([0.05, 0.5, 0.95]))
        runs = 2 if trial % 3 else 4
        ranks = np.minimum(h[:, None] + np.arange(runs), n - 1).astype(np.int64).reshape(-1)
        np.testing.assert_array_equal(_order_statistics(x, ranks), np.sort(x)[ranks], err_msg=str(trial))


def test_weekly_quantiles_are_numpys():
    """Seed 2024, R=500, 30 weeks: the last week's 5/50/95 % quantiles of tension, DPRK belief and
    ROK/Japan assurance equal ``np.quantile`` of the final state (rtol 1e-12), the means the mean."""
    cfg = RunConfig(replications=500, seed=2024, progress=False).replace(
        policy={"name": Posture.reactive}, scenario={"weeks": 30})
    model = DeterrenceModel(cfg)
    last = model.run().timeseries.iloc[-1]
    state = {"tension": model.tension, "dprk_belief": model.dprk.belief,
             "rok_assurance": model.rok.assurance, "japan_assurance": model.japan.assurance}
    for name, values in state.items():
        assert np.unique(values).size > 3, name  # a spread-out state, not a constant
        got = last[[f"{name}_q05", f"{name}_q50", f"{name}_q95"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, np.quantile(values, [0.05, 0.5, 0.95]), rtol=1e-12, atol=0,
                                   err_msg=name)
        np.testing.assert_allclose(last[f"{name}_mean"], values.mean(), rtol=1e-12, err_msg=name)


# ------------------------------------------------------------------------------ numba's cache
def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _compiled_functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any(_decorator_name(d) in NUMBA_DECORATORS for d in node.decorator_list)]


def test_only_rules_the_recorder_and_the_uniforms_compile_anything():
    """Behavioural rules live in ``sim/rules.py`` alone (issue 11: one source per rule), and numba
    keys its on-disk cache on the file of each compiled function, so a compiled rule in another
    module could change while the kernels that inline it stay cached. Every ``@njit`` (or other
    numba decorator, or a call ``njit(f)``) in ``sim/`` is in ``rules.py``, ``record_kernels.py`` or
    ``uniforms.py`` (numpy's PCG64 stream: no behaviour, and nothing outside it called)."""
    found = {}
    for path in sorted(SIM.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.FunctionDef):
                names = [_decorator_name(d) for d in node.decorator_list]
            elif isinstance(node, ast.Call):
                names = [_decorator_name(node.func)]
            if any(n in NUMBA_DECORATORS for n in names):
                found.setdefault(path.name, []).append(getattr(node, "name", "call"))
    assert set(found) == COMPILED_FILES, {k: v for k, v in found.items() if k not in COMPILED_FILES}
    assert len(found["rules.py"]) >= 30  # the rules and the kernels


@pytest.mark.parametrize("name", sorted(COMPILED_FILES))
def test_compiled_functions_read_no_global_of_another_module(name):
    """A compiled function may read only its own arguments and locals, builtins, ``math``, ``np``
    and names defined in its own file: a constant imported from another module would be frozen into
    the cache and go stale when that module changes (issue 11, ``LOGIT_BOUND``); it must be passed
    as an argument."""
    path = SIM / name
    tree = ast.parse(path.read_text(), filename=str(path))
    own = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                own |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    allowed = own | set(dir(builtins)) | {"math", "np"}
    functions = _compiled_functions(path)
    assert functions
    offenders = {}
    for fn in functions:
        local = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
        body = [n for stmt in fn.body for n in ast.walk(stmt) if isinstance(n, ast.Name)]
        local |= {n.id for n in body if isinstance(n.ctx, ast.Store)}
        used = {n.id for n in body if isinstance(n.ctx, ast.Load)}
        bad = used - local - allowed
        if bad:
            offenders[fn.name] = sorted(bad)
    assert not offenders, offenders


def _small_run(**changes) -> DeterrenceModel:
    cfg = RunConfig(replications=200, seed=3, credibility=0.9, progress=False).replace(
        scenario={"weeks": 80}, policy={"name": Posture.rotational}, **changes)
    model = DeterrenceModel(cfg)
    model.run()
    return model


def test_constants_of_other_modules_reach_the_compiled_kernels(monkeypatch):
    """``LOGIT_BOUND`` and ``MAX_QUANTILE_TERMS`` are read by the model at each call and passed to
    the kernels: changed at run time (after the kernels were loaded or compiled), a bound of 0.5
    must keep every belief within expit(+/-0.5) and a cap of 2 every week's salvo at its launch days + 2. A
    kernel reading either as a global would keep the value it was compiled with (issue 11).
    Seed 3, R = 200, 80 weeks, credibility 0.9, rotational; salvos made large (salvo_extra 20)."""
    _small_run()  # load (or compile) the kernels first, with the constants as they are
    monkeypatch.setattr(rules, "LOGIT_BOUND", 0.5)
    monkeypatch.setattr(rules, "MAX_QUANTILE_TERMS", 2)
    model = _small_run(params={"salvo_extra": 20.0})
    belief = model.dprk.belief
    assert belief.max() <= rules.expit(0.5) + 1e-12 and belief.min() >= rules.expit(-0.5) - 1e-12
    assert belief.max() == pytest.approx(rules.expit(0.5))  # the bound binds in this run
    per = model.recorder.results().per_replication()
    assert per["dprk_launch_days"].sum() > 0
    # a week's salvo is its launch days plus at most the cap of negative-binomial terms
    cap = per["dprk_launch_days"] + 2 * per["dprk_launch_weeks"]
    assert np.all(per["dprk_missiles"] <= cap)
    assert np.any(per["dprk_missiles"] == cap)
