"""What a run and a sweep show while they work, and launcher workers that stop with their sweep.

* **Kernels.** The compiled kernels (:mod:`sim.rules`) is compiled by numba on the first run and
  cached on disk (``cache=True``); later runs load it. :func:`kernels_cached` tells which case is
  coming, :func:`compile_notice` says ``compiling kernels (first run only)`` on stderr before a
  compilation starts, :func:`warm_kernels` loads or compiles them ahead of time (a sweep's main
  process, so that its points do not each compile them).
* **Weeks.** :func:`run_with_bar` runs a model's first week (which loads or compiles the kernels)
  before its week bar starts, so the bar's rate and ETA are those of the simulation alone.
* **Points.** :class:`SweepProgress` shows one bar over a sweep's points, driven by the point
  folders that appear on disk, so it works with every launcher (basic, joblib, Ray); points found
  complete when the sweep starts are counted as skipped.
* **Console.** :class:`MultirunConsoleFilter` keeps the per-point log lines of a multirun in the
  points' log files (the console shows warnings and errors only).
* **Workers.** :func:`stop_workers_with_parent` (the sweep's main process) and
  :func:`watch_parent` (each launcher worker) make the joblib launcher's worker processes stop
  when the sweep's main process is terminated or killed, instead of running on for minutes.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, Iterator

from tqdm.auto import tqdm

COMPILE_NOTICE = "compiling kernels (first run only)"
# When numba's cache cannot be inspected, the notice comes if loading the kernels takes this long
# (a warm load took 0.45-0.79 s, a compilation 32 s, measured on 30 Nov 2026 on 2 shared cores).
NOTICE_DELAY_S = 3.0
# The sweep's main process puts its process id here; its launcher workers inherit it.
SWEEP_PID_ENV = "DSIM_SWEEP_PID"
# Exit status of a worker whose sweep is gone (a sweep stopped by a signal exits with 128 + its number).
WORKER_ORPHANED_EXIT = 1


# ---------------------------------------------------------------------------- kernels
def _kernel_dispatchers() -> list:
    """The numba dispatchers the model calls from Python: the kernels of :mod:`sim.rules`
    (``rules.KERNELS``; the scalar rules are compiled into them, so their own cache entries do not
    matter to a run), those of :mod:`sim.record_kernels` and the uniform draws' (:mod:`sim.uniforms`)."""
    from numba.core.dispatcher import Dispatcher

    from . import record_kernels, rules, uniforms

    kernels = [getattr(rules, name) for name in rules.KERNELS]
    return (kernels + [d for d in vars(record_kernels).values() if isinstance(d, Dispatcher)]
            + [uniforms.fill])


def cached_on_disk(dispatcher) -> bool:
    """Whether numba's cache index holds a compiled version of ``dispatcher`` for this machine and
    this source.

    numba's cache (``cache=True``) keeps, per function, an index file (``*.nbi``) stamped with the
    source file's modification time and size; its entries are keyed by the signature, the target
    machine (``codegen.magic_tuple()``) and a hash of the function's bytecode, and an index whose
    stamp does not match the source reads as empty (numba documentation, "Notes on caching";
    ``numba.core.caching.IndexDataCacheFile``). This reads the index the way numba does and looks
    for an entry of this machine and bytecode, whatever the signature.
    """
    cache = dispatcher._cache
    wanted = cache._index_key(None, dispatcher.targetctx.codegen())[1:]
    return any(key[1:] == wanted for key in cache._cache_file._load_index())


def kernels_cached() -> bool | None:
    """Whether the compiled kernels are ready: already compiled in this process, or in numba's cache
    on disk. ``False`` means the next run compiles them (the first run, or after ``rules.py``
    changed); ``None`` that numba's cache could not be inspected (its internals changed).
    """
    try:
        dispatchers = _kernel_dispatchers()
        if all(d.signatures for d in dispatchers):
            return True
        return all(d.signatures or cached_on_disk(d) for d in dispatchers)
    except Exception:  # numba's private cache API moved: say nothing rather than something false
        return None


@contextlib.contextmanager
def compile_notice(stream: IO[str] | None = None, delay: float = NOTICE_DELAY_S) -> Iterator[bool | None]:
    """Around the code that first calls the kernels: say :data:`COMPILE_NOTICE` on stderr before a
    compilation starts.

    With a cold cache the line comes at once; when the cache cannot be inspected it comes if the
    block is still running after ``delay`` seconds; with a warm cache, never. Yields
    :func:`kernels_cached`.
    """
    stream = stream if stream is not None else sys.stderr
    cached = kernels_cached()
    done = threading.Event()
    timer = None

    def say() -> None:
        if not done.is_set():
            print(COMPILE_NOTICE, file=stream, flush=True)

    if cached is False:
        say()
    elif cached is None:
        timer = threading.Timer(delay, say)
        timer.daemon = True
        timer.start()
    try:
        yield cached
    finally:
        done.set()
        if timer is not None:
            timer.cancel()


def warm_kernels(announce: bool = True) -> None:
    """Load, or compile, every kernel now: one week of a two-replication rotational run (a rotation
    falls due in week 0), a week of a two-block batch, a change of US administration, the
    current-calculus belief and a fill of uniforms (two replications draw theirs from numpy).

    A sweep's main process calls this before it launches the points, so that parallel workers load
    the kernels from numba's cache instead of each compiling them, and the sweep bar's first points
    do not carry the compilation. ``announce`` prints :data:`COMPILE_NOTICE` when they compile.
    """
    import numpy as np

    from . import rules
    from .model import DeterrenceModel
    from .params import RunConfig
    from .uniforms import UniformStream

    model = DeterrenceModel(RunConfig(replications=2, progress=False).replace(scenario={"weeks": 1}))
    with compile_notice() if announce else contextlib.nullcontext():
        model.step()
        # a batch of two blocks (the same compiled versions, unless a kernel meets other types)
        DeterrenceModel(RunConfig(replications=2, progress=False).replace(scenario={"weeks": 2}),
                        batch={"credibility": [0.3, 0.7]}).step()
        model.us.new_administration()
        dprk = model.dprk
        rules.current_calculus_belief(model.param_table, model.base_replications, model.on_station, 0.0,
                                      dprk.capability, dprk.log_odds.copy(), dprk.belief.copy(),
                                      rules.LOGIT_BOUND)
        UniformStream(np.random.default_rng(0)).random(np.empty(64))


# ---------------------------------------------------------------------------- weeks
def run_with_bar(model, stream: IO[str] | None = None) -> None:
    """Run every week of ``model`` with a bar over the weeks on stderr.

    The first week runs before the bar starts: with the compiled engine it loads the kernels from
    numba's cache (about half a second) or compiles them (half a minute on the first run), as long
    as hundreds of simulated weeks, which inside the bar would make its rate and ETA wrong (a
    six-hour ETA while compiling). The bar then starts at week 1 of ``n_weeks``, and tqdm's rate
    counts only the weeks run since it started (``initial``). When the kernels are not all ready it
    compiles every one a run can call (:func:`warm_kernels`), not only this run's, so that the
    notice is said once after an install and a later run with other settings compiles nothing.
    """
    with compile_notice(stream) as cached:
        if cached is False:
            warm_kernels(announce=False)
        model.step()
    bar = tqdm(total=model.n_weeks, initial=1, desc=f"{model.policy_name} c={model.config.credibility:g}",
               unit="week", leave=False, file=stream)
    with bar:
        for _ in range(1, model.n_weeks):
            model.step()
            bar.update()


# ---------------------------------------------------------------------------- points
class SweepProgress:
    """One bar over the points of a sweep, ``points: 12/44 [elapsed<eta]``, on stderr.

    It watches the sweep folder from a background thread of the sweep's main process (the process
    where Hydra's sweeper and ``on_multirun_start``/``on_multirun_end`` run), whatever the launcher
    runs the points in: a point is finished when its folder holds ``marker``, the file its run
    writes last. Points whose marker is already there when the bar starts are counted as skipped
    (a resumed sweep skips them); if such a point is recomputed after all (its marker is rewritten),
    it counts as run instead. The rate and ETA are from the points run since the start and the time
    since the start (tqdm's ``initial``, no smoothing).

    Args:
        sweep_dir: the sweep folder (``hydra.sweep.dir``); it may not exist yet.
        total: the number of points, or None if unknown (then no ETA).
        marker: the file that marks a finished point.
        enabled: False shows nothing (``progress=false``).
        interval: seconds between two looks at the folder.
        stream: where the bar goes (stderr).

    Use as ``with SweepProgress(dir, total): launch()`` or with :meth:`start`/:meth:`stop`.
    """

    def __init__(self, sweep_dir: str | os.PathLike, total: int | None, marker: str = "manifest.json",
                 enabled: bool = True, interval: float = 0.5, stream: IO[str] | None = None) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.total = total
        self.marker = marker
        self.enabled = enabled
        self.interval = interval
        self.stream = stream
        self.bar = None
        self._before: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.skipped = 0
        self.run = 0
        self._tty = False

    def _finished(self) -> dict[str, int]:
        """Each point folder that holds the marker, with the marker's modification time."""
        out = {}
        try:
            entries = list(os.scandir(self.sweep_dir))
        except OSError:
            return out
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                out[entry.name] = os.stat(Path(entry.path) / self.marker).st_mtime_ns
            except OSError:
                continue
        return out

    def poll(self) -> tuple[int, int]:
        """Count the points now: (skipped, run); moves the bar."""
        now = self._finished()
        skipped = sum(1 for name, t in self._before.items() if now.get(name) == t)
        run = sum(1 for name, t in now.items() if self._before.get(name) != t)
        self.skipped, self.run = skipped, run
        if self.bar is not None:
            if skipped:
                self.bar.set_postfix_str(f"{skipped} skipped", refresh=False)
            if skipped + run != self.bar.n:
                self.bar.update(skipped + run - self.bar.n)
            elif self._tty:
                self.bar.refresh()  # the elapsed time moves on between points
        return skipped, run

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def start(self) -> SweepProgress:
        self._before = self._finished()
        self.skipped, self.run = len(self._before), 0
        if not self.enabled:
            return self
        stream = self.stream if self.stream is not None else sys.stderr
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        # smoothing=0: the rate is the points run since the start over the time since the start,
        # the fairest ETA for points of one size (tqdm's default weights the last few updates)
        self.bar = tqdm(total=self.total, initial=self.skipped, desc="points", unit="point",
                        file=stream, dynamic_ncols=True, smoothing=0)
        if self.skipped:
            self.bar.set_postfix_str(f"{self.skipped} skipped")
        _ACTIVE.append(self)
        self._thread = threading.Thread(target=self._watch, name="dsim-sweep-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Count once more and close the bar (it stays on screen)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.poll()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def __enter__(self) -> SweepProgress:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_ACTIVE: list[SweepProgress] = []


# ---------------------------------------------------------------------------- console
def in_multirun() -> bool:
    """Whether this process is running a job of a Hydra multirun (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class MultirunConsoleFilter(logging.Filter):
    """A logging filter for the console handler of Hydra's ``job_logging``: in a multirun only
    warnings and errors pass (the point's own log file, another handler, keeps every line); in a
    single run everything passes.

    Hydra configures the logging of each job from ``hydra.job_logging`` with ``logging.config.dictConfig``
    (Hydra documentation, "Customizing logging"), which builds a filter from a ``()`` factory key
    (Python documentation, ``logging.config``, "User-defined objects").
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not in_multirun()


# ---------------------------------------------------------------------------- workers
_watcher: threading.Thread | None = None


def watch_parent(interval: float = 0.5) -> bool:
    """In a launcher worker: exit this process when the sweep's main process is gone.

    The joblib launcher runs points in loky worker processes, children of the sweep's main process,
    which loky keeps for reuse; when the main process is killed they run on (the point in hand, then
    idle) for minutes. A daemon thread here checks every ``interval`` seconds whether this process
    has been orphaned (``os.getppid()`` changed: Linux and macOS hand orphans to init or a
    subreaper) and then ends it with ``os._exit``. The run's files are written into a staging folder
    and moved into place at the end, so a point stopped this way leaves no partial result.

    It acts only in a direct child of the process that called :func:`stop_workers_with_parent`
    (which leaves its id in ``DSIM_SWEEP_PID``): not in the main process itself (the basic launcher
    runs points there; its parent is the shell), nor in Ray's workers (Ray manages them). Call it at
    the top of the task; a worker that runs several points starts one thread. Returns whether this
    process is now watched.
    """
    global _watcher
    parent = os.getppid()
    if _watcher is not None:
        return True
    if os.environ.get(SWEEP_PID_ENV) != str(parent):
        return False

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(WORKER_ORPHANED_EXIT)

    _watcher = threading.Thread(target=watch, name="dsim-watch-parent", daemon=True)
    _watcher.start()
    return True


def stop_workers(timeout: float = 2.0) -> int:
    """Stop this process's worker processes (the loky workers of the joblib launcher are
    ``multiprocessing`` children): SIGTERM, then SIGKILL after ``timeout`` seconds. Returns how many."""
    children = multiprocessing.active_children()
    for p in children:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in children:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
    return len(children)


def quiet_resource_trackers() -> None:
    """Keep the resource trackers of loky and multiprocessing (processes the joblib launcher starts
    from here) from printing ``resource_tracker: There appear to be N leaked semlock objects to
    clean up at shutdown`` when the sweep ends or is stopped: the trackers clean these up
    themselves, and the loky maintainers call the warnings expected when a parallel job is killed
    (joblib/loky issue 369, 19 Dec 2023). Child processes read ``PYTHONWARNINGS`` when they start;
    the filter matches only warnings whose message starts with ``resource_tracker``."""
    quiet = "ignore:resource_tracker:UserWarning"
    current = [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
    if quiet not in current:
        os.environ["PYTHONWARNINGS"] = ",".join([*current, quiet])


def _on_stop_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    stop_workers()
    lead = "\n" if _ACTIVE else ""
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    sys.stderr.write(f"{lead}dsim: stopped by {name}; finished points are kept: rerun the same "
                     "command with hydra.sweep.dir=<the sweep folder> to resume\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def stop_workers_with_parent() -> None:
    """In the sweep's main process, before the launcher starts workers: on SIGTERM (or Ctrl-C) stop
    the workers, say so in one line and exit with status 143 (130), instead of leaving the workers
    running (SIGTERM) or printing a KeyboardInterrupt traceback (Ctrl-C); and let the workers find
    this process (``DSIM_SWEEP_PID``), so that :func:`watch_parent` ends them if it is killed
    (SIGKILL cannot be handled). The workers' resource trackers keep quiet about what they clean up
    (:func:`quiet_resource_trackers`). A point stopped half-way has no ``manifest.json``: rerunning the
    sweep into the same folder computes it again.

    Only the main thread can set a signal handler; elsewhere only the variable is set.
    """
    os.environ[SWEEP_PID_ENV] = str(os.getpid())
    quiet_resource_trackers()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_stop_signal)
        signal.signal(signal.SIGINT, _on_stop_signal)


__all__ = ["COMPILE_NOTICE", "MultirunConsoleFilter", "SweepProgress", "compile_notice", "in_multirun",
           "kernels_cached", "quiet_resource_trackers", "run_with_bar", "stop_workers",
           "stop_workers_with_parent", "warm_kernels", "watch_parent"]
