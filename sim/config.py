"""Loading configs: Hydra composes ``configs/`` onto the typed schema; mistakes become one line.

This is the one place where a command line, a notebook or the explorer turns config-group choices
and ``key=value`` overrides into a validated, frozen :class:`~sim.params.RunConfig`. Composition is
Hydra's own (its public Compose API, with the same search path the command line gets:
``--config-dir`` and ``hydra.searchpath`` included); this module adds only

* the schema: the frozen dataclasses of :mod:`sim.params`, registered in Hydra's ConfigStore as
  ``run_schema`` (and ``calibrate_schema``), so a misspelt key or a wrongly typed value fails at
  composition and an out-of-range value fails in the dataclass's ``__post_init__``;
* :func:`explain`, which turns Hydra's and OmegaConf's multi-line errors into one line naming the
  problem and the fix;
* :func:`expand_sweep`, the grid of a multirun (the same product of swept values as Hydra's basic
  sweeper), and :func:`compose_jobs`, which composes every job of a grid, each distinct set of
  config-group choices once (a 44-point grid over 4 postures needs 4 compositions, not 44).

Public API: :func:`load_config` (``from sim import load_config``).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from .params import ConfigError, RunConfig

__all__ = ["compose_jobs", "config_dir", "data_dir", "expand_sweep", "explain", "load_config",
           "search_path_override", "to_run_config"]


# ----------------------------------------------------------------------------- where configs live
def _package_or_repo(name: str, marker: str) -> Path:
    """``sim/<name>`` inside an installed wheel (importlib.resources), or ``<repo>/<name>`` in a
    checkout (an editable install has no copy inside the package)."""
    bundled = resources.files("sim").joinpath(name)
    if bundled.is_dir() and bundled.joinpath(marker).is_file():
        return Path(str(bundled))
    repo = Path(__file__).resolve().parent.parent / name
    if (repo / marker).is_file():
        return repo
    raise ConfigError(f"cannot find the {name}/ folder of dsim: reinstall the package (uv sync)")


def config_dir() -> Path:
    """The ``configs/`` folder: bundled in the wheel as ``sim/configs``, or the repository's own."""
    return _package_or_repo("configs", "config.yaml")


def data_dir() -> Path:
    """The ``data/`` folder (the event record): bundled as ``sim/data``, or the repository's own."""
    return _package_or_repo("data", "events.csv")


# ----------------------------------------------------------------------------- the schema
def _schema_node(cls: type) -> DictConfig:
    """``cls`` as an OmegaConf node that the YAML files may merge into.

    The dataclasses are frozen (results must not change them), which OmegaConf turns into
    read-only nodes; composition needs to write, so every node of the schema is made writable
    (``OmegaConf.set_readonly``). The frozen objects come back in :func:`to_run_config`.
    """
    node = OmegaConf.structured(cls)

    def unlock(n) -> None:
        OmegaConf.set_readonly(n, False)
        keys = list(n.keys()) if isinstance(n, DictConfig) else range(len(n))
        for key in keys:
            child = n[key]
            if isinstance(child, (DictConfig, ListConfig)):
                unlock(child)

    unlock(node)
    return node


_REGISTERED: set[str] = set()


def register_schemas(calibrate: bool = False) -> None:
    """Register ``run_schema`` (and, for dsim-calibrate, ``calibrate_schema``) in Hydra's
    ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    if "run_schema" not in _REGISTERED:
        ConfigStore.instance().store(name="run_schema", node=_schema_node(RunConfig))
        _REGISTERED.add("run_schema")
    if calibrate and "calibrate_schema" not in _REGISTERED:
        from .calibrate import CalibrationConfig

        ConfigStore.instance().store(name="calibrate_schema", node=_schema_node(CalibrationConfig))
        _REGISTERED.add("calibrate_schema")
    if calibrate and "forecast_schema" not in _REGISTERED:  # dsim-forecast's (same needs)
        from .forecast import ForecastConfig

        ConfigStore.instance().store(name="forecast_schema", node=_schema_node(ForecastConfig))
        _REGISTERED.add("forecast_schema")


def to_run_config(cfg: DictConfig, cls: type = RunConfig):
    """The composed Hydra config as a validated, frozen ``cls`` object (raises ConfigError)."""
    if "hydra" in cfg:  # a composition with Hydra's node (return_hydra_config, load_sweep_config)
        cfg = copy.deepcopy(cfg)  # (OmegaConf.masked_copy would lose the schema: a plain dict)
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as exc:  # OmegaConf wraps what __post_init__ raised
        err: BaseException | None = exc
        while err is not None and not isinstance(err, ConfigError):
            err = err.__cause__ or err.__context__
        if isinstance(err, ConfigError):
            raise err from None
        raise ConfigError(explain(exc)) from None
    if not isinstance(obj, cls):
        raise ConfigError(f"the config is not a {cls.__name__}: start from the files in configs/")
    return obj


# ----------------------------------------------------------------------------- errors in one line
# Settings that existed once: their one line says what replaced them.
REMOVED_KEYS = {
    key: ("removed: dsim-calibrate writes the fitted configs into its output folder; add install=true "
          "to also install them into configs/")
    for key in ("write_params", "write_scenario")
}
REMOVED_KEYS.update({
    f"params.lik_{signal}_{kind}": (
        "removed: the DPRK now reads US statements, threats and non-responses through the US's own "
        "choice probabilities (docs/model.md, Section 7.10); tune params.us_* instead")
    for signal in ("threat", "statement", "inaction") for kind in ("res", "irr")
})
REMOVED_KEYS["params.belief_memory"] = (
    "removed: the belief no longer fades each week; it moves towards the prior only when a new US "
    "administration may bring a new resolve (params.us_type_turnover)")


def _first_line(exc: BaseException | str) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def explain(exc: BaseException) -> str:
    """One line for a Hydra/OmegaConf composition error, naming the problem and the fix."""
    text = str(exc)
    cause = exc.__cause__
    full = text + ("\n" + str(cause) if cause is not None else "")
    # an override that cannot be merged (a list item, a wrong type)
    if cause is not None and "Error merging override" in text:
        override = text.split("Error merging override", 1)[1].strip()
        if "read-only" in str(cause):
            return (f"{override}: list items cannot be overridden one by one; give the whole list, "
                    "e.g. 'scenario.exercises=[{name: spring, month: 3, day: 10, weeks: 2}]'")
        return f"{override}: {_first_line(cause)}"
    # a config-group option that does not exist anywhere on the search path
    m = re.search(r"Could not find '([^']+)/([^'/]*)'", text)
    if m:
        group, option = m.groups()
        options = sorted(re.findall(r"^\t(\S+)$", text, flags=re.M))
        known = f": choose one of {', '.join(options)}" if options else ""
        if not option:
            return f"{group}= needs an option{known or ' (see --help)'}"
        return (f"{group}={option} is not a known {group}{known} "
                f"(or add {group}/{option}.yaml to a folder given with --config-dir)")
    m = re.search(r"Could not override '([^']+)'\. No match in the defaults list", text)
    if m:
        return (f"'{m.group(1)}' is a config group this command does not use: "
                "see --help for the keys and groups it takes")
    m = re.search(r"cannot assign to field '([^']+)'", full)
    removed = [k for k in REMOVED_KEYS if m and (k == m.group(1) or k.endswith("." + m.group(1)))]
    if removed:
        return f"{removed[0]}: {REMOVED_KEYS[removed[0]]}"
    if m:
        return (f"'{m.group(1)}' is not a key of the config, so it cannot be added: check its spelling "
                "(`dsim --cfg job` prints every key and its value)")
    # a YAML file that does not parse
    m = re.search(r"(?:in|In) \"?'?([^\"'\n]+\.yaml)\"?'?, line (\d+)", full)
    if m and ("while parsing" in full or "while scanning" in full or "mapping values" in full):
        return f"{m.group(1)}, line {m.group(2)}: not valid YAML: fix the file's syntax"
    # a key that the schema does not have: on the command line, or inside a config file
    m = re.search(r"In '([^']+)': \w+ raised while composing config", text)
    key = re.search(r"full_key: (\S+)", full)
    if m and key and re.search(r"not in '?\w+'?|not in struct|Key '", full):
        if key.group(1) in REMOVED_KEYS:
            return f"{m.group(1)}.yaml: {key.group(1)}: {REMOVED_KEYS[key.group(1)]}"
        return (f"{m.group(1)}.yaml: unknown key '{key.group(1)}': check its spelling "
                "(`dsim --cfg job` prints every key and its value)")
    m = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' (?:is )?not in", full)
    if m and m.group(1) in REMOVED_KEYS:
        return f"{m.group(1)}: {REMOVED_KEYS[m.group(1)]}"
    if m and ("not in struct" in full or "Could not override" in text or "not in '" in full):
        return (f"unknown config key '{m.group(1)}': check its spelling "
                "(`dsim --cfg job` prints every key and its value)")
    if m := re.search(r"Value '(.*)' (?:of type '\w+' )?could not be converted to (\w+)", full):
        where = f"{key.group(1)}=" if key else ""
        return f"{where}{m.group(1)!s} is not a valid {m.group(2).lower()}"
    if "Primary config directory not found" in text or "not found" in text and "config" in text:
        return _first_line(exc)
    if key:
        return f"{key.group(1)}: {_first_line(exc)}"
    return _first_line(exc)


# ----------------------------------------------------------------------------- search path
def search_path_override(overrides: Sequence[str], config_dirs: Sequence[str | Path]) -> list[str]:
    """``overrides`` with the extra config folders (``--config-dir``) put on Hydra's search path.

    The command line's ``--config-dir DIR`` adds ``file://DIR`` to the search path; a user may also
    give ``hydra.searchpath=[...]``. The Compose API only takes the latter, so the folders are
    written into that override (``--config-dir`` first, as Hydra orders them).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = []
    for d in config_dirs:
        path = Path(d).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--config-dir {d}: no such folder: give a folder holding your config "
                              "files (e.g. policy/mine.yaml)")
        dirs.append(f"file://{path}")
    if not dirs:
        return list(overrides)
    out, given = [], []
    parser = OverridesParser.create()
    for line in overrides:
        if line.split("=", 1)[0].lstrip("+~") == "hydra.searchpath":
            value = parser.parse_override(line).value()
            given = list(value) if isinstance(value, list) else [str(value)]
        else:
            out.append(line)
    entries = ", ".join(f"'{e}'" for e in dirs + given)
    return [*out, f"hydra.searchpath=[{entries}]"]


@contextmanager
def _hydra_compose(config_dirs: Sequence[str | Path] = (), calibrate: bool = False):
    """Hydra's Compose API on the package's configs/; yields a ``compose(name, overrides, hydra)``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schemas(calibrate)
    errors = (HydraException, OmegaConfBaseException, ValueError, TypeError, KeyError, OSError)

    def _compose(name: str, overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
        try:
            return compose(config_name=name, return_hydra_config=return_hydra_config,
                           overrides=search_path_override(overrides, config_dirs))
        except ConfigError:
            raise
        except errors as exc:
            raise ConfigError(explain(exc)) from None
        except Exception as exc:  # e.g. a YAML error in a user's file
            raise ConfigError(explain(exc)) from None

    if GlobalHydra.instance().is_initialized():
        raise ConfigError("load_config cannot run inside a running Hydra application: "
                          "compose there with hydra.compose, or call it before hydra.main")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="dsim"):
        yield _compose


# ----------------------------------------------------------------------------- sweeps
def expand_sweep(overrides: Sequence[str]) -> list[list[str]]:
    """Every job of a multirun: the product of the swept values, as Hydra's basic sweeper orders it.

    ``overrides`` are ``key=value`` strings; a value ``a,b,c`` (or ``choice(...)``, ``range(...)``)
    is swept. Later overrides of the same key win (the command line over ``hydra.sweeper.params``).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot read the overrides: {_first_line(exc)}") from None
    final: OrderedDict[str, list[str]] = OrderedDict()
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ConfigError(f"'{o.input_line}': only lists of values can be swept "
                                  "(e.g. credibility=0.2,0.5,0.8 or credibility='range(0,1,0.25)')")
            values = [f"{key}={v}" for v in o.sweep_string_iterator()]
            if not values:
                raise ConfigError(f"'{o.input_line}': the sweep has no values")
            final[key] = values
        else:
            final[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*final.values())]


def _swept(overrides: Sequence[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot read the overrides: {_first_line(exc)}") from None
    return [o.input_line for o in parsed if o.is_sweep_override()]


def sweeper_params(cfg: DictConfig) -> list[str]:
    """The grid a composed config declares in ``hydra.sweeper.params`` (a named experiment), as
    override strings."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    out = []
    for key, value in params.items():
        if value is None or str(value).strip() == "":
            raise ConfigError(f"the sweep has no points: hydra.sweeper.params.{key} is empty")
        out.append(f"{key}={value}")
    return out


def compose_jobs(compose: Callable, name: str, jobs: list[list[str]], cls: type) -> list:
    """Compose and validate every job, composing each distinct set of config-group choices once.

    Hydra applies config-group overrides while it builds the defaults list and plain value
    overrides (``key=value``) afterwards, with ``OmegaConf.update(cfg, key, value, merge=True)``,
    whatever their order on the command line. So a job's config is the composed config of its
    group choices with its value overrides merged in the same way. Which keys are groups is read
    from the composition itself (``hydra.runtime.choices``), so groups of a user's
    ``--config-dir`` count too. Any job for which that shortcut raises is composed in full, so the
    message is the one of a plain composition; ``tests/test_config.py`` checks both give the same
    configs.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    if len(jobs) == 1:  # nothing to share: one plain composition
        return [to_run_config(compose(name, list(jobs[0])), cls)]
    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], DictConfig] = {}
    raw: dict[tuple[str, ...], dict] = {}  # each base as composed (plain, unresolved)
    groups: set[str] | None = None
    configs = []
    for job in jobs:
        try:
            parsed = parser.parse_overrides(job)
            if groups is None:
                full = compose(name, list(job), return_hydra_config=True)
                groups = set(OmegaConf.select(full, "hydra.runtime.choices") or {})
            values = [o for o in parsed if o.type == OverrideType.CHANGE and o.package is None
                      and o.key_or_group not in groups and "/" not in o.key_or_group
                      and o.key_or_group.split(".")[0] != "hydra"]
            rest = tuple(o.input_line for o in parsed if o not in values)
            if rest not in bases:
                bases[rest] = compose(name, list(rest))
                raw[rest] = OmegaConf.to_container(bases[rest], resolve=False)
            changes = [(o.key_or_group, o.value()) for o in values]
            if all(_scalar_leaf(raw[rest], key) and not isinstance(value, (dict, list))
                   for key, value in changes):
                configs.append(_with_changes(bases, raw, rest, changes, cls))
                continue
            cfg = copy.deepcopy(bases[rest])
            for key, value in changes:
                OmegaConf.update(cfg, key, value, merge=True)
            configs.append(to_run_config(cfg, cls))
            continue
        except Exception:  # noqa: BLE001 - compose in full below, for the canonical message
            pass
        configs.append(to_run_config(compose(name, list(job)), cls))
    return configs


def _scalar_leaf(tree: dict, key: str) -> bool:
    """Whether dotted ``key`` names a scalar (not a mapping or list) in the plain ``tree``."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return not isinstance(node, (dict, list))


def _with_changes(bases: dict, raw: dict, rest: tuple, changes: list, cls: type):
    """The config of ``bases[rest]`` with scalar ``changes`` (key, value) merged in as Hydra merges
    value overrides (``OmegaConf.update(..., merge=True)``), validated; the base is changed in
    place and put back (each key to its value as composed, interpolations included) instead of
    copied (a copy of the composed config took 8 ms, most of composing a 88-point sweep's jobs).
    A base that cannot be put back is dropped (composed again when next needed)."""
    cfg = bases[rest]
    try:
        for key, value in changes:
            OmegaConf.update(cfg, key, value, merge=True)
        return to_run_config(cfg, cls)
    finally:
        try:
            for key, _ in changes:
                node, parts = raw[rest], key.split(".")
                for part in parts:
                    node = node[part]
                OmegaConf.update(cfg, key, node, merge=True)
        except Exception:  # noqa: BLE001 - not restorable: forget it
            bases.pop(rest, None)
            raw.pop(rest, None)


# ----------------------------------------------------------------------------- public API
def load_config(overrides: Sequence[str] = (), *, config_name: str = "config",
                config_dirs: Sequence[str | Path] = ()) -> RunConfig:
    """The validated :class:`RunConfig` that ``dsim <overrides>`` would run.

    >>> cfg = load_config(["params=calibrated", "policy=permanent", "credibility=0.8"])

    ``overrides`` are exactly the command line's (config-group choices such as ``policy=permanent``
    and ``key=value`` pairs); ``config_dirs`` are extra config folders, as ``--config-dir`` gives.
    A mistake raises :class:`~sim.params.ConfigError` with a one-line message. Sweeps (``a,b``)
    are refused: call it once per point.
    """
    overrides = list(overrides)
    swept = _swept(overrides)
    if swept:
        raise ConfigError(f"'{swept[0]}' lists several values: load one point at a time")
    cls = RunConfig
    if config_name == "calibrate":
        from .calibrate import CalibrationConfig as cls
    elif config_name == "forecast":
        from .forecast import ForecastConfig as cls
    with _hydra_compose(config_dirs, calibrate=config_name in ("calibrate", "forecast")) as compose:
        return to_run_config(compose(config_name, overrides), cls)
