"""Hydra configs: composition of every option, preflight validation, and the `dsim` console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import sim.cli
from sim import ConfigError, ModelParams, PolicyConfig, Posture, RunConfig, ScenarioConfig, load_config
from sim.calendar import week_years
from sim.metrics import headline_metrics
from sim.recording import COUNT_COLUMNS, WEEKLY_COLUMNS

CONFIG_DIR = sim.cli.config_dir()
GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONFIG_DIR.iterdir()
    if group.is_dir()
    for option in group.glob("*.yaml")
)

# The bad command lines, with a fragment the one-line message must name.
BAD_INPUTS = {
    "misspelt-key": (["credibilty=0.8"], "credibilty"),
    "out-of-range": (["credibility=1.5"], "credibility"),
    "unknown-option": (["policy=bogus"], "bogus"),
    "bad-date": (["scenario.start_date=2026-13-01"], "start_date"),
    "zero-replications": (["replications=0"], "replications"),
    "experiment-without-m": (["experiment=rotational_vs_permanent"], "add -m"),
    "unknown-flag": (["--bogus"], "--bogus"),
    "config-path-flag": (["--config-path", "elsewhere"], "--config-dir"),
    "added-key": (["+credibilty=0.3"], "credibilty"),
    "empty-group-option": (["policy="], "needs an option"),
    "two-modes": (["-m", "--cfg", "job"], "cannot be combined"),
    # settings removed by issue 11: the line names what replaced them
    "removed-belief-memory": (["params.belief_memory=0.9"], "us_type_turnover"),
    "removed-lik-threat": (["params.lik_threat_res=0.6"], "own choice probabilities"),
    "unknown-perception": (["params.perception=bogus"], "costly_signals"),
    "prior-out-of-range": (["scenario.dprk_prior=1.5"], "dprk_prior"),
}
# Bad inputs only the end-to-end runs check (they name their own output folder or need -m).
CLI_ONLY_BAD_INPUTS = {
    "joblib-zero-jobs": (["-m", "policy=rotational,none", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"],
                         "n_jobs"),
    "output-under-a-file": (["hydra.run.dir=/dev/null/x"], "/dev/null"),
    "too-many-replications": (["replications=10000000"], "memory"),
    "user-file-typo": (["--config-dir", "{users}", "policy=typo"], "rotation_intervl_weeks"),
    "user-file-broken": (["--config-dir", "{users}", "policy=broken"], "not valid YAML"),
}
# Commands that must work and only print (Hydra's --cfg, and ours --help).
PRINT_COMMANDS = {
    "cfg-job": (["--cfg", "job"], "credibility: 0.7"),
    "c-job-resolve": (["-c", "job", "--resolve"], "reference_policy: rotational"),
    "cfg-all": (["--cfg", "all"], "hydra:"),
    "help": (["--help"], "rotational_vs_permanent"),
    "user-config-dir": (["--config-dir", "{users}", "policy=mine", "--cfg", "job"],
                        "rotation_interval_weeks: 3"),
    "user-searchpath": (["hydra.searchpath=[file://{users}]", "policy=mine", "--cfg", "job"],
                        "rotation_interval_weeks: 3"),
}

# Through the console script: one case of each path (a value, a group option, the output folder,
# memory, a user's file, -m); every case of BAD_INPUTS is also checked in-process above.
ALL_BAD = {**{k: BAD_INPUTS[k] for k in ("misspelt-key", "unknown-option", "experiment-without-m")},
           **CLI_ONLY_BAD_INPUTS}


def write_user_configs(folder: Path) -> Path:
    """A user's config folder: a valid posture, one with a misspelt key, one that is not YAML."""
    (folder / "policy").mkdir(parents=True)
    (folder / "policy" / "mine.yaml").write_text(
        "defaults:\n  - rotational\n  - _self_\nrotation_interval_weeks: 3\n")
    (folder / "policy" / "typo.yaml").write_text("name: rotational\nrotation_intervl_weeks: 4\n")
    (folder / "policy" / "broken.yaml").write_text("name: [rotational\n")
    return folder

PER_REPLICATION_FIELDS = ["us_resolute", "max_rung", "first_clash_week", "war_week", "us_cost",
                          "final_dprk_belief", "final_rok_assurance", "final_japan_assurance"]


def _compose(overrides: list[str]) -> RunConfig:
    return load_config(overrides)


# --------------------------------------------------------------------------------- composition
def test_the_expected_config_groups_exist():
    options = set(GROUP_OPTIONS)
    for posture in Posture:
        assert ("policy", posture.value) in options
    assert ("scenario", "baseline") in options
    assert ("params", "default") in options


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option_composes_to_a_run_config(group, option):
    cfg = _compose([f"{group}={option}"])
    assert isinstance(cfg, RunConfig)
    if group == "policy":
        assert cfg.policy.name == Posture(option)
    if group == "scenario":
        assert cfg.scenario.name == option


def test_default_yaml_mirrors_the_dataclass_defaults():
    """configs/ and sim/params.py describe the same defaults (one schema, two spellings)."""
    cfg = _compose([])
    assert cfg.params == ModelParams()
    assert cfg.policy == PolicyConfig()
    assert cfg.scenario == ScenarioConfig()
    assert cfg == RunConfig()


def test_overrides_reach_the_run_config():
    cfg = _compose(["credibility=0.8", "policy=permanent", "params.spiral_weight=0.6",
                    "scenario.weeks=104", "seed=7"])
    assert cfg.credibility == 0.8
    assert cfg.policy.name == Posture.permanent
    assert cfg.params.spiral_weight == 0.6
    assert cfg.scenario.weeks == 104
    assert cfg.seed == 7


# ----------------------------------------------------------------------------------- preflight
@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_preflight_rejects_bad_input_with_a_one_line_message(case):
    argv, fragment = BAD_INPUTS[case]
    with pytest.raises(ConfigError) as info:
        sim.cli.preflight(argv)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert len(message) > len(fragment) + 10  # says more than the key: what is wrong, or the fix


def test_a_removed_key_in_a_user_file_names_its_replacement(tmp_path):
    """A user's old params file that still sets ``belief_memory`` (removed by issue 11) should get the
    same line as the command line: what replaced it."""
    (tmp_path / "params").mkdir()
    old = "defaults:\n  - default\n  - _self_\nbelief_memory: 0.9\n"
    (tmp_path / "params" / "old.yaml").write_text(old)
    with pytest.raises(ConfigError) as info:
        sim.cli.preflight(["--config-dir", str(tmp_path), "params=old"])
    assert "us_type_turnover" in str(info.value) and "\n" not in str(info.value)


def test_the_two_axes_and_the_perception_reach_the_run_config():
    """Issue 11: the true share of resolute US (credibility), the DPRK's prior (null: the common
    prior) and the DPRK's perception are set separately."""
    (cfg,) = sim.cli.preflight(["credibility=0.2", "scenario.dprk_prior=0.6",
                                "params.perception=costly_signals", "params.us_skip_irresolute=0.3"])
    assert cfg.credibility == 0.2 and cfg.scenario.dprk_prior == 0.6
    assert cfg.params.perception.value == "costly_signals" and cfg.params.us_skip_irresolute == 0.3
    (cfg,) = sim.cli.preflight([])
    assert cfg.scenario.dprk_prior is None and cfg.params.perception.value == "consistent"


def test_preflight_names_the_known_options_of_a_group():
    with pytest.raises(ConfigError, match="bogus") as info:
        sim.cli.preflight(["policy=bogus"])
    for posture in Posture:
        assert posture.value in str(info.value)


def test_preflight_expands_a_multirun_sweep():
    configs = sim.cli.preflight(["-m", "credibility=0.1,0.2", "policy=rotational,none"])
    assert len(configs) == 4
    assert all(isinstance(c, RunConfig) for c in configs)
    assert {(c.credibility, c.policy.name) for c in configs} == {
        (0.1, Posture.rotational), (0.1, Posture.none), (0.2, Posture.rotational), (0.2, Posture.none)
    }


def test_preflight_asks_for_multirun_when_a_sweep_is_given_without_m():
    with pytest.raises(ConfigError, match="-m"):
        sim.cli.preflight(["credibility=0.1,0.2"])


def test_preflight_accepts_a_valid_command_line():
    (cfg,) = sim.cli.preflight(["credibility=0.8", "policy=permanent", "hydra.run.dir=/nonexistent"])
    assert cfg.credibility == 0.8 and cfg.policy.name == Posture.permanent


def test_a_composition_with_hydras_node_gives_the_run_config():
    """What Hydra's launchers compose (load_sweep_config) carries the `hydra` node: dsim's sweeper
    validates such configs when preflight's are not at hand, and the node must not cost the schema
    (a masked copy once made it a plain dict: "the config is not a RunConfig")."""
    from sim.config import _hydra_compose, to_run_config

    with _hydra_compose() as compose:
        cfg = compose("config", ["credibility=0.3", "policy=none"], return_hydra_config=True)
    assert "hydra" in cfg
    config = to_run_config(cfg)
    assert isinstance(config, RunConfig)
    assert config.credibility == 0.3 and config.policy.name == Posture.none
    assert "hydra" in cfg  # the caller's config is left as it was


def test_python_m_sim_cli_batches_a_sweep(tmp_path):
    """`python -m sim.cli -m ...` runs as `dsim -m ...` does: dsim's sweeper finds the points
    preflight composed and runs them as one batched model. (Run as __main__, the file is a second
    copy of sim.cli: the sweeper once looked in the other copy, found nothing, composed the points
    again and, before to_run_config kept the schema of such configs, ran them one job each.)"""
    sweep = tmp_path / "sweep"
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['sim.cli', '-m', 'credibility=0.1,0.2,0.3', 'replications=10', 'scenario.weeks=20',\n"
        f"            'progress=false', 'hydra.sweeper.workers=1', 'hydra.sweep.dir={sweep}']\n"
        "try:\n"
        "    runpy.run_module('sim.cli', run_name='__main__', alter_sys=True)  # what python -m does\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "import sim.cli\n"
        "print('points the sweeper found:', len(sim.cli._COMPOSED))\n")
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "points the sweeper found: 3" in res.stdout
    assert "not batched" not in res.stderr
    logs = [p.read_text() for p in sweep.glob("*/cli.log")]
    assert len(logs) == 3 and any("running 3 points as one batched model" in t for t in logs)


# ------------------------------------------------------------------- the console script, end to end
def _dsim_command() -> list[str]:
    script = Path(sys.executable).parent / "dsim"
    if script.is_file():
        return [str(script)]
    found = shutil.which("dsim")
    return [found] if found else [sys.executable, "-m", "sim.cli"]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Run `dsim` once successfully and once per bad input, all at the same time (6 processes)."""
    tmp = tmp_path_factory.mktemp("dsim")
    users = write_user_configs(tmp / "users")
    jobs = {"ok": ["replications=50", "scenario.weeks=60", "progress=false", "credibility=0.8",
                   "policy=permanent", f"hydra.run.dir={tmp / 'run'}"]}
    for case, (argv, _) in ALL_BAD.items():
        argv = [a.replace("{users}", str(users)) for a in argv]
        own_dir = any(a.startswith("hydra.run.dir=") for a in argv)
        jobs[case] = argv + ([] if own_dir else [f"hydra.run.dir={tmp / case}",
                                                 f"hydra.sweep.dir={tmp / case}"])
    for case, (argv, _) in PRINT_COMMANDS.items():
        jobs[case] = [a.replace("{users}", str(users)) for a in argv] + [f"hydra.run.dir={tmp / case}"]
    procs = {
        name: subprocess.Popen(_dsim_command() + argv, cwd=tmp, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        for name, argv in jobs.items()
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = (proc.returncode, stdout, stderr)
    return tmp, out


def test_dsim_run_exits_zero_and_writes_the_four_files(cli_runs):
    tmp, out = cli_runs
    rc, stdout, stderr = out["ok"]
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    run_dir = tmp / "run"
    for name in ("timeseries.parquet", "replications.parquet", "summary.json", "escalation.png"):
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "escalation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp / "outputs").exists()  # hydra.run.dir was honoured


def test_dsim_parquet_files_have_the_documented_columns(cli_runs):
    tmp, _ = cli_runs
    ts = pd.read_parquet(tmp / "run" / "timeseries.parquet")
    assert list(ts.columns) == ["week", "date", *WEEKLY_COLUMNS]
    for col in ("tension_mean", "tension_q05", "tension_q50", "tension_q95", "dprk_belief_mean",
                "rok_assurance_mean", "japan_assurance_mean", "dprk_srbm_launch",
                "us_surge_deployment", "rok_strike_drill", "p_rung_at_least_rhetoric", "p_rung_at_least_war",
                "exercise_intensity", "consultation", "scheduled_arrival", "scheduled_on_station"):
        assert col in ts.columns, col
    assert len(ts) == 60
    reps = pd.read_parquet(tmp / "run" / "replications.parquet")
    assert list(reps.columns) == ["replication", "year", *COUNT_COLUMNS, *PER_REPLICATION_FIELDS]
    n_years = len(set(week_years(ScenarioConfig().start, 60).tolist()))
    assert len(reps) == 50 * n_years
    assert reps["replication"].nunique() == 50


def test_dsim_summary_holds_metrics_seed_config_and_commit(cli_runs):
    tmp, _ = cli_runs
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    assert "git_commit" in summary
    default_seed = sim.cli.preflight([])[0].seed
    assert summary["seed"] == default_seed == summary["config"]["seed"]
    assert summary["metrics"]
    for name, metric in summary["metrics"].items():
        assert len(metric["ci95"]) == 2, name
    # the headline metrics are recomputable from the stored per-replication table
    reps = pd.read_parquet(tmp / "run" / "replications.parquet")
    recomputed = json.loads(json.dumps(headline_metrics(reps)))
    assert recomputed.keys() == summary["metrics"].keys()
    for name in recomputed:
        for key in ("mean", "estimate"):
            if key in recomputed[name]:
                assert recomputed[name][key] == pytest.approx(summary["metrics"][name][key])


def test_dsim_command_line_overrides_reach_summary_config(cli_runs):
    tmp, _ = cli_runs
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    cfg = summary["config"]
    assert cfg["credibility"] == 0.8
    assert cfg["policy"]["name"] == "permanent"
    assert cfg["replications"] == 50
    assert cfg["scenario"]["weeks"] == 60
    assert cfg["progress"] is False
    assert summary["policy"] == "permanent" and summary["credibility"] == 0.8




@pytest.mark.parametrize("case", list(ALL_BAD), ids=list(ALL_BAD))
def test_dsim_bad_input_fails_with_one_line_and_writes_nothing(cli_runs, case):
    tmp, out = cli_runs
    rc, stdout, stderr = out[case]
    _, fragment = ALL_BAD[case]
    assert rc == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dsim: error:")
    assert fragment in lines[0]
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert not (tmp / case).exists()


@pytest.mark.parametrize("case", list(PRINT_COMMANDS), ids=list(PRINT_COMMANDS))
def test_dsim_print_commands_print_and_run_nothing(cli_runs, case):
    """`--cfg job` (and its variants) is what every unknown-key message points to: it must work,
    with a user's config folder too; `--help` says what dsim does."""
    tmp, out = cli_runs
    rc, stdout, stderr = out[case]
    _, fragment = PRINT_COMMANDS[case]
    assert rc == 0, stderr
    assert fragment in stdout, stdout[:2000]
    assert "Traceback" not in stderr
    assert not (tmp / case).exists()  # printing writes no output folder
