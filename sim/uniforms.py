"""The week's uniform draws: ``rng.random(out=...)`` for numpy's PCG64, the same numbers, faster.

numpy fills an array of uniforms by calling its bit generator through a function pointer once per
number, and PCG64's step (a 128-bit multiply-add: a linear congruential generator whose output
O'Neill 2014 permutes) waits on the previous one: about 2.7 ns a number here, 14 % of a week at
R = 10,000. :func:`fill` computes the same numbers in a compiled loop that runs four parts
of the array side by side: each part starts from the generator's state advanced by a quarter of the
array with the LCG's jump ahead (``x_(n+k) = A_k x_n + C_k mod 2**128``; Brown 1994), so the four
multiply chains overlap. It reads and writes the generator's own state in place (through
``BitGenerator.ctypes.state_address``), so the generator goes on exactly where ``rng.random`` would
have left it, and any other draw from it (numpy's own methods) stays in step.

That state is numpy's internal ``pcg64_state`` structure. :class:`UniformStream` checks the layout
against ``bit_generator.state`` when it is made, and any other generator (or a layout it does not
recognise) falls back to ``rng.random``. ``tests/test_uniforms.py`` checks the numbers and the
state against numpy's for many sizes. Unlike numpy's methods it does not take the generator's
lock: a generator filled here must not be drawn from by another thread at the same time (the
model's generators are its own).
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import kernel_cache

kernel_cache.prepare()  # before numba loads: the portable target and the shipped compiled kernels

from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341  # PCG's default 128-bit multiplier
_M_HI = np.uint64(_MULTIPLIER >> 64)
_M_LO = np.uint64(_MULTIPLIER & (2**64 - 1))
_MASK = 2**128 - 1
PARTS = 4  # the parts filled side by side


@intrinsic
def _mul_high(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two unsigned 64-bit integers."""
    signature = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
    return signature, codegen


@njit(cache=True, inline="always")
def _multiply_add(lo, hi, a_lo, a_hi, c_lo, c_hi):
    """``x * a + c mod 2**128`` for 128-bit numbers as (low, high) 64-bit halves."""
    p_lo = lo * a_lo
    p_hi = _mul_high(lo, a_lo) + lo * a_hi + hi * a_lo
    r_lo = p_lo + c_lo
    return r_lo, p_hi + c_hi + np.uint64(r_lo < p_lo)


@njit(cache=True, inline="always")
def _double(lo, hi):
    """PCG64's output of a state (XSL-RR: the halves xor-ed, rotated by the top six bits) as numpy's
    ``random`` makes a double of it: the top 53 bits times 2**-53."""
    x = hi ^ lo
    rot = hi >> np.uint64(58)
    v = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
    return (v >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def fill(state, jumps, out):
    """Fill ``out`` with the next ``out.size`` uniforms of the PCG64 whose state (low and high half of
    the state, then of the increment) is ``state``, and advance it. ``jumps`` holds the jump ahead by
    1, 2 and 3 quarters of ``out`` (rows: multiplier low, high, addend low, high;
    :func:`jump_table`)."""
    n = out.size
    m = n // 4
    l0, h0 = state[0], state[1]
    l1, h1 = _multiply_add(l0, h0, jumps[0, 0], jumps[0, 1], jumps[0, 2], jumps[0, 3])
    l2, h2 = _multiply_add(l0, h0, jumps[1, 0], jumps[1, 1], jumps[1, 2], jumps[1, 3])
    l3, h3 = _multiply_add(l0, h0, jumps[2, 0], jumps[2, 1], jumps[2, 2], jumps[2, 3])
    c_lo, c_hi = state[2], state[3]
    for i in range(m):
        l0, h0 = _multiply_add(l0, h0, _M_LO, _M_HI, c_lo, c_hi)
        l1, h1 = _multiply_add(l1, h1, _M_LO, _M_HI, c_lo, c_hi)
        l2, h2 = _multiply_add(l2, h2, _M_LO, _M_HI, c_lo, c_hi)
        l3, h3 = _multiply_add(l3, h3, _M_LO, _M_HI, c_lo, c_hi)
        out[i] = _double(l0, h0)
        out[m + i] = _double(l1, h1)
        out[2 * m + i] = _double(l2, h2)
        out[3 * m + i] = _double(l3, h3)
    for i in range(4 * m, n):  # the last part runs on to the end
        l3, h3 = _multiply_add(l3, h3, _M_LO, _M_HI, c_lo, c_hi)
        out[i] = _double(l3, h3)
    state[0], state[1] = l3, h3


def lcg_jump(increment: int, steps: int) -> tuple[int, int]:
    """``(A, C)`` with ``x_(n+steps) = A x_n + C mod 2**128`` for PCG64's LCG with this increment
    (Brown 1994, 'Random number generation with arbitrary strides')."""
    a_total, c_total, a, c = 1, 0, _MULTIPLIER, increment
    while steps:
        if steps & 1:
            a_total, c_total = a_total * a & _MASK, (c_total * a + c) & _MASK
        c = (a + 1) * c & _MASK
        a = a * a & _MASK
        steps >>= 1
    return a_total, c_total


def jump_table(increment: int, size: int) -> np.ndarray:
    """The jumps :func:`fill` needs for ``size`` numbers: by 1, 2 and 3 quarters (rounded down)."""
    rows = []
    for part in range(1, PARTS):
        a, c = lcg_jump(increment, part * (size // PARTS))
        rows.append([a & (2**64 - 1), a >> 64, c & (2**64 - 1), c >> 64])
    return np.array(rows, dtype=np.uint64)


def _state_view(bit_generator) -> np.ndarray | None:
    """The generator's PCG64 state and increment as four uint64 (low, high, low, high) sharing its
    memory, or None when it is not numpy's PCG64 or its layout is not the one checked here."""
    if type(bit_generator) is not np.random.PCG64:
        return None
    try:
        address = ctypes.cast(bit_generator.ctypes.state_address, ctypes.POINTER(ctypes.c_void_p))[0]
        view = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(address))
    except (AttributeError, TypeError, ValueError):
        return None
    expected = bit_generator.state["state"]
    found = (int(view[0]) | int(view[1]) << 64, int(view[2]) | int(view[3]) << 64)
    return view if found == (expected["state"], expected["inc"]) else None


class UniformStream:
    """``rng.random(out=out)`` by :func:`fill` when ``rng`` is a PCG64 generator (otherwise numpy's
    own): the same numbers, and ``rng`` left in the same state."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._state = _state_view(rng.bit_generator)
        self._increment = None if self._state is None else rng.bit_generator.state["state"]["inc"]
        self._jumps: dict[int, np.ndarray] = {}

    def __reduce__(self):  # a copy gets a view of its own generator's state, not of this one's
        return (UniformStream, (self.rng,))

    def random(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (float64, contiguous) with the generator's next uniforms."""
        if self._state is None or out.size < 4 * PARTS:
            return self.rng.random(out=out)
        jumps = self._jumps.get(out.size)
        if jumps is None:
            jumps = self._jumps[out.size] = jump_table(self._increment, out.size)
        fill(self._state, jumps, out)
        return out
