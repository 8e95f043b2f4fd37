"""What the image-classifier trainers and the checkpoint analysis share.

`Classifier` holds a run's static parts (config, dataset spec, model) and builds
its data, state and evaluators; `make_optimizer` and `loss_fn` are the papers'
SGD and loss; `experiment` places any classifier step on the data mesh as the
shared loop's `Experiment`; `supervised_experiment` composes them into plain
supervised training (the supervised trainer, the cross-modal encoder).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from interplay import infotheory as it
from interplay import models
from interplay.trainers import configs, data
from interplay.trainers.classifier import evaluators
from interplay.trainers.core import distributed, logs, loop, plots
from interplay.trainers.core.state import TrainState, train_step
from interplay.trainers.data import pipeline


def check_common(config: ml_collections.ConfigDict, non_negative: tuple[str, ...]) -> None:
    """Raises `ValueError` naming the first bad value among the fields every classifier
    trainer has (dataset, model, cadence, optimizer, eval, devices) or in `non_negative`."""
    model(config, data.spec(config.dataset))
    positive = ("batch_size", "eval_batch_size", "num_steps", "eval_every", "checkpoint_every")
    configs.check_positive(config, (*positive, "log_every", "learning_rate"))
    configs.check_non_negative(config, ("weight_decay", "momentum", *non_negative))
    if not 0 <= config.ema_momentum < 1:
        raise ValueError(f"config.ema_momentum must be in [0, 1), got {config.ema_momentum}.")
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


def model(config: ml_collections.ConfigDict, spec: data.DatasetSpec) -> nn.Module:
    """`config.model` for `spec`'s classes with the config's BatchNorm momentum and layer
    style, standardizing its inputs by `spec`'s mean and std if `config.normalize_inputs`."""
    return models.get_model(
        config.model,
        spec.num_classes,
        bn_momentum=config.bn_momentum,
        style=config.model_style,
        input_stats=(spec.mean, spec.std) if config.normalize_inputs else None,
    )


def decay_mask(params) -> dict:
    """True on the parameters that weight decay reaches: those of two or more dimensions
    (kernels), not the 1-D ones (biases, BatchNorm scales and offsets), as USB decays."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with Nesterov momentum and coupled weight decay at the learning rates of `schedule`,
    the decay on every parameter (`config.decay_every_param`) or on `decay_mask`'s."""
    mask = None if config.decay_every_param else decay_mask
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay, mask=mask),
        optax.sgd(schedule, momentum=config.momentum, nesterov=True),
    )


def cosine_schedule(config) -> optax.Schedule:
    """Cosine decay from `learning_rate` to 0 over `num_steps`."""
    return optax.cosine_decay_schedule(config.learning_rate, config.num_steps)


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


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A classifier run's static parts: its config, dataset spec and model."""

    config: ml_collections.ConfigDict
    spec: data.DatasetSpec
    model: nn.Module

    @classmethod
    def create(cls, config: ml_collections.ConfigDict) -> Classifier:
        spec = data.spec(config.dataset)
        return cls(config, spec, model(config, spec))

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def data_seed(self) -> int:
        c = self.config
        return c.seed if c.data_seed is None else c.data_seed

    @property
    def loss(self) -> Callable:
        """`loss_fn` of this model and config."""
        return functools.partial(
            loss_fn, model=self.model, config=self.config, num_classes=self.num_classes
        )

    def source(self, split: str):
        c = self.config
        return data.source(c.dataset, split, c.data_dir, fake=c.fake_data)

    def initial_variables(self) -> dict:
        """`model.init` at `config.seed`."""
        image = jnp.zeros((1, *self.spec.image_shape))
        return self.model.init(jax.random.key(self.config.seed), image, train=False)

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
            self.num_classes,
            c.interplay_method,
            c.seed,
        )

    def test_evaluators(self, sharding=None) -> dict[str, evaluators.Evaluator]:
        """Key prefix → evaluator: `eval/...` on the test split."""
        return {"eval": self.evaluator(self.source("test"), sharding)}

    def plot(self, records: list[dict], workdir: pathlib.Path, title: str) -> None:
        """The dynamics figure (`dynamics.png`) of the eval records."""
        plots.plot_dynamics(
            logs.evals(records), self.num_classes, workdir / "dynamics.png", title=title
        )


def experiment(
    classifier: Classifier,
    *,
    name: str,
    init: Callable[[], TrainState],
    step: Callable,
    train_dataset,
    evaluators: Callable[[NamedSharding], Mapping[str, evaluators.Evaluator]],
    schedule: optax.Schedule,
    plot: Callable[[list[dict], pathlib.Path], None],
    files: Mapping[str, str] | None = None,
) -> loop.Experiment:
    """A classifier `step` as the shared loop's `Experiment`: jitted on a `data` mesh over the
    devices of every process (`core.distributed`), each process feeding its rows of a batch.

    Args:
      classifier: the run's static parts (its config sets the devices).
      name: label of the progress bar.
      init: the state at step 0.
      step: `(state, batch) → (state, metrics)`.
      train_dataset: `ds[step]` is the host batch of that step.
      evaluators: `sharding → {prefix: Evaluator}`; each writes `prefix/...` values.
      schedule: the learning rate by step.
      plot: `(records, workdir)`, called at the end.
      files: `{name: text}` written into the workdir.
    """
    config = classifier.config
    num_devices = config.num_devices or jax.device_count()
    mesh = jax.make_mesh(
        (num_devices,),
        ("data",),
        axis_types=(AxisType.Auto,),
        devices=jax.devices()[:num_devices],
    )
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec("data"))
    jitted = jax.jit(step, donate_argnums=0, out_shardings=replicated)
    batches = []
    splits = evaluators(sharded)

    def train(state: TrainState, first: int, num_steps: int):
        if not batches:  # the data position is the step
            batches.append(pipeline.train_iterator(train_dataset, first))
        rows = []
        for _ in range(num_steps):
            state, row = jitted(state, distributed.put_local(next(batches[0]), sharded))
            rows.append(row)
        return state, jax.tree.map(lambda *xs: jnp.stack(xs), *rows)

    def evaluate(state: TrainState) -> dict[str, float]:
        return {
            f"{prefix}/{k}": v
            for prefix, evaluator in splits.items()
            for k, v in evaluator.evaluate(state.eval_variables).items()
        }

    return loop.Experiment(
        name=name,
        init=lambda: jax.device_put(init(), replicated),
        train=train,
        evaluate=evaluate,
        learning_rate=schedule,
        plot=plot,
        close=lambda: [b.close() for b in batches],  # stops grain's prefetch threads
        files=files or {},
    )


def supervised_state(classifier: Classifier) -> TrainState:
    """The supervised trainer's state at step 0 (also the analysis' restore target)."""
    config = classifier.config
    tx = make_optimizer(config, cosine_schedule(config))
    return TrainState.create(classifier.initial_variables(), tx, config.ema_momentum)


def supervised_experiment(config: ml_collections.ConfigDict) -> loop.Experiment:
    """Plain supervised training of `config`'s classifier with `loss_fn` on the test eval."""
    classifier = Classifier.create(config)
    name = f"{config.dataset}/{config.model}"
    return experiment(
        classifier,
        name=name,
        init=lambda: supervised_state(classifier),
        step=functools.partial(train_step, loss_fn=classifier.loss),
        train_dataset=classifier.train_dataset(),
        evaluators=classifier.test_evaluators,
        schedule=cosine_schedule(config),
        plot=lambda records, workdir: classifier.plot(records, workdir, name),
    )
