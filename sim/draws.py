"""Parameter uncertainty in a run: posterior draws, one parameter set per block of replications
(``params=posterior``; :class:`sim.params.ParameterDraws`).

The draws are those of ``dsim-calibrate method=posterior`` (``posterior_draws.parquet``: one row
per retained MCMC draw, a ``weight`` column and one column per free parameter: ``params.*`` names
and era drives, ``era_drive_*``). A run with ``posterior.draws`` set draws ``posterior.blocks`` rows
by their weights, with a generator seeded by the run's seed alone, so every posture and
credibility of a study meets the same parameter sets (common random numbers: Law 2015, ch. 11);
each row's parameters take the place of the ``params`` values in its block. An era drive applies
where the scenario has that era (the historical replay); the stylised baseline has one drive (the
2023 reference era's, 1).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from .params import ConfigError, ModelParams, RunConfig

META_COLUMNS = ("chain", "step", "walker", "weight", "log_posterior")
__all__ = ["META_COLUMNS", "batch_of", "draw_rows", "load_draws", "posterior_batch", "resolve_draws_path"]


def resolve_draws_path(name: str, key: str = "posterior.draws") -> Path:
    """``name`` as given if absolute or found from the working folder, else inside dsim's configs/
    folder; a missing file is one ConfigError line."""
    from .config import config_dir

    path = Path(name).expanduser()
    if path.is_absolute() or path.is_file():
        if path.is_file():
            return path
    else:
        candidate = config_dir() / name
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{key}={name}: no such file: run `dsim-calibrate method=posterior "
                      "install=true` (it installs params/posterior_draws.parquet), or give the path of "
                      "a run's posterior_draws.parquet")


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ConfigError(f"posterior.draws={path} cannot be read as Parquet ({type(exc).__name__}): "
                          "give a posterior_draws.parquet written by dsim-calibrate "
                          "method=posterior") from None
    # plain numpy columns, owned by the cache (not views of Arrow's buffers)
    return pd.DataFrame({c: np.array(table[c].to_numpy(), copy=True) for c in table.columns})


def load_draws(name: str, key: str = "posterior.draws") -> pd.DataFrame:
    """The draws table, checked: a ``weight`` column of finite weights >= 0 with a positive sum,
    and parameter columns that are numeric ModelParams fields or era drives, all finite."""
    from .history import ERA_OF_PARAM
    from .model import NOT_BATCHABLE

    path = resolve_draws_path(name, key)
    table = _read(str(path), path.stat().st_mtime)
    fields = {f.name for f in ModelParams.__dataclass_fields__.values()} - set(NOT_BATCHABLE)
    if "weight" not in table.columns or len(table) == 0:
        raise ConfigError(f"{key}={name} has no rows or no `weight` column: give a "
                          "posterior_draws.parquet written by dsim-calibrate method=posterior")
    params = [c for c in table.columns if c not in META_COLUMNS]
    unknown = [c for c in params if c not in fields and c not in ERA_OF_PARAM]
    if unknown or not params:
        raise ConfigError(f"{key}={name}: column(s) {', '.join(unknown) or '(none)'} are not "
                          "behavioural parameters or era drives: the file is not a posterior of this model")
    values = table[["weight", *params]].to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or (table["weight"] < 0).any() or table["weight"].sum() <= 0:
        raise ConfigError(f"{key}={name} holds non-finite values or weights that are negative "
                          "or sum to 0: regenerate it with dsim-calibrate method=posterior")
    return table


def draw_rows(table: pd.DataFrame, blocks: int, seed: int) -> np.ndarray:
    """``blocks`` row indices of ``table`` drawn by the weights, with a generator seeded by ``seed``
    alone (the same rows for every posture and credibility of a study)."""
    weights = table["weight"].to_numpy(dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x706F7374]))
    return rng.choice(len(table), size=int(blocks), replace=True, p=weights / weights.sum())


def batch_of(table: pd.DataFrame, rows: np.ndarray, eras: set[str]) -> dict[str, np.ndarray]:
    """The model batch of ``rows`` of ``table``: ModelParams columns by name, era drives as
    ``era:<era>`` where the scenario has that era (``eras``), other era drives left out."""
    from .history import ERA_OF_PARAM

    batch: dict[str, np.ndarray] = {}
    for column in table.columns:
        if column in META_COLUMNS:
            continue
        values = table[column].to_numpy(dtype=float)[rows]
        if column in ERA_OF_PARAM:
            if ERA_OF_PARAM[column] in eras:
                batch[f"era:{ERA_OF_PARAM[column]}"] = values
        else:
            batch[column] = values
    return batch


def posterior_batch(config: RunConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The model batch (``{name: one value per block}``, era drives as ``era:<era>``) of
    ``config.posterior.blocks`` draws, and the rows drawn (indices into the table)."""
    table = load_draws(config.posterior.draws)
    rows = draw_rows(table, config.posterior.blocks, config.seed)
    return batch_of(table, rows, {e.name for e in config.scenario.eras}), rows
