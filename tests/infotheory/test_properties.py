"""Invariances and bounds, property-tested with hypothesis."""

import jax.numpy as jnp
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from interplay import infotheory as it
from interplay.infotheory import scatter

seeds = st.integers(0, 2**31 - 1)
# Sizes from a ladder that keeps the extremes (2 samples, 1 dimension): every new (n, d)
# compiles each metric anew, and on a ladder the programs of one example serve the next
# (drawing n from 2..24 and d from 1..12 compiled for nearly every example).
sizes = st.sampled_from((2, 3, 5, 8, 13, 24))
dims = st.sampled_from((1, 2, 3, 5, 8, 12))


def _sample(seed, n, d, c=4):
    """Gaussian features and head, uniform labels (NumPy: no JAX program per shape)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, c, n).astype(np.int32)
    head = rng.normal(size=(c, d)).astype(np.float32)
    return jnp.asarray(features), jnp.asarray(labels), jnp.asarray(head)


@given(seeds, sizes, dims)
def test_entropy_bounds(seed, n, d):
    features, _, _ = _sample(seed, n, d)
    h = float(it.entropy(features))
    assert -1e-5 <= h <= np.log(n) + 1e-5
    assert -1e-5 <= float(it.entropy(features, alpha=2)) <= np.log(n) + 1e-5


@given(seeds, sizes, dims)
def test_interplay_bounds(seed, n, d):
    r = it.interplay(*_sample(seed, n, d))
    tol = 1e-4
    assert -tol <= float(r.mi) <= min(float(r.h_features), float(r.h_heads)) + tol
    assert max(float(r.h_features), float(r.h_heads)) - tol <= float(r.h_joint)
    assert float(r.h_joint) <= float(r.h_features) + float(r.h_heads) + tol
    assert 0 <= float(r.mir) <= 1 and 0 <= float(r.hdr) <= 1


def _assert_same(a: it.Interplay, b: it.Interplay, atol: float) -> None:
    """Entropies, MI and HDR to `atol`; MIR = MI / min(H) to `atol / min(H)`: an error δ in MI
    moves MIR by δ / min(H), large when one entropy is near 0 (nearly collinear features)."""
    smallest = min(float(a.h_features), float(a.h_heads))
    for field in it.Interplay._fields:
        tol = atol / max(smallest, 1e-3) if field == "mir" else atol
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=tol, err_msg=field)


@given(seeds, sizes, dims)
def test_invariant_to_row_permutation(seed, n, d):
    features, labels, head = _sample(seed, n, d)
    perm = np.random.default_rng(seed + 1).permutation(n)
    a = it.interplay(features, labels, head)
    b = it.interplay(features[perm], labels[perm], head)
    _assert_same(a, b, atol=2e-5)


# The example: two nearly collinear features, H(G(Z)) = 1.1e-3, where a fixed tolerance on MIR
# failed (1.1e-4 apart, with MI 1e-7 apart) in a full run.
@example(seed=3615, n=2, d=2)
@given(seeds, sizes, dims)
def test_invariant_to_rotation_and_positive_scaling(seed, n, d):
    features, labels, head = _sample(seed, n, d)
    rng = np.random.default_rng(seed + 7)
    q = np.linalg.qr(rng.normal(size=(d, d)))[0].astype(np.float32)
    row_scale = rng.uniform(0.1, 10.0, (n, 1)).astype(np.float32)
    head_scale = rng.uniform(0.1, 10.0, (head.shape[0], 1)).astype(np.float32)
    a = it.interplay(features, labels, head)
    b = it.interplay(row_scale * features @ q, labels, head_scale * head @ q)
    _assert_same(a, b, atol=1e-4)


@given(seeds, sizes, dims)
def test_pairwise_mir_hdr_agree_with_interplay(seed, n, d):
    features, labels, head = _sample(seed, n, d)
    r = it.interplay(features, labels, head)
    np.testing.assert_allclose(it.mir(features, head[labels]), r.mir, atol=1e-4)
    np.testing.assert_allclose(it.hdr(features, head[labels]), r.hdr, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(1, 40), st.integers(1, 6), st.integers(1, 5))
def test_class_sums_equal_the_per_class_products(seed, n, c, window):
    # Small windows put class boundaries everywhere: the one-hot and windowed forms both run.
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3)).astype(np.float32)
    labels = rng.integers(0, c, n)
    got = scatter.add_class_sums(jnp.zeros((c, 3, 3)), jnp.asarray(z), jnp.asarray(labels), window)
    for k in range(c):
        rows = z[labels == k].astype(np.float64)
        np.testing.assert_allclose(got[k], rows.T @ rows, rtol=1e-5, atol=1e-5)
