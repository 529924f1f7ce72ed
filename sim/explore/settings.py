"""What the explorer's controls mean: Hydra overrides, validated by the same schema as ``dsim``.

Every control of the page is turned into one ``key=value`` override of the ``dsim`` command line
(``params=calibrated``, ``policy=permanent``, ``credibility=0.8``, ``params.spiral_weight=0.6``, ...),
and the list is composed and validated by :func:`load_config`, exactly as ``dsim`` does it. So a
setting the page accepts is a setting ``dsim`` accepts, a mistake reads the same one line in the
page as on the command line, and the page can always show the ``dsim`` command that reproduces
what it shows (:func:`command`).

This module has no Solara in it: the page (:mod:`sim.explore.app`) keeps a :class:`Settings` in
a reactive variable and calls these functions.
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import load_config as _load_config
from ..params import ConfigError, CredibilityRule, Perception, RunConfig


def config_dir() -> Path:
    """The ``configs/`` folder ``dsim`` reads."""
    from ..config import config_dir as where

    return Path(where())


# Hydra's GlobalHydra is one per process; two browser sessions must not compose at the same time.
_COMPOSE_LOCK = threading.Lock()


def load_config(overrides: list[str]) -> RunConfig:
    """Compose ``configs/`` with ``overrides`` into a validated RunConfig, as ``dsim`` would.

    Raises :class:`sim.params.ConfigError` with the one-line message ``dsim`` prints.
    """
    with _COMPOSE_LOCK:
        return _load_config(list(overrides))


def options(group: str) -> list[str]:
    """The options of a config group (the YAML files of ``configs/<group>/``), sorted.

    New presets (e.g. a ``params=posterior`` written by a later calibration) appear by themselves.
    """
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


@dataclass(frozen=True)
class Control:
    """One behavioural setting with a control of its own on the page.

    ``key`` is the dotted config key (as on the ``dsim`` command line); ``low``/``high``/``step``
    bound the slider only (the schema's own range check still applies to typed values);
    ``choices`` makes it a selection instead of a slider.
    """

    key: str
    label: str
    help: str
    low: float = 0.0
    high: float = 1.0
    step: float = 0.01
    choices: tuple[str, ...] = ()


# The settings that decide the answer, besides posture and credibility (docs/model.md section 1.1;
# experiments/rotational_vs_permanent/README.md, "Where the answer depends on the model"). The two
# switches offer exactly the options of their enums.
CONTROLS: tuple[Control, ...] = (
    Control("scenario.dprk_prior", "DPRK prior that the US is resolute",
            "The DPRK's belief at the start, set apart from the true share (Harsanyi 1967-68: by "
            "default the common prior, equal to the credibility)."),
    Control("params.spiral_weight", "Spiral weight",
            "0 = allied pressure deters (deterrence model), 1 = it provokes (spiral model; Jervis "
            "1976). The record does not pin it down (docs/calibration.md)."),
    Control("params.credibility_rule", "How the DPRK judges credibility",
            "bayes: learns from past US behaviour (Fearon 1994, 1997); current_calculus: capability "
            "and interest now (Press 2005).", choices=tuple(r.value for r in CredibilityRule)),
    Control("params.perception", "How the DPRK reads US signals",
            "consistent: only through what the model's own US types do (Bayes with the model's "
            "likelihoods; its belief is calibrated). costly_signals: also reads scheduled arrivals, "
            "basing, presence and consultations as signs of resolve whatever the US type (a named "
            "misperception; Jervis 1976).", choices=tuple(p.value for p in Perception)),
    Control("params.presence_deterrence", "Deterrence added by a stationed asset",
            "Relative rise of the expected punishment while an asset is on station (Fuhrmann & "
            "Sechser 2014 find stationing adds little).", high=1.0, step=0.05),
    Control("params.us_skip_irresolute", "P(an irresolute US defers a rotation)",
            "The chance that an irresolute US defers a rotation that falls due (a resolute one: "
            "params.us_skip_resolute, 0 by default). Above that, a rotation kept is evidence of "
            "resolve and one deferred evidence against: a signal informs as far as the types send "
            "it differently (Fearon 1997).", step=0.05),
)
CONTROL_KEYS = tuple(c.key for c in CONTROLS)


def format_value(value: Any) -> str:
    """A value as Hydra reads it back unchanged (``None`` is ``null``; floats round-trip)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(getattr(value, "value", value))


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merge(base: list[str], later: list[str]) -> list[str]:
    """``base`` with every override of ``later`` put in place of the one with the same key."""
    later_keys = {override_key(o): o for o in later}
    out = [later_keys.pop(override_key(o), o) for o in base]
    return out + [o for o in later if override_key(o) in later_keys]


def split_extra(text: str) -> list[str]:
    """The free-text overrides (``scenario.weeks=104 params.tension_decay=0.85``) as a list."""
    try:
        parts = shlex.split(text or "")
    except ValueError as exc:
        raise ConfigError(f"more settings: {exc}: close the quote or remove it") from None
    for part in parts:
        if "=" not in part:
            raise ConfigError(f"more settings: '{part}' is not key=value: write e.g. scenario.weeks=104")
        if part.startswith("-"):
            raise ConfigError(f"more settings: '{part}' is a command-line option: give only key=value "
                              "settings here")
    return parts


@dataclass(frozen=True)
class Settings:
    """The page's settings: the three config groups, the top-level levers and changed parameters.

    ``replications`` and ``seed`` are kept as typed, so that the schema (not the page) says what is
    wrong with them. ``changes`` holds controls moved away from the preset, as ``(key, value)``.
    """

    params: str
    scenario: str
    policy: str
    credibility: float
    replications: str
    seed: str
    changes: tuple[tuple[str, Any], ...] = ()
    extra: str = ""

    @classmethod
    def initial(cls, preset: str | None = None) -> Settings:
        """The settings of ``configs/config.yaml`` with the ``preset`` parameters: ``calibrated``
        when it exists (the README: use it for studies), else the config's own choice."""
        presets = options("params")
        preset = preset or ("calibrated" if "calibrated" in presets else None)
        cfg = load_config([f"params={preset}"] if preset else [])
        return cls(params=preset or _chosen("params"), scenario=cfg.scenario.name,
                   policy=cfg.policy.name.value, credibility=cfg.credibility,
                   replications=str(cfg.replications), seed=str(cfg.seed))

    def overrides(self) -> list[str]:
        """The ``dsim`` overrides of these settings, in a fixed order."""
        base = [f"params={self.params}", f"scenario={self.scenario}", f"policy={self.policy}",
                f"credibility={format_value(self.credibility)}",
                f"replications={str(self.replications).strip()}", f"seed={str(self.seed).strip()}"]
        base += [f"{k}={format_value(v)}" for k, v in self.changes]
        return merge(base, split_extra(self.extra))

    def with_change(self, key: str, value: Any, preset_value: Any = None) -> Settings:
        """These settings with control ``key`` set to ``value`` (dropped if it equals the preset's)."""
        changes = tuple((k, v) for k, v in self.changes if k != key)
        if not _same(value, preset_value):
            changes += ((key, value),)
        return replace(self, changes=changes)

    def value(self, key: str, preset: dict[str, Any]) -> Any:
        """What control ``key`` shows: its change if moved, else the preset's value."""
        return dict(self.changes).get(key, preset.get(key))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) < 1e-12
    return format_value(a) == format_value(b)


def _chosen(group: str) -> str:
    import yaml

    data = yaml.safe_load((Path(config_dir()) / "config.yaml").read_text())
    for entry in data.get("defaults", []):
        if isinstance(entry, dict) and group in entry:
            return entry[group]
    raise ConfigError(f"configs/config.yaml does not choose a {group}: add '- {group}: default'")


def preset_values(params: str, scenario: str) -> dict[str, Any]:
    """The value of every control under a preset and scenario (what the controls show unmoved)."""
    cfg = load_config([f"params={params}", f"scenario={scenario}"])
    out = {}
    for key in CONTROL_KEYS:
        obj: Any = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        out[key] = getattr(obj, "value", obj)
    return out


@dataclass(frozen=True)
class SideB:
    """The second setting of a side-by-side comparison: what differs from the first.

    Seed and replications always come from the first setting, so that replication i meets the same
    random numbers on both sides and the differences are paired (common random numbers).
    """

    policy: str | None = "permanent"
    credibility: float | None = None
    changes: tuple[tuple[str, Any], ...] = ()
    extra: str = ""

    def overrides(self, a: list[str]) -> list[str]:
        """The overrides of side B: side A's with B's differences put in their place."""
        mine = []
        if self.policy is not None:
            mine.append(f"policy={self.policy}")
        if self.credibility is not None:
            mine.append(f"credibility={format_value(self.credibility)}")
        mine += [f"{k}={format_value(v)}" for k, v in self.changes]
        extra = split_extra(self.extra)
        for o in extra:
            if override_key(o) in ("seed", "replications"):
                raise ConfigError(f"setting B: {o}: both sides use the seed and replications of "
                                  "setting A, so that the comparison is paired: remove it")
        return merge(a, mine + extra)


def command(overrides: list[str]) -> str:
    """The ``dsim`` command line that runs these settings."""
    return "uv run dsim " + shlex.join(overrides)


def comparison_command(a: list[str], b: list[str]) -> str | None:
    """One ``dsim -m`` sweep that runs both settings and writes their paired comparison, when they
    differ only in the posture (``comparison.csv`` gives every posture minus ``reference_policy``,
    here A's posture); ``None`` otherwise (run the two commands of :func:`command`)."""
    da, db = dict(_pairs(a)), dict(_pairs(b))
    differing = [k for k in {**da, **db} if da.get(k) != db.get(k)]
    if differing != ["policy"] or da.get("policy") is None or db.get("policy") is None:
        return None
    rest = [o for o in a if override_key(o) != "policy"]
    sweep = [f"policy={da['policy']},{db['policy']}", f"reference_policy={da['policy']}"]
    return "uv run dsim -m " + shlex.join(sweep + rest)


def _pairs(overrides: list[str]) -> list[tuple[str, str]]:
    return [(override_key(o), o.split("=", 1)[1] if "=" in o else "") for o in overrides]


@dataclass(frozen=True)
class Resolved:
    """Settings composed: the overrides, and either the RunConfig or the one-line error."""

    overrides: list[str] = field(default_factory=list)
    config: RunConfig | None = None
    error: str | None = None


def resolve(settings: Settings, side_b: SideB | None = None) -> Resolved:
    """Compose the settings (or side B of them); never raises for a user's mistake."""
    try:
        ovr = settings.overrides()
        if side_b is not None:
            ovr = side_b.overrides(ovr)
        return Resolved(overrides=ovr, config=load_config(ovr))
    except ConfigError as exc:
        return Resolved(overrides=[], error=str(exc))
