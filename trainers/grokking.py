"""Grokking with information dynamics: full-batch AdamW, many steps per jitted call.

    python -m trainers.grokking --config trainers/configs/grokking.py:default --workdir DIR

Every `eval_every` steps (one fused `lax.scan`): loss and accuracy of the train
split (`eval_train/...`) and of the test split (`eval/...`), and the interplay
of their features (the residual stream at `=`) with the unembedding. Stops
`steps_after_grok` steps after test accuracy first reaches `grok_threshold`
(`grokked_at`), or at `num_steps`. Writes `metrics.jsonl`, `summary.json`,
`grokking.png` and Orbax checkpoints (resumable).
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
from absl import flags, logging

import infotheory as it
import models
from models.transformer import Transformer
from trainers import cli, loop, plots
from trainers.configs import grokking as grokking_config
from trainers.data import modular
from trainers.state import TrainState, train_step

SPLITS = {"eval_train": "train", "eval": "test"}  # metric prefix → split


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    modular.modular_config(config.p, config.operation, config.train_fraction, config.split_seed)
    positive = ("num_steps", "eval_every", "checkpoint_every", "learning_rate", "warmup_steps")
    for key in (*positive, "width", "num_heads", "head_dim", "mlp_dim"):
        if not config[key] > 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}.")
    for key in ("num_steps", "checkpoint_every"):
        if config[key] % config.eval_every:
            raise ValueError(
                f"config.{key}={config[key]} must be a multiple of eval_every={config.eval_every}."
            )
    if config.interplay_samples is not None and config.interplay_samples < 2:
        raise ValueError(
            f"config.interplay_samples must be ≥ 2 or None, got {config.interplay_samples}."
        )
    if config.weight_decay < 0 or config.steps_after_grok < 0:
        raise ValueError("weight_decay and steps_after_grok must be ≥ 0.")


def make_model(config) -> Transformer:
    return Transformer(
        vocab_size=config.p + 1,
        num_classes=config.p,
        width=config.width,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        mlp_dim=config.mlp_dim,
        layer_norm=config.layer_norm,
    )


def make_optimizer(config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
    tx = optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
    return tx, schedule


def loss_and_accuracy(params, model, tokens, labels):
    logits, features = model.apply({"params": params}, tokens)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (jnp.mean(jnp.argmax(logits, -1) == labels), features)


def loss_fn(params, state, batch, *, model):
    """Full-batch cross-entropy; no batch statistics."""
    del state
    return loss_and_accuracy(params, model, *batch)[0], {}


def fused_steps(state: TrainState, tokens, labels, *, model, num_steps: int):
    """`num_steps` train steps in one `lax.scan`; returns the state and the per-step metrics."""
    step = functools.partial(train_step, loss_fn=functools.partial(loss_fn, model=model))
    return jax.lax.scan(lambda s, _: step(s, (tokens, labels)), state, None, length=num_steps)


def evaluate(params, splits, subsets, *, model) -> dict:
    """Loss, accuracy and interplay (on fixed subsets) of each split."""
    head = models.head(params)
    out = {}
    for prefix, (tokens, labels) in splits.items():
        loss, (accuracy, features) = loss_and_accuracy(params, model, tokens, labels)
        idx = subsets[prefix]
        r = it.interplay(features[idx], labels[idx], head)
        out.update({f"{prefix}/loss": loss, f"{prefix}/accuracy": accuracy})
        exact = {k: v for k, v in r._asdict().items() if k not in ("h_joint", "mi_stderr")}
        out.update({f"{prefix}/{k}": v for k, v in exact.items()})
    return out


def _subset(n: int, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def summarize(records: list[dict], threshold: float) -> dict:
    """Landmarks: when train and test accuracy first reach `threshold`, MIR and HDR peaks."""
    records = [r for r in records if "eval/accuracy" in r]

    def first(key, value):
        return next((r["step"] for r in records if r[key] >= value), None)

    def argmax(key):
        best = max(records, key=lambda r: r[key])
        return {"step": best["step"], "value": best[key]}

    return {
        "train_fit_at": first("eval_train/accuracy", threshold),
        "grokked_at": first("eval/accuracy", threshold),
        **{
            f"{split}_{k}_peak": argmax(f"{p}/{k}")
            for p, split in SPLITS.items()
            for k in ("mir", "hdr")
        },
    }


def experiment(config: ml_collections.ConfigDict) -> loop.Experiment:
    """The grokking `Experiment`: the whole train split is every step's batch."""
    data = modular.load(
        modular.modular_config(
            config.p, config.operation, config.train_fraction, config.split_seed
        ),
        config.data_dir,
    )
    splits = {p: (data[s]["tokens"], data[s]["label"]) for p, s in SPLITS.items()}
    subsets = {
        p: _subset(len(v[1]), config.interplay_samples, config.seed + i)
        for i, (p, v) in enumerate(splits.items())
    }
    model, (tx, schedule) = make_model(config), make_optimizer(config)
    tokens, labels = map(jnp.asarray, splits["eval_train"])
    run = jax.jit(
        functools.partial(fused_steps, model=model),
        static_argnames="num_steps",
        donate_argnums=0,
    )
    measure = jax.jit(functools.partial(evaluate, model=model))

    def init() -> TrainState:
        return TrainState.create(model.init(jax.random.key(config.seed), tokens[:1]), tx)

    def finished(records) -> bool:
        grokked_at = summarize(records, config.grok_threshold)["grokked_at"]
        return (
            grokked_at is not None and records[-1]["step"] >= grokked_at + config.steps_after_grok
        )

    def plot(records, workdir):
        plots.plot_grokking(
            records,
            summarize(records, config.grok_threshold)["grokked_at"],
            workdir / "grokking.png",
            title=f"({config.operation}) mod {config.p}, "
            f"{round(100 * config.train_fraction)}% train, seed {config.seed}",
        )

    return loop.Experiment(
        name=f"grokking p={config.p}",
        init=init,
        train=lambda state, first, num_steps: run(state, tokens, labels, num_steps=num_steps),
        evaluate=lambda state: {
            k: float(v) for k, v in jax.device_get(measure(state.params, splits, subsets)).items()
        },
        learning_rate=schedule,
        plot=plot,
        finished=finished,
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains until grokking (plus `steps_after_grok`) or `num_steps`; returns the summary."""
    validate(config)
    records = loop.run(experiment(config), config, workdir, grokking_config.RESUMABLE)
    summary = {
        **summarize(records, config.grok_threshold),
        "last_step": records[-1]["step"],
        "time": records[-1]["time"],
    }
    (pathlib.Path(workdir) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    workdir = pathlib.Path(flags.FLAGS.workdir)
    summary = train_and_evaluate(flags.FLAGS.config, workdir)
    print(json.dumps(summary, indent=1))
    print(
        f"written to {workdir}/: metrics.jsonl, summary.json, grokking.png, tensorboard/, "
        "checkpoints/, config.json"
    )


if __name__ == "__main__":
    cli.define_config_flags(grokking_config)
    cli.run(main)
