"""Gradients: finite at degenerate spectra, correct at generic points."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from interplay import infotheory as it
from interplay.infotheory import losses, scatter
from interplay.infotheory.spectral import psd_sqrt
from tests import reference


def _regularizer(features, labels, head):
    return losses.interplay_regularizer(features, labels, head, mi_weight=1.0, hdr_weight=1.0)


def _degenerate_cases():
    etf_z, etf_y, etf_w = reference.etf_features(10, per_class=4, dim=16)
    key = jax.random.key(0)
    head = jax.random.normal(key, (3, 6))
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    generic = jax.random.normal(jax.random.key(1), (6, 6))
    return {
        "neural_collapse": (etf_z, etf_y, etf_w),
        "rank_one": (jnp.ones((6, 6)), labels, head),
        "duplicated_rows": (jnp.concatenate([generic[:3], generic[:3]]), labels, head),
        "zero_rows": (generic.at[2].set(0).at[4].set(0), labels, head),
        "identical_heads": (generic, labels, jnp.ones((3, 6))),
    }


@pytest.mark.parametrize("case", list(_degenerate_cases()))
def test_gradients_finite_where_spectra_degenerate(case):
    features, labels, head = _degenerate_cases()[case]
    grads = jax.jit(jax.grad(_regularizer, argnums=(0, 2)))(
        jnp.asarray(features, jnp.float32), labels, jnp.asarray(head, jnp.float32)
    )
    for g in grads:
        assert bool(jnp.all(jnp.isfinite(g))), case
    # Each individual metric, too.
    for field in ("mir", "hdr", "mi", "h_features", "h_heads"):
        g = jax.grad(lambda f, w, field=field: getattr(it.interplay(f, labels, w), field))(
            jnp.asarray(features, jnp.float32), jnp.asarray(head, jnp.float32)
        )
        assert bool(jnp.all(jnp.isfinite(g))), (case, field)


def test_gradients_match_finite_differences_at_generic_points():
    with jax.enable_x64(True):
        key1, key2 = jax.random.split(jax.random.key(3))
        features = jax.random.normal(key1, (7, 5), jnp.float64)
        head = jax.random.normal(key2, (3, 5), jnp.float64)
        labels = jnp.array([0, 1, 2, 0, 1, 2, 2])
        check_grads(
            lambda f, w: _regularizer(f, labels, w),
            (features, head),
            order=1,
            modes=("fwd", "rev"),
            atol=1e-5,
            rtol=1e-5,
        )
        check_grads(lambda f: it.entropy(f, alpha=2), (features,), order=1, atol=1e-5, rtol=1e-5)
        check_grads(lambda f: it.entropy(f, alpha=0.7), (features,), order=1, atol=1e-5, rtol=1e-5)
        # From a kernel: its checks (an eigendecomposition on CPU without a derivative) pass no
        # gradient.
        heads = it.gram(head[labels])
        for fn in (it.matrix_entropy, lambda k: it.mutual_information(k, heads)):
            check_grads(lambda f, fn=fn: fn(it.gram(f)), (features,), order=1, atol=1e-5, rtol=1e-5)
        # Class-scatter dual path (n > d·C), through psd_sqrt of the head Gram.
        big = jax.random.normal(key1, (40, 3), jnp.float64)
        big_labels = jnp.arange(40) % 3
        check_grads(
            lambda f, w: it.interplay(f, big_labels, w).mi,
            (big, head[:, :3]),
            order=1,
            modes=("rev",),
            atol=1e-5,
            rtol=1e-5,
        )


def test_psd_sqrt_derivative_at_repeated_eigenvalues():
    with jax.enable_x64(True):
        w = it.simplex_etf(5, 6, jax.random.key(0)).astype(jnp.float64)  # G(W) = ETF: repeated
        dw = jax.random.normal(jax.random.key(1), w.shape, jnp.float64)
        root, droot = jax.jvp(lambda w: psd_sqrt(w @ w.T), (w,), (dw,))
        dg = dw @ w.T + w @ dw.T
        np.testing.assert_allclose(root @ droot + droot @ root, dg, atol=1e-9)
        grad = jax.grad(
            lambda w: scatter.joint_entropy_exact(
                scatter.update(scatter.init(5, 6, jnp.float64), w, jnp.arange(5)),
                it.gram(w),
            )
        )(w)
        assert bool(jnp.all(jnp.isfinite(grad)))


def test_eigenvalue_floor_changes_values_by_less_than_1e4_relative():
    """Values never use the floor; tangents do. Check against the float64 reference."""
    features, labels, head = reference.etf_features(10, per_class=4, dim=16)
    r = it.interplay(features, labels, head)
    exp = reference.interplay(features, labels, head)
    np.testing.assert_allclose(r.h_joint, exp["h_joint"], rtol=1e-4)
