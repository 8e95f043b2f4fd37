"""Few-shot cross-modal prompt tuning (CoOp-shaped) with paper [B]'s CMA loss.

    python -m interplay.trainers.cross_modal \
        --config interplay/trainers/configs/cross_modal.py:digits --workdir DIR

The few-shot table over shots, seeds and λ is `interplay.trainers.studies.few_shot`.

The model: frozen image features `x (n, d)` and frozen class embeddings
`e (C, d_e)`; the learnable part is a per-class context `ctx (C, d_e)` (CoOp's
class-specific context, the "prompt", initialized at 0), passed with the class
embedding through a frozen projection `P` (two-layer tanh MLP, `d_e → d`) into
text features `t_c = P(e_c + ctx_c)`; logits `s · cos(x, t_c)` with CLIP's
logit scale `s = 100`; loss `(1 − λ)·CE + λ·L_cma(x, y, t)`
(`interplay.infotheory.losses.cross_modal_alignment`, `config.cma_weight = λ`,
each class group's entropy divided by the log of its size as the reference code
does, `config.cma_normalize = "log_group"`; `"none"` for nats).

Data: an `.npz` with `train_features, train_labels, test_features,
test_labels, class_embeddings` (`config.features`). To use CLIP, export with
open_clip (not a dependency) the image features of both splits and the text
features of the class prompts ("a photo of a {class}.") as those arrays. By
default a stand-in is built offline, once, in the data directory: the image
features are the penultimate features of a small CNN trained for
`config.encoder_steps` steps on the digits train split (`interplay.trainers.supervised`),
and the class embeddings are each class's mean train image (64 pixels) through
a random frozen MLP (64 → 128 → 64, tanh): a second "modality" that sees a
different view of the class than the image encoder. It is a stand-in for
CLIP, not CLIP: its two encoders were never trained to agree.
"""

from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow_datasets as tfds
from absl import flags, logging

from interplay import infotheory as it
from interplay.infotheory import scatter
from interplay.trainers.classifier import parts
from interplay.trainers.classifier.saved import SavedRun
from interplay.trainers.configs import cross_modal as cross_modal_config
from interplay.trainers.configs import supervised as supervised_config
from interplay.trainers.core import cli, logs, loop, plots
from interplay.trainers.core.state import TrainState, train_step
from interplay.trainers.data import pipeline

ARRAYS = ("train_features", "train_labels", "test_features", "test_labels", "class_embeddings")


def _mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[jax.Array]:
    """Random frozen weights `N(0, 1/fan_in)` of a tanh MLP."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        jax.random.normal(k, (a, b)) / np.sqrt(a)
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def _apply_mlp(weights: list[jax.Array], x: jax.Array) -> jax.Array:
    for w in weights[:-1]:
        x = jnp.tanh(x @ w)
    return x @ weights[-1]


def digits_pairs(config: ml_collections.ConfigDict) -> pathlib.Path:
    """The offline two-modality stand-in (see the module docstring); built once, then reused."""
    root = pathlib.Path(config.data_dir or tfds.core.constants.DATA_DIR)
    path = root / f"cross_modal_digits_{config.encoder_steps}.npz"
    if path.exists():
        return path
    encoder = supervised_config.get_config("digits")
    steps = config.encoder_steps
    encoder.update(num_steps=steps, eval_every=steps, checkpoint_every=steps, log_every=steps)
    encoder.update(data_dir=config.data_dir)
    workdir = root / f"cross_modal_digits_{steps}_encoder"
    loop.run(parts.supervised_experiment(encoder), encoder, workdir, supervised_config.RESUMABLE)
    run = SavedRun(workdir)
    variables = run.variables(run.steps[-1])
    arrays, images = {}, {}
    for split in ("train", "test"):
        chunks = []
        for b in pipeline.eval_batches(run.source(split), run.spec, 256):
            keep = np.asarray(b["mask"]) > 0
            features = np.asarray(run.model.apply(variables, b["image"])[1])
            chunks.append((features[keep], np.asarray(b["label"])[keep], b["image"][keep]))
        features, labels, images[split] = (np.concatenate(p) for p in zip(*chunks, strict=True))
        arrays[f"{split}_features"], arrays[f"{split}_labels"] = features, labels
    labels, flat = arrays["train_labels"], images["train"].reshape(len(images["train"]), -1)
    means = np.stack([flat[labels == c].mean(0) for c in range(run.spec.num_classes)])
    weights = _mlp(jax.random.key(1234), (means.shape[1], 128, 64))
    arrays["class_embeddings"] = np.asarray(_apply_mlp(weights, jnp.asarray(means)))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.rename(path)
    return path


def load(config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """The `.npz` arrays, checked for shapes and for enough shots per class."""
    path = pathlib.Path(config.features) if config.features else digits_pairs(config)
    if not path.exists():
        raise ValueError(f"config.features: {path} does not exist.")
    with np.load(path) as f:
        missing = [k for k in ARRAYS if k not in f]
        if missing:
            raise ValueError(f"{path} lacks {missing}; it needs {ARRAYS}.")
        arrays = {k: f[k] for k in ARRAYS}
    c = arrays["class_embeddings"].shape[0]
    fewest = np.bincount(arrays["train_labels"], minlength=c).min()
    if not 1 <= config.shots <= fewest:
        raise ValueError(f"config.shots={config.shots}: the smallest class has {fewest} examples.")
    return arrays


def few_shot_indices(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """`shots` train indices per class, drawn by `seed` (sorted by class)."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), shots, replace=False) for c in np.unique(labels)]
    )


class Prompt:
    """The frozen parts and the text features `t = P(e + ctx)` of a run."""

    def __init__(self, class_embeddings: np.ndarray, width: int, seed: int):
        self.embeddings = jnp.asarray(class_embeddings, jnp.float32)
        dim = self.embeddings.shape[1]
        self.projection = _mlp(jax.random.key(seed), (dim, 2 * dim, width))

    def init(self) -> dict:
        return {"params": {"context": jnp.zeros_like(self.embeddings)}}

    def text(self, params) -> jax.Array:
        """`(C, d)` text features of the prompted classes."""
        return _apply_mlp(self.projection, self.embeddings + params["context"])


def loss_fn(params, state, batch, *, prompt: Prompt, config):
    """`(1 − λ)·CE(s·cos(x, t)) + λ·L_cma(x, y, t)`; no batch statistics."""
    del state
    text = prompt.text(params)
    logits = config.logit_scale * it.normalize(batch["features"]) @ it.normalize(text).T
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()
    loss = ce
    if config.cma_weight:
        cma = it.losses.cross_modal_alignment(
            batch["features"], batch["labels"], text, normalize=config.cma_normalize
        )
        loss = (1 - config.cma_weight) * ce + config.cma_weight * cma
    return loss, {}


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    for key in ("shots", "batch_size", "learning_rate", "num_steps", "eval_every", "logit_scale"):
        if not config[key] > 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}.")
    if not 0 <= config.cma_weight <= 1:
        raise ValueError(f"config.cma_weight must be in [0, 1], got {config.cma_weight}.")
    if config.cma_normalize not in it.losses.NORMALIZATIONS:
        raise ValueError(
            f"config.cma_normalize must be one of {it.losses.NORMALIZATIONS}, "
            f"got {config.cma_normalize!r}."
        )


def experiment(config: ml_collections.ConfigDict) -> loop.Experiment:
    arrays = load(config)
    subset = few_shot_indices(arrays["train_labels"], config.shots, config.seed)
    x = jnp.asarray(arrays["train_features"][subset], jnp.float32)
    y = jnp.asarray(arrays["train_labels"][subset])
    test_x = jnp.asarray(arrays["test_features"], jnp.float32)
    test_y = jnp.asarray(arrays["test_labels"])
    num_classes, batch_size = arrays["class_embeddings"].shape[0], min(config.batch_size, len(y))
    prompt = Prompt(arrays["class_embeddings"], x.shape[1], config.projection_seed)
    schedule = optax.cosine_decay_schedule(config.learning_rate, config.num_steps)
    tx = optax.sgd(schedule, momentum=config.momentum)
    loss = functools.partial(loss_fn, prompt=prompt, config=config)
    key = jax.random.key(config.seed)

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state):  # the batch is a pure function of (seed, step)
        rows = jax.random.choice(jax.random.fold_in(key, state.step), len(y), (batch_size,), False)
        return train_step(state, {"features": x[rows], "labels": y[rows]}, loss_fn=loss)

    def train(state, first, num_steps):
        del first
        rows = []
        for _ in range(num_steps):
            state, row = step(state)
            rows.append(row)
        return state, jax.tree.map(lambda *v: jnp.stack(v), *rows)

    test_stats = scatter.update(scatter.init(num_classes, test_x.shape[1]), test_x, test_y)

    @jax.jit
    def evaluate_arrays(params, test_stats):
        text = prompt.text(params)
        t = it.normalize(text)
        logits = config.logit_scale * it.normalize(test_x) @ t.T
        joint = test_stats.scatter + t[:, :, None] * t[:, None, :]  # [Z_c; t_c] per class
        return text, {
            "accuracy": jnp.mean(jnp.argmax(logits, -1) == test_y),
            "loss": optax.softmax_cross_entropy_with_integer_labels(logits, test_y).mean(),
            "cma": jnp.nanmean(
                scatter.class_entropies_from_scatter(test_stats._replace(scatter=joint))
            ),
        }

    def evaluate(state):
        text, values = evaluate_arrays(state.params, test_stats)
        r = scatter.measure(test_stats, text)
        values.update(mir=r.mir, hdr=r.hdr, mi=r.mi, h_features=r.h_features, h_heads=r.h_heads)
        return {f"eval/{k}": float(v) for k, v in values.items()}

    def plot(records, workdir):
        panels = [
            ("test accuracy", ["eval/accuracy"], []),
            ("L_cma on test", ["eval/cma"], []),
            ("MIR, HDR (test features × text)", ["eval/mir", "eval/hdr"], []),
        ]
        title = f"{config.shots}-shot, λ_cma = {config.cma_weight}"
        plots.plot_panels(logs.evals(records), "step", panels, workdir / "dynamics.png", title)

    return loop.Experiment(
        name=f"{config.shots}-shot λ={config.cma_weight}",
        init=lambda: TrainState.create(prompt.init(), tx),
        train=train,
        evaluate=evaluate,
        learning_rate=schedule,
        plot=plot,
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains the prompt, evaluates and checkpoints (resumable); returns the last eval record."""
    validate(config)
    [records] = loop.run(experiment(config), config, workdir, cross_modal_config.RESUMABLE)
    return logs.evals(records)[-1]


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    final = train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    print(json.dumps(final, indent=1))


if __name__ == "__main__":
    cli.define_config_flags(cross_modal_config)
    cli.run(main)
