# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Calibration: the record, the fit and what the model gets wrong
#
# The behavioural parameters in `configs/params/calibrated.yaml` and the era drives in
# `configs/scenario/historical.yaml` were fitted by `dsim-calibrate` to the documented event record
# 2016-2023 (`data/events.csv`) by the simulated method of moments. This notebook
#
# 1. plots the event record: DPRK launch days (what the record counts) and launch weeks;
# 2. lists the DPRK's eras of the replay, each with the document it rests on;
# 3. replays 2016-2023 with the calibrated parameters and compares simulated and observed yearly
#    counts (the fitted targets) and the loss;
# 4. shows the event study of launch timing and the US response, fitted and out-of-sample
#    statistics side by side;
# 5. shows what pins down the spiral weight (its profile loss);
# 6. checks the month-of-year pattern of launches, which was **not** fitted, against a flat year;
# 7. lists, from the numbers computed here, where the model misses most.
#
# Sections 4-6 read the calibration's own results, `docs/figures/calibration.json`, written by
# `dsim-calibrate`; the rest is computed here. The procedure and a discussion of the misses are in
# [docs/calibration.md](../docs/calibration.md); the record and its sources in
# [data/README.md](../data/README.md); the replay scenario in
# [Section 6 of the model description](../docs/model.md#6-input-data).
#
# **Size.** Replications come from `DSIM_NOTEBOOK_REPLICATIONS` (default 2000; the tests use
# 100). `dsim-calibrate` uses the number and seed of `configs/calibrate.yaml` (printed below); with
# that number the replay below is the calibration's own, up to the rounding of the installed
# parameters. Every number in the text is computed here or read from `calibration.json`.

# %%
import dataclasses
import json
import os
import warnings

import numpy as np
import pandas as pd
from IPython.display import display

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, unused here
import sim  # noqa: E402
from sim.calendar import first_week_from, week_of  # noqa: E402
from sim.calibrate import (  # noqa: E402
    FLOORS,
    SIM_COLUMNS,
    TIMING_TARGETS,
    Moments,
    Problem,
    count_residuals,
    loss_terms,
    observed_targets,
    simulated_on_calendar,
)
from sim.calibration_report import (  # noqa: E402
    MONTHS,
    observed_month_counts,
    observed_month_shares,
    seasonality_check,
    simulated_month_shares,
)
from sim.event_study import event_study_figure, record_series, timing_statistics  # noqa: E402
from sim.events import default_events_path, is_major_provocation, load_events, yearly_counts  # noqa: E402
from sim.history import END, ERA_OF_PARAM, ERAS, PARAM_OF_ERA, START, YEARS  # noqa: E402

R = int(os.environ.get("DSIM_NOTEBOOK_REPLICATIONS", "2000"))
cal = sim.load_config(config_name="calibrate")  # configs/calibrate.yaml, as dsim-calibrate reads it
print(f"replications per run: {R}")
print(f"dsim-calibrate: {cal.replications} replications, seed {cal.seed}"
      + ("; the replay below uses the same number, so it is the calibration's own"
         if R == cal.replications else "; the replay below uses a different number"))

# %%
# Figures inline (the library leaves the matplotlib backend to the caller).
# %matplotlib inline
import matplotlib.pyplot as plt  # noqa: E402

# %% [markdown]
# The calibration's results: `dsim-calibrate` writes `calibration.json` into its output folder, and
# a copy of the run that fitted the installed configs is kept in `docs/figures/`. The sections that
# need it say so when it is missing or was written by an older version without that part.

# %%
REPO = default_events_path().resolve().parents[1]
CAL_JSON = REPO / "docs" / "figures" / "calibration.json"


def read_calibration(path):
    if not path.is_file():
        print(f"{path.relative_to(REPO)} is missing: run `uv run dsim-calibrate method=point` and copy its "
              "calibration.json there (docs/calibration.md, Outputs). The sections that read it "
              "are skipped.")
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def has(result, *keys):
    """True if calibration.json holds every one of ``keys``; else say which part is missing."""
    if not result:
        print(f"(skipped: {CAL_JSON.relative_to(REPO)} is missing)")
        return False
    missing = [k for k in keys if k not in result]
    if missing:
        print(f"{CAL_JSON.relative_to(REPO)} has no {', '.join(missing)}: it was written by an older "
              "dsim-calibrate. Re-run `uv run dsim-calibrate method=point` and copy its calibration.json to "
              "docs/figures/ to see this section.")
    return not missing


calib = read_calibration(CAL_JSON)
if calib:
    print(f"{CAL_JSON.relative_to(REPO)}: loss {calib['loss']:.3f} (at the defaults "
          f"{calib['loss_at_defaults']:.3f}), {calib['config']['replications']} replications, seed "
          f"{calib['config']['seed']}, code {str(calib.get('git_commit'))[:10]}"
          + (" with uncommitted changes" if calib.get("git_dirty") else ""))

# %% [markdown]
# ## 1. The event record
#
# `sim.events.load_events` reads and validates `data/events.csv` (a malformed row stops with one
# line naming the file, the line and the fix). One row per documented event, each with its source.

# %%
events = load_events(default_events_path())
print(f"{len(events)} events from {events['date'].min().date()} to {events['date'].max().date()}, "
      f"{int(events['uncertain'].sum())} marked uncertain")
events["type"].value_counts().rename("rows").to_frame().transpose()

# %% [markdown]
# Per year, computed by `sim.events.yearly_counts`. The record counts DPRK **launch days** (one
# `launch_day` row per day, with its number of missiles). The model moves once a week; in a week
# whose action is a launch it launches on one to seven days and fires missiles on each
# ([Section 7.4](../docs/model.md#7-submodels)), so it counts launch days as the record does. It
# also counts **launch weeks**, weeks of the simulation's calendar with at least one launch day; the
# record's are counted on the same calendar. Both are targets: together they say how many launch
# days a launch week holds.

# %%
counts = yearly_counts(events, YEARS, week_start=START)
fig, axes = plt.subplots(1, 4, figsize=(17, 3.6), constrained_layout=True)
axes[0].bar(counts.index - 0.2, counts["dprk_launch_days"], width=0.4, label="launch days")
axes[0].bar(counts.index + 0.2, counts["dprk_launch_weeks"], width=0.4, label="launch weeks")
axes[0].legend(fontsize=8)
axes[0].set_title("DPRK launch days and launch weeks")
axes[1].bar(counts.index, counts["dprk_missiles"], color="tab:red")
axes[1].set_title("DPRK missiles launched")
axes[2].bar(counts.index - 0.2, counts["dprk_nuclear_tests"], width=0.4, color="k", label="nuclear tests")
axes[2].bar(counts.index + 0.2, counts["kinetic_incidents"], width=0.4, color="tab:brown",
            label="border incidents")
axes[2].legend(fontsize=8)
axes[2].set_title("Nuclear tests and border incidents")
axes[3].bar(counts.index, counts["us_deployments"], color="tab:blue")
axes[3].set_title("US strategic-asset deployments")
for ax in axes:
    ax.set_xticks(YEARS, [str(y)[2:] for y in YEARS])
    ax.set_xlabel("year (20..)")
    ax.grid(axis="y", alpha=0.3)
axes[0].set_ylabel("count per year")
plt.show()

per_week = (counts["dprk_launch_days"] / counts["dprk_launch_weeks"].where(counts["dprk_launch_weeks"] > 0))
per_day = counts["dprk_missiles"] / counts["dprk_launch_days"].where(counts["dprk_launch_days"] > 0)
pd.DataFrame({"launch days": counts["dprk_launch_days"], "launch weeks": counts["dprk_launch_weeks"],
              "days per launch week": per_week, "missiles": counts["dprk_missiles"],
              "missiles per launch day": per_day}).transpose().round(2)

# %%
busiest = counts["dprk_missiles"].idxmax()
print(f"most missiles in {busiest}: {counts.loc[busiest, 'dprk_missiles']:.0f} on "
      f"{counts.loc[busiest, 'dprk_launch_days']:.0f} launch days in "
      f"{counts.loc[busiest, 'dprk_launch_weeks']:.0f} launch weeks; fewest launch days in "
      f"{counts['dprk_launch_days'].idxmin()}; most launch days per launch week in {per_week.idxmax()} "
      f"({per_week.max():.2f})")

# A model launch week is one action, short range or long range; does the record mix them in a week?
launch = events[(events["type"] == "launch_day") & (events["actor"] == "DPRK")
                & (events["date"] >= START) & (events["date"] <= END)]
start_day = pd.Timestamp(START).date()
week = launch["date"].map(lambda d: week_of(start_day, d.date()))
mixed = pd.Series(is_major_provocation(launch).to_numpy(), index=week.to_numpy()).groupby(level=0).nunique()
print(f"{int((mixed > 1).sum())} of {len(mixed)} launch weeks in the record hold both a long-range "
      "(major-provocation) and a shorter-range launch day")

# %% [markdown]
# The whole record 2016-2023 as a timeline, one row per event type (launch days sized by the
# number of missiles). The shaded bands are the DPRK *eras* of the historical replay (Section 2).

# %%
hist_cfg = sim.load_config(["scenario=historical", f"policy={cal.policy.name.value}", "params=calibrated",
                            f"credibility={cal.credibility}", f"seed={cal.seed}",
                            f"replications={R}", "progress=false"])
eras = hist_cfg.scenario.eras
window = events[(events["date"] >= START) & (events["date"] <= END)]
types = list(window["type"].value_counts().index[::-1])
fig, ax = plt.subplots(figsize=(15, 5), constrained_layout=True)
bounds = [pd.Timestamp(e.start_date) for e in eras] + [pd.Timestamp(END)]
for k, era in enumerate(eras):
    ax.axvspan(max(bounds[k], pd.Timestamp(START)), bounds[k + 1], color="grey",
               alpha=0.12 if k % 2 else 0.04, lw=0)
    ax.text(max(bounds[k], pd.Timestamp(START)) + pd.Timedelta(days=20), len(types) - 0.4 + 0.35 * (k % 2),
            era.name, fontsize=8, va="bottom")
for y, kind in enumerate(types):
    rows = window[window["type"] == kind]
    size = 12 * rows["count"] if kind == "launch_day" else 25
    ax.scatter(rows["date"], np.full(len(rows), y), s=size, alpha=0.6)
ax.set_yticks(range(len(types)), types)
ax.set_ylim(-0.7, len(types) + 0.6)
ax.set_title("The documented record 2016-2023 (data/events.csv)")
ax.grid(axis="x", alpha=0.3)
plt.show()

# %% [markdown]
# ## 2. The DPRK's eras
#
# History is not stationary, so the replay schedules the DPRK's *eras* as inputs
# (`sim.history.ERAS`, [Section 6.2](../docs/model.md#6-input-data)): each starts on the date of a
# documented turning point and sets the weapons-development drive, a diplomacy level and the
# nuclear-test moratorium. The behavioural parameters are shared by all eras. The last era is the
# reference, with drive 1; the drives of the eras that `configs/calibrate.yaml` lists are fitted
# relative to it (mapped by name, `sim.history.ERA_OF_PARAM`); an era whose drive is not listed
# keeps the value set in `sim/history.py`. The documents are those named in `sim/history.py`.

# %%
ERA_DOCUMENTS = {
    "test_campaign_2016_17": "The 2016-17 test campaign; in force from the start of the replay.",
    "diplomacy_2018": "Kim Jong Un's New Year address of 1 Jan 2018 offered talks; the party plenum "
                      "of 20 Apr 2018 declared the weapons programme complete and halted nuclear and "
                      "ICBM tests (KCNA, 21 Apr 2018). No launch is recorded in 2018.",
    "after_hanoi_2019": "The Hanoi summit ended without a deal (28 Feb 2019); short-range launches "
                        "resumed on 4 May while leader-level contact went on (Panmunjom, 30 Jun 2019).",
    "lull_2020_21": "The Dec 2019 party plenum dropped the ICBM-test pledge; the border closed in "
                    "Jan 2020.",
    "campaign_2022": "The Politburo's order of 19 Jan 2022 to review 'all temporarily-suspended "
                     "activities' (KCNA, 20 Jan 2022), under the five-year defence plan of the 8th "
                     "Party Congress (Jan 2021); the ICBM moratorium ended on 24 Mar 2022.",
    "build_up_2023": "The party plenum of 26-31 Dec 2022 turned the plan to building up the arsenal "
                     "(KCNA, 1 Jan 2023).",
}
undocumented = [e.name for e in ERAS if e.name not in ERA_DOCUMENTS]
if undocumented:
    print(f"sim.history.ERAS has eras this notebook does not describe: {', '.join(undocumented)} "
          "(their documents are named in sim/history.py)")

free = [p.name for p in cal.parameters]
replay_drive = {e.name: e.weapons_drive for e in eras}


def drive_source(era):
    param = PARAM_OF_ERA.get(era.name)
    if param is None:
        return "reference (not a parameter)"
    return f"fitted ({param})" if param in free else f"fixed in sim/history.py ({param} not listed)"


era_table = pd.DataFrame([{
    "era": e.name, "start": e.start_date,
    "first week": str((pd.Timestamp(START) + pd.Timedelta(weeks=max(0, first_week_from(
        start_day, pd.Timestamp(e.start_date).date())))).date()),
    "drive in sim/history.py": e.weapons_drive, "drive in the replay": replay_drive.get(e.name, np.nan),
    "drive": drive_source(e), "diplomacy": e.diplomacy, "nuclear moratorium": e.nuclear_moratorium,
    "document": ERA_DOCUMENTS.get(e.name, "see sim/history.py")} for e in ERAS]).set_index("era")
with pd.option_context("display.max_colwidth", None):
    display(era_table.round(3))

stale = [e.name for e in eras] != [e.name for e in ERAS]
if stale:
    print(f"configs/scenario/historical.yaml has the eras {', '.join(e.name for e in eras)}, "
          f"sim.history.ERAS has {', '.join(e.name for e in ERAS)}: the installed scenario is out of "
          "date (dsim-calibrate install=true regenerates it). The replay below runs the installed one.")
else:
    print("configs/scenario/historical.yaml has the eras of sim.history.ERAS.")

# %% [markdown]
# ## 3. The fit
#
# **What was fitted.** The replay (`scenario=historical`) runs from the week of 4 January 2016 to
# the end of 2023. The allied calendar (exercises at their documented scale, consultations), the
# DPRK eras and the documented US posture periods are inputs; every DPRK action, its launch days
# and missiles, US surges, allied responses, beliefs and tension are simulated. `dsim-calibrate`
# fits the free parameters of `configs/calibrate.yaml` (behavioural parameters and era drives); the
# rest keep their defaults. The values `params=calibrated` changes, and the replay's era drives,
# next to the defaults:

# %%
defaults = sim.ModelParams()
changed = [f.name for f in dataclasses.fields(defaults)
           if getattr(hist_cfg.params, f.name) != getattr(defaults, f.name)]
fitted = pd.DataFrame({"default": {k: getattr(defaults, k) for k in changed},
                       "calibrated": {k: getattr(hist_cfg.params, k) for k in changed}})
default_drive = {e.name: e.weapons_drive for e in ERAS}
drives = pd.DataFrame({"default": {f"era drive: {e.name}": default_drive.get(e.name, np.nan) for e in eras},
                       "calibrated": {f"era drive: {e.name}": e.weapons_drive for e in eras}})
print(f"free parameters of configs/calibrate.yaml: {', '.join(free)}")
display(pd.concat([fitted, drives]).round(3))

# Are the installed configs the ones calibration.json reports?
same_fit = False
if calib:
    installed = {**{k: getattr(hist_cfg.params, k) for k in calib["parameters"] if k not in ERA_OF_PARAM},
                 **{k: replay_drive.get(ERA_OF_PARAM[k], np.nan) for k in calib["parameters"]
                    if k in ERA_OF_PARAM}}
    differ = {k: (v, calib["parameters"][k]["estimate"]) for k, v in installed.items()
              if not np.isclose(v, calib["parameters"][k]["estimate"], atol=1e-5)}
    if differ:
        print("The installed configs differ from calibration.json's estimates (installed, json): "
              + "; ".join(f"{k} {a:.4g} vs {b:.4g}" for k, (a, b) in differ.items())
              + ". The replay below runs the installed configs; the sections reading calibration.json "
                "describe another fit.")
    else:
        print("The installed configs hold calibration.json's estimates.")
    same_fit = not differ

# %% [markdown]
# **The targets** are computed from the record by `sim.calibrate.observed_targets` and
# `sim.event_study`:
#
# - per year: the DPRK's launch days and launch weeks, missiles and nuclear tests, US deployments
#   and border incidents (against the model's clashes);
# - the median lag from a major provocation to the next US deployment, and the share of
#   replications that reach war (0: there was none);
# - timing statistics of the event study (Section 4): the launch-week share in exercise weeks
#   over other weeks (`exercise_launch_ratio`) and the share of major provocations with a US
#   arrival within four weeks (`deployment_within_4_weeks`), as `sim.calibrate.TIMING_TARGETS`
#   lists them. The event study's other statistics stay out of the fit, as out-of-sample checks.
#
# **The loss** is a weighted sum, one term per group. Yearly counts enter as scaled Pearson
# residuals (`sim.calibrate.count_residuals`): `(s - o) / sqrt(max(o, floor) * mean_y max(o, floor))`,
# squared and averaged over the years. A count's variance grows with its mean, so a miss in a busy
# year weighs less than the same relative miss in a quiet one would as a relative error, and
# dividing by the group's mean count makes the groups comparable. The lag, the share reaching war
# and the timing statistics enter as squared relative errors with a floor. Weights (from
# `configs/calibrate.yaml`) and floors:

# %%
weights = dict(cal.weights)
kind = {g: ("yearly count, scaled Pearson residual" if g in SIM_COLUMNS else
            "event-study timing, relative error" if g in TIMING_TARGETS else "relative error")
        for g in weights}
pd.DataFrame({"weight": weights, "floor": {g: FLOORS[g] for g in weights}, "enters as": kind})

# %% [markdown]
# The replay below uses the calibration's settings (posture cadence, credibility and seed of
# `configs/calibrate.yaml`), and keeps each replication's weekly launch days, US arrivals and major
# provocations (`detail=True`) for the event study.

# %%
results = sim.DeterrenceModel(hist_cfg, detail=True).run()
reps = results.replications

observed = observed_targets(events, YEARS)
obs = observed["yearly"]
sim_cols = list(SIM_COLUMNS.values())
by_year = reps.groupby("year")[sim_cols]
sim_mean = by_year.mean().set_axis(list(SIM_COLUMNS), axis=1)
sim_q05 = by_year.quantile(0.05).set_axis(list(SIM_COLUMNS), axis=1)
sim_q95 = by_year.quantile(0.95).set_axis(list(SIM_COLUMNS), axis=1)
p_war = float(results.per_replication()["war_week"].notna().mean())

calendar = record_series(events, hist_cfg.scenario.start, hist_cfg.scenario.weeks)  # the record, weekly
replay_series = simulated_on_calendar(results.detail, calendar)  # the replay on the record's calendar
replay_timing = timing_statistics(replay_series)
moments = Moments(yearly=sim_mean, lag=results.median_response_lag(), p_war=p_war, timing=replay_timing)

problem = Problem(base=hist_cfg, names=(), observed=obs, observed_lag=observed["response_lag_weeks"],
                  weights=tuple(weights.items()), events=events, calendar=calendar,
                  observed_timing=timing_statistics(calendar))
terms = loss_terms(problem, moments)
loss_table = pd.DataFrame({"this replay": terms})
if same_fit:  # the calibration's own terms at the same parameters (another fit's would not compare)
    loss_table["calibration.json"] = pd.Series(calib["loss_terms"])
loss_table = loss_table.sort_values("this replay", ascending=False)
loss_table.loc["total"] = loss_table.sum()
print(f"loss {sum(terms.values()):.3f} with {hist_cfg.replications} replications, seed {hist_cfg.seed}"
      + (f"; calibration.json: {calib['loss']:.3f} with {calib['config']['replications']}"
         if same_fit else ""))
print(f"median response lag: observed {observed['response_lag_weeks']:g} weeks, "
      f"simulated {moments.lag:g}; share of replications reaching war: {p_war:.3f} (observed 0)")
for g in TIMING_TARGETS:
    print(f"{g}: observed {problem.observed_timing[g]:.3f}, simulated {replay_timing[g]:.3f}")
loss_table.round(3)

# %% [markdown]
# Observed (black) against simulated (blue: mean, band: 5-95 % of replications), per year. The
# last two panels are not targets of their own: launch days per launch week follow from the launch
# days and weeks, missiles per launch day from the missiles and launch days (simulated: the year's
# missiles over its launch days, pooled over replications).

# %%
LABELS = {"dprk_launch_days": "DPRK launch days", "dprk_launch_weeks": "DPRK launch weeks",
          "dprk_missiles": "DPRK missiles", "dprk_nuclear_tests": "DPRK nuclear tests",
          "us_deployments": "US deployments", "kinetic_incidents": "border incidents (model: clashes)"}
sums = reps.groupby("year")[["dprk_launch_days", "dprk_launch_weeks", "dprk_missiles"]].sum().loc[YEARS]
def per(table, num, den):
    return table[num] / table[den].where(table[den] > 0)


ratios = {"launch days per launch week": (per(obs, "dprk_launch_days", "dprk_launch_weeks"),
                                          per(sums, "dprk_launch_days", "dprk_launch_weeks")),
          "missiles per launch day": (per(obs, "dprk_missiles", "dprk_launch_days"),
                                      per(sums, "dprk_missiles", "dprk_launch_days"))}
fig, axes = plt.subplots(2, 4, figsize=(18, 7.4), constrained_layout=True)
for ax, (group, label) in zip(axes.flat, LABELS.items(), strict=False):
    ax.fill_between(YEARS, sim_q05.loc[YEARS, group], sim_q95.loc[YEARS, group], alpha=0.2,
                    label="simulated 5-95 %")
    ax.plot(YEARS, sim_mean.loc[YEARS, group], "o-", label="simulated mean")
    ax.plot(YEARS, obs[group], "s--", color="k", label="observed")
    ax.set_title(f"{label} / year", fontsize=10)
for ax, (label, (o, s)) in zip(axes.flat[len(LABELS):], ratios.items(), strict=True):
    ax.plot(YEARS, s.to_numpy(), "o-", label="simulated (pooled)")
    ax.plot(YEARS, o.to_numpy(), "s--", color="k", label="observed")
    ax.set_title(f"{label} (not a target)", fontsize=10)
for ax in axes.flat:
    ax.set_xticks(YEARS, [str(y)[2:] for y in YEARS])
    ax.grid(alpha=0.3)
axes.flat[0].legend(fontsize=8)
axes.flat[len(LABELS)].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. The event study: when the DPRK launches and how fast the US answers
#
# `sim.event_study` computes the same timing statistics from the record and from the simulation,
# both on the replay's weekly calendar ([Section 4.11](../docs/model.md#411-observation)): launch
# shares in exercise weeks, after US arrivals and around consultations, each over the other weeks,
# and the share of major provocations answered by a US arrival within one or four weeks. The table
# marks those the loss includes (Section 3); the others are out-of-sample checks. The table and the figure are
# the calibration's (`calibration.json`): the record's value with its bootstrap interval over weeks
# (which treats weeks as independent, so where launches cluster it is likely too narrow), the
# model's value pooled over replications with the range of single replications, and, for
# comparison, this notebook's replay (pooled).

# %%
NUMERIC = ["observed", "observed_low", "observed_high", "simulated", "simulated_low", "simulated_high"]


def interval(lo, hi, digits=2):
    if np.isnan(lo) and np.isnan(hi):
        return "undefined"
    return f"[{lo:.{digits}f}, {'unbounded' if np.isnan(hi) else f'{hi:.{digits}f}'}]"


def position(value, lo, hi):
    """Where ``value`` lies against the interval [lo, hi] (hi nan: unbounded above)."""
    if np.isnan(value) or np.isnan(lo):
        return "undefined"
    if value < lo:
        return "below"
    return "above" if (not np.isnan(hi) and value > hi) else "inside"


study = None
if has(calib, "event_study"):
    study = pd.DataFrame(calib["event_study"])
    study[NUMERIC] = study[NUMERIC].apply(pd.to_numeric, errors="coerce").astype(float)
    study["in_fit"] = study["in_fit"].astype(bool)
    shown = pd.DataFrame({
        "in the fit": study["in_fit"].map({True: "fitted", False: "out of sample"}),
        "record": study["observed"].round(2),
        "record 90 % interval": [interval(*v) for v in study[["observed_low", "observed_high"]].to_numpy()],
        "record counts": study["observed_counts"],
        "model": study["simulated"].round(2),
        "model 5-95 % of replications": [interval(*v) for v in
                                         study[["simulated_low", "simulated_high"]].to_numpy()],
        "this replay": study["statistic"].map(replay_timing).round(2),
        "model vs record interval": [position(*v) for v in
                                     study[["simulated", "observed_low", "observed_high"]].to_numpy()],
        "record vs model range": [position(*v) for v in
                                  study[["observed", "simulated_low", "simulated_high"]].to_numpy()],
    }).set_axis(study["statistic"])
    display(shown)

# %%
if study is not None:
    display(event_study_figure(study, "Event study 2016-2023: the record against the calibrated replay "
                                      f"({calib['config']['replications']} replications)"))
    for r in study.itertuples():
        where = position(r.simulated, r.observed_low, r.observed_high)
        print(f"- {r.statistic} ({'fitted' if r.in_fit else 'out of sample'}): the model's "
              f"{r.simulated:.2f} is {where} the record's interval "
              f"{interval(r.observed_low, r.observed_high)}"
              f" (record {r.observed:.2f})")
    missed = study.loc[[position(*v) in ("below", "above") for v in
                        study[["simulated", "observed_low", "observed_high"]].to_numpy()], "statistic"]
    print(f"\n{len(missed)} of {len(study)} statistics have the model's pooled value outside the "
          "record's interval" + (f": {', '.join(missed)}" if len(missed) else ""))

# %% [markdown]
# ## 5. What pins down the spiral weight
#
# The spiral weight `w` splits allied pressure between deterrence (it raises the expected cost of
# provoking) and the spiral (it raises the value of displaying resolve;
# [Section 7.3](../docs/model.md#7-submodels)). It is the parameter behind the deterrence-versus-
# spiral question, so the calibration computes its **profile loss**: at each value on a grid over
# its bounds `w` is held fixed and the other parameters are re-fitted. The loss terms that rise as
# `w` moves away from the fit are the targets that identify it. The values whose profile loss lies
# within twice its Monte Carlo noise of the minimum (`sim.calibrate.profile_interval`; the noise of
# each point's loss difference from the best point over other model seeds,
# `sim.calibrate.profile_noise`) are those the fit cannot tell from the best. The calibration also
# reports the values the record's timing admits: those at which every fitted timing statistic of
# the re-fitted model lies inside the record's bootstrap interval (`sim.calibrate.timing_interval`).
# The bootstrap range (years resampled, new seeds) is a third, rough measure.

# %%
profile = calib.get("profiles", {}).get("spiral_weight") if has(calib, "profiles") else None
if "profiles" in calib and profile is None:
    print("calibration.json holds no profile of spiral_weight (that run had profile=[] or "
          "optimiser.profile_points=0)")
if profile is not None:
    rows = sorted(profile["rows"], key=lambda r: r["value"])
    prof = pd.DataFrame([{"value": r["value"], "loss": r["loss"], **r["terms"]} for r in rows])
    prof = prof.set_index("value")
    # the noise of each point's loss difference from the best (older files: one SD of the loss)
    noise = pd.Series([r.get("loss_difference_noise_sd", profile.get("loss_noise_sd", np.nan))
                       for r in rows], index=prof.index)
    est = profile.get("estimate", profile.get("estimate_before_profile"))
    lo, hi = profile["indistinguishable_range"]
    admitted = profile.get("admitted_by_timing")
    boot = calib["parameters"]["spiral_weight"].get("bootstrap_range90")
    b_lo, b_hi = calib["parameters"]["spiral_weight"]["bounds"]
    term_cols = [c for c in prof.columns if c != "loss"]
    at_fit = prof.iloc[int(np.argmin(np.abs(prof.index.to_numpy() - est)))]
    below, above = prof[prof.index < est], prof[prof.index > est]
    rise = pd.DataFrame({
        "at the grid point nearest the fit": at_fit[term_cols],
        "largest rise below the fit": (below[term_cols] - at_fit[term_cols]).max() if len(below) else np.nan,
        "largest rise above the fit": (above[term_cols] - at_fit[term_cols]).max() if len(above) else np.nan,
    })
    rise["largest rise"] = rise[["largest rise below the fit", "largest rise above the fit"]].max(axis=1)
    rise = rise.sort_values("largest rise", ascending=False)

    fig, ax = plt.subplots(figsize=(13, 4.6), constrained_layout=True)
    ax.errorbar(prof.index, prof["loss"], yerr=2 * noise.to_numpy(), fmt="o-", color="k", lw=2,
                capsize=3, label="profile loss (others re-fitted), 2 Monte Carlo SD")
    for term in rise.index[:4]:
        ax.plot(prof.index, prof[term], ".--", alpha=0.8, label=f"term: {term}")
    ax.axvspan(lo, hi, color="grey", alpha=0.12,
               label=f"indistinguishable from the best: {lo:.2f} to {hi:.2f}")
    if admitted:
        ax.axvspan(admitted[0], admitted[1], color="tab:green", alpha=0.12,
                   label=f"admitted by the record's timing: {admitted[0]:.2f} to {admitted[1]:.2f}")
    ax.axvline(est, color="tab:red", lw=1, label=f"fitted {est:.2f}")
    if boot is not None:
        ax.errorbar([est], [prof["loss"].min()], xerr=[[est - boot[0]], [boot[1] - est]], fmt="none",
                    color="tab:red", capsize=4, label=f"bootstrap 90 % range {boot[0]:.2f} to {boot[1]:.2f}")
    ax.set_xlabel("spiral_weight")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    plt.show()
    display(rise.round(3))

    points = pd.DataFrame({"profile loss": prof["loss"],
                           "above the minimum": prof["loss"] - prof["loss"].min(),
                           "2 Monte Carlo SD": 2 * noise})
    for k in profile.get("timing_intervals", {}):
        points[k] = [r.get("timing", {}).get(k, np.nan) for r in rows]
    display(points.round(3))

# %%
if profile is not None:
    step = float(np.diff(prof.index.to_numpy()).min()) if len(prof) > 1 else np.nan
    print(f"fitted spiral_weight {est:.3f} (bounds {b_lo:g} to {b_hi:g}, profile grid step {step:.2f})")
    before = profile.get("estimate_before_profile")
    if before is not None and not np.isclose(before, est):
        print(f"the first fit had spiral_weight {before:.3f}; the profile found a lower loss, and the fit "
              "was polished again from there")
    if calib["loss"] > prof["loss"].min() + 1e-9:
        print(f"the profile holds a lower loss ({prof['loss'].min():.3f}) than the reported fit "
              f"({calib['loss']:.3f}): the fit had not converged")
    excluded = (([f"below {lo:.2f}"] if lo > prof.index.min() else [])
                + ([f"above {hi:.2f}"] if hi < prof.index.max() else []))
    print(f"values the fit cannot tell from the best: {lo:.2f} to {hi:.2f}; "
          + ("they span the whole grid: at the calibration's Monte Carlo precision the loss does not "
             "pin the spiral weight down" if not excluded else
             f"the loss excludes values {' and '.join(excluded)}"))
    if "admitted_by_timing" in profile:
        print("the record's timing admits "
              + (f"values {admitted[0]:.2f} to {admitted[1]:.2f}" if admitted else "no value on the grid")
              + f" (every fitted timing statistic inside the record's interval: "
                f"{', '.join(profile.get('timing_intervals', {}))})")
    if boot is None:
        print("no bootstrap range (fewer than two bootstrap replicates in that run)")
    else:
        print(f"bootstrap 90 % range {boot[0]:.2f} to {boot[1]:.2f}: "
              + ("inside" if lo <= boot[0] and boot[1] <= hi else "not inside")
              + " the indistinguishable range, "
              + ("narrower" if (boot[1] - boot[0]) < (hi - lo) else "as wide or wider"))
    for side in ("below", "above"):
        col = f"largest rise {side} the fit"
        if rise[col].notna().any():
            t = rise[col].idxmax()
            print(f"moving spiral_weight {side} the fit raises {t} most ({rise.loc[t, col]:+.3f})")

# %% [markdown]
# ## 6. Out-of-sample check: the month of the year
#
# Launches were not fitted by month. If exercises provoke launches (the spiral channel),
# launches should cluster in the exercise months (spring: March; summer: August).
# `sim.calibration_report` gives both patterns as shares of the year's launch days (a simulated
# week counts in the month of its first day). The exercise-week launch ratio *is* fitted now, so
# the month pattern is no longer fully independent of the fit where exercises fall.
#
# The check (`sim.calibration_report.seasonality_check`) asks whether the model is closer to the
# record than a flat year (1/12 in every month): the total variation distance (TVD) of each from
# the record's shares, and their difference with a 90 % interval from resampling the record's launch
# days. Below 0 means the model is closer; only an interval wholly below 0 shows it beyond the noise
# of a small record. The calibration's check (`calibration.json`) and the same check on this
# notebook's replay:

# %%
obs_m = observed_month_shares(events)
sim_m = simulated_month_shares(results.timeseries)

x = np.arange(12)
fig, ax = plt.subplots(figsize=(10, 3.8), constrained_layout=True)
ax.bar(x - 0.2, obs_m, width=0.4, color="k", alpha=0.7, label="observed")
ax.bar(x + 0.2, sim_m, width=0.4, color="tab:blue", label="simulated (this replay)")
ax.axhline(1 / 12, color="grey", ls=":", label="flat (1/12)")
ax.set_xticks(x, MONTHS)
ax.set_ylabel("share of launch days")
ax.legend(fontsize=8)
plt.show()

checks = {}
if has(calib, "seasonality"):
    if "tvd_model_minus_flat_90" in calib["seasonality"]:
        checks["calibration.json"] = calib["seasonality"]
    else:
        print("calibration.json's seasonality has no comparison with flat: it was written by an older "
              "dsim-calibrate; re-run it to see the calibration's check.")
checks["this replay"] = seasonality_check(observed_month_counts(events), sim_m)


def verdict(c):
    d_lo, d_hi = c["tvd_model_minus_flat_90"]
    if d_hi < 0:
        return "the model is closer to the record than flat, beyond the resampling noise"
    if d_lo > 0:
        return "flat is closer to the record than the model, beyond the resampling noise"
    return ("the model is " + ("closer than" if c["tvd_model_minus_flat"] < 0 else "no closer than")
            + " flat, but the 90 % interval of the difference includes 0: not distinguishable")


season = pd.DataFrame({name: {
    "TVD model vs record": c["total_variation_distance"],
    "TVD flat vs record": c["total_variation_distance_flat"],
    "difference (model - flat)": c["tvd_model_minus_flat"],
    "difference, 90 % interval": interval(*c["tvd_model_minus_flat_90"], digits=3),
    "March share: record": c["march_share_observed"],
    "March share: record, 90 % interval": interval(*c["march_share_observed_90"]),
    "March share: model": c["march_share_simulated"],
    "March share: flat": c["march_share_flat"]} for name, c in checks.items()})
display(season.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v))
for name, c in checks.items():
    m_lo, m_hi = c["march_share_observed_90"]
    print(f"{name}: {verdict(c)}; the model's March share {c['march_share_simulated']:.1%} is "
          f"{position(c['march_share_simulated'], m_lo, m_hi)} the record's 90 % interval "
          f"{m_lo:.1%} to {m_hi:.1%} (record {c['march_share_observed']:.1%}, "
          f"flat {c['march_share_flat']:.1%})")
print(f"busiest month: observed {MONTHS[int(obs_m.argmax())]}, this replay {MONTHS[int(sim_m.argmax())]}")

# %% [markdown]
# ## 7. What the model gets wrong
#
# Each target year's miss as the loss measures it, the scaled Pearson residual
# `(simulated - observed) / sqrt(max(observed, floor) * mean_y max(observed, floor))`, with the
# relative miss for reading. The largest ones, and whether the observed count lies outside the
# simulated 5-95 % band:

# %%
rows = []
for group in LABELS:
    o_all, s_all = obs.loc[YEARS, group].to_numpy(float), sim_mean.loc[YEARS, group].to_numpy(float)
    resid = count_residuals(s_all, o_all, FLOORS[group])
    for k, year in enumerate(YEARS):
        o, s = o_all[k], s_all[k]
        lo, hi = sim_q05.loc[year, group], sim_q95.loc[year, group]
        rows.append({"target": group, "year": year, "observed": o, "simulated": s,
                     "residual": resid[k], "relative miss": (s - o) / max(o, FLOORS[group]),
                     "outside 5-95 %": bool(o < lo or o > hi)})
misses = pd.DataFrame(rows)
worst = misses.reindex(misses["residual"].abs().sort_values(ascending=False).index).head(8)
worst.round(3).reset_index(drop=True)

# %%
outside = misses.groupby("target")["outside 5-95 %"].sum()
print(f"{int(misses['outside 5-95 %'].sum())} of {len(misses)} target years have the observed "
      "count outside the simulated 5-95 % band:")
for group, k in outside.items():
    print(f"  {LABELS[group]}: {k} of {len(YEARS)} years")
print()
for r in worst.itertuples():
    way = "too low" if r.simulated < r.observed else "too high"
    print(f"- {r.year} {LABELS[r.target]}: observed {r.observed:g}, simulated {r.simulated:.2f} ({way})")
print()
for group in ("dprk_launch_days", "dprk_launch_weeks", "dprk_missiles", "dprk_nuclear_tests",
              "us_deployments"):
    o, s = obs[group].sum(), sim_mean.loc[YEARS, group].sum()
    print(f"{LABELS[group]} over 2016-2023: observed {o:g}, simulated {s:.1f} "
          f"({'under' if s < o else 'over'} by {abs(s - o) / max(o, 1):.0%})")
largest = max(terms, key=terms.get)
print(f"\nThe largest loss term is {largest} ({terms[largest]:.3f} of {sum(terms.values()):.3f}).")

# %% [markdown]
# Where these misses come from, in the model's structure:
#
# - the behavioural parameters are shared by all eras; eras differ only in their weapons drive,
#   diplomacy level and the nuclear-test moratorium
#   ([Section 6.2](../docs/model.md#6-input-data)), so from one era to the next launch weeks,
#   missiles and tests rise and fall largely together;
# - one weekly quantal-response choice has to produce both frequent launches and rare nuclear tests
#   ([Section 7.3](../docs/model.md#7-submodels));
# - a launch week is one action, short-range or long-range, and all its launch days follow from
#   that week's choice and tension ([Section 7.4](../docs/model.md#7-submodels)); the record's
#   weeks that mix long- and shorter-range launch days are counted in Section 1;
# - the record's border incidents include events below the model's kinetic-clash rung
#   ([data/README.md](../data/README.md)).
#
# The calibration write-up discusses the fit and its limits in
# [docs/calibration.md](../docs/calibration.md#what-the-model-gets-wrong), and the model's
# [known limitations](../docs/model.md#9-known-limitations) are listed in its description. Read
# them before using `params=calibrated` for more than comparisons between postures.
