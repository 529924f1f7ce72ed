"""The posture-robustness study (``uv run dsim -m experiment=posture_robustness``): which posture,
given what the record cannot pin down.

Three analyses, run when the sweep ends (``study.name: posture_robustness``; :class:`StudyConfig`):

1. **Posterior-integrated decision table** (``decision.csv``), from the sweep's points: every
   posture against the reference (rotational), at each credibility and under each structural
   alternative (the DPRK's perception: consistent or costly signals, Jervis 1976; its credibility
   rule: Bayes or the current calculus, Press 2005), every point at ``params=posterior`` (each block
   of replications at one posterior draw, :mod:`sim.draws`). Replication ``i`` of two postures
   shares its seed, its posterior draw and its random numbers (common random numbers), so the
   differences are paired; the interval is over the posterior blocks (the mean difference of each
   block, a t interval over blocks: a cluster-robust interval, because replications of one block
   share their parameters), and ``p_better`` is the share of posterior blocks in which the posture
   does better than the reference on average (ties count half): the probability, integrated over
   the parameter uncertainty, that it is the better choice (each block's mean is itself noisy, which
   pulls the share towards 1/2).
2. **Global sensitivity** (``sobol.csv``) of the permanent-minus-rotational launch days and clash
   probability to the behavioural parameters (uniform over their posterior 5-95 % ranges, the
   committed posterior: docs/calibration.md), credibility and the DPRK's prior (uniform on
   ``[0.1, 0.9]``), with Sobol first-order and total indices, bootstrap intervals and a convergence
   check in the sample size (Saltelli et al. 2010; :mod:`sim.gsa`).
3. **Scenario discovery** (``prim_boxes.csv``): PRIM boxes (Friedman & Fisher 1999; Bryant &
   Lempert 2010) of the points of the Sobol sample where permanent beats rotational on both launch
   days and clash risk.

Analyses 2 and 3 run their own batched models (every parameter point a block, both postures with
the same seed), the consistent Bayesian DPRK of the baseline scenario.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .params import ConfigError, ModelParams, Posture, RunConfig, StudyConfig

log = logging.getLogger(__name__)
STUDY = "posture_robustness"
# metric -> (column of the per-replication table, +1 if higher is better else -1, label)
METRICS = {
    "launch_days": ("dprk_launch_days_per_year", -1, "DPRK launch days per year"),
    "p_clash": ("p_kinetic_clash", -1, "P(kinetic clash within the horizon)"),
    "p_nuclear_test": ("p_nuclear_test", -1, "P(nuclear test within the horizon)"),
    "allied_assurance": ("allied_assurance", +1, "allied assurance (ROK and Japan, last week)"),
    "cost": ("us_deployment_cost_per_year", -1, "US deployment cost per year"),
}
UNCERTAIN_EXTRA = {"credibility": (0.1, 0.9), "dprk_prior": (0.1, 0.9)}
STUDY_FILES = ("decision.csv", "sobol.csv", "prim_boxes.csv", "prim_trajectory.csv", "study.json")
__all__ = ["METRICS", "STUDY", "StudyConfig", "decision_table", "point_differences", "run_study"]


# ---------------------------------------------------------------------------- 1. the decision table
def _alternative(summary: dict) -> str:
    p = summary["config"]["params"]
    return f"{p['perception']}+{p['credibility_rule']}"


def _per_replication(folder: Path) -> pd.DataFrame:
    from .metrics import replication_metrics
    from .recording import per_replication

    reps = pd.read_parquet(folder / "replications.parquet")
    out = replication_metrics(reps)
    per = per_replication(reps)  # the final assurance is a per-replication field
    out["allied_assurance"] = 0.5 * (per["final_rok_assurance"].to_numpy(dtype=float)
                                     + per["final_japan_assurance"].to_numpy(dtype=float))
    return out


def decision_table(points, reference: str = "rotational") -> pd.DataFrame:
    """One row per alternative x credibility x posture (other than ``reference``) x metric: the
    mean difference posture - reference, its 95 % cluster (posterior-block) interval, and
    ``p_better`` (module docstring). Points must share seed and replications with their reference
    and carry posterior draws (``posterior.blocks``)."""
    by_key = {}
    for pt in points:
        by_key[(_alternative(pt.summary), float(pt.summary["credibility"]), pt.policy)] = pt
    rows = []
    for (alt, cred, posture), pt in sorted(by_key.items()):
        ref = by_key.get((alt, cred, reference))
        if posture == reference or ref is None:
            continue
        if (pt.summary["seed"], pt.summary["replications"]) != (ref.summary["seed"],
                                                                 ref.summary["replications"]):
            raise ConfigError(f"{pt.folder.name} and {ref.folder.name} differ in seed or replications: "
                              "the study compares paired replications")
        post = pt.summary["config"]["posterior"]
        blocks = int(post["blocks"]) if post["draws"] else int(pt.summary["replications"])
        a, b = _per_replication(pt.folder), _per_replication(ref.folder)
        per_block = len(a) // blocks
        for metric, (column, sign, _label) in METRICS.items():
            diff = a[column].to_numpy(dtype=float) - b[column].to_numpy(dtype=float)
            means = diff[: blocks * per_block].reshape(blocks, per_block).mean(axis=1)
            mean = float(means.mean())
            half = float(stats.t.ppf(0.975, blocks - 1) * means.std(ddof=1) / np.sqrt(blocks)) if blocks > 1 \
                else float("nan")
            better = np.where(sign * means > 0, 1.0, np.where(means == 0, 0.5, 0.0))
            rows.append({"alternative": alt, "credibility": cred, "posture": posture, "reference": reference,
                         "metric": metric, "difference": mean, "ci_low": mean - half, "ci_high": mean + half,
                         "p_better": float(better.mean()), "blocks": blocks, "replications": len(diff),
                         "mean_posture": float(a[column].mean()), "mean_reference": float(b[column].mean())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- 2-3. sampled points
def uncertain_ranges(draws: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """The behavioural parameters of the posterior draws over their weighted 5-95 % ranges, then
    credibility and the DPRK's prior (era drives are left out: the baseline scenario has one era)."""
    from .draws import META_COLUMNS
    from .history import ERA_OF_PARAM

    fields = set(ModelParams.__dataclass_fields__)
    out = {}
    for column in draws.columns:
        if column in META_COLUMNS or column in ERA_OF_PARAM or column not in fields:
            continue
        lo, hi = np.quantile(draws[column].to_numpy(dtype=float), [0.05, 0.95])
        out[column] = (float(lo), float(hi))
    out.update(UNCERTAIN_EXTRA)
    return out


def point_differences(base: RunConfig, names: list[str], X: np.ndarray, replications: int,
                      reference: str = "rotational", posture: str = "permanent") -> dict[str, np.ndarray]:
    """Permanent-minus-rotational mean launch days per year and clash probability at each row of
    ``X`` (columns ``names``: ModelParams fields, ``credibility``, ``dprk_prior``), every row a block
    of ``replications`` histories of one batched model per posture, both with ``base.seed``."""
    from .metrics import replication_metrics
    from .model import DeterrenceModel

    X = np.atleast_2d(X)
    batch = {n: X[:, i] for i, n in enumerate(names)}
    config = base.replace(replications=int(replications), posterior={"draws": None})
    means = {}
    for p in (reference, posture):
        model = DeterrenceModel(config.replace(policy={"name": Posture(p)}), batch=batch, weekly=False)
        model.simulate()  # only the replications table is read: no weekly or monthly tables per block
        reps = model.recorder.replications_table()
        m = replication_metrics(reps.assign(replication=reps["block"] * replications + reps["replication"]))
        block = np.repeat(np.arange(len(X)), replications)
        means[p] = {k: np.bincount(block, weights=m[METRICS[k][0]].to_numpy(dtype=float), minlength=len(X))
                    / replications for k in ("launch_days", "p_clash")}
    return {k: means[posture][k] - means[reference][k] for k in ("launch_days", "p_clash")}


# ---------------------------------------------------------------------------- the study
def run_study(sweep_dir: Path, base: RunConfig, reference: str = "rotational") -> dict[str, Path]:
    """All three analyses into ``sweep_dir`` (files :data:`STUDY_FILES` and the figures)."""
    from . import gsa
    from .draws import load_draws
    from .sweep import load_points

    sweep_dir = Path(sweep_dir)
    sc = base.study
    t0 = time.perf_counter()
    points = load_points(sweep_dir)
    decision = decision_table(points, reference)
    t_decision = time.perf_counter() - t0
    draws_file = base.posterior.draws or "params/posterior_draws.parquet"
    ranges = uncertain_ranges(load_draws(draws_file))
    names = list(ranges)
    bounds = [ranges[n] for n in names]
    sim_base = dataclasses.replace(base, scenario=dataclasses.replace(base.scenario, dprk_prior=None))
    sim_base = sim_base.replace(params=dataclasses.replace(sim_base.params, perception="consistent",
                                                           credibility_rule="bayes"))
    evaluated: dict[str, np.ndarray] = {}
    inputs: list[np.ndarray] = []

    def evaluate(X: np.ndarray) -> dict[str, np.ndarray]:
        out = point_differences(sim_base, names, X, sc.sobol_replications)
        inputs.append(np.asarray(X))
        for k, v in out.items():
            evaluated[k] = np.concatenate([evaluated.get(k, np.empty(0)), v])
        return out

    t1 = time.perf_counter()
    sobol = gsa.sobol_study(names, bounds, evaluate, sc.sobol_base, seed=base.seed, n_boot=sc.sobol_resamples)
    t_sobol = time.perf_counter() - t1
    X = np.vstack(inputs)
    y = (evaluated["launch_days"] < 0) & (evaluated["p_clash"] < 0)
    prim = gsa.prim_study(X, y, names, threshold=sc.prim_threshold, seed=base.seed)
    files = {}
    decision.to_csv(sweep_dir / "decision.csv", index=False, float_format="%.6g")
    sobol.to_csv(sweep_dir / "sobol.csv", index=False, float_format="%.6g")
    prim["boxes"].to_csv(sweep_dir / "prim_boxes.csv", index=False, float_format="%.6g")
    prim["trajectory"].to_csv(sweep_dir / "prim_trajectory.csv", index=False, float_format="%.6g")
    largest = sobol[sobol["n_base"] == sobol["n_base"].max()]
    top = (largest[largest["metric"] == "launch_days"].sort_values("ST", ascending=False)["parameter"]
           .tolist()[:2])
    plot_claims(decision, sweep_dir / "posture_differences.png")
    gsa.plot_sobol(sobol, sweep_dir / "sobol.png", {k: METRICS[k][2] for k in ("launch_days", "p_clash")})
    gsa.plot_prim_trajectory(prim["trajectory"], prim["chosen_step"], sweep_dir / "prim_trajectory.png")
    gsa.plot_prim_box(prim["boxes"], dict(zip(names, bounds, strict=True)), sweep_dir / "prim_box.png")
    i, j = names.index(top[0]), names.index(top[1])
    gsa.plot_decision_map(X, evaluated["launch_days"], names, i, j, sweep_dir / "decision_map.png",
                          "permanent - rotational, DPRK launch days per year")
    meta = {"study": STUDY, "points": len(points), "reference": reference,
            "uncertain_ranges": ranges, "sobol_points": int(len(X)),
            "sobol_replications": sc.sobol_replications,
            "base_rate_permanent_better_both": float(y.mean()), "prim_chosen_step": prim["chosen_step"],
            "prim_note": prim.get("note"), "decision_map_axes": top,
            "seconds": {"decision": t_decision, "sobol_and_prim_simulation": t_sobol,
                        "total": time.perf_counter() - t0}}
    (sweep_dir / "study.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    for name in STUDY_FILES:
        files[name] = sweep_dir / name
    log.info("posture robustness study written to %s (%.0f s)", sweep_dir, meta["seconds"]["total"])
    return files


def plot_claims(decision: pd.DataFrame, path: Path) -> None:
    """Permanent minus rotational by credibility, one panel per metric, one line per structural
    alternative, with 95 % posterior-block intervals (PNG and PDF)."""
    import matplotlib.pyplot as plt

    d = decision[decision["posture"] == "permanent"]
    metrics = list(METRICS)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4))
    for ax, metric in zip(axes, metrics, strict=True):
        for alt, g in d[d["metric"] == metric].groupby("alternative"):
            g = g.sort_values("credibility")
            ax.plot(g["credibility"], g["difference"], "o-", ms=3, label=alt)
            ax.fill_between(g["credibility"], g["ci_low"], g["ci_high"], alpha=0.2)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(METRICS[metric][2], fontsize=8)
        ax.set_xlabel("credibility", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("permanent - rotational", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.suptitle("Permanent minus rotational, integrated over the posterior (95 % intervals over "
                 "posterior blocks)", fontsize=9)
    fig.tight_layout()
    from .gsa import save_png_pdf

    save_png_pdf(fig, path)
    plt.close(fig)
