"""The dsim explorer as a Solara app, where Mesa users look for it.

    uv run dsim-explore              # the usual way: prints the address, 127.0.0.1 only
    uv run solara run app.py         # the same page through Solara's own command line

See docs/explorer.md.
"""

from sim.explore.app import Page

__all__ = ["Page"]
