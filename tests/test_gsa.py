"""sim.gsa: Sobol' indices on the Ishigami function against their analytic values, the nested
convergence designs, reproducibility for a seed; PRIM on a planted box; the figures.

Seeds: SOBOL_SEED for the Sobol' design and its bootstrap, PRIM_SEED for the synthetic PRIM data and
the resampling check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim import gsa

SOBOL_SEED = 20240601
PRIM_SEED = 7
N_BASE = 1024

ISHIGAMI_NAMES = ["x1", "x2", "x3"]
ISHIGAMI_BOUNDS = [(-np.pi, np.pi)] * 3
# Analytic indices of the Ishigami function with a = 7, b = 0.1 (Saltelli et al. 2008, Global
# Sensitivity Analysis: The Primer, sec. 4.8; Ishigami & Homma 1990).
ISHIGAMI_S1 = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}
ISHIGAMI_ST = {"x1": 0.5576, "x2": 0.4424, "x3": 0.2437}
# Stated tolerance on each estimate at n_base 1024 (the 90 % intervals are 0.02-0.07 wide each side).
TOLERANCE = 0.05


def ishigami(X: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """The Ishigami & Homma (1990) test function; test-only (not part of sim.gsa)."""
    return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])


class Recorder:
    """An ``evaluate`` that records its calls: Ishigami and a metric that is x1 alone."""

    def __init__(self):
        self.calls: list[np.ndarray] = []

    def __call__(self, X: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append(X.copy())
        return {"ishigami": ishigami(X), "x1_only": X[:, 0].copy()}


@pytest.fixture(scope="module")
def sobol_run():
    evaluate = Recorder()
    table = gsa.sobol_study(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, evaluate, n_base=N_BASE, seed=SOBOL_SEED)
    return table, evaluate


def test_sobol_ishigami_near_analytic(sobol_run):
    table, _ = sobol_run
    full = table[(table["metric"] == "ishigami") & (table["n_base"] == N_BASE)].set_index("parameter")
    for name in ISHIGAMI_NAMES:
        row = full.loc[name]
        for key, truth in (("S1", ISHIGAMI_S1[name]), ("ST", ISHIGAMI_ST[name])):
            assert abs(row[key] - truth) < TOLERANCE, (name, key, row[key], truth)
            assert row[f"{key}_low"] <= truth <= row[f"{key}_high"], (name, key, row.to_dict())
            assert row[f"{key}_low"] < row[key] < row[f"{key}_high"]
    # a metric that is x1 alone: all of its variance is x1's
    x1 = table[(table["metric"] == "x1_only") & (table["n_base"] == N_BASE)].set_index("parameter")
    assert x1.loc["x1", "S1"] == pytest.approx(1.0, abs=0.02)
    assert x1.loc["x1", "ST"] == pytest.approx(1.0, abs=0.02)
    assert np.all(np.abs(x1.loc[["x2", "x3"], ["S1", "ST"]].to_numpy()) < 0.02)


def test_sobol_table_rows_and_single_evaluate_call(sobol_run):
    table, evaluate = sobol_run
    assert list(table.columns) == gsa.SOBOL_COLUMNS
    expected = {(m, p, n) for m in ("ishigami", "x1_only") for p in ISHIGAMI_NAMES
                for n in (N_BASE // 4, N_BASE // 2, N_BASE)}
    keys = list(zip(table["metric"], table["parameter"], table["n_base"], strict=True))
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected
    # ONE call of evaluate on the whole design of n_base * (d + 2) rows
    assert len(evaluate.calls) == 1
    assert evaluate.calls[0].shape == (N_BASE * (len(ISHIGAMI_NAMES) + 2), len(ISHIGAMI_NAMES))
    # the smaller designs are coarser: the intervals at n_base/4 are wider than at n_base (on average)
    small = table[(table["metric"] == "ishigami") & (table["n_base"] == N_BASE // 4)]
    large = table[(table["metric"] == "ishigami") & (table["n_base"] == N_BASE)]
    width = lambda t: float((t["ST_high"] - t["ST_low"]).mean())  # noqa: E731
    assert width(small) > width(large)


def test_sobol_sample_reproducible_and_nested():
    d = len(ISHIGAMI_NAMES)
    a = gsa.sobol_sample(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, 256, seed=SOBOL_SEED)
    b = gsa.sobol_sample(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, 256, seed=SOBOL_SEED)
    c = gsa.sobol_sample(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, 256, seed=SOBOL_SEED + 1)
    assert a.shape == (256 * (d + 2), d)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all((a >= -np.pi) & (a <= np.pi))
    # the layout the convergence check relies on: a prefix of whole (d + 2)-row blocks is the design
    # of that size with the same seed; each block is A, AB_1..AB_d, B
    small = gsa.sobol_sample(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, 64, seed=SOBOL_SEED)
    np.testing.assert_array_equal(a[: 64 * (d + 2)], small)
    block = a[: d + 2]
    for j in range(d):
        expected = block[0].copy()
        expected[j] = block[-1, j]
        np.testing.assert_array_equal(block[1 + j], expected)


def test_sobol_study_reproducible_with_seed_zero():
    # seed 0 included: SALib's analyze ignores a falsy bootstrap seed, sim.gsa must not pass one
    def evaluate(X):
        return {"ishigami": ishigami(X)}

    runs = [gsa.sobol_study(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, evaluate, n_base=128, seed=0, n_boot=100,
                            levels=(0.5, 1.0)) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    other = gsa.sobol_study(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, evaluate, n_base=128, seed=1, n_boot=100,
                            levels=(0.5, 1.0))
    assert not np.allclose(runs[0]["S1"], other["S1"])


def test_sobol_rejects_bad_input():
    with pytest.raises(ValueError):
        gsa.sobol_study(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, lambda X: {"m": X[:-1, 0]}, n_base=32, seed=1)
    with pytest.raises(ValueError):
        gsa.sobol_study(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, lambda X: {"m": X[:, 0]}, n_base=32, seed=1,
                        levels=(0.3,))
    with pytest.warns(RuntimeWarning, match="constant"):
        flat = gsa.sobol_study(ISHIGAMI_NAMES, ISHIGAMI_BOUNDS, lambda X: {"m": np.zeros(len(X))},
                               n_base=32, seed=1, n_boot=20, levels=(1.0,))
    assert flat["S1"].isna().all()


PRIM_NAMES = ["x0", "x1", "x2", "x3"]


@pytest.fixture(scope="module")
def prim_data():
    rng = np.random.default_rng(PRIM_SEED)
    X = rng.uniform(size=(2000, 4))
    y = (X[:, 0] < 0.3) & (X[:, 1] > 0.6)
    return X, y


@pytest.fixture(scope="module")
def prim_run(prim_data):
    X, y = prim_data
    return gsa.prim_study(X, y, PRIM_NAMES, threshold=0.8, peel_alpha=0.05, seed=PRIM_SEED, n_resample=3)


def test_prim_finds_the_planted_box(prim_run, prim_data):
    _, y = prim_data
    out = prim_run
    boxes = out["boxes"].set_index("parameter")
    assert list(out["boxes"].columns) == gsa.BOX_COLUMNS
    assert set(boxes.index) == {"x0", "x1"}  # x2, x3 left out
    assert (out["boxes"]["box"] == 1).all()
    assert boxes.loc["x0", "upper"] == pytest.approx(0.3, abs=0.03)
    assert boxes.loc["x0", "lower"] < 0.01
    assert boxes.loc["x1", "lower"] == pytest.approx(0.6, abs=0.03)
    assert boxes.loc["x1", "upper"] > 0.99
    assert (out["boxes"]["density"] > 0.8).all()
    assert (out["boxes"]["coverage"] >= 0.5).all()
    assert out["meets_threshold"] and "note" not in out
    assert out["base_rate"] == pytest.approx(float(y.mean()))
    # the rule: the densest step among those with coverage >= 0.5
    traj = out["trajectory"]
    assert list(traj.columns) == gsa.TRAJECTORY_COLUMNS
    eligible = traj[traj["coverage"] >= 0.5]
    chosen = traj.set_index("step").loc[out["chosen_step"]]
    assert chosen["density"] == eligible["density"].max()
    assert chosen["res_dim"] == 2
    # resampled PRIM restricts x0 and x1 every time, x2 and x3 never (3 halves, PRIM_SEED)
    rep = out["reproducibility"].set_index("parameter")
    assert (rep.loc[["x0", "x1"], "reproduce_density"] == 100.0).all()
    assert (rep.loc[["x2", "x3"], "reproduce_density"] == 0.0).all()


def test_prim_degenerate_outcomes_do_not_crash(prim_data):
    X, _ = prim_data
    for y, word in ((np.zeros(len(X), dtype=bool), "all False"), (np.ones(len(X), dtype=bool), "all True")):
        out = gsa.prim_study(X, y, PRIM_NAMES, seed=PRIM_SEED)
        assert out["boxes"].empty and list(out["boxes"].columns) == gsa.BOX_COLUMNS
        assert out["trajectory"].empty
        assert word in out["note"]
        assert out["chosen_step"] == -1
        assert out["base_rate"] == float(y.mean())


def test_prim_threshold_note(prim_data):
    X, y = prim_data
    X, y = X[:1000], y[:1000]
    noisy = y.copy()
    flip = np.random.default_rng(PRIM_SEED + 1).uniform(size=len(y)) < 0.15
    noisy[flip] = ~noisy[flip]
    out = gsa.prim_study(X, noisy, PRIM_NAMES, threshold=0.99, seed=PRIM_SEED, n_resample=0)
    assert not out["meets_threshold"]
    assert "below the threshold" in out["note"]
    assert out["reproducibility"].empty


def _assert_written(paths, stem):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stem == stem for p in paths)
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_figures_write_png_and_pdf(tmp_path, sobol_run, prim_run, prim_data):
    table, _ = sobol_run
    X, _ = prim_data
    _assert_written(gsa.plot_sobol(table, tmp_path / "sobol.svg", {"ishigami": "Ishigami", "x1_only": "x1"}),
                    "sobol")
    _assert_written(gsa.plot_prim_trajectory(prim_run["trajectory"], prim_run["chosen_step"],
                                             tmp_path / "traj"), "traj")
    bounds = dict.fromkeys(PRIM_NAMES, (0.0, 1.0))
    _assert_written(gsa.plot_prim_box(prim_run["boxes"], bounds, tmp_path / "box.png"), "box")
    values = X[:, 0] - 0.5 + 0.2 * X[:, 1]
    _assert_written(gsa.plot_decision_map(X, values, PRIM_NAMES, 0, "x1", tmp_path / "map.pdf",
                                          "launch-day difference"), "map")
    # the degenerate inputs still give a (text) figure
    empty = gsa.prim_study(X, np.zeros(len(X), dtype=bool), PRIM_NAMES)
    _assert_written(gsa.plot_prim_trajectory(empty["trajectory"], empty["chosen_step"], tmp_path / "t0"),
                    "t0")
    _assert_written(gsa.plot_prim_box(empty["boxes"], bounds, tmp_path / "b0"), "b0")
