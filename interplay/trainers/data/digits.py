"""TFDS builder of scikit-learn's bundled handwritten digits (offline, array_record).

1 797 grayscale 8×8 images of 10 classes (UCI optdigits test set, pixel values 0–16),
split by a fixed seeded permutation into 1 437 train and 360 test examples.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

TEST_SIZE = 360
SPLIT_SEED = 0


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's digits as a TFDS dataset (`sklearn_digits`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Fixed 1437/360 split (seed 0)."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # shipped with scikit-learn
        order = np.random.default_rng(SPLIT_SEED).permutation(1797)
        return {
            "train": self._generate_examples(order[TEST_SIZE:]),
            "test": self._generate_examples(order[:TEST_SIZE]),
        }

    def _generate_examples(self, indices):
        from sklearn.datasets import load_digits

        digits = load_digits()
        for i in indices:
            image = digits.images[i].astype(np.uint8)[..., None]
            yield int(i), {"image": image, "label": int(digits.target[i])}
