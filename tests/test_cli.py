"""The command line's machinery in-process: composition shortcuts, the public load_config, help
texts, checks before Hydra starts, write failures, and the installed wheel."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import sim.cli
import sim.config
from sim import ConfigError, Posture, RunConfig, load_config

REPO = Path(__file__).resolve().parent.parent


def _user_dir(tmp_path: Path) -> Path:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "fast.yaml").write_text(
        "defaults:\n  - rotational\n  - _self_\nrotation_interval_weeks: 3\n")
    return tmp_path


# ----------------------------------------------------------------------------- composition
def test_composing_each_group_choice_once_gives_the_full_compositions(tmp_path):
    """The sweep shortcut (compose group choices once, merge values) equals composing each job."""
    users = _user_dir(tmp_path)
    jobs = sim.config.expand_sweep(["policy=rotational,permanent,fast", "credibility=0.2,0.9",
                                    "params.spiral_weight=0.1", "scenario.weeks=30"])
    assert len(jobs) == 6
    with sim.config._hydra_compose([users]) as compose:
        fast = sim.config.compose_jobs(compose, "config", jobs, RunConfig)
        full = [sim.config.to_run_config(compose("config", job)) for job in jobs]
    assert fast == full
    assert {c.policy.rotation_interval_weeks for c in fast} == {3, 6}


def test_composing_jobs_leaves_no_value_of_one_job_in_the_next():
    """Jobs of one group choice that set different keys: each equals its full composition, so no
    job's value stays in the composition they share (it is changed in place and put back)."""
    jobs = [["credibility=0.2"], ["params.spiral_weight=0.9", "scenario.dprk_prior=0.4"], ["credibility=0.3"],
            ["scenario.dprk_prior=null"]]
    with sim.config._hydra_compose() as compose:
        fast = sim.config.compose_jobs(compose, "config", jobs, RunConfig)
        full = [sim.config.to_run_config(compose("config", job)) for job in jobs]
    assert fast == full
    assert full[2].params.spiral_weight == RunConfig().params.spiral_weight
    assert full[2].scenario.dprk_prior is None


def test_records_written_in_parts_are_the_records_written_whole():
    """A batched group's other points get Hydra's records emitted entry by entry, reusing the text
    of entries an earlier point had: the same bytes as emitting each record whole, point after
    point, with keys and values YAML must quote or nest."""
    from sim.cli import _to_yaml, _to_yaml_in_parts

    texts: dict[str, str] = {}
    hydra = {"hydra": {"run": {"dir": "outputs/${now:%Y-%m-%d}"}, "job": {"num": 0, "id": "0"},
                       "help": {"template": "line one\nline two: with a colon\n" * 3},
                       "overrides": {"task": ["credibility=0.2"], "hydra": []}, "env": {},
                       "yes": {"a:b": "no", "x": [1, 2.0, "3", True, None, {"é": "ü"}]}}}
    for k in range(4):
        hydra["hydra"]["job"] = {"num": k, "id": str(k), "override_dirname": f"credibility=0.{k}"}
        hydra["hydra"]["overrides"]["task"] = [f"credibility=0.{k}", "policy=none"]
        task = {"credibility": k / 10, "params": {"spiral_weight": 0.5, "perception": "consistent"},
                "scenario": {"dprk_prior": None if k % 2 else 0.3, "start_date": "2017-01-02"},
                "run_figure": [True, 1, "1", 1.0][k], "seed": 20161220, "long": "word " * 40}
        for record in (hydra, task, hydra["hydra"]["overrides"]["task"], {}, {"only": {}}):
            assert _to_yaml_in_parts(record, texts) == _to_yaml(record), record


def test_expand_sweep_orders_and_overrides_like_hydras_basic_sweeper():
    jobs = sim.config.expand_sweep(["policy=rotational,none", "credibility=0.1,0.5", "credibility=0.9"])
    assert jobs == [["policy=rotational", "credibility=0.9"], ["policy=none", "credibility=0.9"]]


def test_load_config_is_what_the_command_line_runs():
    argv = ["params=calibrated", "policy=permanent", "credibility=0.8", "scenario.weeks=104"]
    cfg = load_config(argv)
    assert cfg == sim.cli.preflight(argv)[0]
    assert cfg.policy.name == Posture.permanent and cfg.scenario.weeks == 104
    assert cfg.params != RunConfig().params  # the calibrated file was read


def test_load_config_refuses_sweeps_and_explains_mistakes_in_one_line():
    with pytest.raises(ConfigError, match="one point at a time"):
        load_config(["credibility=0.1,0.2"])
    with pytest.raises(ConfigError) as info:
        load_config(["params.spiral_wieght=0.5"])
    assert "spiral_wieght" in str(info.value) and "\n" not in str(info.value)


def test_load_config_finds_a_users_config_folder(tmp_path):
    cfg = load_config(["policy=fast"], config_dirs=[_user_dir(tmp_path)])
    assert cfg.policy.rotation_interval_weeks == 3


def test_calibrate_settings_compose_including_its_policy():
    """`policy` is a dsim-calibrate setting: it must not be read as dsim's config group."""
    cc = load_config(["policy=permanent", "replications=20"], config_name="calibrate")
    policy = cc.policy
    assert getattr(policy, "name", policy) in (Posture.permanent, "permanent")


def test_no_private_hydra_api_in_the_config_path():
    """Composition uses Hydra's public API only (the pre-check once patched Hydra internals)."""
    sources = [REPO / "sim" / "config.py", REPO / "sim" / "cli.py",
               *sorted((REPO / "hydra_plugins").rglob("*.py"))]
    for path in sources:
        text = path.read_text()
        for private in ("hydra._internal", "_set_flag", "_get_node", "validate_batch_is_legal ="):
            assert private not in text, f"{path.name} uses {private}"


def test_run_figure_defaults_to_single_runs_only():
    """escalation.png: drawn for a single run, not for a sweep's points (the sweep draws its own
    figures), unless the run_figure setting says otherwise."""
    from types import SimpleNamespace

    cfg = RunConfig(progress=False)
    assert sim.cli.wants_figure(cfg, in_sweep=False) and not sim.cli.wants_figure(cfg, in_sweep=True)
    for choice in (True, False):
        forced = SimpleNamespace(run_figure=choice)  # the setting (RunConfig.run_figure) forces it
        assert sim.cli.wants_figure(forced, in_sweep=True) is choice
        assert sim.cli.wants_figure(forced, in_sweep=False) is choice


# ----------------------------------------------------------------------------- command line
def test_hydra_options_go_before_the_overrides():
    cl = sim.cli.parse_command_line(["policy=none", "--cfg", "job", "credibility=0.3", "-cd", "x"])
    assert cl.overrides == ["policy=none", "credibility=0.3"]
    assert cl.cfg == "job" and cl.config_dirs == ["x"] and not cl.multirun
    assert cl.hydra_argv() == ["--cfg", "job", "-cd", "x", "policy=none", "credibility=0.3"]
    cl = sim.cli.parse_command_line(["policy=a,b", "-m", "credibility=0.3"])
    assert cl.multirun and cl.hydra_argv() == ["-m", "policy=a,b", "credibility=0.3"]


def test_help_names_groups_options_experiments_and_other_commands():
    text = sim.cli.dsim_help()
    for word in ("policy", "permanent", "scenario", "historical", "params", "calibrated",
                 "rotational_vs_permanent", "-m", "dsim-report", "dsim-calibrate", "--cfg job"):
        assert word in text, word


def test_calibrate_help_lists_only_its_own_keys():
    text = sim.cli.calibrate_help()
    keys = set(re.findall(r"^  (\w+)=", text, flags=re.M))
    calibrate_keys = set(re.findall(r"^(\w+):", (sim.config.config_dir() / "calibrate.yaml").read_text(),
                                    flags=re.M)) - {"defaults", "hydra"}
    assert keys == calibrate_keys | {"policy"}  # policy: the one config group it takes
    assert "reference_policy" not in text


def test_a_run_that_cannot_fit_in_memory_is_refused_before_it_starts(monkeypatch):
    monkeypatch.setattr(sim.cli, "available_memory", lambda: 2 * 2**30)
    with pytest.raises(ConfigError, match=r"replications=400000 .* GiB"):
        sim.cli.preflight(["replications=400000"])
    sim.cli.preflight(["replications=1000"])  # a normal run fits


def test_an_unwritable_output_folder_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        sim.cli.preflight([f"hydra.run.dir={blocker / 'sub'}"])
    with pytest.raises(ConfigError, match="is a file"):
        sim.cli.preflight([f"hydra.run.dir={blocker}"])


def test_a_failed_write_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    """A full or read-only disk while writing the run's files: one line, no traceback."""
    import sim.outputs

    def full_disk(results, out_dir, figure=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sim.outputs, "write_run", full_disk)
    cfg = RunConfig(replications=5, progress=False).replace(scenario={"weeks": 3})
    with pytest.raises(SystemExit) as info:
        sim.cli.execute(cfg, tmp_path / "out")
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and err[0].startswith("dsim: error:")


# ----------------------------------------------------------------------------- the wheel
@pytest.mark.slow
def test_the_wheel_carries_configs_and_data_and_its_dsim_runs(tmp_path):
    """`uv build` then install the wheel alone in a new environment, and use it away from the
    repository: the configs and the event record come from the package (importlib.resources).
    (Running a simulation there would spend a minute compiling the kernels for the new path;
    composing the configs through Hydra is what the packaging decides.)"""
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names its own binary in $UV
    if uv is None:
        pytest.skip("uv not found (run the tests with `uv run pytest`)")
    dist = tmp_path / "dist"
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sim/configs/config.yaml" in names and "sim/data/events.csv" in names
    assert "hydra_plugins/dsim_sweeper/dsim_sweeper.py" in names
    # A new environment holding the wheel alone; its dependencies are borrowed from this one
    # (a .pth line), so the test does not reinstall numba, pandas, Mesa, ... for a minute.
    env_dir = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(env_dir)], check=True, capture_output=True,
                   timeout=120)
    python = env_dir / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--no-deps", "--python", str(python), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    for program, expected in (("dsim", "credibility: 0.7"), ("dsim-calibrate", "events_file:"),
                              ("dsim-forecast", "draws:")):
        res = subprocess.run([str(env_dir / "bin" / program), "--cfg", "job"], cwd=work,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert expected in res.stdout
    probe = ("import sim.config as c, sim.events as e; print(c.config_dir()); print(c.data_dir()); "
             "print(len(e.load_events(e.default_events_path())))")
    found = subprocess.run([str(python), "-c", probe], cwd=work, capture_output=True, text=True,
                           check=True, timeout=300).stdout.split()
    assert all(line.startswith(site) for line in found[:2])  # the wheel's copies, not the checkout
    assert int(found[2]) > 200  # the whole event record
    assert not any(work.iterdir())  # printing wrote nothing
