"""Writes the notebooks in colabs/ from their cell sources (run after editing this file)."""

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).parent

# First code cell of every notebook: installs the library unless it is importable already.
SETUP = new_code_cell(
    "# Get the library into the runtime. In Colab: put a copy of the repository at\n"
    "# /content/interplay first (git clone or upload); this cell pip-installs it.\n"
    "import importlib.metadata\n"
    "import subprocess\n"
    "import sys\n\n"
    "try:  # the distribution itself, not any package that happens to share a name\n"
    "    importlib.metadata.distribution('interplay')\n"
    "except importlib.metadata.PackageNotFoundError:\n"
    "    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '/content/interplay'],\n"
    "                   check=True)"
)

TRAINING_DYNAMICS = [
    new_markdown_cell(
        "# Training dynamics of the information interplay\n\n"
        "Trains a classifier with `interplay.trainers.supervised` and follows the "
        "mutual-information ratio (MIR), the entropy-difference ratio (HDR) and both matrix "
        "entropies of test features against the classification head (Tan et al., ICML 2024).\n\n"
        "Small by default (scikit-learn digits, runs on a laptop CPU in under a minute). "
        "Set `PAPER_SETTING = True` on a TPU/GPU runtime for the papers' CIFAR-10 WRN-28-2 "
        "run (SGD momentum 0.9, weight decay 5e-4, lr 0.03 cosine, batch 64; CIFAR-10 is "
        "downloaded by TFDS)."
    ),
    SETUP,
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "import jax\n"
        "from IPython.display import Image, display\n\n"
        "from interplay import infotheory as it\n"
        "from interplay.trainers import supervised\n"
        "from interplay.trainers.configs.supervised import get_config\n"
        "from interplay.trainers.core import logs\n\n"
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
        "records = logs.evals(logs.read(workdir / 'metrics.jsonl'))\n"
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


GROKKING = [
    new_markdown_cell(
        "# Grokking and the information interplay\n\n"
        "A one-layer transformer learns `(a + b) mod p` from 30 % of the pairs with "
        "full-batch AdamW (weight decay 1.0). Train accuracy saturates early; test accuracy "
        "jumps much later (grokking). We follow MIR and HDR of train and test features "
        "(the residual stream at `=`; the attention output and MLP activations are logged "
        "too) against the unembedding, and when each early-warning signal turns.\n\n"
        "Small by default (p = 23, under a minute on a CPU). `PAPER_SETTING = True` runs the "
        "papers' p = 113 task (about 10 minutes on a 2-core CPU, far less on an accelerator)."
    ),
    SETUP,
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "from IPython.display import Image, display\n\n"
        "from interplay.trainers import grokking\n"
        "from interplay.trainers.configs.grokking import get_config\n"
        "from interplay.trainers.core import logs\n\n"
        "PAPER_SETTING = False  # True: p = 113, 30 % train, the papers' optimizer"
    ),
    new_code_cell(
        "config = get_config('default' if PAPER_SETTING else 'small')\n"
        "workdir = pathlib.Path(tempfile.mkdtemp(prefix='grokking_'))\n"
        "[summary] = grokking.train_and_evaluate(config, workdir)\n"
        "print({k: summary[k] for k in ('train_fit_at', 'jump_at', 'grokked_at')})\n"
        "# Early-warning signals: step and lead (steps before test accuracy reaches 50 % / 99 %).\n"
        "signals = ('eval_train/mir peak', 'eval_train/hdr rise',\n"
        "           'eval_train/effective_rank fall')\n"
        "for name in (*signals, 'weight_norm peak'):\n"
        "    print(f'{name:>32}', summary['signals'][name])"
    ),
    new_code_cell("display(Image(filename=str(workdir / 'grokking.png')))"),
    new_code_cell(
        "records = logs.evals(logs.read(workdir / 'metrics.jsonl'))\n"
        "for r in records[:: max(1, len(records) // 12)]:\n"
        "    print(f\"{r['step']:>6}  train acc {r['eval_train/accuracy']:.3f}  \"\n"
        "          f\"test acc {r['eval/accuracy']:.3f}  MIR {r['eval/mir']:.3f}  \"\n"
        "          f\"HDR {r['eval/hdr']:.3f}\")\n"
        "assert summary['grokked_at'] is not None  # test accuracy reached 99 %"
    ),
]

CHECKPOINT_ANALYSIS = [
    new_markdown_cell(
        "# Checkpoint analysis\n\n"
        "Two digits runs from the same initialization with different data order; then, with "
        "one `vmap` over checkpoints: the trajectory of accuracy, MIR, HDR and NC1–NC4, linear "
        "mode connectivity between the runs, magnitude pruning, and a label-smoothing sweep."
    ),
    SETUP,
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "from IPython.display import Image, display\n\n"
        "from interplay.trainers import analyze, supervised\n"
        "from interplay.trainers.classifier.saved import SavedRun\n"
        "from interplay.trainers.configs.supervised import get_config\n"
        "from interplay.trainers.core import plots\n"
        "from interplay.trainers.studies import sweep\n\n"
        "SMALL = True  # False: the small CNN, longer runs, three seeds per smoothing value\n"
        "root = pathlib.Path(tempfile.mkdtemp(prefix='analysis_'))\n"
        "base = get_config('digits')\n"
        "base.model = 'mlp' if SMALL else 'small_cnn'\n"
        "base.num_steps = 200 if SMALL else 1500\n"
        "base.checkpoint_every = base.num_steps // (4 if SMALL else 10)\n"
        "base.eval_every = base.num_steps // 3\n"
        "for name, data_seed in (('a', 0), ('b', 1)):\n"
        "    config = base.copy_and_resolve_references()\n"
        "    config.data_seed = data_seed\n"
        "    supervised.train_and_evaluate(config, root / name)"
    ),
    new_code_cell(
        "run_a, run_b = SavedRun(root / 'a'), SavedRun(root / 'b')\n"
        "trajectory = analyze.trajectory(run_a)\n"
        "display(Image(filename=str(root / 'a/analysis/trajectory.png')))"
    ),
    new_code_cell(
        "lmc = analyze.linear_mode_connectivity(run_a, run_b, num_points=6 if SMALL else 21)\n"
        "display(Image(filename=str(root / 'a/analysis/lmc.png')))"
    ),
    new_code_cell(
        "sparsities = (0.0, 0.5, 0.9) if SMALL else analyze.SPARSITIES\n"
        "pruning = analyze.prune(run_a, sparsities, finetune_steps=20)\n"
        "display(Image(filename=str(root / 'a/analysis/prune.png')))"
    ),
    new_code_cell(
        "epsilons = (0.0, 0.3) if SMALL else (0.0, 0.1, 0.3)\n"
        "variants = {f'{e}': {'label_smoothing': e} for e in epsilons}\n"
        "results = sweep.sweep(base, variants, [0] if SMALL else [0, 1, 2], root / 'smoothing')\n"
        "print(sweep.table(results))\n"
        "records = [{'label_smoothing': e, **{k.split('/')[1]: sum(v) / len(v)\n"
        "            for k, v in results[f'{e}'].items()}} for e in epsilons]\n"
        "plots.plot_panels(records, 'label_smoothing', [('test accuracy', ['accuracy'], []),\n"
        "                  ('MIR', ['mir'], []), ('HDR', ['hdr'], [])], root / 'smoothing.png')\n"
        "display(Image(filename=str(root / 'smoothing.png')))"
    ),
]

PAPER_B = [
    new_markdown_cell(
        "# Paper [B]: matrix entropy as a clustering measure, and the CMA loss\n\n"
        "1. The softmax-temperature study: train at several temperatures τ of the loss and "
        "read the test features' matrix entropy beside the silhouette and Davies–Bouldin "
        "scores (`interplay.trainers.studies.temperature`).\n"
        "2. Few-shot cross-modal prompt tuning with and without the cross-modal alignment "
        "loss (`interplay.trainers.cross_modal`) on the offline digits stand-in for CLIP "
        "features.\n\n"
        "Small by default (one seed, a laptop CPU, about two minutes). `PAPER_SETTING = True` "
        "on a TPU/GPU runtime runs the temperature study on CIFAR-10 / WRN-28-2 (downloaded "
        "by TFDS) with five temperatures and three seeds, and the full few-shot table."
    ),
    SETUP,
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "from interplay.trainers.configs import cross_modal as cross_modal_config\n"
        "from interplay.trainers.configs.supervised import get_config\n"
        "from interplay.trainers.studies import few_shot, temperature\n\n"
        "PAPER_SETTING = False  # True: CIFAR-10 / WRN-28-2, τ ∈ {0.1, 0.3, 1, 3, 10}, 3 seeds\n"
        "root = pathlib.Path(tempfile.mkdtemp(prefix='paper_b_'))"
    ),
    new_code_cell(
        "base = get_config('cifar10_wrn28_2' if PAPER_SETTING else 'digits')\n"
        "if not PAPER_SETTING:\n"
        "    base.model, base.num_steps, base.eval_every = 'mlp', 150, 150\n"
        "taus = temperature.TAUS if PAPER_SETTING else (0.3, 3.0)\n"
        "seeds = [0, 1, 2] if PAPER_SETTING else [0]\n"
        "results = temperature.sweep_taus(base, taus, seeds, root / 'temperature')\n"
        "display(Markdown(temperature.report(results)))\n"
        "temperature.figure(results, root / 'temperature.png')\n"
        "display(Image(filename=str(root / 'temperature.png')))"
    ),
    new_code_cell(
        "few = cross_modal_config.get_config('digits')\n"
        "few.encoder_steps, few.num_steps, few.eval_every = 100, 100, 50\n"
        "shots, seeds = ([1, 2, 4, 8, 16], [0, 1, 2]) if PAPER_SETTING else ([1, 4], [0])\n"
        "table, text = few_shot.few_shot_table(few, shots, seeds, [0.0, 0.5], root / 'cma')\n"
        "display(Markdown(text))\n"
        "display(Image(filename=str(root / 'cma/cma_0.5/shots_4/seed0/dynamics.png')))"
    ),
]

SEMI_SUPERVISED = [
    new_markdown_cell(
        "# Semi-supervised learning with the interplay term\n\n"
        "FreeMatch (`interplay.trainers.semisupervised`) with and without the papers' term on "
        "unlabeled data, `−λ·MI + λ·|ΔH|` between the weak-view features of the confidently "
        "pseudo-labeled samples and their pseudo-labels' head vectors. Both runs share the "
        "seed: the same labeled subset and the same initialization.\n\n"
        "Small by default (4 labels per class of scikit-learn's digits, a short run on a laptop "
        "CPU). Set `PAPER_SETTING = True` on a TPU/GPU runtime for CIFAR-10 with 40 labels "
        "(WRN-28-2, USB's settings; CIFAR-10 is downloaded by TFDS; 2²⁰ steps take days)."
    ),
    SETUP,
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "import jax\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "from interplay.trainers import semisupervised\n"
        "from interplay.trainers.configs.semisupervised import get_config\n"
        "from interplay.trainers.core import logs\n"
        "from interplay.trainers.studies import semisupervised_study\n\n"
        "PAPER_SETTING = False  # True: CIFAR-10, 40 labels, WRN-28-2\n"
        "LAMBDA = 0.01  # mi_weight = hdr_weight of the term (README: chosen on validation)\n"
        "print(jax.devices())"
    ),
    new_code_cell(
        "preset = 'cifar10_40' if PAPER_SETTING else 'digits_40'\n"
        "root = pathlib.Path(tempfile.mkdtemp(prefix='semi_'))\n"
        "for variant, weight in (('freematch', 0.0), ('freematch_interplay', LAMBDA)):\n"
        "    config = get_config(preset)\n"
        "    config.update(mi_weight=weight, hdr_weight=weight)\n"
        "    if not PAPER_SETTING:\n"
        "        config.update(num_steps=60, eval_every=30, checkpoint_every=60)\n"
        "    workdir = root / preset / variant / 'seed0'\n"
        "    semisupervised.train_and_evaluate(config, workdir)\n"
        "    print(variant)\n"
        "    print(semisupervised.summary(logs.read(workdir / 'metrics.jsonl')))"
    ),
    new_code_cell(
        "cells = semisupervised_study.load(root)\n"
        "display(Markdown(semisupervised_study.error_table(cells)))\n"
        "display(Markdown(semisupervised_study.paired_table(semisupervised_study.paired(cells))))\n"
        "semisupervised_study.plot_dynamics(cells, root / 'dynamics.png')\n"
        "display(Image(filename=str(root / 'dynamics.png')))\n"
        "display(Image(filename=str(root / preset / 'freematch_interplay/seed0/dynamics.png')))"
    ),
]

NOTEBOOKS = {
    "training_dynamics.ipynb": TRAINING_DYNAMICS,
    "grokking.ipynb": GROKKING,
    "checkpoint_analysis.ipynb": CHECKPOINT_ANALYSIS,
    "paper_b.ipynb": PAPER_B,
    "semi_supervised.ipynb": SEMI_SUPERVISED,
}


def write(name: str, cells) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        write(name, cells)
