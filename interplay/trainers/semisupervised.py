"""Semi-supervised training (FixMatch, FreeMatch) with the interplay term on pseudo-labels.

    python -m interplay.trainers.semisupervised \
        --config interplay/trainers/configs/semisupervised.py:digits_40 --workdir DIR

The shared classifier parts (`classifier.parts`) with their own data, loss and
state: each step reads `batch_size` labeled and `mu·batch_size` unlabeled
examples, makes their weak and strong views on the device
(`classifier.augment`, keyed by (seed, step)), and minimizes, as USB does,

    CE(labeled) + λ_u · mean_b mask_b · CE(strong_b, ŷ_b) [+ λ_f · L_f for FreeMatch]
    − λ_mi · MI + λ_hd · |ΔH|

with `ŷ_b` the hard pseudo-label of the weak view, `mask_b` FixMatch's or
FreeMatch's (`interplay.trainers.classifier.pseudo_labels`; FreeMatch's thresholds are part of the
state and of its checkpoints), and the interplay term (`interplay.infotheory.losses.
interplay_regularizer`) between the kept weak-view features and the head
vectors of their pseudo-labels. `algorithm="supervised"` reads the labeled
batch only (the floor); the interplay term then uses its true labels.

The split: `num_validation_per_class` examples of each class are drawn with
`validation_seed` and used in neither pool; `num_labels_per_class` of each
class are drawn from the rest with `label_seed`; everything else is unlabeled
(true labels kept for logging only). Both lists are written to
`DIR/split.json`. Every eval logs `eval/...` (test split), `eval_val/...`
(validation) and `eval_unlabeled/...` (the first `num_eval_unlabeled`
unlabeled examples, against their true labels), each with the exact
whole-split interplay; train rows log the mask rate, the pseudo-label accuracy
on the kept samples and the thresholds. `DIR/dynamics.png` plots them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from interplay import infotheory as it
from interplay import models
from interplay.trainers import configs, data
from interplay.trainers.classifier import augment, parts, pseudo_labels
from interplay.trainers.configs import semisupervised as semisupervised_config
from interplay.trainers.core import cli, distributed, logs, loop, plots
from interplay.trainers.core.state import TrainState
from interplay.trainers.data import pipeline


@dataclasses.dataclass(frozen=True)
class Split:
    """Indices into the train split: labeled, validation and unlabeled pools."""

    labeled: np.ndarray
    validation: np.ndarray
    unlabeled: np.ndarray


def split_train(labels: np.ndarray, num_classes: int, config: ml_collections.ConfigDict) -> Split:
    """The balanced labeled pool, the validation pool and the unlabeled rest (module docstring).

    Raises:
      ValueError: a class has fewer than `num_validation_per_class +
        num_labels_per_class` examples.
    """
    counts = np.bincount(labels, minlength=num_classes)
    need = config.num_validation_per_class + config.num_labels_per_class
    if counts.min() < need:
        c = int(counts.argmin())
        raise ValueError(
            f"config.num_labels_per_class={config.num_labels_per_class} (with "
            f"num_validation_per_class={config.num_validation_per_class}) needs {need} examples "
            f"per class, but class {c} has {counts[c]} in the train split."
        )

    def draw(pool: np.ndarray, per_class: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        picked = [
            rng.choice(pool[labels[pool] == c], per_class, replace=False)
            for c in range(num_classes)
        ]
        return np.sort(np.concatenate(picked)).astype(np.int64)

    everything = np.arange(len(labels))
    validation = draw(everything, config.num_validation_per_class, config.validation_seed)
    rest = np.setdiff1d(everything, validation)
    label_seed = config.seed if config.label_seed is None else config.label_seed
    labeled = draw(rest, config.num_labels_per_class, label_seed)
    return Split(labeled, validation, np.setdiff1d(rest, labeled))


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    algorithms = semisupervised_config.ALGORITHMS
    if config.algorithm not in algorithms:
        raise ValueError(
            f"config.algorithm must be one of {', '.join(algorithms)}, got {config.algorithm!r}."
        )
    weights = ("unlabeled_weight", "fairness_weight", "mi_weight", "hdr_weight")
    parts.check_common(config, weights)
    if not (isinstance(config.mu, int) and config.mu >= 1):
        raise ValueError(f"config.mu must be an integer ≥ 1, got {config.mu}.")
    if config.randaugment not in augment.VARIANTS:
        raise ValueError(
            f"config.randaugment must be one of {', '.join(augment.VARIANTS)}, "
            f"got {config.randaugment!r}."
        )
    for key in ("threshold", "ema_decay"):
        if not 0 < config[key] < 1:
            raise ValueError(f"config.{key} must be in (0, 1), got {config[key]}.")
    for key in ("num_labels_per_class", "num_eval_unlabeled"):
        if not config[key] >= 1:
            raise ValueError(f"config.{key} must be ≥ 1, got {config[key]}.")
    configs.check_non_negative(config, ("num_validation_per_class",))


@struct.dataclass
class SemiSupervisedState(TrainState):
    """`TrainState` plus FreeMatch's thresholds (checkpointed with it; unused by the others)."""

    thresholds: pseudo_labels.Thresholds | None = None


def _interplay_term(features, labels, head, config, mask=None):
    """`−mi_weight·MI + hdr_weight·|ΔH|` of `features` vs `head[labels]`; 0 when unweighted."""
    if not (config.mi_weight or config.hdr_weight):
        return 0.0
    return it.losses.interplay_regularizer(
        features,
        labels,
        head,
        mi_weight=config.mi_weight,
        hdr_weight=config.hdr_weight,
        mask=mask,
    )


def unlabeled_loss(weak_logits, strong_logits, weak_features, head, thresholds, config):
    """The unlabeled batch's part of the loss (module docstring) and what it decided.

    Args:
      weak_logits, strong_logits: `(m, C)` logits of the two views.
      weak_features: `(m, d)` features of the weak view.
      head: `(C, d)` head vectors.
      thresholds: FreeMatch's state before this batch.
      config: the run's config (algorithm, weights, threshold, ema_decay).

    Returns:
      `(loss, thresholds, mask, pseudo_labels, logged)`: the thresholds after this
      batch (unchanged for FixMatch), the 0/1 `mask` of kept samples, their hard
      pseudo-labels and the thresholds to log.
    """
    probs = jax.nn.softmax(jax.lax.stop_gradient(weak_logits))
    pseudo = jnp.argmax(probs, -1)
    if config.algorithm == "freematch":
        thresholds = thresholds.update(probs, config.ema_decay)
        mask = pseudo_labels.freematch_mask(thresholds, probs)
        logged = {
            "global_threshold": thresholds.global_threshold,
            "local_threshold": thresholds.local_thresholds.mean(),
        }
    else:
        mask = pseudo_labels.fixmatch_mask(probs, config.threshold)
        logged = dict.fromkeys(("global_threshold", "local_threshold"), config.threshold)
    consistency = optax.softmax_cross_entropy_with_integer_labels(strong_logits, pseudo)
    logged["unsupervised_loss"] = (consistency * mask).mean()
    loss = config.unlabeled_weight * logged["unsupervised_loss"]
    if config.algorithm == "freematch":
        loss += config.fairness_weight * pseudo_labels.fairness_loss(
            thresholds, strong_logits, mask
        )
    loss += _interplay_term(weak_features, pseudo, head, config, mask)
    return loss, thresholds, mask, pseudo, logged


def loss_fn(params, state: SemiSupervisedState, batch, *, model, config, seed, flip):
    """The loss of the module docstring; returns `(loss, (batch_stats, thresholds, logged))`."""
    labeled, unlabeled = batch["labeled"], batch["unlabeled"]
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), state.step), 3)
    semi = config.algorithm != "supervised"
    views = [augment.weak(keys[0], labeled["image"], flip=flip)]
    if semi:
        views += [
            augment.weak(keys[1], unlabeled["image"], flip=flip),
            augment.strong(keys[2], unlabeled["image"], flip=flip, ops=config.randaugment),
        ]
    (logits, features), updates = model.apply(
        {"params": params, "batch_stats": state.batch_stats},
        jnp.concatenate(views),
        train=True,
        mutable=["batch_stats"],
    )
    batch_stats, head = updates.get("batch_stats", {}), models.head(params)
    n = labeled["label"].shape[0]
    supervised_loss = optax.softmax_cross_entropy_with_integer_labels(
        logits[:n], labeled["label"]
    ).mean()
    logged = {"supervised_loss": supervised_loss}
    if not semi:
        loss = supervised_loss + _interplay_term(features[:n], labeled["label"], head, config)
        return loss, (batch_stats, state.thresholds, logged)
    m = unlabeled["label"].shape[0]
    loss, thresholds, mask, pseudo, more = unlabeled_loss(
        logits[n : n + m], logits[n + m :], features[n : n + m], head, state.thresholds, config
    )
    logged.update(
        more,
        mask_rate=mask.mean(),
        pseudo_kept=mask.sum(),
        pseudo_correct=(mask * (pseudo == unlabeled["label"])).sum(),
    )
    return supervised_loss + loss, (batch_stats, thresholds, logged)


def train_step(state: SemiSupervisedState, batch, *, loss_fn) -> tuple[SemiSupervisedState, dict]:
    """One gradient step; the thresholds move with the batch (not with the gradient)."""
    (loss, (batch_stats, thresholds, logged)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state, batch
    )
    state, norms = state.apply_gradients(grads, batch_stats)
    return state.replace(thresholds=thresholds), {"loss": loss, **norms, **logged}


def learning_rate_schedule(config) -> optax.Schedule:
    """USB's `lr · cos(7πk / 16K)`: from `learning_rate` down to 0.2·`learning_rate`."""
    return lambda k: config.learning_rate * jnp.cos(7 * jnp.pi * k / (16 * config.num_steps))


def train_dataset(classifier: parts.Classifier, split: Split):
    """`ds[step]` = `{"labeled": B examples, "unlabeled": mu·B examples}`, un-augmented."""
    c, source = classifier.config, classifier.source("train")
    spec = dataclasses.replace(classifier.spec, augment=False)  # the views are made on the device
    labeled, unlabeled = (
        pipeline.train_dataset(pipeline.subset(source, pool), spec, size, seed, distributed.shard())
        for pool, size, seed in (
            (split.labeled, c.batch_size, classifier.data_seed),
            (split.unlabeled, c.mu * c.batch_size, classifier.data_seed + 1),
        )
    )
    length = slice(0, min(len(labeled), len(unlabeled)))
    pair = grain.experimental.ZipMapDataset([labeled.slice(length), unlabeled.slice(length)])
    return pair.map(lambda p: {"labeled": p[0], "unlabeled": p[1]})


def split_evaluators(classifier: parts.Classifier, split: Split, sharding=None) -> dict:
    """`eval/` (test), `eval_val/` (validation, if any), `eval_unlabeled/` (true labels)."""
    source = classifier.source("train")
    splits = classifier.test_evaluators(sharding)
    if len(split.validation):
        splits["eval_val"] = classifier.evaluator(
            pipeline.subset(source, split.validation), sharding
        )
    measured = split.unlabeled[: classifier.config.num_eval_unlabeled]
    splits["eval_unlabeled"] = classifier.evaluator(pipeline.subset(source, measured), sharding)
    return splits


def make_step(classifier: parts.Classifier):
    """`(state, batch) → (state, metrics)`: one step of `loss_fn` with this run's settings."""
    loss = functools.partial(
        loss_fn,
        model=classifier.model,
        config=classifier.config,
        seed=classifier.data_seed,
        flip=classifier.spec.augment,
    )
    return functools.partial(train_step, loss_fn=loss)


def init_state(classifier: parts.Classifier) -> SemiSupervisedState:
    """The state at step 0: the classifier's variables, SGD, FreeMatch's initial thresholds."""
    config = classifier.config
    tx = parts.make_optimizer(config, learning_rate_schedule(config))
    state = SemiSupervisedState.create(classifier.initial_variables(), tx, config.ema_momentum)
    return state.replace(thresholds=pseudo_labels.Thresholds.create(classifier.num_classes))


def plot(records: list[dict], workdir: pathlib.Path, num_classes: int, title: str) -> None:
    """Accuracies, pseudo-label statistics, MIR and HDR against step (`dynamics.png`)."""
    panels = [
        ("accuracy", ["eval/accuracy", "eval_val/accuracy", "eval_unlabeled/accuracy"], []),
        (
            "pseudo-labels",
            [
                "train/mask_rate",
                "train/pseudo_accuracy",
                "train/global_threshold",
                "train/local_threshold",
            ],
            [],
        ),
        ("MIR", ["eval/mir", "eval_unlabeled/mir"], [float(it.nc_mir(num_classes))]),
        ("HDR", ["eval/hdr", "eval_unlabeled/hdr"], [0.0]),
    ]
    plots.plot_panels(records, "step", panels, workdir / "dynamics.png", title=title)


def experiment(config: ml_collections.ConfigDict, split: Split) -> loop.Experiment:
    """The semi-supervised `Experiment`: the classifier's mesh experiment with this module's
    state, step, data and evaluators, its train rows given the window's pseudo-label accuracy.

    `train/pseudo_accuracy` = correct / kept pseudo-labels summed over the steps of
    the row (NaN when no sample was kept in them). `split.json` (the labeled and
    validation indices) is written into the workdir.
    """
    classifier = parts.Classifier.create(config)
    name = f"{config.dataset}/{config.algorithm}"
    pools = {k: v.tolist() for k, v in dataclasses.asdict(split).items() if k != "unlabeled"}
    base = parts.experiment(
        classifier,
        name=name,
        init=lambda: init_state(classifier),
        step=make_step(classifier),
        train_dataset=train_dataset(classifier, split),
        evaluators=lambda sharding: split_evaluators(classifier, split, sharding),
        schedule=learning_rate_schedule(config),
        plot=lambda records, workdir: plot(records, workdir, classifier.num_classes, name),
        files={"split.json": json.dumps(pools)},
    )

    def train(state, first: int, num_steps: int):
        state, rows = base.train(state, first, num_steps)
        if "pseudo_kept" in rows:
            kept, correct = rows.pop("pseudo_kept").sum(), rows.pop("pseudo_correct").sum()
            accuracy = jnp.where(kept > 0, correct / jnp.maximum(kept, 1), jnp.nan)
            rows["pseudo_accuracy"] = jnp.full(num_steps, accuracy)
        return state, rows

    return dataclasses.replace(base, train=train)


#: Final eval keys of a sweep's table (`core.trainer.Trainer`).
SWEEP_KEYS = (
    "eval/accuracy",
    "eval_val/accuracy",
    "eval_unlabeled/accuracy",
    "eval/mir",
    "eval/hdr",
    "eval_unlabeled/mir",
    "eval_unlabeled/hdr",
)

#: Columns of the summary table and what each holds.
COLUMNS = {
    "accuracy": "test accuracy",
    "val_accuracy": "validation accuracy (carved out of the train split)",
    "mask_rate": "fraction of unlabeled samples kept, mean since the previous row",
    "pseudo_accuracy": "accuracy of the kept pseudo-labels since the previous row",
    "mir": "MIR of test features vs head, exact over the whole test split",
    "hdr": "HDR, the same",
    "unlabeled_mir": "MIR of the measured unlabeled features (true labels)",
    "unlabeled_hdr": "HDR, the same",
}
_KEYS = {
    "val_accuracy": "eval_val/accuracy",
    "mask_rate": "train/mask_rate",
    "pseudo_accuracy": "train/pseudo_accuracy",
    "unlabeled_mir": "eval_unlabeled/mir",
    "unlabeled_hdr": "eval_unlabeled/hdr",
}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Checks the config, splits the train split, trains, evaluates and checkpoints; resumes.

    Returns:
      The last eval record.
    """
    validate(config)
    spec = data.spec(config.dataset)
    source = data.source(config.dataset, "train", config.data_dir, fake=config.fake_data)
    labels = np.array([source[i]["label"] for i in range(len(source))])
    split = split_train(labels, spec.num_classes, config)
    [records] = loop.run(
        experiment(config, split), config, workdir, semisupervised_config.RESUMABLE
    )
    return logs.evals(records)[-1]


def summary(records: list[dict]) -> str:
    """A fixed-width table of the eval records, then the legend of its columns."""
    return logs.summary(records, COLUMNS, _KEYS)


def main(argv) -> None:
    del argv
    _, workdir = cli.train_and_summarize(train_and_evaluate, summary)
    print(
        f"written to {workdir}/: metrics.jsonl, tensorboard/, checkpoints/ (Orbax), "
        "dynamics.png, split.json (labeled and validation indices), config.json"
    )


if __name__ == "__main__":
    cli.define_config_flags(semisupervised_config)
    cli.run(main)
