"""The posture-robustness study (sim.robustness): a small version of
`dsim -m experiment=posture_robustness`, end to end, and its decision table checked against the
points' own replications."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.params import ConfigError, StudyConfig


def _dsim() -> str:
    return str(Path(sys.executable).parent / "dsim")


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """Two postures at one credibility, one alternative, 100 replications over 10 posterior draws;
    Sobol base 8 (8 x 15 points), 4 histories per point."""
    out = tmp_path_factory.mktemp("robustness") / "sweep"
    res = subprocess.run([_dsim(), "-m", "experiment=posture_robustness", "policy=rotational,permanent",
                          "credibility=0.5", "params.perception=consistent", "params.credibility_rule=bayes",
                          "replications=100", "posterior.blocks=10", "study.sobol_base=8",
                          "study.sobol_replications=4", "study.sobol_resamples=20", f"hydra.sweep.dir={out}"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_the_small_study_writes_every_file(small_study):
    for name in ("decision.csv", "sobol.csv", "prim_boxes.csv", "prim_trajectory.csv", "study.json",
                 "posture_differences.png", "posture_differences.pdf", "sobol.png", "sobol.pdf",
                 "prim_trajectory.png", "prim_box.png", "decision_map.png", "decision_map.pdf"):
        assert (small_study / name).is_file(), name
    decision = pd.read_csv(small_study / "decision.csv")
    assert set(decision["metric"]) == {"launch_days", "p_clash", "p_nuclear_test", "allied_assurance", "cost"}
    assert set(decision["posture"]) == {"permanent"} and set(decision["alternative"]) == {"consistent+bayes"}
    assert decision["p_better"].between(0, 1).all()
    inside = (decision["ci_low"] <= decision["difference"]) & (decision["difference"] <= decision["ci_high"])
    assert inside.all()
    sobol = pd.read_csv(small_study / "sobol.csv")
    assert set(sobol["metric"]) == {"launch_days", "p_clash"}
    assert len(sobol[sobol["n_base"] == 8]) == 2 * 13  # 11 behavioural parameters, credibility, prior


def test_the_decision_table_is_the_paired_blocks_of_the_points(small_study):
    """Recomputed from the two points' replications: per-replication differences of launch days,
    averaged per posterior block (10 blocks of 10), then a t interval over the blocks."""
    from sim.metrics import replication_metrics

    folders = {f.name.split("policy=")[1].split(",")[0]: f for f in small_study.iterdir()
               if f.is_dir() and "policy=" in f.name}
    a = replication_metrics(pd.read_parquet(folders["permanent"] / "replications.parquet"))
    b = replication_metrics(pd.read_parquet(folders["rotational"] / "replications.parquet"))
    diff = (a["dprk_launch_days_per_year"] - b["dprk_launch_days_per_year"]).to_numpy()
    means = diff.reshape(10, 10).mean(axis=1)
    half = stats.t.ppf(0.975, 9) * means.std(ddof=1) / np.sqrt(10)
    row = pd.read_csv(small_study / "decision.csv").query("metric == 'launch_days'").iloc[0]
    assert row["difference"] == pytest.approx(means.mean(), rel=1e-5)
    assert row["ci_high"] - row["difference"] == pytest.approx(half, rel=1e-4)
    assert row["p_better"] == pytest.approx(np.mean(means < 0) + 0.5 * np.mean(means == 0))


def test_bad_study_settings_are_one_line():
    with pytest.raises(ConfigError, match="study.name"):
        StudyConfig(name="robust")
    with pytest.raises(ConfigError, match="prim_threshold"):
        StudyConfig(prim_threshold=0)


def test_dsim_report_redoes_the_study_identically(small_study, tmp_path):
    """`dsim-report` on the study's folder (a copy) writes the same decision and Sobol tables."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_study, copy)
    for name in ("decision.csv", "sobol.csv", "prim_boxes.csv"):
        (copy / name).unlink()
    res = subprocess.run([str(Path(sys.executable).parent / "dsim-report"), str(copy)], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("decision.csv", "sobol.csv", "prim_boxes.csv"):
        assert (copy / name).read_bytes() == (small_study / name).read_bytes(), name
