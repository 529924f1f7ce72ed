"""The deterrence-signalling model: one Mesa model that runs R replications at once.

Each week (a Mesa step on a real calendar date) the actors move in a fixed order:
allied calendar events fire (Mesa events at half-weeks, before the step) -> DPRK chooses -> US
responds -> ROK and Japan respond -> the DPRK updates its belief from the US signals, the allies
their assurance -> pressure, tension, unintended clashes and the ladder advance -> the recorder
stores ensemble statistics. See ``docs/model.md`` for the full ODD description.
"""

from __future__ import annotations

import datetime as dt

import mesa
import numpy as np
from mesa.time import Schedule

from . import rules
from .agents import (
    DPRK,
    DPRK_RUNG,
    DPRK_SEVERITY,
    JP_TRILATERAL,
    LRBM,
    MAJOR_SEVERITY,
    NUCLEAR,
    ROK,
    ROK_OUTREACH,
    ROK_STRIKE,
    US,
    US_STATEMENT,
    US_THREAT,
    Japan,
)
from .calendar import event_start_weeks, week_of, week_years
from .params import CalendarEvent, DatedEvent, Era, Posture, RunConfig
from .recording import Recorder, Results

# Offset of calendar events before the step of their week: week k's step runs at Mesa time k + 1,
# its calendar events at k + 0.5.
EVENT_OFFSET = 0.5
# Child streams of the root SeedSequence, in this fixed order (never reorder: it would change runs).
STREAMS = ("model", "dprk", "us", "rok", "japan", "world")


class CalendarHandler:
    """Mesa event callbacks for one allied event (an exercise or a consultation)."""

    def __init__(self, model: DeterrenceModel, event: CalendarEvent | DatedEvent, kind: str) -> None:
        self.model = model
        self.weeks = event.weeks
        self.kind = kind
        self.intensity = event.intensity * model.scenario_cfg.exercise_scale if kind == "exercise" else 0.0

    def begin(self) -> None:
        m = self.model
        if self.kind == "exercise":
            m.running_exercises.append(self)
            m.exercise_intensity = sum(h.intensity for h in m.running_exercises)
            m.schedule_event(self.end, after=self.weeks)
        else:
            m.consultation_now = True

    def end(self) -> None:
        # Recomputed from the running exercises (no += / -= drift when exercises overlap).
        m = self.model
        m.running_exercises.remove(self)
        m.exercise_intensity = sum(h.intensity for h in m.running_exercises)


class EraHandler:
    """Mesa event callback that switches the DPRK's exogenous drivers when an era begins."""

    def __init__(self, model: DeterrenceModel, era: Era) -> None:
        self.model = model
        self.era = era

    def begin(self) -> None:
        self.model.weapons_drive = self.era.weapons_drive
        self.model.diplomacy = self.era.diplomacy


class DeterrenceModel(mesa.Model):
    """Extended-deterrence signalling among the DPRK, US, ROK and Japan, R replications at once.

    Args:
        config: the full run configuration (:class:`sim.params.RunConfig`).

    Use :meth:`run` to simulate the scenario's horizon and get :class:`sim.recording.Results`.
    """

    def __init__(self, config: RunConfig) -> None:
        root = np.random.SeedSequence(config.seed)
        seqs = dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))
        super().__init__(rng=np.random.default_rng(seqs["model"]))
        self.config = config
        self.params = config.params
        self.policy = config.policy
        self.scenario_cfg = config.scenario
        self.credibility = config.credibility
        self.replications = n = config.replications
        self.n_weeks = config.scenario.weeks
        self.policy_name = config.policy.name.value
        self.credibility_rule = config.params.credibility_rule.value
        self.surge_allowed = config.policy.name != Posture.none
        self._world_rng = np.random.default_rng(seqs["world"])

        # World state, one entry per replication.
        self.tension = np.full(n, config.scenario.initial_tension)
        self.pressure = np.zeros(n)
        self.on_station = np.zeros(n, dtype=bool)
        self.presence_weeks = np.zeros(n)
        self.alive = np.ones(n, dtype=bool)
        self.active = self.alive.copy()
        self.max_rung = np.zeros(n, dtype=np.int8)
        self.first_clash_week = np.full(n, -1, dtype=np.int64)
        self.war_week = np.full(n, -1, dtype=np.int64)
        self.clash = np.zeros(n, dtype=bool)
        self.exercise_intensity = 0.0
        self.running_exercises: list[CalendarHandler] = []
        self.consultation_now = False
        self.weapons_drive = config.scenario.weapons_drive
        self.diplomacy = 0.0

        prior = config.scenario.dprk_prior
        self.us = US(self, seqs["us"], config.credibility)
        self.dprk = DPRK(self, seqs["dprk"], config.credibility if prior is None else prior,
                         config.scenario.dprk_capability)
        self.rok = ROK(self, seqs["rok"], config.scenario.rok_assurance)
        self.japan = Japan(self, seqs["japan"], config.scenario.japan_assurance)

        self._handlers: list[CalendarHandler] = []
        self._schedule_calendar()
        self._schedule_posture()
        self._llr = self._log_likelihood_ratios()
        p = self.params
        self._dprk_tension = np.array([0.0, p.tension_talks, p.tension_rhetoric, p.tension_srbm,
                                       p.tension_lrbm, p.tension_nuclear, p.tension_border])
        self.recorder = Recorder(self)

    # ------------------------------------------------------------------ scheduling
    def _schedule_calendar(self) -> None:
        """Combined exercises and consultations as Mesa events (DESIGN.md mechanism 7)."""
        sc = self.scenario_cfg
        for events, kind in ((sc.exercises, "exercise"), (sc.consultations, "consultation")):
            for event in events:
                handler = CalendarHandler(self, event, kind)
                self._handlers.append(handler)  # strong reference: Mesa keeps weak ones
                for k in event_start_weeks(sc.start, self.n_weeks, event):
                    self.schedule_event(handler.begin, at=k + EVENT_OFFSET)
        for dated in sc.dated_events:
            k = week_of(sc.start, dt.date.fromisoformat(dated.date))
            if 0 <= k < self.n_weeks:
                handler = CalendarHandler(self, dated, dated.kind)
                self._handlers.append(handler)
                self.schedule_event(handler.begin, at=k + EVENT_OFFSET)
        for era in sc.eras:
            # An era that began before the start is in force from week 0; eras switch just before
            # the week's other calendar events.
            k = max(0, week_of(sc.start, dt.date.fromisoformat(era.start_date)))
            if k < self.n_weeks:
                handler = EraHandler(self, era)
                self._handlers.append(handler)
                self.schedule_event(handler.begin, at=k + EVENT_OFFSET - 0.25)

    def _schedule_posture(self) -> None:
        """The posture's scheduled arrivals (see :func:`sim.calendar.posture_schedule`)."""
        pol = self.policy
        if pol.name == Posture.rotational and pol.rotation_offset_weeks < self.n_weeks:
            self.schedule_recurring(
                self.us.rotation_arrival,
                Schedule(interval=pol.rotation_interval_weeks,
                         start=pol.rotation_offset_weeks + EVENT_OFFSET, end=self.n_weeks),
            )
        elif pol.name == Posture.permanent:
            self.schedule_event(self.us.permanent_arrival, at=EVENT_OFFSET)

    def _log_likelihood_ratios(self) -> dict[str, float]:
        p = self.params
        return {
            s: rules.log_likelihood_ratio(getattr(p, f"lik_{s}_res"), getattr(p, f"lik_{s}_irr"))
            for s in ("deploy", "permanent", "presence", "consult", "threat", "statement", "inaction")
        }

    # ------------------------------------------------------------------ the week
    def step(self) -> None:
        """One week; see the module docstring for the order of moves."""
        week = self.steps - 1
        us, dprk, rok, japan = self.us, self.dprk, self.rok, self.japan
        self.active = self.alive.copy()  # replications not yet ended by war at the start of the week
        self.on_station = us.scheduled_present | (us.surge_left > 0)
        dprk.step()
        us.step()
        # A surge ordered this week is on station for the rest of it.
        self.on_station = us.scheduled_present | (us.surge_left > 0)
        rok.step()
        japan.step()
        self._update_beliefs_and_assurance()
        self._advance_escalation(week)
        self.recorder.record(week)
        us.end_week()
        self.consultation_now = False

    def _update_beliefs_and_assurance(self) -> None:
        """Signals of the week -> DPRK belief (Bayes) and ROK/Japan assurance (two audiences)."""
        p, llr = self.params, self._llr
        us, dprk = self.us, self.dprk
        arrival = us.scheduled_arrival | us.surge_arrival
        continuing = self.on_station & ~arrival
        h = rules.habituation(self.presence_weeks, p.habituation_weeks)
        threat = us.choice == US_THREAT
        statement = us.choice == US_STATEMENT
        major = DPRK_SEVERITY[dprk.choice] >= MAJOR_SEVERITY
        inaction = major & ~arrival & ~threat

        evidence = (
            np.where(us.setup_signal, llr["permanent"], arrival * llr["deploy"])
            + continuing * h * llr["presence"]
            + self.consultation_now * llr["consult"]
            + threat * llr["threat"]
            + statement * llr["statement"]
            + inaction * llr["inaction"]
        )
        dprk.update_belief(evidence, self.alive)
        self.presence_weeks = np.where(self.on_station, self.presence_weeks + 1, 0.0)

        gain = (arrival * p.assure_deploy + continuing * p.assure_presence
                + self.consultation_now * p.assure_consult + threat * p.assure_threat
                + statement * p.assure_statement)
        tested = (dprk.choice == LRBM) | (dprk.choice == NUCLEAR)
        shock = tested * p.decoupling_shock
        anchor = p.assure_anchor - p.decoupling * dprk.capability
        # Ended (war) replications keep their last values.
        alive = self.alive
        self.rok.assurance = np.where(alive, rules.assurance_step(
            self.rok.assurance, gain, shock, anchor, p.assure_reversion), self.rok.assurance)
        jp_gain = gain + (self.japan.choice == JP_TRILATERAL) * p.assure_trilateral
        self.japan.assurance = np.where(alive, rules.assurance_step(
            self.japan.assurance, jp_gain, shock, anchor, p.assure_reversion), self.japan.assurance)

    def _advance_escalation(self, week: int) -> None:
        """Allied pressure, tension, unintended clashes, war and the escalation ladder."""
        p = self.params
        us, dprk, rok, japan = self.us, self.dprk, self.rok, self.japan
        arrival = us.scheduled_arrival | us.surge_arrival
        threat = us.choice == US_THREAT
        strike = rok.choice == ROK_STRIKE
        trilateral = japan.choice == JP_TRILATERAL
        self.pressure = (
            p.pressure_memory * self.pressure
            + p.pressure_exercise * self.exercise_intensity
            + p.pressure_asset * self.on_station
            + p.pressure_surge * us.surge_arrival
            + p.pressure_threat * threat
            + p.pressure_strike_drill * strike
            + p.pressure_trilateral * trilateral
        )
        impulse = (
            self._dprk_tension[dprk.choice]
            + p.tension_per_missile * dprk.missiles
            + p.tension_exercise * self.exercise_intensity
            + p.tension_deploy * arrival
            + p.tension_threat * threat
            + p.tension_strike_drill * strike
            + p.tension_outreach * (rok.choice == ROK_OUTREACH)
            + p.tension_trilateral * trilateral
        )
        tension = rules.tension_step(self.tension, impulse, p.tension_decay)
        draws = self._world_rng.random((2, self.replications))
        unintended = draws[0] < rules.clash_probability(tension, p.clash_intercept, p.clash_slope)
        rung = DPRK_RUNG[dprk.choice]
        self.clash = ((rung >= 4) | unintended) & self.alive
        tension = tension + self.clash * p.tension_clash
        war = self.clash & (draws[1] < rules.clash_probability(tension, p.war_intercept, p.war_slope))
        self.tension = np.where(self.alive, tension, self.tension)
        rung = np.maximum(rung, np.where(self.clash, 4, 0))
        rung = np.where(war, 5, rung).astype(np.int8)
        self.max_rung = np.maximum(self.max_rung, np.where(self.alive, rung, 0))
        self.first_clash_week = np.where(self.clash & (self.first_clash_week < 0), week,
                                         self.first_clash_week)
        self.war_week = np.where(war, week, self.war_week)
        self.alive &= ~war

    # ------------------------------------------------------------------ running
    def run(self, progress: bool = False) -> Results:
        """Simulate every week of the scenario and return the results."""
        weeks = range(self.n_weeks)
        if progress:
            from tqdm.auto import tqdm

            weeks = tqdm(weeks, desc=f"{self.policy_name} c={self.credibility:g}", unit="week",
                         leave=False)
        for _ in weeks:
            self.step()
        return self.recorder.results()

    @property
    def week_years(self) -> np.ndarray:
        return week_years(self.scenario_cfg.start, self.n_weeks)


def run(config: RunConfig, progress: bool = False) -> Results:
    """Build a model from ``config`` and run it: the library's one-call entry point."""
    return DeterrenceModel(config).run(progress=progress)
