"""The tutorials: every notebook runs end to end, and every committed notebook has no outputs.

Each ``tutorials/*.ipynb`` is executed with nbclient in its fast mode (``PYRO_DGM_FAST=1``: tiny
budgets, well under a minute each), in a temporary working directory so that the figures it
writes land there. Notebooks that read MNIST get ``PYRO_DGM_DATA`` pointed at the project's local
copy (``../shared/data``) when that exists and the variable is not already set, and are skipped
when no MNIST files can be found.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from pyro_dgm import PyroDGMError, load_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FAST_SWITCH = 'FAST = os.environ.get("PYRO_DGM_FAST") == "1"'


def _ids(paths):
    return [path.stem for path in paths]


def _source(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def _needs_mnist(path: Path) -> bool:
    source = _source(path)
    return 'load_dataset("mnist"' in source or "load_dataset('mnist'" in source


def _mnist_available() -> bool:
    """Whether the MNIST test files (all the offline protocol needs) are in the data folder."""
    try:
        load_dataset("mnist", "test", protocol="offline")
    except PyroDGMError:
        return False
    return True


def test_tutorials_are_found():
    assert TUTORIALS, f"no notebooks found in {ROOT / 'tutorials'}"


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_notebook_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name}: code cell {index} has outputs; clear them"
        assert cell.execution_count is None, (
            f"{path.name}: code cell {index} has an execution count; clear the outputs"
        )


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_notebook_has_fast_mode(path):
    notebook = nbformat.read(path, as_version=4)
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert FAST_SWITCH in first_code.source, (
        f"{path.name}: the first code cell must read {FAST_SWITCH!r} and pick tiny budgets"
    )


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_notebook_runs(path, tmp_path, monkeypatch):
    # The kernel is started with a copy of this process's environment, so set it first.
    monkeypatch.setenv("PYRO_DGM_FAST", "1")
    if not os.environ.get("PYRO_DGM_DATA") and SHARED_DATA.is_dir():
        monkeypatch.setenv("PYRO_DGM_DATA", str(SHARED_DATA))
    if _needs_mnist(path) and not _mnist_available():
        pytest.skip(f"{path.name} needs MNIST; set PYRO_DGM_DATA to a folder with the MNIST files")

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
