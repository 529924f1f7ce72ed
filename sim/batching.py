"""Batched points: which points of a sweep run together as the blocks of one model, and running them.

A sweep's points that differ only in settings a batched model can vary run as the blocks of one
:class:`~sim.model.DeterrenceModel` (``batch={name: values}``): every block draws the same random
numbers (common random numbers; Law 2015, *Simulation Modeling and Analysis*, 5th ed., ch. 11),
so block j reproduces exactly the run of point j alone (``tests/test_batch.py``), and the
per-week work of the Mesa schedule and of every kernel call is shared by all the points of the
model instead of repeated per point.

What can be batched is decided from the *composed* configs (:class:`~sim.params.RunConfig`), never
from the override strings: two points go together when every setting that changes results is
equal except numeric behavioural parameters (``params.*`` numbers, not
:data:`sim.model.NOT_BATCHABLE`), ``credibility`` and ``scenario.dprk_prior`` (the batch keys of
:data:`sim.model.BLOCK_SETTINGS`). A different posture, scenario, seed, number of replications,
horizon or non-batchable parameter puts a point in another group. :func:`group_points` makes the
groups, :func:`batch_for` the model's batch, :func:`run_points` runs a group and returns one
:class:`~sim.recording.Results` per point.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from .params import ModelParams, RunConfig
from .recording import Results

__all__ = ["balanced", "batch_for", "batchable_settings", "config_digest", "differences", "group_points",
           "makespan", "max_blocks_in_memory", "run_points", "with_values"]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values of a nested dict by dotted path (lists are leaves)."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def batchable_settings() -> dict[str, str]:
    """Config path -> batch key of every setting a batched model can vary."""
    from .model import BLOCK_SETTINGS, NOT_BATCHABLE

    out = {f"params.{f.name}": f.name for f in dataclasses.fields(ModelParams)
           if f.type in (float, "float", int, "int") and f.name not in NOT_BATCHABLE}
    if "credibility" in BLOCK_SETTINGS:
        out["credibility"] = "credibility"
    if "dprk_prior" in BLOCK_SETTINGS:
        out["scenario.dprk_prior"] = "dprk_prior"
    return out


def config_digest(config: RunConfig) -> str:
    """SHA-256 of the whole config (``to_dict``, canonical JSON): the same config, the same digest."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def with_values(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``config`` with the settings ``values`` (dotted paths, as :func:`differences` gives them)."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if not rest:
            top[head] = value
        elif "." not in rest:
            nested.setdefault(head, {})[rest] = value
        else:  # deeper than a config group's field: rebuild from the plain dict
            from .params import run_config_from_dict

            data = config.to_dict()
            for p, v in values.items():
                *parents, last = p.split(".")
                node = data
                for key in parents:
                    node = node[key]
                node[last] = v
            return run_config_from_dict(data)
    return config.replace(**top, **nested)


def differences(a: RunConfig, b: RunConfig) -> dict[str, Any]:
    """The settings (dotted paths) whose values in ``b`` differ from ``a``, with ``b``'s values."""
    fa, fb = _flatten(a.to_dict()), _flatten(b.to_dict())
    return {k: v for k, v in fb.items() if fa.get(k, object()) != v}


def _group_key(config: RunConfig, batchable: dict[str, str]) -> str:
    """The config without the batchable settings: points with the same key batch together."""
    flat = _flatten(config.identity())
    return json.dumps({k: v for k, v in flat.items() if k not in batchable}, sort_keys=True,
                      default=str)


def group_points(configs: Sequence[RunConfig], max_blocks: int | None = None,
                 min_groups: int = 1) -> list[list[int]]:
    """Indices of ``configs`` grouped into batches, each in order, groups in order of their first
    point.

    Points whose configs differ only in batchable settings share a group; a group holds at most
    ``max_blocks`` points (None: no limit), and groups are split (into near-equal parts) until
    there are at least ``min_groups`` of them where possible, so that a parallel launcher has a
    group for each of its workers. With ``min_groups`` workers, the largest group is then split
    in two as long as that shortens the sweep (:func:`balanced`): three groups of 11 on two
    workers become 6 + 5, 11 and 11, while eight groups of 11 stay as they are.
    """
    batchable = batchable_settings()
    by_key: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        # a point with posterior draws is itself a batch (one block per draw): it runs alone
        key = f"posterior point {i}" if config.posterior.draws is not None else _group_key(config, batchable)
        by_key.setdefault(key, []).append(i)
    groups = []
    for members in by_key.values():
        parts = math.ceil(len(members) / max_blocks) if max_blocks else 1
        groups += _split(members, parts)
    while len(groups) < min_groups:
        largest = max(range(len(groups)), key=lambda g: len(groups[g]))
        if len(groups[largest]) < 2:
            break
        groups[largest:largest + 1] = _split(groups[largest], 2)
    if min_groups > 1:
        groups = balanced(groups, min_groups)
    return sorted(groups, key=lambda g: g[0])


# A group's own cost (Hydra composing its job, building the model, the first week's kernels), in
# points: about one (0.5 s against 0.45 s a point of the study, 2,000 replications x 520 weeks,
# measured on 30 Nov 2026).
GROUP_COST_IN_POINTS = 1.0


def makespan(sizes: Sequence[int], workers: int, group_cost: float = GROUP_COST_IN_POINTS) -> float:
    """The time, in points, that ``workers`` processes take for groups of these sizes when each
    takes the largest group left as soon as it is free (as dsim's sweeper hands them out)."""
    loads = [0.0] * max(1, workers)
    for size in sorted(sizes, reverse=True):
        k = loads.index(min(loads))
        loads[k] += size + group_cost
    return max(loads)


def balanced(groups: list[list[int]], workers: int,
             group_cost: float = GROUP_COST_IN_POINTS) -> list[list[int]]:
    """``groups`` with the largest split in two (consecutive near-equal parts) while that lowers
    their :func:`makespan` on ``workers`` processes (each split adds a group's own cost)."""
    groups = [list(g) for g in groups]
    while groups:
        largest = max(range(len(groups)), key=lambda g: len(groups[g]))
        if len(groups[largest]) < 2:
            break
        trial = groups[:largest] + _split(groups[largest], 2) + groups[largest + 1:]
        if makespan([len(g) for g in trial], workers, group_cost) >= \
                makespan([len(g) for g in groups], workers, group_cost):
            break
        groups = trial
    return groups


def _split(members: list[int], parts: int) -> list[list[int]]:
    """``members`` in ``parts`` consecutive runs of near-equal length."""
    size, extra = divmod(len(members), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (k < extra)
        out.append(members[start:end])
        start = end
    return [g for g in out if g]


def batch_for(configs: Sequence[RunConfig]) -> tuple[RunConfig, dict[str, list[float]]]:
    """The base config and the model's batch (``{batch key: one value per point}``) that run
    ``configs`` as the blocks of one model; raises ValueError if they cannot be batched.

    The batch holds only the settings that differ between the points. The DPRK's prior of a point
    without one (``scenario.dprk_prior: null``) is its credibility, as in a plain run.
    """
    base = configs[0]
    if len(configs) > 1 and any(c.posterior.draws is not None for c in configs):
        raise ValueError("points with posterior draws (params=posterior) run one per model")
    batchable = batchable_settings()
    flat = [_flatten(c.identity()) for c in configs]
    varied = {path for f in flat[1:] for path, value in f.items() if flat[0].get(path) != value}
    for path in sorted(varied):
        if path not in batchable:
            raise ValueError(f"points that differ in {path} cannot run in one batch")
    batch: dict[str, list[float]] = {}
    for path in sorted(varied):
        if path == "scenario.dprk_prior":
            batch["dprk_prior"] = [float(c.credibility if c.scenario.dprk_prior is None
                                         else c.scenario.dprk_prior) for c in configs]
        else:
            batch[batchable[path]] = [float(f[path]) for f in flat]
    return base, batch


def max_blocks_in_memory(config: RunConfig, budget_bytes: int | None) -> int | None:
    """How many points like ``config`` one batched model may hold within ``budget_bytes`` (the
    run's memory estimate, :func:`sim.memory.estimated_memory_bytes`, is linear in the number of
    replications); None when the budget is unknown."""
    from .memory import estimated_memory_bytes

    if budget_bytes is None:
        return None
    r = config.replications
    one = estimated_memory_bytes(config)
    per_block = estimated_memory_bytes(config.replace(replications=2 * r)) - one if 2 * r <= 10_000_000 \
        else one
    fixed = one - per_block
    return max(1, int((budget_bytes - fixed) // max(per_block, 1)))


def run_points(configs: Sequence[RunConfig], progress: bool = False) -> list[Results]:
    """Run ``configs`` (points that :func:`group_points` put in one group) as the blocks of one
    model; return each point's :class:`Results`, equal to the results of its plain run
    (:func:`sim.model.run`)."""
    from .model import DeterrenceModel

    configs = list(configs)
    base, batch = batch_for(configs)
    model = DeterrenceModel(base, batch=batch or None)
    if progress:
        from .progress import run_with_bar

        run_with_bar(model)
    else:
        model.simulate()
    if model.blocks == 1:  # one point, or points equal in every setting that changes results
        results = model.recorder.results()
        return [dataclasses.replace(results, config=c) for c in configs]
    return model.recorder.results_by_block(configs)
