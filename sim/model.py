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

from . import rules
from .agents import DPRK, ROK, US, Japan
from .calendar import event_start_weeks, first_week_from, inauguration_weeks, week_of, week_years
from .params import (
    CalendarEvent,
    ConfigError,
    CredibilityRule,
    DatedEvent,
    Era,
    ModelParams,
    Perception,
    Posture,
    RunConfig,
)
from .recording import Recorder, Results
from .uniforms import UniformStream

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
            point (all of the same length S). Names are numeric ``ModelParams`` fields,
            ``credibility`` (the true share of resolute US), ``dprk_prior`` (the DPRK's prior) or
            ``era:<era name>`` for an era's weapons drive. The model then runs S blocks of
            ``config.replications`` replications; every block sees the same random numbers (common
            random numbers), so block j reproduces exactly the run of point j alone. Calibration
            evaluates a whole population this way.
        weekly: record the weekly ensemble statistics (``Results.timeseries``); calibration, which
            needs only the per-replication counts, turns them off.
        detail: also keep, per replication and week, the launch days, US arrivals and major
            provocations (``Results.detail``; :mod:`sim.event_study` reads them).
        independent: the blocks of a batch draw their own random numbers instead of sharing them
            (common random numbers are the default): for simulation-based inference, where each
            parameter point must meet its own noise.

    Use :meth:`run` to simulate the scenario's horizon and get :class:`sim.recording.Results`.
    """

    def __init__(self, config: RunConfig, batch: dict[str, np.ndarray] | None = None,
                 weekly: bool = True, detail: bool = False, independent: bool = False) -> None:
        root = np.random.SeedSequence(config.seed)
        seqs = dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))
        super().__init__(rng=np.random.default_rng(seqs["model"]))
        self.config = config
        # Parameter uncertainty (params=posterior, sim.draws): one posterior draw per block of
        # replications, each block its own random numbers; the blocks are pooled into one ensemble
        # for every statistic and output (``stat_blocks`` 1).
        if batch and config.posterior.draws is not None:
            raise ConfigError("a batch of points cannot also draw from the posterior (params=posterior): "
                              "run each point alone")
        self.pooled = batch is None and config.posterior.draws is not None
        self.posterior_rows = None
        if self.pooled:
            from .draws import posterior_batch

            batch, self.posterior_rows = posterior_batch(config)
            config = config.replace(replications=config.replications // config.posterior.blocks,
                                    posterior={"draws": None})
            independent = True
        self.base_replications = r = config.replications
        self.blocks, self._era_drives, by_block = _unpack_batch(config, batch)
        prior = config.scenario.dprk_prior
        credibility = by_block.pop("credibility", np.full(self.blocks, config.credibility))
        dprk_prior = by_block.pop("dprk_prior", np.full(self.blocks, np.nan if prior is None else prior))
        # the common prior (Harsanyi): the DPRK's prior is the true share where none is given
        dprk_prior = np.where(np.isnan(dprk_prior), credibility, dprk_prior)
        self.param_table = rules.param_table(config.params, self.blocks, by_block, credibility, dprk_prior)
        # work space of the compiled kernels, reused every week (no per-step allocation)
        self.scratch = np.empty((3, r * self.blocks))
        # the agents' scaled utilities (actions, R), one buffer for all four: each agent draws from it
        # within its own move, and one buffer stays in the processor's cache where four would not
        self.utilities = np.empty((7, r * self.blocks))
        # Common random numbers: one draw per base replication, shared by every block. Independent
        # blocks (simulation-based inference, where every parameter point needs its own noise):
        # one draw per replication of every block. The kernels read entry ``i mod len(draw)``.
        self.independent = bool(independent)
        self._draws = np.empty((len(DRAW_SLOTS), r * self.blocks if self.independent else r))
        self._streams: dict[np.random.Generator, UniformStream] = {}
        self.policy = config.policy
        self.scenario_cfg = config.scenario
        self.replications = n = config.replications * self.blocks
        # the recorder's blocks: one per point of a batch, or one pooled ensemble of all draws
        self.stat_blocks, self.stat_replications = (1, n) if self.pooled else (self.blocks, r)
        self.n_weeks = config.scenario.weeks
        self.policy_name = config.policy.name.value
        self.current_calculus = config.params.credibility_rule == CredibilityRule.current_calculus
        self.perception_costly = config.params.perception == Perception.costly_signals
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

        self.us = US(self, seqs["us"], np.repeat(credibility, r))
        self.dprk = DPRK(self, seqs["dprk"], np.repeat(dprk_prior, r), config.scenario.dprk_capability)
        self.rok = ROK(self, seqs["rok"], config.scenario.rok_assurance)
        self.japan = Japan(self, seqs["japan"], config.scenario.japan_assurance)

        self._handlers: list[CalendarHandler] = []
        self._schedule_calendar()
        self._schedule_posture()
        self.recorder = Recorder(self, weekly=weekly, detail=detail)

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
        # A new US administration (20 January after an election), before the week's other events.
        for k in inauguration_weeks(sc.start, self.n_weeks):
            self.schedule_event(self.us.new_administration, at=k + EVENT_OFFSET - 0.3)
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

    # ------------------------------------------------------------------ the week
    def step(self) -> None:
        """One week; see the module docstring for the order of moves."""
        week = self.steps - 1
        us, dprk, rok, japan = self.us, self.dprk, self.rok, self.japan
        # replications not yet ended by war at the start of the week; the assets on station
        rules.week_begin(self.alive, self.active, us.surge_left, us.scheduled_present, self.on_station)
        dprk.step()
        us.step()  # a surge ordered this week is on station for the rest of it (rules.us_act)
        rok.step()
        japan.step()
        self._update_beliefs_and_assurance()
        self._advance_escalation(week)
        self.recorder.record(week)
        us.end_week()
        self.consultation_now = False

    def _update_beliefs_and_assurance(self) -> None:
        """Signals of the week -> DPRK belief (Bayes) and ROK/Japan assurance (two audiences):
        :func:`sim.rules.beliefs_week`."""
        us, dprk = self.us, self.dprk
        rules.beliefs_week(
            self.param_table, self.base_replications, dprk.log_odds, dprk.belief, us.evidence,
            us.schedule_evidence, self.perception_costly, self.current_calculus,
            float(self.exercise_intensity), dprk.capability, self.presence_weeks, self.on_station,
            us.scheduled_arrival, bool(us.setup_signal), us.surge_arrival, us.choice, dprk.choice,
            self.japan.choice, bool(self.consultation_now), self.rok.assurance, self.japan.assurance,
            self.alive, rules.LOGIT_BOUND)

    def _advance_escalation(self, week: int) -> None:
        """Allied pressure, tension, unintended clashes, war and the escalation ladder
        (:func:`sim.rules.escalation_week`)."""
        us = self.us
        rules.escalation_week(
            self.param_table, self.base_replications, week, self.pressure, self.tension,
            float(self.exercise_intensity), self.on_station, us.scheduled_arrival, us.surge_arrival,
            us.choice, self.rok.choice, self.japan.choice, self.dprk.choice, self.dprk.missiles,
            self.draw(self._world_rng, 5), self.draw(self._world_rng, 6), self.clash, self.alive,
            self.max_rung, self.first_clash_week, self.war_week, self.scratch)

    # ------------------------------------------------------------------ randomness
    def uniforms(self, rng: np.random.Generator) -> np.ndarray:
        """One uniform per replication from ``rng``; in a batch, the same ones for every block
        (independent blocks: each its own)."""
        if self.independent:
            return rng.random(self.base_replications * self.blocks)
        return self.tile(rng.random(self.base_replications))

    def draw(self, rng: np.random.Generator, slot: int) -> np.ndarray:
        """One uniform per base replication from ``rng``, into the preallocated row ``slot``
        (:data:`DRAW_SLOTS`): the same numbers for every block of a batch (the kernels read entry
        ``i mod base_replications``), and no per-week allocation. The numbers are ``rng.random``'s,
        computed by :class:`sim.uniforms.UniformStream`."""
        stream = self._streams.get(rng)
        if stream is None:
            stream = self._streams[rng] = UniformStream(rng)
        return stream.random(self._draws[slot])

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
            self.simulate()
        results = self.recorder.results()
        if self.pooled:  # which posterior draw each replication ran at
            reps = results.replications
            reps["posterior_draw"] = self.posterior_rows[
                reps["replication"].to_numpy() // self.base_replications]
            results.meta["posterior"] = {"draws": self.config.posterior.draws,
                                         "blocks": self.config.posterior.blocks,
                                         "rows": self.posterior_rows.tolist()}
        return results

    def simulate(self) -> None:
        """Simulate every week of the scenario without assembling the results: the recorder then
        holds them (``recorder.replications_table()``, ``recorder.detail``, ``recorder.results()``)."""
        for _ in range(self.n_weeks):
            self.step()

    @property
    def week_years(self) -> np.ndarray:
        return week_years(self.scenario_cfg.start, self.n_weeks)


# Rows of the model's buffer of uniforms, one per use of a random stream in a week.
DRAW_SLOTS = ("dprk_choice", "dprk_salvo", "us_choice", "rok_choice", "japan_choice", "clash", "war",
              "rotation_due", "type_redraw", "new_type", "dprk_launch_days")

# Settings a batch cannot vary: the two that choose code paths rather than numbers.
NOT_BATCHABLE = frozenset({"credibility_rule", "perception"})
# Batch keys that are not ModelParams fields (they become columns of the parameter table).
BLOCK_SETTINGS = ("credibility", "dprk_prior")


def _unpack_batch(config: RunConfig, batch: dict | None):
    """Split a batch into (blocks, era drives per replication, values per block)."""
    if not batch:
        return 1, {}, {}
    sizes = {len(np.atleast_1d(v)) for v in batch.values()}
    if len(sizes) != 1:
        raise ConfigError("batch: every parameter needs one value per point (equal lengths)")
    blocks = sizes.pop()
    r = config.replications
    fields = {f.name: f.type for f in dataclasses.fields(ModelParams)}
    eras = {e.name for e in config.scenario.eras}
    drives, by_block = {}, {}
    for name, values in batch.items():
        values = np.atleast_1d(np.asarray(values, dtype=float))
        if name in fields and name not in NOT_BATCHABLE:
            whole = fields[name] in ("int", int)
            for v in (values.min(), values.max()):  # the schema's range checks, at the extremes
                value = int(v) if whole and float(v).is_integer() else float(v)
                dataclasses.replace(config.params, **{name: value})
            by_block[name] = values
        elif name in BLOCK_SETTINGS:
            if not (np.all(np.isfinite(values)) and values.min() >= 0 and values.max() <= 1):
                raise ConfigError(f"batch: {name} values must be probabilities in [0, 1]")
            by_block[name] = values
        elif name.startswith("era:") and name[4:] in eras:
            if not np.all(np.isfinite(values)) or values.min() < 0:
                raise ConfigError(f"batch: {name} values must be finite and >= 0")
            drives[name[4:]] = np.repeat(values, r)
        else:
            raise ConfigError(f"batch: '{name}' cannot be varied in a batch: use a numeric ModelParams "
                              "field, credibility, dprk_prior or era:<era name>")
    return blocks, drives, by_block


def run(config: RunConfig, progress: bool = False) -> Results:
    """Build a model from ``config`` and run it: the library's one-call entry point."""
    return DeterrenceModel(config).run(progress=progress)
