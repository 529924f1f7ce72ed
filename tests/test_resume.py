"""Resume, manifests, stale staging folders, robust aggregation, the reference posture and sweep
figures with a third swept key: in-process, on a small sweep folder written with the Python API
(the command-line ends of the same behaviour are in test_sweep.py)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import small_config
from omegaconf import OmegaConf

import sim.outputs
import sim.sweep
from sim import run
from sim.metrics import replication_metrics
from sim.outputs import (
    CHECKED_FILES,
    DATA_FILES,
    FIGURE,
    MANIFEST,
    RUN_FILES,
    canonical,
    verify_run,
    write_manifest,
    write_run,
)
from sim.sweep import (
    SWEEP_FILES,
    SweepCallback,
    SweepError,
    aggregate,
    load_points,
    plot_escalation_curves,
    plot_heatmap,
    plot_policy_comparison,
    point_complete,
    report_main,
    sweep_layout,
    sweep_table,
)

R, WEEKS = 20, 30
POSTURES = ("rotational", "permanent")
CREDIBILITIES = (0.2, 0.8)
SPIRAL = (0, 0.9)
FIXED = {"replications": R, "scenario.weeks": WEEKS}


def _config(policy: str, credibility: float, spiral: float):
    return small_config(replications=R, weeks=WEEKS, credibility=credibility, policy={"name": policy},
                        params={"spiral_weight": float(spiral)})


def _write_point(sweep: Path, overrides: dict, config) -> Path:
    """A point as `dsim -m` writes it: the run files and Hydra's .hydra/overrides.yaml."""
    items = [f"{k}={v}" for k, v in overrides.items()]
    folder = sweep / ",".join(sorted(items))
    write_run(run(config), folder)
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(items))
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """posture x credibility x spiral weight (2 x 2 x 2), as a three-key `dsim -m` sweep writes it."""
    sweep = tmp_path_factory.mktemp("three_keys") / "sweep"
    with pytest.MonkeyPatch.context() as mp:  # the per-run figure is not read here (tests: test_outputs)
        mp.setattr(sim.outputs, "plot_escalation", lambda results, path: Path(path).write_bytes(b"png"))
        for policy in POSTURES:
            for c in CREDIBILITIES:
                for w in SPIRAL:
                    _write_point(sweep, {"policy": policy, "credibility": c, "params.spiral_weight": w,
                                         **FIXED}, _config(policy, c, w))
    return sweep


@pytest.fixture
def sweep(built, tmp_path) -> Path:
    """A private copy of the sweep folder, for tests that change it."""
    return Path(shutil.copytree(built, tmp_path / "sweep"))


@pytest.fixture
def no_figures(monkeypatch):
    """Sweep figures as empty files, for tests about the other sweep files (figures: see below)."""
    def placeholder(*args, **kwargs):
        Path(args[-1]).write_bytes(b"")  # aggregate passes the path last
        return {}

    for name in ("plot_escalation_curves", "plot_policy_comparison", "plot_heatmap"):
        monkeypatch.setattr(sim.sweep, name, placeholder)


def _point(sweep: Path, policy="rotational", credibility=0.8, spiral=0.9) -> Path:
    items = [f"{k}={v}" for k, v in
             {"policy": policy, "credibility": credibility, "params.spiral_weight": spiral, **FIXED}.items()]
    return sweep / ",".join(sorted(items))


# ---------------------------------------------------------------------------- 1. identity
def test_identity_is_the_settings_that_change_results(built):
    folder = _point(built)
    cfg = _config("rotational", 0.8, 0.9)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["identity"] == canonical(cfg.identity()) and "progress" not in summary["identity"]
    for same in (cfg.replace(progress=True), cfg.replace(reference_policy="permanent")):
        assert point_complete(folder, same)
        assert point_complete(folder, same.to_dict())  # the whole config: non-result fields ignored
        assert point_complete(folder, same.identity())
    assert not point_complete(folder, cfg.replace(credibility=0.5))
    assert not point_complete(folder, cfg.replace(params={"spiral_weight": 0.0}))


# ---------------------------------------------------------------------------- 2. manifest
def test_manifest_holds_every_checksum_and_is_moved_in_last(tmp_path, monkeypatch):
    cfg = _config("rotational", 0.2, 0)
    results = run(cfg)
    write_run(results, tmp_path)  # a first run: the second must retire its manifest first
    events = []
    real_replace, real_unlink = os.replace, Path.unlink
    monkeypatch.setattr(sim.outputs.os, "replace", lambda a, b: (events.append(("replace", Path(b).name)),
                                                                 real_replace(a, b)))
    monkeypatch.setattr(Path, "unlink", lambda self, **kw: (events.append(("unlink", self.name)),
                                                            real_unlink(self, **kw)))
    write_run(results, tmp_path)
    assert events[0] == ("unlink", MANIFEST)  # no folder mixes an old manifest with new files
    assert events[-1] == ("replace", MANIFEST)
    assert sorted(name for kind, name in events if kind == "replace") == sorted(RUN_FILES)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["identity"] == canonical(cfg.identity())
    for name in CHECKED_FILES:
        assert manifest["files"][name]["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RUN_FILES)


def test_a_run_without_its_figure_is_complete_unless_the_figure_is_asked_for(tmp_path, monkeypatch):
    """A sweep's point skips escalation.png: its manifest lists what was written, and it counts
    as finished, except for a run that wants the figure. Rewritten without the figure, a folder
    loses the old figure, which would not match the new data."""
    monkeypatch.setattr(sim.outputs, "plot_escalation", lambda results, path: Path(path).write_bytes(b"png"))
    cfg = _config("rotational", 0.2, 0)
    results = run(cfg)
    write_run(results, tmp_path)
    assert point_complete(tmp_path, cfg, figure=True)
    write_run(results, tmp_path, figure=False)
    assert not (tmp_path / FIGURE).exists()
    assert sorted(json.loads((tmp_path / MANIFEST).read_text())["files"]) == sorted(DATA_FILES)
    assert point_complete(tmp_path, cfg) and verify_run(tmp_path) is None
    assert not point_complete(tmp_path, cfg, figure=True)
    assert verify_run(tmp_path, figure=True).startswith("it has no escalation.png")
    (tmp_path / "summary.json").write_text("{}")  # the files it lists are still checked
    assert verify_run(tmp_path) == f"summary.json does not match its checksum in {MANIFEST}"


def test_flipped_bytes_or_an_edited_metric_fail_the_manifest(sweep, caplog):
    cfg = _config("rotational", 0.8, 0.9)
    flipped, edited = _point(sweep), _point(sweep, credibility=0.2)
    data = bytearray((flipped / "replications.parquet").read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a data page: the footer (metadata) still reads
    (flipped / "replications.parquet").write_bytes(bytes(data))
    summary = json.loads((edited / "summary.json").read_text())
    summary["metrics"]["p_kinetic_clash"]["estimate"] = 0.5
    (edited / "summary.json").write_text(json.dumps(summary, indent=2))
    assert not point_complete(flipped, cfg)
    assert verify_run(flipped) == f"replications.parquet does not match its checksum in {MANIFEST}"
    assert not point_complete(edited, _config("rotational", 0.2, 0.9))
    assert "summary.json does not match" in verify_run(edited)
    (_point(sweep, credibility=0.2, spiral=0) / MANIFEST).unlink()  # killed before its manifest
    with caplog.at_level(logging.WARNING, logger="dsim"):
        points = load_points(sweep)
    assert len(points) == 5
    skipped = {r.getMessage().split(":")[0] for r in caplog.records}
    killed = _point(sweep, credibility=0.2, spiral=0)
    assert skipped == {f"skipping {p.name}" for p in (flipped, edited, killed)}


# ---------------------------------------------------------------------------- 3. stale staging
def test_stale_staging_folders_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".partial-killed").mkdir(parents=True)
    (tmp_path / ".partial-killed" / "timeseries.parquet").write_bytes(b"half")
    (tmp_path / ".partial-file").write_text("a file, not a staging folder")
    (tmp_path / ".partialnodash").mkdir()
    (tmp_path / "notes").mkdir()
    live = tmp_path / ".partial-live"
    live.mkdir()
    with open(live / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a writer still at work
        write_run(run(_config("permanent", 0.2, 0)), tmp_path)
        assert live.is_dir()
    assert not (tmp_path / ".partial-killed").exists()
    for kept in (".partial-file", ".partialnodash", "notes"):
        assert (tmp_path / kept).exists(), kept


def test_aggregation_removes_stale_staging_in_the_sweep_and_its_points(sweep, no_figures):
    for folder in (sweep / ".partial-aggregation", _point(sweep) / ".partial-point"):
        folder.mkdir()
        (folder / "sweep.parquet").write_bytes(b"half")
    aggregate(sweep)
    assert not list(sweep.glob(".partial-*")) and not list(sweep.glob("*/.partial-*"))


# ---------------------------------------------------------------------------- 4. robust aggregation
def _stray_folders(sweep: Path, real: Path) -> list[str]:
    """Folders a sweep folder may hold that are not usable points; returns their names."""
    def folder(name):
        (sweep / name).mkdir()
        return sweep / name

    folder("garbage").joinpath("summary.json").write_text("{not json")
    folder("listed").joinpath("summary.json").write_text("[1, 2, 3]")
    folder("latin1").joinpath("summary.json").write_bytes('{"policy": "r\xe9serve"}'.encode("latin-1"))
    folder("empty")
    for name, overrides in (("bad-yaml", b"- policy=rotational\n  : [\n"),
                            ("not-a-list", b"policy: rotational\n"),
                            ("not-utf8", b"- policy=r\xe9serve\n"), ("bad-override", b"- 'policy=[1,'\n")):
        shutil.copytree(real, sweep / name)
        (sweep / name / ".hydra" / "overrides.yaml").write_bytes(overrides)
    # a list-valued summary with a manifest that matches it: checked for what the aggregation reads
    shutil.copytree(real, sweep / "listed-with-manifest")
    (sweep / "listed-with-manifest" / "summary.json").write_text("[1, 2, 3]")
    write_manifest(sweep / "listed-with-manifest", {})
    shutil.copytree(real, sweep / "latin1-with-manifest")
    latin1 = '{"policy": "r\xe9serve"}'.encode("latin-1")
    (sweep / "latin1-with-manifest" / "summary.json").write_bytes(latin1)
    write_manifest(sweep / "latin1-with-manifest", {})
    return ["bad-override", "bad-yaml", "empty", "garbage", "latin1", "latin1-with-manifest", "listed",
            "listed-with-manifest", "not-a-list", "not-utf8"]


def test_aggregation_skips_what_is_not_a_point_with_a_warning_naming_it(sweep, no_figures, caplog):
    strays = _stray_folders(sweep, _point(sweep))
    with caplog.at_level(logging.WARNING, logger="dsim"):
        paths = aggregate(sweep)
    assert set(paths) == set(SWEEP_FILES)
    skipped = sorted(r.getMessage().split(":")[0].removeprefix("skipping ") for r in caplog.records
                     if r.getMessage().startswith("skipping "))
    assert skipped == strays
    assert pd.read_parquet(sweep / "sweep.parquet")["point"].nunique() == 8


def test_report_on_a_folder_of_strays_is_one_line_and_exit_2(tmp_path, built, capsys):
    strays = tmp_path / "strays"
    strays.mkdir()
    _stray_folders(strays, _point(built))
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(strays)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("dsim-report: error:")]
    assert len(errors) == 1 and "no complete sweep points" in errors[0] and "Traceback" not in err
    assert not [p for p in strays.iterdir() if p.is_file() or p.name.startswith(".partial-")]
    with pytest.raises(SweepError, match="no complete sweep points"):
        aggregate(strays)


def test_report_arguments_and_a_missing_folder_are_one_line(tmp_path, capsys):
    for argv, code in (([str(tmp_path / "nowhere")], 2), ([str(tmp_path), "--reference", "bogus"], 2),
                       ([], 2), (["--help"], 0)):
        with pytest.raises(SystemExit) as exit_info:
            report_main(argv)
        out = capsys.readouterr()
        assert exit_info.value.code == code, argv
        if code:
            assert out.err.startswith("dsim-report: error:") and out.err.count("\n") == 1, out.err
        else:
            assert "--reference" in out.out and "SWEEP_DIR" in out.out


def _break_the_heatmap(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(sim.sweep, "plot_heatmap", boom)


def test_a_failing_aggregation_ends_report_and_callback_with_one_line(sweep, no_figures, monkeypatch, capsys):
    _break_the_heatmap(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(sweep)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("dsim-report: error:") and "injected failure" in err
    assert "Traceback" not in err
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "reference_policy": "rotational"})
    with pytest.raises(SystemExit) as exit_info:
        SweepCallback().on_multirun_end(config)  # SystemExit: Hydra's handlers catch Exception only
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("dsim: error:") and err.count("\n") == 1 and "dsim-report" in err
    # nothing half-written: no sweep file, no staging folder
    assert not [p.name for p in sweep.iterdir() if p.name in SWEEP_FILES or p.name.startswith(".partial-")]


# ---------------------------------------------------------------------------- 5. reference posture
def test_reference_posture_is_a_setting(sweep, no_figures, capsys):
    assert set(pd.read_csv(aggregate(sweep)["comparison.csv"])["comparison"]) == {"permanent - rotational"}
    assert set(pd.read_csv(aggregate(sweep, reference="permanent")["comparison.csv"])["comparison"]) == {
        "rotational - permanent"}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"reference_policy": "permanent"}))
    assert set(pd.read_csv(aggregate(sweep)["comparison.csv"])["comparison"]) == {"rotational - permanent"}
    report_main([str(sweep), "--reference", "rotational"])
    assert set(pd.read_csv(sweep / "comparison.csv")["comparison"]) == {"permanent - rotational"}
    assert capsys.readouterr().out.count(str(sweep)) == len(SWEEP_FILES)
    (sweep / "multirun.yaml").unlink()  # the callback reads the setting from the config it is given
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "reference_policy": "permanent"})
    SweepCallback().on_multirun_end(config)
    assert set(pd.read_csv(sweep / "comparison.csv")["comparison"]) == {"rotational - permanent"}


def test_a_sweep_without_the_reference_posture_writes_no_comparison(sweep, no_figures, caplog):
    aggregate(sweep)  # an earlier comparison.csv, which no longer matches once the points change
    for folder in sweep.glob("*policy=rotational*"):
        shutil.rmtree(folder)
    with caplog.at_level(logging.WARNING, logger="dsim"):
        paths = aggregate(sweep)
    assert "comparison.csv" not in paths and not (sweep / "comparison.csv").exists()
    assert set(paths) == set(SWEEP_FILES) - {"comparison.csv"}
    (warning,) = [r.getMessage() for r in caplog.records if "comparison.csv" in r.getMessage()]
    assert "'rotational'" in warning and "postures present: permanent" in warning


# ---------------------------------------------------------------------------- 6-7. third swept key
def _summary_value(folder: Path, metric: str) -> float:
    m = json.loads((folder / "summary.json").read_text())["metrics"][metric]
    return m.get("estimate", m.get("mean"))


def test_figures_draw_every_level_of_a_third_key_separately(built, tmp_path):
    points = load_points(built)
    layout = sweep_layout(points)
    assert layout.x == "credibility" and layout.facets == ["params.spiral_weight"]
    levels = {f"params.spiral_weight={w}" for w in SPIRAL}
    title = sim.sweep._title_context(points, layout)  # names only what is fixed across the sweep
    assert "spiral" not in title
    assert f"{R} replications per point" in title and f"scenario.weeks={WEEKS}" in title

    lines = plot_policy_comparison(sweep_table(points), points, tmp_path / "lines.png")
    assert {(p, lv) for _, p, lv in lines} == {(p, lv) for p in POSTURES for lv in levels}
    for (metric, policy, level), d in lines.items():
        assert list(d["x"]) == sorted(CREDIBILITIES)  # one point per x, in order: no zigzag
        spiral = level.split("=")[1]
        expected = [_summary_value(_point(built, policy, c, spiral), metric) for c in CREDIBILITIES]
        assert list(d["value"]) == pytest.approx(expected)  # each level's own points: no average

    grids = plot_heatmap(sweep_table(points), points, tmp_path / "heat.png")
    assert set(grids) == levels
    for level, grid in grids.items():
        for policy in POSTURES:
            for c in CREDIBILITIES:
                folder = _point(built, policy, c, level.split("=")[1])
                assert grid.loc[policy, f"{c:g}"] == pytest.approx(_summary_value(folder, "p_kinetic_clash"))

    curves = plot_escalation_curves(points, tmp_path / "curves.png")
    assert {(p, lv, x) for _, p, lv, x in curves} == {
        (p, lv, f"{c:g}") for p in POSTURES for lv in levels for c in CREDIBILITIES}
    for (column, policy, level, x), series in curves.items():
        ts = pd.read_parquet(_point(built, policy, float(x), level.split("=")[1]) / "timeseries.parquet")
        assert list(series.to_numpy()) == list(ts[column].to_numpy())
    # the levels are told apart: some curve differs between the two spiral weights
    assert any(not curves[(col, p, f"params.spiral_weight={SPIRAL[0]}", x)].equals(
        curves[(col, p, f"params.spiral_weight={SPIRAL[1]}", x)]) for col, p, _, x in curves)
    for name in ("lines.png", "heat.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_comparison_per_level_of_every_swept_key_and_every_metric(built):
    points = load_points(built)
    comp = sim.sweep.comparison_table(points, "rotational")
    assert {"credibility", "params.spiral_weight", "replications", "scenario.weeks"} <= set(comp.columns)
    assert comp.groupby(["credibility", "params.spiral_weight"]).ngroups == 4
    a = replication_metrics(pd.read_parquet(_point(built, "permanent", 0.8, 0) / "replications.parquet"))
    b = replication_metrics(pd.read_parquet(_point(built, "rotational", 0.8, 0) / "replications.parquet"))
    assert set(comp["metric"]) == set(a.columns)  # every metric, named by sim.metrics
    rows = comp[(comp["credibility"] == 0.8) & (comp["params.spiral_weight"] == 0)].set_index("metric")
    for metric in a.columns:
        assert rows.loc[metric, "difference"] == pytest.approx(a[metric].mean() - b[metric].mean())
        assert rows.loc[metric, "paired"]
