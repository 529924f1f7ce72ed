"""The guided notebooks run end to end on a small ensemble, so a broken library API breaks the build.

The notebooks' source is ``notebooks/NN_*.py`` (jupytext percent format); the ``.ipynb`` next to each
is generated from it (``uv run jupytext --sync notebooks/*.py``) and stored without outputs. Each
notebook reads its replication count from ``DSIM_NOTEBOOK_REPLICATIONS``; here it is 100.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
CI_REPLICATIONS = "100"


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_has_a_source_and_a_generated_ipynb():
    assert [p.stem for p in SOURCES] == ["01_single_scenario", "02_rotational_vs_permanent",
                                         "03_calibration"]
    ipynbs = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert ipynbs == [p.stem for p in SOURCES], "regenerate: uv run jupytext --sync notebooks/*.py"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_in_sync_with_its_source_and_has_no_outputs(source: Path):
    ipynb = source.with_suffix(".ipynb")
    from_py = jupytext.read(source)
    stored = nbformat.read(ipynb, as_version=4)
    assert _cells(stored) == _cells(from_py), (
        f"{ipynb.name} differs from {source.name}: edit the .py, then run "
        "`uv run jupytext --sync notebooks/*.py`")
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{ipynb.name} stores outputs: regenerate it from {source.name} without them")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_executes(source: Path, monkeypatch):
    monkeypatch.setenv("DSIM_NOTEBOOK_REPLICATIONS", CI_REPLICATIONS)  # the kernel inherits it
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"replications per run: {CI_REPLICATIONS}" in printed  # the size knob reached the kernel
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for o in c.outputs)
    assert figures >= 3, f"{source.name} showed {figures} figures: are plots still drawn inline?"
