"""Datasets: TFDS array_record sources, batched with grain. TensorFlow is never imported.

`sklearn_digits` is built offline from scikit-learn's bundled data; `mnist`,
`cifar10` and `cifar100` come from the TFDS catalog and need network once.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from interplay.trainers.data.digits import SklearnDigits  # noqa: F401  (registers the builder)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static facts the trainer needs about a dataset."""

    tfds_name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    max_value: float  # pixel scale: images are divided by it
    augment: bool  # pad-4 random crop + horizontal flip for training
    mean: tuple[float, ...]  # per channel, of the train split scaled to [0, 1]
    std: tuple[float, ...]
    offline: bool = False  # built without network (else TFDS downloads it once)


# The CIFAR statistics are USB's (`semilearn/datasets/cv_datasets/cifar.py`), MNIST's the
# customary ones, the digits' measured on this project's train split (checked by the tests).
DATASETS = {
    "digits": DatasetSpec(
        "sklearn_digits", 10, (8, 8, 1), 16.0, False, (0.3049,), (0.3759,), offline=True
    ),
    "mnist": DatasetSpec("mnist", 10, (28, 28, 1), 255.0, False, (0.1307,), (0.3081,)),
    "cifar10": DatasetSpec(
        "cifar10",
        10,
        (32, 32, 3),
        255.0,
        True,
        tuple(v / 255 for v in (125.3, 123.0, 113.9)),
        tuple(v / 255 for v in (63.0, 62.1, 66.7)),
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        100,
        (32, 32, 3),
        255.0,
        True,
        tuple(v / 255 for v in (129.3, 124.1, 112.4)),
        tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    ),
}

#: Examples per split of `source(..., fake=True)`.
FAKE_EXAMPLES = 256


def spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}.")
    return DATASETS[name]


def source(name: str, split: str, data_dir: str | None = None, *, fake: bool = False):
    """Random-access TFDS source (`tfds.data_source`, array_record).

    Offline datasets are built on first use. A catalog dataset must have been
    prepared (downloaded) before; else this fails at once saying how.

    Args:
      name: a key of `DATASETS`.
      split: `"train"` or `"test"`.
      data_dir: TFDS data directory (TFDS's default when None).
      fake: TFDS mock data instead (`FAKE_EXAMPLES` random examples of the
        dataset's shapes, offline): smoke tests of any preset.
    """
    s = spec(name)
    kwargs = dict(split=split, data_dir=data_dir, builder_kwargs={"file_format": "array_record"})
    if fake:
        with tfds.testing.mock_data(
            num_examples=FAKE_EXAMPLES, policy=tfds.testing.MockPolicy.USE_CODE
        ):
            return tfds.data_source(s.tfds_name, **kwargs)
    if not s.offline:
        builder = tfds.builder(s.tfds_name, data_dir=data_dir, file_format="array_record")
        if not builder.is_prepared():
            raise ValueError(
                f"{name} is not prepared in {builder.data_dir}. Download it once where there is "
                'network: python -c "import tensorflow_datasets as tfds; '
                f"tfds.builder('{s.tfds_name}', file_format='array_record')"
                '.download_and_prepare()" (add data_dir=... and pass --config.data_dir), or '
                "run offline on mock data with --config.fake_data=True."
            )
    return tfds.data_source(s.tfds_name, **kwargs)
