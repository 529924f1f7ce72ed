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
# # 1. One scenario, week by week
#
# This notebook runs one forward scenario of dsim through the library API and looks at what the
# model records each week: tension, the DPRK's belief that the US is resolute, allied assurance,
# and the actions of the DPRK, the US, the ROK and Japan. Each mechanism gets a short note and a
# link to its section of the model description, [docs/model.md](../docs/model.md) (ODD protocol).
# That document is the reference; this notebook is a tour.
#
# **Size.** The number of replications comes from the environment variable
# `DSIM_NOTEBOOK_REPLICATIONS` (default 2000). The tests run this notebook with 100, so numbers
# printed there are noisier than those of a full run. Every number below is computed in the
# notebook; none is typed in.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, unused here
import sim  # noqa: E402
from sim.metrics import METRIC_UNITS, headline_metrics  # noqa: E402

R = int(os.environ.get("DSIM_NOTEBOOK_REPLICATIONS", "2000"))
print(f"replications per run: {R}")

# %% [markdown]
# ## The configuration
#
# `sim.load_config` composes the Hydra configs in `configs/` exactly as the command line does and
# returns a validated, frozen `RunConfig`. The call below is the Python twin of
#
# ```bash
# uv run dsim params=calibrated policy=rotational credibility=0.7 replications=2000
# ```
#
# - `params=calibrated`: the behavioural parameters fitted to the 2016-2023 record
#   (`configs/params/calibrated.yaml`; see [docs/calibration.md](../docs/calibration.md) for the
#   fit and its limits). Unlisted parameters keep their defaults from `sim/params.py`.
# - `policy=rotational`: a strategic asset arrives on a fixed cadence and leaves gaps; surges after
#   provocations are allowed ([Section 3.3](../docs/model.md#3-process-overview-and-scheduling)).
# - `credibility=0.7`: each replication's US is resolute with probability 0.7, drawn once per
#   replication and hidden from the DPRK.
# - the `baseline` scenario: ten years of weeks from January 2026 with the yearly allied calendar
#   (spring and summer combined exercises, consultations).
#
# Without Hydra, `sim.RunConfig(...).replace(policy={"name": sim.Posture.rotational})` builds the
# same kind of object from the defaults in `sim/params.py`.

# %%
cfg = sim.load_config(["params=calibrated", "policy=rotational", "credibility=0.7",
                       f"replications={R}", "progress=false"])
print(f"posture {cfg.policy.name.value}: an asset every {cfg.policy.rotation_interval_weeks} weeks, "
      f"on station for {cfg.policy.rotation_duration_weeks}")
print(f"scenario {cfg.scenario.name}: {cfg.scenario.weeks} weeks from {cfg.scenario.start_date}")
print(f"credibility {cfg.credibility}, seed {cfg.seed}, replications {cfg.replications}")
print(f"spiral weight {cfg.params.spiral_weight:.3f}, belief rule {cfg.params.credibility_rule.value}")

# %% [markdown]
# ## Running it
#
# `sim.run(cfg)` builds a `DeterrenceModel` (one Mesa model that holds all R replications as numpy
# arrays, [Section 3.5](../docs/model.md#3-process-overview-and-scheduling)) and steps it week by
# week. It returns a `Results` object:
#
# - `results.timeseries`: one row per week with ensemble means and 5/50/95 % quantiles of the state
#   variables, the share of replications taking each action, and the escalation curves;
# - `results.replications`: one row per replication and calendar year (action counts), plus
#   per-replication fields; `results.per_replication()` sums the years.

# %%
t0 = time.perf_counter()
results = sim.run(cfg)
print(f"{cfg.replications} replications x {cfg.scenario.weeks} weeks in {time.perf_counter() - t0:.1f} s")
ts = results.timeseries
ts["date"] = pd.to_datetime(ts["date"])
per = results.per_replication()
ts.iloc[:3, :10]


# %% [markdown]
# A small helper shades the weeks of combined exercises in the plots that follow.

# %%
def shade_exercises(ax, ts=ts):
    """Shade the weeks in which a combined exercise runs."""
    on = ts["exercise_intensity"].to_numpy() > 0
    starts = np.flatnonzero(on & ~np.r_[False, on[:-1]])
    ends = np.flatnonzero(on & ~np.r_[on[1:], False])
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        ax.axvspan(ts["date"].iloc[a], ts["date"].iloc[b] + pd.Timedelta(days=7), color="orange",
                   alpha=0.15, lw=0, label="combined exercise" if i == 0 else None)


# %% [markdown]
# ## 1. The calendar and the posture
#
# The allied calendar is exogenous: combined exercises (spring and summer) and consultations fire as
# Mesa events before the week's moves, and the posture schedules US asset arrivals
# ([Sections 3.2-3.3](../docs/model.md#3-process-overview-and-scheduling)). Under `rotational`
# the schedule is the same in every replication; surges (discretionary deployments after
# provocations) differ between replications. The plot shows the first two years.

# %%
first = ts[ts["week"] < 104]
fig, ax = plt.subplots(figsize=(11, 3.2), constrained_layout=True)
shade_exercises(ax, first)
ax.step(first["date"], first["scheduled_on_station"], where="post", color="tab:blue",
        label="scheduled asset on station")
ax.plot(first["date"], first["asset_on_station"], color="tab:red", lw=1,
        label="share of replications with any asset on station (incl. surges)")
cons = first[first["consultation"] > 0]
ax.plot(cons["date"], np.full(len(cons), 1.08), "kv", label="consultation")
ax.set_ylim(-0.05, 1.15)
ax.set_ylabel("on station")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, ncol=4)
ax.set_title("Allied calendar and US presence, first two years")
plt.show()

print(f"weeks with a scheduled asset on station: {ts['scheduled_on_station'].mean():.0%}; "
      f"with any asset (surges included, mean over replications): {ts['asset_on_station'].mean():.0%}")

# %% [markdown]
# ## 2. The DPRK chooses
#
# Each week every actor picks one action by a logit **quantal response** over its utilities
# ([Section 7.2](../docs/model.md#7-submodels)). The DPRK's utility of an action
# ([Section 7.3](../docs/model.md#7-submodels)) sets its intrinsic cost against the
# weapons-development value of testing and the expected US punishment, which grows with its belief
# that the US is resolute. Allied military pressure enters twice, weighted by the **spiral
# weight** `w`: with weight `1 - w` it raises expected punishment (deterrence), with weight `w` it
# raises the value of displaying resolve by provoking (the spiral model).
#
# The plot shows the share of replications taking each DPRK action per week (a four-week rolling
# mean), with exercise weeks shaded.

# %%
dprk_actions = {"dprk_srbm_launch": "short-range launch", "dprk_lrbm_launch": "long-range launch",
                "dprk_nuclear_test": "nuclear test", "dprk_rhetoric": "rhetoric",
                "dprk_talks_offer": "talks offer", "dprk_border_incident": "border incident"}
fig, ax = plt.subplots(figsize=(11, 3.8), constrained_layout=True)
shade_exercises(ax)
for col, label in dprk_actions.items():
    ax.plot(ts["date"], ts[col].rolling(4, min_periods=1).mean(), label=label, lw=1.2)
ax.set_ylabel("share of replications per week")
ax.set_title("DPRK actions (four-week rolling mean)")
ax.legend(fontsize=8, ncol=4)
plt.show()

# %% [markdown]
# Does the DPRK launch more often in exercise weeks? With a spiral weight above zero, exercises make
# provocation more attractive; through the deterrence channel they make it costlier. The sign below
# is what this run gives.

# %%
launch = ts["dprk_srbm_launch"] + ts["dprk_lrbm_launch"]
exercise = ts["exercise_intensity"] > 0
in_ex, out_ex = launch[exercise].mean(), launch[~exercise].mean()
ratio = in_ex / out_ex
print(f"weekly launch probability: {in_ex:.3f} in exercise weeks, {out_ex:.3f} in other weeks "
      f"(ratio {ratio:.2f}; spiral weight {cfg.params.spiral_weight:.2f})")
if ratio > 1:
    print("Launches are more frequent in exercise weeks: on balance, at these parameters, the "
          "exercises' pressure provokes more than it deters.")
else:
    print("Launches are not more frequent in exercise weeks: on balance, at these parameters, the "
          "exercises' pressure deters at least as much as it provokes.")

# %% [markdown]
# ## 3. The US responds
#
# The US answers this week's DPRK action (and last week's ROK request for assets) with a
# statement, a public threat or a surge deployment, or holds
# ([Sections 7.6-7.7](../docs/model.md#7-submodels)). Statements are cheap talk: they do not
# depend on the US type. Threats and surges do: an irresolute US values them at only
# `us_irresolute_factor` of what a resolute one does, which is what makes them informative to the
# DPRK. Every arrival and every week on station is charged to a stylised cost account
# (1 unit = one asset on station for one week).

# %%
us_actions = {"us_statement": "statement", "us_threat": "threat", "us_surge_deployment": "surge"}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), constrained_layout=True)
for col, label in us_actions.items():
    axes[0].plot(ts["date"], ts[col].rolling(4, min_periods=1).mean(), label=label, lw=1.2)
axes[0].set_ylabel("share of replications per week")
axes[0].set_title("US responses (four-week rolling mean)")
axes[0].legend(fontsize=8)
axes[1].plot(ts["date"], ts["us_cost_cumulative"], color="tab:purple")
axes[1].set_ylabel("cost units (mean over replications)")
axes[1].set_title("Cumulative US deployment cost")
plt.show()

by_type = per.groupby("us_resolute")["us_deployments"].mean()
print(f"US arrivals over the horizon (scheduled and surges): {by_type.get(True, np.nan):.1f} when "
      f"the US is resolute, {by_type.get(False, np.nan):.1f} when it is not")
print(f"median weeks from a major provocation to the next US arrival: {results.median_response_lag():g}")

# %% [markdown]
# ## 4. The DPRK learns about US resolve
#
# The DPRK does not see the US type. It starts from its prior (by default the common prior, the
# credibility) and updates its log-odds by Bayes' rule on each week's US response (hold, statement,
# threat, surge), read through the probability that a resolute and an irresolute US would make it
# in that situation: the model's own likelihoods, so its belief is calibrated. Scheduled arrivals
# and consultations happen whatever the type and tell it nothing (a DPRK that misreads them as
# costly signals is `params.perception=costly_signals`). When a new US administration takes office
# the belief moves part of the way back to the prior, as the US type may change then
# ([Section 7.10](../docs/model.md#7-submodels); the alternative "current calculus" rule is
# Section 7.11).

# %%
fig, ax = plt.subplots(figsize=(11, 3.6), constrained_layout=True)
ax.fill_between(ts["date"], ts["dprk_belief_q05"], ts["dprk_belief_q95"], alpha=0.25,
                label="5-95 % of replications")
ax.plot(ts["date"], ts["dprk_belief_mean"], label="mean")
ax.axhline(cfg.credibility, color="k", ls=":", label=f"prior = credibility {cfg.credibility}")
ax.set_ylim(0, 1)
ax.set_ylabel("P(US resolute), DPRK belief")
ax.set_title("DPRK belief that the US is resolute")
ax.legend(fontsize=8, loc="lower right")
plt.show()

final = per.groupby("us_resolute")["final_dprk_belief"].mean()
print(f"final DPRK belief: {final.get(True, np.nan):.3f} where the US is resolute, "
      f"{final.get(False, np.nan):.3f} where it is not")
if final.get(True, np.nan) > final.get(False, np.nan):
    print("The DPRK ends up believing more in US resolve where the US really is resolute: the "
          "costly signals carry information.")
else:
    print("The final belief does not separate the two US types in this run.")

# %% [markdown]
# ## 5. Allies are assured (or not)
#
# The ROK and Japan are a second audience of the same signals. Arrivals, presence (not
# habituated: allies value it), consultations, threats and statements close part of the gap to
# full assurance; DPRK long-range and nuclear tests remove a share of it (decoupling fear); and
# assurance reverts to an anchor that falls as DPRK long-range capability grows
# ([Section 7.12](../docs/model.md#7-submodels)). Both allies choose their own actions
# ([Sections 7.8-7.9](../docs/model.md#7-submodels)).

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), constrained_layout=True, sharey=True)
for ax, who in zip(axes, ("rok", "japan"), strict=True):
    ax.fill_between(ts["date"], ts[f"{who}_assurance_q05"], ts[f"{who}_assurance_q95"], alpha=0.25)
    ax.plot(ts["date"], ts[f"{who}_assurance_mean"])
    ax.set_title(f"{'ROK' if who == 'rok' else 'Japan'} assurance (mean, 5-95 %)")
axes[0].set_ylabel("assurance (0-1)")
plt.show()

start, end = ts["rok_assurance_mean"].iloc[0], ts["rok_assurance_mean"].iloc[-1]
print(f"ROK assurance: mean {start:.3f} in the first week, {end:.3f} in the last "
      f"({'up' if end > start else 'down'} {abs(end - start):.3f})")

# %% [markdown]
# ## 6. Pressure, tension and the escalation ladder
#
# Allied pressure (exercises, assets on station, surges, threats, ROK strike drills, trilateral
# drills) decays geometrically and feeds the DPRK's next choice
# ([Section 7.13](../docs/model.md#7-submodels)). **Tension** decays each week and rises with
# every provocation, missile, exercise, arrival and threat; talks and outreach lower it
# ([Section 7.14](../docs/model.md#7-submodels)). Higher tension makes an unintended clash more
# likely, and a clash can become war, which ends the replication
# ([Section 7.15](../docs/model.md#7-submodels)). The ladder's rungs are calm, rhetoric, missile
# test, nuclear test, kinetic clash, war; the **ladder curves** `p_rung_at_least_<rung>` give the
# share of replications whose highest rung so far is that rung or a higher one.
#
# A ladder level is not the probability of an event. A replication that never tested a nuclear
# weapon but had a clash has reached rung 4, so it counts in `p_rung_at_least_nuclear_test`. The
# probability of at least one nuclear test is `p_nuclear_test` in `summary.json`, computed from the
# per-replication counts; the plot draws both.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), constrained_layout=True)
shade_exercises(axes[0])
axes[0].fill_between(ts["date"], ts["tension_q05"], ts["tension_q95"], alpha=0.25,
                     label="5-95 % of replications")
axes[0].plot(ts["date"], ts["tension_mean"], label="mean")
axes[0].set_ylabel("tension")
axes[0].set_title("Tension")
axes[0].legend(fontsize=8)
for rung, style in (("nuclear_test", "--"), ("kinetic_clash", "-"), ("war", ":")):
    axes[1].plot(ts["date"], ts[f"p_rung_at_least_{rung}"], ls=style,
                 label=f"highest rung \u2265 {rung.replace('_', ' ')}")
# At least one nuclear test by the end of each calendar year, from the per-replication counts.
by_year = results.replications.pivot_table(index="replication", columns="year",
                                           values="dprk_nuclear_test", aggfunc="sum")
tested_by = (by_year.cumsum(axis=1) > 0).mean()
year_end = ts.groupby(ts["date"].dt.year)["date"].max()
axes[1].plot(year_end.loc[tested_by.index], tested_by, "o-", ms=3,
             label="\u2265 1 nuclear test (by year end)")
axes[1].set_yscale("log")
axes[1].set_ylabel("share of replications (log scale)")
axes[1].set_title("Ladder levels and nuclear tests")
axes[1].legend(fontsize=8)
plt.show()

last = ts.iloc[-1]
summary = headline_metrics(results.replications)
print(f"by {last['date'].date()}: highest rung nuclear test or higher "
      f"{last['p_rung_at_least_nuclear_test']:.3f}, of which a kinetic clash or war "
      f"{last['p_rung_at_least_kinetic_clash']:.3f}; war {last['p_rung_at_least_war']:.4f}")
p_test = summary["p_nuclear_test"]
print(f"at least one nuclear test: {p_test['estimate']:.3f} (95 % CI {p_test['ci95'][0]:.3f}-"
      f"{p_test['ci95'][1]:.3f}); the ladder level above counts clashes too")

# %% [markdown]
# ## 7. Headline metrics
#
# `sim.metrics.headline_metrics` computes, from the per-replication table only, the numbers that
# `uv run dsim` writes to `summary.json`: means with a 95 % confidence interval of the ensemble
# mean (`ci95`) and the 2.5-97.5 % range across replications (`range95`); probabilities with a
# Wilson interval. `p_<event>` is the share of replications in which the event happened at least
# once; `p_rung_at_least_<rung>` is a ladder level (see above). `sim.metrics.METRIC_UNITS` gives
# each metric's unit.

# %%
rows = []
for name, m in headline_metrics(results.replications).items():
    value = m.get("mean", m.get("estimate"))
    lo, hi = m["ci95"]
    r_lo, r_hi = m.get("range95", (np.nan, np.nan))
    rows.append({"metric": name, "value": value, "ci95 low": lo, "ci95 high": hi,
                 "range95 low": r_lo, "range95 high": r_hi, "unit": METRIC_UNITS[name]})
pd.DataFrame(rows).set_index("metric").round(3)

# %% [markdown]
# Next: [02_rotational_vs_permanent](02_rotational_vs_permanent.ipynb) compares the four postures
# across credibility; [03_calibration](03_calibration.ipynb) holds the model against the record.
