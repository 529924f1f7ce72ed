"""The four actors as Mesa agents. Each holds its state as numpy arrays of length R (replications).

An agent's ``step`` hands its state and the model's to the compiled kernels of :mod:`sim.rules`,
which evaluate its utilities (each written once there, with its source) and draw one action per
replication by the quantal-response rule from the agent's own random stream. No agent loops over
replications in Python; R = 1 is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from scipy.special import expit, logit

from . import rules
from .rules import (  # noqa: F401 - the action codes and tables, re-exported for users of sim.agents
    BORDER,
    DPRK_RUNG,
    DPRK_SEVERITY,
    JP_ALERT,
    JP_HOLD,
    JP_PROTEST,
    JP_TRILATERAL,
    LRBM,
    MAJOR_SEVERITY,
    NUCLEAR,
    RESTRAINT,
    RHETORIC,
    ROK_HOLD,
    ROK_OUTREACH,
    ROK_REQUEST,
    ROK_STRIKE,
    SRBM,
    TALKS,
    US_HOLD,
    US_STATEMENT,
    US_SURGE,
    US_THREAT,
)

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

# Escalation ladder (Kahn 1965 in spirit, six rungs; docs/model.md, Section 7.15). The rung each DPRK
# action reaches is rules.DPRK_RUNG.
RUNGS = ("calm", "rhetoric", "missile test", "nuclear test", "kinetic clash", "war")


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
        # action codes 0-6, a byte each: the kernels and the recorder read them every week
        self.choice = np.zeros(self.n, dtype=np.int8)
        # The kernels' buffer of scaled utilities (exponentiated in place by rules.quantal_draw),
        # reused every week: the model's, shared by the agents, which move one after another.
        self._z = model.utilities[:len(self.actions)]

    @property
    def rng(self) -> np.random.Generator:  # noqa: D102 - overrides Mesa's model-wide generator
        return self._rng


class DPRK(EnsembleAgent):
    """North Korea: chooses a provocation or reassurance action each week.

    State: ``log_odds`` and ``belief`` (probability that the US is resolute), ``capability``
    (long-range capability index K in [0, 1]), this week's ``launch_days`` and ``missiles``. Its prior is the
    block's ``dprk_prior`` (the common prior: ``credibility``).
    """

    actions = DPRK_ACTIONS

    def __init__(self, model, seed_sequence, prior: np.ndarray, capability: float) -> None:
        super().__init__(model, seed_sequence)
        choice_seq, salvo_seq, days_seq = seed_sequence.spawn(3)
        self._rng = np.random.default_rng(choice_seq)
        self._salvo_rng = np.random.default_rng(salvo_seq)
        self._days_rng = np.random.default_rng(days_seq)
        bound = rules.LOGIT_BOUND
        self.log_odds = np.clip(logit(np.asarray(prior, dtype=float)), -bound, bound)
        self.belief = expit(self.log_odds)
        self.capability = np.full(self.n, float(capability))
        if model.current_calculus:  # the belief is the current calculus from the first week on
            rules.current_calculus_belief(model.param_table, model.base_replications, model.on_station,
                                          0.0, self.capability, self.log_odds, self.belief, bound)
        self.missiles = np.zeros(self.n, dtype=np.int64)
        self.launch_days = np.zeros(self.n, dtype=np.int64)  # this week's (0 when it does not launch)

    def step(self) -> None:
        """Choose this week's action; fire missiles on a launch day; learn from long-range tests."""
        m = self.model
        r = m.base_replications
        rules.dprk_week_utilities(m.param_table, r, self._z, self.belief, m.on_station, m.pressure,
                                  m.tension, m.rok.outreach_last, m.drive_by_block(), float(m.diplomacy),
                                  bool(m.nuclear_moratorium), float(m.exercise_intensity))
        rules.dprk_act(m.param_table, r, self._z, m.draw(self._rng, 0), m.alive, self.choice,
                       self.launch_days, self.missiles, self.capability, m.tension,
                       m.draw(self._days_rng, 10), m.draw(self._salvo_rng, 1), m.scratch,
                       rules.MAX_QUANTILE_TERMS)


class US(EnsembleAgent):
    """The United States: a type (resolute or not) per replication, discretionary responses, and the
    posture's scheduled arrivals.

    State: ``resolute`` (drawn with probability ``credibility``, and drawn afresh with probability
    ``us_type_turnover`` when a new administration takes office), ``surge_left`` (weeks a surged asset
    stays), ``threat_left`` (weeks a threat still binds), ``cost`` (the posture's cost account),
    ``scheduled_present`` / ``scheduled_arrival`` (per replication: an irresolute US may defer a
    rotation), and this week's ``evidence`` and ``schedule_evidence`` (what its choices tell the DPRK).
    The posture's scheduled arrivals are Mesa events that call :meth:`rotation_arrival`,
    :meth:`rotation_departure`, :meth:`permanent_arrival` and :meth:`permanent_departure`.
    """

    actions = US_ACTIONS

    def __init__(self, model, seed_sequence, credibility: np.ndarray) -> None:
        super().__init__(model, seed_sequence)
        type_seq, choice_seq, schedule_seq = seed_sequence.spawn(3)
        self._type_rng = np.random.default_rng(type_seq)
        self._schedule_rng = np.random.default_rng(schedule_seq)
        # Commitment credibility = probability that the US is resolute (Harsanyi 1967-68; Fearon 1997);
        # ``credibility`` holds one value per replication (its block's).
        self.resolute = model.uniforms(self._type_rng) < np.asarray(credibility, dtype=float)
        self._rng = np.random.default_rng(choice_seq)
        n = self.n
        self.surge_left = np.zeros(n, dtype=np.int64)
        self.surge_arrival = np.zeros(n, dtype=bool)
        self.threat_left = np.zeros(n, dtype=np.int64)
        self.evidence = np.zeros(n)
        self.schedule_evidence = np.zeros(n)
        self.cost = np.zeros(n)
        self.scheduled_present = np.zeros(n, dtype=bool)
        self.scheduled_arrival = np.zeros(n, dtype=bool)
        self.present_until = -np.inf
        self.setup_signal = False
        # per block: each type's choice weights and what each response tells the DPRK in each of the 56
        # states (rules.us_block_tables), for the surge permission they were computed under
        self._weights = np.zeros((model.blocks, 2, 56, 4))
        self._evidence_table = np.zeros((model.blocks, 56, 4))
        self._tables_for: bool | None = None

    # --- posture events (scheduled by the model with Mesa's event scheduler) ---
    def rotation_arrival(self) -> None:
        """A rotational deployment is due; it leaves after ``rotation_duration_weeks``.

        A US of each type defers it with probability ``us_skip_resolute`` / ``us_skip_irresolute``
        (one uniform per replication from the schedule stream at every due date, whatever the
        probabilities: common random numbers). The DPRK knows the schedule, so an arrival made and one
        deferred are both observations; their log-likelihood ratios go into ``schedule_evidence``
        (exactly 0 when both types keep the schedule alike). Cf. the 2018 suspension of scheduled
        allied exercises after the Singapore summit (a scheduled signal withheld for a political end).
        """
        m = self.model
        arrived = np.zeros(self.n, dtype=bool)
        rules.rotation_due(m.param_table, m.base_replications, m.draw(self._schedule_rng, 7), self.resolute,
                           m.alive, arrived, self.schedule_evidence, rules.LOGIT_BOUND)
        self.scheduled_arrival = arrived
        self.scheduled_present = arrived
        stay = m.policy.rotation_duration_weeks
        self.present_until = m.time + stay
        self.cost += arrived * m.policy.transit_cost
        m.schedule_event(self.rotation_departure, after=stay)

    def rotation_departure(self) -> None:
        """The rotational asset leaves: a gap opens until the next arrival.

        A departure only ends the presence it was scheduled for: an asset that arrived since (a
        new posture period) stays.
        """
        if self.model.time >= self.present_until - 1e-9:
            self.scheduled_present = np.zeros(self.n, dtype=bool)

    def permanent_arrival(self) -> None:
        """Permanent basing begins: a one-time sunk cost, then continuous presence. Basing is policy,
        the same whatever the type: it tells a consistent DPRK nothing about resolve."""
        m = self.model
        self.scheduled_arrival = m.alive.copy()
        self.scheduled_present = m.alive.copy()
        self.present_until = np.inf
        self.setup_signal = True
        self.cost += m.alive * (m.policy.permanent_setup_cost + m.policy.transit_cost)

    def permanent_departure(self) -> None:
        """A permanent posture's period ends (replays): the based asset leaves."""
        self.present_until = self.model.time
        self.scheduled_present = np.zeros(self.n, dtype=bool)

    def new_administration(self) -> None:
        """A new US administration takes office (:func:`sim.calendar.inauguration_weeks`): with
        probability ``us_type_turnover`` its resolve is drawn afresh with probability ``credibility``
        (reputations for resolve attach to leaders: Wolford 2007; Lupton 2020). Two uniforms per
        replication from the type stream, whatever the parameters. The DPRK's belief takes the matching
        step (:func:`sim.rules.turnover_log_odds`)."""
        m = self.model
        rules.new_administration(m.param_table, m.base_replications, m.draw(self._type_rng, 8),
                                 m.draw(self._type_rng, 9), self.resolute, m.dprk.log_odds, m.dprk.belief,
                                 m.alive, rules.LOGIT_BOUND)

    def step(self) -> None:
        """Respond to this week's DPRK action; a surge puts an asset on station for the rest of this
        week and ``surge_duration_weeks - 1`` more."""
        m = self.model
        pol = m.policy
        r = m.base_replications
        scheduled_cost = (pol.permanent_station_cost_per_week if m.policy_name == "permanent"
                          else pol.station_cost_per_week)
        # The ROK moves after the US within a week, so `m.rok.choice` is still last week's request.
        # `m.on_station` is the state the US chooses in: this week's surge joins it after this step.
        if self._tables_for != bool(m.surge_allowed):
            rules.us_block_tables(m.param_table, bool(m.surge_allowed), self._weights, self._evidence_table)
            self._tables_for = bool(m.surge_allowed)
        rules.us_week_weights(r, self._z, self.resolute, m.dprk.choice, m.rok.choice, m.on_station,
                              self.threat_left, self._weights)
        rules.us_act(m.param_table, r, self._z, m.draw(self._rng, 2), m.alive, self.choice, m.dprk.choice,
                     m.rok.choice, m.on_station, self.threat_left, self._evidence_table, self.evidence,
                     self.surge_arrival, self.surge_left, self.cost, int(pol.surge_duration_weeks),
                     float(pol.transit_cost), float(scheduled_cost), self.scheduled_present,
                     float(pol.station_cost_per_week), m.scratch)

    def end_week(self) -> None:
        """Count down surges and binding threats; clear one-week flags."""
        rules.week_end(self.surge_left, self.threat_left)
        if self.scheduled_arrival.any():
            self.scheduled_arrival = np.zeros(self.n, dtype=bool)
        if self.schedule_evidence.any():
            self.schedule_evidence = np.zeros(self.n)
        self.setup_signal = False


class ROK(EnsembleAgent):
    """South Korea: assurance in the US commitment, and hedging when it is low (Snyder 1984);
    utilities in :func:`sim.rules.rok_utilities`."""

    actions = ROK_ACTIONS

    def __init__(self, model, seed_sequence, assurance: float) -> None:
        super().__init__(model, seed_sequence)
        self.assurance = np.full(self.n, float(assurance))
        self.outreach_last = np.zeros(self.n)
        self._outreach = np.zeros(self.n, dtype=bool)

    def step(self) -> None:
        m = self.model
        r = m.base_replications
        rules.rok_week_utilities(m.param_table, r, self._z, self.assurance, m.dprk.choice, m.tension)
        rules.quantal_draw(r, self._z, m.draw(self._rng, 3), m.alive, self.choice, m.scratch)
        np.copyto(self.outreach_last, np.equal(self.choice, ROK_OUTREACH, out=self._outreach))


class Japan(EnsembleAgent):
    """Japan: missile-defence alerts, protests and trilateral drills; assurance like the ROK's;
    utilities in :func:`sim.rules.japan_utilities`."""

    actions = JAPAN_ACTIONS

    def __init__(self, model, seed_sequence, assurance: float) -> None:
        super().__init__(model, seed_sequence)
        self.assurance = np.full(self.n, float(assurance))

    def step(self) -> None:
        m = self.model
        r = m.base_replications
        rules.japan_week_utilities(m.param_table, r, self._z, self.assurance, m.dprk.choice)
        rules.quantal_draw(r, self._z, m.draw(self._rng, 4), m.alive, self.choice, m.scratch)
