"""Datasets: TFDS array_record sources, batched with grain. TensorFlow is never imported.

`sklearn_digits` is built offline from scikit-learn's bundled data; `mnist`,
`cifar10` and `cifar100` come from the TFDS catalog and need network once.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from trainers.data.digits import SklearnDigits  # noqa: F401  (registers the builder)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static facts the trainer needs about a dataset."""

    tfds_name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    max_value: float  # pixel scale: images are divided by it
    augment: bool  # pad-4 random crop + horizontal flip for training


DATASETS = {
    "digits": DatasetSpec("sklearn_digits", 10, (8, 8, 1), 16.0, augment=False),
    "mnist": DatasetSpec("mnist", 10, (28, 28, 1), 255.0, augment=False),
    "cifar10": DatasetSpec("cifar10", 10, (32, 32, 3), 255.0, augment=True),
    "cifar100": DatasetSpec("cifar100", 100, (32, 32, 3), 255.0, augment=True),
}


def spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}.")
    return DATASETS[name]


def source(name: str, split: str, data_dir: str | None = None):
    """Random-access TFDS source (`tfds.data_source`, array_record); builds it if needed."""
    return tfds.data_source(
        spec(name).tfds_name,
        split=split,
        data_dir=data_dir,
        builder_kwargs={"file_format": "array_record"},
    )
