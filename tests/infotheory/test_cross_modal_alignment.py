"""Paper [B]'s CMA loss against closed forms and a NumPy reference."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from interplay.infotheory import losses
from tests import reference


def _reference(features, labels, embeddings, mask, normalize):
    """Float64 NumPy, one group at a time, as skingorz/CMA's loop over the batch's classes."""
    keep = np.asarray(mask) > 0
    entropies = []
    for c in sorted(set(labels[keep])):
        group = np.vstack([features[keep & (labels == c)], embeddings[c]])
        h = reference.matrix_entropy(reference.gram(group))
        entropies.append(h / np.log(len(group)) if normalize == "log_group" else h)
    return np.mean(entropies)


@pytest.mark.parametrize("normalize", ["none", "log_group"])
@pytest.mark.parametrize("num_classes", [3, 40])  # a slot per class / per sample
def test_equals_reference_with_absent_classes_and_a_mask(num_classes, normalize):
    rng = np.random.default_rng(num_classes)
    z, e = rng.normal(size=(12, 6)), rng.normal(size=(num_classes, 6))
    y = rng.integers(0, min(num_classes, 5), 12)
    mask = rng.integers(0, 2, 12)
    mask[0] = 1
    got = losses.cross_modal_alignment(z, y, e, mask=mask, normalize=normalize)
    assert float(got) == pytest.approx(_reference(z, y, e, mask, normalize), abs=2e-5)


def test_closed_forms():
    """Rows equal to their embedding → 0; m orthonormal rows ⟂ embedding → log(m + 1)."""
    e = np.eye(8)[:2] * 3.0
    y = np.array([0, 0, 0, 1, 1])
    aligned = e[y] * np.array([1.0, 2.0, 0.5, 1.0, 4.0])[:, None]
    assert float(losses.cross_modal_alignment(aligned, y, e)) == pytest.approx(0, abs=1e-5)
    orthogonal = np.eye(8)[[2, 3, 4, 5, 6]]
    expected = (np.log(4) + np.log(3)) / 2  # class 0: 3 rows + e; class 1: 2 rows + e
    assert float(losses.cross_modal_alignment(orthogonal, y, e)) == pytest.approx(expected, 1e-5)
    # each group's maximum, log(m + 1), is 1 once divided by it
    got = losses.cross_modal_alignment(orthogonal, y, e, normalize="log_group")
    assert float(got) == pytest.approx(1.0, 1e-5)


def test_finite_gradients_at_perfect_alignment():
    e = jnp.eye(4)[:3]
    y = jnp.array([0, 0, 1, 2, 2])
    grads = jax.grad(lambda z, e: losses.cross_modal_alignment(z, y, e), argnums=(0, 1))(e[y], e)
    for g in grads:
        assert bool(jnp.all(jnp.isfinite(g)))


def test_absent_classes_do_not_recompile():
    rng = np.random.default_rng(0)
    z, e = jnp.asarray(rng.normal(size=(8, 4))), jnp.asarray(rng.normal(size=(5, 4)))
    for normalize in losses.NORMALIZATIONS:
        loss = functools.partial(losses.cross_modal_alignment, normalize=normalize)
        step = jax.jit(jax.grad(lambda z, y, loss=loss: loss(z, y, e)))
        for y in ([0] * 8, [1, 2] * 4, list(range(5)) + [0, 0, 0]):
            assert bool(jnp.all(jnp.isfinite(step(z, jnp.asarray(y))))), normalize
        assert step._cache_size() == 1


def test_bad_input():
    z, e = np.ones((3, 4)), np.eye(4)[:2]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        losses.cross_modal_alignment(z, np.array([0, 1, 2]), e)
    with pytest.raises(ValueError, match="do not match features of width 4"):
        losses.cross_modal_alignment(z, np.array([0, 1, 1]), np.eye(3))
    with pytest.raises(ValueError, match="features contains NaN"):
        losses.cross_modal_alignment(np.full((3, 4), np.nan), np.array([0, 1, 1]), e)
    with pytest.raises(ValueError, match="normalize"):
        losses.cross_modal_alignment(z, np.array([0, 1, 1]), e, normalize="log")
    jitted = jax.jit(lambda y: losses.cross_modal_alignment(z, y, e))
    assert np.isnan(jitted(jnp.array([0, 1, 2])))
