"""dsim's Hydra sweeper (discovered by Hydra in the ``hydra_plugins`` namespace package)."""
