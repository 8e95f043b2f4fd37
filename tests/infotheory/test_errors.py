"""Bad input raises ValueError naming the problem; jitted calls fail at trace time."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from interplay import infotheory as it
from interplay.infotheory import losses

Z = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])
W = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)


@pytest.mark.parametrize(
    "args,match",
    [
        ((Z.copy().ravel(), Y, W), "features must have rank 2"),
        ((np.where(np.eye(6, 4) > 0, np.nan, Z), Y, W), "features contains NaN"),
        ((np.where(np.eye(6, 4) > 0, np.inf, Z), Y, W), "features contains NaN or Inf"),
        ((Z, Y[:5], W), "labels has 5 entries"),
        ((Z, Y + 1, W), r"labels must lie in \[0, 3\)"),
        ((Z, Y - 1, W), r"labels must lie in \[0, 3\)"),
        ((Z, Y.astype(np.float32), W), "labels must be integers"),
        ((Z[:1], Y[:1], W), "at least 2 samples"),
        ((Z, Y, W[0]), "head must have rank 2"),
        ((Z, Y, W * np.nan), "head contains NaN"),
    ],
)
def test_interplay_rejects(args, match):
    with pytest.raises(ValueError, match=match):
        it.interplay(*args)
    with pytest.raises(ValueError, match=match):
        losses.interplay_regularizer(*args, mi_weight=1.0, hdr_weight=1.0)


def test_dataset_interplay_rejects():
    with pytest.raises(ValueError, match="num_classes=4 disagrees with head"):
        it.dataset_interplay([(Z, Y)], W, num_classes=4)
    with pytest.raises(ValueError, match="at least 2 samples in total"):
        it.dataset_interplay([], W, num_classes=3)
    with pytest.raises(ValueError, match="contains NaN"):
        it.dataset_interplay([(Z, Y), (Z * np.nan, Y)], W, num_classes=3)
    with pytest.raises(ValueError, match="labels must lie"):
        it.dataset_interplay([(Z, Y + 5)], W, num_classes=3)
    with pytest.raises(ValueError, match="method must be"):
        it.dataset_interplay([(Z, Y)], W, num_classes=3, method="svd")


def test_other_entry_points_reject():
    with pytest.raises(ValueError, match="must be square"):
        it.matrix_entropy(Z)
    with pytest.raises(ValueError, match="alpha must be a positive finite number"):
        it.entropy(Z, alpha=0)
    with pytest.raises(ValueError, match="same number of rows"):
        it.mir(Z, W)
    with pytest.raises(ValueError, match="differ in shape"):
        it.mutual_information(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="mask entries"):
        it.interplay(Z, Y, W, mask=np.full(6, 0.5))
    with pytest.raises(ValueError, match="weights must be non-negative"):
        losses.interplay_regularizer(Z, Y, W, mi_weight=-1.0, hdr_weight=0.0)
    with pytest.raises(ValueError, match="dim ≥ C−1"):
        it.simplex_etf(10, 5, jax.random.key(0))


def test_jitted_functions_fail_at_trace_time_on_shapes():
    with pytest.raises(ValueError, match="same number of rows"):
        jax.jit(it.mir)(jnp.ones((5, 3)), jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="labels has 5 entries"):
        jax.jit(it.interplay)(Z, Y[:5], W)
