"""A classifier run read back from its workdir: config, parts, checkpoints.

The checkpoint analysis, the layer profile and the cross-modal encoder read runs
of `interplay.trainers.supervised` and `interplay.trainers.semisupervised`
through `SavedRun`: the config from `config.json` (a semi-supervised one has an
`algorithm`), the classifier's parts rebuilt from it, and every completed Orbax
checkpoint restored onto one device against the abstract state of the trainer's
step 0 (`parts.supervised_state`, `semisupervised.init_state`). `weights`
chooses what `variables` returns: the EMA of the weights (`"ema"`, a run with
`ema_momentum > 0`) or the trained weights (`"raw"`); by default what the
trainer evaluated.
"""

from __future__ import annotations

import json
import pathlib

import jax

from interplay.trainers.classifier import evaluators, parts
from interplay.trainers.configs import semisupervised as semisupervised_config
from interplay.trainers.configs import supervised as supervised_config
from interplay.trainers.core import checkpoints

Variables = dict  # {"params": …, "batch_stats": …}, optionally stacked along a leading axis


def _initial_state(classifier: parts.Classifier, semi: bool):
    if not semi:
        return parts.supervised_state(classifier)
    from interplay.trainers import semisupervised  # a trainer: imported only for its runs

    return semisupervised.init_state(classifier)


class SavedRun:
    """A classifier run's config, classifier parts and completed checkpoints.

    Args:
      workdir: the run's directory.
      weights: `"ema"`, `"raw"` or None (the trainer's: `"ema"` when the run kept one).

    Raises:
      ValueError: `workdir` has no `checkpoints/`, no `config.json` or no
        completed checkpoint; `weights="ema"` for a run without an EMA.
    """

    def __init__(self, workdir: str | pathlib.Path, weights: str | None = None):
        self.workdir = pathlib.Path(workdir)
        ckpt_dir = self.workdir / "checkpoints"
        if not ckpt_dir.is_dir():
            raise ValueError(f"{ckpt_dir} does not exist: no checkpoints to analyze.")
        config_path = self.workdir / "config.json"
        if not config_path.exists():
            raise ValueError(
                f"{config_path} is missing: "
                f"was {self.workdir} written by interplay.trainers.supervised?"
            )
        saved = json.loads(config_path.read_text())
        semi = "algorithm" in saved
        self.config = (semisupervised_config if semi else supervised_config).get_config()
        self.config.update(saved)
        kept = self.config.ema_momentum > 0
        self.weights = weights or ("ema" if kept else "raw")
        if self.weights not in ("ema", "raw"):
            raise ValueError(f'weights must be "ema" or "raw", got {weights!r}.')
        if self.weights == "ema" and not kept:
            raise ValueError(
                f"{self.workdir} kept no EMA of its weights (config.ema_momentum = 0): "
                'use weights="raw".'
            )
        self.classifier = parts.Classifier.create(self.config)
        self.spec, self.model = self.classifier.spec, self.classifier.model
        self.manager = checkpoints.manager(ckpt_dir, read_only=True)
        self.steps = sorted(self.manager.all_steps())
        if not self.steps:
            raise ValueError(f"{ckpt_dir} holds no completed checkpoint.")
        # Restored onto this process's first device, whatever mesh the run was trained on.
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        self.abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
            jax.eval_shape(lambda: _initial_state(self.classifier, semi)),
        )

    def source(self, split: str):
        return self.classifier.source(split)

    def test_evaluator(self) -> evaluators.Evaluator:
        """The trainer's evaluator: the run's test split with its eval settings."""
        return self.classifier.test_evaluators()["eval"]

    def variables(self, step: int) -> Variables | None:
        """Params (`self.weights`) and batch stats at `step`, or None (with a message) if
        unreadable."""
        try:
            state, _ = checkpoints.restore(self.manager, step, self.abstract)
        except Exception as e:  # noqa: BLE001  (any corruption: report and skip)
            print(
                f"skipping unreadable checkpoint at step {step}: {type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}"
            )
            return None
        return state.eval_variables if self.weights == "ema" else state.variables
