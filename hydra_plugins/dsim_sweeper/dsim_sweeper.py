"""The sweeper of ``dsim -m``: Hydra's basic grid, launched without composing every job twice.

Hydra's basic sweeper composes every job of a sweep in the parent process before it launches
them ("validate_batch_is_legal"), and every launcher composes each job again where it runs it.
``dsim`` has already composed and validated every job before Hydra started (``sim.cli.preflight``,
with one-line errors), so this sweeper expands the same grid (``sim.config.expand_sweep``, the
product of the swept values in Hydra's basic sweeper's order: ``hydra.sweeper.params`` first, the
command line over it) and hands it to the configured launcher (basic, joblib, Ray, ...). It uses
only Hydra's public plugin API (``hydra.plugins.sweeper.Sweeper``).
"""


from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class DsimSweeperConf:
    _target_: str = "hydra_plugins.dsim_sweeper.dsim_sweeper.DsimSweeper"
    # points launched together (None: all at once, which lets a parallel launcher use every worker)
    max_batch_size: Optional[int] = None
    # the grid, as in Hydra's basic sweeper: key -> "v1,v2,..." (named experiments set it)
    params: Dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="dsim", node=DsimSweeperConf, provider="dsim")


class DsimSweeper(Sweeper):
    """Expand the grid, save ``multirun.yaml`` in the sweep folder, launch the points in batches."""

    def __init__(self, max_batch_size: Optional[int] = None,
                 params: Optional[Dict[str, str]] = None) -> None:
        super().__init__()
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        from sim.config import expand_sweep

        assert self.config is not None and self.launcher is not None
        grid = [f"{k}={v}" for k, v in self.params.items()]
        jobs = expand_sweep(grid + list(arguments))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else len(jobs)
        from sim.outputs import MANIFEST
        from sim.progress import SweepProgress, stop_workers_with_parent, warm_kernels

        stop_workers_with_parent()  # workers stop with this process (SIGTERM, Ctrl-C, SIGKILL)
        show = bool(OmegaConf.select(self.config, "progress", default=True))
        warm_kernels(announce=show)  # compiled (or loaded) once here, not in every worker
        returns = []
        with SweepProgress(sweep_dir, total=len(jobs), marker=MANIFEST, enabled=show):
            for start in range(0, len(jobs), size):
                results = self.launcher.launch(jobs[start:start + size], initial_job_idx=start)
                for r in results:
                    _ = r.return_value  # re-raises a job's failure
                returns.append(results)
        return returns
