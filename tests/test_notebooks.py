"""Every notebook in colabs/ runs top to bottom in its small mode."""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "colabs").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    env = {
        **os.environ,
        "JAX_NUM_CPU_DEVICES": "1",
        "TFDS_DATA_DIR": str(tmp_path / "tfds"),
        "PYTHONPATH": str(ROOT),
    }
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute(env=env)
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 2  # the dynamics plot and the MIR-vs-accuracy plot


def test_notebooks_match_their_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_notebooks", ROOT / "colabs/make_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    on_disk = nbformat.read(ROOT / "colabs/training_dynamics.ipynb", as_version=4)
    assert [c.source for c in on_disk.cells] == [c.source for c in module.TRAINING_DYNAMICS]
