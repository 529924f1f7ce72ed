"""One model-level test per mechanism that drives the posture answer (issue 11, point 5).

Each test runs the whole model through its public API (``run``, ``DeterrenceModel``) on a small
configuration, with a stated seed, number of replications and direction of the effect, and most run
under both engines (the compiled default and the numpy reference), so that an error made in the
equation of either engine, or in both, turns them red. Comparisons of two settings use the same
seed: replication i meets the same random numbers in both arms (common random numbers,
docs/model.md Section 4.9), so the per-replication differences are independent draws and their
mean is compared with 3 standard errors computed from them, never with a number from an earlier
run. Where the rule makes the outcome deterministic the test checks the rule's exact consequence
(an identity, a hand computation) instead.

Tests of these mechanisms that exist elsewhere and are not repeated here:

* belief direction: ``test_directions.py::test_bayesian_dprk_ends_more_convinced_facing_a_resolute_us``;
* the rule-level forms: ``test_rules.py`` (habituation, clash probability, assurance step);
* the US type draw's common random numbers across postures and a ROK-only parameter, and the
  DPRK's first week across postures: ``test_reproducibility.py``;
* war only after a clash in random configurations: ``test_properties.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from conftest import provocations, small_config
from scipy.special import logit

from sim import DeterrenceModel, Posture
from sim.metrics import headline_metrics, wilson_interval
from sim.model import ENGINES

Z = 3.0  # required margin, in standard errors of the mean paired difference

# Settings that make an actor silent: a cost of 100 on the logit scale gives an action odds of
# about e^-95 against holding, so it is never drawn in these runs.
SILENT_US = {"us_statement_cost": 100.0, "us_threat_cost": 100.0, "us_surge_cost": 100.0}
NO_MAJOR_PROVOCATIONS = {"dprk_cost_lrbm": 100.0, "dprk_cost_nuclear": 100.0,
                         "dprk_cost_border": 100.0}
NO_WAR = {"war_intercept": -100.0}  # p(war | clash) = expit(-100 + slope * T): never


class Outcome(NamedTuple):
    model: DeterrenceModel  # its final state
    timeseries: pd.DataFrame
    per: pd.DataFrame  # one row per replication


def _run(engine: str, **changes) -> Outcome:
    """Run ``small_config(**changes)`` on ``engine``."""
    model = DeterrenceModel(small_config(**changes), engine=engine)
    results = model.run()
    return Outcome(model, results.timeseries, results.per_replication())


def _assert_paired_greater(higher, lower, what: str) -> None:
    """Mean of ``higher - lower`` over replications (same seed, paired) above Z standard errors."""
    diff = np.asarray(higher, dtype=float) - np.asarray(lower, dtype=float)
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert se > 0, f"{what}: the two arms are identical"
    assert diff.mean() > Z * se, (f"{what}: {np.mean(higher):.4g} vs {np.mean(lower):.4g}, "
                                  f"mean paired difference {diff.mean():.4g}, SE {se:.3g}")


def _major_provocations(per: pd.DataFrame) -> np.ndarray:
    """Major provocations per replication (severity >= 1: long-range launch, nuclear test, border)."""
    return (per["dprk_lrbm_launch"] + per["dprk_nuclear_test"]
            + per["dprk_border_incident"]).to_numpy()


# ------------------------------------------------------------------------ presence deterrence
@pytest.mark.parametrize("engine", ENGINES)
def test_an_asset_on_station_deters_provocations_when_presence_deterrence_is_positive(engine):
    """Forces at hand raise the expected punishment by the share ``presence_deterrence``
    (Schelling 1966; Fuhrmann & Sechser 2014 find the effect small, hence a parameter).

    Permanent posture (an asset on station every week): presence_deterrence 0.5 gives fewer DPRK
    provocations (launch days + nuclear tests + border incidents) than 0. Seed 1101, R = 400,
    52 weeks, paired. Control: under posture ``none`` (never on station) the same change leaves
    every per-replication count identical.
    """
    run = dict(replications=400, weeks=52, seed=1101)
    arms = {delta: _run(engine, policy={"name": Posture.permanent},
                        params={"presence_deterrence": delta}, **run).per for delta in (0.0, 0.5)}
    _assert_paired_greater(provocations(arms[0.0]), provocations(arms[0.5]),
                           "provocations with an asset on station, presence_deterrence 0 vs 0.5")
    off = [_run(engine, policy={"name": Posture.none}, params={"presence_deterrence": delta},
                **run).per for delta in (0.0, 0.5)]
    pd.testing.assert_frame_equal(off[0], off[1])


# -------------------------------------------------------------------------- surge redundancy
@pytest.mark.parametrize("engine", ENGINES)
def test_the_us_surges_less_when_an_asset_is_already_on_station(engine):
    """A surge adds less when an asset is already there (``us_surge_redundancy``: a stylised
    developers' assumption with no literature source yet, docs/model.md Section 8.4).

    Permanent posture (an asset on station at every US move): redundancy 2 gives fewer surges than
    0. Seed 1201, R = 400, 52 weeks, paired. Control: under ``reactive`` with one-week surges no
    asset is ever on station when the US moves (docs/model.md Section 3.4), so the same change
    leaves every per-replication count identical.
    """
    run = dict(replications=400, weeks=52, seed=1201)
    arms = {r: _run(engine, policy={"name": Posture.permanent},
                    params={"us_surge_redundancy": r}, **run).per for r in (0.0, 2.0)}
    assert arms[0.0]["us_surge_deployment"].sum() > 0  # surges happen at all
    _assert_paired_greater(arms[0.0]["us_surge_deployment"], arms[2.0]["us_surge_deployment"],
                           "US surges with an asset on station, redundancy 0 vs 2")
    off = [_run(engine, policy={"name": Posture.reactive, "surge_duration_weeks": 1},
                params={"us_surge_redundancy": r}, **run).per for r in (0.0, 2.0)]
    assert off[0]["us_surge_deployment"].sum() > 0
    pd.testing.assert_frame_equal(off[0], off[1])


# ------------------------------------------------------------------------------- habituation
# Only the posture speaks: no consultations, a silent US, no major provocation (no 'inaction'),
# exact Bayes (memory 1) and no war, so every replication holds the same belief and each week's
# change of its log-odds is the presence evidence of that week.
PRESENCE_ONLY = dict(replications=2, weeks=30, seed=1301, credibility=0.5,
                     scenario={"consultations": []},
                     params={**SILENT_US, **NO_MAJOR_PROVOCATIONS, **NO_WAR, "belief_memory": 1.0,
                             "habituation_weeks": 6.0})


def _log_odds_steps(ts: pd.DataFrame) -> np.ndarray:
    """Week-on-week change of the (common) belief's log-odds."""
    np.testing.assert_array_equal(ts["dprk_belief_q05"], ts["dprk_belief_q95"])  # one belief
    return np.diff(logit(ts["dprk_belief_mean"].to_numpy()))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_presence_signal_fades_with_weeks_on_station(engine):
    """Habituation: a continuing presence sinks no new cost and becomes the status quo, so its weight
    as a signal decays as exp(-W / habituation_weeks) with W the weeks on station (Fearon 1997;
    Fuhrmann & Sechser 2014).

    Permanent posture, only the posture speaking (PRESENCE_ONLY, seed 1301, R = 2, 30 weeks):
    after the basing week each week's belief gain is positive and smaller than the week before,
    by the factor exp(-1 / habituation_weeks). Rotational posture (2 weeks on station every 6):
    the count restarts after each gap, so the second week of every rotation gains what the first
    week of continuing permanent presence gains.
    """
    ts = _run(engine, policy={"name": Posture.permanent}, **PRESENCE_ONLY).timeseries
    permanent = _log_odds_steps(ts)  # change into weeks 1, 2, ...: the presence signal alone
    assert np.all(permanent > 0)
    assert np.all(np.diff(permanent) < 0), permanent
    np.testing.assert_allclose(permanent[1:] / permanent[:-1], np.exp(-1.0 / 6.0), rtol=1e-6)

    ts = _run(engine, policy={"name": Posture.rotational, "rotation_interval_weeks": 6,
                              "rotation_duration_weeks": 2}, **PRESENCE_ONLY).timeseries
    rotational = _log_odds_steps(ts)
    second_weeks = rotational[np.arange(0, 25, 6)]  # change into weeks 1, 7, 13, 19, 25
    np.testing.assert_allclose(second_weeks, permanent[0], rtol=1e-9)  # one week on station each


# ------------------------------------------------------------------------- the inaction signal
@pytest.mark.parametrize("engine", ENGINES)
def test_a_major_provocation_without_a_costly_response_lowers_the_belief(engine):
    """A US that lets a major provocation pass without a deployment or a threat is read as less
    likely resolute: 'inaction' has a likelihood ratio below one (Fearon 1997).

    Posture ``none`` and a silent US (no arrival, threat or statement ever), no consultations,
    exact Bayes (memory 1): the only evidence is inaction after the DPRK's long-range launches,
    nuclear tests and border incidents. Seed 1401, R = 400, 20 weeks, credibility 0.5: a
    replication without a major provocation ends at its prior, every other one below it, and the
    final belief falls strictly with the number of major provocations.
    """
    per = _run(engine, replications=400, weeks=20, seed=1401, credibility=0.5,
               policy={"name": Posture.none}, scenario={"consultations": []},
               params={**SILENT_US, "belief_memory": 1.0}).per
    majors = _major_provocations(per)
    belief = per["final_dprk_belief"].to_numpy()
    assert (majors == 0).any() and (majors >= 2).any()  # both kinds of replication occur
    np.testing.assert_allclose(belief[majors == 0], 0.5, rtol=0, atol=1e-12)
    assert np.all(belief[majors > 0] < 0.5)
    by_count = pd.Series(belief).groupby(majors).agg(["min", "max"])
    assert np.all(by_count["max"].to_numpy()[1:] < by_count["min"].to_numpy()[:-1]), by_count


# --------------------------------------------------------------------------- the US type draw
def test_the_share_of_resolute_us_matches_credibility():
    """Commitment credibility is the probability that the US is resolute, drawn once per replication
    (Harsanyi 1967-68; Fearon 1997).

    Seed 1501, R = 4000, one week, credibility 0.1, 0.5 and 0.8: each credibility lies in the 99.9 %
    Wilson interval (Wilson 1927) of the share of resolute replications; and raising credibility
    only turns irresolute replications resolute (the draw is coupled, docs/model.md Section 4.9).
    """
    resolute = {}
    for c in (0.1, 0.5, 0.8):
        per = _run("numba", replications=4000, weeks=1, seed=1501, credibility=c).per
        resolute[c] = per["us_resolute"].to_numpy(dtype=bool)
        low, high = wilson_interval(resolute[c].sum(), resolute[c].size, level=0.999)
        share = resolute[c].mean()
        assert low <= c <= high, f"credibility {c}: {share:.4f} resolute, [{low:.4f}, {high:.4f}]"
    assert np.all(resolute[0.5] <= resolute[0.8]) and np.all(resolute[0.1] <= resolute[0.5])


# ------------------------------------------------------------------------ tension -> clashes
def _unintended_clashes(per: pd.DataFrame) -> np.ndarray:
    """Weeks with a clash that was not a DPRK border incident (every border incident is a clash)."""
    return (per["clashes"] - per["dprk_border_incident"]).to_numpy(dtype=float)


@pytest.mark.parametrize("engine", ENGINES)
def test_more_tension_or_a_steeper_clash_slope_gives_more_unintended_clashes(engine):
    """The threat that leaves something to chance: the weekly chance of an unintended clash rises
    with tension (Schelling 1960, ch. 8; 1966).

    Initial tension 15 instead of 2 (seed 1701, R = 1000, 26 weeks) and clash_slope 0.7 instead of
    0.35 (seed 1702, R = 1000, 52 weeks) each give more unintended clashes per replication, paired.
    """
    run = dict(replications=1000, weeks=26, seed=1701)
    hot = _run(engine, scenario={"initial_tension": 15.0}, **run).per
    calm = _run(engine, scenario={"initial_tension": 2.0}, **run).per
    _assert_paired_greater(_unintended_clashes(hot), _unintended_clashes(calm),
                           "unintended clashes, initial tension 15 vs 2")
    run = dict(replications=1000, weeks=52, seed=1702)
    steep = _run(engine, params={"clash_slope": 0.7}, **run).per
    flat = _run(engine, params={"clash_slope": 0.35}, **run).per
    _assert_paired_greater(_unintended_clashes(steep), _unintended_clashes(flat),
                           "unintended clashes, clash_slope 0.7 vs 0.35")


# --------------------------------------------------------------------------------- decoupling
@pytest.mark.parametrize("engine", ENGINES)
def test_dprk_long_range_capability_lowers_allied_assurance(engine):
    """Decoupling: the fear that DPRK ICBMs make Washington 'dither' (Korea JoongAng Daily, 2 Nov
    2022) lowers the level to which allied assurance reverts (Snyder 1984).

    Initial capability 0.95 instead of 0.2: lower final ROK and Japanese assurance. Seed 1801,
    R = 300, 52 weeks, paired. Control: with ``decoupling = 0`` capability reaches nothing under
    Bayesian learning, so the two runs are identical.
    """
    run = dict(replications=300, weeks=52, seed=1801)
    low = _run(engine, scenario={"dprk_capability": 0.2}, **run).model
    high = _run(engine, scenario={"dprk_capability": 0.95}, **run).model
    _assert_paired_greater(low.rok.assurance, high.rok.assurance, "ROK assurance, capability 0.2 vs 0.95")
    _assert_paired_greater(low.japan.assurance, high.japan.assurance,
                           "Japanese assurance, capability 0.2 vs 0.95")
    off = [_run(engine, scenario={"dprk_capability": k}, params={"decoupling": 0.0}, **run)
           for k in (0.2, 0.95)]
    np.testing.assert_array_equal(off[0].model.rok.assurance, off[1].model.rok.assurance)
    pd.testing.assert_frame_equal(off[0].per, off[1].per)


# ------------------------------------------------------------------------------ ROK hedging
@pytest.mark.parametrize("engine", ENGINES)
def test_low_rok_assurance_brings_more_rok_strike_drills(engine):
    """Hedging: an ally that fears abandonment builds its own strike options (Snyder 1984); the
    strike drill's utility rises as assurance falls below ``rok_hedge_threshold``.

    Initial ROK assurance 0.2 instead of 0.8: more ROK strike drills per replication. Seed 1901,
    R = 400, 26 weeks, paired.
    """
    run = dict(replications=400, weeks=26, seed=1901)
    anxious = _run(engine, scenario={"rok_assurance": 0.2}, **run).per
    assured = _run(engine, scenario={"rok_assurance": 0.8}, **run).per
    _assert_paired_greater(anxious["rok_strike_drill"], assured["rok_strike_drill"],
                           "ROK strike drills, initial assurance 0.2 vs 0.8")


# ------------------------------------------------------------------------------ cost account
COSTS = {"transit_cost": 3.0, "station_cost_per_week": 2.0, "permanent_setup_cost": 50.0,
         "permanent_station_cost_per_week": 0.5}


@pytest.mark.parametrize("engine", ENGINES)
def test_posture_costs_add_up_as_the_schedule_says(engine):
    """The cost account of docs/model.md Section 7.7 (stylised asset-weeks; Yonhap, 1 Feb 2017 and
    Qatar News Agency, 21 Dec 2016 for the postures), computed by hand from the schedule.

    No surges (surge cost 100) and no war; seed 2001, R = 20, 23 weeks:

    * permanent: set-up + one transit in week 0, then the permanent station rate every week;
    * rotational (an arrival every 5 weeks from week 1, 3 weeks on station): one transit per
      arrival and the ordinary station rate per week on station, the last stay cut by the horizon.
    """
    weeks = 23
    run = dict(replications=20, weeks=weeks, seed=2001, params={"us_surge_cost": 100.0, **NO_WAR})
    _, ts, per = _run(engine, policy={"name": Posture.permanent, **COSTS}, **run)
    assert per["us_surge_deployment"].sum() == 0
    cumulative = (COSTS["permanent_setup_cost"] + COSTS["transit_cost"]
                  + COSTS["permanent_station_cost_per_week"] * np.arange(1, weeks + 1))
    np.testing.assert_allclose(ts["us_cost_cumulative"], cumulative, rtol=1e-12)
    np.testing.assert_allclose(per["us_cost"], cumulative[-1], rtol=1e-12)

    interval, duration, offset = 5, 3, 1
    _, ts, per = _run(engine, policy={"name": Posture.rotational, **COSTS,
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


# ------------------------------------------------------------- independence of random streams
ROK_ONLY = {"rok_strike_cost": 0.5, "rok_outreach_cost": 0.5}
JAPAN_ONLY = {"japan_protest_cost": 0.5, "japan_trilateral_cost": 0.5}


def _columns(per: pd.DataFrame, *prefixes: str) -> list[str]:
    return [c for c in per.columns if c.startswith(prefixes)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("ally", "change"), [("rok", ROK_ONLY), ("japan", JAPAN_ONLY)])
def test_an_allied_parameter_leaves_the_dprk_and_us_draws_of_the_first_week(engine, ally, change):
    """Every agent draws from its own stream, one uniform per replication per week whatever the
    state (common random numbers; docs/model.md Section 4.9). In week 0 the DPRK and the US move
    before the allies can matter (no earlier request or outreach), so changing a ROK-only or a
    Japan-only parameter leaves each replication's week-0 DPRK action and salvo, US action and US
    type unchanged, while the ally's own actions change. Seed 2101, R = 500, one week.
    """
    run = dict(replications=500, weeks=1, seed=2101)
    base, changed = _run(engine, **run).per, _run(engine, params=change, **run).per
    same = _columns(base, "dprk_", "us_", "final_dprk_belief")
    pd.testing.assert_frame_equal(base[same], changed[same])
    own = _columns(base, f"{ally}_")
    assert not base[own].equals(changed[own])  # the change matters for the ally itself


@pytest.mark.parametrize("engine", ENGINES)
def test_a_japan_only_parameter_changes_nothing_else_when_japan_acts_on_no_one(engine):
    """With trilateral drills adding no pressure or tension, Japan's actions reach no other actor
    (docs/model.md Sections 7.13, 7.14; its assurance is its own). Changing a Japan-only parameter
    must then leave the DPRK, the US, the ROK, tension and clashes identical for the whole run: a
    draw taken from another actor's stream, or a seed that depends on the parameters, would shift
    them. Seed 2201, R = 200, 52 weeks.
    """
    run = dict(replications=200, weeks=52, seed=2201,
               params={"pressure_trilateral": 0.0, "tension_trilateral": 0.0})
    base = _run(engine, **run)
    changed = _run(engine, **{**run, "params": {**run["params"], **JAPAN_ONLY}})
    others = [c for c in base.per.columns if not c.startswith("japan_")]
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


@pytest.mark.parametrize("engine", ENGINES)
def test_war_implies_a_clash_and_the_clash_share_bounds_the_war_share(engine):
    """War can follow only a clash (Schelling 1960, ch. 8; docs/model.md Section 7.15), so per
    replication a war week has a first clash at or before it, and ``p_kinetic_clash`` (at least one
    clash) is at least the share reaching war and equals the ladder level 'kinetic clash'.

    Clashes and war made frequent (clash_intercept -4, war_intercept -2); seed 2401, R = 400,
    52 weeks: some replications reach war, some clash without war.
    """
    model = DeterrenceModel(small_config(replications=400, weeks=52, seed=2401,
                                         params={"clash_intercept": -4.0, "war_intercept": -2.0}),
                            engine=engine)
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
