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
# # 2. Rotational versus permanent deployment
#
# The first EDSCG (December 2016) promised *regular*, that is rotational, deployment of US
# strategic assets; Seoul had asked for *permanent* deployment. This notebook runs a small
# version of the named study that compares the four deployment postures across commitment
# credibility:
#
# | posture | what it does ([Section 3.3](../docs/model.md#3-process-overview-and-scheduling)) |
# |---|---|
# | `rotational` | an asset arrives on a fixed cadence and leaves gaps; surges after provocations |
# | `permanent` | an asset is based from week 0 (a one-time setup cost and signal), always present |
# | `reactive` | nothing scheduled; surges after provocations only |
# | `none` | no deployments at all (statements, threats and consultations remain) |
#
# The full study is one command, `uv run dsim -m experiment=rotational_vs_permanent`
# (11 credibility levels x 4 postures, 2000 replications each; see
# [experiments/rotational_vs_permanent/README.md](../experiments/rotational_vs_permanent/README.md)
# for its reference results). Here we run the same configurations at three credibility levels.
#
# **Size.** Replications per point come from `DSIM_NOTEBOOK_REPLICATIONS` (default 2000, as in
# the study; the tests use 100). Every number in the text below is computed here.

# %%
import os
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, unused here
import sim  # noqa: E402
from sim.metrics import METRIC_UNITS, mean_interval, replication_metrics  # noqa: E402
from sim.sweep import POSTURE_COLOURS, POSTURE_ORDER, paired_difference  # noqa: E402

R = int(os.environ.get("DSIM_NOTEBOOK_REPLICATIONS", "2000"))
CREDIBILITIES = (0.2, 0.5, 0.9)
print(f"replications per run: {R} (one run per posture and credibility level {CREDIBILITIES})")

# %%
# Figures inline (the library leaves the matplotlib backend to the caller).
# %matplotlib inline
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

# %% [markdown]
# ## The runs
#
# `sim.load_config` composes one point of the study as the command line would: the study's config
# (`configs/experiment/rotational_vs_permanent.yaml`) selects `params=calibrated`, and each point
# adds its posture, its credibility and the replications. The loop below builds the same points as
# `dsim -m experiment=rotational_vs_permanent credibility=0.2,0.5,0.9 replications=R`, one call per
# point.
#
# Every point has the **same seed and R**, so replication *i* meets the same random numbers, and
# the same US type, under every posture (common random numbers). The difference between two
# postures can then be computed replication by replication, which is the *paired* comparison used
# below and in the study's `comparison.csv`.

# %%
configs = [sim.load_config(["experiment=rotational_vs_permanent", f"policy={posture}",
                            f"credibility={c}", f"replications={R}"])
           for posture in POSTURE_ORDER for c in CREDIBILITIES]
assert len({(c.seed, c.replications) for c in configs}) == 1  # paired: one seed, one R
print(f"{len(configs)} points, seed {configs[0].seed}, {configs[0].scenario.weeks} weeks from "
      f"{configs[0].scenario.start_date}")

t0 = time.perf_counter()
runs = {}
for cfg in configs:
    res = sim.run(cfg)
    runs[(cfg.policy.name.value, cfg.credibility)] = {
        "metrics": replication_metrics(res.replications),  # one row per replication
        "timeseries": res.timeseries,
    }
print(f"ran {len(runs)} points in {time.perf_counter() - t0:.0f} s")
POSTURES = [p for p in POSTURE_ORDER if any(k[0] == p for k in runs)]

# %% [markdown]
# ## Each posture on its own
#
# `sim.metrics.replication_metrics` turns a run's per-replication table into one row per
# replication with the headline metrics (rates per year, 0/1 indicators for the probabilities:
# `p_nuclear_test` is 1 where the DPRK tested at least once, `p_rung_at_least_nuclear_test` where
# the highest rung reached was a nuclear test or higher, which a clash alone also satisfies).
# Their means, with a 95 % confidence interval of the mean, per posture and credibility:

# %%
METRICS = {
    "dprk_launch_days_per_year": "DPRK launch days / year",
    "p_kinetic_clash": "P(kinetic clash within 10 years)",
    "final_dprk_belief": "DPRK belief that the US is resolute (last week)",
    "us_deployment_cost_per_year": "US deployment cost / year",
}
fig, axes = plt.subplots(1, len(METRICS), figsize=(17, 3.8), constrained_layout=True)
for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
    for posture in POSTURES:
        stats = [mean_interval(runs[(posture, c)]["metrics"][metric].to_numpy()) for c in CREDIBILITIES]
        mean = np.array([s["mean"] for s in stats])
        lo = np.array([s["ci95"][0] for s in stats])
        hi = np.array([s["ci95"][1] for s in stats])
        ax.errorbar(CREDIBILITIES, mean, yerr=[mean - lo, hi - mean], fmt="o-", capsize=3,
                    color=POSTURE_COLOURS[posture], label=posture)
    ax.set_title(label, fontsize=10)
    ax.set_xlabel("credibility")
    ax.grid(alpha=0.3)
axes[0].legend(title="posture", fontsize=8)
plt.show()

# %% [markdown]
# ## Paired differences, with 95 % intervals
#
# For each credibility level, every posture is compared with `rotational` (the EDSCG's promise) on
# the same replications: `sim.sweep.paired_difference(a, b, paired=True)` gives the mean of
# `a - b` with a paired-t 95 % interval. An interval that excludes zero is marked `*`.

# %%
COMPARED = ["dprk_launch_days_per_year", "dprk_missiles_per_year", "dprk_nuclear_tests_per_year",
            "p_nuclear_test", "p_kinetic_clash", "final_dprk_belief",
            "us_deployments_per_year", "us_deployment_cost_per_year"]
rows = []
for c in CREDIBILITIES:
    ref = runs[("rotational", c)]["metrics"]
    for posture in POSTURES:
        if posture == "rotational":
            continue
        other = runs[(posture, c)]["metrics"]
        for metric in COMPARED:
            a, b = other[metric].to_numpy(), ref[metric].to_numpy()
            diff, lo, hi = paired_difference(a, b, paired=True)
            rows.append({"credibility": c, "comparison": f"{posture} - rotational", "metric": metric,
                         "difference": diff, "ci_low": lo, "ci_high": hi,
                         "significant": bool(lo > 0 or hi < 0), "mean_posture": a.mean(),
                         "mean_rotational": b.mean()})
comparison = pd.DataFrame(rows)


def cell(r):
    return f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]{' *' if r.significant else ''}"


(comparison.assign(text=[cell(r) for r in comparison.itertuples()])
 .pivot_table(index=["metric", "credibility"], columns="comparison", values="text", aggfunc="first")
 .reindex(COMPARED, level=0))

# %% [markdown]
# The same comparison for a finished sweep folder is `comparison.csv` in that folder (written when
# the sweep ends, or by `uv run dsim-report <folder>`), or in Python
# `sim.sweep.comparison_table(sim.sweep.load_points(folder))`.
#
# **Why pair?** Replications share their random numbers across postures, so much of the noise
# cancels in the difference. The paired interval is narrower than the interval an unpaired (Welch)
# comparison of the same numbers would give:

# %%
c_hi = max(CREDIBILITIES)
a = runs[("permanent", c_hi)]["metrics"]["dprk_launch_days_per_year"].to_numpy()
b = runs[("rotational", c_hi)]["metrics"]["dprk_launch_days_per_year"].to_numpy()
_, plo, phi = paired_difference(a, b, paired=True)
_, ulo, uhi = paired_difference(a, b, paired=False)
print(f"permanent - rotational, launch days/year at credibility {c_hi}: paired 95 % interval width "
      f"{phi - plo:.3f}, unpaired {uhi - ulo:.3f} ({(uhi - ulo) / (phi - plo):.1f} times wider)")

# %% [markdown]
# ### The differences at a glance

# %%
comparisons = [f"{p} - rotational" for p in POSTURES if p != "rotational"]
fig, axes = plt.subplots(1, len(METRICS), figsize=(17, 3.8), constrained_layout=True)
for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
    for k, comp in enumerate(comparisons):
        d = comparison[(comparison["metric"] == metric) & (comparison["comparison"] == comp)]
        x = np.array(d["credibility"]) + (k - 1) * 0.015
        ax.errorbar(x, d["difference"], yerr=[d["difference"] - d["ci_low"], d["ci_high"] - d["difference"]],
                    fmt="o-", capsize=3, color=POSTURE_COLOURS[comp.split(" ")[0]], label=comp)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_title(f"{label}\n(posture minus rotational)", fontsize=10)
    ax.set_xlabel("credibility")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Reading the comparison
#
# The sentences below are generated from the table: a difference is called a rise or a fall only
# when its 95 % interval excludes zero. They describe this run (its credibility levels and
# replication count), not the model in general.

# %%
VERB = {True: "raises", False: "lowers"}


def describe(posture, metric, c):
    r = comparison[(comparison["comparison"] == f"{posture} - rotational")
                   & (comparison["metric"] == metric) & (comparison["credibility"] == c)].iloc[0]
    what = METRICS.get(metric, metric)
    unit = METRIC_UNITS.get(metric, "")
    span = f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
    if not r.significant:
        return f"- {posture} does not clearly change {what} (difference {span})"
    return (f"- {posture} {VERB[r.difference > 0]} {what} relative to rotational: "
            f"{r.mean_posture:.3f} vs {r.mean_rotational:.3f}{' ' + unit if 'probab' not in unit else ''}, "
            f"difference {span}")


for c in CREDIBILITIES:
    print(f"At credibility {c}:")
    for metric in METRICS:
        print(describe("permanent", metric, c))
    print()

# %% [markdown]
# Does the answer depend on credibility? The sign of the permanent-minus-rotational difference at
# each level:

# %%
for metric, label in METRICS.items():
    d = comparison[(comparison["comparison"] == "permanent - rotational") & (comparison["metric"] == metric)]
    signs = ["+" if (r.significant and r.difference > 0) else "-" if r.significant else "0"
             for r in d.itertuples()]
    pattern = ", ".join(f"{c}: {s}" for c, s in zip(d["credibility"], signs, strict=True))
    verdict = ("the same sign at every level" if len(set(signs)) == 1 and signs[0] != "0"
               else "no clear difference at any level" if set(signs) == {"0"}
               else "a sign that depends on credibility")
    print(f"{label}: {verdict} ({pattern})")

# %% [markdown]
# The DPRK's belief moves on the US's discretionary responses, each read through the probability
# that a resolute and an irresolute US would make it in that situation
# ([Section 7.10](../docs/model.md#7-submodels)). Scheduled arrivals and basing happen whatever the
# type, so a consistent DPRK reads nothing from them, and its final belief averages the share of
# resolute US under every posture (it is calibrated). The arrivals and beliefs side by side show it:

# %%
for c in CREDIBILITIES:
    arrivals = {p: runs[(p, c)]["metrics"]["us_deployments_per_year"].mean() for p in POSTURES}
    belief = {p: runs[(p, c)]["metrics"]["final_dprk_belief"].mean() for p in POSTURES}
    print(f"credibility {c}: " + "; ".join(
        f"{p} {arrivals[p]:.1f} arrivals/yr, final belief {belief[p]:.3f}" for p in POSTURES))
c = max(CREDIBILITIES)
gap = abs(runs[("permanent", c)]["metrics"]["final_dprk_belief"].mean()
          - runs[("rotational", c)]["metrics"]["final_dprk_belief"].mean())
more = (runs[("rotational", c)]["metrics"]["us_deployments_per_year"].mean()
        > runs[("permanent", c)]["metrics"]["us_deployments_per_year"].mean())
print(f"At credibility {c}: rotational has {'more' if more else 'no more'} arrivals than permanent, and "
      f"their final beliefs differ by {gap:.3f}. A DPRK that misreads scheduled arrivals as costly "
      "signals (params.perception=costly_signals) would end higher under rotational.")

# %% [markdown]
# ## Escalation curves
#
# The share of replications whose highest rung of the ladder by week *t* is at least a given rung
# (`p_rung_at_least_*` columns of `Results.timeseries`;
# [Section 7.15](../docs/model.md#7-submodels)), per posture (columns) and credibility (colours).
# The last point of each curve is the `p_rung_at_least_*` metric of the run. "Nuclear test or
# higher" is dominated by clashes: the share with an actual nuclear test is `p_nuclear_test`,
# printed after the figure.

# %%
RUNGS = {"p_rung_at_least_nuclear_test": "nuclear test or higher",
         "p_rung_at_least_kinetic_clash": "kinetic clash or higher"}
colours = plt.cm.viridis(np.linspace(0.1, 0.85, len(CREDIBILITIES)))
fig, axes = plt.subplots(len(RUNGS), len(POSTURES), figsize=(16, 7), sharex=True, sharey="row",
                         constrained_layout=True, squeeze=False)
for j, posture in enumerate(POSTURES):
    for c, colour in zip(CREDIBILITIES, colours, strict=True):
        ts = runs[(posture, c)]["timeseries"]
        for i, col in enumerate(RUNGS):
            axes[i, j].plot(pd.to_datetime(ts["date"]), ts[col], color=colour, label=f"credibility {c}")
    axes[0, j].set_title(posture)
    for i, name in enumerate(RUNGS.values()):
        axes[i, j].grid(alpha=0.3)
        if j == 0:
            axes[i, j].set_ylabel(f"P(highest rung {name})")
for ax in axes[-1]:
    locator = mdates.AutoDateLocator(maxticks=5)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
axes[0, 0].legend(fontsize=8)
plt.show()

for col, name in RUNGS.items():
    for c in CREDIBILITIES:
        end = {p: runs[(p, c)]["timeseries"][col].iloc[-1] for p in POSTURES}
        order = sorted(end, key=end.get)
        print(f"{name}, credibility {c}: by the last week "
              + ", ".join(f"{p} {end[p]:.3f}" for p in order)
              + f" (lowest: {order[0]}; see the table for which gaps are beyond noise)")
for c in CREDIBILITIES:
    tested = {p: runs[(p, c)]["metrics"]["p_nuclear_test"].mean() for p in POSTURES}
    ladder = {p: runs[(p, c)]["metrics"]["p_rung_at_least_nuclear_test"].mean() for p in POSTURES}
    print(f"credibility {c}, at least one nuclear test within the horizon: "
          + ", ".join(f"{p} {tested[p]:.3f}" for p in POSTURES)
          + " (highest rung nuclear test or higher: "
          + ", ".join(f"{p} {ladder[p]:.3f}" for p in POSTURES) + ")")

# %% [markdown]
# **Caveats.** These are model results at the calibrated parameters, whose fit to the record is
# limited ([docs/calibration.md](../docs/calibration.md), and notebook
# [03_calibration](03_calibration.ipynb)). The deterrence-versus-spiral weight, the presence term
# and the belief rule are contested in the literature
# ([Section 1.1](../docs/model.md#1-purpose-and-patterns)). The calibration's timing evidence admits
# spiral weights from 0.4 to 1, and the ranking of permanent against rotational changes inside that
# range ([the study's checks](../experiments/rotational_vs_permanent/README.md)). The posterior leaves
# the spiral weight almost free (0.07 to 0.95); the comparison integrated over it, with the structural
# alternatives side by side, is `uv run dsim -m experiment=posture_robustness`
# ([experiments/posture_robustness](../experiments/posture_robustness/README.md)): read that for
# conclusions about postures, not this one parameter point.
