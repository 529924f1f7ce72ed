"""dsim: an agent-based model of extended-deterrence signalling on the Korean peninsula.

The library runs without Hydra::

    from sim import RunConfig, run
    results = run(RunConfig(credibility=0.8, replications=2000))
    results.timeseries  # weekly ensemble statistics (pandas)
"""

from .model import DeterrenceModel, run
from .params import (
    CalendarEvent,
    ConfigError,
    CredibilityRule,
    ModelParams,
    PolicyConfig,
    Posture,
    RunConfig,
    ScenarioConfig,
)
from .recording import Results

__all__ = [
    "CalendarEvent", "ConfigError", "CredibilityRule", "DeterrenceModel", "ModelParams",
    "PolicyConfig", "Posture", "Results", "RunConfig", "ScenarioConfig", "run",
]
