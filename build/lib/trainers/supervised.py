"""Supervised training that measures (and optionally shapes) the interplay of features and head.

    python -m trainers.supervised --config trainers/configs/supervised.py:digits --workdir DIR

Every `eval_every` steps (`trainers.evaluators`): test accuracy and loss, the
exact whole-split interplay of test features against the head, the papers'
batch-averaged values and NC1–NC4, written to `DIR/metrics.jsonl` and
TensorBoard beside the training metrics of every `log_every` steps. Orbax
checkpoints in `DIR/checkpoints/`; restarting with the same workdir resumes.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import flags, logging
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import infotheory as it
import models
from trainers import cli, data, distributed, evaluators, loop, metrics, plots
from trainers.configs import supervised as supervised_config
from trainers.data import pipeline
from trainers.state import TrainState, train_step

#: Columns of the summary table and what each holds.
COLUMNS = {
    "accuracy": "test accuracy",
    "mir": "MIR of test features vs head, exact over the whole test split",
    "hdr": "HDR, the same",
    "h_features": "H(G(Z)) of the whole test split's features (nats)",
    "h_heads": "H(G(W_Y)) of their labels' head vectors (nats)",
    "batch_mir": "MIR averaged over test batches of eval_batch_size: the papers' stand-in",
    "batch_hdr": "HDR averaged over test batches",
}


def check_common(config: ml_collections.ConfigDict, non_negative: tuple[str, ...]) -> None:
    """Raises `ValueError` naming the first bad value among the fields every classifier
    trainer has (dataset, model, cadence, optimizer, eval, devices) or in `non_negative`."""
    data.spec(config.dataset)
    models.get_model(config.model, 2)
    positive = ("batch_size", "eval_batch_size", "num_steps", "eval_every", "checkpoint_every")
    for key in (*positive, "log_every", "learning_rate"):
        if not config[key] > 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}.")
    for key in ("weight_decay", "momentum", *non_negative):
        if config[key] < 0:
            raise ValueError(f"config.{key} must be non-negative, got {config[key]}.")
    if config.keep_checkpoints is not None and config.keep_checkpoints < 1:
        raise ValueError(
            f"config.keep_checkpoints must be ≥ 1 or None, got {config.keep_checkpoints}."
        )
    if config.interplay_method not in ("auto", "exact", "lanczos"):
        raise ValueError(
            f"config.interplay_method must be auto|exact|lanczos, got {config.interplay_method!r}."
        )
    available = jax.device_count()
    if config.num_devices is not None and not 1 <= config.num_devices <= available:
        raise ValueError(
            f"config.num_devices={config.num_devices}, but there are {available} devices."
        )
    if jax.process_count() > 1 and config.num_devices not in (None, available):
        raise ValueError(
            f"config.num_devices={config.num_devices}: with {jax.process_count()} processes the "
            f"mesh holds all {available} devices (leave num_devices unset)."
        )
    num_devices = config.num_devices or available
    for key in ("batch_size", "eval_batch_size"):
        if config[key] % num_devices:
            raise ValueError(
                f"config.{key}={config[key]} is not divisible by the "
                f"{num_devices} devices of the data mesh."
            )


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    check_common(config, ("mi_weight", "hdr_weight"))
    if not config.temperature > 0:
        raise ValueError(f"config.temperature must be positive, got {config.temperature}.")
    if not 0 <= config.label_smoothing < 1:
        raise ValueError(f"config.label_smoothing must be in [0, 1), got {config.label_smoothing}.")


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with Nesterov momentum and coupled weight decay at the learning rates of `schedule`."""
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(schedule, momentum=config.momentum, nesterov=True),
    )


def loss_fn(params, state: TrainState, batch, *, model, config, num_classes):
    """CE of `logits / τ` (label-smoothed) − λ_mi·MI + λ_hd·|ΔH|; returns (loss, batch stats)."""
    (logits, features), updates = model.apply(
        {"params": params, "batch_stats": state.batch_stats},
        batch["image"],
        train=True,
        mutable=["batch_stats"],
    )
    targets = optax.smooth_labels(
        jax.nn.one_hot(batch["label"], num_classes), config.label_smoothing
    )
    loss = optax.softmax_cross_entropy(logits / config.temperature, targets).mean()
    if config.mi_weight or config.hdr_weight:
        loss += it.losses.interplay_regularizer(
            features,
            batch["label"],
            models.head(params),
            mi_weight=config.mi_weight,
            hdr_weight=config.hdr_weight,
        )
    return loss, updates.get("batch_stats", {})


class Run:
    """A supervised run's static parts: dataset, model, optimizer, loss, data and eval.

    `experiment` turns any `Run` into the shared loop's `Experiment`; a trainer
    that differs (e.g. `trainers.semisupervised`) subclasses it and overrides
    the parts that differ: `learning_rate_schedule`, `init`, `step`, `train_dataset`,
    `evaluators`, `plot`.
    """

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.spec = data.spec(config.dataset)
        self.model = models.get_model(config.model, self.spec.num_classes)
        self.schedule = self.learning_rate_schedule()
        self.tx = make_optimizer(config, self.schedule)
        self.loss = functools.partial(
            loss_fn, model=self.model, config=config, num_classes=self.spec.num_classes
        )
        self.step = functools.partial(train_step, loss_fn=self.loss)

    @property
    def name(self) -> str:
        return f"{self.config.dataset}/{self.config.model}"

    def learning_rate_schedule(self) -> optax.Schedule:
        """Cosine decay from `learning_rate` to 0 over `num_steps`."""
        return optax.cosine_decay_schedule(self.config.learning_rate, self.config.num_steps)

    def initial_variables(self) -> dict:
        """`model.init` at `config.seed`."""
        image = jnp.zeros((1, *self.spec.image_shape))
        return self.model.init(jax.random.key(self.config.seed), image, train=False)

    def init(self) -> TrainState:
        return TrainState.create(self.initial_variables(), self.tx)

    def source(self, split: str):
        c = self.config
        return data.source(c.dataset, split, c.data_dir, fake=c.fake_data)

    @property
    def data_seed(self) -> int:
        c = self.config
        return c.seed if c.data_seed is None else c.data_seed

    def train_dataset(self):
        """Training batches: `ds[step]` is the host batch of that step."""
        c = self.config
        return pipeline.train_dataset(
            self.source("train"), self.spec, c.batch_size, self.data_seed, distributed.shard()
        )

    def evaluator(self, source, sharding=None) -> evaluators.Evaluator:
        """The eval of this run on `source`, placed with `sharding`, with its eval settings."""
        c = self.config
        batches = pipeline.eval_batches(source, self.spec, c.eval_batch_size)
        return evaluators.Evaluator(
            self.model,
            [jax.device_put(b, sharding) for b in batches],
            self.spec.num_classes,
            c.interplay_method,
            c.seed,
        )

    def evaluators(self, sharding=None) -> dict[str, evaluators.Evaluator]:
        """Key prefix → evaluator: `eval/...` on the test split."""
        return {"eval": self.evaluator(self.source("test"), sharding)}

    def plot(self, records: list[dict], workdir: pathlib.Path) -> None:
        plots.plot_dynamics(
            metrics.evals(records),
            self.spec.num_classes,
            workdir / "dynamics.png",
            title=self.name,
        )


def experiment(run: Run) -> loop.Experiment:
    """`run` as the shared loop's `Experiment`: jitted steps on a `data` mesh over the devices
    of every process (`trainers.distributed`), each process feeding its rows of a batch."""
    config = run.config
    num_devices = config.num_devices or jax.device_count()
    mesh = jax.make_mesh(
        (num_devices,),
        ("data",),
        axis_types=(AxisType.Auto,),
        devices=jax.devices()[:num_devices],
    )
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec("data"))
    step = jax.jit(run.step, donate_argnums=0, out_shardings=replicated)
    train_ds = run.train_dataset()
    batches = []
    splits = run.evaluators(sharded)

    def train(state: TrainState, first: int, num_steps: int):
        if not batches:  # the data position is the step
            batches.append(pipeline.train_iterator(train_ds, first))
        rows = []
        for _ in range(num_steps):
            state, row = step(state, distributed.put_local(next(batches[0]), sharded))
            rows.append(row)
        return state, jax.tree.map(lambda *xs: jnp.stack(xs), *rows)

    def evaluate(state: TrainState) -> dict[str, float]:
        return {
            f"{prefix}/{k}": v
            for prefix, evaluator in splits.items()
            for k, v in evaluator.evaluate_one(state.variables).items()
        }

    return loop.Experiment(
        name=run.name,
        init=lambda: jax.device_put(run.init(), replicated),
        train=train,
        evaluate=evaluate,
        learning_rate=run.schedule,
        plot=run.plot,
        close=lambda: [b.close() for b in batches],  # stops grain's prefetch threads
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains, evaluates and checkpoints; resumes from the latest checkpoint in `workdir`.

    Returns:
      The last eval record.
    """
    validate(config)
    run = Run(config)
    train_size = len(run.source("train"))
    if config.batch_size > train_size:
        raise ValueError(
            f"config.batch_size={config.batch_size} exceeds the {train_size} training examples."
        )
    records = loop.run(experiment(run), config, workdir, supervised_config.RESUMABLE)
    return metrics.evals(records)[-1]


def summary(records: list[dict], columns: dict[str, str] = COLUMNS, keys=None) -> str:
    """A fixed-width table of the eval records, then the legend of its `columns`.

    Column `k` shows `keys[k]`, by default `eval/k`; a value a row lacks shows as NaN.
    """
    keys = {k: (keys or {}).get(k, f"eval/{k}") for k in columns}
    rows = metrics.evals(records)
    head = f"{'step':>6} " + " ".join(f"{k:>11}" for k in columns)
    lines = [
        f"{r['step']:>6d} " + " ".join(f"{r.get(keys[k], np.nan):>11.4f}" for k in columns)
        for r in rows
    ]
    legend = [f"  {k:>11}: {v}" for k, v in columns.items()]
    return "\n".join([head, *lines, "", *legend])


def train_and_summarize(
    train_and_evaluate, summary
) -> tuple[ml_collections.ConfigDict, pathlib.Path]:
    """An entry point's work: trains `--config` in `--workdir`, prints `summary` of its records."""
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    config, workdir = flags.FLAGS.config, pathlib.Path(flags.FLAGS.workdir)
    train_and_evaluate(config, workdir)
    print(summary(metrics.read(workdir / "metrics.jsonl")))
    return config, workdir


def main(argv) -> None:
    del argv
    config, workdir = train_and_summarize(train_and_evaluate, summary)
    c = data.spec(config.dataset).num_classes
    print(
        f"Neural-Collapse references: MIR {float(it.nc_mir(c)):.4f}, HDR 0, "
        f"H log(C−1) = {np.log(c - 1):.4f}"
    )
    print(
        f"written to {workdir}/: metrics.jsonl (every row), tensorboard/ (tensorboard --logdir "
        f"{workdir / 'tensorboard'}), checkpoints/ (Orbax; python -m trainers.analyze --workdir "
        f"{workdir}), dynamics.png, config.json"
    )


if __name__ == "__main__":
    cli.define_config_flags(supervised_config)
    cli.run(main)
