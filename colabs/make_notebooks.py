"""Writes the notebooks in colabs/ from their cell sources (run after editing this file)."""

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).parent

TRAINING_DYNAMICS = [
    new_markdown_cell(
        "# Training dynamics of the information interplay\n\n"
        "Trains a classifier with `trainers.supervised` and follows the mutual-information "
        "ratio (MIR), the entropy-difference ratio (HDR) and both matrix entropies of test "
        "features against the classification head (Tan et al., ICML 2024).\n\n"
        "Small by default (scikit-learn digits, runs on a laptop CPU in under a minute). "
        "Set `PAPER_SETTING = True` on a TPU/GPU runtime for the papers' CIFAR-10 WRN-28-2 "
        "run (SGD momentum 0.9, weight decay 5e-4, lr 0.03 cosine, batch 64; CIFAR-10 is "
        "downloaded by TFDS).\n\n"
        "In Colab, first install the library from a clone of this repository: "
        "`!pip install -e /content/interplay`."
    ),
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "import jax\n"
        "from IPython.display import Image, display\n\n"
        "import infotheory as it\n"
        "from trainers import metrics, supervised\n"
        "from trainers.configs.supervised import get_config\n\n"
        "PAPER_SETTING = False  # True: CIFAR-10 / WRN-28-2 with the papers' settings\n"
        "print(jax.devices())"
    ),
    new_code_cell(
        "config = get_config('cifar10_wrn28_2' if PAPER_SETTING else 'digits')\n"
        "if not PAPER_SETTING:\n"
        "    config.num_steps, config.eval_every = 400, 50\n"
        "workdir = pathlib.Path(tempfile.mkdtemp(prefix='dynamics_'))\n"
        "print(config)"
    ),
    new_code_cell("last = supervised.train_and_evaluate(config, workdir)\nlast"),
    new_code_cell(
        "records = metrics.read(workdir / 'metrics.jsonl')\n"
        "print(supervised.summary(records))\n"
        "num_classes = 10 if config.dataset != 'cifar100' else 100\n"
        "print(f'MIR at Neural Collapse: {float(it.nc_mir(num_classes)):.4f}')\n"
        "display(Image(filename=str(workdir / 'dynamics.png')))"
    ),
    new_markdown_cell(
        "MIR against test accuracy: the papers report MIR rising together with accuracy."
    ),
    new_code_cell(
        "import matplotlib.pyplot as plt\n\n"
        "acc = [r['eval/accuracy'] for r in records]\n"
        "mir = [r['eval/mir'] for r in records]\n"
        "plt.plot(acc, mir, 'o-')\n"
        "plt.xlabel('test accuracy')\n"
        "plt.ylabel('MIR (whole test split)')\n"
        "plt.show()\n"
        "assert records[-1]['eval/mir'] > records[0]['eval/mir']"
    ),
]


def write(name: str, cells) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    write("training_dynamics.ipynb", TRAINING_DYNAMICS)
