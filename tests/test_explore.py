"""The explorer without a browser: settings as dsim overrides, runs, paired comparisons against a
real `dsim -m` sweep, and the page rendered with Solara's test renderer (controls, errors, cancel).

The browser test is tests/test_explore_e2e.py.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import replace
from enum import Enum

import ipyvue
import ipyvuetify as v
import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
import solara

from sim import load_config, run
from sim.explore import cli, compute, views
from sim.explore.app import Page
from sim.explore.settings import (
    CONTROLS,
    Settings,
    SideB,
    command,
    comparison_command,
    merge,
    resolve,
)
from sim.metrics import headline_metrics
from sim.params import ConfigError, ModelParams

SMALL = "scenario.weeks=104"  # two years: the explorer's logic, at a fraction of the cost


@pytest.fixture(scope="module")
def small() -> Settings:
    return replace(Settings.initial(), replications="60", extra=SMALL)


# ---------------------------------------------------------------------------- settings
def test_settings_are_dsim_overrides_and_the_command_reproduces_them(small):
    ovr = small.overrides()
    assert load_config(ovr) == resolve(small).config
    line = command(ovr)
    assert line.startswith("uv run dsim ") and shlex.split(line)[3:] == ovr
    # a moved control becomes an override; moving it back to the preset's value removes it
    moved = small.with_change("params.spiral_weight", 0.9, 0.43)
    assert "params.spiral_weight=0.9" in moved.overrides()
    assert resolve(moved).config.params.spiral_weight == 0.9
    assert moved.with_change("params.spiral_weight", 0.43, 0.43).changes == ()
    # free-text settings take the place of a control's override with the same key
    assert merge(["policy=rotational", "seed=1"], ["policy=none", "x=2"]) == ["policy=none", "seed=1",
                                                                              "x=2"]


def test_every_control_is_a_key_of_the_schema(small):
    preset = {"params.credibility_rule": "bayes", "scenario.dprk_prior": 0.5}
    for control in CONTROLS:
        value = control.choices[-1] if control.choices else preset.get(control.key, control.high)
        cfg = resolve(small.with_change(control.key, value, None)).config
        assert cfg is not None, control.key


def test_each_switch_of_the_model_is_a_choice_of_exactly_its_options(small):
    """Every ModelParams setting that chooses a rule (an enum: credibility_rule, perception) has a
    control offering exactly its options, and each option reaches the run's config."""
    by_key = {c.key: c for c in CONTROLS}
    defaults = ModelParams()
    switches = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(ModelParams)
                if isinstance(getattr(defaults, f.name), Enum)}
    assert set(switches) == {"credibility_rule", "perception"}
    for name, enum in switches.items():
        control = by_key.get(f"params.{name}")
        assert control is not None, f"no control for params.{name}"
        assert control.choices == tuple(e.value for e in enum), name
        for option in control.choices:
            cfg = resolve(small.with_change(control.key, option, None)).config
            assert getattr(cfg.params, name) == enum(option)
            assert f"params.{name}={option}" in small.with_change(control.key, option, None).overrides()


@pytest.mark.parametrize("change, override", [
    ({"replications": "0"}, "replications=0"),
    ({"seed": "-3"}, "seed=-3"),
    ({"extra": "credibilty=0.8"}, "credibilty=0.8"),
    ({"extra": "params.lik_deploy_res=1.0"}, "params.lik_deploy_res=1.0"),
])
def test_mistakes_read_as_dsim_reads_them(small, change, override):
    with pytest.raises(ConfigError) as exc:
        load_config([*small.overrides()[:-1], override])
    got = resolve(replace(small, **change))
    assert got.config is None and got.error == str(exc.value)
    assert "\n" not in got.error


def test_side_b_keeps_the_seed_and_replications_of_a(small):
    a = small.overrides()
    b = SideB(policy="permanent", credibility=0.4).overrides(a)
    assert [o for o in b if o.startswith(("seed=", "replications="))] == \
        [o for o in a if o.startswith(("seed=", "replications="))]
    assert "policy=permanent" in b and "credibility=0.4" in b
    bad = resolve(small, SideB(extra="seed=3"))
    assert bad.config is None and "paired" in bad.error
    assert comparison_command(a, SideB(policy="none").overrides(a)).startswith(
        "uv run dsim -m policy=rotational,none reference_policy=rotational")
    assert comparison_command(a, b) is None  # two keys differ: two commands, no single sweep


# ---------------------------------------------------------------------------- runs
def test_a_run_in_the_explorer_is_dsims_run_and_can_be_cancelled(small):
    cfg = resolve(small).config
    seen = []
    got = compute.simulate(cfg, seen.append)
    ref = run(cfg)
    pd.testing.assert_frame_equal(got.timeseries, ref.timeseries)
    pd.testing.assert_frame_equal(got.replications, ref.replications)
    assert seen[-1] == 1.0 and len(seen) == cfg.scenario.weeks

    cache = compute.RunCache()
    calls = {"n": 0}

    def stop_at_ten() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    with pytest.raises(compute.Cancelled):
        cache.run(cfg, compute.Progress(stop=stop_at_ten))
    assert calls["n"] == 11  # stopped between weeks, not at the end
    assert cache.get(cfg) is None  # a cancelled run is not kept
    assert cache.run(cfg) is cache.run(cfg)  # a finished one is


@pytest.fixture(scope="module")
def sweep(small, tmp_path_factory):
    """The explorer's own `dsim -m` command for rotational vs permanent, run for real."""
    a = resolve(small)
    b = resolve(small, SideB(policy="permanent"))
    line = comparison_command(a.overrides, b.overrides)
    out = tmp_path_factory.mktemp("sweep")
    args = shlex.split(line)[3:]  # after "uv run dsim"
    proc = subprocess.run([sys.executable, "-m", "sim.cli", *args, f"hydra.sweep.dir={out}",
                           "progress=false"], cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return a, b, out


@pytest.mark.slow
def test_side_by_side_differences_are_those_of_dsim(sweep):
    a, b, out = sweep
    ra, rb = compute.run_many([a.config, b.config], cache=compute.RunCache())
    csv = pd.read_csv(out / "comparison.csv")
    assert len(csv) > 0
    mine = compute.paired_differences(ra, rb).set_index("metric")  # the table of the side-by-side tab
    for row in csv.itertuples():
        assert row.comparison == "permanent - rotational"
        got = mine.loc[row.metric]
        assert got["paired"]
        # comparison.csv keeps 6 significant digits
        np.testing.assert_allclose([got["difference"], got["ci_low"], got["ci_high"]],
                                   [row.difference, row.ci_low, row.ci_high], rtol=1e-5, atol=1e-9)
    # the downloaded run files are dsim's: the same metrics in summary.json
    points = {json.loads(p.read_text())["policy"]: json.loads(p.read_text())
              for p in out.glob("*/summary.json")}
    for side, res in ((a, ra), (b, rb)):
        summary = json.loads(compute.LazyFiles(res, command(side.overrides)).files()["summary.json"])
        assert summary["metrics"] == points[summary["policy"]]["metrics"]
        assert summary["identity"] == points[summary["policy"]]["identity"]


def test_history_compares_with_the_record(small):
    h = resolve(replace(small, scenario="historical", extra="", replications="40"))
    view = views.history_view(h, cache=compute.RunCache())
    rec = view.record
    assert rec.events["date"].min() >= pd.Timestamp(h.config.scenario.start)
    # monthly launch days add up to the yearly ones of the calibration targets
    per_year = rec.monthly["launch_days"].groupby(rec.monthly.index.year).sum()
    np.testing.assert_array_equal(per_year.to_numpy(),
                                  rec.yearly.loc[per_year.index, "dprk_launch_days"].to_numpy())
    sim_years = compute.simulated_yearly(view.run.results)
    launch = sim_years[sim_years["count"] == "dprk_launch_days"].set_index("year")["mean"]
    per_rep = view.run.results.replications.groupby("year")["dprk_launch_days"].mean()
    np.testing.assert_allclose(launch.to_numpy(), per_rep.loc[launch.index].to_numpy())
    assert set(view.images) == {"history", "yearly"}
    assert all(img[:8] == b"\x89PNG\r\n\x1a\n" for img in view.images.values())


def test_metrics_table_lists_every_headline_metric(small):
    res = compute.CACHE.run(resolve(small).config)
    table = compute.metrics_table(res)
    assert list(table["metric"]) == list(headline_metrics(res.replications))


# ---------------------------------------------------------------------------- the page
def _widgets(root: widgets.Widget, cls: type = widgets.Widget) -> list:
    """Every widget of the rendered page under ``root``, of class ``cls``."""
    out, seen, stack = [], set(), [root]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        if isinstance(w, cls):
            out.append(w)
        stack.extend(c for c in (getattr(w, "children", None) or []) if isinstance(c, widgets.Widget))
    return out


def _classes(w) -> str:
    return f"{getattr(w, 'class_', '') or ''} {' '.join(getattr(w, '_dom_classes', ()) or ())}"


def _slider(box, prefix: str):
    found = [s for s in _widgets(box, v.Slider) if str(s.label).startswith(prefix)]
    assert len(found) == 1, [s.label for s in _widgets(box, v.Slider)]
    return found[0]


def _image(box, name: str) -> list:
    return [w for w in _widgets(box, widgets.Image) if f"dsim-plot-{name}" in _classes(w)]


def _status(box) -> str:
    return " ".join(str(w.children) for w in _widgets(box, ipyvue.Html) if "dsim-status" in _classes(w))


def _alerts(box) -> list[str]:
    return [str(a.children) for a in _widgets(box, v.Alert)]


def _button(box, text: str) -> list:
    return [b for b in _widgets(box, v.Btn) if text in b.children]


def _html(box) -> str:
    return " ".join(str(getattr(w, "unsafe_innerHTML", "")) for w in _widgets(box))


def _wait(condition, timeout: float = 90.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError("the page did not get there in time")


def _text(box, label: str, value: str):
    (field,) = [f for f in _widgets(box, v.TextField) if f.label == label]
    field.v_model = value


def test_page_moves_with_the_controls_shows_errors_and_cancels():
    box, rc = solara.render(solara.AppLayout(children=[Page()]), handle_error=False)
    more = "More settings (key=value, as on the dsim command line)"
    try:
        _text(box, "Replications", "200")
        _text(box, more, SMALL)
        _wait(lambda: "Done" in _status(box) and "replications=200" in _html(box))
        first = bytes(_image(box, "escalation")[0].value)
        assert "scenario.weeks=104" in _html(box)  # the command shown is the run shown

        # moving a control runs the model again and changes the plots and the command
        _slider(box, "Credibility").v_model = 0.2
        _wait(lambda: "credibility=0.2" in _html(box) and _image(box, "escalation")
              and bytes(_image(box, "escalation")[0].value) != first)

        # the slider's grid rounding the preset's spiral weight is not a change of the settings
        spiral = _slider(box, "Spiral weight")
        spiral.v_model = round(spiral.v_model, 2)
        time.sleep(1.0)  # a change would have started a run by now
        _wait(lambda: "Done" in _status(box))
        assert "spiral_weight" not in _html(box)

        # the misperception is a choice: picking it is an override, and the page runs it
        (perception,) = [s for s in _widgets(box, v.Select) if s.label == "How the DPRK reads US signals"]
        assert perception.v_model == "consistent"
        shown = bytes(_image(box, "escalation")[0].value)
        perception.v_model = "costly_signals"
        _wait(lambda: "params.perception=costly_signals" in _html(box) and "Done" in _status(box)
              and _image(box, "escalation") and bytes(_image(box, "escalation")[0].value) != shown)

        # a mistake is the one line dsim prints, in the page, and nothing runs
        _text(box, "Replications", "0")
        _wait(lambda: any("replications=0 must be a whole number" in a for a in _alerts(box)))
        assert _image(box, "escalation") == []

        # a long run shows progress and can be cancelled; the page keeps answering meanwhile
        _text(box, "Replications", "20000")
        _text(box, more, "scenario.weeks=2000")
        _wait(lambda: len(_button(box, "Cancel")) == 1 and "Running" in _status(box))
        _button(box, "Cancel")[0].click()
        _wait(lambda: "Cancelled" in _status(box), timeout=30)
    finally:
        rc.close()


# ---------------------------------------------------------------------------- the command line
def test_command_line_refuses_a_busy_port_in_one_line(capsys):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main(["--port", str(port)])
    finally:
        busy.close()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert err == f"dsim-explore: error: port {port} on 127.0.0.1 is in use: choose another with " \
                  "--port (--port 0 takes a free one)"
    with pytest.raises(SystemExit):
        cli.parse_args(["--port", "70000"])
    assert "is not a port" in capsys.readouterr().err
    assert cli.parse_args([]).host == "127.0.0.1"
