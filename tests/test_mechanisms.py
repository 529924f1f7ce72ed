"""One model-level test per mechanism that drives the posture answer (issue 11, point 5).

Each test runs the whole model through its public API (``run``, ``DeterrenceModel``, a batch) on a
small configuration, with a stated seed, number of replications and direction of the effect.
Comparisons of two settings use the same seed: replication i meets the same random numbers in both
arms (common random numbers, docs/model.md Section 4.9), so the per-replication differences are
independent draws and their mean is compared with 3 standard errors computed from them, never with
a number from an earlier run. Where the rule makes the outcome deterministic the test checks the
rule's exact consequence (an identity, a hand computation) instead. Each test was seen to fail with
its rule broken by hand in ``sim/rules.py`` (or the model's wiring of it).

The rules themselves are tested one by one in ``test_rules.py``; the kernels that apply them in
``test_kernels.py``. Tests of these mechanisms that exist elsewhere and are not repeated here:

* the US type draw's common random numbers across postures and a ROK-only parameter, and the
  DPRK's first week across postures: ``test_reproducibility.py``;
* war only after a clash in random configurations: ``test_properties.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from conftest import provocations, small_config
from scipy.special import logit

from sim import DeterrenceModel, ModelParams, Posture, rules
from sim.calendar import inauguration_weeks
from sim.diagnostics import belief_calibration
from sim.metrics import headline_metrics, wilson_interval
from sim.params import DatedEvent

Z = 3.0  # required margin, in standard errors of the mean paired difference

# Settings that make an actor silent: a cost of 100 on the logit scale gives an action odds of
# about e^-95 against holding, so it is never drawn in these runs.
SILENT_US = {"us_statement_cost": 100.0, "us_threat_cost": 100.0, "us_surge_cost": 100.0}
NO_SURGES = {"us_surge_cost": 100.0}
NO_MAJOR_PROVOCATIONS = {"dprk_cost_lrbm": 100.0, "dprk_cost_nuclear": 100.0,
                         "dprk_cost_border": 100.0}
NO_WAR = {"war_intercept": -100.0}  # p(war | clash) = expit(-100 + slope * T): never
COSTLY = {"perception": "costly_signals"}


class Outcome(NamedTuple):
    model: DeterrenceModel  # its final state
    timeseries: pd.DataFrame
    per: pd.DataFrame  # one row per replication (and block, in a batch)


def _run(batch: dict | None = None, **changes) -> Outcome:
    """Run ``small_config(**changes)`` (a batch of points if ``batch``)."""
    model = DeterrenceModel(small_config(**changes), batch=batch)
    results = model.run()
    return Outcome(model, results.timeseries, results.per_replication())


def _block(per: pd.DataFrame, j: int) -> pd.DataFrame:
    """Block ``j`` of a batch's per-replication table, indexed by replication."""
    return per.xs(j, level="block")


def _assert_paired_greater(higher, lower, what: str) -> None:
    """Mean of ``higher - lower`` over replications (same seed, paired) above Z standard errors."""
    diff = np.asarray(higher, dtype=float) - np.asarray(lower, dtype=float)
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert se > 0, f"{what}: the two arms are identical"
    assert diff.mean() > Z * se, (f"{what}: {np.mean(higher):.4g} vs {np.mean(lower):.4g}, "
                                  f"mean paired difference {diff.mean():.4g}, SE {se:.3g}")


def _assert_share(successes, trials, p: float, what: str) -> None:
    """``p`` lies in the 99.9 % Wilson interval (Wilson 1927) of ``successes`` out of ``trials``."""
    low, high = wilson_interval(int(successes), int(trials), level=0.999)
    share = successes / trials
    assert low <= p <= high, f"{what}: {successes}/{trials} = {share:.4f}, [{low:.4f}, {high:.4f}]"


def _major_provocations(per: pd.DataFrame) -> np.ndarray:
    """Major provocations per replication (severity >= 1: long-range launch, nuclear test, border)."""
    return (per["dprk_lrbm_launch"] + per["dprk_nuclear_test"]
            + per["dprk_border_incident"]).to_numpy()


# ------------------------------------------------------------------------ presence deterrence
def test_an_asset_on_station_deters_provocations_when_presence_deterrence_is_positive():
    """Forces at hand raise the expected punishment by the share ``presence_deterrence``
    (Schelling 1966; Fuhrmann & Sechser 2014 find the effect small, hence a parameter).

    Permanent posture (an asset on station every week): presence_deterrence 0.5 gives fewer DPRK
    provocations (launch days + nuclear tests + border incidents) than 0. Seed 1101, R = 400,
    52 weeks, paired. Control: under posture ``none`` (never on station) the same change leaves
    every per-replication count identical.
    """
    run = dict(replications=400, weeks=52, seed=1101)
    arms = {delta: _run(policy={"name": Posture.permanent},
                        params={"presence_deterrence": delta}, **run).per for delta in (0.0, 0.5)}
    _assert_paired_greater(provocations(arms[0.0]), provocations(arms[0.5]),
                           "provocations with an asset on station, presence_deterrence 0 vs 0.5")
    off = [_run(policy={"name": Posture.none}, params={"presence_deterrence": delta}, **run).per
           for delta in (0.0, 0.5)]
    pd.testing.assert_frame_equal(off[0], off[1])


# -------------------------------------------------------------------------- surge redundancy
def test_the_us_surges_less_when_an_asset_is_already_on_station():
    """A surge adds less when an asset is already there (``us_surge_redundancy``: a stylised
    developers' assumption with no literature source yet, docs/model.md).

    Permanent posture (an asset on station at every US move): redundancy 2 gives fewer surges than
    0. Seed 1201, R = 400, 52 weeks, paired. Control: under ``reactive`` with one-week surges no
    asset is ever on station when the US moves, so the same change leaves every per-replication
    count identical (the DPRK's reading of the US included).
    """
    run = dict(replications=400, weeks=52, seed=1201)
    arms = {r: _run(policy={"name": Posture.permanent}, params={"us_surge_redundancy": r}, **run).per
            for r in (0.0, 2.0)}
    assert arms[0.0]["us_surge_deployment"].sum() > 0  # surges happen at all
    _assert_paired_greater(arms[0.0]["us_surge_deployment"], arms[2.0]["us_surge_deployment"],
                           "US surges with an asset on station, redundancy 0 vs 2")
    off = [_run(policy={"name": Posture.reactive, "surge_duration_weeks": 1},
                params={"us_surge_redundancy": r}, **run).per for r in (0.0, 2.0)]
    assert off[0]["us_surge_deployment"].sum() > 0
    pd.testing.assert_frame_equal(off[0], off[1])


# ------------------------------------------------------------------------------- habituation
# Only the posture speaks: no consultations, a silent US (its holds then carry no information: both
# types hold with probability 1 in double precision), no major provocation, no war, and a DPRK that
# misperceives (perception=costly_signals, the only one that reads presence), so every replication
# holds the same belief and each week's change of its log-odds is the presence evidence of that week.
PRESENCE_ONLY = dict(replications=2, weeks=30, seed=1301, credibility=0.5,
                     scenario={"consultations": []},
                     params={**SILENT_US, **NO_MAJOR_PROVOCATIONS, **NO_WAR, **COSTLY,
                             "habituation_weeks": 6.0})


def _log_odds_steps(ts: pd.DataFrame) -> np.ndarray:
    """Week-on-week change of the (common) belief's log-odds."""
    np.testing.assert_array_equal(ts["dprk_belief_q05"], ts["dprk_belief_q95"])  # one belief
    return np.diff(logit(ts["dprk_belief_mean"].to_numpy()))


def test_the_presence_signal_fades_with_weeks_on_station():
    """Habituation (perception=costly_signals): a continuing presence sinks no new cost and becomes
    the status quo, so its weight as a signal decays as exp(-W / habituation_weeks) with W the weeks
    on station (Fearon 1997; Fuhrmann & Sechser 2014).

    Permanent posture, only the posture speaking (PRESENCE_ONLY, seed 1301, R = 2, 30 weeks):
    after the basing week each week's belief gain is positive and smaller than the week before,
    by the factor exp(-1 / habituation_weeks). Rotational posture (2 weeks on station every 6):
    the count restarts after each gap, so the second week of every rotation gains what the first
    week of continuing permanent presence gains. Control: a consistent DPRK reads nothing from
    presence, so there habituation_weeks 6 or 60 gives identical runs.
    """
    ts = _run(policy={"name": Posture.permanent}, **PRESENCE_ONLY).timeseries
    permanent = _log_odds_steps(ts)  # change into weeks 1, 2, ...: the presence signal alone
    assert np.all(permanent > 0)
    assert np.all(np.diff(permanent) < 0), permanent
    np.testing.assert_allclose(permanent[1:] / permanent[:-1], np.exp(-1.0 / 6.0), rtol=1e-6)

    ts = _run(policy={"name": Posture.rotational, "rotation_interval_weeks": 6,
                      "rotation_duration_weeks": 2}, **PRESENCE_ONLY).timeseries
    rotational = _log_odds_steps(ts)
    second_weeks = rotational[np.arange(0, 25, 6)]  # change into weeks 1, 7, 13, 19, 25
    np.testing.assert_allclose(second_weeks, permanent[0], rtol=1e-9)  # one week on station each

    run = dict(replications=200, weeks=52, seed=1302, policy={"name": Posture.permanent})
    consistent = [_run(params={"habituation_weeks": h}, **run).per for h in (6.0, 60.0)]
    pd.testing.assert_frame_equal(consistent[0], consistent[1])


# ------------------------------------------------------------------------- the inaction signal
def test_an_unanswered_major_provocation_lowers_the_belief_less_with_an_asset_on_station():
    """Derived, not assumed (Fearon 1997; issue 11): a consistent DPRK reads the US's response
    through the US's own choice probabilities. After a long-range launch, nuclear test or border
    incident a resolute US surges and threatens more, so no response (hold or statement) lowers
    the belief and a surge raises it; with an asset already on station the US surges less
    (us_surge_redundancy), so no response lowers the belief less.

    One week (so the state is the start: no earlier request, no binding threat), seed 1401,
    R = 4000, credibility 0.5, default parameters, reactive (nothing on station) and permanent (an
    asset on station) at the same seed. The fall after an unanswered long-range launch is the
    model's own :func:`sim.rules.us_log_likelihood_ratio` in that state, asset or not.
    """
    run = dict(replications=4000, weeks=1, seed=1401, credibility=0.5)
    q = rules.param_table(ModelParams(), 1, {}, 0.5, 0.5)[0]
    unanswered_step = {}
    for posture, on in ((Posture.reactive, 0), (Posture.permanent, 1)):
        per = _run(policy={"name": posture}, **run).per
        step = logit(per["final_dprk_belief"].to_numpy()) - logit(0.5)
        major = _major_provocations(per) > 0
        unanswered = major & ((per["us_hold"] + per["us_statement"]).to_numpy() > 0)
        surged = major & (per["us_surge_deployment"].to_numpy() > 0)
        assert unanswered.sum() >= 50 and surged.sum() >= 10, posture
        assert np.all(step[unanswered] < 0), posture
        assert np.all(step[surged] > 0), posture
        lrbm = unanswered & (per["dprk_lrbm_launch"].to_numpy() > 0)
        unanswered_step[posture] = step[lrbm]
        back = [rules.back_down_probability(q, f, float(on), True) for f in (1.0, q["us_irresolute_factor"])]
        expected = rules.us_log_likelihood_ratio(q, rules.US_HOLD, rules.DPRK_SEVERITY[rules.LRBM], on, True,
                                                 False, *back)
        np.testing.assert_allclose(step[lrbm], expected, rtol=1e-9, err_msg=posture.value)
    assert unanswered_step[Posture.reactive].max() < unanswered_step[Posture.permanent].min() < 0


def test_unanswered_major_provocations_lower_the_belief_in_every_week():
    """The same reading in every state a run reaches (ROK requests, binding threats, surged assets
    on station): in every week in which the DPRK commits a major provocation and the US holds, a
    consistent DPRK's log-odds fall (unless already at the lower bound). Reactive posture, seed 1402,
    R = 500, 104 weeks (no inauguration), default parameters, stepped week by week."""
    model = DeterrenceModel(small_config(replications=500, weeks=104, seed=1402,
                                         policy={"name": Posture.reactive}))
    assert not inauguration_weeks(model.scenario_cfg.start, model.n_weeks)
    seen = 0
    for _ in range(model.n_weeks):
        before = model.dprk.log_odds.copy()
        model.step()
        major = rules.DPRK_SEVERITY[model.dprk.choice] >= rules.MAJOR_SEVERITY
        cases = model.active & major & (model.us.choice == rules.US_HOLD) & (before > -rules.LOGIT_BOUND)
        assert np.all(model.dprk.log_odds[cases] < before[cases])
        seen += cases.sum()
    assert seen >= 100


# --------------------------------------------------------------------------- the US type draw
def test_the_share_of_resolute_us_matches_credibility():
    """Commitment credibility is the probability that the US is resolute, drawn per replication
    (Harsanyi 1967-68; Fearon 1997).

    Seed 1501, R = 4000, one week, credibility 0.1, 0.5 and 0.8: each credibility lies in the 99.9 %
    Wilson interval (Wilson 1927) of the share of resolute replications; and raising credibility
    only turns irresolute replications resolute (the draw is coupled, docs/model.md Section 4.9).
    """
    resolute = {}
    for c in (0.1, 0.5, 0.8):
        per = _run(replications=4000, weeks=1, seed=1501, credibility=c).per
        resolute[c] = per["us_resolute"].to_numpy(dtype=bool)
        _assert_share(resolute[c].sum(), resolute[c].size, c, f"credibility {c}")
    assert np.all(resolute[0.5] <= resolute[0.8]) and np.all(resolute[0.1] <= resolute[0.5])


# ------------------------------------------------------------------------------- US turnover
INAUGURATION_START = "2028-11-06"  # 20 January 2029 falls in week 10


@pytest.mark.parametrize("turnover", [0.5, 1.0])
def test_a_new_administration_redraws_the_type_and_the_belief_moves_toward_the_prior(turnover):
    """Reputations for resolve attach to leaders (Wolford 2007; Lupton 2020): at an inauguration the
    type is drawn afresh with probability ``us_type_turnover``, resolute with probability
    ``credibility``, and the DPRK's belief takes the exact prediction step
    ``b' = (1 - rho) b + rho prior``.

    Seed 1551, R = 4000, credibility 0.3 and a DPRK prior of 0.6 (two axes: the new type is drawn
    from the truth, the belief moves toward the prior), start 6 Nov 2028, the model stopped just
    before and just after the 20 January 2029 event: the share resolute after it is still the
    credibility, the share whose type changed is rho 2c(1 - c), and every living DPRK's belief
    moved exactly as the formula says.
    """
    c, prior, n = 0.3, 0.6, 4000
    model = DeterrenceModel(small_config(replications=n, weeks=20, seed=1551, credibility=c,
                                         scenario={"start_date": INAUGURATION_START, "dprk_prior": prior},
                                         params={"us_type_turnover": turnover}))
    (k,) = inauguration_weeks(model.scenario_cfg.start, model.n_weeks)
    assert model.scenario_cfg.start + dt.timedelta(weeks=k) <= dt.date(2029, 1, 20)
    model.run_until(k + 0.1)  # weeks 0 .. k-1 done; the inauguration comes before week k's step
    types, belief, alive = model.us.resolute.copy(), model.dprk.belief.copy(), model.alive.copy()
    model.run_until(k + 0.22)
    assert model.steps == k
    _assert_share(model.us.resolute.sum(), n, c, "share resolute after the inauguration")
    _assert_share((model.us.resolute != types).sum(), n, turnover * 2 * c * (1 - c), "share changed")
    assert belief[alive].std() > 0.05  # ten weeks of evidence have spread the beliefs out
    np.testing.assert_allclose(model.dprk.belief[alive], (1 - turnover) * belief[alive] + turnover * prior,
                               rtol=1e-9)


# -------------------------------------------------------------------------- belief calibration
CALIBRATION_RUN = dict(replications=2000, weeks=520, seed=1601)


@pytest.mark.parametrize("credibility", [0.2, 0.8])
@pytest.mark.parametrize("posture", [Posture.rotational, Posture.permanent])
def test_a_consistent_dprk_holds_calibrated_beliefs(posture, credibility):
    """A Bayesian whose likelihoods are the model's own probabilities holds calibrated beliefs
    (DeGroot & Fienberg 1983; issue 11): among replications where the DPRK ends believing about p,
    about p have a resolute US. Default parameters, perception consistent, seed 1601, R = 2000,
    520 weeks (two inaugurations): expected calibration error of the final belief (10 bins,
    :func:`sim.diagnostics.belief_calibration`) below 0.05, and the belief separates the types.
    """
    per = _run(credibility=credibility, policy={"name": posture}, **CALIBRATION_RUN).per
    calibration = belief_calibration(per)
    assert calibration["ece"] < 0.05, {k: v for k, v in calibration.items() if k != "table"}
    assert calibration["mean_belief_if_resolute"] > calibration["mean_belief_if_irresolute"] + 0.3


def test_a_dprk_that_reads_arrivals_as_costly_signals_is_miscalibrated():
    """The named misperception (perception=costly_signals; Jervis 1976): a DPRK that reads
    scheduled arrivals, presence and consultations as signals of resolve whatever the type becomes
    confident that an irresolute US is resolute. Rotational, credibility 0.2, seed 1601, R = 2000,
    520 weeks: expected calibration error above 0.1, the belief too high."""
    per = _run(credibility=0.2, policy={"name": Posture.rotational}, params=COSTLY, **CALIBRATION_RUN).per
    calibration = belief_calibration(per)
    assert calibration["ece"] > 0.1
    assert calibration["mean_belief"] > calibration["share_resolute"] + 0.1


# ---------------------------------------------------------------------------------- tied hands
def test_tied_hands_the_irresolute_threatens_less_and_backing_down_costs():
    """Tied hands (Fearon 1994): a threat binds for ``us_threat_window_weeks``; challenged by a major
    provocation, any response short of a surge costs the audience cost. A US that threatens expects
    that cost times its own probability of backing down, so the irresolute type threatens less.

    1. Seed 1651, R = 20000, one week, a batch of credibility 0 and 1 with the DPRK's prior 0.5 in
       both (so the DPRK's week-0 moves are the same): where the DPRK did nothing that calls for a
       response (restraint or talks: need 0), the all-irresolute block threatens less than the
       all-resolute one, paired; with no audience cost the two blocks threaten in exactly the same
       replications (the type then matters only through the need).
    2. Seed 1652, R = 20000, one week, audience cost 3: every replication starting with a threat
       that binds (set by hand) against none: where the DPRK commits a major provocation, the
       challenged US surges (follows through) more, paired.
    """
    types = {"credibility": [0.0, 1.0], "dprk_prior": [0.5, 0.5]}
    run = dict(replications=20_000, weeks=1, seed=1651, policy={"name": Posture.reactive})
    threats = {}
    for cost in (0.0, 2.0):
        per = _run(batch=types, params={"us_audience_cost": cost}, **run).per
        irresolute, resolute = _block(per, 0), _block(per, 1)
        assert not irresolute["us_resolute"].any() and resolute["us_resolute"].all()
        calm = (irresolute["dprk_restraint"] + irresolute["dprk_talks_offer"]).to_numpy() > 0
        pd.testing.assert_series_equal(irresolute["dprk_restraint"], resolute["dprk_restraint"])
        threats[cost] = (irresolute["us_threat"].to_numpy()[calm], resolute["us_threat"].to_numpy()[calm])
    np.testing.assert_array_equal(*threats[0.0])
    assert threats[0.0][0].sum() > 0
    _assert_paired_greater(threats[2.0][1], threats[2.0][0],
                           "threats after restraint or talks, resolute vs irresolute, audience cost 2")

    surges = {}
    for binding in (0, 2):
        model = DeterrenceModel(small_config(replications=20_000, weeks=1, seed=1652,
                                             policy={"name": Posture.reactive},
                                             params={"us_audience_cost": 3.0}))
        model.us.threat_left[:] = binding  # a threat made last week binds (or not)
        per = model.run().per_replication()
        challenged = _major_provocations(per) > 0
        surges[binding] = per["us_surge_deployment"].to_numpy()[challenged]
    assert challenged.sum() >= 200
    _assert_paired_greater(surges[2], surges[0], "surges after a major provocation, threat binding vs not")


# ------------------------------------------------------------------- type-dependent deferral
def test_an_irresolute_us_that_defers_rotations_arrives_less_and_is_read():
    """A rotation falls due and each type defers it with its own probability (``us_skip_resolute``,
    ``us_skip_irresolute``; cf. the 2018 suspension of scheduled exercises): the schedule then carries
    information, and a consistent DPRK reads an arrival made or deferred
    (:func:`sim.rules.schedule_log_likelihood_ratio`).

    Rotational (a rotation due every 6 weeks: 18 in 104 weeks), no surges, no war, credibility 0.5,
    seed 2501, R = 2000, no inauguration:

    1. skip 0.1 (resolute) and 0.6 (irresolute): the share of due rotations that arrive is 0.9 and
       0.4 by type (99.9 % Wilson intervals);
    2. skip 0 and 0.5 against 0 and 0 (same seed, so the same types): the resolute arrive exactly
       as before and the DPRK ends more convinced of them; the irresolute arrive less and the DPRK
       ends less convinced of them; with both skips 0 every replication arrives every time.
    """
    run = dict(replications=2000, weeks=104, seed=2501, credibility=0.5, policy={"name": Posture.rotational})
    due = len(range(0, 104, 6))
    per = _run(params={**NO_SURGES, **NO_WAR, "us_skip_resolute": 0.1, "us_skip_irresolute": 0.6}, **run).per
    resolute = per["us_resolute"].to_numpy(dtype=bool)
    arrivals = per["us_deployments"].to_numpy()
    assert (per["us_surge_deployment"] == 0).all()
    _assert_share(arrivals[resolute].sum(), due * resolute.sum(), 0.9, "arrivals of a resolute US")
    _assert_share(arrivals[~resolute].sum(), due * (~resolute).sum(), 0.4, "arrivals of an irresolute US")

    same = _run(params={**NO_SURGES, **NO_WAR}, **run).per
    skips = _run(params={**NO_SURGES, **NO_WAR, "us_skip_irresolute": 0.5}, **run).per
    np.testing.assert_array_equal(same["us_resolute"], skips["us_resolute"])
    assert (same["us_deployments"] == due).all()
    resolute = same["us_resolute"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(skips["us_deployments"][resolute], due)
    assert skips["us_deployments"][~resolute].mean() < 0.6 * due
    belief = {"same": same["final_dprk_belief"].to_numpy(), "skips": skips["final_dprk_belief"].to_numpy()}
    _assert_paired_greater(belief["skips"][resolute], belief["same"][resolute],
                           "final belief facing a resolute US, irresolute skip 0.5 vs 0")
    _assert_paired_greater(belief["same"][~resolute], belief["skips"][~resolute],
                           "final belief facing an irresolute US, irresolute skip 0 vs 0.5")


def test_beliefs_stay_calibrated_when_the_schedule_is_informative():
    """With type-dependent deferral (skip 0.1 resolute, 0.4 irresolute) the schedule is evidence,
    and a consistent DPRK that reads it stays calibrated: rotational, credibility 0.5, seed 2502,
    R = 2000, 520 weeks: ECE of the final belief below 0.05."""
    per = _run(replications=2000, weeks=520, seed=2502, credibility=0.5, policy={"name": Posture.rotational},
               params={"us_skip_resolute": 0.1, "us_skip_irresolute": 0.4}).per
    calibration = belief_calibration(per)
    assert calibration["ece"] < 0.05, {k: v for k, v in calibration.items() if k != "table"}


# ------------------------------------------------------------------------------- the two axes
def test_credibility_sets_the_truth_and_the_prior_sets_the_dprk():
    """Two axes (issue 11): ``credibility`` is the true share of resolute US, ``dprk_prior`` what the
    DPRK believes at the start (null: the common prior, equal to credibility; Harsanyi 1967-68).

    1. Batch credibility 0.2 and 0.8, prior 0.5 in both; seed 2601, R = 2000, one week: the shares
       resolute are 0.2 and 0.8 (Wilson) while the DPRK's week-0 moves are identical.
    2. Batch prior 0.2 and 0.8, credibility 0.5 in both; seed 2602, R = 500, 52 weeks: the same US
       types in both blocks, and more DPRK provocations with the lower prior (deterrence by
       punishment scales with the belief; paired).
    3. ``scenario.dprk_prior`` null and equal to the credibility (0.7) give identical runs.
    """
    per = _run(batch={"credibility": [0.2, 0.8], "dprk_prior": [0.5, 0.5]}, replications=2000, weeks=1,
               seed=2601).per
    for j, c in enumerate((0.2, 0.8)):
        _assert_share(_block(per, j)["us_resolute"].sum(), 2000, c, f"block credibility {c}")
    dprk = [col for col in per.columns if col.startswith("dprk_")]
    pd.testing.assert_frame_equal(_block(per, 0)[dprk], _block(per, 1)[dprk])
    assert _block(per, 0)["dprk_restraint"].mean() < 1  # provocations to compare

    per = _run(batch={"credibility": [0.5, 0.5], "dprk_prior": [0.2, 0.8]}, replications=500, weeks=52,
               seed=2602).per
    pd.testing.assert_series_equal(_block(per, 0)["us_resolute"], _block(per, 1)["us_resolute"])
    _assert_paired_greater(provocations(_block(per, 0)), provocations(_block(per, 1)),
                           "provocations, DPRK prior 0.2 vs 0.8 at credibility 0.5")

    run = dict(replications=200, weeks=52, seed=2603, credibility=0.7)
    common = _run(scenario={"dprk_prior": None}, **run).per
    pd.testing.assert_frame_equal(common, _run(scenario={"dprk_prior": 0.7}, **run).per)


# ------------------------------------------------------------------------ tension -> clashes
def _unintended_clashes(per: pd.DataFrame) -> np.ndarray:
    """Weeks with a clash that was not a DPRK border incident (every border incident is a clash)."""
    return (per["clashes"] - per["dprk_border_incident"]).to_numpy(dtype=float)


def test_more_tension_or_a_steeper_clash_slope_gives_more_unintended_clashes():
    """The threat that leaves something to chance: the weekly chance of an unintended clash rises
    with tension (Schelling 1960, ch. 8; 1966).

    Initial tension 15 instead of 2 (seed 1701, R = 1000, 26 weeks) and clash_slope 0.7 instead of
    0.35 (seed 1702, R = 1000, 52 weeks) each give more unintended clashes per replication, paired.
    """
    run = dict(replications=1000, weeks=26, seed=1701)
    hot = _run(scenario={"initial_tension": 15.0}, **run).per
    calm = _run(scenario={"initial_tension": 2.0}, **run).per
    _assert_paired_greater(_unintended_clashes(hot), _unintended_clashes(calm),
                           "unintended clashes, initial tension 15 vs 2")
    run = dict(replications=1000, weeks=52, seed=1702)
    steep = _run(params={"clash_slope": 0.7}, **run).per
    flat = _run(params={"clash_slope": 0.35}, **run).per
    _assert_paired_greater(_unintended_clashes(steep), _unintended_clashes(flat),
                           "unintended clashes, clash_slope 0.7 vs 0.35")


# --------------------------------------------------------------------------------- decoupling
def test_dprk_long_range_capability_lowers_allied_assurance():
    """Decoupling: the fear that DPRK ICBMs make Washington 'dither' (Korea JoongAng Daily, 2 Nov
    2022) lowers the level to which allied assurance reverts (Snyder 1984).

    Initial capability 0.95 instead of 0.2: lower final ROK and Japanese assurance. Seed 1801,
    R = 300, 52 weeks, paired. Control: with ``decoupling = 0`` capability reaches nothing under
    Bayesian learning, so the two runs are identical.
    """
    run = dict(replications=300, weeks=52, seed=1801)
    low = _run(scenario={"dprk_capability": 0.2}, **run).model
    high = _run(scenario={"dprk_capability": 0.95}, **run).model
    _assert_paired_greater(low.rok.assurance, high.rok.assurance, "ROK assurance, capability 0.2 vs 0.95")
    _assert_paired_greater(low.japan.assurance, high.japan.assurance,
                           "Japanese assurance, capability 0.2 vs 0.95")
    off = [_run(scenario={"dprk_capability": k}, params={"decoupling": 0.0}, **run)
           for k in (0.2, 0.95)]
    np.testing.assert_array_equal(off[0].model.rok.assurance, off[1].model.rok.assurance)
    pd.testing.assert_frame_equal(off[0].per, off[1].per)


# ------------------------------------------------------------------------------ ROK hedging
def test_low_rok_assurance_brings_more_rok_strike_drills():
    """Hedging: an ally that fears abandonment builds its own strike options (Snyder 1984); the
    strike drill's utility rises as assurance falls below ``rok_hedge_threshold``.

    Initial ROK assurance 0.2 instead of 0.8: more ROK strike drills per replication. Seed 1901,
    R = 400, 26 weeks, paired.
    """
    run = dict(replications=400, weeks=26, seed=1901)
    anxious = _run(scenario={"rok_assurance": 0.2}, **run).per
    assured = _run(scenario={"rok_assurance": 0.8}, **run).per
    _assert_paired_greater(anxious["rok_strike_drill"], assured["rok_strike_drill"],
                           "ROK strike drills, initial assurance 0.2 vs 0.8")


# ------------------------------------------------------------------------------ cost account
COSTS = {"transit_cost": 3.0, "station_cost_per_week": 2.0, "permanent_setup_cost": 50.0,
         "permanent_station_cost_per_week": 0.5}


def test_posture_costs_add_up_as_the_schedule_says():
    """The cost account of docs/model.md Section 7.7 (stylised asset-weeks; Yonhap, 1 Feb 2017 and
    Qatar News Agency, 21 Dec 2016 for the postures), computed by hand from the schedule.

    No surges (surge cost 100) and no war; seed 2001, R = 20, 23 weeks:

    * permanent: set-up + one transit in week 0, then the permanent station rate every week;
    * rotational (an arrival every 5 weeks from week 1, 3 weeks on station): one transit per
      arrival and the ordinary station rate per week on station, the last stay cut by the horizon.
    """
    weeks = 23
    run = dict(replications=20, weeks=weeks, seed=2001, params={"us_surge_cost": 100.0, **NO_WAR})
    _, ts, per = _run(policy={"name": Posture.permanent, **COSTS}, **run)
    assert per["us_surge_deployment"].sum() == 0
    cumulative = (COSTS["permanent_setup_cost"] + COSTS["transit_cost"]
                  + COSTS["permanent_station_cost_per_week"] * np.arange(1, weeks + 1))
    np.testing.assert_allclose(ts["us_cost_cumulative"], cumulative, rtol=1e-12)
    np.testing.assert_allclose(per["us_cost"], cumulative[-1], rtol=1e-12)

    interval, duration, offset = 5, 3, 1
    _, ts, per = _run(policy={"name": Posture.rotational, **COSTS,
                                      "rotation_interval_weeks": interval,
                                      "rotation_duration_weeks": duration,
                                      "rotation_offset_weeks": offset}, **run)
    assert per["us_surge_deployment"].sum() == 0
    arrivals = range(offset, weeks, interval)  # weeks 1, 6, 11, 16, 21
    on_station = {k + j for k in arrivals for j in range(duration) if k + j < weeks}
    expected = COSTS["transit_cost"] * len(arrivals) + COSTS["station_cost_per_week"] * len(on_station)
    np.testing.assert_allclose(per["us_cost"], expected, rtol=1e-12)
    np.testing.assert_array_equal(ts["scheduled_on_station"].to_numpy() > 0,
                                  np.isin(np.arange(weeks), sorted(on_station)))


def test_a_deferred_rotation_costs_nothing():
    """A rotation the US defers (``us_skip_*``) has no transit and no weeks on station, so the
    account charges only the rotations that arrived: with no surges, no war, an arrival every 5 weeks
    from week 1 for 3 weeks and 24 weeks (no stay cut by the horizon), each replication's cost is its
    arrivals times (transit + 3 station weeks). Seed 2002, R = 400, credibility 0.5, skip 0.2
    (resolute) and 0.7 (irresolute); and with every rotation deferred (skip 1 and 1) nothing is
    on station and nothing is spent. Basing is the same whatever the type: the permanent account is
    unchanged by the skip probabilities."""
    interval, duration, offset, weeks = 5, 3, 1, 24
    policy = {"name": Posture.rotational, **COSTS, "rotation_interval_weeks": interval,
              "rotation_duration_weeks": duration, "rotation_offset_weeks": offset}
    run = dict(replications=400, weeks=weeks, seed=2002, credibility=0.5)
    per = _run(policy=policy, params={**NO_SURGES, **NO_WAR, "us_skip_resolute": 0.2,
                                      "us_skip_irresolute": 0.7}, **run).per
    arrivals = per["us_deployments"].to_numpy()
    assert arrivals.min() < len(range(offset, weeks, interval)) and arrivals.max() > 0
    np.testing.assert_allclose(per["us_cost"], arrivals * (COSTS["transit_cost"]
                                                           + duration * COSTS["station_cost_per_week"]),
                               rtol=1e-12)
    _, ts, per = _run(policy=policy, params={**NO_SURGES, **NO_WAR, "us_skip_resolute": 1.0,
                                             "us_skip_irresolute": 1.0}, **run)
    assert (per["us_cost"] == 0).all() and (per["us_deployments"] == 0).all()
    assert (ts["scheduled_on_station"] == 0).all() and (ts["asset_on_station"] == 0).all()
    permanent = [_run(policy={"name": Posture.permanent, **COSTS},
                      params={**NO_SURGES, **NO_WAR, "us_skip_irresolute": skip}, **run).per["us_cost"]
                 for skip in (0.0, 1.0)]
    pd.testing.assert_series_equal(permanent[0], permanent[1])


# ------------------------------------------------------------- independence of random streams
ROK_ONLY = {"rok_strike_cost": 0.5, "rok_outreach_cost": 0.5}
JAPAN_ONLY = {"japan_protest_cost": 0.5, "japan_trilateral_cost": 0.5}


def _columns(per: pd.DataFrame, *prefixes: str) -> list[str]:
    return [c for c in per.columns if c.startswith(prefixes)]


@pytest.mark.parametrize(("ally", "change"), [("rok", ROK_ONLY), ("japan", JAPAN_ONLY)])
def test_an_allied_parameter_leaves_the_dprk_and_us_draws_of_the_first_week(ally, change):
    """Every agent draws from its own stream, one uniform per replication per week whatever the
    state (common random numbers; docs/model.md Section 4.9). In week 0 the DPRK and the US move
    before the allies can matter (no earlier request or outreach), so changing a ROK-only or a
    Japan-only parameter leaves each replication's week-0 DPRK action and salvo, US action and US
    type unchanged, while the ally's own actions change. Seed 2101, R = 500, one week.
    """
    run = dict(replications=500, weeks=1, seed=2101)
    base, changed = _run(**run).per, _run(params=change, **run).per
    same = _columns(base, "dprk_", "us_", "final_dprk_belief")
    pd.testing.assert_frame_equal(base[same], changed[same])
    own = _columns(base, f"{ally}_")
    assert not base[own].equals(changed[own])  # the change matters for the ally itself


def test_a_japan_only_parameter_changes_nothing_else_when_japan_acts_on_no_one():
    """With trilateral drills adding no pressure or tension, Japan's actions reach no other actor
    (docs/model.md Sections 7.13, 7.14; its assurance is its own). Changing a Japan-only parameter
    must then leave the DPRK, the US, the ROK, tension and clashes identical for the whole run: a
    draw taken from another actor's stream, or a seed that depends on the parameters, would shift
    them. Seed 2201, R = 200, 52 weeks.
    """
    run = dict(replications=200, weeks=52, seed=2201,
               params={"pressure_trilateral": 0.0, "tension_trilateral": 0.0})
    base = _run(**run)
    changed = _run(**{**run, "params": {**run["params"], **JAPAN_ONLY}})
    # Japan's own columns: its action counts and its final assurance
    others = [c for c in base.per.columns if not c.startswith("japan_") and c != "final_japan_assurance"]
    pd.testing.assert_frame_equal(base.per[others], changed.per[others])
    series = _columns(base.timeseries, "tension_", "dprk_belief_", "rok_assurance_")
    pd.testing.assert_frame_equal(base.timeseries[series], changed.timeseries[series])
    japan = _columns(base.per, "japan_")
    assert not base.per[japan].equals(changed.per[japan])


# ---------------------------------------------------------------------------- summary metrics
def test_confidence_intervals_narrow_as_replications_grow():
    """A mean's Student-t interval and a proportion's Wilson interval (Wilson 1927; Brown, Cai &
    DasGupta 2001) shrink like 1 / sqrt(n). Nuclear tests made cheaper (dprk_cost_nuclear 5) so
    that every metric varies; seeds 2301 (R = 100) and 2302 (R = 1600), 52 weeks: every headline
    metric's ci95 is less than half as wide at R = 1600 (16 times the replications: 1/4 expected).
    """
    widths = {}
    for seed, replications in ((2301, 100), (2302, 1600)):
        results = DeterrenceModel(small_config(replications=replications, weeks=52, seed=seed,
                                               params={"dprk_cost_nuclear": 5.0})).run()
        widths[replications] = {name: metric["ci95"][1] - metric["ci95"][0]
                                for name, metric in headline_metrics(results.replications).items()}
    for name, width in widths[100].items():
        assert width > 0, f"{name} does not vary at R = 100"
        assert widths[1600][name] < 0.5 * width, f"{name}: ci95 width {width:.4g} -> {widths[1600][name]:.4g}"


def test_war_implies_a_clash_and_the_clash_share_bounds_the_war_share():
    """War can follow only a clash (Schelling 1960, ch. 8; docs/model.md Section 7.15), so per
    replication a war week has a first clash at or before it, and ``p_kinetic_clash`` (at least one
    clash) is at least the share reaching war and equals the ladder level 'kinetic clash'.

    Clashes and war made frequent (clash_intercept -4, war_intercept -2); seed 2401, R = 400,
    52 weeks: some replications reach war, some clash without war.
    """
    model = DeterrenceModel(small_config(replications=400, weeks=52, seed=2401,
                                         params={"clash_intercept": -4.0, "war_intercept": -2.0}))
    results = model.run()
    per = results.per_replication()
    war = per["war_week"].notna().to_numpy()
    clash = per["first_clash_week"].notna().to_numpy()
    assert war.any()  # the checks below are not empty
    assert np.all(clash[war])
    assert np.all(per["first_clash_week"][war] <= per["war_week"][war])
    metrics = headline_metrics(results.replications)
    assert metrics["p_kinetic_clash"]["estimate"] == clash.mean()
    assert metrics["p_rung_at_least_war"]["estimate"] == war.mean()
    assert (clash & ~war).any()  # some clashes stay short of war, so the bound below is strict
    assert metrics["p_kinetic_clash"]["estimate"] > metrics["p_rung_at_least_war"]["estimate"]
    assert metrics["p_kinetic_clash"]["estimate"] == metrics["p_rung_at_least_kinetic_clash"]["estimate"]


def _exercise_week_launches(exercise: bool, **params) -> np.ndarray:
    """Per replication: launched (0/1) in week 10, where a one-week combined exercise is held (or
    not), no other exercise in the year; 2,000 replications, seed TEST_SEED."""
    start = dt.date.fromisoformat(small_config().scenario.start_date)
    held = [DatedEvent(name="drill", kind="exercise", date=(start + dt.timedelta(weeks=10)).isoformat(),
                       weeks=1, intensity=1.0)] if exercise else []
    cfg = small_config(replications=2000, weeks=12, scenario={"exercises": [], "dated_events": held},
                       params=params)
    detail = DeterrenceModel(cfg, detail=True).run().detail
    return (detail["launch_days"][10] > 0).astype(float)


def test_a_spiral_leaning_dprk_answers_an_exercise_in_the_week_it_is_held():
    """The DPRK moves knowing this week's announced exercise (rules.pressure_at_move): with the
    spiral model's weight (spiral_weight 1, spiral_gain 2) it launches more in the exercise week
    itself than in the same week without the exercise (paired, same seed); with the deterrence
    model's (spiral_weight 0, deterrence_gain 2), less. A DPRK that saw the exercise only a week later
    would not tell the two weeks apart."""
    spiral = {"spiral_weight": 1.0, "spiral_gain": 2.0}
    _assert_paired_greater(_exercise_week_launches(True, **spiral), _exercise_week_launches(False, **spiral),
                           "spiral: launches in the exercise week")
    deterrence = {"spiral_weight": 0.0, "deterrence_gain": 2.0}
    _assert_paired_greater(_exercise_week_launches(False, **deterrence),
                           _exercise_week_launches(True, **deterrence),
                           "deterrence: launches in the exercise week")
