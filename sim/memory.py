"""How much memory a run needs, estimated before it starts (the command line refuses what cannot fit)."""

from __future__ import annotations

from .params import RunConfig

# Peak resident memory of `run`, measured on 30 Nov 2026 (Linux, Python 3.12, ru_maxrss):
# R = 100,000 used 501 MiB over 2 years, 853 MiB over 10 and 1,286 MiB over 20; R = 1,000 used 273 MiB
# over 10 years. So about 280 MiB of libraries, 1.5 kB per replication and 470 bytes per
# replication-year (the per replication-year table and its pandas copies).
_MEMORY_BASE = 280 * 2**20
_MEMORY_PER_REPLICATION = 1_500
_MEMORY_PER_REPLICATION_YEAR = 470
_MEMORY_MARGIN = 1.2


def estimated_memory_bytes(config: RunConfig) -> int:
    """About how many bytes :func:`run` needs at its peak for ``config`` (with a 20 % margin).

    The command line refuses, before it starts, a run that cannot fit in the memory available.
    """
    years = config.scenario.weeks / (365.25 / 7)
    per_rep = _MEMORY_PER_REPLICATION + _MEMORY_PER_REPLICATION_YEAR * max(years, 1.0)
    return int(_MEMORY_MARGIN * (_MEMORY_BASE + config.replications * per_rep))
