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

LAYER_PROFILE = [
    new_markdown_cell(
        "# The interplay profile of your own model\n\n"
        "`interplay.trainers.profile.interplay_profile` measures every layer of an unmodified "
        "Flax model against its head, over checkpoints, in one call: the entropy and effective "
        "rank of each layer's Gram, its MIR and HDR against the head's Gram of the labels, NC1 "
        "and the cosine silhouette, over the whole split from streaming statistics.\n\n"
        "The model below is defined here, not in the library, and trained with a plain optax "
        "loop on scikit-learn's digits (a minute on a laptop CPU)."
    ),
    SETUP,
    new_code_cell(
        "import pathlib\n"
        "import tempfile\n\n"
        "import flax.linen as nn\n"
        "import jax\n"
        "import jax.numpy as jnp\n"
        "import numpy as np\n"
        "import optax\n"
        "from IPython.display import Image, display\n"
        "from sklearn.datasets import load_digits\n\n"
        "from interplay import infotheory as it\n"
        "from interplay.trainers import profile\n\n"
        "digits = load_digits()\n"
        "x = jnp.asarray(digits.images[..., None] / 16, jnp.float32)\n"
        "y = jnp.asarray(digits.target)\n"
        "order = np.random.default_rng(0).permutation(len(y))\n"
        "train, test = order[:1400], order[1400:]\n\n\n"
        "class Block(nn.Module):  # a residual MLP block\n"
        "    width: int\n\n"
        "    @nn.compact\n"
        "    def __call__(self, h):\n"
        "        return h + nn.Dense(self.width)(nn.relu(nn.Dense(self.width)(h)))\n\n\n"
        "class MyNet(nn.Module):\n"
        "    @nn.compact\n"
        "    def __call__(self, images):\n"
        "        h = nn.Dense(64, name='embed')(images.reshape(len(images), -1))\n"
        "        for i in range(4):\n"
        "            h = Block(64, name=f'block{i}')(h)\n"
        "        return nn.Dense(10, name='classifier')(nn.relu(h))"
    ),
    new_code_cell(
        "model = MyNet()\n"
        "params = model.init(jax.random.key(0), x[:1])['params']\n"
        "tx = optax.adam(1e-3)\n"
        "opt_state = tx.init(params)\n\n\n"
        "@jax.jit\n"
        "def step(params, opt_state, xb, yb):\n"
        "    def loss(p):\n"
        "        logits = model.apply({'params': p}, xb)\n"
        "        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()\n\n"
        "    grads = jax.grad(loss)(params)\n"
        "    updates, opt_state = tx.update(grads, opt_state)\n"
        "    return optax.apply_updates(params, updates), opt_state\n\n\n"
        "checkpoints, steps = [], [0, 25, 100, 400]\n"
        "for s in range(steps[-1] + 1):\n"
        "    if s in steps:\n"
        "        checkpoints.append({'params': params})\n"
        "    rows = jax.random.choice(jax.random.key(s), train, (64,))\n"
        "    params, opt_state = step(params, opt_state, x[rows], y[rows])\n"
        "logits = model.apply({'params': params}, x[test])\n"
        "print('test accuracy', float(jnp.mean(jnp.argmax(logits, -1) == y[test])))"
    ),
    new_markdown_cell(
        "One call profiles every Dense output and every block output of each checkpoint on the "
        "test digits. The head is this model's own last layer, named `classifier`: its class "
        "vectors are the rows of `kernel.T`, one head per checkpoint."
    ),
    new_code_cell(
        "xs, ys = x[test], y[test]\n"
        "batches = [(xs[i : i + 128], ys[i : i + 128]) for i in range(0, len(test), 128)]\n"
        "records = profile.interplay_profile(\n"
        "    model, checkpoints, batches, lambda v: v['params']['classifier']['kernel'].T,\n"
        "    num_classes=10, checkpoints=steps,\n"
        ")\n"
        "for r in records[-6:]:\n"
        "    print(f\"{r['layer']:>16}  d={r['width']:3d}  MIR {r['mir']:.3f}  \"\n"
        "          f\"HDR {r['hdr']:.3f}  NC1 {r['nc1']:.3f}  silhouette {r['silhouette']:.3f}\")\n"
        "out = pathlib.Path(tempfile.mkdtemp(prefix='profile_'))\n"
        "profile.write(records, out, 'MyNet on digits')\n"
        "display(Image(filename=str(out / 'heatmaps.png')))\n"
        "display(Image(filename=str(out / 'lines.png')))"
    ),
    new_markdown_cell(
        "The numbers can be checked by hand: capture a layer with Flax, measure it with "
        "`dataset_interplay`."
    ),
    new_code_cell(
        "_, state = model.apply(checkpoints[-1], x[test], capture_intermediates=True,\n"
        "                       mutable=['intermediates'])\n"
        "block3 = state['intermediates']['block3']['__call__'][0]\n"
        "head = checkpoints[-1]['params']['classifier']['kernel'].T\n"
        "by_hand = it.dataset_interplay([(block3, y[test])], head, num_classes=10)\n"
        "mine = next(r for r in records if r['checkpoint'] == 400 and r['layer'] == 'block3')\n"
        "print(float(by_hand.mir), mine['mir'])\n"
        "assert abs(float(by_hand.mir) - mine['mir']) < 1e-4"
    ),
]

NOTEBOOKS = {
    "training_dynamics.ipynb": TRAINING_DYNAMICS,
    "layer_profile.ipynb": LAYER_PROFILE,
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
