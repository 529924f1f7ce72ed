"""dsim: an agent-based model of extended-deterrence signalling on the Korean peninsula.

The library runs without Hydra::

    from sim import RunConfig, run
    results = run(RunConfig(credibility=0.8, replications=2000))
    results.timeseries  # weekly ensemble statistics (pandas)

or from the same configs as the command line::

    from sim import load_config, run
    results = run(load_config(["params=calibrated", "policy=permanent", "credibility=0.8"]))
"""

import importlib

# Names are imported on first use (PEP 562), so that `dsim --help` or a config error does not wait
# for numba, Mesa and pandas to load.
_EXPORTS = {
    "load_config": "config", "DeterrenceModel": "model", "run": "model", "Results": "recording",
    **{name: "params" for name in ("CalendarEvent", "ConfigError", "CredibilityRule", "ModelParams",
                                   "Perception", "PolicyConfig", "Posture", "RunConfig",
                                   "ScenarioConfig")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
