"""`dsim`: the thin command line. Hydra turns ``configs/`` into a RunConfig; the library does the rest.

Before Hydra starts, every job's config is composed and validated (:func:`preflight`), so a
misspelt key, an unknown config-group option or an out-of-range value stops the command with one
line on stderr and exit code 2, before anything is written.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from .params import ConfigError, RunConfig

log = logging.getLogger("dsim")



def _schema_node(cls: type = RunConfig) -> DictConfig:
    """RunConfig as an OmegaConf node that the YAML files may merge into.

    The dataclasses are frozen (results must not change them), which OmegaConf turns into read-only
    nodes; composition needs to write, so the flag is lifted on the schema node only. The frozen
    objects come back in :func:`to_run_config`.
    """
    node = OmegaConf.structured(cls)

    def unlock(n):
        n._set_flag("readonly", None)
        for key in list(n.keys()) if OmegaConf.is_dict(n) else range(len(n)):
            child = n._get_node(key)
            if OmegaConf.is_config(child):
                unlock(child)

    unlock(node)
    return node


ConfigStore.instance().store(name="run_schema", node=_schema_node())


def _register_calibration_schema() -> None:
    from .calibrate import CalibrationConfig

    ConfigStore.instance().store(name="calibrate_schema", node=_schema_node(CalibrationConfig))

# Options of Hydra's command line that take a value (their value is not an override).
_VALUE_FLAGS = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
                "--experimental-rerun"}
_SKIP_FLAGS = {"-h", "--help", "--hydra-help", "--version", "--shell-completion", "-sc",
               "--info", "-i", "--experimental-rerun"}


def use_file_backend() -> None:
    """Command lines draw into files: matplotlib's Agg backend (the library leaves the backend to
    the caller, so that notebooks keep their inline figures)."""
    import matplotlib

    matplotlib.use("Agg")


def config_dir() -> Path:
    """The ``configs/`` folder: bundled in the wheel as ``sim/configs``, or the repository's own."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError("cannot find the configs/ folder: reinstall the package (uv sync)")


def to_run_config(cfg: DictConfig, cls: type = RunConfig):
    """The composed Hydra config as a validated, frozen ``cls`` object (raises ConfigError)."""
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if "hydra" in cfg else cfg
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as exc:  # OmegaConf may wrap what __post_init__ raised
        err = exc
        while err is not None and not isinstance(err, ConfigError):
            err = err.__cause__ or err.__context__
        if isinstance(err, ConfigError):
            raise err from None
        raise ConfigError(_first_line(exc)) from None
    if not isinstance(obj, cls):
        raise ConfigError(f"the config is not a {cls.__name__}: start from the files in configs/")
    return obj


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def explain(exc: BaseException) -> str:
    """One line for a Hydra/OmegaConf composition error, naming the problem and the fix."""
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and "Error merging override" in text:
        override = text.split("Error merging override", 1)[1].strip()
        if "read-only" in str(cause):
            return (f"{override}: list items cannot be overridden one by one; give the whole list, "
                    "e.g. 'scenario.exercises=[{name: spring, month: 3, day: 10, weeks: 2}]'")
        return f"{override}: {_first_line(cause)}"
    m = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if m:
        group, option = m.groups()
        options = sorted(re.findall(r"^\t(\S+)$", text, flags=re.M))
        known = f": choose one of {', '.join(options)}" if options else ""
        return f"{group}={option} is not a known {group}{known}"
    m = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' not in", text) \
        or re.search(r"Key '([^']+)' is not in struct", text)
    if m and ("not in struct" in text or "Could not override" in text):
        key = m.group(1)
        return (f"unknown config key '{key}': check its spelling "
                f"(see `dsim --cfg job` for every key and its value)")
    m = re.search(r"full_key: (\S+)", text)
    if m:
        return f"{m.group(1)}: {_first_line(exc)}"
    return _first_line(exc)


def _split_argv(argv: list[str]) -> tuple[list[str], dict[str, str], bool]:
    overrides, options, multirun = [], {}, False
    it = iter(argv)
    for arg in it:
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in _VALUE_FLAGS:
            options[arg] = next(it, "")
        elif "=" in arg and arg.split("=", 1)[0] in _VALUE_FLAGS:
            k, v = arg.split("=", 1)
            options[k] = v
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides, options, multirun


def job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists of every job the command would run (sweeps expanded)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    if not multirun:
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps:
            raise ConfigError(f"'{sweeps[0]}' lists several values: add -m to run a sweep")
        return [overrides]
    batches = BasicSweeper.split_arguments(parsed, None)
    jobs = [list(job) for batch in batches for job in batch]
    if not jobs:
        raise ConfigError("the sweep has no points: give every swept key at least one value")
    return jobs


def _config_sweeps(compose, name: str, overrides: list[str], sweeper: list[str]) -> list[str]:
    """The grid that the composed config declares in ``hydra.sweeper.params`` (for keys the command
    line does not sweep itself), as override strings."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot read the overrides: {_first_line(exc)}") from None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    given = {o.key_or_group for o in parsed}
    try:
        cfg = compose(config_name=name, overrides=fixed + sweeper, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain(exc)) from None
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    out = []
    for key, value in params.items():
        if key in given:
            continue
        if value is None or str(value).strip() == "":
            raise ConfigError(f"the sweep has no points: hydra.sweeper.params.{key} is empty")
        out.append(f"{key}={value}")
    return out


def _group_names() -> set[str]:
    """The config groups (sub-folders of ``configs/``), e.g. policy, scenario, params, experiment."""
    return {p.name for p in config_dir().iterdir() if p.is_dir()} | {"hydra"}


def _compose_jobs(compose, name: str, jobs: list[list[str]], cls: type) -> list:
    """Compose and validate every job, composing each distinct set of config-group choices once.

    Hydra applies config-group overrides while it builds the defaults list and plain value
    overrides (``key=value``) afterwards, whatever their order on the command line. So a job's
    config is the composed config of its group choices with its value overrides merged in, which is
    what this does with ``OmegaConf.update`` (as Hydra itself does). A 44-point grid over 4
    postures then needs 4 compositions instead of 44. Any job for which that shortcut raises is
    composed in full, so errors read exactly as Hydra's.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    parser = OverridesParser.create()
    groups = _group_names()
    bases: dict[tuple[str, ...], DictConfig] = {}
    configs = []
    for job in jobs:
        try:
            parsed = parser.parse_overrides(job)
            values = [o for o in parsed if o.type == OverrideType.CHANGE and o.package is None
                      and o.key_or_group.split(".")[0] not in groups and "/" not in o.key_or_group
                      and o.key_or_group.split(".")[0] != "hydra"]
            rest = tuple(o.input_line for o in parsed if o not in values)
            if rest not in bases:
                bases[rest] = compose(config_name=name, overrides=list(rest))
            cfg = copy.deepcopy(bases[rest])
            for o in values:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
            configs.append(to_run_config(cfg, cls))
            continue
        except ConfigError:
            pass  # compose in full below, so that the message is the one of a plain composition
        except (HydraException, OmegaConfBaseException, ValueError, TypeError, KeyError):
            pass
        try:
            cfg = compose(config_name=name, overrides=job)
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(explain(exc)) from None
        configs.append(to_run_config(cfg, cls))
    return configs


def preflight(argv: list[str], config_name: str = "config", cls: type = RunConfig) -> list:
    """Compose and validate every job of the command line; raise ConfigError on the first mistake."""
    if any(a in _SKIP_FLAGS or a.split("=", 1)[0] in _SKIP_FLAGS for a in argv):
        return []
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides, options, multirun = _split_argv(argv)
    name = options.get("-cn") or options.get("--config-name") or config_name
    user_overrides = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    configs = []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="dsim"):
        if multirun:  # a named experiment may define its grid in hydra.sweeper.params
            sweeper = [o for o in overrides if o.startswith("hydra.sweeper.")]
            user_overrides = user_overrides + _config_sweeps(compose, name, user_overrides, sweeper)
        try:
            jobs = job_overrides(user_overrides, multirun)
        except ConfigError:
            raise
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(f"cannot read the overrides: {_first_line(exc)}") from None
        configs = _compose_jobs(compose, name, jobs, cls)
    return configs


def run_job(cfg: DictConfig) -> dict:
    """Hydra task: run one configuration and write its files into Hydra's output folder."""
    from hydra.core.hydra_config import HydraConfig

    use_file_backend()  # launcher workers (joblib, Ray) start without the command line's setting
    from .model import run
    from .outputs import write_run

    try:
        config = to_run_config(cfg)
    except ConfigError as exc:
        print(f"dsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    if hc.mode is not None and hc.mode.name == "MULTIRUN":
        from .sweep import point_complete

        if point_complete(out_dir, config.to_dict()):  # resume: this point is already done
            log.info("skipping complete point %s", out_dir.name)
            return json.loads((out_dir / "summary.json").read_text())
    results = run(config, progress=config.progress)
    summary = write_run(results, out_dir)
    m = summary["metrics"]
    log.info(
        "%s, credibility %.2f: %.1f launch days/yr (95%% CI %.1f-%.1f), P(clash) %.3f -> %s",
        config.policy.name.value, config.credibility, m["dprk_launch_days_per_year"]["mean"],
        *(m["dprk_launch_days_per_year"]["ci95"] if config.replications > 1 else (float("nan"),) * 2),
        m["p_kinetic_clash"]["estimate"], out_dir,
    )
    return summary


def _launch(program: str, config_name: str, cls: type, task) -> None:
    """Validate the command line (one line and exit 2 on a mistake), then hand it to Hydra."""
    use_file_backend()
    try:
        validated = preflight(sys.argv[1:], config_name=config_name, cls=cls)
        cdir = config_dir()
    except ConfigError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    import hydra

    if validated:
        _skip_second_validation()

    hydra.main(config_path=str(cdir), config_name=config_name, version_base="1.3")(task)()


def _skip_second_validation() -> None:
    """Let Hydra's basic sweeper launch without composing every job a second time.

    ``BasicSweeper.validate_batch_is_legal`` composes every job of a sweep in the parent process
    before launching, which :func:`preflight` has just done (with one-line errors): about 10 s for
    the 44-point experiment. Each job is still composed by its launcher, as always.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    BasicSweeper.validate_batch_is_legal = _already_validated


def _already_validated(self, batch) -> None:  # noqa: ARG001 - replaces BasicSweeper's method
    """Every job was composed and validated by :func:`preflight`."""


def main() -> None:
    """Console entry point of ``dsim``."""
    _launch("dsim", "config", RunConfig, _task)


def _task(cfg: DictConfig) -> None:
    run_job(cfg)


def calibrate_main() -> None:
    """Console entry point of ``dsim-calibrate`` (config: configs/calibrate.yaml)."""
    from .calibrate import CalibrationConfig

    _register_calibration_schema()
    _launch("dsim-calibrate", "calibrate", CalibrationConfig, _calibrate_task)


def _calibrate_task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from .calibrate import CalibrationConfig
    from .calibration_report import run_calibration
    from .events import EventDataError

    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        cc = to_run_config(cfg, CalibrationConfig)
        run_calibration(cc, Path(HydraConfig.get().runtime.output_dir), config_dir())
    except (ConfigError, EventDataError) as exc:
        print(f"dsim-calibrate: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
