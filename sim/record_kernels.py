"""Compiled (numba) kernels of the recorder: per replication-year counts, response lags and the weekly
ensemble statistics (:class:`sim.recording.Recorder`).

They read the model's state and never change it. Kept apart from the behavioural rules
(:mod:`sim.rules`): numba's cache keys each function on its own file, so a module holds only
functions that call nothing outside it.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernel_cache

kernel_cache.prepare()  # before numba loads: the portable target and the shipped compiled kernels

from numba import njit  # noqa: E402


@njit(cache=True, error_model="numpy")
def record_week(counts, offsets, dprk_choice, us_choice, rok_choice, jp_choice, launch_days, missiles, active,
                scheduled_arrival, surge_arrival, clash, dprk_lrbm, dprk_nuclear, pending, lag_histogram,
                r, max_lag, extra, month_days, tallies):
    """One week of per replication-year counts, launch days per month and response lags
    (sim.recording.Recorder.record).

    ``counts`` is this year's (column, R) block; ``extra`` the columns of launch days, launch weeks,
    missiles, deployments, clashes and weeks; ``month_days`` this month's launch days (uint8, one per
    replication); ``tallies`` (blocks, action columns) receives this week's count of each action in
    each block of ``r`` replications (for :func:`weekly_statistics`). The action counts are one
    branch-free pass per action column (vectorised), the rest one pass over the replications.
    """
    n = dprk_choice.size
    choices = (dprk_choice, us_choice, rok_choice, jp_choice)
    for a in range(4):
        choice = choices[a]
        width = offsets[a + 1] - offsets[a] if a < 3 else 4
        for k in range(width):
            row = counts[offsets[a] + k]
            for b in range(n // r):
                lo = b * r  # slices indexed from 0 and integer flags: the loop vectorises
                block_choice, block_active, block_row = choice[lo:lo + r], active[lo:lo + r], row[lo:lo + r]
                total = 0
                for j in range(r):
                    hit = np.int64(block_choice[j] == k) & np.int64(block_active[j])
                    block_row[j] += hit
                    total += hit
                tallies[b, offsets[a] + k] = total
    weeks, deployments, days_col, launch_weeks, fired, clashes = (
        counts[extra[5]], counts[extra[3]], counts[extra[0]], counts[extra[1]], counts[extra[2]],
        counts[extra[4]])
    for i in range(n):
        arrival = scheduled_arrival[i] | surge_arrival[i]
        weeks[i] += active[i]
        deployments[i] += arrival & active[i]
        days = launch_days[i]
        launched = days > 0
        days_col[i] += days
        launch_weeks[i] += launched
        fired[i] += missiles[i] * launched
        clashes[i] += clash[i]
        # a week counts in the month of its first day: at most 5 weeks x 7 days = 35 (uint8)
        month_days[i] += days * active[i]
    for i in range(n):
        # Response lags: see Recorder.__init__ for the definition.
        d = dprk_choice[i]
        if (d == dprk_lrbm or d == dprk_nuclear) and active[i] and pending[i] < 0:
            pending[i] = 0
        if pending[i] >= 0:
            pending[i] += 1
            if scheduled_arrival[i] or surge_arrival[i]:
                lag_histogram[i // r, pending[i] - 1] += 1
                pending[i] = -1
            elif pending[i] > max_lag:
                lag_histogram[i // r, max_lag + 1] += 1
                pending[i] = -1


@njit(cache=True, error_model="numpy")
def order_statistics(x, lo, hi, ranks, out, bins):
    """The ``ranks``-th smallest values of ``x`` (0-based, ascending ranks) into ``out``, exactly, in
    O(n), given its smallest and largest value ``lo`` and ``hi``.

    A histogram pass locates the bin of each rank (``bins`` is int scratch of x's length); one pass
    then collects the values of those bins, and a selection among them gives each value
    (:func:`select_kth`). The same values as sorting ``x``; ``tests/test_kernels.py`` checks them
    against ``np.sort`` and the quantiles against ``np.quantile``.
    """
    n = x.size
    if not hi > lo:  # all equal (or NaN: let it propagate)
        for k in range(ranks.size):
            out[k] = hi if hi == lo else np.nan
        return
    nbins = max(16, min(4096, n // 16))
    span = hi - lo
    scale = nbins / span
    if not (math.isfinite(span) and math.isfinite(scale) and scale > 0):  # extreme ranges: select
        members = x.copy()
        for k in range(ranks.size):
            out[k] = select_kth(members, 0, n, ranks[k], np.empty(n))
        return
    # four interleaved histograms, so that runs of equal bins do not serialise the increments
    counts4 = np.zeros((4, nbins), dtype=np.int64)
    top = np.int32(nbins - 1)
    for i in range(n):  # the bins in a pass of their own, with 32-bit conversions: it vectorises
        bins[i] = min(np.int32((x[i] - lo) * scale), top)
    for i in range(n):
        counts4[i & 3, bins[i]] += 1
    below = np.zeros(nbins + 1, dtype=np.int64)  # below[k] = number of values in bins under k
    for k in range(nbins):
        below[k + 1] = below[k] + counts4[0, k] + counts4[1, k] + counts4[2, k] + counts4[3, k]
    # the bin of each rank, and where its values go in one buffer
    # (plain loops and a bisection rather than np.full, .copy and np.searchsorted: each numpy
    # function numba compiles adds a fraction of a second to the first run's compilation)
    target = np.empty(ranks.size, dtype=np.int64)
    slot = np.empty(nbins, dtype=np.int64)
    for t in range(nbins):
        slot[t] = -1
    size = 0
    for k in range(ranks.size):
        # the last bin t with below[t] <= rank (below is non-decreasing, below[0] = 0 <= rank)
        t, high = 0, nbins
        while high - t > 1:
            middle = (t + high) // 2
            if below[middle] <= ranks[k]:
                t = middle
            else:
                high = middle
        target[k] = t
        if slot[t] < 0:
            slot[t] = size
            size += below[t + 1] - below[t]
    members = np.empty(2 * size)  # the values, then work space for select_kth
    filled = np.empty(nbins, dtype=np.int64)
    for t in range(nbins):
        filled[t] = slot[t]
    for i in range(n):
        s = filled[bins[i]]
        if s >= 0:
            members[s] = x[i]
            filled[bins[i]] = s + 1
    last = -1  # where the last rank's value is in members
    selected = -1  # where the last select_kth put its value
    for k in range(ranks.size):
        t = target[k]
        start = slot[t]
        end = start + below[t + 1] - below[t]
        at = start + ranks[k] - below[t]
        if at == last:
            out[k] = out[k - 1]
        elif k > 0 and at == selected + 1 and at < end and target[k - 1] == t:
            # the next rank after a selection in the same bin: select_kth left the values after its
            # place at or above its value, so this one is their smallest (the quantiles' ranks come in
            # such pairs)
            smallest = members[at]
            for i in range(at + 1, end):
                smallest = min(smallest, members[i])
            out[k] = smallest
        else:
            out[k] = select_kth(members, start, end, at, members[size:])
            selected = at
        last = at


@njit(cache=True, error_model="numpy")
def select_kth(a, lo, hi, k, work):
    """The value that would be at index ``k`` if ``a[lo:hi]`` were sorted (``lo <= k < hi``),
    reordering ``a[lo:hi]`` in place so that the values after index ``k`` are at or above it.

    Large ranges are first narrowed without branches: split around the median of three values into
    those below, equal to and above it, writing each value to both ends of ``work`` (at least
    ``hi - lo`` long) and advancing the end it belongs to, so that no branch depends on the data (the
    comparisons of Hoare's partition mispredict about every other time on random values); a rank among
    the values equal to the pivot is the pivot. Small ranges (and what is left) use Hoare's FIND
    (Hoare 1961, Algorithm 65) in the form of Wirth, *Algorithms + Data Structures = Programs* (1976),
    Section 2.3.4. It is what ``np.partition`` does; numba's ``np.partition`` took 7 s to compile
    here, this takes a fraction of a second."""
    while hi - lo > 64:
        x, y, z = a[lo], a[(lo + hi) // 2], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        m = hi - lo
        below = 0
        top = m - 1
        for i in range(lo, hi):
            v = a[i]
            work[below] = v
            work[top] = v
            below += v < pivot
            top -= v > pivot
        # back into a: the values below the pivot, the pivots, the values above it
        for i in range(below):
            a[lo + i] = work[i]
        for i in range(below, top + 1):
            a[lo + i] = pivot
        for i in range(top + 1, m):
            a[lo + i] = work[i]
        rank = k - lo
        if rank < below:
            hi = lo + below
        elif rank > top:
            lo = lo + top + 1
        else:
            return pivot
    left, right = lo, hi - 1
    while left < right:
        x = a[k]
        i, j = left, right
        while i <= j:
            while a[i] < x:
                i += 1
            while x < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if j < k:
            left = i
        if k < i:
            right = j
    return a[k]


@njit(cache=True, error_model="numpy")
def weekly_statistics(rows, cols, r, tension, belief, rok_assurance, jp_assurance, ranks, weights, order,
                      bins, tallies, active, missiles, clash, alive, on_station, cost, max_rung, n_rungs,
                      scheduled_arrival, scheduled_present, launch_days):
    """One week's row of the weekly ensemble statistics of every block (sim.recording.Recorder).

    ``rows`` is (blocks, columns); block b's statistics are over its replications
    ``b * r .. (b + 1) * r - 1``, computed exactly as for a run of those ``r`` alone. ``cols`` holds
    the row's columns of the four state means (each followed by its quantiles), then the first
    action share, DPRK missiles, clash, war, asset on station, US cost, the first ladder rung
    reached, then the shares with a scheduled arrival and a scheduled asset on station and the mean
    launch days (of replications not ended by war at the start of the week, ``active``). Quantiles
    interpolate the order statistics at ``ranks`` with ``weights`` as numpy's 'linear' method does.
    """
    nq = weights.size
    for b in range(rows.shape[0]):
        row = rows[b]
        lo_i = b * r
        hi_i = lo_i + r
        state = (tension[lo_i:hi_i], belief[lo_i:hi_i], rok_assurance[lo_i:hi_i], jp_assurance[lo_i:hi_i])
        # the four means, minima and maxima in one pass: four independent running sums (each in index
        # order, as before) instead of one sum after the other, whose additions wait on each other
        x0, x1, x2, x3 = state
        s0 = s1 = s2 = s3 = 0.0
        lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3 = x0[0], x0[0], x1[0], x1[0], x2[0], x2[0], x3[0], x3[0]
        for i in range(r):
            v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
            s0 += v0
            s1 += v1
            s2 += v2
            s3 += v3
            lo0, hi0 = min(lo0, v0), max(hi0, v0)
            lo1, hi1 = min(lo1, v1), max(hi1, v1)
            lo2, hi2 = min(lo2, v2), max(hi2, v2)
            lo3, hi3 = min(lo3, v3), max(hi3, v3)
        sums, lows, highs = (s0, s1, s2, s3), (lo0, lo1, lo2, lo3), (hi0, hi1, hi2, hi3)
        for v in range(4):
            x = state[v]
            c = cols[v]
            row[c] = sums[v] / r
            order_statistics(x, lows[v], highs[v], ranks, order, bins)
            for k in range(nq):
                lo, hi, t = order[2 * k], order[2 * k + 1], weights[k]
                diff = hi - lo
                row[c + 1 + k] = hi - diff * (1 - t) if t >= 0.5 else lo + diff * t
        start = cols[4]
        for k in range(tallies.shape[1]):  # the week's action shares (record_week counted them)
            row[start + k] = tallies[b, k] / r
        launched = 0.0
        clashes = 0.0
        living = 0.0
        present = 0.0
        spent = 0.0
        arriving = 0.0
        scheduled = 0.0
        days = 0.0
        for i in range(lo_i, hi_i):
            spent += cost[i]
            launched += missiles[i]
            clashes += clash[i]
            living += alive[i]
            present += on_station[i]
            arriving += scheduled_arrival[i]
            scheduled += scheduled_present[i]
            days += launch_days[i] * active[i]
        row[cols[11]] = arriving / r
        row[cols[12]] = scheduled / r
        row[cols[13]] = days / r
        row[cols[5]] = launched / r
        row[cols[6]] = clashes / r
        row[cols[7]] = 1.0 - living / r
        row[cols[8]] = present / r
        row[cols[9]] = spent / r
        rungs = np.zeros((4, n_rungs))
        for i in range(r):
            rungs[i & 3, max_rung[lo_i + i]] += 1.0
        reached = rungs[0] + rungs[1] + rungs[2] + rungs[3]
        for k in range(n_rungs - 2, -1, -1):
            reached[k] += reached[k + 1]
        for k in range(1, n_rungs):
            row[cols[10] + k - 1] = reached[k] / r
