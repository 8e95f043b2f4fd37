"""Values against closed forms and the papers' Neural-Collapse numbers (docs/papers.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from interplay import infotheory as it
from tests import reference


def test_identity_has_entropy_log_n():
    for n in (2, 7, 64):
        np.testing.assert_allclose(it.matrix_entropy(jnp.eye(n)), np.log(n), rtol=1e-6)
        np.testing.assert_allclose(it.entropy(jnp.eye(n)), np.log(n), rtol=1e-6)


def test_rank_one_has_zero_entropy():
    x = jnp.tile(jax.random.normal(jax.random.key(0), (1, 16)), (50, 1))
    assert abs(float(it.entropy(x))) < 1e-5
    assert abs(float(it.matrix_entropy(jnp.ones((50, 50))))) < 1e-4


def test_label_kernel_entropy_is_shannon_entropy_of_class_proportions():
    counts = np.array([5, 1, 3, 11])
    labels = np.repeat(np.arange(4), counts)
    kernel = (labels[:, None] == labels[None, :]).astype(np.float32)
    p = counts / counts.sum()
    shannon = -(p * np.log(p)).sum()
    np.testing.assert_allclose(it.matrix_entropy(kernel), shannon, rtol=1e-5)
    # The same through the head path: orthogonal head rows give the label kernel.
    r = it.interplay(jnp.ones((len(labels), 3)), labels, jnp.eye(4), match_width=False)
    np.testing.assert_allclose(r.h_heads, shannon, rtol=1e-5)


def test_mutual_information_with_identity_is_entropy():
    k = it.gram(jax.random.normal(jax.random.key(1), (12, 5)))
    np.testing.assert_allclose(
        it.mutual_information(k, jnp.eye(12)), it.matrix_entropy(k), rtol=1e-5
    )


def test_renyi_two_is_log_frobenius_and_matches_eigenvalues():
    k = reference.gram(np.random.default_rng(0).normal(size=(30, 8)))
    lam = np.linalg.eigvalsh(k / 30)
    np.testing.assert_allclose(it.matrix_entropy(k, alpha=2), -np.log((lam**2).sum()), rtol=1e-5)
    lam = lam[lam > 1e-12]
    np.testing.assert_allclose(
        it.matrix_entropy(k, alpha=0.5), np.log((lam**0.5).sum()) / 0.5, rtol=1e-4
    )
    np.testing.assert_allclose(it.entropy(np.eye(5), alpha=3), np.log(5), rtol=1e-5)


@pytest.mark.parametrize("c", [3, 4, 10, 100])
def test_balanced_etf_matches_neural_collapse_theory(c):
    features, labels, head = reference.etf_features(c, per_class=3, dim=c + 2)
    r = it.interplay(features, labels, head)
    np.testing.assert_allclose(r.h_features, np.log(c - 1), rtol=2e-4)
    np.testing.assert_allclose(r.h_heads, np.log(c - 1), rtol=2e-4)
    assert float(r.hdr) < 1e-3
    np.testing.assert_allclose(r.mir, reference.nc_mir(c), atol=1e-3)
    np.testing.assert_allclose(it.nc_mir(c), reference.nc_mir(c), rtol=1e-6)
    np.testing.assert_allclose(it.nc_interplay(c).mir, reference.nc_mir(c), atol=1e-5)


def test_paper_quoted_nc_mir_values():
    for c, quoted in [(3, 0.5), (10, 0.952351), (100, 0.997813)]:
        assert abs(float(it.nc_mir(c)) - quoted) < 1e-6


def test_unbalanced_nc_values_match_naive_n_by_n():
    counts = np.array([2, 7, 3, 5, 1])
    etf = it.simplex_etf(5, 8, jax.random.key(3))
    labels = np.repeat(np.arange(5), counts)
    expected = reference.interplay(np.asarray(etf)[labels], labels, np.asarray(etf))
    got = it.nc_interplay(5, counts)
    np.testing.assert_allclose(got.h_features, expected["h_features"], rtol=1e-4)
    np.testing.assert_allclose(got.mir, expected["mir"], atol=1e-4)
    np.testing.assert_allclose(it.nc_mir(5, counts), expected["mir"], atol=1e-4)


def test_simplex_etf_geometry():
    w = it.simplex_etf(10, 12, jax.random.key(0))
    np.testing.assert_allclose(w @ w.T, it.etf_gram(10), atol=1e-5)
    np.testing.assert_allclose(w.sum(0), 0, atol=1e-5)


def test_two_classes_at_collapse_follow_the_zero_entropy_convention():
    features, labels, head = reference.etf_features(2, per_class=4, dim=3)
    r = it.interplay(features, labels, head)
    assert abs(float(r.h_features)) < 1e-4 and abs(float(r.h_heads)) < 1e-4
    assert float(r.mir) == 0.0 and float(r.hdr) == 0.0
    assert float(it.nc_mir(2)) == 0.0
