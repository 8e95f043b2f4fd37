"""NC1–NC4 on constructed collapsed and non-collapsed features, against NumPy definitions."""

import jax
import jax.numpy as jnp
import numpy as np

import infotheory as it
from infotheory import collapse_metrics as nc


def _measure(features, labels, head):
    m = nc.update_moments(nc.init_moments(head.shape[0], features.shape[1]), features, labels)
    return m, nc.measure_collapse(m, head)


def test_collapsed_features_give_zero_nc1_nc2_nc3_and_full_nc4():
    c, d = 5, 8
    etf = it.simplex_etf(c, d, jax.random.key(0))
    labels = jnp.repeat(jnp.arange(c), 7)
    features = 3.0 * etf[labels] + 0.5  # collapsed onto an ETF around a nonzero global mean
    m, r = _measure(features, labels, 2.0 * etf)
    assert float(r.nc1) < 1e-5 and float(r.nc2) < 1e-5 and float(r.nc3) < 1e-5
    logits = features @ etf.T
    assert float(nc.nearest_mean_agreement(features, logits, nc.class_means(m)).mean()) == 1.0


def test_against_numpy_definitions_on_random_features():
    rng = np.random.default_rng(0)
    c, d, n = 4, 6, 80
    labels = rng.integers(0, c, n)
    features = rng.normal(size=(c, d))[labels] * 2 + rng.normal(size=(n, d))
    head = rng.normal(size=(c, d))
    _, r = _measure(jnp.asarray(features, jnp.float32), jnp.asarray(labels), jnp.asarray(head))
    mu = np.stack([features[labels == k].mean(0) for k in range(c)])
    mg = features.mean(0)
    sw = sum(np.outer(z - mu[y], z - mu[y]) for z, y in zip(features, labels, strict=True)) / n
    m = mu - mg
    sb = m.T @ m / c
    np.testing.assert_allclose(r.nc1, np.trace(sw @ np.linalg.pinv(sb)) / c, rtol=1e-3)
    g = m @ m.T
    etf = (np.eye(c) - 1 / c) / np.sqrt(c - 1)
    np.testing.assert_allclose(r.nc2, np.linalg.norm(g / np.linalg.norm(g) - etf), rtol=1e-4)
    np.testing.assert_allclose(
        r.nc3, np.linalg.norm(head / np.linalg.norm(head) - m / np.linalg.norm(m)), rtol=1e-4
    )
    assert float(r.nc1) > 0.1 and float(r.nc2) > 0.05


def test_streaming_with_mask_equals_one_batch():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    head = rng.normal(size=(3, 3))
    whole = _measure(jnp.asarray(features), jnp.asarray(labels), jnp.asarray(head))[1]
    m = nc.init_moments(3, 3)
    for i in range(0, 64, 16):  # last batch padded and masked
        f = np.zeros((16, 3))
        y = np.zeros(16, int)
        part = slice(i, min(i + 16, 50))
        f[: part.stop - i], y[: part.stop - i] = features[part], labels[part]
        m = nc.update_moments(m, f, y, np.arange(16) < part.stop - i)
    np.testing.assert_allclose(np.array(nc.measure_collapse(m, head)), np.array(whole), rtol=1e-4)
