"""The one parameter schema: frozen dataclasses shared by Hydra, the model and the stored results.

Hydra composes the YAML files in ``configs/`` onto these classes (registered in Hydra's ConfigStore by
``sim.cli``), so a misspelt key or a value of the wrong type fails at composition. Ranges and
cross-field rules are checked in ``__post_init__`` and raise :class:`ConfigError`, whose message is
the one line a user sees.

Every behavioural parameter is documented, with its default and source, in ``docs/model.md``
(section *Details: parameters*). Defaults marked *stylised* there are plausible starting values
awaiting calibration against ``data/events.csv``; they are not estimates.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import numbers
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional


class ConfigError(ValueError):
    """A user-facing configuration mistake; its message is one line naming the problem and the fix."""


class Posture(Enum):
    """US strategic-asset deployment posture, the policy lever (docs/model.md, Section 4.1)."""

    rotational = "rotational"
    permanent = "permanent"
    reactive = "reactive"
    none = "none"


class Perception(Enum):
    """How the DPRK reads the US's signals (docs/model.md, Section 7.10)."""

    # the model's own likelihoods: what each US type would do in the state it acted in (Bayes)
    consistent = "consistent"
    # also reads scheduled arrivals, basing, presence and consultations as costly signals through the
    # fixed lik_* table, whatever the US type (misperception, Jervis 1976)
    costly_signals = "costly_signals"


class CredibilityRule(Enum):
    """How the DPRK forms its belief that the US is resolute (docs/model.md, Sections 7.10 and 7.11)."""

    bayes = "bayes"  # past behaviour: Bayesian updating on signals (Fearon 1994, 1997)
    current_calculus = "current_calculus"  # capability and interest now (Press 2005)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _is_number(value: Any) -> bool:
    """A real number, not a bool (True is an int in Python, never a value a user means here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _unit(name: str, value: float) -> None:
    _check(
        _is_number(value) and 0.0 <= value <= 1.0,
        f"{name}={value} is out of range: it is a probability, give a value in [0, 1]",
    )


# ------------------------------------------------------------------------ plausible ranges
# Dates: the window in which the calendar, the stored results and the figures work. pandas stores
# dates as nanoseconds since 1970 and cannot hold any after 2262-04-11 (pandas docs, "Timestamp
# limitations"); 2200 leaves room for a horizon's last week. Nothing in the model is older than the
# Korean War (25 June 1950) and the US-ROK alliance it produced.
DATE_MIN = _dt.date(1950, 1, 1)
DATE_MAX = _dt.date(2200, 12, 31)
MAX_WEEKS = 5200  # a century of weeks: the longest horizon, and the longest span in weeks


@dataclass(frozen=True)
class Range:
    """The values a numeric field may take: ``[low, high]``, an end excluded where it is open.

    A field annotated ``int`` must also be a whole number (2.5 weeks is refused, not rounded).
    """

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    def admits(self, value: float) -> bool:
        if not isinstance(value, numbers.Integral) and not math.isfinite(value):  # ints of any size
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        return (f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.open_high else ']'}")


# Probabilities, shares, weekly retentions and the spiral/deterrence mixing weight: [0, 1] by meaning.
UNIT = Range(0.0, 1.0)
# Signal likelihoods enter Bayes' rule as log(L_res / L_irr) (Fearon 1994, 1997): 0 or 1 would make
# a signal infinitely informative, so both ends are excluded.
LIKELIHOOD = Range(0.0, 1.0, open_low=True, open_high=True)
# Utilities, costs, gains and slopes on the logit scale of the quantal response (McKelvey & Palfrey
# 1995) and of the clash, war and current-calculus logits: one term of 100 already sets odds of
# e^100 (e^-100 is about 4e-44, never drawn in 10^7 replications x 5200 weeks), so a larger value
# cannot change a run; it is a typo.
LOGIT = Range(0.0, 100.0)
SIGNED_LOGIT = Range(-100.0, 100.0)  # intercepts: the same reasoning on both sides of 0
# Quantal-response precision: 0 is uniform play; at 100 a utility gap of 0.5 gives odds e^50, best
# response to any precision a run can show.
PRECISION = Range(0.0, 100.0)
# Multipliers and relative rises where 1 is the reference (a full-scale combined exercise, the
# 2022-23 weapons drive, punishment doubled by one unit of pressure): the record has no exercise
# above scale 1 (data/events.csv) and the calibration searches drives up to 3, so ten times the
# reference is far outside what it shows; more is a typo.
RELATIVE = Range(0.0, 10.0)
# Tension added per event. At the default clash logit (-8 + 0.35 T; Schelling 1960) tension 100
# makes a clash certain every week (1 - expit(27) < 2e-12), so a larger impulse means nothing more.
TENSION = Range(0.0, 100.0)
SIGNED_TENSION = Range(-100.0, 100.0)  # talks and outreach lower tension: the same bound, signed
# Costs in asset-weeks (1 = one strategic asset on station for one week). 10,000 asset-weeks is
# about 190 asset-years per arrival or per week, 250 times the default one-time basing cost (40);
# it keeps a replication's cost over 5200 weeks near 10^8 at most, far from overflow.
COST = Range(0.0, 10_000.0)

_PARAM_RANGES: dict[str, Range] = {
    **dict.fromkeys(("dprk_precision", "us_precision", "ally_precision"), PRECISION),
    **dict.fromkeys((
        "dprk_cost_talks", "dprk_cost_rhetoric", "dprk_cost_srbm", "dprk_cost_lrbm",
        "dprk_cost_nuclear", "dprk_cost_border", "dprk_dev_srbm", "dprk_dev_lrbm", "dprk_dev_nuclear",
        "dprk_punish_rhetoric", "dprk_punish_srbm", "dprk_punish_lrbm", "dprk_punish_nuclear",
        "dprk_punish_border", "dprk_talks_outreach_gain", "dprk_talks_tension_loss",
        "dprk_talks_diplomacy_gain", "spiral_gain",
        "cc_interest", "cc_presence", "cc_exercise", "cc_decoupling",
        "us_statement_gain", "us_statement_cost", "us_threat_gain", "us_threat_cost",
        "us_surge_gain", "us_surge_cost", "us_surge_redundancy", "us_request_weight", "us_audience_cost",
        "rok_hedge_gain", "rok_strike_cost", "rok_strike_response", "rok_request_cost",
        "rok_request_gain", "rok_outreach_cost", "rok_outreach_talks_gain",
        "rok_outreach_tension_loss",
        "japan_protest_cost", "japan_protest_gain", "japan_alert_cost", "japan_alert_gain",
        "japan_trilateral_cost", "japan_trilateral_gain", "japan_trilateral_assurance_gain",
        "clash_slope", "war_slope", "launch_day_tension_gain",
    ), LOGIT),
    **dict.fromkeys(("cc_intercept", "clash_intercept", "war_intercept", "launch_day_intercept"),
                    SIGNED_LOGIT),
    **dict.fromkeys((
        "deterrence_gain", "presence_deterrence", "pressure_exercise", "pressure_asset",
        "pressure_surge", "pressure_threat", "pressure_strike_drill", "pressure_trilateral",
        "salvo_tension_gain",
    ), RELATIVE),
    **dict.fromkeys((
        "spiral_weight", "pressure_memory", "us_irresolute_factor", "us_type_turnover",
        "us_skip_resolute", "us_skip_irresolute",
        "assure_deploy", "assure_presence", "assure_consult", "assure_threat", "assure_statement",
        "assure_trilateral", "assure_anchor", "assure_reversion", "decoupling", "decoupling_shock",
        "rok_hedge_threshold", "capability_learning", "capability_learning_nuclear", "tension_decay",
    ), UNIT),
    **dict.fromkeys((
        "lik_deploy_res", "lik_deploy_irr", "lik_permanent_res", "lik_permanent_irr",
        "lik_presence_res", "lik_presence_irr", "lik_consult_res", "lik_consult_irr",
    ), LIKELIHOOD),
    **dict.fromkeys((
        "tension_rhetoric", "tension_srbm", "tension_per_missile", "tension_lrbm", "tension_nuclear",
        "tension_border", "tension_exercise", "tension_deploy", "tension_threat",
        "tension_strike_drill", "tension_trilateral", "tension_clash",
    ), TENSION),
    **dict.fromkeys(("tension_talks", "tension_outreach"), SIGNED_TENSION),
    # The presence signal decays as exp(-weeks on station / this): at a tenth of a week it is gone
    # (e^-10) after the first week; beyond the longest horizon nothing habituates within a run.
    "habituation_weeks": Range(0.1, MAX_WEEKS),
    # A threat binds for at least the week after it (1) and at most a year: commitments older than
    # that are a new situation, not the same challenge.
    "us_threat_window_weeks": Range(1, 52),
    # Mean extra missiles per launch day: the ROK counted more than 20 missiles on 2 Nov 2022 (Korea
    # JoongAng Daily / Yonhap, 2 Nov 2022), the largest day reported; 100 is five times that.
    "salvo_extra": Range(0.0, 100.0),
    # Negative-binomial size (variance mean + mean^2 / size): 0.01 is a far heavier tail than the
    # record shows; at 1000 its variance is within 5 % of Poisson's for any mean up to 50.
    "salvo_dispersion": Range(0.01, 1000.0),
}

# Every numeric field of the configuration classes and its range, by class name (one table; a test
# checks that no numeric field is missing). Checked by `_check_ranges` in each `__post_init__`.
RANGES: dict[str, dict[str, Range]] = {
    "ModelParams": _PARAM_RANGES,
    "ScenarioConfig": {
        "weeks": Range(1, MAX_WEEKS),
        "dprk_prior": UNIT,  # or null: the common prior
        "rok_assurance": UNIT,
        "japan_assurance": UNIT,
        "dprk_capability": UNIT,
        # The same scale as the tension impulses (see TENSION).
        "initial_tension": TENSION,
        "weapons_drive": RELATIVE,
        "exercise_scale": RELATIVE,
    },
    "PolicyConfig": {
        # Cadences in weeks: at most the longest horizon (one arrival); duration and offset are
        # further bounded by the interval in __post_init__.
        "rotation_interval_weeks": Range(1, MAX_WEEKS),
        "rotation_duration_weeks": Range(1, MAX_WEEKS),
        "rotation_offset_weeks": Range(0, MAX_WEEKS - 1),
        # A surge is a visit of days to weeks (the B-1B flyovers of 2016-17, events.csv); a stay
        # longer than a year is a rotation or basing, which the posture models.
        "surge_duration_weeks": Range(1, 52),
        "transit_cost": COST,
        "station_cost_per_week": COST,
        "permanent_setup_cost": COST,
        "permanent_station_cost_per_week": COST,
    },
    "CalendarEvent": {
        "month": Range(1, 12),
        "day": Range(1, 31),  # and the day must exist in the month (checked in __post_init__)
        # Combined exercises last one to three weeks (Freedom Shield, Ulchi Freedom Shield); half a
        # year is the longest stretch the calendar treats as one event.
        "weeks": Range(1, 26),
        "intensity": RELATIVE,
    },
    "DatedEvent": {"weeks": Range(1, 26), "intensity": RELATIVE},  # as CalendarEvent
    "Era": {"weapons_drive": RELATIVE, "diplomacy": UNIT},
}


def field_range(cls: type | str, name: str) -> Range:
    """The plausible range of numeric field ``name`` of a configuration class (see RANGES)."""
    table = RANGES[cls if isinstance(cls, str) else cls.__name__]
    if name not in table:
        raise KeyError(f"{name} is not a numeric field of {cls}")
    return table[name]


def _check_ranges(obj: Any, label: str) -> None:
    """Check every numeric field of ``obj`` against its range in RANGES: one line naming the field,
    the value and the allowed range. ``label`` prefixes the field name (``params.``)."""
    for f in dataclasses.fields(obj):
        rng = RANGES[type(obj).__name__].get(f.name)
        if rng is None:
            continue
        value = getattr(obj, f.name)
        if value is None and "Optional" in str(f.type):
            continue
        integer = str(f.type) == "int" or f.type is int
        kind = "a whole number" if integer else "a number"
        shown = repr(value) if isinstance(value, str) else value
        ok = _is_number(value) and (isinstance(value, numbers.Integral) or not integer)
        _check(ok and rng.admits(value),
               f"{label}{f.name}={shown} is out of range: give {kind} in {rng}")


def _iso_date(label: str, value: str) -> _dt.date:
    """A date written YYYY-MM-DD inside the window [DATE_MIN, DATE_MAX]."""
    try:
        day = _dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{label}={value!r} is not a date: write it as YYYY-MM-DD") from None
    _check(DATE_MIN <= day <= DATE_MAX,
           f"{label}={value} is out of range: give a date from {DATE_MIN} to {DATE_MAX}")
    return day


@dataclass(frozen=True)
class CalendarEvent:
    """A yearly allied event on a fixed calendar date: a combined exercise or a consultation.

    The event falls in the simulated week that contains ``month``/``day`` in each simulated year.
    An exercise lasts ``weeks`` weeks and ``intensity`` scales its military pressure (1 = a full-scale
    combined exercise such as Freedom Shield / Ulchi Freedom Shield; 0 = suspended, as in 2018-21).
    A consultation is a one-week signal: its ``weeks`` and ``intensity`` are not used.
    """

    name: str = "event"
    month: int = 3
    day: int = 1
    weeks: int = 1
    intensity: float = 1.0

    def __post_init__(self) -> None:
        _check_ranges(self, f"calendar event '{self.name}': ")
        try:
            _dt.date(2001, self.month, self.day)  # a non-leap year: 29 Feb is refused on purpose
        except ValueError:
            raise ConfigError(
                f"calendar event '{self.name}': day={self.day} does not exist in month {self.month}"
            ) from None


@dataclass(frozen=True)
class DatedEvent:
    """A one-off allied event on a given date, for replaying history (scenario ``historical``).

    ``kind`` is ``exercise`` (lasting ``weeks`` weeks at ``intensity``; 0 = suspended) or
    ``consultation`` (a one-week signal).
    """

    name: str = "event"
    kind: str = "exercise"
    date: str = "2016-03-07"
    weeks: int = 1
    intensity: float = 1.0

    def __post_init__(self) -> None:
        _check(self.kind in ("exercise", "consultation"),
               f"dated event '{self.name}': kind={self.kind!r} must be exercise or consultation")
        _iso_date(f"dated event '{self.name}': date", self.date)
        _check_ranges(self, f"dated event '{self.name}': ")


@dataclass(frozen=True)
class Era:
    """A period of the DPRK's exogenous drivers, from ``start_date`` until the next era begins.

    ``weapons_drive`` scales the development value of tests (a weapons plan in force); ``diplomacy``
    in [0, 1] marks a period of summitry that makes talks more attractive; ``nuclear_moratorium``
    removes nuclear tests from the DPRK's options (the April 2018 declaration). All three are inputs
    of the scenario, not outcomes of the model (the record, data/events.csv; docs/model.md,
    Section 6.2).
    """

    name: str = "era"
    start_date: str = "2016-01-01"
    weapons_drive: float = 1.0
    diplomacy: float = 0.0
    # a declared halt of nuclear testing is in force: the nuclear_test action is unavailable
    nuclear_moratorium: bool = False

    def __post_init__(self) -> None:
        _iso_date(f"era '{self.name}': start_date", self.start_date)
        _check_ranges(self, f"era '{self.name}': ")


@dataclass(frozen=True)
class PosturePeriod:
    """From ``start_date`` until the next period, the US posture is ``posture`` (for replays).

    The posture's cadence and costs still come from the ``policy`` config group.
    """

    name: str = "period"
    start_date: str = "2016-01-01"
    posture: Posture = Posture.reactive

    def __post_init__(self) -> None:
        _coerce_posture(self, "posture")
        _check(isinstance(self.posture, Posture),
               f"posture period '{self.name}': posture={self.posture!r} is unknown: choose "
               "rotational, permanent, reactive or none")
        _iso_date(f"posture period '{self.name}': start_date", self.start_date)


def _coerce_enum(obj, field: str, enum: type[Enum]) -> None:
    """Turn a value given by name (from YAML or the command line) into the field's ``enum``, in place
    on a frozen dataclass; an unknown name is left as it is for the caller's one-line error."""
    value = getattr(obj, field)
    if isinstance(value, str):
        try:
            object.__setattr__(obj, field, enum(value))
        except ValueError:
            pass


def _coerce_posture(obj, field: str) -> None:
    """:func:`_coerce_enum` for a ``Posture``."""
    _coerce_enum(obj, field, Posture)


def _default_exercises() -> List[CalendarEvent]:
    # Spring: Key Resolve/Foal Eagle, since 2019 renamed (Dong Maeng, Freedom Shield), held in March.
    # Summer: Ulchi Freedom Guardian / Ulchi Freedom Shield, held in the second half of August.
    return [
        CalendarEvent(name="spring_combined_exercise", month=3, day=10, weeks=2, intensity=1.0),
        CalendarEvent(name="summer_combined_exercise", month=8, day=18, weeks=2, intensity=1.0),
    ]


def _default_consultations() -> List[CalendarEvent]:
    # The Security Consultative Meeting is held each autumn (54th SCM: 3 Nov 2022; Korea JoongAng
    # Daily, 2 Nov 2022); the EDSCG met first on 20 Dec 2016 (Qatar News Agency, 21 Dec 2016); the
    # Nuclear Consultative Group (from 2023) meets about twice a year.
    return [
        CalendarEvent(name="scm", month=11, day=3),
        CalendarEvent(name="edscg", month=9, day=15),
        CalendarEvent(name="ncg", month=6, day=10),
    ]


@dataclass(frozen=True)
class PolicyConfig:
    """A deployment posture and its cost account (docs/model.md, Sections 3.3 and 7.7).

    Cost units are stylised: 1 unit = one strategic asset on station near the peninsula for one
    week. They compare postures with each other; they are not dollars.
    """

    name: Posture = Posture.rotational
    # rotational: an asset arrives every `rotation_interval_weeks`, stays `rotation_duration_weeks`.
    rotation_interval_weeks: int = 6
    rotation_duration_weeks: int = 2
    rotation_offset_weeks: int = 0
    # discretionary surges after provocations (all postures except `none`)
    surge_duration_weeks: int = 1
    transit_cost: float = 1.0  # per arrival (scheduled or surge)
    station_cost_per_week: float = 1.0  # per week an asset is on station
    permanent_setup_cost: float = 40.0  # one-time basing cost of a permanent posture
    permanent_station_cost_per_week: float = 0.8  # basing makes a week on station cheaper

    def __post_init__(self) -> None:
        _coerce_posture(self, "name")
        _check(
            isinstance(self.name, Posture),
            f"policy.name={self.name!r} is unknown: choose one of rotational, permanent, reactive, none",
        )
        _check_ranges(self, "policy.")
        _check(
            self.rotation_duration_weeks <= self.rotation_interval_weeks,
            f"policy.rotation_duration_weeks={self.rotation_duration_weeks} must be between 1 and "
            f"rotation_interval_weeks ({self.rotation_interval_weeks})",
        )
        _check(
            self.rotation_offset_weeks < self.rotation_interval_weeks,
            f"policy.rotation_offset_weeks={self.rotation_offset_weeks} must be in "
            f"[0, rotation_interval_weeks) = [0, {self.rotation_interval_weeks})",
        )


@dataclass(frozen=True)
class ScenarioConfig:
    """Start date, horizon, initial state and the allied calendar of one scenario."""

    name: str = "baseline"
    start_date: str = "2026-01-05"  # ISO date of the first simulated week (a Monday by convention)
    weeks: int = 520
    # DPRK prior that the US is resolute; null = the common prior, equal to `credibility` (Harsanyi).
    dprk_prior: Optional[float] = None
    rok_assurance: float = 0.55
    japan_assurance: float = 0.6
    dprk_capability: float = 0.7  # long-range (IRBM/ICBM) capability index in [0, 1]
    initial_tension: float = 2.0
    weapons_drive: float = 1.0  # exogenous DPRK weapons-development drive (scales test value)
    exercise_scale: float = 1.0  # multiplies the intensity of every combined exercise
    exercises: List[CalendarEvent] = field(default_factory=_default_exercises)
    consultations: List[CalendarEvent] = field(default_factory=_default_consultations)
    # One-off dated events and eras, for replaying a historical period (empty in forward scenarios).
    dated_events: List[DatedEvent] = field(default_factory=list)
    eras: List[Era] = field(default_factory=list)
    # Documented changes of US posture (replays); empty = the `policy` posture throughout.
    posture_periods: List[PosturePeriod] = field(default_factory=list)

    def __post_init__(self) -> None:
        start = _iso_date("scenario.start_date", self.start_date)
        _check_ranges(self, "scenario.")
        last = start + _dt.timedelta(weeks=self.weeks) - _dt.timedelta(days=1)
        _check(last <= DATE_MAX,
               f"scenario.weeks={self.weeks} from {start} ends on {last}, after {DATE_MAX}: start "
               f"earlier or give at most {((DATE_MAX - start).days + 1) // 7} weeks")

    @property
    def start(self) -> _dt.date:
        return _dt.date.fromisoformat(str(self.start_date))


@dataclass(frozen=True)
class ModelParams:
    """Behavioural parameters, shared by every scenario and posture (calibrated in issue 3).

    Names carry the actor as a prefix. Utilities are on the logit scale of the quantal response.
    """

    # --- quantal response precision (McKelvey & Palfrey 1995) ---
    dprk_precision: float = 1.0
    us_precision: float = 1.0
    ally_precision: float = 1.0

    # --- DPRK utilities: intrinsic cost of each action relative to restraint (stylised) ---
    dprk_cost_talks: float = 2.5
    dprk_cost_rhetoric: float = 0.5
    dprk_cost_srbm: float = 1.0
    dprk_cost_lrbm: float = 2.8
    dprk_cost_nuclear: float = 7.5
    dprk_cost_border: float = 6.0
    # weapons-development value of tests, scaled by scenario.weapons_drive
    dprk_dev_srbm: float = 0.8
    dprk_dev_lrbm: float = 1.2
    dprk_dev_nuclear: float = 1.5
    # expected US punishment per unit of belief (deterrence by punishment; Schelling 1966)
    dprk_punish_rhetoric: float = 0.1
    dprk_punish_srbm: float = 1.0
    dprk_punish_lrbm: float = 1.5
    dprk_punish_nuclear: float = 3.0
    dprk_punish_border: float = 4.0
    # talks become more attractive after allied outreach, less at high tension
    dprk_talks_outreach_gain: float = 2.0
    dprk_talks_tension_loss: float = 0.1
    dprk_talks_diplomacy_gain: float = 3.0  # talks utility per unit of the era's `diplomacy`

    # --- deterrence vs spiral (Jervis 1976; Bernhardt & Sukin 2021; Cha, Lee & Lim 2016) ---
    spiral_weight: float = 0.3  # 0 = pure deterrence model, 1 = pure spiral model
    spiral_gain: float = 1.0  # resolve-display value of provocation per unit allied pressure
    deterrence_gain: float = 0.5  # relative rise of expected punishment per unit allied pressure
    presence_deterrence: float = 0.2  # relative rise of punishment while an asset is on station
    pressure_memory: float = 0.5  # weekly retention of allied military pressure
    pressure_exercise: float = 1.0  # pressure per unit exercise intensity in an exercise week
    pressure_asset: float = 0.5  # pressure per week an asset is on station
    pressure_surge: float = 0.5  # extra pressure in a week a surge arrives
    pressure_threat: float = 0.3
    pressure_strike_drill: float = 0.4
    pressure_trilateral: float = 0.3

    # --- DPRK belief about US resolve (Bayes; Fearon 1994, 1997) ---
    credibility_rule: CredibilityRule = CredibilityRule.bayes
    # how the DPRK reads signals: consistent (the model's own likelihoods) or costly_signals (Jervis 1976)
    perception: Perception = Perception.consistent
    # costly_signals only: the misperceiving DPRK's fixed likelihoods of each scheduled signal in a
    # week, under a resolute (res) and an irresolute (irr) US
    lik_deploy_res: float = 0.5
    lik_deploy_irr: float = 0.4
    lik_permanent_res: float = 0.6
    lik_permanent_irr: float = 0.3
    lik_presence_res: float = 0.51
    lik_presence_irr: float = 0.49
    lik_consult_res: float = 0.5
    lik_consult_irr: float = 0.45
    habituation_weeks: float = 26.0  # costly_signals: presence signal decays as exp(-weeks on station / this)
    # a new US administration's resolve is drawn afresh with this probability (Wolford 2007; Lupton 2020)
    us_type_turnover: float = 0.5
    # current-calculus rule (Press 2005): belief = expit(intercept + interest*logit(credibility)
    #   + presence*on_station + exercise*intensity - decoupling*capability)
    cc_intercept: float = 0.0
    cc_interest: float = 1.0
    cc_presence: float = 0.5
    cc_exercise: float = 0.3
    cc_decoupling: float = 1.0

    # --- US responses (discretionary; the posture schedule is separate) ---
    us_statement_gain: float = 1.0
    us_statement_cost: float = 2.0
    us_threat_gain: float = 1.5
    us_threat_cost: float = 3.5
    us_surge_gain: float = 3.0
    us_surge_cost: float = 3.5
    us_surge_redundancy: float = 1.0  # less value in surging when an asset is already on station
    us_irresolute_factor: float = 0.35  # an irresolute US values a response this much of a resolute one
    us_request_weight: float = 0.5  # a ROK request for assets adds this much to the US need to respond
    # tied hands (Fearon 1994): backing down from a threat that binds costs this much utility
    us_audience_cost: float = 2.0
    us_threat_window_weeks: int = 4  # a threat binds for this many weeks after it is made
    # probability that a scheduled rotation is deferred, by US type (0 and 0: scheduled means scheduled)
    us_skip_resolute: float = 0.0
    us_skip_irresolute: float = 0.0

    # --- allied assurance (two audiences; Snyder 1984) ---
    assure_deploy: float = 0.04
    assure_presence: float = 0.01  # per week on station; does not habituate (allies value presence)
    assure_consult: float = 0.03
    assure_threat: float = 0.01
    assure_statement: float = 0.005
    assure_trilateral: float = 0.01  # Japan only
    assure_anchor: float = 0.65  # long-run assurance without signals, before decoupling
    assure_reversion: float = 0.02  # weekly pull towards the anchor
    decoupling: float = 0.3  # anchor falls by this times DPRK long-range capability
    decoupling_shock: float = 0.03  # relative fall of assurance after a long-range or nuclear test

    # --- ROK choices ---
    rok_hedge_threshold: float = 0.5
    rok_hedge_gain: float = 8.0
    rok_strike_cost: float = 2.5
    rok_strike_response: float = 1.5
    rok_request_cost: float = 3.0
    rok_request_gain: float = 4.0
    rok_outreach_cost: float = 3.0
    rok_outreach_talks_gain: float = 2.0
    rok_outreach_tension_loss: float = 0.2

    # --- Japan choices ---
    japan_protest_cost: float = 2.0
    japan_protest_gain: float = 2.5
    japan_alert_cost: float = 4.0
    japan_alert_gain: float = 7.0
    japan_trilateral_cost: float = 3.5
    japan_trilateral_gain: float = 1.5
    japan_trilateral_assurance_gain: float = 2.0

    # --- DPRK capability (learning by testing) ---
    capability_learning: float = 0.01  # per long-range launch: K += this * (1 - K)
    capability_learning_nuclear: float = 0.03

    # --- launch days in a launch week: 1 + Binomial(6, expit(intercept + tension_gain * T)) ---
    launch_day_intercept: float = -4.0
    launch_day_tension_gain: float = 0.1
    # --- missiles per launch day: 1 + NegBin(mean = salvo_extra * (1 + salvo_tension_gain*T)) ---
    salvo_extra: float = 0.8
    salvo_tension_gain: float = 0.1
    salvo_dispersion: float = 0.5  # negative-binomial size: small = heavy tail (e.g. 2 Nov 2022)

    # --- tension and escalation (Schelling 1960, 1966) ---
    tension_decay: float = 0.9  # weekly retention
    tension_rhetoric: float = 0.3
    tension_srbm: float = 0.6
    tension_per_missile: float = 0.05
    tension_lrbm: float = 1.5
    tension_nuclear: float = 4.0
    tension_border: float = 3.0
    tension_talks: float = -0.8
    tension_exercise: float = 0.5  # per week per unit exercise intensity
    tension_deploy: float = 0.3  # per arrival
    tension_threat: float = 0.4
    tension_strike_drill: float = 0.4
    tension_outreach: float = -0.5
    tension_trilateral: float = 0.3
    tension_clash: float = 3.0
    clash_intercept: float = -8.0  # weekly unintended clash: expit(intercept + slope*T)
    clash_slope: float = 0.35
    war_intercept: float = -7.0  # a clash becomes war with expit(intercept + slope*T)
    war_slope: float = 0.25

    def __post_init__(self) -> None:
        _coerce_enum(self, "perception", Perception)
        _check(
            isinstance(self.perception, Perception),
            f"params.perception={self.perception!r} is unknown: choose consistent or costly_signals",
        )
        _coerce_enum(self, "credibility_rule", CredibilityRule)
        _check(
            isinstance(self.credibility_rule, CredibilityRule),
            f"params.credibility_rule={self.credibility_rule!r} is unknown: "
            "choose bayes or current_calculus",
        )
        _check_ranges(self, "params.")


@dataclass(frozen=True)
class ParameterDraws:
    """Parameter uncertainty in a run (``params=posterior``): the replications are split into
    ``blocks`` equal blocks, and each block runs at one parameter set drawn (by the weights, with the
    run's seed) from the posterior draws of ``dsim-calibrate method=posterior``; every block meets
    its own random numbers, and two runs with the same seed (two postures, say) draw the same sets
    and the same numbers (common random numbers)."""

    # The draws (Parquet, from dsim-calibrate method=posterior): a path relative to dsim's configs/
    # folder (params/posterior_draws.parquet) or the working folder, or absolute; null: no draws
    # (one parameter point, the `params` settings).
    draws: Optional[str] = None
    blocks: int = 50  # parameter sets per run; replications must be a multiple of it

    def __post_init__(self) -> None:
        _check(isinstance(self.blocks, int) and not isinstance(self.blocks, bool) and self.blocks >= 1,
               f"posterior.blocks={self.blocks} must be a whole number >= 1")
        _check(self.draws is None or (isinstance(self.draws, str) and self.draws.strip() != ""),
               f"posterior.draws={self.draws!r} must be a file path or null")


STUDIES = ("posture_robustness",)


@dataclass(frozen=True)
class StudyConfig:
    """A named analysis that a sweep runs after its points (``experiment=posture_robustness``:
    :mod:`sim.robustness`). It changes no point's results."""

    name: Optional[str] = None  # null: none; posture_robustness: sim.robustness
    sobol_base: int = 256  # Sobol base sample size N (N x (d + 2) parameter points)
    sobol_replications: int = 32  # histories per parameter point and posture, Sobol and PRIM
    sobol_resamples: int = 500  # bootstrap resamples of the Sobol indices
    prim_threshold: float = 0.8  # PRIM's density threshold for its peeling

    def __post_init__(self) -> None:
        _check(self.name is None or self.name in STUDIES,
               f"study.name={self.name!r} is unknown: give {' or '.join(STUDIES)} or null")
        for f in ("sobol_base", "sobol_replications", "sobol_resamples"):
            v = getattr(self, f)
            _check(isinstance(v, int) and not isinstance(v, bool) and v >= 2,
                   f"study.{f}={v} must be a whole number >= 2")
        _check(isinstance(self.prim_threshold, (int, float)) and 0 < self.prim_threshold <= 1,
               f"study.prim_threshold={self.prim_threshold} must be in (0, 1]")


@dataclass(frozen=True)
class RunConfig:
    """One run: the sweepable top-level levers plus the three config groups."""

    credibility: float = 0.7  # probability that the US is resolute (drawn per replication)
    replications: int = 1000
    # The first EDSCG met on Tuesday 20 Dec 2016 in Washington (Qatar News Agency, 21 Dec 2016).
    seed: int = 20161220
    progress: bool = True
    # Draw each run's escalation.png: null = yes for a single run, no for each point of a sweep
    # (the sweep draws its own figures); true or false forces it. Changes no result.
    run_figure: Optional[bool] = None
    # The posture every other posture is compared with in a sweep's comparison.csv.
    reference_policy: Posture = Posture.rotational
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    params: ModelParams = field(default_factory=ModelParams)
    # parameter uncertainty: draws from the calibration's posterior, one per block of replications
    posterior: ParameterDraws = field(default_factory=ParameterDraws)
    # a named analysis a sweep runs after its points (sim.robustness); no effect on a point's results
    study: StudyConfig = field(default_factory=StudyConfig)

    def __post_init__(self) -> None:
        _coerce_posture(self, "reference_policy")
        _check(
            isinstance(self.reference_policy, Posture),
            f"reference_policy={self.reference_policy!r} is unknown: choose one of rotational, "
            "permanent, reactive, none",
        )
        _check(self.run_figure is None or isinstance(self.run_figure, bool),
               f"run_figure={self.run_figure!r} must be true, false or null")
        _unit("credibility", self.credibility)
        _check(
            isinstance(self.replications, int) and 1 <= self.replications <= 10_000_000,
            f"replications={self.replications} must be a whole number from 1 to 10000000",
        )
        _check(
            isinstance(self.seed, int) and self.seed >= 0,
            f"seed={self.seed} must be a whole number >= 0",
        )
        if isinstance(self.posterior, dict):
            object.__setattr__(self, "posterior", ParameterDraws(**self.posterior))
        if isinstance(self.study, dict):
            object.__setattr__(self, "study", StudyConfig(**self.study))
        if self.posterior.draws is not None:
            b = self.posterior.blocks
            _check(b <= self.replications and self.replications % b == 0,
                   f"replications={self.replications} must be a multiple of posterior.blocks={b} (each "
                   "posterior draw runs an equal block of replications): change one of them")

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with top-level fields changed; nested ones as ``policy={...}`` dicts or objects."""
        out = {}
        for key, value in changes.items():
            current = getattr(self, key)
            if isinstance(value, dict) and dataclasses.is_dataclass(current):
                value = dataclasses.replace(current, **value)
            out[key] = value
        return dataclasses.replace(self, **out)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (enums as their values), as stored in summary.json."""
        return _plain(dataclasses.asdict(self))

    def identity(self) -> dict:
        """The settings that change a run's results: :meth:`to_dict` without
        :data:`NON_RESULT_FIELDS`. Two configs with the same identity give identical files, so a
        resumed sweep compares points by this, not by the whole config."""
        return {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_FIELDS}


# RunConfig fields that change how a run reports, never what it computes.
NON_RESULT_FIELDS = ("progress", "reference_policy", "run_figure", "study")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Enum):
        return obj.value
    return obj


def run_config_from_dict(data: dict) -> RunConfig:
    """Build a RunConfig from a plain dict (the inverse of :meth:`RunConfig.to_dict`)."""
    data = dict(data)
    pol = dict(data.pop("policy", {}))
    if "name" in pol:
        pol["name"] = Posture(pol["name"])
    scen = dict(data.pop("scenario", {}))
    for key, cls in (("exercises", CalendarEvent), ("consultations", CalendarEvent),
                     ("dated_events", DatedEvent), ("eras", Era),
                     ("posture_periods", PosturePeriod)):
        if key in scen:
            scen[key] = [cls(**e) for e in scen[key]]
    par = dict(data.pop("params", {}))
    if "credibility_rule" in par:
        par["credibility_rule"] = CredibilityRule(par["credibility_rule"])
    if "perception" in par:
        par["perception"] = Perception(par["perception"])
    post = ParameterDraws(**data.pop("posterior", {}))
    data["study"] = StudyConfig(**data.pop("study", {}))
    return RunConfig(
        policy=PolicyConfig(**pol), scenario=ScenarioConfig(**scen), params=ModelParams(**par),
        posterior=post, **data
    )
