"""Supervised training that measures (and optionally shapes) the interplay of features and head.

    python -m interplay.trainers.supervised \
        --config interplay/trainers/configs/supervised.py:digits --workdir DIR

Every `eval_every` steps (`classifier.evaluators`): test accuracy and loss,
the exact whole-split interplay of test features against the head, the
papers' batch-averaged values and NC1–NC4, written to `DIR/metrics.jsonl` and
TensorBoard beside the training metrics of every `log_every` steps. Orbax
checkpoints in `DIR/checkpoints/`; restarting with the same workdir resumes.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from interplay import infotheory as it
from interplay.trainers import data
from interplay.trainers.classifier import parts
from interplay.trainers.configs import supervised as supervised_config
from interplay.trainers.core import cli, logs, loop

#: Final eval keys of a sweep's table (`core.trainer.Trainer`).
SWEEP_KEYS = (
    "eval/accuracy",
    "eval/mir",
    "eval/hdr",
    "eval/h_features",
    "eval/h_heads",
    "eval/silhouette",
    "eval/davies_bouldin",
)

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


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    parts.check_common(config, ("mi_weight", "hdr_weight"))
    if not config.temperature > 0:
        raise ValueError(f"config.temperature must be positive, got {config.temperature}.")
    if not 0 <= config.label_smoothing < 1:
        raise ValueError(f"config.label_smoothing must be in [0, 1), got {config.label_smoothing}.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains, evaluates and checkpoints; resumes from the latest checkpoint in `workdir`.

    Returns:
      The last eval record.
    """
    validate(config)
    train_size = len(parts.Classifier.create(config).source("train"))
    if config.batch_size > train_size:
        raise ValueError(
            f"config.batch_size={config.batch_size} exceeds the {train_size} training examples."
        )
    experiment = parts.supervised_experiment(config)
    [records] = loop.run(experiment, config, workdir, supervised_config.RESUMABLE)
    return logs.evals(records)[-1]


def summary(records: list[dict]) -> str:
    """The eval records as a table of `COLUMNS`, then its legend."""
    return logs.summary(records, COLUMNS)


def main(argv) -> None:
    del argv
    config, workdir = cli.train_and_summarize(train_and_evaluate, summary)
    c = data.spec(config.dataset).num_classes
    print(
        f"Neural-Collapse references: MIR {float(it.nc_mir(c)):.4f}, HDR 0, "
        f"H log(C−1) = {np.log(c - 1):.4f}"
    )
    print(
        f"written to {workdir}/: metrics.jsonl (every row), tensorboard/ (tensorboard --logdir "
        f"{workdir / 'tensorboard'}), checkpoints/ (Orbax; python -m interplay.trainers.analyze "
        f"--workdir {workdir}), dynamics.png, config.json"
    )


if __name__ == "__main__":
    cli.define_config_flags(supervised_config)
    cli.run(main)
