"""Seeds, common random numbers and byte-identical output files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import small_config
from pandas.testing import assert_frame_equal

from sim import Posture, run
from sim.outputs import RUN_FILES, write_run

R = 50
WEEKS = 60


@pytest.fixture(scope="module")
def base_cfg():
    return small_config(replications=R, weeks=WEEKS, seed=777)


def test_same_config_and_seed_give_identical_results(base_cfg):
    a, b = run(base_cfg), run(base_cfg)
    assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)
    assert_frame_equal(a.replications, b.replications, check_exact=True)
    assert a.config == b.config


def test_different_seed_gives_different_results(base_cfg):
    a = run(base_cfg)
    b = run(base_cfg.replace(seed=base_cfg.seed + 1))
    assert not a.timeseries.equals(b.timeseries)
    assert not a.replications.equals(b.replications)
    # the US type draws differ too (50 Bernoulli draws: equal by chance with negligible probability)
    assert not np.array_equal(a.per_replication()["us_resolute"], b.per_replication()["us_resolute"])


def test_write_run_is_byte_identical(base_cfg, tmp_path):
    results = run(base_cfg)
    s1 = write_run(results, tmp_path / "one")
    s2 = write_run(run(base_cfg), tmp_path / "two")  # a second, independent run of the same config
    for name in ("timeseries.parquet", "replications.parquet"):
        b1 = (tmp_path / "one" / name).read_bytes()
        b2 = (tmp_path / "two" / name).read_bytes()
        assert len(b1) > 0
        assert b1 == b2, name
    j1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    j2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    # no field differs legitimately (no timestamps, no paths): the summaries are equal as a whole
    assert j1 == j2
    assert s1 == s2
    for name in RUN_FILES:
        assert (tmp_path / "one" / name).stat().st_size > 0
    # nothing else is left behind (the staging folder is removed)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(RUN_FILES)


def test_written_parquet_round_trips(base_cfg, tmp_path):
    results = run(base_cfg)
    write_run(results, tmp_path)
    assert_frame_equal(pd.read_parquet(tmp_path / "timeseries.parquet"), results.timeseries,
                       check_dtype=False)
    assert_frame_equal(pd.read_parquet(tmp_path / "replications.parquet"), results.replications)


def test_us_types_are_common_random_numbers_across_postures(base_cfg):
    types = {
        posture: run(base_cfg.replace(policy={"name": posture})).per_replication()["us_resolute"]
        for posture in Posture
    }
    first = types[Posture.rotational].to_numpy()
    assert 0 < first.sum() < R  # both types occur, so equality is informative
    for posture, t in types.items():
        np.testing.assert_array_equal(t.to_numpy(), first, err_msg=posture.value)


def test_rok_only_parameter_does_not_change_us_type_draws(base_cfg):
    a = run(base_cfg)
    b = run(base_cfg.replace(params={"rok_outreach_cost": 0.5, "rok_strike_cost": 0.5}))
    # the change matters for the run ...
    assert not a.replications.equals(b.replications)
    # ... but not for the US type draws, which come from a stream of their own
    np.testing.assert_array_equal(a.per_replication()["us_resolute"], b.per_replication()["us_resolute"])


def test_first_dprk_choice_is_common_across_postures(base_cfg):
    """The DPRK moves first in week 0, before any posture can matter except presence on station
    (its expected punishment and the pressure it knows at its move, rules.pressure_at_move): with
    ``presence_deterrence = 0`` and ``pressure_asset = 0`` its week-0 choices and salvos are
    identical under every posture (its draws come from its own stream, whatever the US does)."""
    cfg = base_cfg.replace(scenario={"weeks": 1},
                           params={"presence_deterrence": 0.0, "pressure_asset": 0.0})
    runs = {p: run(cfg.replace(policy={"name": p})).timeseries for p in Posture}
    cols = [c for c in runs[Posture.none].columns
            if c.startswith("dprk_") and not c.startswith("dprk_belief")]
    assert runs[Posture.none]["dprk_restraint"].iloc[0] < 1.0  # some provocation to compare
    for p, ts in runs.items():
        assert_frame_equal(ts[cols], runs[Posture.none][cols], obj=p.value)


def test_type_turnover_draws_are_common_random_numbers_across_turnover_rates():
    """At an inauguration every replication draws two uniforms from the US type stream whatever the
    parameters (sim.model.DRAW_SLOTS: type_redraw, new_type): whether the type is redrawn
    (``u < us_type_turnover``) and the new type (``u' < credibility``). So across turnover rates the
    redraws are nested and a redrawn replication gets the same new type: coupled runs, whose
    differences are the turnover's alone. Seed 4242, R = 2000, credibility 0.4, from 6 Nov 2028 for
    12 weeks (20 January 2029 in week 10), turnover 0, 0.3, 0.6 and 1."""
    types = {}
    for rho in (0.0, 0.3, 0.6, 1.0):
        cfg = small_config(replications=2000, weeks=12, seed=4242, credibility=0.4,
                           scenario={"start_date": "2028-11-06"}, params={"us_type_turnover": rho})
        types[rho] = run(cfg).per_replication()["us_resolute"].to_numpy(dtype=bool)
    original, fresh = types[0.0], types[1.0]
    assert 0.3 < (original != fresh).mean() < 0.6  # about 2 c (1 - c) = 0.48 change at turnover 1
    changed = {rho: types[rho] != original for rho in (0.3, 0.6)}
    assert changed[0.3].sum() > 100
    assert np.all(changed[0.3] <= changed[0.6])  # nested redraws
    for rho in (0.3, 0.6):
        np.testing.assert_array_equal(types[rho][changed[rho]], fresh[changed[rho]])
