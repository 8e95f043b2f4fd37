"""Precision, dtypes, and composability with jit, grad and vmap."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

import infotheory as it
from tests import reference


def _data(seed=0, n=96, d=24, c=6):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(c, d)) * 2
    labels = rng.integers(0, c, n)
    return means[labels] + rng.normal(size=(n, d)), labels, means + 0.3 * rng.normal(size=(c, d))


def test_float32_within_1e3_of_float64_reference():
    for seed in range(3):
        z, y, w = _data(seed)
        r = it.interplay(z.astype(np.float32), y, w.astype(np.float32))
        exp = reference.interplay(z, y, w)
        assert r.mir.dtype == jnp.float32
        for f in ("h_features", "h_heads", "h_joint", "mi"):
            np.testing.assert_allclose(getattr(r, f), exp[f], rtol=1e-3)
        for f in ("mir", "hdr"):
            np.testing.assert_allclose(getattr(r, f), exp[f], atol=1e-3)


def test_float64_when_x64_enabled():
    z, y, w = _data()
    with jax.enable_x64(True):
        r = it.interplay(z, y, w)
        assert r.mir.dtype == jnp.float64
        exp = reference.interplay(z, y, w)
        np.testing.assert_allclose(r.h_joint, exp["h_joint"], rtol=1e-10)
        np.testing.assert_allclose(r.mir, exp["mir"], atol=1e-10)


def test_half_precision_inputs_are_computed_in_float32():
    z, y, w = _data()
    for dtype in (jnp.bfloat16, jnp.float16):
        zl, wl = jnp.asarray(z, dtype), jnp.asarray(w, dtype)
        r = it.interplay(zl, y, wl)
        assert r.mir.dtype == jnp.float32
        exp = reference.interplay(np.asarray(zl, np.float64), y, np.asarray(wl, np.float64))
        np.testing.assert_allclose(r.mir, exp["mir"], atol=1e-3)
        assert it.entropy(zl).dtype == jnp.float32


def test_vmap_over_checkpoints_equals_loop():
    z, y, w = _data(n=40, d=8, c=4)
    stack_z = jnp.stack([z * (k + 1) + k for k in range(3)]).astype(jnp.float32)
    stack_w = jnp.stack([w + k for k in range(3)]).astype(jnp.float32)
    batched = jax.jit(jax.vmap(it.interplay, in_axes=(0, None, 0)))(stack_z, y, stack_w)
    for k in range(3):
        single = it.interplay(stack_z[k], y, stack_w[k])
        np.testing.assert_allclose(np.array([f[k] for f in batched]), np.array(single), atol=1e-5)
    ent = jax.vmap(it.entropy)(stack_z)
    np.testing.assert_allclose(ent, [it.entropy(s) for s in stack_z], rtol=1e-5)
    grads = jax.vmap(jax.grad(lambda f: it.interplay(f, y, stack_w[0]).mi))(stack_z)
    assert grads.shape == stack_z.shape and bool(jnp.all(jnp.isfinite(grads)))


def test_no_retrace_for_same_shapes():
    z, y, w = _data(n=30, d=6, c=3)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def metrics(z, w):
        r = it.interplay(z, y, w)
        return r.mir, it.mir(z, w[y]), it.entropy(z, alpha=2), it.matrix_entropy(it.gram(z))

    for k in range(4):
        metrics(jnp.asarray(z + k, jnp.float32), jnp.asarray(w - k, jnp.float32))
