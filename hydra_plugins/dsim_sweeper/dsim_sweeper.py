"""The sweeper of ``dsim -m``: Hydra's basic grid, with the points that can share one batched model
launched as one job.

Hydra's basic sweeper composes every job of a sweep in the parent process before it launches
them ("validate_batch_is_legal"), and every launcher composes each job again where it runs it
(about 0.2 s a composition here). ``dsim`` has already composed and validated every job before
Hydra started (``sim.cli.preflight``, with one-line errors), so this sweeper expands the same grid
(``sim.config.expand_sweep``, the product of the swept values in Hydra's basic sweeper's order:
``hydra.sweeper.params`` first, the command line over it) and hands it to the configured launcher
(basic, joblib, Ray, ...). It uses only Hydra's public plugin API
(``hydra.plugins.sweeper.Sweeper``).

**Batched points** (``hydra.sweeper.batched``, on by default). From the composed configs it groups
the points that differ only in settings a batched model can vary (:func:`sim.batching.group_points`:
numeric behavioural parameters, credibility, the DPRK's prior) and launches each group as one job:
the job of its first point, which runs the whole group as the blocks of one model (common random
numbers: every block is exactly the plain run of its point) and writes every point's folder as its
own job would have (``sim.cli.execute_group``). The job finds its group in a plan file in the sweep
folder, named in the job's ``hydra.job.env_set`` (so launchers that run jobs elsewhere, such as
Ray, carry it along; the sweep folder must be shared with them, as for the results). A group holds
at most ``max_blocks`` points and no more than the memory available to each of the launcher's
parallel jobs allows, and groups are split so that a parallel launcher has one for each worker.
Sweeps whose ``hydra.sweep.subdir`` depends on the job number run one job per point.

**Both cores** (``hydra.sweeper.workers``, by default one per core this process may use). With
Hydra's basic launcher (the default), which runs jobs one after another in the process that calls
it, the launched jobs run in ``workers`` child processes forked from this one after the kernels are
loaded (:func:`sim.progress.warm_kernels`), so that no worker pays the imports and kernel loading
of a fresh interpreter. Each worker takes the next job when it is free (the jobs with the most
points first) and runs it through the basic launcher itself, with the job number it has in the
sweep's order, so its folders are byte for byte those of the same sweep run in one process, and
Hydra's job callbacks run around each job as they do there. A job's failure comes back to this
process and fails the sweep as it would in one process: a task that ends with a one-line error
(``SystemExit``) ends the sweep at once with its exit code, the other workers stopped; an exception
fails the sweep after the batch of jobs, as the basic launcher does. ``workers=1`` runs the jobs in
this process as before, as do systems other than Linux (where a forked child is not safe with
every system library); other launchers (joblib, Ray) run the jobs their own way and ignore it.
"""


import json
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

PLAN_PREFIX = ".dsim-batches-"


@dataclass
class DsimSweeperConf:
    _target_: str = "hydra_plugins.dsim_sweeper.dsim_sweeper.DsimSweeper"
    # jobs launched together (None: all at once, which lets a parallel launcher use every worker)
    max_batch_size: Optional[int] = None
    # the grid, as in Hydra's basic sweeper: key -> "v1,v2,..." (named experiments set it)
    params: Dict[str, str] = field(default_factory=dict)
    # points that differ only in numeric params, credibility or scenario.dprk_prior run as the
    # blocks of one model, one job per group (results identical); false: one job per point
    batched: bool = True
    # at most this many points in one batched model (None: as many as the memory allows)
    max_blocks: Optional[int] = None
    # with Hydra's basic launcher: jobs run in this many processes forked from the sweep's (None:
    # one per core this process may use; 1: one after another in the sweep's own process)
    workers: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="dsim", node=DsimSweeperConf, provider="dsim")


class DsimSweeper(Sweeper):
    """Expand the grid, save ``multirun.yaml`` in the sweep folder, group the points that can run
    as one batched model, launch the groups in launcher batches."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 batched: bool = True, max_blocks: Optional[int] = None,
                 workers: Optional[int] = None) -> None:
        super().__init__()
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.batched = batched
        self.max_blocks = max_blocks
        self.workers = workers
        self._weights: List[int] = []
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        from sim.config import expand_sweep

        assert self.config is not None and self.launcher is not None
        grid = [f"{k}={v}" for k, v in self.params.items()]
        jobs = expand_sweep(grid + list(arguments))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        from sim.outputs import MANIFEST
        from sim.progress import SweepProgress, stop_workers_with_parent, warm_kernels

        stop_workers_with_parent()  # workers stop with this process (SIGTERM, Ctrl-C, SIGKILL)
        show = bool(OmegaConf.select(self.config, "progress", default=True))
        warm_kernels(announce=show)  # compiled (or loaded) once here, not in every worker
        for stale in sweep_dir.glob(f"{PLAN_PREFIX}*"):  # plans of a sweep that was killed
            _remove_plans(stale)
        plan_dir = sweep_dir / f"{PLAN_PREFIX}{uuid.uuid4().hex[:12]}"
        self._weights = [1] * len(jobs)
        launches = self._launches(jobs, plan_dir) if self.batched and len(jobs) > 1 else jobs
        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else len(launches)
        forked = min(self._forked_workers(), len(launches), size)
        returns = []
        pool = None
        failure: Optional[_WorkerExit] = None
        try:
            if forked > 1:  # before the bar's thread starts: fork copies no thread
                pool = _start_pool(forked, self.launcher, launches)
            with SweepProgress(sweep_dir, total=len(jobs), marker=MANIFEST, enabled=show):
                for start in range(0, len(launches), size):
                    batch = launches[start:start + size]
                    if pool is not None and len(batch) > 1:
                        results = _launch_in_pool(pool, start, len(batch), self._weights)
                    else:
                        results = self.launcher.launch(batch, initial_job_idx=start)
                    for r in results:
                        _ = r.return_value  # re-raises a job's failure
                    returns.append(results)
            if pool is not None:
                pool.close()
                pool.join()
                pool = None
        except _WorkerExit as exc:
            failure = exc
        finally:
            if pool is not None:  # a failure: stop the workers at once
                pool.terminate()
                pool.join()
            _FORKED.clear()
            _remove_plans(plan_dir)
        if failure is not None:  # said here, once, after the workers and the bar have stopped
            if failure.line:
                print(failure.line, file=sys.stderr, flush=True)
            raise SystemExit(failure.code)
        return returns

    def _forked_workers(self) -> int:
        """How many processes run the jobs: ``workers`` (default: the usable cores) with Hydra's
        basic launcher where processes can be forked (Linux: :func:`sim.cli.can_fork`); 1 otherwise
        (the launcher runs them)."""
        from sim.cli import can_fork, sweep_workers

        kind = type(self.launcher)
        basic = kind.__name__ == "BasicLauncher" and kind.__module__.split(".")[0] == "hydra"
        if not basic or not can_fork():
            return 1
        return sweep_workers(self.workers)

    # ------------------------------------------------------------------ batching
    def _configs(self, jobs: List[List[str]]) -> Optional[list]:
        """The composed config of every job: preflight's (same process), else composed here."""
        from sim.cli import composed_configs
        from sim.config import compose_jobs
        from sim.params import RunConfig

        configs = composed_configs(jobs)
        if configs is not None:
            return configs
        assert self.hydra_context is not None and self.config is not None
        loader, master = self.hydra_context.config_loader, self.config

        def compose(_name: str, overrides: List[str], return_hydra_config: bool = False) -> DictConfig:
            return loader.load_sweep_config(master, list(overrides))

        try:
            return compose_jobs(compose, str(master.hydra.job.config_name), jobs, RunConfig)
        except Exception as exc:  # noqa: BLE001 - the launcher's own composition reports it
            log.warning("points not batched: composing them failed (%s)", exc)
            return None

    def _parallel_jobs(self) -> int:
        """Jobs run at once: the launcher's processes, or this sweeper's forked workers."""
        from sim.cli import _check_launcher

        assert self.config is not None
        try:
            return max(1, _check_launcher(self.config))
        except Exception:  # noqa: BLE001 - preflight has checked it already
            return 1

    def _launches(self, jobs: List[List[str]], plan_dir: Path) -> List[List[str]]:
        """One launched job per group of points (:func:`sim.batching.group_points`): a group of one
        is its point's own job; a larger one is its first point's job with the group's plan."""
        from sim.batching import config_digest, differences, group_points, max_blocks_in_memory
        from sim.cli import BATCH_PLAN_ENV, available_memory, task_overrides
        from sim.memory import estimated_memory_bytes

        assert self.config is not None
        subdir = str(OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir"))
        if any(k in subdir for k in ("job.num", "job.id", "now:")):
            log.info("points not batched: hydra.sweep.subdir (%s) depends on the job", subdir)
            return jobs
        if "'" in str(plan_dir) or "\\" in str(plan_dir):
            log.info("points not batched: the sweep folder's name has a quote or backslash")
            return jobs
        configs = self._configs(jobs)
        if configs is None:
            return jobs
        workers = self._parallel_jobs()
        have = available_memory()
        largest = max(configs, key=estimated_memory_bytes)
        limit = max_blocks_in_memory(largest, None if have is None else have // workers)
        max_blocks = min(b for b in (self.max_blocks, limit, math.inf) if b is not None)
        groups = group_points(configs, None if max_blocks == math.inf else int(max_blocks),
                              min_groups=workers)
        if all(len(g) == 1 for g in groups):
            return jobs
        plan_dir.mkdir(parents=True, exist_ok=True)
        sweep_dir = os.path.abspath(str(self.config.hydra.sweep.dir))  # as Hydra makes job folders
        launches = []
        self._weights = [len(members) for members in groups]
        for g, members in enumerate(groups):
            first = members[0]
            if len(members) == 1:
                launches.append(jobs[first])
                continue
            points = [{"index": i, "overrides": list(task_overrides(jobs[i])),
                       "digest": config_digest(configs[i]),
                       "values": differences(configs[first], configs[i])} for i in members]
            path = plan_dir / f"group-{g}.json"
            path.write_text(json.dumps({"sweep_dir": sweep_dir, "points": points}, default=str))
            launches.append([*jobs[first], f"+hydra.job.env_set.{BATCH_PLAN_ENV}='{os.path.abspath(path)}'"])
        log.info("%d points in %d jobs (batched models of up to %d points)", len(jobs), len(launches),
                 max(len(g) for g in groups))
        return launches


def _remove_plans(plan_dir: Path) -> None:
    """Remove a folder of batch plans (only the plan files it holds, then the folder)."""
    if plan_dir.is_dir() and not plan_dir.is_symlink():
        for path in plan_dir.glob("group-*.json"):
            path.unlink(missing_ok=True)
        try:
            plan_dir.rmdir()
        except OSError:  # something else in it: not ours to remove
            log.warning("left %s in place: it holds files other than batch plans", plan_dir)


# ---------------------------------------------------------------------- jobs in forked workers
# What the forked workers inherit from the sweep's process: the launcher and the launched jobs.
_FORKED: Dict[str, Any] = {}


def _start_pool(workers: int, launcher: Any, launches: List[List[str]]) -> Any:
    """``workers`` processes forked from this one, each able to run any of ``launches`` through
    ``launcher`` (Hydra's basic launcher, inherited with its Hydra context and task)."""
    _FORKED.update(launcher=launcher, launches=launches)
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        # Python 3.12 warns that forking a process with threads (numpy's BLAS threads, which
        # register their own fork handlers) may deadlock; the workers call no such threads' locks
        warnings.simplefilter("ignore", DeprecationWarning)
        return context.Pool(workers, initializer=_worker_started)


def _worker_started() -> None:
    """In a forked worker: Ctrl-C goes to the sweep's process, which stops the workers
    (SIGTERM, the default action; the sweep's own handlers would report the stop once per
    worker), and a job's one-line failure is said by the sweep's process."""
    import sim.cli

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sim.cli.SAY_FAILURES = False


class _WorkerExit(Exception):
    """A job in a worker ended its process (``SystemExit``): the exit code, and dsim's line."""

    def __init__(self, code: Any, line: Optional[str]) -> None:
        super().__init__(code)
        self.code, self.line = code, line


def _launch_in_pool(pool: Any, start: int, count: int, weights: List[int]) -> list:
    """Run jobs ``start .. start + count - 1`` in the workers, the largest first (by ``weights``,
    points per job), each with its number in the sweep; their JobReturns in the jobs' order.

    A job that ended its process (``SystemExit``: dsim's one-line errors) raises :class:`_WorkerExit`
    (the sweep ends with its line and exit code); an exception raised outside the job's task
    (Hydra failing to compose it) is raised here."""
    order = sorted(range(start, start + count), key=lambda i: (-weights[i], i))
    results: List[Any] = [None] * count
    for index, kind, payload in pool.imap_unordered(_run_launch, order):
        if kind == "exit":
            raise _WorkerExit(*payload)
        if kind == "raised":
            raise payload
        results[index - start] = payload
    return results


def _run_launch(index: int) -> tuple:
    """In a worker: launch job ``index`` with the basic launcher (its number in the sweep); return
    (index, "done", its JobReturn), (index, "exit", (the exit code, dsim's line or None)) or
    (index, "raised", the exception)."""
    launcher, launches = _FORKED["launcher"], _FORKED["launches"]
    try:
        (result,) = launcher.launch([launches[index]], initial_job_idx=index)
    except SystemExit as exc:
        return index, "exit", (exc.code, getattr(exc, "line", None))
    except BaseException as exc:  # noqa: BLE001 - carried to the sweep's process
        return index, "raised", _portable(exc)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    if result.status.name == "FAILED" and isinstance(result._return_value, BaseException):
        result._return_value = _portable(result._return_value)
    return index, "done", result


def _portable(exc: BaseException) -> BaseException:
    """``exc`` as the sweep's process can receive it: with the worker's traceback as a note, or, if
    it cannot be pickled, a RuntimeError that names it."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    try:
        exc.add_note(f"(in a sweep worker)\n{text}")
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything that does not survive the trip
        return RuntimeError(f"{type(exc).__name__}: {exc} (in a sweep worker)\n{text}")
