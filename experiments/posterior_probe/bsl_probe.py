# ruff: noqa  (a throw-away probe on the WIP branch of issue 13; not for main as is)
"""Probe: Gaussian synthetic log-likelihood (Wood 2010; Price et al. 2018) of the record's summaries
along the spiral weight, others at the committed calibration, R replications per point (CRN)."""
import time

import numpy as np
import yaml
from scipy import stats

from sim.calibrate import SIM_COLUMNS, TIMING_TARGETS, simulated_on_calendar
from sim.config import config_dir, load_config
from sim.event_study import _tallies, _values
from sim.history import PARAM_OF_ERA
from sim.model import DeterrenceModel
from sim.posterior import observed_summary, problem_for, summary_keys

cc = load_config([], config_name="calibrate"); problem = problem_for(cc)
fitted = yaml.safe_load((config_dir() / "params" / "calibrated.yaml").read_text())
scen = yaml.safe_load((config_dir() / "scenario" / "historical.yaml").read_text())
drives = {PARAM_OF_ERA[e["name"]]: e["weapons_drive"] for e in scen["eras"] if e["name"] in PARAM_OF_ERA}
vals = {**fitted, **drives}
names = list(problem.names); grid = np.linspace(0, 1, 11)
pts = np.array([[g if n == "spiral_weight" else vals[n] for n in names] for g in grid])
R = 100
t = time.perf_counter()
base = problem.base.replace(replications=R, seed=11)
model = DeterrenceModel(base, batch=problem.batch(pts), weekly=False, detail=True)
res = model.run(); reps = res.replications
keys = summary_keys(problem); obs = observed_summary(problem)
years = [int(y) for y in problem.observed.index]
groups = sorted({k.rsplit("_", 1)[0] for k in keys if k not in TIMING_TARGETS and k != "war"})
yearly = reps.groupby(["block", "replication", "year"])[[SIM_COLUMNS[g] for g in groups]].sum()
timing = _values(_tallies(simulated_on_calendar(res.detail, problem.calendar)))
print("simulated in", round(time.perf_counter() - t, 1), "s")
for j, g in enumerate(grid):
    rows = []
    for i in range(R):
        row = []
        for k in keys:
            if k == "war": continue
            if k in TIMING_TARGETS:
                v = timing[k][j * R + i]; row.append(0.0 if not np.isfinite(v) else v)
            else:
                gr, y = k.rsplit("_", 1)
                row.append(yearly.loc[(j, i, int(y)), SIM_COLUMNS[gr]] if (j, i, int(y)) in yearly.index else 0.0)
        rows.append(row)
    X = np.array(rows); kk = [k for k in keys if k != "war"]
    keep = (X.std(axis=0) > 0) & np.array([not k.startswith("kinetic") for k in kk])
    x0 = np.array([obs[k] for k in kk])[keep]
    from sklearn.covariance import LedoitWolf
    mu, cov = X[:, keep].mean(axis=0), LedoitWolf().fit(X[:, keep]).covariance_
    print(f"spiral {g:.1f}: synthetic log-lik {stats.multivariate_normal(mu, cov).logpdf(x0):.1f} ({keep.sum()} stats)")
