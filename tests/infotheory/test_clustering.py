"""Silhouette, Davies–Bouldin and per-class entropies against scikit-learn and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.infotheory import clustering
from tests import reference

C = 6


def _data(kind, seed=0, n=60, d=5):
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.normal(size=(n, d)), rng.integers(0, C, n)
    labels = rng.integers(0, C, n)
    if kind == "clustered":
        return 5 * rng.normal(size=(C, d))[labels] + rng.normal(size=(n, d)), labels
    labels[labels == 4] = 3  # class 4 absent
    labels[0], labels[1:][labels[1:] == 5] = 5, 2  # class 5 a singleton
    if kind == "absent and singleton":
        return 5 * rng.normal(size=(C, d))[labels] + rng.normal(size=(n, d)), labels
    raise ValueError(kind)


KINDS = ["random", "clustered", "absent and singleton"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric", clustering.METRICS)
def test_silhouette_equals_sklearn(kind, metric):
    z, y = _data(kind)
    with jax.enable_x64(True):
        ours = float(clustering.silhouette_score(z, y, num_classes=C, metric=metric, block_size=16))
    assert ours == pytest.approx(sklearn.metrics.silhouette_score(z, y, metric=metric), abs=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_davies_bouldin_equals_sklearn(kind):
    z, y = _data(kind)
    with jax.enable_x64(True):
        ours = float(clustering.davies_bouldin_index(z, y, num_classes=C))
    assert ours == pytest.approx(sklearn.metrics.davies_bouldin_score(z, y), abs=1e-5)


def test_float32_close_to_sklearn():
    z, y = _data("clustered", n=500, d=16)
    for metric in clustering.METRICS:
        ours = clustering.silhouette_score(z.astype(np.float32), y, num_classes=C, metric=metric)
        expected = sklearn.metrics.silhouette_score(z, y, metric=metric)
        assert float(ours) == pytest.approx(expected, abs=1e-4)
    ours = clustering.davies_bouldin_index(z.astype(np.float32), y, num_classes=C)
    assert float(ours) == pytest.approx(sklearn.metrics.davies_bouldin_score(z, y), rel=1e-4)


@settings(deadline=None, max_examples=20)
@given(st.integers(0, 2**16))
def test_property_agrees_with_sklearn_on_any_labels(seed):
    """Any labelling with 2 ≤ classes < n, including zero rows for the cosine metric."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(24, 3)) * rng.integers(0, 2, (24, 1))  # some zero rows
    y = rng.integers(0, rng.integers(2, C + 1), 24)
    y[:2] = [0, 1]
    with jax.enable_x64(True):
        for metric in clustering.METRICS:
            ours = clustering.silhouette_score(z, y, num_classes=C, metric=metric, block_size=8)
            expected = sklearn.metrics.silhouette_score(z, y, metric=metric)
            assert float(ours) == pytest.approx(expected, abs=1e-5)
        db = clustering.davies_bouldin_index(z, y, num_classes=C)
        assert float(db) == pytest.approx(sklearn.metrics.davies_bouldin_score(z, y), abs=1e-5)


def test_vmap_over_checkpoints_equals_one_by_one():
    zs = np.stack([_data("clustered", seed=s)[0] for s in range(3)]).astype(np.float32)
    y = _data("clustered")[1]
    for f in (
        lambda z: clustering.silhouette_score(z, y, num_classes=C),
        lambda z: clustering.silhouette_score(z, y, num_classes=C, metric="euclidean"),
        lambda z: clustering.davies_bouldin_index(z, y, num_classes=C),
    ):
        batched = jax.jit(jax.vmap(f))(zs)
        np.testing.assert_allclose(batched, [f(z) for z in zs], rtol=1e-5)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros(10, int), "2 ≤ classes with samples < samples, got 1"),
        (np.arange(10) % 11, "got 10 classes"),
        (np.r_[0, 1, np.full(8, 12)], "labels must lie in"),
    ],
)
def test_bad_input_raises_eagerly_and_is_nan_under_jit(labels, message):
    z = np.random.default_rng(0).normal(size=(10, 3))
    for f in (clustering.silhouette_score, clustering.davies_bouldin_index):
        with pytest.raises(ValueError, match=message):
            f(z, labels, num_classes=11)
        assert np.isnan(jax.jit(lambda z, y, f=f: f(z, y, num_classes=11))(z, labels))
    with pytest.raises(ValueError, match="metric must be one of"):
        clustering.silhouette_score(z, labels, num_classes=11, metric="manhattan")


def test_class_entropies_closed_forms():
    """Identical rows → 0; m orthonormal rows → log m; an empty class → NaN."""
    z = np.concatenate([np.tile([[1.0, 2.0, 0, 0, 0]], (4, 1)), np.eye(5)[:3]])
    y = np.array([0, 0, 0, 0, 2, 2, 2])
    h = np.asarray(clustering.class_entropies(z, y, num_classes=3))
    np.testing.assert_allclose(h[[0, 2]], [0, np.log(3)], atol=1e-5)  # float32 floor
    assert np.isnan(h[1])


def test_class_entropies_equal_reference_per_class():
    z, y = _data("clustered")
    h = clustering.class_entropies(z, y, num_classes=C)
    for c in range(C):
        expected = reference.matrix_entropy(reference.gram(z[y == c]))
        assert float(h[c]) == pytest.approx(expected, abs=1e-4)


def test_cosine_sums_stream_over_batches():
    """Silhouette of a split evaluated in batches from the whole split's class sums."""
    z, y = _data("clustered")
    unit_sums, counts = clustering.unit_sums(z, y, C), np.bincount(y, minlength=C)
    streamed = np.concatenate(
        [
            clustering.silhouette_from_sums(
                clustering.cosine_sums(z[i : i + 16], y[i : i + 16], unit_sums, counts),
                jnp.asarray(y[i : i + 16]),
                jnp.asarray(counts, jnp.float32),
            )
            for i in range(0, len(z), 16)
        ]
    )
    assert streamed.mean() == pytest.approx(
        sklearn.metrics.silhouette_score(z, y, metric="cosine"), 1e-5
    )
