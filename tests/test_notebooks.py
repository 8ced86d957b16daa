"""Every notebook in notebooks/ is stored without outputs and runs top to bottom (python3 kernel, nbclient).

The kernel runs with LINREG_NOTEBOOK_SMALL=1: notebooks that simulate read it in their first cell and use a
smaller configuration, with the same cells and the same assertions (each checks theory against simulation),
so a failing check still fails the test.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600
SMALL_ENV = "LINREG_NOTEBOOK_SMALL"


def test_the_notebooks_are_there():
    names = {path.stem for path in NOTEBOOKS}
    assert {"regression_collapse", "token_editing_bound", "symbolic_derivations"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv(SMALL_ENV, "1")  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert errors == []
