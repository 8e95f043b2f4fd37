"""Datasets through real TFDS builders/sources and grain; CIFAR/MNIST on TFDS's mock data."""

import dataclasses
import sys

import numpy as np
import pytest

from interplay.trainers import data
from interplay.trainers.data import pipeline


def test_digits_builder_is_array_record_with_fixed_split(data_dir):
    train, test = (
        data.source("digits", "train", data_dir),
        data.source("digits", "test", data_dir),
    )
    assert (len(train), len(test)) == (1437, 360)
    assert type(train).__name__ == "ArrayRecordDataSource"
    labels = np.array([test[i]["label"] for i in range(len(test))])
    assert set(labels) == set(range(10))
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(1797)
    np.testing.assert_array_equal(np.sort(labels), np.sort(digits.target[order[:360]]))
    assert "tensorflow" not in sys.modules


def test_digits_mean_and_std_are_those_of_the_train_split(data_dir):
    train = data.source("digits", "train", data_dir)
    s = data.spec("digits")
    images = np.stack([train[i]["image"] for i in range(len(train))]) / s.max_value
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), s.mean, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(0, 1, 2)), s.std, atol=1e-4)


def test_train_batches_are_a_function_of_step(data_dir):
    spec = data.spec("digits")
    src = data.source("digits", "train", data_dir)
    ds = pipeline.train_dataset(src, spec, 64, seed=3)
    again = pipeline.train_dataset(src, spec, 64, seed=3)
    np.testing.assert_array_equal(ds[7]["image"], again[7]["image"])
    resumed = pipeline.train_iterator(ds, 7)
    np.testing.assert_array_equal(next(resumed)["label"], ds[7]["label"])
    assert ds[0]["image"].dtype == np.float32 and ds[0]["image"].max() <= 1.0
    # One epoch (22 full batches) visits each example at most once.
    seen = np.concatenate([ds[i]["label"] for i in range(22)])
    assert len(seen) == 22 * 64
    assert not np.array_equal(ds[0]["label"], ds[22]["label"])  # reshuffled next epoch


def test_eval_batches_cover_the_split_once_with_padding_mask(data_dir):
    src = data.source("digits", "test", data_dir)
    batches = list(pipeline.eval_batches(src, data.spec("digits"), 128))
    assert [b["image"].shape[0] for b in batches] == [128, 128, 128]
    assert sum(int(b["mask"].sum()) for b in batches) == 360
    assert not batches[-1]["mask"][104:].any()


def _is_crop_or_flip(out, image, pad=4):
    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    windows = [padded[t : t + h, s : s + w] for t in range(2 * pad + 1) for s in range(2 * pad + 1)]
    return any(np.array_equal(out, v) or np.array_equal(out, v[:, ::-1]) for v in windows)


def test_random_crop_flip_is_a_shift_and_flip_of_the_image():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    outs = [pipeline.random_crop_flip(image, np.random.default_rng(seed)) for seed in range(20)]
    assert all(o.shape == image.shape and _is_crop_or_flip(o, image) for o in outs)
    assert sum(not np.array_equal(o, image) for o in outs) > 10


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "mnist"])
def test_catalog_datasets_on_tfds_mock_data(name):
    spec = data.spec(name)
    train = data.source(name, "train", fake=True)  # the real builder's code on TFDS mock data
    batch = pipeline.train_dataset(train, spec, 8, seed=0)[1]
    test = list(pipeline.eval_batches(data.source(name, "test", fake=True), spec, 8))
    assert batch["image"].shape == (8, *spec.image_shape)
    assert (
        batch["image"].dtype == np.float32
        and 0 <= batch["image"].min() <= batch["image"].max() <= 1
    )
    assert batch["label"].max() < spec.num_classes
    assert sum(int(b["mask"].sum()) for b in test) == data.FAKE_EXAMPLES
    if spec.augment:  # each augmented image is a crop/flip of the same example un-augmented
        plain_spec = dataclasses.replace(spec, augment=False)
        plain = pipeline.train_dataset(
            data.source(name, "train", fake=True), plain_spec, 8, seed=0
        )[1]
        np.testing.assert_array_equal(plain["label"], batch["label"])
        assert all(
            _is_crop_or_flip(a, p) for a, p in zip(batch["image"], plain["image"], strict=True)
        )
        assert not np.array_equal(batch["image"], plain["image"])
    assert "tensorflow" not in sys.modules


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.spec("imagenet")
