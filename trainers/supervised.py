"""Supervised training that measures (and optionally shapes) the interplay of features and head.

    python -m trainers.supervised --config trainers/configs/supervised.py:digits --workdir DIR

Every `eval_every` steps: test accuracy and loss, the exact whole-split
interplay of test features against the head (`infotheory.scatter`), and the
papers' batch-averaged values, written to `DIR/metrics.jsonl` and TensorBoard.
Orbax checkpoints in `DIR/checkpoints/`; restarting with the same workdir resumes.
"""

from __future__ import annotations

import functools
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from ml_collections import config_flags
from tqdm.auto import tqdm

import infotheory as it
import models
from infotheory import scatter
from trainers import checkpoints, data, metrics, plots
from trainers.data import pipeline

State = dict[str, Any]  # {"params", "batch_stats", "opt_state", "step"}: a plain pytree


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
    """Raises `ValueError` naming the first bad config value."""
    data.spec(config.dataset)
    models.get_model(config.model, 2)
    positive = (
        "batch_size",
        "eval_batch_size",
        "num_steps",
        "eval_every",
        "checkpoint_every",
        "log_every",
        "learning_rate",
    )
    for key in positive:
        if not config[key] > 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}.")
    for key in ("mi_weight", "hdr_weight", "weight_decay", "momentum", "keep_checkpoints"):
        if config[key] < 0:
            raise ValueError(f"config.{key} must be non-negative, got {config[key]}.")
    if not 0 <= config.label_smoothing < 1:
        raise ValueError(f"config.label_smoothing must be in [0, 1), got {config.label_smoothing}.")
    if config.interplay_method not in ("auto", "exact", "lanczos"):
        raise ValueError(
            f"config.interplay_method must be auto|exact|lanczos, got {config.interplay_method!r}."
        )
    for key in ("batch_size", "eval_batch_size"):
        if config[key] % num_devices:
            raise ValueError(
                f"config.{key}={config[key]} is not divisible by the "
                f"{num_devices} devices of the data mesh."
            )
    if config.num_devices > jax.local_device_count():
        raise ValueError(
            f"config.num_devices={config.num_devices} but only "
            f"{jax.local_device_count()} local devices exist."
        )


def make_optimizer(config) -> optax.GradientTransformation:
    """SGD with momentum, coupled weight decay and a cosine learning-rate decay."""
    schedule = optax.cosine_decay_schedule(config.learning_rate, config.num_steps)
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(schedule, momentum=config.momentum, nesterov=True),
    )


def init_state(model, tx, image_shape, seed: int) -> State:
    variables = model.init(jax.random.key(seed), jnp.zeros((1, *image_shape)), train=False)
    params = variables["params"]
    return {
        "params": params,
        "batch_stats": variables.get("batch_stats", {}),
        "opt_state": tx.init(params),
        "step": jnp.zeros((), jnp.int32),
    }


def loss_fn(params, batch_stats, batch, *, model, config, num_classes):
    """CE (with label smoothing) − λ_mi·MI + λ_hd·|ΔH|; returns (loss, new batch stats)."""
    (logits, features), updates = model.apply(
        {"params": params, "batch_stats": batch_stats},
        batch["image"],
        train=True,
        mutable=["batch_stats"],
    )
    targets = optax.smooth_labels(
        jax.nn.one_hot(batch["label"], num_classes), config.label_smoothing
    )
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    if config.mi_weight or config.hdr_weight:
        loss += it.losses.interplay_regularizer(
            features,
            batch["label"],
            models.head(params),
            mi_weight=config.mi_weight,
            hdr_weight=config.hdr_weight,
        )
    return loss, updates.get("batch_stats", {})


def train_step(state: State, batch, *, model, tx, config, num_classes) -> tuple[State, jax.Array]:
    grad_fn = jax.value_and_grad(
        functools.partial(loss_fn, model=model, config=config, num_classes=num_classes),
        has_aux=True,
    )
    (loss, batch_stats), grads = grad_fn(state["params"], state["batch_stats"], batch)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    return {
        "params": optax.apply_updates(state["params"], updates),
        "batch_stats": batch_stats,
        "opt_state": opt_state,
        "step": state["step"] + 1,
    }, loss


def classification_sums(logits, labels, mask) -> dict[str, jax.Array]:
    """Masked sums of the cross-entropy (`loss`) and of correct predictions (`correct`)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, -1) == labels).astype(mask.dtype)
    return {"loss": (ce * mask).sum(), "correct": (correct * mask).sum()}


def eval_step(state: State, batch, stats: scatter.ClassScatter, *, model, num_classes):
    """Sums for accuracy/loss, the class-scatter update and this batch's interplay."""
    logits, features = model.apply(
        {"params": state["params"], "batch_stats": state["batch_stats"]},
        batch["image"],
        train=False,
    )
    mask = batch["mask"].astype(jnp.float32)
    batch_r = it.interplay(features, batch["label"], models.head(state["params"]), mask)
    n = mask.sum()
    sums = {
        **classification_sums(logits, batch["label"], mask),
        "count": n,
        "batch_mir": batch_r.mir * n,
        "batch_hdr": batch_r.hdr * n,
    }
    return scatter.update(stats, features, batch["label"], mask), sums


class Trainer:
    """Jitted steps on a `data` mesh over the local devices."""

    def __init__(self, config: ml_collections.ConfigDict):
        num_devices = config.num_devices or jax.local_device_count()
        validate(config, num_devices)
        self.config = config
        self.spec = data.spec(config.dataset)
        self.model = models.get_model(config.model, self.spec.num_classes)
        self.tx = make_optimizer(config)
        mesh = jax.make_mesh(
            (num_devices,),
            ("data",),
            axis_types=(AxisType.Auto,),
            devices=jax.local_devices()[:num_devices],
        )
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self.sharded = NamedSharding(mesh, PartitionSpec("data"))
        kw = dict(model=self.model, num_classes=self.spec.num_classes)
        self.train_step = jax.jit(
            functools.partial(train_step, tx=self.tx, config=config, **kw),
            donate_argnums=0,
            out_shardings=self.replicated,
        )
        self.eval_step = jax.jit(functools.partial(eval_step, **kw), out_shardings=self.replicated)
        self.loss = jax.jit(functools.partial(loss_fn, config=config, **kw))

    def init_state(self) -> State:
        state = init_state(self.model, self.tx, self.spec.image_shape, self.config.seed)
        return jax.device_put(state, self.replicated)

    def put(self, batch: dict) -> dict:
        return jax.device_put(batch, self.sharded)

    def evaluate(self, state: State, eval_source) -> dict[str, float]:
        """Test loss/accuracy, whole-split interplay and batch-averaged interplay."""
        head = models.head(state["params"])
        stats = None
        totals = None
        for batch in pipeline.eval_batches(eval_source, self.spec, self.config.eval_batch_size):
            batch = self.put(batch)
            if stats is None:
                _, features = jax.eval_shape(
                    lambda s, x: self.model.apply(
                        {"params": s["params"], "batch_stats": s["batch_stats"]}, x
                    ),
                    state,
                    batch["image"],
                )
                stats = jax.device_put(
                    scatter.init(self.spec.num_classes, features.shape[-1]), self.replicated
                )
            stats, sums = self.eval_step(state, batch, stats)
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        r = scatter.measure(
            stats, head, method=self.config.interplay_method, key=jax.random.key(self.config.seed)
        )
        totals = jax.device_get(totals)
        n = totals["count"]
        out = {
            "eval/loss": totals["loss"] / n,
            "eval/accuracy": totals["correct"] / n,
            "eval/batch_mir": totals["batch_mir"] / n,
            "eval/batch_hdr": totals["batch_hdr"] / n,
        }
        out.update({f"eval/{k}": float(v) for k, v in r._asdict().items() if k != "h_joint"})
        return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains, evaluates and checkpoints; resumes from the latest checkpoint in `workdir`.

    Returns:
      The last metrics record.
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(config)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))
    state = trainer.init_state()
    mngr = checkpoints.manager(workdir / "checkpoints", max_to_keep=config.keep_checkpoints or None)
    start, meta = 0, {"elapsed": 0.0, "loss_sum": 0.0, "loss_count": 0}
    if mngr.latest_step() is not None:
        start = mngr.latest_step()
        state, meta = checkpoints.restore(mngr, start, state)
        assert meta["data_position"] == start
    writer = metrics.MetricWriter(workdir, resume_step=start)
    train_source = data.source(config.dataset, "train", config.data_dir)
    eval_source = data.source(config.dataset, "test", config.data_dir)
    data_seed = config.seed if config.data_seed < 0 else config.data_seed
    train_ds = pipeline.train_dataset(train_source, trainer.spec, config.batch_size, data_seed)
    batches = pipeline.train_iterator(train_ds, start)

    t0 = time.perf_counter() - meta["elapsed"]
    loss_sum, loss_count, pending = meta["loss_sum"], meta["loss_count"], []
    record = {}
    if start == 0:  # the dynamics start at initialization
        first = trainer.put(train_ds[0])
        loss0 = float(trainer.loss(state["params"], state["batch_stats"], first)[0])
        record = {"train/loss": loss0, **trainer.evaluate(state, eval_source)}
        writer.write(0, time.perf_counter() - t0, record)
    bar = tqdm(
        range(start, config.num_steps),
        initial=start,
        total=config.num_steps,
        desc=f"{config.dataset}/{config.model}",
        disable=jax.process_index() != 0,
    )
    try:
        for step in bar:
            state, loss = trainer.train_step(state, trainer.put(next(batches)))
            done = step + 1
            pending.append(loss)
            is_eval = done % config.eval_every == 0 or done == config.num_steps
            is_ckpt = done % config.checkpoint_every == 0 or done == config.num_steps
            if done % config.log_every == 0 or is_eval or is_ckpt:
                values = metrics.check_finite(jax.device_get(pending), done - len(pending) + 1)
                loss_sum, loss_count = loss_sum + float(values.sum()), loss_count + len(values)
                pending = []
                bar.set_postfix(loss=f"{values[-1]:.4f}")
            if is_eval:
                record = {
                    "train/loss": loss_sum / loss_count,
                    **trainer.evaluate(state, eval_source),
                }
                writer.write(done, time.perf_counter() - t0, record)
                loss_sum, loss_count = 0.0, 0
                bar.set_postfix(
                    loss=f"{values[-1]:.4f}",
                    acc=f"{record['eval/accuracy']:.3f}",
                    mir=f"{record['eval/mir']:.3f}",
                )
            if is_ckpt:
                checkpoints.save(
                    mngr,
                    done,
                    state,
                    {
                        "elapsed": time.perf_counter() - t0,
                        "data_position": done,
                        "loss_sum": loss_sum,
                        "loss_count": loss_count,
                    },
                )
    finally:
        batches.close()  # stops grain's prefetch threads
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
    records = metrics.read(workdir / "metrics.jsonl")
    plots.plot_dynamics(
        records,
        trainer.spec.num_classes,
        workdir / "dynamics.png",
        title=f"{config.dataset} / {config.model}",
    )
    return records[-1] if records else record


def summary(records: list[dict]) -> str:
    """A fixed-width table of the eval records."""
    keys = [
        "eval/accuracy",
        "eval/mir",
        "eval/hdr",
        "eval/h_features",
        "eval/h_heads",
        "eval/batch_mir",
        "eval/batch_hdr",
    ]
    head = f"{'step':>6} " + " ".join(f"{k.split('/')[1]:>11}" for k in keys)
    rows = [f"{r['step']:>6} " + " ".join(f"{r[k]:>11.4f}" for k in keys) for r in records]
    return "\n".join([head, *rows])


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    config, workdir = flags.FLAGS.config, flags.FLAGS.workdir
    if config is None or workdir is None:
        raise app.UsageError("--config and --workdir are required.")
    train_and_evaluate(config, workdir)
    records = metrics.read(pathlib.Path(workdir) / "metrics.jsonl")
    print(summary(records))
    c = data.spec(config.dataset).num_classes
    print(
        f"Neural-Collapse references: MIR {float(it.nc_mir(c)):.4f}, HDR 0, "
        f"H log(C−1) = {np.log(c - 1):.4f}"
    )
    print(f"plot: {pathlib.Path(workdir) / 'dynamics.png'}")


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", None, "Training configuration.")
    flags.DEFINE_string("workdir", None, "Directory for metrics, checkpoints and plots.")
    app.run(main)
