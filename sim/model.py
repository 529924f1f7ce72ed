"""The deterrence-signalling model: one Mesa model that runs R replications at once.

Each week (a Mesa step on a real calendar date) the actors move in a fixed order:
eras and posture periods switch, then allied calendar events fire (Mesa events at half-weeks, before
the step) -> DPRK chooses -> US
responds -> ROK and Japan respond -> the DPRK updates its belief from the US signals, the allies
their assurance -> pressure, tension, unintended clashes and the ladder advance -> the recorder
stores ensemble statistics. See ``docs/model.md`` for the full ODD description.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import mesa
import numpy as np
from mesa.time import Schedule
from scipy.special import logit

from . import kernels, rules
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
from .calendar import event_start_weeks, first_week_from, week_of, week_years
from .params import CalendarEvent, ConfigError, DatedEvent, Era, ModelParams, Posture, RunConfig
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
        self.model.weapons_drive = self.model.era_drive(self.era)
        self.model.diplomacy = self.era.diplomacy
        self.model.nuclear_moratorium = self.era.nuclear_moratorium


class PostureHandler:
    """Mesa event callback that puts a posture in force from its first week to ``end_week``."""

    def __init__(self, model: DeterrenceModel, posture: Posture, end_week: int) -> None:
        self.model = model
        self.posture = posture
        self.end_week = end_week

    def begin(self) -> None:
        m, pol = self.model, self.model.policy
        m.policy_name = self.posture.value
        m.surge_allowed = self.posture != Posture.none
        start = m.time + 0.25  # this week's calendar slot
        if self.posture == Posture.rotational:
            if start + pol.rotation_offset_weeks < self.end_week:
                m.schedule_recurring(m.us.rotation_arrival,
                                     Schedule(interval=pol.rotation_interval_weeks,
                                              start=start + pol.rotation_offset_weeks,
                                              end=self.end_week))
        elif self.posture == Posture.permanent:
            m.schedule_event(m.us.permanent_arrival, at=start)
            if self.end_week < m.n_weeks:
                m.schedule_event(m.us.permanent_departure, at=self.end_week + EVENT_OFFSET - 0.1)


class DeterrenceModel(mesa.Model):
    """Extended-deterrence signalling among the DPRK, US, ROK and Japan, R replications at once.

    Args:
        config: the full run configuration (:class:`sim.params.RunConfig`).
        batch: optional parameter points to run side by side, ``{name: values}`` with one value per
            point (all of the same length S). Names are ``ModelParams`` fields (see
            :data:`NOT_BATCHABLE` for the exceptions) or ``era:<era name>`` for an era's weapons
            drive. The model then runs S blocks of ``config.replications`` replications; every
            block sees the same random numbers (common random numbers), so block j reproduces
            exactly the run of point j alone. Calibration evaluates a whole population this way.
        weekly: record the weekly ensemble statistics (``Results.timeseries``); calibration, which
            needs only the per-replication counts, turns them off.
        engine: ``"numba"`` (default) runs each phase of the week as a compiled kernel
            (:mod:`sim.kernels`); ``"numpy"`` runs the reference engine, the agents' vectorised
            ``utilities`` and :mod:`sim.rules`. Both draw the same random numbers and give the same
            results (``tests/test_engine.py``); the compiled one is several times faster.

    Use :meth:`run` to simulate the scenario's horizon and get :class:`sim.recording.Results`.
    """

    def __init__(self, config: RunConfig, batch: dict[str, np.ndarray] | None = None,
                 weekly: bool = True, engine: str = "numba") -> None:
        if engine not in ENGINES:
            raise ConfigError(f"engine '{engine}' is unknown: use one of {', '.join(ENGINES)}")
        root = np.random.SeedSequence(config.seed)
        seqs = dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))
        super().__init__(rng=np.random.default_rng(seqs["model"]))
        self.config = config
        self.base_replications = config.replications
        self.engine = engine
        self.blocks, self.params, self._era_drives, by_block = _unpack_batch(config, batch)
        self.param_table = kernels.param_table(config.params, self.blocks, by_block)
        # work space of the compiled kernels, reused every week (no per-step allocation)
        self.scratch = np.empty((3, config.replications * self.blocks))
        self._draws = np.empty((7, config.replications))
        # rules.habituation at 0, 1, ..., n_weeks weeks on station, per block (the same numpy exp)
        weeks_on = np.arange(config.scenario.weeks + 1, dtype=float)
        self._habituation = rules.habituation(weeks_on[None, :],
                                              self.param_table["habituation_weeks"][:, None])
        self.policy = config.policy
        self.scenario_cfg = config.scenario
        self.credibility = config.credibility
        self.replications = n = config.replications * self.blocks
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
        self.nuclear_moratorium = False

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
        self._llr_vector = np.array([self._llr[s] for s in ("deploy", "permanent", "presence", "consult",
                                                            "threat", "statement", "inaction")])
        self._cc_logit_credibility = float(logit(float(np.clip(config.credibility, 1e-4, 1 - 1e-4))))
        p = self.params
        self._dprk_tension = np.array([0.0, p.tension_talks, p.tension_rhetoric, p.tension_srbm,
                                       p.tension_lrbm, p.tension_nuclear, p.tension_border])
        self.recorder = Recorder(self, weekly=weekly)

    # ------------------------------------------------------------------ scheduling
    def _schedule_calendar(self) -> None:
        """Combined exercises and consultations as Mesa events (docs/model.md, Section 3.2)."""
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
        # In date order, so that of eras that began before the start the latest is in force at
        # week 0 (same-time Mesa events run in the order they were scheduled). An era takes effect
        # in the first week that begins on or after its date, just before that week's other
        # calendar events.
        for era in sorted(sc.eras, key=lambda e: dt.date.fromisoformat(e.start_date)):
            k = max(0, first_week_from(sc.start, dt.date.fromisoformat(era.start_date)))
            if k < self.n_weeks:
                handler = EraHandler(self, era)
                self._handlers.append(handler)
                self.schedule_event(handler.begin, at=k + EVENT_OFFSET - 0.25)

    def _schedule_posture(self) -> None:
        """The posture's scheduled arrivals (see :func:`sim.calendar.posture_schedule`).

        With the scenario's ``posture_periods`` (a replay), each period schedules its own posture
        from its first week until the next period begins.
        """
        sc = self.scenario_cfg
        periods = [(0, self.policy.name)]
        if sc.posture_periods:
            ordered = sorted(sc.posture_periods, key=lambda p: dt.date.fromisoformat(p.start_date))
            starts = [max(0, first_week_from(sc.start, dt.date.fromisoformat(p.start_date)))
                      for p in ordered]
            # by start week; of periods starting in the same week the later-dated one is kept
            # (in date order, so that of periods before the start the latest-dated is in force)
            by_week = dict(zip(starts, (p.posture for p in ordered), strict=True))
            periods = sorted(by_week.items(), key=lambda item: item[0])
        for i, (k0, posture) in enumerate(periods):
            k1 = periods[i + 1][0] if i + 1 < len(periods) else self.n_weeks
            if k0 >= min(k1, self.n_weeks):
                continue
            handler = PostureHandler(self, posture, k1)
            self._handlers.append(handler)
            self.schedule_event(handler.begin, at=k0 + EVENT_OFFSET - 0.25)

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
        np.copyto(self.active, self.alive)  # replications not yet ended by war at the start of the week
        self._update_on_station()
        dprk.step()
        us.step()
        # A surge ordered this week is on station for the rest of it.
        self._update_on_station()
        rok.step()
        japan.step()
        self._update_beliefs_and_assurance()
        self._advance_escalation(week)
        self.recorder.record(week)
        us.end_week()
        self.consultation_now = False

    def _update_on_station(self) -> None:
        """``on_station = scheduled_present | (surge_left > 0)``, in place."""
        np.greater(self.us.surge_left, 0, out=self.on_station)
        if self.us.scheduled_present:
            self.on_station[:] = True

    def _update_beliefs_and_assurance(self) -> None:
        """Signals of the week -> DPRK belief (Bayes) and ROK/Japan assurance (two audiences)."""
        p, llr = self.params, self._llr
        us, dprk = self.us, self.dprk
        if self.engine == "numba":  # the same rules compiled (sim.kernels.beliefs_week)
            kernels.beliefs_week(
                self.param_table, self.base_replications, self._llr_vector, self._habituation,
                dprk.log_odds, dprk.belief,
                dprk.prior_log_odds, self.credibility_rule == "current_calculus",
                self._cc_logit_credibility, float(self.exercise_intensity), dprk.capability,
                self.presence_weeks, self.on_station, bool(us.scheduled_arrival), bool(us.setup_signal),
                us.surge_arrival, us.choice, dprk.choice, self.japan.choice, bool(self.consultation_now),
                self.rok.assurance, self.japan.assurance, self.alive, rules.LOGIT_BOUND)
            return
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
        if self.engine == "numba":  # the same rules compiled (sim.kernels.escalation_week), same draws
            r = self.base_replications
            u_clash = self.draw(self._world_rng, 5)
            u_war = self.draw(self._world_rng, 6)
            kernels.escalation_week(
                self.param_table, r, week, self.pressure, self.tension, float(self.exercise_intensity),
                self.on_station, bool(us.scheduled_arrival), us.surge_arrival, us.choice, rok.choice,
                japan.choice, dprk.choice, dprk.missiles, u_clash, u_war, self.clash, self.alive,
                self.max_rung, self.first_clash_week, self.war_week, self.scratch)
            return
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
        draws = np.stack([self.uniforms(self._world_rng), self.uniforms(self._world_rng)])
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

    # ------------------------------------------------------------------ randomness
    def uniforms(self, rng: np.random.Generator) -> np.ndarray:
        """One uniform per replication from ``rng``; in a batch, the same ones for every block."""
        return self.tile(rng.random(self.base_replications))

    def draw(self, rng: np.random.Generator, slot: int) -> np.ndarray:
        """One uniform per base replication from ``rng``, into the preallocated row ``slot``.

        The compiled engine's form of :meth:`uniforms` (the same numbers, no per-week allocation;
        the kernels read entry ``i mod base_replications``). Slots: 0 DPRK choice, 1 DPRK salvo,
        2 US, 3 ROK, 4 Japan, 5 clash, 6 war.
        """
        return rng.random(out=self._draws[slot])

    def tile(self, values: np.ndarray) -> np.ndarray:
        """Repeat per-base-replication values for every block of a batch (identity without one)."""
        return values if self.blocks == 1 else np.tile(values, self.blocks)

    def drive_by_block(self) -> np.ndarray:
        """The weapons drive in force, one value per batch block (the compiled engine's form)."""
        drive = np.asarray(self.weapons_drive, dtype=float)
        if drive.ndim == 0:
            return np.full(self.blocks, float(drive))
        return np.ascontiguousarray(drive[:: self.base_replications])

    def era_drive(self, era: Era):
        """The era's weapons drive: its configured value, or the batch's per-replication values."""
        return self._era_drives.get(era.name, era.weapons_drive)

    # ------------------------------------------------------------------ running
    def run(self, progress: bool = False) -> Results:
        """Simulate every week of the scenario and return the results.

        ``progress`` shows a bar over the weeks on stderr (:func:`sim.progress.run_with_bar`): it
        starts after the first week, which loads the compiled kernels or, on the first run,
        compiles them (announced by ``compiling kernels (first run only)``), so that its rate and
        ETA are the simulation's.
        """
        if progress:
            from .progress import run_with_bar

            run_with_bar(self)
        else:
            for _ in range(self.n_weeks):
                self.step()
        return self.recorder.results()

    @property
    def week_years(self) -> np.ndarray:
        return week_years(self.scenario_cfg.start, self.n_weeks)


ENGINES = ("numba", "numpy")

# Parameters that a batch cannot vary: scalars by construction (precisions, the signal likelihood
# table, the DPRK action tension table, the negative binomial size of salvos, the rule switch).
NOT_BATCHABLE = frozenset({
    "dprk_precision", "us_precision", "ally_precision", "credibility_rule", "salvo_dispersion",
    "tension_talks", "tension_rhetoric", "tension_srbm", "tension_lrbm", "tension_nuclear",
    "tension_border",
} | {f.name for f in dataclasses.fields(ModelParams) if f.name.startswith("lik_")})


class ParamView:
    """ModelParams with some fields replaced by per-replication arrays (a batch)."""

    def __init__(self, params: ModelParams, overrides: dict[str, np.ndarray]) -> None:
        self._params = params
        self._overrides = overrides

    def __getattr__(self, name: str):
        overrides = self.__dict__["_overrides"]
        if name in overrides:
            return overrides[name]
        return getattr(self.__dict__["_params"], name)


def _unpack_batch(config: RunConfig, batch: dict | None):
    if not batch:
        return 1, config.params, {}, {}
    sizes = {len(np.atleast_1d(v)) for v in batch.values()}
    if len(sizes) != 1:
        raise ConfigError("batch: every parameter needs one value per point (equal lengths)")
    blocks = sizes.pop()
    r = config.replications
    fields = {f.name for f in dataclasses.fields(ModelParams)}
    eras = {e.name for e in config.scenario.eras}
    params, drives, by_block = {}, {}, {}
    for name, values in batch.items():
        values = np.asarray(values, dtype=float)
        if name in fields and name not in NOT_BATCHABLE:
            for v in (values.min(), values.max()):  # the schema's range checks, at the extremes
                dataclasses.replace(config.params, **{name: float(v)})
        elif name.startswith("era:") and (not np.all(np.isfinite(values)) or values.min() < 0):
            raise ConfigError(f"batch: {name} values must be finite and >= 0")
        per_rep = np.repeat(values, r)
        if name.startswith("era:") and name[4:] in eras:
            drives[name[4:]] = per_rep
        elif name in fields and name not in NOT_BATCHABLE:
            params[name] = per_rep
            by_block[name] = values
        else:
            raise ConfigError(f"batch: '{name}' cannot be varied in a batch: use a ModelParams field "
                              "other than precisions, likelihoods and the DPRK tension table, or "
                              "era:<era name>")
    return blocks, ParamView(config.params, params), drives, by_block


def run(config: RunConfig, progress: bool = False) -> Results:
    """Build a model from ``config`` and run it: the library's one-call entry point."""
    return DeterrenceModel(config).run(progress=progress)
