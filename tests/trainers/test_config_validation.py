"""Every numeric field of every trainer's config: a negative or NaN value is refused by the
trainer's `validate` with a `ValueError` naming the field, before any work."""

import math

import pytest

from interplay.trainers import cross_modal, grokking, semisupervised, supervised
from interplay.trainers.configs import cross_modal as cross_modal_config
from interplay.trainers.configs import grokking as grokking_config
from interplay.trainers.configs import semisupervised as semisupervised_config
from interplay.trainers.configs import supervised as supervised_config

#: Fields where any integer is valid: seeds.
SEEDS = {"seed", "data_seed", "label_seed", "validation_seed", "split_seed", "projection_seed"}

TRAINERS = {
    "supervised": (supervised, supervised_config),
    "semisupervised": (semisupervised, semisupervised_config),
    "grokking": (grokking, grokking_config),
    "cross_modal": (cross_modal, cross_modal_config),
}


def _numeric_fields(config):
    return [
        k
        for k, v in config.items()
        if k not in SEEDS and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


CASES = [
    pytest.param(name, field, bad, id=f"{name}.{field}={bad}")
    for name, (_, module) in TRAINERS.items()
    for field in _numeric_fields(module.get_config())
    for bad in (-1, math.nan)
    if not (bad != bad and isinstance(module.get_config()[field], int))  # NaN: float fields
]


@pytest.mark.parametrize("name,field,bad", CASES)
def test_a_negative_or_nan_numeric_field_is_refused_naming_it(name, field, bad):
    trainer, module = TRAINERS[name]
    config = module.get_config()
    config[field] = type(config[field])(bad) if bad == bad else bad
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        trainer.validate(config)
