"""The uniform draws (:mod:`sim.uniforms`): numpy's numbers, and the generator left where numpy leaves it."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim import DeterrenceModel, RunConfig
from sim.uniforms import UniformStream, _state_view, jump_table, lcg_jump


@pytest.mark.parametrize("size", [1, 3, 15, 16, 17, 63, 1000, 2000, 10_001])
@pytest.mark.parametrize("seed", [0, 20161220])
def test_the_stream_gives_numpys_numbers_and_leaves_numpys_state(size, seed):
    """Two fills of ``size`` numbers and then five of numpy's own equal a fresh generator's first
    ``2 size + 5`` uniforms, and the generator's state equals the fresh one's after them."""
    rng = np.random.default_rng(seed)
    stream = UniformStream(rng)
    assert stream._state is not None  # the compiled path, not numpy's
    first, second = np.empty(size), np.empty(size)
    stream.random(first)
    stream.random(second)
    rest = rng.random(5)
    reference = np.random.default_rng(seed)
    np.testing.assert_array_equal(np.concatenate([first, second, rest]), reference.random(2 * size + 5))
    assert rng.bit_generator.state == reference.bit_generator.state


@pytest.mark.parametrize("bit_generator", [np.random.PCG64DXSM, np.random.SFC64, np.random.Philox])
def test_other_generators_keep_numpys_own_draws(bit_generator):
    """A generator that is not PCG64 is filled by numpy itself (no state view), with its numbers."""
    rng = np.random.Generator(bit_generator(7))
    stream = UniformStream(rng)
    assert stream._state is None
    out = np.empty(100)
    stream.random(out)
    np.testing.assert_array_equal(out, np.random.Generator(bit_generator(7)).random(100))


def test_the_state_view_shares_the_generators_memory():
    """Writing through the view changes numpy's state (it is the generator's memory, not a copy)."""
    rng = np.random.default_rng(3)
    view = _state_view(rng.bit_generator)
    view[0] ^= np.uint64(1)
    assert rng.bit_generator.state["state"]["state"] & 1 != np.random.default_rng(3).bit_generator.state[
        "state"]["state"] & 1


@pytest.mark.parametrize("steps", [0, 1, 2, 7, 2_500, 123_457])
def test_the_jump_ahead_is_numpys_advance(steps):
    """``x -> A x + C`` with :func:`lcg_jump`'s ``(A, C)`` is the state numpy's ``PCG64.advance`` reaches."""
    bit_generator = np.random.PCG64(11)
    state = bit_generator.state["state"]
    a, c = lcg_jump(state["inc"], steps)
    bit_generator.advance(steps)
    assert (a * state["state"] + c) % 2**128 == bit_generator.state["state"]["state"]
    assert jump_table(state["inc"], 4 * steps).shape == (3, 4)


def test_a_copy_draws_from_its_own_generator():
    """A deep copy of a stream (as of a model holding one) advances the copy's generator only."""
    rng = np.random.default_rng(5)
    stream = UniformStream(rng)
    twin = copy.deepcopy(stream)
    twin.random(np.empty(100))
    assert rng.bit_generator.state == np.random.default_rng(5).bit_generator.state
    assert twin.rng.bit_generator.state != rng.bit_generator.state


def test_a_run_draws_what_numpys_generators_draw(monkeypatch):
    """Seed 42, R = 300, 40 weeks: a run whose uniform draws are numpy's ``rng.random`` (the stream's
    compiled path switched off) gives the same results as the default run."""
    cfg = RunConfig(replications=300, seed=42, progress=False).replace(scenario={"weeks": 40})
    ours = DeterrenceModel(cfg).run()
    monkeypatch.setattr(UniformStream, "random", lambda self, out: self.rng.random(out=out))
    numpys = DeterrenceModel(cfg).run()
    assert ours.replications.equals(numpys.replications)
    assert ours.timeseries.equals(numpys.timeseries)
