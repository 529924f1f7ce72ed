"""Global sensitivity (Sobol' indices) and scenario discovery (PRIM) for the posture-robustness study
(issue 14).

The study compares two US deployment postures, permanent and rotational. At each parameter point (a
row of ``X``, one column per uncertain parameter, within its bounds) the caller's
``evaluate(X) -> dict[str, np.ndarray]`` gives, per metric (e.g. ``"launch_days"``, ``"p_clash"``),
the permanent-minus-rotational difference at each row. This module only analyses those differences:

* :func:`sobol_study`: first-order and total Sobol' indices of each metric (Sobol' 2001; the
  estimators of Saltelli et al. 2010) with SALib, bootstrap intervals, and the same indices on nested
  smaller designs as a convergence check in sample size.
* :func:`prim_study`: PRIM (Friedman & Fisher 1999) with ema_workbench on a boolean outcome ("point
  of interest", e.g. permanent beats rotational on both metrics), one box chosen from the peeling
  trajectory by a stated rule (Bryant & Lempert 2010).
* Figures, each written as PNG and PDF: :func:`plot_sobol`, :func:`plot_prim_trajectory`,
  :func:`plot_prim_box`, :func:`plot_decision_map`.

References: Sobol', I. M. (2001), Global sensitivity indices for nonlinear mathematical models and
their Monte Carlo estimates, Math. Comput. Simul. 55:271-280. Saltelli, A., Annoni, P., Azzini, I.,
Campolongo, F., Ratto, M. & Tarantola, S. (2010), Variance based sensitivity analysis of model
output. Design and estimator for the total sensitivity index, Comput. Phys. Commun. 181:259-270.
Friedman, J. H. & Fisher, N. I. (1999), Bump hunting in high-dimensional data, Stat. Comput.
9:123-143. Bryant, B. P. & Lempert, R. J. (2010), Thinking inside the box: a participatory,
computer-assisted approach to scenario discovery, Technol. Forecast. Soc. Change 77:34-49.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

SOBOL_COLUMNS = ["metric", "parameter", "n_base", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]
TRAJECTORY_COLUMNS = ["step", "coverage", "density", "mass", "res_dim"]
BOX_COLUMNS = ["box", "parameter", "lower", "upper", "coverage", "density"]
REPRODUCIBILITY_COLUMNS = ["parameter", "reproduce_coverage", "reproduce_density"]

#: The Sobol' intervals are index -+ SALib's ``conf`` at this level (normal approximation to the
#: bootstrap distribution of the estimator).
SOBOL_CONF_LEVEL = 0.9
#: PRIM box rule: among the boxes on the trajectory with at least this coverage, the densest.
PRIM_MIN_COVERAGE = 0.5


def _problem(names: Sequence[str], bounds: Sequence[Sequence[float]]) -> dict:
    names = [str(n) for n in names]
    b = np.asarray(bounds, dtype=float)
    if b.shape != (len(names), 2):
        raise ValueError(f"bounds must be one (low, high) pair per name: shape {b.shape}, "
                         f"{len(names)} names")
    if not np.all(b[:, 0] < b[:, 1]):
        raise ValueError("every bound must have low < high")
    if len(set(names)) != len(names):
        raise ValueError("parameter names must be unique")
    return {"num_vars": len(names), "names": names, "bounds": b.tolist()}


def sobol_sample(names: Sequence[str], bounds: Sequence[Sequence[float]], n_base: int,
                 seed: int) -> np.ndarray:
    """SALib's Sobol'-sequence design for first-order and total indices (``calc_second_order=False``):
    ``n_base * (d + 2)`` rows. The base sequence is scipy's scrambled Sobol' sequence in ``2d``
    dimensions (Owen scrambling seeded by ``seed``, so the same seed gives the same rows).

    Layout (SALib ``sample.sobol``): base point ``i`` (the ``2d`` coordinates split into ``A_i`` and
    ``B_i``) gives the block of ``d + 2`` consecutive rows ``A_i, AB_i^(1), ..., AB_i^(d), B_i``
    (``AB_i^(j)`` is ``A_i`` with coordinate ``j`` from ``B_i``). The Sobol' generator is sequential,
    so the first ``k * (d + 2)`` rows are exactly the design SALib draws for ``k`` base points with the
    same seed: a prefix of whole blocks is a valid smaller design (nested designs).
    """
    from SALib.sample import sobol as sobol_sampler

    if n_base < 2:
        raise ValueError("n_base must be at least 2")
    return sobol_sampler.sample(_problem(names, bounds), int(n_base), calc_second_order=False,
                                scramble=True, seed=int(seed))


def _bootstrap_seed(seed: int) -> int:
    # SALib's analyze ignores a falsy seed (``if seed:``) and then draws from the global numpy state,
    # so the bootstrap seed is derived from ``seed`` and is never 0.
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0]) + 1


def _level_sizes(n_base: int, levels: Sequence[float]) -> list[int]:
    sizes = set()
    for level in (*levels, 1.0):
        k = n_base * float(level)
        if not 0 < level <= 1 or abs(k - round(k)) > 1e-9 or round(k) < 2:
            raise ValueError(f"level {level}: n_base * level = {k} must be a whole number of at least 2, "
                             "with 0 < level <= 1")
        sizes.add(round(k))
    return sorted(sizes)


def sobol_study(names: Sequence[str], bounds: Sequence[Sequence[float]],
                evaluate: Callable[[np.ndarray], Mapping[str, np.ndarray]], n_base: int, seed: int,
                n_boot: int = 500, levels: Sequence[float] = (0.25, 0.5, 1.0)) -> pd.DataFrame:
    """First-order (S1) and total (ST) Sobol' indices of each metric that ``evaluate`` returns, with
    90 % bootstrap intervals, at the full design and at nested smaller ones.

    Method: variance-based sensitivity analysis (Sobol' 2001, Math. Comput. Simul. 55:271), with the
    Sobol'-sequence design and the S1 and ST estimators of Saltelli et al. 2010 (Comput. Phys. Commun.
    181:259) as implemented in SALib (``SALib.sample.sobol.sample`` with ``calc_second_order=False``,
    scrambled and seeded; ``SALib.analyze.sobol.analyze``). ``names`` and ``bounds`` (one ``(low,
    high)`` pair per name, independent uniform inputs) define the inputs; :func:`sobol_sample` draws
    ``n_base * (d + 2)`` rows and ``evaluate`` is called ONCE on all of them (the caller batches).
    ``evaluate`` returns ``{metric: array (n,)}``; values must be finite.

    Intervals: SALib's bootstrap over the base points (``num_resamples=n_boot``, ``conf_level=0.9``,
    a seed derived from ``seed``) gives ``conf`` = z_0.95 * bootstrap standard deviation; the
    interval is index -+ conf (so it may leave [0, 1]).

    Convergence in sample size: for each ``level`` the first ``n_base * level`` base points (their
    whole ``d + 2``-row blocks, a prefix of the design) are analysed too. Such a prefix is exactly the
    design of that size with the same seed (see :func:`sobol_sample`), so no new model runs are
    needed; ``n_base * level`` should be a power of 2 for the Sobol' balance properties. The full
    design (level 1) is always included.

    A metric that is constant over the design has undefined indices: its rows are NaN (with a
    warning).

    Returns one row per (metric, parameter, n_base), columns ``metric, parameter, n_base, S1, S1_low,
    S1_high, ST, ST_low, ST_high``; ``attrs`` holds the seed, the number of rows evaluated and the
    interval level.
    """
    from SALib.analyze import sobol as sobol_analyzer

    problem = _problem(names, bounds)
    d = problem["num_vars"]
    sizes = _level_sizes(int(n_base), levels)
    X = sobol_sample(problem["names"], problem["bounds"], int(n_base), seed)
    outputs = evaluate(X)
    if not outputs:
        raise ValueError("evaluate returned no metric")
    boot_seed = _bootstrap_seed(seed)
    rows = []
    for metric, values in outputs.items():
        y = np.asarray(values, dtype=float)
        if y.shape != (X.shape[0],):
            raise ValueError(f"metric {metric!r}: shape {y.shape}, expected ({X.shape[0]},)")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"metric {metric!r}: {int(np.sum(~np.isfinite(y)))} non-finite values")
        for k in sizes:
            yk = y[: k * (d + 2)]
            if np.ptp(yk) == 0.0:
                warnings.warn(f"metric {metric!r} is constant over the first {k} base points: "
                              "Sobol' indices undefined (NaN)", RuntimeWarning, stacklevel=2)
                nan = np.full(d, np.nan)
                res = {"S1": nan, "S1_conf": nan, "ST": nan, "ST_conf": nan}
            else:
                res = sobol_analyzer.analyze(problem, yk, calc_second_order=False, num_resamples=int(n_boot),
                                             conf_level=SOBOL_CONF_LEVEL, seed=boot_seed)
            for j, name in enumerate(problem["names"]):
                s1, s1c, st, stc = (float(res[key][j]) for key in ("S1", "S1_conf", "ST", "ST_conf"))
                rows.append((metric, name, k, s1, s1 - s1c, s1 + s1c, st, st - stc, st + stc))
    table = pd.DataFrame(rows, columns=SOBOL_COLUMNS)
    table.attrs.update({"seed": int(seed), "n_rows": int(X.shape[0]), "conf_level": SOBOL_CONF_LEVEL,
                        "n_boot": int(n_boot)})
    return table


def _import_prim():
    # ema_workbench warns on import about its optional parallel back-ends (ipyparallel); not used here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ipyparallel.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from ema_workbench.analysis import prim
    return prim


def prim_study(X: np.ndarray, y: np.ndarray, names: Sequence[str], threshold: float = 0.8,
               peel_alpha: float = 0.05, seed: int = 0, *, min_coverage: float = PRIM_MIN_COVERAGE,
               n_resample: int = 10) -> dict:
    """Scenario discovery: the box of parameter space where ``y`` (boolean, the point is "of
    interest") is concentrated, by PRIM (Friedman & Fisher 1999, Stat. Comput. 9:123) as used for
    scenario discovery (Bryant & Lempert 2010, Technol. Forecast. Soc. Change 77:34), with
    ema_workbench's ``prim.Prim`` (one ``find_box()``: peeling by ``peel_alpha``, then pasting).

    Box rule: of the boxes on the peeling-and-pasting trajectory whose coverage (share of all points
    of interest inside the box) is at least ``min_coverage`` (0.5), the one with the highest density
    (share of the box's points that are of interest); ties go to the higher coverage, then the
    earlier step. The first box (the whole space, coverage 1) always qualifies, so a box is always
    chosen; if it is that one, no parameter is restricted and the box table is empty.

    ``threshold``: the density the box should reach. ema_workbench 3.0's ``Prim`` no longer takes a
    threshold (2.x stopped and returned the whole space when the box's mean was below it); here the
    box is still returned, ``meets_threshold`` says whether its density reaches ``threshold``, and a
    ``note`` says so when it does not.

    Robustness (``n_resample`` > 0): ema_workbench's ``PrimBox.resample`` reruns PRIM on
    ``n_resample`` random halves of the data (drawn with ``seed``; PRIM itself is deterministic) and
    gives, per parameter, the percentage of reruns whose box nearest in coverage (density) to the
    chosen one restricts it (Bryant & Lempert 2010, sec. 3.3).

    Returns ``{"trajectory": DataFrame(step, coverage, density, mass, res_dim), "boxes":
    DataFrame(box, parameter, lower, upper, coverage, density)`` (the chosen box, one row per
    restricted parameter, ``box`` = 1), ``"chosen_step": int, "base_rate": float`` (mean of ``y``),
    ``"meets_threshold": bool, "reproducibility": DataFrame(parameter, reproduce_coverage,
    reproduce_density)`` (empty if ``n_resample`` is 0)``}`` and ``"note"`` (str) where something is
    to be said. If ``y`` is all False or all True there is nothing to discover: the trajectory and
    box table are empty, ``chosen_step`` is -1 and ``note`` says why (nothing crashes).
    """
    names = [str(n) for n in names]
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if y.dtype != bool:
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError("y must be boolean")
        y = y.astype(bool)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X must be (n, {len(names)}) for the names given, got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must be ({X.shape[0]},), got {y.shape}")
    base_rate = float(y.mean()) if y.size else float("nan")
    empty = {
        "trajectory": pd.DataFrame({c: pd.Series(dtype=float) for c in TRAJECTORY_COLUMNS}),
        "boxes": pd.DataFrame({c: pd.Series(dtype=float) for c in BOX_COLUMNS}),
        "chosen_step": -1,
        "base_rate": base_rate,
        "meets_threshold": False,
        "reproducibility": pd.DataFrame({c: pd.Series(dtype=float) for c in REPRODUCIBILITY_COLUMNS}),
    }
    if y.size == 0 or not y.any():
        return {**empty, "note": "no point of interest (y is all False): no box"}
    if y.all():
        return {**empty, "note": "every point is of interest (y is all True): the whole space, no box"}

    prim = _import_prim()
    with warnings.catch_warnings():
        # ema_workbench 3.0 calls DataFrame.drop(inplace=True), deprecated in pandas 3.1
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        p = prim.Prim(pd.DataFrame(X, columns=names), y, peel_alpha=peel_alpha)
        box = p.find_box()
    traj = box.peeling_trajectory
    trajectory = pd.DataFrame({
        "step": traj["id"].astype(int).to_numpy(),
        "coverage": traj["coverage"].astype(float).to_numpy(),
        "density": traj["density"].astype(float).to_numpy(),
        "mass": traj["mass"].astype(float).to_numpy(),
        "res_dim": traj["res_dim"].astype(int).to_numpy(),
    })
    candidates = trajectory[trajectory["coverage"] >= min_coverage]
    best = candidates.sort_values(["density", "coverage", "step"], ascending=[False, False, True]).iloc[0]
    chosen = int(best["step"])

    lims = box.box_lims[chosen]
    init = p.box_init
    rows = []
    for name in names:
        lower, upper = float(lims.loc[0, name]), float(lims.loc[1, name])
        if lower != float(init.loc[0, name]) or upper != float(init.loc[1, name]):
            rows.append((1, name, lower, upper, float(best["coverage"]), float(best["density"])))
    boxes = pd.DataFrame(rows, columns=BOX_COLUMNS)

    notes = []
    if boxes.empty:
        notes.append("the chosen box is the whole space (no step with coverage >= "
                     f"{min_coverage} is denser): no parameter restricted")
    meets = bool(best["density"] >= threshold)
    if not meets:
        notes.append(f"the chosen box's density {best['density']:.3f} is below the threshold {threshold}")

    reproducibility = empty["reproducibility"]
    if n_resample > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*inplace keyword.*")
            scores = box.resample(i=chosen, iterations=int(n_resample), rng=np.random.default_rng(seed))
        reproducibility = pd.DataFrame({
            "parameter": scores.index.astype(str),
            "reproduce_coverage": scores["reproduce coverage"].to_numpy(dtype=float),
            "reproduce_density": scores["reproduce density"].to_numpy(dtype=float),
        })

    out = {"trajectory": trajectory, "boxes": boxes, "chosen_step": chosen, "base_rate": base_rate,
           "meets_threshold": meets, "reproducibility": reproducibility}
    if notes:
        out["note"] = "; ".join(notes)
    return out


# ---------------------------------------------------------------------------------------- figures

def save_png_pdf(fig, path: str | Path, dpi: int = 130) -> list[Path]:
    """Write ``fig`` as PNG and PDF at ``path`` with its suffix replaced; return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        target = path.with_suffix(suffix)
        fig.savefig(target, dpi=dpi)
        written.append(target)
    return written


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _empty_figure(path: str | Path, message: str) -> list[Path]:
    fig = _figure(figsize=(5.0, 2.0))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return save_png_pdf(fig, path)


def plot_sobol(table: pd.DataFrame, path: str | Path,
               metric_labels: Mapping[str, str] | None = None) -> list[Path]:
    """Sobol' indices at the largest ``n_base`` of ``table`` (:func:`sobol_study`): per metric one
    panel of horizontal bars, S1 and ST side by side with their 90 % intervals, parameters sorted by
    ST (largest on top). Panels follow ``metric_labels`` (metric -> title) where given, else the
    table's order. Written as PNG and PDF (``path``'s suffix replaced); returns both paths."""
    if table.empty:
        return _empty_figure(path, "no Sobol' indices")
    n_max = int(table["n_base"].max())
    top = table[table["n_base"] == n_max]
    metrics = list(dict.fromkeys(top["metric"]))
    if metric_labels:
        metrics = ([m for m in metric_labels if m in set(metrics)]
                   + [m for m in metrics if m not in metric_labels])
    labels = dict(metric_labels or {})
    n_par = top["parameter"].nunique()
    fig = _figure(figsize=(4.6 * len(metrics), 1.0 + 0.45 * n_par))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)[0])
    height = 0.38
    for ax, metric in zip(axes, metrics, strict=True):
        sub = top[top["metric"] == metric].sort_values("ST", ascending=True, na_position="first")
        pos = np.arange(len(sub))
        for offset, key, colour in ((height / 2, "ST", "#1f4e79"), (-height / 2, "S1", "#e69f00")):
            val = sub[key].to_numpy(dtype=float)
            err = np.vstack([val - sub[f"{key}_low"].to_numpy(dtype=float),
                             sub[f"{key}_high"].to_numpy(dtype=float) - val])
            ax.barh(pos + offset, np.nan_to_num(val), height=height, color=colour,
                    xerr=np.nan_to_num(err), capsize=2, label=f"{key} (90 % interval)")
        ax.set_yticks(pos, sub["parameter"].tolist())
        ax.axvline(0.0, color="0.3", lw=0.8)
        ax.set_xlabel("Sobol' index")
        ax.set_title(labels.get(metric, metric))
        ax.grid(axis="x", color="0.9")
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Sobol' indices, n_base = {n_max}")
    return save_png_pdf(fig, path)


def plot_prim_trajectory(trajectory: pd.DataFrame, chosen_step: int, path: str | Path) -> list[Path]:
    """Coverage against density along the PRIM peeling-and-pasting trajectory (colour = number of
    restricted parameters), the chosen box marked. Written as PNG and PDF; returns both paths."""
    if trajectory.empty:
        return _empty_figure(path, "no PRIM trajectory (no box to discover)")
    fig = _figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    ax.plot(trajectory["coverage"], trajectory["density"], color="0.75", lw=0.8, zorder=1)
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm

    top = int(trajectory["res_dim"].max())
    norm = BoundaryNorm(np.arange(-0.5, top + 1.0), ncolors=256)
    sc = ax.scatter(trajectory["coverage"], trajectory["density"], c=trajectory["res_dim"],
                    cmap=colormaps["viridis"], norm=norm, s=18, zorder=2)
    fig.colorbar(sc, ax=ax, label="restricted parameters", ticks=np.arange(top + 1))
    chosen = trajectory[trajectory["step"] == chosen_step]
    if not chosen.empty:
        c, d = float(chosen["coverage"].iloc[0]), float(chosen["density"].iloc[0])
        ax.scatter([c], [d], marker="*", s=220, facecolor="none", edgecolor="crimson", lw=1.5, zorder=3,
                   label=f"chosen box (step {chosen_step})")
        ax.annotate(f"coverage {c:.2f}\ndensity {d:.2f}", (c, d), xytext=(-12 if c > 0.5 else 12, -30),
                    textcoords="offset points", ha="right" if c > 0.5 else "left", fontsize="small",
                    color="crimson")
        ax.legend(loc="lower left", fontsize="small")
    ax.set_xlabel("coverage")
    ax.set_ylabel("density")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(color="0.92")
    ax.set_title("PRIM peeling trajectory")
    return save_png_pdf(fig, path)


def plot_prim_box(boxes: pd.DataFrame, bounds_by_name: Mapping[str, Sequence[float]],
                  path: str | Path) -> list[Path]:
    """The chosen PRIM box: for each restricted parameter a bar over its full range normalised to
    [0, 1] (grey) with the box's part filled, its limits written. Written as PNG and PDF; returns both
    paths."""
    if boxes.empty:
        return _empty_figure(path, "no PRIM box: no parameter restricted")
    fig = _figure(figsize=(6.5, 1.2 + 0.5 * len(boxes)))
    ax = fig.subplots()
    for k, row in enumerate(boxes.itertuples(index=False)):
        low, high = (float(v) for v in bounds_by_name[row.parameter])
        a, b = (row.lower - low) / (high - low), (row.upper - low) / (high - low)
        y = len(boxes) - 1 - k
        ax.barh(y, 1.0, left=0.0, height=0.5, color="0.9", edgecolor="0.6")
        ax.barh(y, b - a, left=a, height=0.5, color="#1f4e79", alpha=0.85)
        ax.text(a, y + 0.3, f"{row.lower:.3g}", ha="left" if a < 0.08 else "center", va="bottom",
                fontsize="small")
        ax.text(b, y + 0.3, f"{row.upper:.3g}", ha="right" if b > 0.92 else "center", va="bottom",
                fontsize="small")
        ax.text(1.02, y, f"[{low:.3g}, {high:.3g}]", va="center", fontsize="x-small", color="0.4")
    ax.set_yticks(np.arange(len(boxes))[::-1], boxes["parameter"].tolist())
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.6, len(boxes) - 0.1)
    ax.set_xlabel("position in the parameter's range (0 = lower bound, 1 = upper bound)")
    first = boxes.iloc[0]
    ax.set_title(f"PRIM box: coverage {first['coverage']:.2f}, density {first['density']:.2f}")
    return save_png_pdf(fig, path)


def plot_decision_map(X: np.ndarray, values: np.ndarray, names: Sequence[str], i: int | str, j: int | str,
                      path: str | Path, label: str, *, low_label: str = "permanent better",
                      high_label: str = "rotational better", gridsize: int = 25) -> list[Path]:
    """Hexbin map of parameters ``i`` and ``j`` (indices into ``names``, or names) of ``X``, each
    hexagon coloured by the mean of ``values`` (e.g. the permanent-minus-rotational launch-day
    difference) over the points in it, on a diverging colour map centred at 0: negative (blue,
    ``low_label``) against positive (red, ``high_label``). Written as PNG and PDF; returns both
    paths."""
    from matplotlib.colors import CenteredNorm

    names = [str(n) for n in names]
    X = np.asarray(X, dtype=float)
    values = np.asarray(values, dtype=float)
    i = names.index(i) if isinstance(i, str) else int(i)
    j = names.index(j) if isinstance(j, str) else int(j)
    keep = np.isfinite(values)
    fig = _figure(figsize=(5.8, 4.6))
    ax = fig.subplots()
    ax.set_facecolor("0.85")  # no point there: grey, apart from the white of a zero mean
    hb = ax.hexbin(X[keep, i], X[keep, j], C=values[keep], reduce_C_function=np.mean, gridsize=gridsize,
                   cmap="RdBu_r", mincnt=1)
    means = np.asarray(hb.get_array(), dtype=float)
    scale = float(np.max(np.abs(means))) if means.size else 0.0
    hb.set_norm(CenteredNorm(vcenter=0.0, halfrange=scale if scale > 0 else 1.0))
    cbar = fig.colorbar(hb, ax=ax, label=f"mean {label}")
    cbar.ax.text(0.5, -0.02, low_label, transform=cbar.ax.transAxes, ha="center", va="top",
                 fontsize="x-small")
    cbar.ax.text(0.5, 1.02, high_label, transform=cbar.ax.transAxes, ha="center", va="bottom",
                 fontsize="x-small")
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    ax.set_title(label)
    return save_png_pdf(fig, path)
