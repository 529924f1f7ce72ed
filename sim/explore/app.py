"""The explorer's page: a Solara app (the toolkit of Mesa's SolaraViz) over the model's API.

``Page`` is the app (``uv run dsim-explore``, or ``solara run sim.explore.app``). The sidebar holds
the controls; the tabs show one run, two settings side by side, and the historical replay over
the documented record. Every control is a ``dsim`` override validated by the same schema
(:mod:`sim.explore.settings`); the model runs in a worker thread (a Solara task), with progress,
cancellation and the previous answer kept on screen, so the page stays responsive.

Why not ``SolaraViz`` itself: SolaraViz steps one model instance and redraws its current state
(play, step, reset). The explorer's unit is a finished ensemble of R replications with intervals,
comparisons and downloads, so it uses Solara's components directly, as SolaraViz does.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import markdown
import solara
import solara.lab

from . import compute, views
from .settings import CONTROLS, Resolved, Settings, SideB, options, preset_values, resolve

TABS = ("Run", "Side by side", "History", "About")
# Seconds a run waits before it starts: a newer setting (a slider still moving, a number still
# being typed) replaces it within that time, so intermediate values cost no model run.
DEBOUNCE = 0.3
CAPTION = {"font-size": "0.8em", "color": "#555", "margin-top": "-6px"}


def _preset(params: str, scenario: str) -> dict[str, Any]:
    try:
        return preset_values(params, scenario)
    except Exception:  # an unusable preset is reported by resolve(); the controls show blanks
        return {}


@solara.component
def Md(text: str, style: dict | None = None):
    """Markdown rendered on the server (python-markdown). solara.Markdown would make the browser
    fetch a maths renderer from a CDN, which offline machines cannot reach."""
    html = solara.use_memo(lambda: markdown.markdown(text, extensions=["fenced_code", "tables"]),
                           [text])
    solara.HTML(tag="div", unsafe_innerHTML=html, style=style or {})


@solara.component
def Caption(text: str):
    solara.Text(text, style=CAPTION)


@solara.component
def ParamControl(control, value: Any, on_value, caption: bool = True, same_label: str | None = None):
    """One behavioural control: a slider, a choice, or (for the DPRK prior) a slider that can be
    set to the common prior."""
    if control.choices:
        solara.Select(control.label, values=list(control.choices), value=value, on_value=on_value)
    elif control.key == "scenario.dprk_prior":
        common = value is None
        solara.Checkbox(label="DPRK prior: common prior (= credibility)", value=common,
                        on_value=lambda on: on_value(None if on else 0.5))
        if not common:
            solara.SliderFloat(f"{control.label}: {value:.2f}", value=float(value), min=control.low,
                               max=control.high, step=control.step, on_value=on_value)
    else:
        shown = float(value) if value is not None else control.low
        solara.SliderFloat(f"{control.label}: {shown:.2f}", value=shown,
                           min=control.low, max=control.high, step=control.step, on_value=on_value)
    if caption:
        Caption(control.help)


@solara.component
def Controls(settings: solara.Reactive[Settings], preset: dict[str, Any], error: str | None):
    s = settings.value

    def put(**changes):
        settings.set(replace(settings.value, **changes))

    def change(control):
        def on_value(v):
            base = preset.get(control.key)
            if isinstance(v, float) and isinstance(base, float) and abs(v - base) <= control.step / 2:
                v = base  # the slider's grid rounds the preset's value: that is not a change
            settings.set(settings.value.with_change(control.key, v, base))
        return on_value

    Md("#### Settings")
    solara.Select("Parameters (preset)", values=options("params"), value=s.params,
                  on_value=lambda v: put(params=v))
    Caption("calibrated: fitted to the record 2016-2023 (docs/calibration.md); default: stylised.")
    solara.Select("Scenario", values=options("scenario"), value=s.scenario,
                  on_value=lambda v: put(scenario=v))
    solara.Select("US posture", values=options("policy"), value=s.policy,
                  on_value=lambda v: put(policy=v))
    Caption("rotational: assets arrive on a cadence; permanent: stationed; reactive: only after "
            "provocations; none. In the historical scenario the documented posture periods apply "
            "and this sets only the cost account.")
    solara.SliderFloat(f"Credibility: P(US resolute) = {s.credibility:.2f}", value=s.credibility,
                       min=0.0, max=1.0, step=0.05, on_value=lambda v: put(credibility=v))
    for control in CONTROLS:
        ParamControl(control, s.value(control.key, preset), change(control))
    # Typed values apply as they are typed (the run waits for a pause, see DEBOUNCE): applying them
    # on Enter only lost the value when Enter reached the server before the text did.
    solara.InputText("Replications", value=s.replications, continuous_update=True,
                     on_value=lambda v: put(replications=v or ""))
    solara.InputText("Seed", value=s.seed, continuous_update=True, on_value=lambda v: put(seed=v or ""))
    solara.InputText("More settings (key=value, as on the dsim command line)", value=s.extra,
                     continuous_update=True, on_value=lambda v: put(extra=v or ""))
    Caption("e.g. scenario.weeks=260 params.tension_decay=0.85 (every key: uv run dsim --cfg job)")
    solara.Button("Reset the parameters to the preset", text=True,
                  on_click=lambda: put(changes=(), extra=""))
    if error:
        solara.Error(error, classes=["dsim-error"])


@solara.component
def Command(text: str, what: str = "Reproduce with dsim"):
    Md(f"**{what}:**\n\n```bash\n{text}\n```")


@solara.component
def Image(data: bytes, name: str):
    solara.Image(data, width="100%", classes=[f"dsim-plot-{name}"])


@solara.component
def MetricsTable(df):
    solara.DataFrame(df, items_per_page=max(len(df), 1))


@solara.component
def Downloads(view: views.RunView):
    files = solara.use_memo(lambda: compute.LazyFiles(view.results, view.command), [view])
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.FileDownload(files.bundle, filename="dsim-run.zip",
                            label="Download the run (zip: run files + command)")
        for name in compute.RUN_FILES:
            solara.FileDownload(lambda name=name: files.files()[name], filename=name, label=name)


@solara.component
def RunPanel(view: views.RunView):
    cfg = view.results.config
    Md(
        f"**{cfg.scenario.name}** scenario, posture **{cfg.policy.name.value}**, credibility "
        f"**{cfg.credibility:g}**, spiral weight {cfg.params.spiral_weight:g}, "
        f"{cfg.replications:,} replications, seed {cfg.seed} ({view.seconds:.1f} s)",
        style={"font-size": "1.05em"})
    Command(view.command)
    Downloads(view)
    Image(view.images["escalation"], "escalation")
    Image(view.images["launches"], "launches")
    Image(view.images["beliefs"], "beliefs")
    Image(view.images["cost"], "cost")
    Md("#### Headline metrics (as in summary.json)\nMeans carry the 95 % interval of "
                    "the mean and the 2.5-97.5 % range across replications; probabilities a 95 % "
                    "Wilson interval.")
    MetricsTable(view.metrics)


@solara.component
def SideBControls(side_b: solara.Reactive[SideB], a: Settings, preset: dict[str, Any]):
    b = side_b.value

    def put(**changes):
        side_b.set(replace(side_b.value, **changes))

    Md("#### Setting B (everything else, the seed and the replications as in A)")
    with solara.Row(style={"flex-wrap": "wrap", "align-items": "center"}):
        solara.Select("Posture B", values=options("policy"), value=b.policy or a.policy,
                      on_value=lambda v: put(policy=v))
        same = b.credibility is None
        solara.Checkbox(label="same credibility as A", value=same,
                        on_value=lambda on: put(credibility=None if on else a.credibility))
        if not same:
            solara.SliderFloat(f"Credibility B: {b.credibility:.2f}", value=b.credibility, min=0.0,
                               max=1.0, step=0.05, on_value=lambda v: put(credibility=v))
        spiral = dict(b.changes).get("params.spiral_weight")
        solara.Checkbox(label="same spiral weight as A", value=spiral is None,
                        on_value=lambda on: put(changes=() if on else (
                            ("params.spiral_weight", a.value("params.spiral_weight", preset)),)))
        if spiral is not None:
            solara.SliderFloat(f"Spiral weight B: {spiral:.2f}", value=spiral, min=0.0, max=1.0, step=0.01,
                               on_value=lambda v: put(changes=(("params.spiral_weight", v),)))
    solara.InputText("More settings for B (key=value)", value=b.extra, continuous_update=True,
                     on_value=lambda v: put(extra=v or ""))


@solara.component
def ComparePanel(view: views.CompareView):
    Md(f"**{view.a.label}** against **{view.b.label}**: same seed and replications, "
                    "so replication i meets the same random numbers in both (common random numbers) "
                    f"and the differences are paired ({view.seconds:.1f} s).")
    Command(view.a.command, "A with dsim")
    Command(view.b.command, "B with dsim")
    if view.sweep_command:
        Command(view.sweep_command, "Both, with the paired comparison in comparison.csv")
    solara.FileDownload(lambda: view.differences.to_csv(index=False), filename="differences.csv",
                        label="Download the differences (CSV)")
    Image(view.images["differences"], "differences")
    Md("#### Paired differences B - A, with 95 % intervals")
    MetricsTable(view.display)
    Image(view.images["escalation"], "escalation")
    Image(view.images["launches"], "launches")
    Image(view.images["beliefs"], "beliefs")
    Image(view.images["cost"], "cost")


@solara.component
def HistoryPanel(view: views.HistoryView):
    Md(
        "The replay of 2016-2023 (`scenario=historical`): the documented exercises, consultations, "
        "DPRK eras and US posture periods are inputs; the model's own choices are compared with the "
        f"record in `data/events.csv` ({len(view.record.events)} events in the window; "
        f"{view.run.results.config.replications:,} replications, {view.seconds:.1f} s).")
    Command(view.run.command)
    Image(view.images["history"], "history")
    Image(view.images["yearly"], "yearly")


ABOUT = """
#### What this is

An agent-based model (Mesa) of the DPRK, the United States, the Republic of Korea and Japan choosing
provocation and reassurance week by week. It is for **exploring and comparing alternatives, not for
forecasting** (docs/model.md, section 1.1). Each setting is run as an ensemble of replications; the
bands show how much the replications differ, the intervals how precisely the ensemble pins an
average down.

* **Side by side** runs two settings with the same seed and replications: replication i meets the
  same random numbers in both, so the differences are paired and much more precise than two
  separate runs (common random numbers).
* **History** replays 2016-2023 with the documented calendar and compares the model with the record.
* Every setting is a `dsim` override: the page shows the command that reproduces what it shows,
  and the downloads are the files `dsim` writes.

The defaults of the behavioural parameters are stylised; only `params=calibrated` is fitted to the
record, and it fits only a few parameters (docs/calibration.md). The spiral weight, the way the DPRK
judges credibility and how it reads US signals (consistently with the model's own US, or misreading
scheduled deployments as costly signals) can decide which posture looks better
(experiments/rotational_vs_permanent/README.md): vary them before reading off a ranking.
"""


def _job_key(tab: int, a: Resolved, b: Resolved | None, h: Resolved | None) -> tuple:
    def k(r):
        return None if r is None else (tuple(r.overrides), r.error)
    return (tab, k(a), k(b) if tab == 1 else None, k(h) if tab == 2 else None)


@solara.component
def Page():
    initial = solara.use_memo(Settings.initial, [])
    settings = solara.use_reactive(initial)
    side_b = solara.use_reactive(SideB())
    tab = solara.use_reactive(0)
    s = settings.value
    preset = solara.use_memo(lambda: _preset(s.params, s.scenario), [s.params, s.scenario])
    a = solara.use_memo(lambda: resolve(s), [s])
    b = solara.use_memo(lambda: resolve(s, side_b.value) if tab.value == 1 else None,
                        [s, side_b.value, tab.value])
    h = solara.use_memo(lambda: resolve(replace(s, scenario="historical")) if tab.value == 2 else None,
                        [s, tab.value])
    wanted = {0: [a], 1: [a, b], 2: [h]}.get(tab.value, [])
    error = next((r.error for r in wanted if r is not None and r.error), None)

    @solara.lab.use_task(dependencies=[_job_key(tab.value, a, b, h)])
    def job():
        if error or not wanted:
            return None
        time.sleep(DEBOUNCE)
        if not job.is_current():
            return None
        progress = compute.Progress(report=lambda f: setattr(job, "progress", round(100 * f)),
                                    stop=lambda: not job.is_current())
        try:
            if tab.value == 0:
                return views.run_view(a, progress)
            if tab.value == 1:
                return views.compare_view(a, b, progress)
            return views.history_view(h, progress)
        except compute.Cancelled:
            return None

    solara.Title("dsim explorer")
    with solara.AppBar():
        solara.AppBarTitle("dsim explorer: extended deterrence on the Korean peninsula")
    with solara.Sidebar():
        Controls(settings, preset, a.error)
    solara.lab.Tabs(value=tab.value, on_value=tab.set,
                    children=[solara.lab.Tab(label) for label in TABS])
    if tab.value == 3:
        Md(ABOUT)
        return
    if tab.value == 1:
        SideBControls(side_b, s, preset)
    if error:
        solara.Error(error, classes=["dsim-error"])
        return
    with solara.Row(style={"align-items": "center", "min-height": "44px"}):
        if job.pending:
            solara.Text(f"Running... {job.progress or 0:.0f} %", classes=["dsim-status"])
            solara.Button("Cancel", on_click=job.cancel, color="error", outlined=True,
                          classes=["dsim-cancel"])
        elif job.cancelled:
            solara.Text("Cancelled: the results below (if any) are of the previous settings.",
                        classes=["dsim-status"])
            solara.Button("Run", on_click=job, color="primary", classes=["dsim-run"])
        elif job.error:
            solara.Error(f"The run failed: {job.exception}", classes=["dsim-error"])
        elif job.finished:
            solara.Text("Done.", classes=["dsim-status"])
    solara.ProgressLinear(job.progress if job.pending and job.progress else job.pending)
    view = job.value if job.finished else job.latest
    kinds = {0: views.RunView, 1: views.CompareView, 2: views.HistoryView}
    if not isinstance(view, kinds[tab.value]):
        return
    with solara.Column(style={"opacity": "0.55" if job.pending else "1"}):
        if tab.value == 0:
            RunPanel(view)
        elif tab.value == 1:
            ComparePanel(view)
        else:
            HistoryPanel(view)
