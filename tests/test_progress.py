"""Honest progress (kernels, weeks, sweep points), the multirun console, workers that stop with
their sweep, and the local Ray's launcher settings (sim.progress, configs/hydra/launcher/ray_local.yaml)."""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import small_config

from sim import progress, rules
from sim.model import DeterrenceModel
from sim.progress import COMPILE_NOTICE, MultirunConsoleFilter, SweepProgress

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- kernels and weeks
class SpyBar:
    """Stands in for tqdm: records when the bar is made and how far it gets."""

    made: list[SpyBar] = []

    def __init__(self, *, total, initial=0, **kwargs):
        self.total, self.initial, self.n, self.kwargs = total, initial, initial, kwargs
        self.steps_at_start = SpyBar.model.steps
        SpyBar.made.append(self)

    def update(self, k=1):
        self.n += k

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_week_bar_starts_after_the_first_week(monkeypatch):
    """The first week (which loads or compiles the kernels) runs before the bar exists, and the bar
    counts from week 1 of n_weeks, so its rate and ETA leave the compilation out."""
    model = DeterrenceModel(small_config(weeks=30))
    SpyBar.model, SpyBar.made = model, []
    monkeypatch.setattr(progress, "tqdm", SpyBar)
    model.run(progress=True)
    assert len(SpyBar.made) == 1
    bar = SpyBar.made[0]
    assert bar.steps_at_start == 1 and bar.initial == 1
    assert bar.total == model.n_weeks == 30 and bar.n == 30 and model.steps == 30


@pytest.mark.parametrize("cached", [False, True, None])
def test_compile_notice_before_the_compilation_only_when_it_compiles(monkeypatch, cached):
    """Cold cache: the notice comes first, before the block; warm: never; unknown: only if the block
    takes longer than the delay."""
    monkeypatch.setattr(progress, "kernels_cached", lambda: cached)
    out = io.StringIO()
    with progress.compile_notice(out, delay=0.05):
        out.write("block\n")
    if cached is None:
        with progress.compile_notice(out, delay=0.05):
            time.sleep(0.5)
            out.write("slow block\n")
    lines = out.getvalue().splitlines()
    expected = {False: [COMPILE_NOTICE, "block"], True: ["block"],
                None: ["block", COMPILE_NOTICE, "slow block"]}[cached]
    assert lines == expected


def test_a_run_says_it_compiles_then_shows_the_bar(monkeypatch, capsys):
    monkeypatch.setattr(progress, "kernels_cached", lambda: False)
    DeterrenceModel(small_config(weeks=20)).run(progress=True)
    err = capsys.readouterr().err
    assert err.startswith(COMPILE_NOTICE + "\n") and "1/20" in err
    DeterrenceModel(small_config(weeks=20)).run(progress=False)
    assert capsys.readouterr().err == ""


def test_the_kernel_list_names_every_kernel_the_model_calls():
    """progress checks numba's cache for rules.KERNELS: every compiled function of sim.rules that
    sim/ calls from Python must be in it (and every name in it must be one)."""
    from numba.core.dispatcher import Dispatcher

    sim_dir = Path(progress.__file__).parent
    called = set()
    for path in sim_dir.glob("*.py"):
        if path.name != "rules.py":
            called |= set(re.findall(r"\brules\.([a-z_0-9]+)\(", path.read_text(encoding="utf-8")))
    compiled = {name for name in called if isinstance(getattr(rules, name), Dispatcher)}
    assert compiled == set(rules.KERNELS)


def test_kernels_cached_reads_numba_s_cache_index(tmp_path):
    """After a run with its bar every kernel is in numba's cache index (this machine, this source),
    also those this run does not call (the bar compiles all of them when any is missing, so the
    compile notice comes once); with an empty cache folder (NUMBA_CACHE_DIR, read when numba is
    imported) none is, so a new process knows it is about to compile."""
    DeterrenceModel(small_config(weeks=2)).run(progress=True)
    dispatchers = progress._kernel_dispatchers()
    assert len(dispatchers) >= 10 and all(progress.cached_on_disk(d) for d in dispatchers)
    assert progress.kernels_cached() is True
    code = "from sim.progress import kernels_cached; print(kernels_cached())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty_cache")})
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False"


def test_warm_kernels_compiles_what_a_run_needs():
    """After warm_kernels (a sweep's main process) runs of other sizes, postures and scenarios
    dispatch no new kernel signature (nothing left to compile inside a point)."""
    progress.warm_kernels(announce=False)
    before = {d.__name__: len(d.signatures) for d in progress._kernel_dispatchers()}
    assert sum(before.values()) >= 10  # the kernels a week calls (their callees compile inside them)
    DeterrenceModel(small_config(replications=7, weeks=30, policy={"name": "permanent"})).run()
    DeterrenceModel(small_config(replications=3, weeks=10, credibility=0.1)).run()
    # issue 11: the misperceiving DPRK, type-dependent deferral, the current-calculus rule
    DeterrenceModel(small_config(replications=4, weeks=14, params={"perception": "costly_signals",
                                                                  "us_skip_irresolute": 0.5})).run()
    rule = {"credibility_rule": "current_calculus"}
    DeterrenceModel(small_config(replications=2, weeks=8, params=rule)).run()
    # a batch's weekly statistics (a strided row per block), as a batched sweep runs them
    DeterrenceModel(small_config(replications=3, weeks=6), batch={"credibility": [0.2, 0.8]}).run()
    assert {d.__name__: len(d.signatures) for d in progress._kernel_dispatchers()} == before


# ---------------------------------------------------------------------------- sweep points
def _finish(folder: Path, marker: str = "manifest.json") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text("{}")


def test_sweep_bar_counts_points_run_and_skipped(tmp_path):
    sweep = tmp_path / "sweep"
    _finish(sweep / "policy=rotational")  # complete before the sweep: skipped
    _finish(sweep / "policy=permanent")  # complete before, but recomputed below
    (sweep / "policy=reactive").mkdir()  # started, not finished
    (sweep / ".partial-x").mkdir()
    _finish(sweep / ".partial-x" / "y")
    out = io.StringIO()
    with SweepProgress(sweep, total=4, interval=0.01, stream=out) as bar:
        assert "2/4" in out.getvalue() and "2 skipped" in out.getvalue()
        _finish(sweep / "policy=reactive")
        stamp = sweep / "policy=permanent" / "manifest.json"
        os.utime(stamp, ns=(stamp.stat().st_atime_ns, stamp.stat().st_mtime_ns + 10**9))
        _finish(sweep / "policy=none")
        deadline = time.monotonic() + 10
        while bar.run < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert (bar.skipped, bar.run) == (1, 3)
    assert bar._thread is None and not [t for t in threading.enumerate() if t.name == "dsim-sweep-progress"]
    final = out.getvalue().split("\r")[-1]
    assert "4/4" in final and "1 skipped" in final and final.startswith("points: 100%")


def test_sweep_bar_rate_is_points_over_time(tmp_path):
    """Points finishing 0.4 s apart, the folder watched every 0.02 s: every frame's rate is the
    points run over the time since the start (about 2.5 points/s), not one point over the time
    since the last look at the folder (tens of points/s)."""
    out = io.StringIO()
    with SweepProgress(tmp_path, total=3, interval=0.02, stream=out) as bar:
        for name in ("a", "b", "c"):
            time.sleep(0.4)
            _finish(tmp_path / name)
        while bar.run < 3:
            time.sleep(0.01)
    rates = []
    for frame in out.getvalue().split("\r"):
        if m := re.search(r"\| [123]/3 .*?([0-9.]+)(point/s|s/point)", frame):
            rates.append(float(m.group(1)) if m.group(2) == "point/s" else 1 / float(m.group(1)))
    assert len(rates) >= 3 and all(0.5 < r < 4.0 for r in rates), rates


def test_sweep_bar_off_and_folder_made_later(tmp_path):
    out = io.StringIO()
    with SweepProgress(tmp_path / "later", total=None, enabled=False, stream=out) as bar:
        _finish(tmp_path / "later" / "a", marker="summary.json")
    assert out.getvalue() == ""
    assert (bar.skipped, bar.run) == (0, 0)  # it watches manifest.json, not summary.json
    with SweepProgress(tmp_path / "later", total=None, marker="summary.json", stream=out) as bar:
        pass
    assert (bar.skipped, bar.run) == (1, 0) and "1 skipped" in out.getvalue()


# ---------------------------------------------------------------------------- console
@pytest.fixture
def hydra_mode():
    """Set Hydra's run mode for this process as a job of that mode would see it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    def set_mode(mode: RunMode) -> None:
        from hydra.conf import HydraConf

        node = OmegaConf.structured(HydraConf)
        node.mode = mode
        HydraConfig.instance().set_config(OmegaConf.create({"hydra": node}))

    saved = HydraConfig.instance().cfg
    yield set_mode
    HydraConfig.instance().cfg = saved


def test_multirun_console_filter_keeps_info_off_the_console(hydra_mode):
    from hydra.types import RunMode

    f = MultirunConsoleFilter()

    def passes(level: int) -> bool:
        return f.filter(logging.LogRecord("dsim", level, __file__, 1, "point line", None, None))

    assert passes(logging.INFO) and passes(logging.WARNING)  # no Hydra job: everything
    hydra_mode(RunMode.MULTIRUN)
    assert not passes(logging.INFO) and passes(logging.WARNING) and passes(logging.ERROR)
    hydra_mode(RunMode.RUN)
    assert passes(logging.INFO)


# ---------------------------------------------------------------------------- workers
def _group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid`` (read from /proc)."""
    alive = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            alive.append(int(name))
    return alive


def _wait_gone(pgid: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := _group_alive(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


LOKY_PARENT = textwrap.dedent("""
    import os, sys, time
    from joblib import Parallel, delayed
    from sim.progress import stop_workers_with_parent, watch_parent

    def point(i, folder):
        watch_parent(interval=0.2)
        open(os.path.join(folder, f"started-{i}"), "w").close()
        time.sleep(300)

    if __name__ == "__main__":
        stop_workers_with_parent()
        Parallel(n_jobs=2)(delayed(point)(i, sys.argv[1]) for i in range(2))
""")


NEEDS_PROC = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc (Linux)")


STOPPED = {signal.SIGTERM: "dsim: stopped by SIGTERM", signal.SIGINT: "dsim: stopped by Ctrl-C"}


@NEEDS_PROC
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_loky_workers_stop_with_their_parent(tmp_path, sig):
    """joblib (loky) workers running long tasks stop within seconds of their parent's end: on
    SIGTERM or Ctrl-C the parent stops them, says so in one line and exits 128 + the signal's
    number, on SIGKILL they notice they are orphaned."""
    script = tmp_path / "parent.py"
    script.write_text(LOKY_PARENT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("started-*"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        assert len(_group_alive(proc.pid)) >= 3  # the parent and its two workers
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
        assert rc == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + sig)
        assert _wait_gone(proc.pid, timeout=10) == []
        err = proc.stderr.read().decode()  # every writer is gone: the whole of it
        if sig in STOPPED:
            assert err.strip().startswith(STOPPED[sig]) and "\n" not in err.strip(), err
        else:
            assert err == ""  # the trackers' cleanup notices stay quiet
    finally:
        _kill_group(proc.pid)
        proc.stderr.close()


def _dsim() -> list[str]:
    script = Path(sys.executable).parent / "dsim"
    return [str(script)] if script.is_file() else [shutil.which("dsim") or "dsim"]


@pytest.fixture(scope="module")
def killed_sweeps(tmp_path_factory):
    """Two 2-point joblib sweeps of long points (about half a minute each on a free core), started
    together; once both points of a sweep have started, one parent gets SIGTERM, the other SIGKILL.
    Returns, per signal: the parent's exit status, its stdout and stderr, and the processes of its
    process group still alive 10 s later."""
    base = tmp_path_factory.mktemp("killed")
    runs = {}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        folder = base / sig.name
        folder.mkdir()
        sweep = folder / "sweep"
        proc = subprocess.Popen(
            [*_dsim(), "-m", "policy=rotational,permanent", "replications=20000", "scenario.weeks=3000",
             "progress=true", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"],
            cwd=folder, start_new_session=True, stdout=open(folder / "stdout", "w"),
            stderr=open(folder / "stderr", "w"))
        runs[sig] = (proc, sweep, folder)
    results = {}
    try:
        deadline = time.monotonic() + 240
        pending = dict(runs)
        while pending:
            for sig, (proc, sweep, folder) in list(pending.items()):
                started = list(sweep.glob("*/.hydra")) if sweep.is_dir() else []
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{sig.name} sweep: points not started (exit {proc.poll()}): "
                                f"{(folder / 'stderr').read_text()[-2000:]}")
                if len(started) == 2:
                    time.sleep(1.0)  # the task has begun after Hydra made the point's .hydra folder
                    proc.send_signal(sig)
                    del pending[sig]
            time.sleep(0.2)
        for sig, (proc, _, folder) in runs.items():
            rc = proc.wait(timeout=30)
            results[sig] = (rc, (folder / "stdout").read_text(), (folder / "stderr").read_text(),
                            _wait_gone(proc.pid, timeout=10))
    finally:
        for proc, _, _ in runs.values():
            _kill_group(proc.pid)
    return results


HOOKS = ("sim.cli.run_job calls sim.progress.watch_parent() and the sweep's main process calls "
         "sim.progress.stop_workers_with_parent() and shows SweepProgress (the lead's hooks)")


@NEEDS_PROC
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_joblib_sweep_leaves_no_worker(killed_sweeps, sig):
    rc, stdout, stderr, alive = killed_sweeps[sig]
    assert alive == [], f"processes of the sweep still running 10 s after {sig.name}: {alive}"
    if sig == signal.SIGTERM:
        assert rc == 143 and "dsim: stopped by SIGTERM" in stderr
    # the console shows the bar over points, not Hydra's per-point launch lines nor week bars
    assert "points:" in stderr and " : policy=" not in stdout and "week" not in stderr


# ---------------------------------------------------------------------------- Ray
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                    reason="hydra-ray-launcher not installed (uv sync --group cluster)")
def test_ray_local_launcher_has_no_dashboard_and_keeps_it_local(tmp_path):
    """hydra/launcher=ray_local composes to ray.init(address=None, include_dashboard=False,
    dashboard_host='127.0.0.1'), on the Ray whose local clusters require a token (2.59 or later)."""
    from importlib.metadata import version

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from packaging.version import Version

    configs = next(p for p in (REPO / "configs", REPO / "sim" / "configs") if p.is_dir())
    (tmp_path / "config.yaml").write_text("x: 1\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True,
                      overrides=[f"hydra.searchpath=[file://{configs}]", "hydra/launcher=ray_local"])
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert launcher["ray"]["init"] == {"address": None, "include_dashboard": False,
                                       "dashboard_host": "127.0.0.1"}
    assert Version(version("ray")) >= Version("2.59")

