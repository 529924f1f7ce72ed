"""``sim.metrics.count_quantiles``: numpy's inverted-CDF quantiles of monthly counts, from histograms."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sim.metrics import count_quantiles


@given(counts=hnp.arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 60)),
                         elements=st.integers(0, 35)),
       quantiles=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_count_quantiles_are_numpys_inverted_cdf(counts, quantiles):
    """Any uint8 counts (rows of 1-60 replications) and any quantiles in [0, 1], including sizes where
    ``n q`` is whole (the boundary numpy rounds down)."""
    np.testing.assert_array_equal(count_quantiles(counts, quantiles),
                                  np.quantile(counts, quantiles, axis=1, method="inverted_cdf"))


def test_count_quantiles_at_the_monthly_band_s_sizes():
    """Seed 4, 120 months of 10,000 and of 2,000 replications (where 5 %, 50 % and 95 % of n are whole)
    and 7 replications: the values numpy gives."""
    rng = np.random.default_rng(4)
    for n in (10_000, 2_000, 7):
        counts = rng.poisson(1.5, size=(120, n)).astype(np.uint8)
        q = (0.05, 0.5, 0.95)
        np.testing.assert_array_equal(count_quantiles(counts, q),
                                      np.quantile(counts, q, axis=1, method="inverted_cdf"))
