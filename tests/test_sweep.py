"""Sweeps end to end: multirun, aggregation, figures, resume, launchers, bad sweep input."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.outputs import verify_run
from sim.sweep import SWEEP_FILES, SweepError, aggregate

SMALL = ["replications=40", "scenario.weeks=52", "progress=false"]


def _script(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    return [str(script)] if script.is_file() else [shutil.which(name) or name]


def dsim(tmp: Path, *argv: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_script("dsim") + list(argv), cwd=tmp, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


def point_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture(scope="module")
def four_point(tmp_path_factory):
    """A 2 x 2 sweep (posture x credibility) with the basic launcher."""
    tmp = tmp_path_factory.mktemp("sweep4")
    sweep = tmp / "sweep"
    res = dsim(tmp, "-m", "policy=rotational,permanent", "credibility=0.2,0.8", *SMALL,
               f"hydra.sweep.dir={sweep}")
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp, sweep


def test_four_point_sweep_aggregates_and_draws(four_point):
    _, sweep = four_point
    assert len(point_dirs(sweep)) == 4
    for name in SWEEP_FILES:
        assert (sweep / name).stat().st_size > 0, name
    table = pd.read_parquet(sweep / "sweep.parquet")
    assert {"policy", "credibility", "metric", "value", "ci_low", "ci_high"} <= set(table.columns)
    assert table.groupby(["policy", "credibility"]).ngroups == 4
    assert table["metric"].nunique() * 4 == len(table)  # one row per point x metric
    comp = pd.read_csv(sweep / "comparison.csv")
    assert set(comp["comparison"]) == {"permanent - rotational"}
    assert set(comp["credibility"]) == {0.2, 0.8}
    assert comp["paired"].all()  # same seed and R at every point: paired replications
    assert (comp["ci_low"] <= comp["difference"]).all() and (comp["difference"] <= comp["ci_high"]).all()
    cost = comp[comp["metric"] == "us_deployment_cost_per_year"]
    assert (cost["mean_a"] == cost["cost_per_year_a"]).all()


@pytest.fixture(scope="module")
def four_point_one_job_each(tmp_path_factory):
    """The module's 2 x 2 sweep again with one job per point (hydra.sweeper.batched=false)."""
    tmp = tmp_path_factory.mktemp("sweep4_unbatched")
    sweep = tmp / "sweep"
    res = dsim(tmp, "-m", "policy=rotational,permanent", "credibility=0.2,0.8", *SMALL,
               "hydra.sweeper.batched=false", f"hydra.sweep.dir={sweep}")
    assert res.returncode == 0, res.stderr[-2000:]
    return sweep


# What Hydra's record of a job may differ in between the two ways of running it: the job's number
# and id, the batch plan the first point of a group was launched with, the sweeper's setting and
# the command line's own Hydra overrides; the folders are compared relative to the test's folder.
JOB_KEYS = (("job", "num"), ("job", "id"), ("job", "env_set"), ("overrides", "hydra"),
            ("sweeper", "batched"))


def _assert_same_files(a: Path, b: Path, records: bool = True) -> None:
    """The run files of two point folders are identical: the tables byte for byte, and (with
    ``records``) summary.json and manifest.json but for the code's git state (which other work on
    the same tree may change between two runs: summary.json records it, and the manifest holds
    summary.json's checksum); without, the summaries' metrics."""
    import json

    for f in ("timeseries.parquet", "replications.parquet"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{a.name}/{f}"
    if not records:
        metrics = [json.loads((d / "summary.json").read_text())["metrics"] for d in (a, b)]
        assert metrics[0] == metrics[1], a.name
        return
    code = ("git_commit", "git_dirty", "package_version")
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert {k: v for k, v in sa.items() if k not in code} == {k: v for k, v in sb.items() if k not in code}
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    if all(sa.get(k) == sb.get(k) for k in code):
        assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()
        assert ma == mb
    for m in (ma, mb):
        m["files"].pop("summary.json")
    assert ma == mb, a.name


def _hydra_record(path: Path, tmp: Path, keep_job: bool = False) -> dict:
    """Hydra's record of a job (``hydra.yaml``), ``tmp`` written ``<tmp>``, without what may differ
    between two ways of running it (:data:`JOB_KEYS`); with ``keep_job``, only the command line's
    own Hydra overrides, the sweeper's worker setting and the batch plan (a file named at random)
    are left out."""
    import yaml

    record = yaml.safe_load(path.read_text().replace(str(tmp), "<tmp>"))["hydra"]
    for a, b in (JOB_KEYS if not keep_job else
                 (("overrides", "hydra"), ("sweeper", "workers"), ("job", "env_set"))):
        record[a].pop(b)
    return record


def test_batched_points_write_what_one_job_per_point_writes(four_point, four_point_one_job_each):
    """The 2 x 2 sweep runs as two batched models (one per posture, credibility in blocks) by
    default: every point folder has the same files as with one job per point, its data files,
    summary, manifest and Hydra records byte for byte, and the sweep's tables are identical. The
    points draw no escalation.png (the sweep draws its own figures)."""
    _, batched = four_point
    single = four_point_one_job_each
    names = [p.name for p in point_dirs(batched)]
    assert names == [p.name for p in point_dirs(single)] and len(names) == 4
    for name in names:
        a, b = batched / name, single / name
        files = sorted(str(f.relative_to(a)) for f in a.rglob("*") if f.is_file())
        assert files == sorted(str(f.relative_to(b)) for f in b.rglob("*") if f.is_file()), name
        assert "escalation.png" not in files and "cli.log" in files
        _assert_same_files(a, b)
        for f in (".hydra/config.yaml", ".hydra/overrides.yaml"):
            assert (a / f).read_bytes() == (b / f).read_bytes(), f"{name}/{f}"
        assert (_hydra_record(a / ".hydra" / "hydra.yaml", batched.parent)
                == _hydra_record(b / ".hydra" / "hydra.yaml", single.parent)), name
        assert f"-> {a}" in (a / "cli.log").read_text()  # each point's log has its own lines
    for f in ("comparison.csv", "sweep.parquet"):
        assert (batched / f).read_bytes() == (single / f).read_bytes(), f
    assert not [p for p in batched.iterdir() if p.name.startswith(".")]  # no plan left behind
    logs = "".join((p / "cli.log").read_text() for p in point_dirs(batched))
    assert logs.count("running 2 points as one batched model") == 2
    assert "batched model" not in "".join((p / "cli.log").read_text() for p in point_dirs(single))


def test_paired_difference_matches_the_point_files(four_point):
    """The comparison's difference is the difference of the two points' replication means."""
    from sim.metrics import replication_metrics

    _, sweep = four_point
    comp = pd.read_csv(sweep / "comparison.csv")
    row = comp[(comp["metric"] == "dprk_launch_days_per_year") & (comp["credibility"] == 0.8)].iloc[0]
    a = replication_metrics(pd.read_parquet(sweep / "credibility=0.8,policy=permanent,replications=40,"
                                            "scenario.weeks=52" / Path("replications.parquet")))
    b = replication_metrics(pd.read_parquet(sweep / "credibility=0.8,policy=rotational,replications=40,"
                                            "scenario.weeks=52" / Path("replications.parquet")))
    diff = a["dprk_launch_days_per_year"].mean() - b["dprk_launch_days_per_year"].mean()
    assert row["difference"] == pytest.approx(diff, rel=1e-5)


def test_resume_skips_done_points_and_redoes_a_corrupted_one(four_point):
    """Rerun with progress=true (a setting that does not change results): the three intact points
    are skipped; the one with flipped bytes inside its Parquet data (its footer still reads) fails
    its manifest checksum and is recomputed."""
    tmp, sweep = four_point
    points = point_dirs(sweep)
    before = {p.name: (p / "summary.json").stat().st_mtime_ns for p in points}
    corrupt = points[0]
    data = bytearray((corrupt / "replications.parquet").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (corrupt / "replications.parquet").write_bytes(bytes(data))
    assert verify_run(corrupt) is not None
    (corrupt / ".partial-killed").mkdir()  # staging left by a killed write of this point
    (sweep / ".dsim-batches-killed").mkdir()  # batch plans left by a killed sweep
    (sweep / ".dsim-batches-killed" / "group-0.json").write_text("{}")
    res = dsim(tmp, "-m", "policy=rotational,permanent", "credibility=0.2,0.8", *SMALL[:-1], "progress=true",
               f"hydra.sweep.dir={sweep}")
    assert res.returncode == 0, res.stderr[-2000:]
    # the console shows one bar over the points; each point's own log says whether it was skipped
    logs = "".join(log.read_text() for p in point_dirs(sweep) for log in p.glob("*.log"))
    assert logs.count("skipping complete point") == 3
    assert "skipping complete point" not in res.stdout + res.stderr
    after = {p.name: (p / "summary.json").stat().st_mtime_ns for p in point_dirs(sweep)}
    for name, mtime in before.items():
        assert (after[name] != mtime) == (name == corrupt.name), name
    assert verify_run(corrupt) is None  # rewritten, with a manifest that matches
    assert not (corrupt / ".partial-killed").exists()
    assert not [p for p in sweep.iterdir() if p.name.startswith(".dsim-batches-")]


def test_a_failing_aggregation_ends_the_sweep_with_one_line_and_exit_1(four_point):
    """Hydra turns a callback's exception into a warning and exits 0; the callback ends the command
    itself. The points are complete (all skipped), the aggregation is made to fail."""
    tmp, sweep = four_point
    before = {name: (sweep / name).stat().st_mtime_ns for name in SWEEP_FILES}
    code = ("import sys, sim.sweep\n"
            "def boom(*args, **kwargs):\n    raise RuntimeError('injected failure')\n"
            "sim.sweep.plot_escalation_curves = boom\n"
            "from sim.cli import main\n"
            "sys.argv = ['dsim', *sys.argv[1:]]\n"
            "main()\n")
    argv = ["-m", "policy=rotational,permanent", "credibility=0.2,0.8", *SMALL, f"hydra.sweep.dir={sweep}"]
    res = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 1, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("dsim: error:") and "injected failure" in last and "dsim-report" in last
    assert "Traceback" not in res.stderr
    # nothing replaced or half-written
    assert {name: (sweep / name).stat().st_mtime_ns for name in SWEEP_FILES} == before
    assert not list(sweep.glob(".partial-*"))


def test_report_redoes_the_files_and_rejects_a_bad_folder(four_point, tmp_path):
    _, sweep = four_point
    (sweep / "comparison.csv").unlink()
    paths = aggregate(sweep)
    assert paths["comparison.csv"].stat().st_size > 0
    res = subprocess.run(_script("dsim-report") + [str(tmp_path / "nowhere")], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "dsim-report: error:" in res.stderr
    with pytest.raises(SweepError, match="no complete sweep points"):
        aggregate(tmp_path)


def test_joblib_launcher_gives_the_same_results_as_basic(four_point, tmp_path):
    """The module's four points again with hydra/launcher=joblib (2 processes): one batched group
    per posture, one in each worker; the same tables and metrics as the basic launcher's (whose
    sweep the resume test has partly rerun with progress=true, which summary.json records)."""
    _, basic = four_point
    joblib = dsim(tmp_path, "-m", "policy=rotational,permanent", "credibility=0.2,0.8", *SMALL,
                  "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                  f"hydra.sweep.dir={tmp_path / 'joblib'}")
    assert joblib.returncode == 0, joblib.stderr[-2000:]
    names = [p.name for p in point_dirs(tmp_path / "joblib")]
    assert names == [p.name for p in point_dirs(basic)], names
    logs = "".join((tmp_path / "joblib" / name / "cli.log").read_text() for name in names)
    assert logs.count("running 2 points as one batched model") == 2
    for name in names:
        _assert_same_files(basic / name, tmp_path / "joblib" / name, records=False)


def test_a_users_config_folder_batches_by_what_it_composes_to(four_point, tmp_path):
    """`--config-dir` with a posture file that composes to the rotational posture under another
    name: its two credibilities run as one batched model (in one process: with two, each point
    would be a job of its own) and give the rotational points' data."""
    _, basic = four_point
    (tmp_path / "mine" / "policy").mkdir(parents=True)
    (tmp_path / "mine" / "policy" / "same.yaml").write_text("defaults:\n  - rotational\n  - _self_\n")
    res = dsim(tmp_path, "-m", "--config-dir", str(tmp_path / "mine"), "policy=same",
               "credibility=0.2,0.8", *SMALL, "hydra.sweeper.workers=1",
               f"hydra.sweep.dir={tmp_path / 'mine_sweep'}")
    assert res.returncode == 0, res.stderr[-2000:]
    points = point_dirs(tmp_path / "mine_sweep")
    assert [p.name.split(",")[0] for p in points] == ["credibility=0.2", "credibility=0.8"]
    assert "".join((p / "cli.log").read_text() for p in points).count("as one batched model") == 1
    for p in points:
        twin = basic / p.name.replace("policy=same", "policy=rotational")
        for f in ("replications.parquet", "timeseries.parquet"):
            assert (p / f).read_bytes() == (twin / f).read_bytes(), f


# ----------------------------------------------------------------------------- forked workers
EIGHT = ["policy=rotational,permanent", "params.perception=consistent,costly_signals", "credibility=0.2,0.8"]

# Runs dsim with every group's job (execute_group) and every single point's (execute) noting the
# process it runs in, so a test can tell where the jobs ran: `python -c WATCHED PIDFILE ARGS...`.
WATCHED = """
import os, sys
import sim.cli

pids = sys.argv.pop(1)

def noting(run):
    def noted(*args, **kwargs):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()} {os.getppid()}\\n")
        return run(*args, **kwargs)
    return noted

sim.cli.execute_group = noting(sim.cli.execute_group)
sim.cli.execute = noting(sim.cli.execute)
sys.argv[0] = "dsim"
sim.cli.main()
"""


def watched_dsim(tmp: Path, pids: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WATCHED, str(pids), *argv], cwd=tmp, capture_output=True,
                          text=True, timeout=600)


def job_processes(pids: Path) -> tuple[set[int], set[int]]:
    """The processes the jobs ran in, and their parents."""
    rows = [tuple(map(int, line.split())) for line in pids.read_text().splitlines()]
    return {pid for pid, _ in rows}, {parent for _, parent in rows}


@pytest.fixture(scope="module")
def eight_point(tmp_path_factory):
    """A 2 x 2 x 2 sweep (posture x perception x credibility: four batched groups of two points)
    run three ways: its jobs in two forked workers, in the sweep's own process (workers=1), and
    one job per point in two forked workers (batched=false). Returns the folders and, for each,
    the processes its jobs ran in and their parents."""
    tmp = tmp_path_factory.mktemp("sweep8")
    out = {}
    for name, extra in (("forked", ["hydra.sweeper.workers=2"]), ("one_process", ["hydra.sweeper.workers=1"]),
                        ("unbatched", ["hydra.sweeper.workers=2", "hydra.sweeper.batched=false"])):
        pids = tmp / f"{name}.pids"
        res = watched_dsim(tmp, pids, "-m", *EIGHT, *SMALL, *extra, f"hydra.sweep.dir={tmp / name}")
        assert res.returncode == 0, res.stderr[-2000:]
        out[name] = (tmp / name, *job_processes(pids))
    return tmp, out


def _without_times(log: str) -> list[str]:
    """A log's lines without their timestamps (``[2026-11-30 15:18:20,881]``)."""
    return [line.split("]", 1)[-1] for line in log.splitlines()]


def test_forked_workers_write_what_one_process_writes(eight_point):
    """The jobs ran in two processes forked from the sweep's (not in it), one process in the
    sequential run; every point folder is byte for byte the same (Hydra's records too, job
    numbers included: the worker launches each job with its number in the sweep), but for the
    command line's own worker setting; the sweep's tables are identical."""
    tmp, runs = eight_point
    forked, forked_pids, forked_parents = runs["forked"]
    single, single_pids, single_parents = runs["one_process"]
    assert len(forked_pids) == 2 and len(forked_parents) == 1  # two workers of one sweep process
    assert not forked_pids & forked_parents
    assert len(single_pids) == 1 and not single_pids & single_parents
    names = [p.name for p in point_dirs(forked)]
    assert names == [p.name for p in point_dirs(single)] and len(names) == 8
    for name in names:
        a, b = forked / name, single / name
        files = sorted(str(f.relative_to(a)) for f in a.rglob("*") if f.is_file())
        assert files == sorted(str(f.relative_to(b)) for f in b.rglob("*") if f.is_file()), name
        _assert_same_files(a, b)
        for f in (".hydra/config.yaml", ".hydra/overrides.yaml"):
            assert (a / f).read_bytes() == (b / f).read_bytes(), f"{name}/{f}"
        ha, hb = (_hydra_record(d / name / ".hydra/hydra.yaml", d, keep_job=True) for d in (forked, single))
        assert ha["job"]["num"] == hb["job"]["num"] and ha == hb, name
        logs = [_without_times((d / name / "cli.log").read_text().replace(str(d), "<sweep>"))
                for d in (forked, single)]
        assert logs[0] == logs[1], name
    for f in ("comparison.csv", "sweep.parquet"):
        assert (forked / f).read_bytes() == (single / f).read_bytes(), f
    assert not [p for p in forked.iterdir() if p.name.startswith(".")]  # no plan left behind


def test_forked_workers_write_what_one_job_per_point_writes(eight_point):
    """One job per point, also in two forked workers: the same files as the batched groups."""
    tmp, runs = eight_point
    forked, unbatched = runs["forked"][0], runs["unbatched"][0]
    assert len(runs["unbatched"][1]) == 2
    for name in [p.name for p in point_dirs(forked)]:
        a, b = forked / name, unbatched / name
        _assert_same_files(a, b)
        for f in (".hydra/config.yaml", ".hydra/overrides.yaml"):
            assert (a / f).read_bytes() == (b / f).read_bytes(), f"{name}/{f}"
        ha, hb = (_hydra_record(d / name / ".hydra" / "hydra.yaml", d) for d in (forked, unbatched))
        assert ha == hb, name
    for f in ("comparison.csv", "sweep.parquet"):
        assert (forked / f).read_bytes() == (unbatched / f).read_bytes(), f


FAILING = """
import sys
import sim.batching
from sim.params import ConfigError

kind = sys.argv.pop(1)
run_points = sim.batching.run_points

def failing(configs, *args, **kwargs):
    if any(c.credibility == 0.8 and c.policy.name.value == "permanent" for c in configs):
        if kind == "line":
            raise ConfigError("injected failure of the permanent posture at credibility 0.8")
        raise RuntimeError("injected crash of the permanent posture at credibility 0.8")
    return run_points(configs, *args, **kwargs)

sim.batching.run_points = failing
sys.argv[0] = "dsim"
from sim.cli import main
main()
"""


@pytest.mark.parametrize("kind", ["line", "crash"])
def test_a_failing_point_fails_the_forked_sweep(tmp_path, kind):
    """A group whose point fails in a worker fails the sweep: dsim's one-line error (exit 2,
    the line last, no traceback) or an unexpected exception (Hydra's report of the failed job,
    exit 1); no sweep files are written and no worker is left running."""
    argv = ["-m", *EIGHT, *SMALL, "hydra.sweeper.workers=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    res = subprocess.run([sys.executable, "-c", FAILING, kind, *argv], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    if kind == "line":
        assert res.returncode == 2, res.stderr[-2000:]
        lines = res.stderr.strip().splitlines()
        assert lines[-1] == "dsim: error: injected failure of the permanent posture at credibility 0.8"
        assert res.stderr.count("injected failure") == 1 and "Traceback" not in res.stderr
    else:
        assert res.returncode == 1, res.stderr[-2000:]
        assert "injected crash of the permanent posture at credibility 0.8" in res.stderr
        assert "Error executing job with overrides" in res.stderr
    assert not [name for name in SWEEP_FILES if (tmp_path / "sweep" / name).exists()]


def test_forked_figures_equal_figures_drawn_in_turn(four_point, tmp_path, monkeypatch):
    """The sweep's figures drawn in forked processes (while the comparison is computed) are the
    same files as those drawn one after another in this process."""
    import sim.cli

    _, sweep = four_point
    copies = {}
    for cores in (2, 1):
        monkeypatch.setattr(sim.cli, "usable_cores", lambda cores=cores: cores)
        aggregate(sweep)
        copies[cores] = {name: (sweep / name).read_bytes() for name in SWEEP_FILES}
    assert copies[2] == copies[1]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["-m", "experiment=bogus"], "experiment=bogus is not a known experiment"),
        (["-m", "credibility=0.2,0.8", "hydra.sweeper.workers=0"], "hydra.sweeper.workers=0"),
        (["-m", "policy=rotational,bogus"], "policy=bogus is not a known policy"),
        (["-m", "experiment=rotational_vs_permanent", "hydra.sweeper.params.credibility="],
         "the sweep has no points"),
    ],
)
def test_bad_sweep_input_is_one_line(tmp_path, argv, fragment):
    import sim.cli

    with pytest.raises(sim.cli.ConfigError, match=fragment):
        sim.cli.preflight(argv)


def test_bad_sweep_input_through_the_script(tmp_path):
    res = dsim(tmp_path, "-m", "experiment=bogus", f"hydra.sweep.dir={tmp_path / 'x'}")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("dsim: error:") and "\n" not in res.stderr.strip()
    assert "Traceback" not in res.stderr and not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                    reason="hydra-ray-launcher not installed (uv sync --group cluster)")
def test_two_point_sweep_on_a_local_ray(tmp_path):
    """The cluster launcher as the README documents it (`hydra/launcher=ray_local`: no dashboard),
    on a local Ray started by the launcher itself.

    Ray ships the working folder to its workers and puts it first on their path: a folder there
    named `ray` would shadow the ray package itself, hence the sweep folder's name. Under `uv run`,
    Ray would start its workers with `uv run` too, outside this project (no ray there): the README
    says to set RAY_ENABLE_UV_RUN_RUNTIME_ENV=0, as here.
    """
    res = dsim(tmp_path, "-m", "policy=rotational,permanent", "credibility=0.2,0.8", *SMALL,
               "hydra/launcher=ray_local",
               "+hydra.launcher.ray.init.num_cpus=1",  # one Ray worker: the points run in turn
               f"hydra.sweep.dir={tmp_path / 'sweep_on_ray'}", timeout=400,
               RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    assert res.returncode == 0, res.stderr[-3000:]
    points = point_dirs(tmp_path / "sweep_on_ray")
    assert len(points) == 4  # two batched groups, each run by a Ray worker
    assert "".join((p / "cli.log").read_text() for p in points).count("as one batched model") == 2
    assert (tmp_path / "sweep_on_ray" / "comparison.csv").stat().st_size > 0
