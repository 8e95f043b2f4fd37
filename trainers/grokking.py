"""Grokking with information dynamics: full-batch AdamW, many steps per jitted call.

    python -m trainers.grokking --config trainers/configs/grokking.py --workdir DIR

Every `log_every` steps (one fused `lax.scan`): train/test loss and accuracy and
the interplay of train and test features (the residual stream at `=`) with the
unembedding. Stops `steps_after_grok` steps after test accuracy first reaches
`grok_threshold` (`grokked_at`), or at `num_steps`. Writes `metrics.jsonl`,
`summary.json`, `grokking.png` and Orbax checkpoints (resumable).
"""

from __future__ import annotations

import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from ml_collections import config_flags
from tqdm.auto import tqdm

import infotheory as it
import models
from models.transformer import Transformer
from trainers import checkpoints, metrics, plots
from trainers.data import modular


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    modular.modular_config(config.p, config.operation, config.train_fraction, config.split_seed)
    for key in ("num_steps", "log_every", "checkpoint_every", "learning_rate", "width"):
        if not config[key] > 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}.")
    for key in ("num_steps", "checkpoint_every"):
        if config[key] % config.log_every:
            raise ValueError(
                f"config.{key}={config[key]} must be a multiple of log_every={config.log_every}."
            )
    if config.interplay_samples < 0 or config.weight_decay < 0 or config.steps_after_grok < 0:
        raise ValueError("interplay_samples, weight_decay and steps_after_grok must be ≥ 0.")


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


def make_optimizer(config) -> optax.GradientTransformation:
    schedule = optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
    return optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)


def loss_and_accuracy(params, model, tokens, labels):
    logits, features = model.apply({"params": params}, tokens)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (jnp.mean(jnp.argmax(logits, -1) == labels), features)


def train_step(state, tokens, labels, *, model, tx):
    """One full-batch AdamW step; returns the new state and the loss before it."""
    grad_fn = jax.value_and_grad(lambda p: loss_and_accuracy(p, model, tokens, labels)[0])
    loss, grads = grad_fn(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    return {
        "params": optax.apply_updates(state["params"], updates),
        "opt_state": opt_state,
        "step": state["step"] + 1,
    }, loss


def fused_steps(state, tokens, labels, *, model, tx, num_steps: int):
    """`num_steps` train steps in one `lax.scan`; returns the state and the per-step losses."""
    step = functools.partial(train_step, tokens=tokens, labels=labels, model=model, tx=tx)
    return jax.lax.scan(lambda s, _: step(s), state, None, length=num_steps)


def evaluate(params, splits, subsets, *, model) -> dict:
    """Loss, accuracy and interplay (on fixed subsets) of each split."""
    head = models.head(params)
    out = {}
    for prefix, (tokens, labels) in splits.items():
        loss, (accuracy, features) = loss_and_accuracy(params, model, tokens, labels)
        idx = subsets[prefix]
        r = it.interplay(features[idx], labels[idx], head)
        out.update({f"{prefix}/loss": loss, f"{prefix}/accuracy": accuracy})
        out.update({f"{prefix}/{k}": v for k, v in r._asdict().items() if k != "h_joint"})
    return out


def _subset(n: int, size: int, seed: int) -> np.ndarray:
    return (
        np.arange(n)
        if size == 0 or size >= n
        else np.sort(np.random.default_rng(seed).permutation(n)[:size])
    )


def summarize(records: list[dict], threshold: float) -> dict:
    """Landmarks: when train and test accuracy first reach `threshold`, MIR and HDR peaks."""

    def first(key, value):
        return next((r["step"] for r in records if r[key] >= value), None)

    def argmax(key):
        best = max(records, key=lambda r: r[key])
        return {"step": best["step"], "value": best[key]}

    return {
        "train_fit_at": first("train/accuracy", threshold),
        "grokked_at": first("eval/accuracy", threshold),
        "train_mir_peak": argmax("train/mir"),
        "eval_mir_peak": argmax("eval/mir"),
        "train_hdr_peak": argmax("train/hdr"),
        "eval_hdr_peak": argmax("eval/hdr"),
    }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains until grokking (plus `steps_after_grok`) or `num_steps`; returns the summary."""
    validate(config)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = modular.load(
        modular.modular_config(
            config.p, config.operation, config.train_fraction, config.split_seed
        ),
        config.data_dir,
    )
    splits = {
        "train": (data["train"]["tokens"], data["train"]["label"]),
        "eval": (data["test"]["tokens"], data["test"]["label"]),
    }
    subsets = {
        k: _subset(len(v[1]), config.interplay_samples, config.seed + i)
        for i, (k, v) in enumerate(splits.items())
    }
    model, tx = make_model(config), make_optimizer(config)
    params = model.init(jax.random.key(config.seed), splits["train"][0][:1])["params"]
    state = {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}

    mngr = checkpoints.manager(workdir / "checkpoints")
    start, meta = 0, {"elapsed": 0.0}
    if mngr.latest_step() is not None:
        start = mngr.latest_step()
        state, meta = checkpoints.restore(mngr, start, state)
    writer = metrics.MetricWriter(workdir, resume_step=start)
    records = metrics.read(workdir / "metrics.jsonl")

    run = jax.jit(
        functools.partial(fused_steps, model=model, tx=tx, num_steps=config.log_every),
        donate_argnums=0,
    )
    measure = jax.jit(functools.partial(evaluate, model=model))

    def metrics_now(params) -> dict[str, float]:
        return {k: float(v) for k, v in jax.device_get(measure(params, splits, subsets)).items()}

    train_tokens, train_labels = map(jnp.asarray, splits["train"])
    t0 = time.perf_counter() - meta["elapsed"]
    if start == 0:
        record = metrics_now(state["params"])
        writer.write(0, time.perf_counter() - t0, record)
        records.append({"step": 0, **record})
    grokked_at = summarize(records, config.grok_threshold)["grokked_at"]
    bar = tqdm(total=config.num_steps, initial=start, desc=f"grokking p={config.p}")
    step = start
    while step < config.num_steps:
        if grokked_at is not None and step >= grokked_at + config.steps_after_grok:
            break
        state, losses = run(state, train_tokens, train_labels)
        step += config.log_every
        metrics.check_finite(losses, step - config.log_every + 1)
        record = metrics_now(state["params"])
        writer.write(step, time.perf_counter() - t0, record)
        records.append({"step": step, **record})
        if grokked_at is None and record["eval/accuracy"] >= config.grok_threshold:
            grokked_at = step
        bar.update(config.log_every)
        bar.set_postfix(
            train=f"{record['train/accuracy']:.3f}",
            test=f"{record['eval/accuracy']:.3f}",
            mir=f"{record['eval/mir']:.3f}",
        )
        if step % config.checkpoint_every == 0:
            checkpoints.save(mngr, step, state, {"elapsed": time.perf_counter() - t0})
    bar.close()
    if mngr.latest_step() != step:
        checkpoints.save(mngr, step, state, {"elapsed": time.perf_counter() - t0})
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
    records = metrics.read(workdir / "metrics.jsonl")
    summary = {
        **summarize(records, config.grok_threshold),
        "last_step": records[-1]["step"],
        "time": records[-1]["time"],
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    plots.plot_grokking(
        records,
        summary["grokked_at"],
        workdir / "grokking.png",
        title=f"({config.operation}) mod {config.p}, "
        f"{round(100 * config.train_fraction)}% train, seed {config.seed}",
    )
    return summary


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    summary = train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", None, "Grokking configuration.")
    flags.DEFINE_string("workdir", None, "Directory for metrics, checkpoints and plots.")
    app.run(main)
