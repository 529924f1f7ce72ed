"""`dsim` and `dsim-calibrate`: the thin command line. Hydra turns ``configs/`` into a RunConfig.

Before Hydra starts, :func:`preflight` composes and validates every job of the command line with
Hydra's Compose API (:mod:`sim.config`), so a misspelt key, an unknown config-group option, an
out-of-range value, an output folder that cannot be written or a run that cannot fit in memory
stops the command with one line on stderr and exit code 2, before anything is written. Then
Hydra runs as usual (``hydra.main``), with dsim's own sweeper (``hydra_plugins/dsim_sweeper``)
for multiruns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .config import (
    _hydra_compose,
    _swept,
    compose_jobs,
    config_dir,
    expand_sweep,
    explain,
    sweeper_params,
    to_run_config,
)
from .params import ConfigError, RunConfig

log = logging.getLogger("dsim")

__all__ = ["calibrate_main", "explain", "main", "preflight", "run_job", "to_run_config"]


def use_file_backend() -> None:
    """Command lines draw into files: matplotlib's Agg backend (the library leaves the backend to
    the caller, so that notebooks keep their inline figures)."""
    import matplotlib

    matplotlib.use("Agg")


# ----------------------------------------------------------------------------- the command line
# Hydra's options (hydra 1.3, `--hydra-help`): those that take a value, and those that only print.
_VALUE_FLAGS = {"-cp": "config_path", "--config-path": "config_path", "-cn": "config_name",
                "--config-name": "config_name", "-cd": "config_dir", "--config-dir": "config_dir",
                "-c": "cfg", "--cfg": "cfg", "-p": "package", "--package": "package",
                "--experimental-rerun": "rerun"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_PRINT_ONLY = {"--hydra-help", "--version", "-sc", "--shell-completion", "-i", "--info",
               "--experimental-rerun"}
_SWITCHES = {"-m", "--multirun", "-r", "--run", "--resolve", "-h", "--help"}


@dataclass
class CommandLine:
    """What the user asked for: the overrides, and Hydra's options that matter before it starts."""

    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    config_dirs: list[str] = field(default_factory=list)
    config_name: str | None = None
    config_path: str | None = None
    cfg: str | None = None  # --cfg job|hydra|all: Hydra prints the config and runs nothing
    help: bool = False
    print_only: bool = False  # --hydra-help, --version, --info, ...: Hydra answers, nothing runs
    options: list[str] = field(default_factory=list)  # Hydra's options as given, with their values

    def hydra_argv(self) -> list[str]:
        """The command line in the order Hydra's parser needs: options first, then overrides
        (Hydra refuses overrides on both sides of an option such as ``--cfg job``)."""
        return [*self.options, *self.overrides]


def parse_command_line(argv: list[str], program: str = "dsim") -> CommandLine:
    """Split ``argv`` into overrides and Hydra's options (raises ConfigError on a bad option)."""
    cl = CommandLine()
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, inline = arg.partition("=") if arg.startswith("-") else (arg, "", "")
        if arg.startswith("-"):
            cl.options.append(arg)
        if flag in ("-m", "--multirun"):
            cl.multirun = True
        elif flag in ("-h", "--help"):
            cl.help = True
        elif flag in ("-i", "--info"):
            cl.print_only = True
            if not eq and i + 1 < len(argv) and argv[i + 1] in _INFO_TOPICS:
                i += 1
                cl.options.append(argv[i])
        elif flag in _PRINT_ONLY:
            cl.print_only = True
        elif flag in _VALUE_FLAGS:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
                cl.options.append(value)
            else:
                raise ConfigError(f"{flag} needs a value (see {program} --help)")
            name = _VALUE_FLAGS[flag]
            if name == "config_dir":
                cl.config_dirs.append(value)
            elif name == "cfg":
                if value not in ("job", "hydra", "all"):
                    raise ConfigError(f"{flag} {value}: choose job, hydra or all "
                                      f"(e.g. {program} --cfg job prints the composed config)")
                cl.cfg = value
            elif name in ("config_name", "config_path"):
                setattr(cl, name, value)
        elif flag in _SWITCHES:
            pass
        elif arg.startswith("-"):
            raise ConfigError(f"unknown option {arg}: see {program} --help")
        else:
            cl.overrides.append(arg)
        i += 1
    modes = [name for name, on in (("-m", cl.multirun), ("--cfg", cl.cfg is not None),
                                   ("--info", "--info" in cl.options or "-i" in cl.options),
                                   ("--shell-completion", any(o in ("-sc", "--shell-completion")
                                                              for o in cl.options)))
             if on]
    if len(modes) > 1:
        raise ConfigError(f"{' and '.join(modes)} cannot be combined: give one of them "
                          f"(e.g. {program} --cfg job prints the config of one point)")
    if cl.config_path is not None:
        raise ConfigError(f"--config-path is not supported by {program}: add your config folder with "
                          "--config-dir DIR (its files extend the package's configs/)")
    return cl


# ----------------------------------------------------------------------------- checks before Hydra
def _check_output_dir(path: str, key: str) -> None:
    """The output folder can be made and written (tried with a throw-away folder), or one line."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{key}={path}: that path is a file, not a folder: choose another {key}")
    anchor = target
    while not anchor.exists():
        anchor = anchor.parent
    if not anchor.is_dir():
        raise ConfigError(f"{key}={path}: cannot make the output folder there ({anchor} is not a "
                          f"folder): choose another {key}")
    try:
        with tempfile.TemporaryDirectory(prefix=".dsim-write-check-", dir=anchor):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}={path}: cannot write in {anchor} ({exc.strerror or exc}): "
                          f"choose a writable {key}") from None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where known, else the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether work may go to processes forked from this one: on Linux. macOS has fork too, but
    its system libraries (Accelerate, the Objective-C runtime) are not safe in a forked child,
    which is why Python starts processes there with spawn by default."""
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def sweep_workers(setting) -> int:
    """The processes dsim's sweeper runs a sweep's jobs in with Hydra's basic launcher: the
    ``hydra.sweeper.workers`` setting, or one per usable core when it is null (raises ConfigError
    on anything but a whole number >= 1)."""
    if setting is None:
        return usable_cores()
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError(f"hydra.sweeper.workers={setting}: give the number of processes that run "
                          "the sweep's jobs, a whole number >= 1 (or null for one per core)")
    return setting


def _check_launcher(hydra_cfg: DictConfig) -> int:
    """Settings of the launcher (and of dsim's sweeper) that would fail only after the sweep folder
    exists; returns the number of jobs run at once."""
    target = str(OmegaConf.select(hydra_cfg, "hydra.launcher._target_") or "")
    if "joblib" in target.lower():
        n_jobs = OmegaConf.select(hydra_cfg, "hydra.launcher.n_jobs")
        if n_jobs is not None and (not isinstance(n_jobs, int) or n_jobs == 0):
            raise ConfigError(f"hydra.launcher.n_jobs={n_jobs}: give the number of parallel points, "
                              "a whole number >= 1 (or -1 for one per core)")
        if n_jobs is None or n_jobs < 0:
            return os.cpu_count() or 1
        return n_jobs
    sweeper = str(OmegaConf.select(hydra_cfg, "hydra.sweeper._target_") or "")
    if "dsim_sweeper" in sweeper:
        workers = sweep_workers(OmegaConf.select(hydra_cfg, "hydra.sweeper.workers"))
        if target.endswith("BasicLauncher") and can_fork():  # dsim's sweeper forks its jobs
            return workers
    return 1


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (MemAvailable), if known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(configs: list, at_once: int) -> None:
    from .memory import estimated_memory_bytes

    if not configs or not isinstance(configs[0], RunConfig):
        return
    need = max(estimated_memory_bytes(c) for c in configs) * min(at_once, len(configs))
    have = available_memory()
    if have is not None and need > have:
        biggest = max(configs, key=estimated_memory_bytes)
        together = min(at_once, len(configs))
        raise ConfigError(
            f"replications={biggest.replications} over {biggest.scenario.weeks} weeks needs about "
            f"{need / 2**30:.1f} GiB of memory{f' ({together} points at once)' if together > 1 else ''} "
            f"and this machine has {have / 2**30:.1f} GiB available: lower replications, or split the "
            "run over seeds")


def preflight(argv: list[str], config_name: str = "config", cls: type = RunConfig,
              check: Callable | None = None, program: str = "dsim") -> list:
    """Compose and validate every job of the command line; raise ConfigError on the first mistake.

    Returns the validated configs (one per job; empty when Hydra only prints, e.g. --hydra-help).
    ``check(config)`` is called on each (dsim-calibrate checks its event file there).
    """
    cl = parse_command_line(argv, program)
    if cl.help or cl.print_only:
        return []
    name = cl.config_name or config_name
    with _hydra_compose(cl.config_dirs, calibrate=config_name in ("calibrate", "forecast")) as compose:
        swept = _swept(cl.overrides)
        fixed = [o for o in cl.overrides if o not in swept]
        base = compose(name, fixed, return_hydra_config=True)
        grid = sweeper_params(base)
        if cl.multirun:
            jobs = expand_sweep(grid + cl.overrides)
        else:
            if swept:
                raise ConfigError(f"'{swept[0]}' lists several values: add -m to run a sweep")
            if grid:
                choice = OmegaConf.select(base, "hydra.runtime.choices.experiment")
                what = f"experiment={choice}" if choice else "the config"
                raise ConfigError(f"{what} defines a sweep ({'; '.join(grid)}): add -m to run it")
            jobs = [cl.overrides]
        if not jobs:
            raise ConfigError("the sweep has no points: give every swept key at least one value")
        # one run: the composition above is its config (Hydra's node aside), not composed again
        configs = compose_jobs(compose, name, jobs, cls) if cl.multirun else [to_run_config(base, cls)]
    if cl.multirun and cls is RunConfig:  # the sweeper batches points from these (no recomposing)
        _COMPOSED.clear()
        _COMPOSED.update(zip((task_overrides(job) for job in jobs), configs, strict=True))
    if cl.cfg is not None:  # Hydra prints the config; nothing is run or written
        return configs
    at_once = _check_launcher(base) if cl.multirun else 1
    key = "hydra.sweep.dir" if cl.multirun else "hydra.run.dir"
    _check_output_dir(str(OmegaConf.select(base, key)), key)
    _check_memory(configs, at_once)
    if check is not None:
        for c in configs:
            check(c)
    return configs


# ----------------------------------------------------------------------------- composed points
# The configs preflight composed for the points of this process's sweep, by their task overrides:
# dsim's sweeper decides from them which points run together as one batched model
# (hydra_plugins/dsim_sweeper), without composing every point again (about 0.2 s each).
_COMPOSED: dict[tuple[str, ...], RunConfig] = {}


def task_overrides(job: list[str]) -> tuple[str, ...]:
    """The overrides of ``job`` that are not Hydra's own, as given: what Hydra records as the job's
    task overrides (``.hydra/overrides.yaml``). Hydra's test (``Override.is_hydra_override``: the
    key starts with ``hydra.`` or ``hydra/``) on each line's key, read without Hydra's parser
    (milliseconds a line; the lines come from :func:`sim.config.expand_sweep`, which parsed them)."""
    return tuple(line for line in job if not _override_key(line).startswith(("hydra.", "hydra/")))


def composed_configs(jobs: list[list[str]]) -> list[RunConfig] | None:
    """The validated configs of ``jobs`` that :func:`preflight` composed in this process, or None
    if it did not compose all of them (the sweeper then composes them itself)."""
    keys = [task_overrides(job) for job in jobs]
    if not keys or not all(k in _COMPOSED for k in keys):
        return None
    return [_COMPOSED[k] for k in keys]


# ----------------------------------------------------------------------------- help
def _documented_keys(path: Path) -> list[tuple[str, str, str]]:
    """Top-level ``key: value`` lines of a YAML config with the comment just above or after them."""
    out, comment = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
            continue
        m = re.match(r"^([A-Za-z_]\w*):\s*([^#]*?)\s*(?:#\s*(.*))?$", line)
        if m and m.group(1) not in ("defaults", "hydra"):
            key, value, inline = m.groups()
            text = inline or " ".join(comment)
            out.append((key, value or "(see the file)", text))
        if not line.startswith(" "):
            comment = []
    return out


def _group_options(dirs: list[Path]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for d in dirs:
        for group in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            if group.name == "hydra":
                continue
            groups.setdefault(group.name, set()).update(f.stem for f in group.glob("*.yaml"))
    return {g: sorted(o) for g, o in sorted(groups.items())}


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
    return ""


def _columns(rows: list[tuple[str, str]]) -> list[str]:
    width = min(max(len(a) for a, _ in rows), 30)
    return [f"  {a:<{width}}  {b}" for a, b in rows]


def dsim_help(extra_dirs: list[str] = ()) -> str:
    """The text of ``dsim --help``, from the config files themselves."""
    cdir = config_dir()
    dirs = [cdir, *(Path(d) for d in extra_dirs if Path(d).is_dir())]
    defaults = {"policy": "rotational", "scenario": "baseline", "params": "default"}
    lines = [
        "usage: dsim [-m] [GROUP=OPTION ...] [KEY=VALUE ...] [--config-dir DIR] [--cfg job]",
        "",
        "Simulates DPRK, US, ROK and Japanese signalling week by week: R replications of one",
        "scenario under one US deployment posture, and writes timeseries.parquet,",
        "replications.parquet, summary.json and escalation.png into outputs/DATE/TIME/.",
        "",
        "Config groups (GROUP=OPTION; the default in brackets):",
    ]
    for group, options in _group_options(dirs).items():
        if group == "experiment":
            continue
        shown = [f"[{o}]" if defaults.get(group) == o else o for o in options]
        lines.append(f"  {group:<10} {', '.join(shown)}")
    lines += ["", "Settings (KEY=VALUE):"]
    rows = [(f"{key}={value}", text) for key, value, text in _documented_keys(cdir / "config.yaml")]
    rows += [("params.NAME=...", "a behavioural parameter (docs/model.md lists each with its source)"),
             ("scenario.NAME=...", "start_date, weeks, dprk_prior, initial assurance, calendar, ..."),
             ("policy.NAME=...", "the posture's cadence and costs")]
    lines += _columns(rows)
    lines += [
        "  `dsim --cfg job` prints every key with its value; a misspelt key stops with one line.",
        "",
        "Sweeps (one folder per point in multirun/DATE/TIME/, then sweep.parquet, comparison.csv",
        "and figures in that folder):",
        "  dsim -m policy=rotational,permanent credibility=0.2,0.5,0.8",
        "  hydra.sweeper.workers=N                           run the jobs in N processes (default:",
        "      one per core; 1: one after another)",
        "  hydra/launcher=joblib hydra.launcher.n_jobs=2     points in joblib's parallel processes",
        "  hydra.sweep.dir=DIR                               resume: finished points are skipped",
        "  hydra.sweeper.batched=false                       one job per point (by default, points",
        "      that differ only in numeric params, credibility or scenario.dprk_prior run as the",
        "      blocks of one model: the same files, faster)",
        "",
        "Named experiments (run with -m experiment=NAME):",
    ]
    for d in dirs:
        for f in sorted((d / "experiment").glob("*.yaml")) if (d / "experiment").is_dir() else []:
            lines.append(f"  {f.stem:<28} {_first_comment(f)}")
    lines += [
        "",
        "Your own configs: put e.g. policy/mine.yaml in a folder DIR and add --config-dir DIR.",
        "",
        "Other commands:",
        "  dsim-report SWEEP_DIR     redo a sweep's tables and figures",
        "  dsim-calibrate            fit the parameters to data/events.csv (dsim-calibrate --help)",
        "  dsim --hydra-help         Hydra's own options",
    ]
    return "\n".join(lines)


def calibrate_help() -> str:
    """The text of ``dsim-calibrate --help``: its own keys, from configs/calibrate.yaml."""
    lines = [
        "usage: dsim-calibrate [KEY=VALUE ...] [policy=OPTION]",
        "",
        "Fits the model's free parameters to the documented record (data/events.csv) and writes",
        "calibration.json, fit.png, seasonality.png and the fitted configs into",
        "outputs/calibration/DATE/TIME/.",
        "",
        "Settings (KEY=VALUE):",
    ]
    lines += _columns([(f"{key}={value}", text)
                       for key, value, text in _documented_keys(config_dir() / "calibrate.yaml")])
    options = _group_options([config_dir()]).get("policy", [])
    lines += ["", "Config group (GROUP=OPTION):",
              *_columns([("policy=OPTION", f"the posture's cadence and costs: {', '.join(options)} "
                          "(default reactive; the replay's posture periods set which is in force)")])]
    lines += ["", "install=true also installs the fitted configs into configs/, so that params=calibrated",
              "and scenario=historical use the new fit."]
    lines += ["", "`dsim-calibrate --cfg job` prints every key with its value."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Hydra tasks
# Set (through the job's ``hydra.job.env_set``) for a job that runs a group of points as one
# batched model: the path of the group's plan, written by dsim's sweeper.
BATCH_PLAN_ENV = "DSIM_BATCH_PLAN"


def wants_figure(config: RunConfig, in_sweep: bool) -> bool:
    """Whether a run draws its ``escalation.png``: the ``run_figure`` setting, or by default yes
    for a single run and no for each point of a sweep (a sweep draws its own figures)."""
    choice = getattr(config, "run_figure", None)
    return (not in_sweep) if choice is None else bool(choice)


def run_job(cfg: DictConfig) -> dict:
    """Hydra task: run one configuration (or, in a sweep, one batched group of points) and write
    its files into Hydra's output folder."""
    from hydra.core.hydra_config import HydraConfig

    from .progress import watch_parent

    use_file_backend()  # launcher workers (joblib, Ray) start without the command line's setting
    watch_parent()  # a joblib worker ends when the sweep's main process is gone
    try:
        config = to_run_config(cfg)
    except ConfigError as exc:
        _fail("dsim", str(exc), 2)
    hc = HydraConfig.get()
    multirun = hc.mode is not None and hc.mode.name == "MULTIRUN"
    plan = os.environ.get(BATCH_PLAN_ENV) if multirun else None
    if plan:
        try:
            return execute_group(Path(plan), cfg, config)
        except ConfigError as exc:
            _fail("dsim", str(exc), 2)
    return execute(config, Path(hc.runtime.output_dir), resume=multirun)


def execute(config: RunConfig, out_dir: Path, resume: bool = False, figure: bool | None = None) -> dict:
    """Run ``config`` and write its files into ``out_dir``; with ``resume`` (a sweep's point), a
    complete point already there (same results-changing settings, files intact) is kept.
    ``figure``: draw ``escalation.png`` (default: :func:`wants_figure`). A folder that cannot be
    written (read-only, disk full) ends the command with one line and exit code 1."""
    from .model import run

    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    figure = wants_figure(config, in_sweep=resume) if figure is None else figure
    if resume:
        from .sweep import point_complete

        if point_complete(out_dir, config.identity(), figure):
            log.info("skipping complete point %s", out_dir.name)
            return json.loads((out_dir / "summary.json").read_text())
    # in a sweep the main process shows one bar over the points (sim.progress.SweepProgress)
    results = run(config, progress=config.progress and not resume)
    return _write_point(results, out_dir, figure)


def _write_point(results, out_dir: Path, figure: bool) -> dict:
    """Write one run's files (:func:`sim.outputs.write_run`) and log its headline."""
    from .outputs import write_run

    config = results.config
    try:
        summary = write_run(results, out_dir, figure=figure)
    except OSError as exc:
        _fail("dsim", f"cannot write the run's files into {out_dir}: {exc.strerror or exc}: "
              "free some space or choose another folder with hydra.run.dir=...", 1)
    m = summary["metrics"]
    posture = ("postures by period" if config.scenario.posture_periods else config.policy.name.value)
    log.info(
        "%s, credibility %.2f: %.1f launch days/yr (95%% CI %.1f-%.1f), P(clash) %.3f -> %s",
        posture, config.credibility, m["dprk_launch_days_per_year"]["mean"],
        *(m["dprk_launch_days_per_year"]["ci95"] if config.replications > 1 else (float("nan"),) * 2),
        m["p_kinetic_clash"]["estimate"], out_dir,
    )
    return summary


@dataclass
class _Member:
    """One point of a batched group: where it goes and what it is."""

    index: int
    out_dir: Path
    config: RunConfig
    figure: bool


def execute_group(plan_path: Path, cfg: DictConfig, config: RunConfig) -> dict:
    """Run a group of sweep points as the blocks of one batched model (:func:`sim.batching.run_points`)
    and write every point's folder as its own job would have.

    The job is the group's first point (Hydra made its folder, ``.hydra/`` and log); the plan,
    written by dsim's sweeper, lists every point of the group: its index in the sweep, task
    overrides, the SHA-256 of its composed config and the settings in which it differs from the
    first point. Each other point gets what Hydra writes for a job (``.hydra/config.yaml``,
    ``hydra.yaml``, ``overrides.yaml`` and its log file), built from this job's Hydra config with
    that point's overrides, output folder and job number. Complete points are skipped as in
    :func:`execute`; the others run together, and each is written with :func:`sim.outputs.write_run`.
    Returns the first point's summary.
    """
    from hydra.core.hydra_config import HydraConfig

    from .batching import config_digest, run_points
    from .sweep import point_complete

    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        plan = json.loads(plan_path.read_text())
        points = plan["points"]
        sweep_dir = Path(plan["sweep_dir"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the batch plan {plan_path} ({type(exc).__name__}): rerun the "
                          "sweep (with hydra.sweeper.batched=false to run one job per point)") from None
    if config_digest(config) != points[0]["digest"]:
        raise ConfigError(f"the batch plan {plan_path} is not this job's (its first point has other "
                          "settings): rerun the sweep")
    leader_dir = Path(HydraConfig.get().runtime.output_dir)
    pages = _MemberPages(HydraConfig.instance().cfg, cfg, config, leader_dir, sweep_dir)
    if pages.output_dir(points[0]) != leader_dir:
        raise ConfigError(f"the batch plan {plan_path} puts this job in {pages.output_dir(points[0])}, "
                          f"Hydra in {leader_dir}: rerun with hydra.sweeper.batched=false")
    members = [_Member(points[0]["index"], leader_dir, config, wants_figure(config, in_sweep=True))]
    for point in points[1:]:
        member_config, out_dir = pages.write(point)
        if config_digest(member_config) != point["digest"]:
            raise ConfigError(f"point {point['overrides']} of the batch plan {plan_path} does not "
                              "compose to the config it was planned with: rerun the sweep")
        members.append(_Member(point["index"], out_dir, member_config,
                               wants_figure(member_config, in_sweep=True)))
    pending = []
    for m in members:
        if point_complete(m.out_dir, m.config.identity(), m.figure):
            with _point_log(leader_dir, m.out_dir):
                log.info("skipping complete point %s", m.out_dir.name)
        else:
            pending.append(m)
    if pending:
        log.info("running %d points as one batched model (%d replications each)", len(pending),
                 config.replications)
        results = run_points([m.config for m in pending])
        for m, res in zip(pending, results, strict=True):
            with _point_log(leader_dir, m.out_dir):
                _write_point(res, m.out_dir, m.figure)
                if m.out_dir != leader_dir:  # Hydra's callback says so for the job's own point
                    log.info("point finished: %s", pages.dirnames[m.index])
    return json.loads((leader_dir / "summary.json").read_text())


class _MemberPages:
    """The files Hydra writes for a job (``.hydra/`` and the log), made for the other points of a
    batched group from the group job's own records: its Hydra config (``hydra_root``:
    HydraConfig's node) and task config ``task_cfg``, as plain containers. A point's records are
    the job's with the point's overrides, ``override_dirname`` (Hydra's
    ``get_overrides_dirname``), job number, output folder and settings, dumped as Hydra dumps them
    (``OmegaConf.to_yaml``: PyYAML with OmegaConf's dumper)."""

    def __init__(self, hydra_root: DictConfig, task_cfg: DictConfig, leader: RunConfig,
                 leader_dir: Path, sweep_dir: Path) -> None:
        self.hydra = OmegaConf.to_container(hydra_root, resolve=False, enum_to_str=True)
        self.task = OmegaConf.to_container(task_cfg, resolve=False, enum_to_str=True)
        self.leader, self.leader_dir, self.sweep_dir = leader, leader_dir, sweep_dir
        self.dirnames: dict[int, str] = {}
        h = self.hydra["hydra"]
        self._leader_job = (h["job"]["num"], str(h["job"]["id"]))
        # the batch is this job's business: the other points' records do not mention it
        h["job"]["env_set"].pop(BATCH_PLAN_ENV, None)
        h["overrides"]["hydra"] = [o for o in h["overrides"]["hydra"] if BATCH_PLAN_ENV not in o]
        self._leader_task = {path: _get(self.task, path) for path in _paths(self.task)}
        self._changed: set[str] = set()
        self._texts: dict[str, str] = {}

    def _yaml(self, node) -> str:
        """:func:`_to_yaml` of ``node``, each part re-emitted only when it differs from what an
        earlier point wrote (:func:`_to_yaml_in_parts`): the points of a group share most of
        their records."""
        return _to_yaml_in_parts(node, self._texts)

    def _set_job(self, point: dict) -> None:
        job = self.hydra["hydra"]["job"]
        dirname = _override_dirname(point["overrides"], job["config"]["override_dirname"])
        self.hydra["hydra"]["overrides"]["task"] = list(point["overrides"])
        job["override_dirname"] = dirname
        job["num"] = point["index"]
        num, job_id = self._leader_job
        job["id"] = (f"{job_id[:-len(str(num))]}{point['index']}" if job_id.endswith(f"_{num}")
                     else str(point["index"]))
        self.dirnames[point["index"]] = dirname

    def output_dir(self, point: dict) -> Path:
        """The folder of ``point``: ``hydra.sweep.dir``/``hydra.sweep.subdir``, as Hydra makes it."""
        self._set_job(point)
        subdir = self.hydra["hydra"]["sweep"]["subdir"]
        if subdir == "${hydra.job.override_dirname}":
            subdir = self.hydra["hydra"]["job"]["override_dirname"]
        else:  # resolved by OmegaConf against this point's job
            subdir = OmegaConf.select(OmegaConf.create(self.hydra), "hydra.sweep.subdir")
        return Path(os.path.abspath(os.path.join(str(self.sweep_dir), str(subdir))))

    def write(self, point: dict) -> tuple[RunConfig, Path]:
        """Make ``point``'s folder with Hydra's records of its job and its (empty) log; return its
        config (the first point's with this point's settings) and folder."""
        from .batching import with_values

        out_dir = self.output_dir(point)
        values = point["values"]
        for path in self._changed - set(values):  # back to the first point's value
            _set(self.task, path, self._leader_task[path])
        for path, value in values.items():
            _set(self.task, path, value)
        self._changed = set(values)
        self.hydra["hydra"]["runtime"]["output_dir"] = str(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        subdir = self.hydra["hydra"]["output_subdir"]
        if subdir is not None:
            records = out_dir / str(subdir)
            records.mkdir(parents=True, exist_ok=True)
            for name, node in (("config.yaml", self.task), ("hydra.yaml", self.hydra),
                               ("overrides.yaml", self.hydra["hydra"]["overrides"]["task"])):
                (records / name).write_text(self._yaml(node), encoding="utf-8")
        with _point_log(self.leader_dir, out_dir):
            pass  # Hydra's file handler makes the log file when the job starts
        return with_values(self.leader, values), out_dir


def _override_dirname(overrides: list[str], naming: dict) -> str:
    """``hydra.job.override_dirname`` of a job with these task overrides: Hydra's rule (Hydra 1.3
    documentation, "Customizing working directory pattern"; ``get_overrides_dirname``) of the
    overrides whose key is not in ``exclude_keys``, as given, sorted, joined with ``item_sep``,
    every ``=`` then replaced by ``kv_sep``."""
    lines = sorted(o for o in overrides if _override_key(o) not in naming["exclude_keys"])
    return naming["item_sep"].join(lines).replace("=", naming["kv_sep"])


def _override_key(line: str) -> str:
    """The key (or config group) of an override line, as Hydra's grammar reads it:
    ``[+|++|~]key[@package][=value]``."""
    return line.lstrip("+~").split("=", 1)[0].split("@", 1)[0].strip()


def _paths(tree, prefix: str = "") -> list[str]:
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in _paths(v, f"{prefix}{k}.")]
    return [prefix[:-1]]


def _get(tree: dict, path: str):
    for key in path.split("."):
        tree = tree[key]
    return tree


def _set(tree: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        tree = tree[key]
    tree[last] = value


def _to_yaml_in_parts(container, texts: dict[str, str]) -> str:
    """``_to_yaml(container)``, emitted entry by entry of its top mapping (of the mapping below a
    top mapping of one key, as Hydra's ``hydra.yaml``): in YAML's block style a mapping is its
    entries one after another, each written the same whatever its neighbours. The text of each
    entry is kept in ``texts`` under the entry's content (JSON, with every value's type), so an
    entry equal to one already written is not emitted again."""
    if not isinstance(container, dict) or not container:
        return _to_yaml(container)
    if len(container) == 1:
        (top, inner), = container.items()
        if isinstance(inner, dict) and inner:
            first = next(iter(inner))
            header = _to_yaml({top: {first: None}}).split("\n", 1)[0]  # the top key's line
            return f"{header}\n" + "".join(_entry_yaml({top: {key: value}}, texts, skip_first=True)
                                           for key, value in inner.items())
    return "".join(_entry_yaml({key: value}, texts) for key, value in container.items())


def _typed(value) -> str:
    return f"<{type(value).__module__}.{type(value).__qualname__}>{value!r}"


def _entry_yaml(entry: dict, texts: dict[str, str], skip_first: bool = False) -> str:
    key = json.dumps([skip_first, entry], default=_typed)
    if key not in texts:
        text = _to_yaml(entry)
        texts[key] = text.split("\n", 1)[1] if skip_first else text
    return texts[key]


def _to_yaml(container) -> str:
    """``container`` as ``OmegaConf.to_yaml`` writes it (the same PyYAML call with OmegaConf's
    dumper), without converting it to an OmegaConf node first."""
    import yaml

    try:
        from omegaconf._utils import get_omega_conf_dumper
    except ImportError:  # pragma: no cover - OmegaConf moved it: the public way
        return OmegaConf.to_yaml(container)
    return yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False,
                     Dumper=get_omega_conf_dumper())


@contextlib.contextmanager
def _point_log(job_dir: Path, point_dir: Path):
    """Send this job's log lines to ``point_dir``'s log file instead of its own: every log file
    handler of the root logger that writes into ``job_dir`` is replaced, for the duration, by one
    with the same name, format, level and filters in ``point_dir`` (the file is created)."""
    root = logging.getLogger()
    swaps = []
    if Path(point_dir) != Path(job_dir):
        for handler in root.handlers:
            if isinstance(handler, logging.FileHandler) and \
                    Path(handler.baseFilename).parent == Path(job_dir).resolve():
                twin = logging.FileHandler(Path(point_dir) / Path(handler.baseFilename).name,
                                           mode=handler.mode, encoding=handler.encoding)
                twin.setFormatter(handler.formatter)
                twin.setLevel(handler.level)
                for f in handler.filters:
                    twin.addFilter(f)
                swaps.append((handler, twin))
    for handler, twin in swaps:
        root.removeHandler(handler)
        root.addHandler(twin)
    try:
        yield
    finally:
        for handler, twin in swaps:
            root.removeHandler(twin)
            twin.close()
            root.addHandler(handler)


class Failed(SystemExit):
    """A command's end with one line on stderr (``line``) and exit code ``code``."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(code)
        self.line = line


# False in the forked workers of a sweep (hydra_plugins/dsim_sweeper): a job's one-line failure
# goes back to the sweep's process, which says it once however many workers fail together.
SAY_FAILURES = True


def _fail(program: str, message: str, code: int):
    line = f"{program}: error: {message}"
    if SAY_FAILURES:
        print(line, file=sys.stderr)
    raise Failed(code, line)


def _launch(program: str, config_name: str, cls: type, task, help_text: Callable[[list[str]], str],
            check: Callable | None = None) -> None:
    """Validate the command line (one line and exit 2 on a mistake), then hand it to Hydra."""
    # The command line draws into files, and so do its launcher workers (they inherit this);
    # setting the variable costs nothing, importing matplotlib here would cost a second.
    os.environ["MPLBACKEND"] = "Agg"
    argv = sys.argv[1:]
    try:
        cl = parse_command_line(argv, program)
        if cl.help:
            print(help_text(cl.config_dirs))
            return
        preflight(argv, config_name=config_name, cls=cls, check=check, program=program)
        cdir = config_dir()
    except ConfigError as exc:
        _fail(program, str(exc), 2)
    import hydra

    sys.argv[1:] = cl.hydra_argv()
    hydra.main(config_path=str(cdir), config_name=config_name, version_base="1.3")(task)()


def main() -> None:
    """Console entry point of ``dsim``."""
    _launch("dsim", "config", RunConfig, _task, dsim_help)


def _task(cfg: DictConfig) -> None:
    run_job(cfg)


def calibrate_main() -> None:
    """Console entry point of ``dsim-calibrate`` (config: configs/calibrate.yaml)."""
    from .calibrate import CalibrationConfig

    _launch("dsim-calibrate", "calibrate", CalibrationConfig, _calibrate_task,
            lambda _dirs: calibrate_help(), check=_calibration_check)


def forecast_main() -> None:
    """Console entry point of ``dsim-forecast`` (config: configs/forecast.yaml)."""
    from .forecast import ForecastConfig

    _launch("dsim-forecast", "forecast", ForecastConfig, _forecast_task, lambda _dirs: forecast_help(),
            check=_forecast_check)


def forecast_help() -> str:
    """``dsim-forecast --help``: every setting with its comment (configs/forecast.yaml)."""
    rows = [(f"{key}={value}", comment)
            for key, value, comment in _documented_keys(config_dir() / "forecast.yaml")]
    lines = ["dsim-forecast: DPRK launch days and missiles per year after the record, from the posterior.",
             "", "usage: uv run dsim-forecast [key=value ...]", "", "settings (configs/forecast.yaml):"]
    return "\n".join(lines + _columns(rows) + ["", "policy=NAME: the replay's posture cadence and costs "
                                                "(configs/policy/), as in the calibration"])


def _forecast_check(fc) -> None:
    """The draws and the event file, checked before Hydra makes the output folder."""
    from .calibrate import resolve_events_file
    from .draws import load_draws
    from .events import EventDataError

    load_draws(fc.draws, "draws")
    try:
        resolve_events_file(fc.events_file, config_dir())
    except EventDataError as exc:
        raise ConfigError(str(exc)) from None


def _forecast_task(cfg: DictConfig) -> None:
    from .forecast import ForecastConfig, run_forecast

    _file_task(cfg, "dsim-forecast", ForecastConfig, lambda fc: run_forecast, "the forecast's files")


def _file_task(cfg: DictConfig, program: str, cls: type, choose: Callable, what: str) -> None:
    """Run the job of ``program``: its config as ``cls``, then ``choose(config)(config, output
    folder, configs folder)``; a user's mistake is one line and exit code 2, a folder that cannot
    be written one line and exit code 1."""
    from hydra.core.hydra_config import HydraConfig

    from .events import EventDataError

    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        config = to_run_config(cfg, cls)
        choose(config)(config, Path(HydraConfig.get().runtime.output_dir), config_dir())
    except (ConfigError, EventDataError) as exc:
        _fail(program, str(exc), 2)
    except OSError as exc:
        _fail(program, f"cannot write {what}: {exc.strerror or exc}", 1)


def _calibration_check(cc) -> None:
    """The event file and the install target, checked before Hydra makes the output folder."""
    from .calibrate import check_calibration_inputs
    from .events import EventDataError

    try:
        check_calibration_inputs(cc, config_dir())
    except EventDataError as exc:
        raise ConfigError(str(exc)) from None


def _calibrate_task(cfg: DictConfig) -> None:
    from .calibrate import CalibrationConfig
    from .calibration_report import run_calibration
    from .posterior_report import run_posterior_calibration

    _file_task(cfg, "dsim-calibrate", CalibrationConfig,
               lambda cc: run_posterior_calibration if cc.method == "posterior" else run_calibration,
               "the calibration's files")


if __name__ == "__main__":
    # `python -m sim.cli` runs this file as __main__, a second copy of the module: run the one that
    # dsim's sweeper imports, so that it finds the points preflight composed (_COMPOSED)
    from sim.cli import main as _main

    _main()
