"""The contract of a trainer module, on which the studies rely.

A trainer is a module of `interplay.trainers` (`supervised`, `semisupervised`,
`grokking`, `cross_modal`) with a config file of the same name in
`interplay/trainers/configs/`; `trainer_for` finds one from its config path.
The classifier trainers (`supervised`, `semisupervised`) also name the eval
keys of a sweep's table, so they satisfy `Trainer`.
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Protocol, runtime_checkable

import ml_collections


@runtime_checkable
class Trainer(Protocol):
    """What `studies.sweep` calls on a trainer module."""

    #: The final eval keys a sweep's table shows (its JSON keeps every `eval` key).
    SWEEP_KEYS: tuple[str, ...]

    def validate(self, config: ml_collections.ConfigDict) -> None:
        """Raises `ValueError` naming the first bad config value."""

    def train_and_evaluate(self, config: ml_collections.ConfigDict, workdir) -> dict:
        """Trains in `workdir` (resuming) and returns the last eval record."""


def trainer_for(config_path: str | pathlib.Path) -> Trainer:
    """The trainer module named after a config file (`configs/supervised.py` → `supervised`).

    Raises:
      ValueError: no trainer module of that name, or it lacks part of `Trainer`.
    """
    name = pathlib.Path(config_path).stem
    try:
        module = importlib.import_module(f"interplay.trainers.{name}")
    except ModuleNotFoundError:
        raise ValueError(
            f"no trainer interplay.trainers.{name} for config {config_path}."
        ) from None
    if not isinstance(module, Trainer):
        raise ValueError(f"interplay.trainers.{name} is not a trainer a sweep can run.")
    return module
