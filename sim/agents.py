"""The four actors as Mesa agents. Each holds its state as numpy arrays of length R (replications).

An agent's ``step`` gathers the inputs of its utilities from the model and draws one action per
replication by the quantal-response rule (:func:`sim.rules.sample_quantal`, the fast form of
:func:`sim.rules.quantal_response`) from its own random stream. No agent loops over
replications; R = 1 is the same code.
Equations live in :mod:`sim.rules`; the utility of each action is written out in the agent's
``utilities`` method with its source, and in ``docs/model.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from scipy.special import expit, logit

from . import kernels, rules

if TYPE_CHECKING:
    from .model import DeterrenceModel

# Action vocabularies (docs/model.md, Section 2.1). Order is part of the output schema.
DPRK_ACTIONS = (
    "restraint", "talks_offer", "rhetoric", "srbm_launch", "lrbm_launch", "nuclear_test",
    "border_incident",
)
US_ACTIONS = ("hold", "statement", "threat", "surge_deployment")
ROK_ACTIONS = ("hold", "strike_drill", "request_assets", "outreach")
JAPAN_ACTIONS = ("hold", "protest", "missile_alert", "trilateral_drill")

# Escalation ladder (Kahn 1965 in spirit, six rungs; docs/model.md, Section 7.15).
RUNGS = ("calm", "rhetoric", "missile test", "nuclear test", "kinetic clash", "war")
# Ladder rung reached by each DPRK action.
DPRK_RUNG = np.array([0, 0, 1, 2, 2, 3, 4], dtype=np.int8)
# Severity of each DPRK action as seen by the allies: how strongly it calls for a response. Ordered
# like the ladder; long-range launches, nuclear tests and border incidents are 'major' (>= 1).
DPRK_SEVERITY = np.array([0.0, 0.0, 0.2, 0.5, 1.0, 1.5, 1.5])
MAJOR_SEVERITY = 1.0

(RESTRAINT, TALKS, RHETORIC, SRBM, LRBM, NUCLEAR, BORDER) = range(7)
(US_HOLD, US_STATEMENT, US_THREAT, US_SURGE) = range(4)
(ROK_HOLD, ROK_STRIKE, ROK_REQUEST, ROK_OUTREACH) = range(4)
(JP_HOLD, JP_PROTEST, JP_ALERT, JP_TRILATERAL) = range(4)


_SEVERITY_COLUMN = DPRK_SEVERITY[:, None]


def action_column(n: int, *values) -> np.ndarray:
    """Stack per-action coefficients into a column (A, 1), or (A, n) if any is a per-replication array."""
    if all(np.ndim(v) == 0 for v in values):
        return np.array(values, dtype=float)[:, None]
    return np.stack([np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in values])


def _take(value, index: np.ndarray):
    """A parameter at the given replications: itself if scalar, else its entries."""
    return value if np.ndim(value) == 0 else value[index]


class EnsembleAgent(mesa.Agent):
    """An actor whose state is a vector over R replications, with a random stream of its own.

    ``rng`` is this agent's own generator (a child of the root ``SeedSequence``), not the model's:
    changing one agent's rule does not reshuffle the others' draws (common random numbers, as in
    Starsim).
    """

    actions: tuple[str, ...] = ()

    def __init__(self, model: DeterrenceModel, seed_sequence: np.random.SeedSequence) -> None:
        super().__init__(model)
        self._rng = np.random.default_rng(seed_sequence)
        self.n = model.replications
        self.choice = np.zeros(self.n, dtype=np.int64)
        # The compiled engine's buffer of (scaled, then exponentiated) utilities, reused every week.
        self._z = np.empty((len(self.actions), self.n)) if model.engine == "numba" else None

    @property
    def rng(self) -> np.random.Generator:  # noqa: D102 - overrides Mesa's model-wide generator
        return self._rng

    def exponentiate(self) -> np.ndarray:
        """``exp`` of the compiled engine's scaled utilities, in place (numpy's vectorised exp)."""
        return np.exp(self._z, out=self._z)

    def choose(self, utilities: np.ndarray, precision: float) -> np.ndarray:
        """Quantal-response draw from utilities of shape (actions, R).

        One uniform per replication, whatever the utilities (common random numbers). Uses the
        fast path :func:`sim.rules.sample_quantal`, which tests check against
        :func:`sim.rules.quantal_response` + :func:`sim.rules.sample_choice`.
        """
        u = self.model.uniforms(self._rng)
        self.choice = rules.sample_quantal(utilities, precision, u)
        return self.choice


class DPRK(EnsembleAgent):
    """North Korea: chooses a provocation or reassurance action each week.

    State: ``belief`` (probability that the US is resolute), ``capability`` (long-range capability
    index K in [0, 1]), ``missiles`` fired this week.
    """

    actions = DPRK_ACTIONS

    def __init__(self, model, seed_sequence, prior: float, capability: float) -> None:
        super().__init__(model, seed_sequence)
        choice_seq, salvo_seq = seed_sequence.spawn(2)
        self._rng = np.random.default_rng(choice_seq)
        self._salvo_rng = np.random.default_rng(salvo_seq)
        p = model.params
        self.prior_log_odds = float(logit(np.clip(prior, rules.expit(-rules.LOGIT_BOUND),
                                                  rules.expit(rules.LOGIT_BOUND))))
        self.log_odds = np.full(self.n, self.prior_log_odds)
        self.belief = expit(self.log_odds)
        self.capability = np.full(self.n, float(capability))
        self.missiles = np.zeros(self.n, dtype=np.int64)
        # Per-action coefficient columns, shape (7, 1), or (7, R) when a batch varies them.
        self._cost = -action_column(self.n, 0.0, p.dprk_cost_talks, p.dprk_cost_rhetoric,
                                    p.dprk_cost_srbm, p.dprk_cost_lrbm, p.dprk_cost_nuclear,
                                    p.dprk_cost_border)
        self._dev = action_column(self.n, 0.0, 0.0, 0.0, p.dprk_dev_srbm, p.dprk_dev_lrbm,
                                  p.dprk_dev_nuclear, 0.0)
        self._punish = action_column(self.n, 0.0, 0.0, p.dprk_punish_rhetoric, p.dprk_punish_srbm,
                                     p.dprk_punish_lrbm, p.dprk_punish_nuclear, p.dprk_punish_border)
        if model.credibility_rule == "current_calculus":
            self.refresh_current_calculus()

    def utilities(self) -> np.ndarray:
        """Expected utility of each action, shape (7, R) (actions first: the fast layout).

        ``U_a = -c_a + drive * d_a - pi_a * b * (1 + delta * S) * (1 + (1 - w) * g_d * P)
        + w * g_s * P * sigma_a`` (+ for talks: ``g_o * outreach - l_T * T``), where ``b`` is the
        belief that the US is resolute, ``S`` an asset on station, ``P`` allied military pressure,
        ``sigma_a`` the action's severity and ``w`` the spiral weight.

        * Deterrence by punishment: expected cost = credibility x punishment (Schelling 1966;
          Huth 1999), raised by forces at hand (``delta``; Fuhrmann & Sechser 2014 find it small).
        * Deterrence vs spiral (Jervis 1976, ch. 3): allied pressure both raises expected punishment
          (deterrence model, weight 1 - w) and the value of showing resolve by provoking (spiral
          model, weight w; Bernhardt & Sukin 2021 find exercise-linked aggression, Cha, Lee & Lim
          2016 little).
        * Development value of tests under the regime's weapons plan (exogenous ``drive``, set by
          the scenario and its eras); talks gain ``g_dip * diplomacy`` in eras of summitry; an era's
          declared nuclear-test moratorium makes the nuclear test unavailable (-inf).
        """
        m = self.model
        p = m.params
        w = p.spiral_weight
        pressure = m.pressure
        punish_scale = (
            self.belief
            * (1.0 + p.presence_deterrence * m.on_station)
            * (1.0 + (1.0 - w) * p.deterrence_gain * pressure)
        )
        u = -self._punish * punish_scale
        u += _SEVERITY_COLUMN * (w * p.spiral_gain * pressure)
        u += self._cost + m.weapons_drive * self._dev
        if m.nuclear_moratorium:  # a declared halt of nuclear testing (scenario era)
            u[NUCLEAR] = -np.inf
        u[TALKS] += (p.dprk_talks_outreach_gain * m.rok.outreach_last
                        + p.dprk_talks_diplomacy_gain * m.diplomacy
                        - p.dprk_talks_tension_loss * m.tension)
        return u

    def step(self) -> None:
        """Choose this week's action; fire missiles on a launch day; learn from long-range tests."""
        m = self.model
        p = m.params
        if m.engine == "numba":  # the same rules compiled (sim.kernels.dprk_week), same draws
            r = m.base_replications
            kernels.dprk_utilities(m.param_table, r, self._z, self.belief, m.on_station, m.pressure,
                                   m.tension, m.rok.outreach_last, m.drive_by_block(), float(m.diplomacy),
                                   bool(m.nuclear_moratorium))
            kernels.dprk_act(m.param_table, r, self.exponentiate(), m.draw(self._rng, 0), m.alive,
                             self.choice, self.missiles, self.capability, m.tension,
                             m.draw(self._salvo_rng, 1), m.scratch, rules.MAX_QUANTILE_TERMS)
            return
        self.choose(self.utilities(), p.dprk_precision)
        self.choice[~m.alive] = RESTRAINT
        # Salvo variates for every replication each week (a fixed use of the salvo stream: common
        # random numbers), turned into missiles only where the DPRK launches.
        u = m.uniforms(self._salvo_rng)
        launch = np.flatnonzero((self.choice == SRBM) | (self.choice == LRBM))
        self.missiles = np.zeros(self.n, dtype=np.int64)
        self.missiles[launch] = rules.salvo_size(
            u[launch], m.tension[launch], _take(p.salvo_extra, launch),
            _take(p.salvo_tension_gain, launch), p.salvo_dispersion)
        # Learning by testing: each long-range or nuclear test closes part of the capability gap.
        gain = (p.capability_learning * (self.choice == LRBM)
                + p.capability_learning_nuclear * (self.choice == NUCLEAR))
        self.capability += gain * (1.0 - self.capability)

    def update_belief(self, evidence: np.ndarray, alive: np.ndarray) -> None:
        """Bayesian update from this week's US signals (see :func:`sim.rules.update_log_odds`).

        Replications ended by war keep their last belief.
        """
        m = self.model
        if m.credibility_rule == "current_calculus":
            self.refresh_current_calculus(alive)
            return
        updated = rules.update_log_odds(self.log_odds, evidence, self.prior_log_odds,
                                        m.params.belief_memory)
        self.log_odds = np.where(alive, updated, self.log_odds)
        self.belief = expit(self.log_odds)

    def refresh_current_calculus(self, alive: np.ndarray | None = None) -> None:
        """Belief from capability and interest (Press 2005), replacing past-behaviour learning."""
        m = self.model
        p = m.params
        belief = rules.current_calculus_belief(
            m.credibility, m.on_station, m.exercise_intensity, self.capability,
            p.cc_intercept, p.cc_interest, p.cc_presence, p.cc_exercise, p.cc_decoupling,
        )
        self.belief = belief if alive is None else np.where(alive, belief, self.belief)
        self.log_odds = logit(np.clip(self.belief, 1e-12, 1 - 1e-12))


class US(EnsembleAgent):
    """The United States: a true type (resolute or not) per replication, discretionary responses.

    State: ``resolute`` (drawn once with probability ``credibility``), ``surge_left`` (weeks a
    surged asset stays), ``cost`` (the posture's cost account). The posture's scheduled arrivals are
    Mesa events that call :meth:`rotation_arrival`, :meth:`rotation_departure` and
    :meth:`permanent_arrival` and (at the end of a permanent posture period) :meth:`permanent_departure`.
    """

    actions = US_ACTIONS

    def __init__(self, model, seed_sequence, credibility: float) -> None:
        super().__init__(model, seed_sequence)
        type_seq, choice_seq = seed_sequence.spawn(2)
        # Commitment credibility = probability that the US is resolute (Harsanyi 1967-68; Fearon 1997).
        self.resolute = model.uniforms(np.random.default_rng(type_seq)) < credibility
        self._rng = np.random.default_rng(choice_seq)
        p = model.params
        self._type_factor = np.where(self.resolute, 1.0, p.us_irresolute_factor)
        self.surge_left = np.zeros(self.n, dtype=np.int64)
        self.surge_arrival = np.zeros(self.n, dtype=bool)
        self.cost = np.zeros(self.n)
        self.scheduled_present = False
        self.present_until = -np.inf
        self.scheduled_arrival = False
        self.setup_signal = False

    # --- posture events (scheduled by the model with Mesa's event scheduler) ---
    def rotation_arrival(self) -> None:
        """A rotational deployment arrives; it leaves after ``rotation_duration_weeks``."""
        self.scheduled_arrival = True
        self.scheduled_present = True
        stay = self.model.policy.rotation_duration_weeks
        self.present_until = self.model.time + stay
        self.cost += self.model.alive * self.model.policy.transit_cost
        self.model.schedule_event(self.rotation_departure, after=stay)

    def rotation_departure(self) -> None:
        """The rotational asset leaves: a gap opens until the next arrival.

        A departure only ends the presence it was scheduled for: an asset that arrived since (a
        new posture period) stays.
        """
        if self.model.time >= self.present_until - 1e-9:
            self.scheduled_present = False

    def permanent_arrival(self) -> None:
        """Permanent basing begins: a one-time sunk cost and signal, then continuous presence."""
        self.scheduled_arrival = True
        self.scheduled_present = True
        self.present_until = np.inf
        self.setup_signal = True
        self.cost += self.model.alive * (self.model.policy.permanent_setup_cost
                                         + self.model.policy.transit_cost)

    def permanent_departure(self) -> None:
        """A permanent posture's period ends (replays): the based asset leaves."""
        self.present_until = self.model.time
        self.scheduled_present = False

    def utilities(self, need: np.ndarray) -> np.ndarray:
        """Utility of hold, statement, threat and surge given the need to respond, shape (4, R).

        ``U_statement = g_st N - c_st``; ``U_threat = f g_th N - c_th``;
        ``U_surge = f g_su N - c_su - r S``, unavailable under the ``none`` posture. ``N`` is the
        severity of this week's DPRK action plus last week's ROK request for assets; ``f`` is 1 for a resolute
        US and ``us_irresolute_factor`` otherwise. A resolute US is more willing to pay for costly
        responses, which is what makes them informative (Fearon 1997); statements cost little and
        both types make them alike (cheap talk).
        """
        m = self.model
        p = m.params
        u = np.zeros((4, self.n))
        u[US_STATEMENT] = p.us_statement_gain * need - p.us_statement_cost
        u[US_THREAT] = self._type_factor * p.us_threat_gain * need - p.us_threat_cost
        if m.surge_allowed:
            u[US_SURGE] = (self._type_factor * p.us_surge_gain * need - p.us_surge_cost
                              - p.us_surge_redundancy * m.on_station)
        else:
            u[US_SURGE] = -np.inf
        return u

    def step(self) -> None:
        """Respond to this week's DPRK action.

        A surge puts an asset on station for the rest of this week and ``surge_duration_weeks - 1``
        more.
        """
        m = self.model
        p = m.params
        pol = m.policy
        scheduled_cost = (pol.permanent_station_cost_per_week if m.policy_name == "permanent"
                          else pol.station_cost_per_week)
        if m.engine == "numba":  # the same rules compiled (sim.kernels.us_week), same draws
            r = m.base_replications
            kernels.us_utilities(m.param_table, r, self._z, self._type_factor, m.dprk.choice, m.rok.choice,
                                 m.on_station, bool(m.surge_allowed))
            kernels.us_act(r, self.exponentiate(), m.draw(self._rng, 2), m.alive, self.choice,
                           self.surge_arrival, self.surge_left, self.cost, int(pol.surge_duration_weeks),
                           float(pol.transit_cost), float(scheduled_cost), bool(self.scheduled_present),
                           float(pol.station_cost_per_week), m.scratch)
            return
        # The ROK moves after the US within a week, so `m.rok.choice` is still last week's request.
        need = DPRK_SEVERITY[m.dprk.choice] + p.us_request_weight * (m.rok.choice == ROK_REQUEST)
        self.choose(self.utilities(need), p.us_precision)
        self.choice[~m.alive] = US_HOLD
        self.surge_arrival = self.choice == US_SURGE
        self.surge_left = np.where(self.surge_arrival, pol.surge_duration_weeks, self.surge_left)
        # Cost account: arrivals, then every asset-week on station (a surge on top of a scheduled
        # asset is a second asset). Ended (war) replications accrue nothing.
        self.cost += m.alive * (self.surge_arrival * pol.transit_cost
                                + scheduled_cost * self.scheduled_present
                                + pol.station_cost_per_week * (self.surge_left > 0))

    def end_week(self) -> None:
        """Count down surges and clear one-week flags."""
        np.subtract(self.surge_left, 1, out=self.surge_left)
        np.maximum(self.surge_left, 0, out=self.surge_left)
        self.scheduled_arrival = False
        self.setup_signal = False


class ROK(EnsembleAgent):
    """South Korea: assurance in the US commitment, and hedging when it is low (Snyder 1984)."""

    actions = ROK_ACTIONS

    def __init__(self, model, seed_sequence, assurance: float) -> None:
        super().__init__(model, seed_sequence)
        self.assurance = np.full(self.n, float(assurance))
        self.outreach_last = np.zeros(self.n)
        self._outreach = np.zeros(self.n, dtype=bool)

    def utilities(self, need: np.ndarray) -> np.ndarray:
        """Utility of hold, own strike drill, request for US assets and outreach, shape (4, R).

        ``U_strike = -c + h max(0, A* - A) + g N`` (hedging when assurance ``A`` falls below the
        threshold ``A*``: abandonment fear, Snyder 1984); ``U_request = -c + g (1 - A) N`` (Seoul's
        ask for assets: Yonhap, 1 Feb 2017; Korea Times, 3 Feb 2017);
        ``U_outreach = -c + g talks - l T`` (engagement when the DPRK offers talks and tension is
        low).
        """
        m = self.model
        p = m.params
        u = np.zeros((4, self.n))
        u[ROK_STRIKE] = (-p.rok_strike_cost
                            + p.rok_hedge_gain * np.maximum(p.rok_hedge_threshold - self.assurance, 0.0)
                            + p.rok_strike_response * need)
        u[ROK_REQUEST] = -p.rok_request_cost + p.rok_request_gain * (1.0 - self.assurance) * need
        u[ROK_OUTREACH] = (-p.rok_outreach_cost
                              + p.rok_outreach_talks_gain * (m.dprk.choice == TALKS)
                              - p.rok_outreach_tension_loss * m.tension)
        return u

    def step(self) -> None:
        m = self.model
        if m.engine == "numba":  # the same rules compiled (sim.kernels.rok_week), same draws
            r = m.base_replications
            kernels.rok_utilities(m.param_table, r, self._z, self.assurance, m.dprk.choice, m.tension)
            kernels.choose(r, self.exponentiate(), m.draw(self._rng, 3), m.alive, self.choice, m.scratch)
            np.copyto(self.outreach_last, np.equal(self.choice, ROK_OUTREACH, out=self._outreach))
            return
        self.choose(self.utilities(DPRK_SEVERITY[m.dprk.choice]), m.params.ally_precision)
        self.choice[~m.alive] = ROK_HOLD
        self.outreach_last = (self.choice == ROK_OUTREACH).astype(float)


class Japan(EnsembleAgent):
    """Japan: missile-defence alerts, protests and trilateral drills; assurance like the ROK's."""

    actions = JAPAN_ACTIONS

    def __init__(self, model, seed_sequence, assurance: float) -> None:
        super().__init__(model, seed_sequence)
        self.assurance = np.full(self.n, float(assurance))

    def utilities(self, need: np.ndarray) -> np.ndarray:
        """Utility of hold, protest, missile alert and trilateral drill, shape (4, R).

        ``U_protest = -c + g N``; ``U_alert = -c + g [long-range launch]`` (J-Alert after IRBM/ICBM
        launches that threaten or overfly Japan); ``U_trilateral = -c + g N + g_A (1 - A)``
        (trilateral drills with the US and ROK, EFE, 31 Jan 2023; sought more when assurance is low).
        """
        m = self.model
        p = m.params
        u = np.zeros((4, self.n))
        u[JP_PROTEST] = -p.japan_protest_cost + p.japan_protest_gain * need
        u[JP_ALERT] = -p.japan_alert_cost + p.japan_alert_gain * (m.dprk.choice == LRBM)
        u[JP_TRILATERAL] = (-p.japan_trilateral_cost + p.japan_trilateral_gain * need
                               + p.japan_trilateral_assurance_gain * (1.0 - self.assurance))
        return u

    def step(self) -> None:
        m = self.model
        if m.engine == "numba":  # the same rules compiled (sim.kernels.japan_week), same draws
            r = m.base_replications
            kernels.japan_utilities(m.param_table, r, self._z, self.assurance, m.dprk.choice)
            kernels.choose(r, self.exponentiate(), m.draw(self._rng, 4), m.alive, self.choice, m.scratch)
            return
        self.choose(self.utilities(DPRK_SEVERITY[m.dprk.choice]), m.params.ally_precision)
        self.choice[~m.alive] = JP_HOLD
