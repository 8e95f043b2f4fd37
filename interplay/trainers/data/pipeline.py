"""grain pipelines: the training batch of step s is a pure function of (seed, s).

Training batches come from `source.shuffle(seed).repeat()` (a fresh permutation
every epoch) with per-example augmentation seeded by position, so a run can
resume at any step by slicing: the data-iterator position is the step.
"""

from __future__ import annotations

import grain
import numpy as np

from interplay.trainers.data import DatasetSpec


def random_crop_flip(image: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Random crop of the `pad`-zero-padded image back to its size, then a random h-flip."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    top, left = rng.integers(0, 2 * pad + 1, size=2)
    out = padded[top : top + h, left : left + w]
    return out[:, ::-1] if rng.random() < 0.5 else out


def _to_float(spec: DatasetSpec):
    def convert(example: dict) -> dict:
        image = np.asarray(example["image"], np.float32) / spec.max_value
        return {"image": image, "label": np.int32(example["label"])}

    return convert


def subset(source, indices) -> list[dict]:
    """The examples `indices` of `source`, in that order, read into memory (a grain source)."""
    return [source[int(i)] for i in indices]


def train_dataset(
    source, spec: DatasetSpec, batch_size: int, seed: int, shard: tuple[int, int] = (0, 1)
) -> grain.MapDataset:
    """Infinite random-access dataset of training batches; `ds[step]` is step's batch.

    With `shard = (i, n)`, `ds[step]` holds only rows `i·B/n … (i+1)·B/n` of that
    batch (`B = batch_size`, divisible by `n`): process i of n reads its part.
    """
    index, count = shard
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat().map(_to_float(spec))
    if spec.augment:
        ds = ds.random_map(
            lambda ex, rng: {**ex, "image": random_crop_flip(ex["image"], rng)}, seed=seed + 1
        )
    ds = ds.batch(batch_size // count, drop_remainder=True)
    return ds if count == 1 else ds.slice(slice(index, None, count))


def train_iterator(ds: grain.MapDataset, start_step: int, num_threads: int = 4):
    """Prefetching iterator over `ds` from `start_step` (resume = slice)."""
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
    return iter(ds.slice(slice(start_step, None)).to_iter_dataset(options))


def eval_batches(source, spec: DatasetSpec, batch_size: int):
    """Eval batches in order, the last one zero-padded to `batch_size` with `mask` 0."""
    ds = grain.MapDataset.source(source).map(_to_float(spec))
    n = len(ds)
    for start in range(0, n, batch_size):
        examples = [ds[i] for i in range(start, min(start + batch_size, n))]
        valid = len(examples)
        images = np.stack([e["image"] for e in examples])
        labels = np.array([e["label"] for e in examples], np.int32)
        pad = batch_size - valid
        yield {
            "image": np.pad(images, ((0, pad),) + ((0, 0),) * (images.ndim - 1)),
            "label": np.pad(labels, (0, pad)),
            "mask": np.arange(batch_size) < valid,
        }
