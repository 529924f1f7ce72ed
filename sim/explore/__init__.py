"""The explorer in the browser (``uv run dsim-explore``): the model without writing code.

A Solara app (the toolkit of Mesa's SolaraViz) over the library's API and the same config schema
as ``dsim``. Modules: :mod:`~sim.explore.settings` (controls to ``dsim`` overrides, validated),
:mod:`~sim.explore.compute` (runs with progress and cancellation, paired comparisons, the
historical record, downloads), :mod:`~sim.explore.figures` (the plots), :mod:`~sim.explore.app`
(the page) and :mod:`~sim.explore.cli` (the server). See docs/explorer.md.
"""
