"""Few-shot cross-modal prompt tuning (CoOp-shaped) with paper [B]'s CMA loss.

    python -m interplay.trainers.cross_modal \
        --config interplay/trainers/configs/cross_modal.py:digits --workdir DIR

The few-shot table over shots, seeds and λ is `interplay.trainers.studies.few_shot`.

The model: frozen image features `x (n, d)` and frozen class embeddings
`e (C, d_e)`; the learnable part is the context of the prompt, and the text
features `t_c` of the prompted classes come out of a frozen stand-in text
encoder ending in a projection `P` (two-layer tanh MLP, `d_e → d`). Logits
are `s · cos(x, t_c)` with CLIP's logit scale `s = 100`; the loss is
`(1 − λ)·CE + λ·L_cma(x, y, t)` (`interplay.infotheory.losses.cross_modal_alignment`,
`config.cma_weight = λ`, each class group's entropy divided by the log of its
size as the reference code does, `config.cma_normalize = "log_group"`;
`"none"` for nats). `config.prompt`:

- `"coop"` (CoOp's default, unified context): `M = num_context_tokens` (16)
  context tokens shared by all classes, drawn from `N(0, context_init_std²)`
  (0.02), before the class token; the stand-in encoder lets the class token
  read them through one frozen attention layer,
  `h_c = e_c + Σ_j softmax_j(q_c·k_j / √d_e) v_j` (`q_c = e_c W_q`,
  `k_j = ctx_j W_k`, `v_j = ctx_j W_v`, random `N(0, 1/d_e)` weights), and
  `t_c = P(h_c)`: a shared context that moves each class by its own attention,
  and at its small initialization leaves the zero-shot `P(e_c)` nearly intact.
  `class_specific_context=True` is CoOp's CSC: `M` tokens of each class's own.
- `"class_vector"` (the project's former prompt): one context vector per
  class, from 0, added to the embedding: `t_c = P(e_c + ctx_c)`.

The optimizer is CoOp's (Dassl's defaults): SGD with momentum 0.9 and
weight decay 5e-4, batch 32, a first epoch at the constant rate 1e-5, then a
cosine from 0.002; 50 epochs at 1 shot, 100 at 2–4 and 200 at 8–16
(`coop_epochs`) unless `config.num_steps` is set. An epoch is a fresh
permutation of the few-shot set cut into `⌊n / B⌋` batches (the last partial
one dropped), as PyTorch's loader with `drop_last`.

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
from interplay.trainers import configs
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


PROMPTS = ("coop", "class_vector")


def coop_epochs(shots: int) -> int:
    """CoOp's epochs by shots (its scripts' `ep50`, `ep100` and full configs)."""
    return 50 if shots <= 1 else 100 if shots <= 4 else 200


class Prompt:
    """The frozen parts of a run's prompt and its text features (`config.prompt`).

    Args:
      class_embeddings: `(C, d_e)` frozen class embeddings `e`.
      width: `d`, the image features' width (the projection's output).
      config: the run's config (`prompt`, `projection_seed`, `num_context_tokens`,
        `context_init_std`).
    """

    def __init__(self, class_embeddings: np.ndarray, width: int, config):
        self.config = config
        self.embeddings = jnp.asarray(class_embeddings, jnp.float32)
        dim = self.embeddings.shape[1]
        key = jax.random.key(config.projection_seed)
        self.projection = _mlp(key, (dim, 2 * dim, width))
        self.attention = [  # W_q, W_k, W_v of the coop encoder
            jax.random.normal(k, (dim, dim)) / np.sqrt(dim)
            for k in jax.random.split(jax.random.fold_in(key, 1), 3)
        ]

    def init(self, key: jax.Array) -> dict:
        """The context at step 0: `M` tokens `N(0, σ²)`, shared `(M, d_e)` or per class
        `(C, M, d_e)`; or a zero vector per class (`class_vector`)."""
        c, (num_classes, dim) = self.config, self.embeddings.shape
        if c.prompt == "class_vector":
            return {"params": {"context": jnp.zeros_like(self.embeddings)}}
        shape = (c.num_context_tokens, dim)
        shape = (num_classes, *shape) if c.class_specific_context else shape
        return {"params": {"context": c.context_init_std * jax.random.normal(key, shape)}}

    def text(self, params) -> jax.Array:
        """`(C, d)` text features of the prompted classes."""
        e, context = self.embeddings, params["context"]
        if self.config.prompt == "class_vector":
            return _apply_mlp(self.projection, e + context)
        w_q, w_k, w_v = self.attention
        context = jnp.broadcast_to(context, (e.shape[0], *context.shape[-2:]))  # (C, M, d_e)
        scores = jnp.einsum("cd,cmd->cm", e @ w_q, context @ w_k) / np.sqrt(e.shape[1])
        shift = jnp.einsum("cm,cmd->cd", jax.nn.softmax(scores), context @ w_v)
        return _apply_mlp(self.projection, e + shift)


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
    positive = ("shots", "batch_size", "learning_rate", "warmup_lr", "eval_every", "logit_scale")
    positive += ("checkpoint_every", "log_every", "num_context_tokens", "context_init_std")
    configs.check_positive(config, positive)
    if config.num_steps is not None and not config.num_steps > 0:
        raise ValueError(f"config.num_steps must be positive or None, got {config.num_steps}.")
    configs.check_non_negative(
        config, ("momentum", "weight_decay", "warmup_epochs", "encoder_steps")
    )
    if config.prompt not in PROMPTS:
        raise ValueError(f"config.prompt must be one of {PROMPTS}, got {config.prompt!r}.")
    if not 0 <= config.cma_weight <= 1:
        raise ValueError(f"config.cma_weight must be in [0, 1], got {config.cma_weight}.")
    if config.cma_normalize not in it.losses.NORMALIZATIONS:
        raise ValueError(
            f"config.cma_normalize must be one of {it.losses.NORMALIZATIONS}, "
            f"got {config.cma_normalize!r}."
        )


def batch_size_and_steps_per_epoch(config, num_examples: int) -> tuple[int, int]:
    """`(B, ⌊n / B⌋)` with `B = min(batch_size, n)`: full batches of an epoch of `n`."""
    batch_size = min(config.batch_size, num_examples)
    return batch_size, num_examples // batch_size


def resolve_steps(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` with `num_steps` set: CoOp's `coop_epochs(shots)` epochs when it is None."""
    if config.num_steps is not None:
        return config
    num_classes = load(config)["class_embeddings"].shape[0]
    _, steps_per_epoch = batch_size_and_steps_per_epoch(config, num_classes * config.shots)
    config = config.copy_and_resolve_references()
    config.num_steps = coop_epochs(config.shots) * steps_per_epoch
    return config


def batch_rows(key: jax.Array, step, num_examples: int, batch_size: int) -> jax.Array:
    """Rows of `step`'s batch: epoch `e = step // (n // B)` is the permutation keyed by
    `(key, e)` cut into `n // B` batches of `B`, the remainder dropped."""
    epoch, index = jnp.divmod(step, num_examples // batch_size)
    order = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
    return jax.lax.dynamic_slice(order, (index * batch_size,), (batch_size,))


def schedule_fn(config, steps_per_epoch: int) -> optax.Schedule:
    """`warmup_lr` for the first `warmup_epochs` epochs, then the cosine from `learning_rate`
    over `num_steps` at the step reached (Dassl's constant warm-up before its cosine)."""
    cosine = optax.cosine_decay_schedule(config.learning_rate, config.num_steps)
    warmup = config.warmup_epochs * steps_per_epoch
    return lambda step: jnp.where(step < warmup, config.warmup_lr, cosine(step))


def experiment(config: ml_collections.ConfigDict) -> loop.Experiment:
    arrays = load(config)
    subset = few_shot_indices(arrays["train_labels"], config.shots, config.seed)
    x = jnp.asarray(arrays["train_features"][subset], jnp.float32)
    y = jnp.asarray(arrays["train_labels"][subset])
    test_x = jnp.asarray(arrays["test_features"], jnp.float32)
    test_y = jnp.asarray(arrays["test_labels"])
    num_classes = arrays["class_embeddings"].shape[0]
    batch_size, steps_per_epoch = batch_size_and_steps_per_epoch(config, len(y))
    prompt = Prompt(arrays["class_embeddings"], x.shape[1], config)
    schedule = schedule_fn(config, steps_per_epoch)
    tx = optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(schedule, momentum=config.momentum),
    )
    loss = functools.partial(loss_fn, prompt=prompt, config=config)
    key, init_key = jax.random.split(jax.random.key(config.seed))  # batches, context

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state):  # the batch is a pure function of (seed, step)
        rows = batch_rows(key, state.step, len(y), batch_size)
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
        init=lambda: TrainState.create(prompt.init(init_key), tx),
        train=train,
        evaluate=evaluate,
        learning_rate=schedule,
        plot=plot,
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains the prompt, evaluates and checkpoints (resumable); returns the last eval record."""
    validate(config)
    config = resolve_steps(config)
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
