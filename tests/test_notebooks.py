"""Every notebook in colabs/ runs top to bottom in its small mode and matches its generator."""

import importlib.util
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "colabs").glob("*.ipynb"))


def _outputs(nb, kind):
    return [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if (o.output_type == "error" if kind == "error" else "image/png" in o.get("data", {}))
    ]


# One notebook runs in `make test`; the others (45–100 s each, a kernel that compiles every
# program it runs) in `make test-slow`.
FAST = ("training_dynamics.ipynb", "layer_profile.ipynb")


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=() if p.name in FAST else pytest.mark.slow) for p in NOTEBOOKS],
    ids=lambda p: p.name,
)
def test_notebook_executes(path, data_dir):
    nb = nbformat.read(path, as_version=4)
    env = {
        **os.environ,
        "JAX_NUM_CPU_DEVICES": "1",
        "TFDS_DATA_DIR": data_dir,  # datasets this worker has built already
        "PYTHONPATH": str(ROOT),
    }
    # A guard against a hung kernel, not a speed test: the grokking notebook's cell has taken
    # over 600 s on a busy 2-core machine (the tests share no compilation cache).
    client = NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute(env=env)
    assert not _outputs(nb, "error")
    assert _outputs(nb, "image"), "every notebook shows its plots"


def test_notebooks_match_their_generator():
    path = ROOT / "colabs" / "make_notebooks.py"
    spec = importlib.util.spec_from_file_location("make_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.NOTEBOOKS) == sorted(p.name for p in NOTEBOOKS)
    for name, cells in module.NOTEBOOKS.items():
        on_disk = nbformat.read(ROOT / "colabs" / name, as_version=4)
        assert [c.source for c in on_disk.cells] == [c.source for c in cells], name
