"""Every formulation agrees: naive n × n, dual, class-structured, streaming, Lanczos, sharded."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import infotheory as it
from infotheory import scatter
from tests import reference

FIELDS = ("h_features", "h_heads", "h_joint", "mi", "mir", "hdr")


def _data(n, d, c, seed=0, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    # Class-dependent means so that features carry label information.
    means = 2 * jax.random.normal(k3, (c, d), dtype)
    labels = jax.random.randint(k2, (n,), 0, c)
    features = means[labels] + jax.random.normal(k1, (n, d), dtype)
    head = means + 0.5 * jax.random.normal(k1, (c, d), dtype)
    return features, labels, head


def _assert_matches(got, expected, rtol=1e-3, atol=1e-3):
    for f in FIELDS:
        exp = expected[f] if isinstance(expected, dict) else getattr(expected, f)
        tol = atol if f in ("mir", "hdr") else rtol * abs(float(exp)) + 1e-6
        assert abs(float(getattr(got, f)) - float(exp)) <= tol, (f, got, expected)


@pytest.mark.parametrize(
    "n,d,c",
    [(40, 8, 3), (40, 64, 5), (300, 4, 3), (9, 2, 4)],  # n×n joint, d<n dual, dC<n dual, tiny
)
def test_interplay_matches_naive_reference(n, d, c):
    features, labels, head = _data(n, d, c)
    _assert_matches(
        it.interplay(features, labels, head), reference.interplay(features, labels, head)
    )


def test_dual_entropy_matches_n_by_n():
    features, _, _ = _data(200, 16, 3)
    np.testing.assert_allclose(
        it.entropy(features), reference.matrix_entropy(reference.gram(features)), rtol=1e-4
    )
    np.testing.assert_allclose(
        it.entropy(features), it.matrix_entropy(it.gram(features)), rtol=1e-4
    )


def test_mir_of_two_representations_uses_kronecker_dual():
    z, _, _ = _data(150, 4, 3, seed=1)
    w, _, _ = _data(150, 5, 3, seed=2)  # d·d' = 20 < n
    k1, k2 = reference.gram(z), reference.gram(w)
    h1, h2 = reference.matrix_entropy(k1), reference.matrix_entropy(k2)
    mi = h1 + h2 - reference.matrix_entropy(k1 * k2)
    np.testing.assert_allclose(it.mir(z, w), mi / min(h1, h2), atol=1e-4)
    np.testing.assert_allclose(it.hdr(z, w), abs(h1 - h2) / max(h1, h2), atol=1e-4)


def test_streaming_equals_single_batch_and_merges():
    features, labels, head = _data(500, 12, 4)
    whole = it.interplay(features, labels, head)
    batches = [(features[i : i + 64], labels[i : i + 64]) for i in range(0, 500, 64)]
    streamed = it.dataset_interplay(batches, head, num_classes=4, method="exact")
    _assert_matches(streamed, whole, rtol=1e-4, atol=1e-4)
    a = scatter.update(scatter.init(4, 12), features[:200], labels[:200])
    b = scatter.update(scatter.init(4, 12), features[200:], labels[200:])
    merged = scatter.measure(scatter.merge(a, b), head)
    _assert_matches(merged, whole, rtol=1e-4, atol=1e-4)
    _assert_matches(streamed, reference.interplay(features, labels, head))


def test_streaming_masked_update_drops_samples():
    features, labels, head = _data(100, 6, 3)
    mask = (jnp.arange(100) % 3 != 0).astype(jnp.float32)
    stats = scatter.update(scatter.init(3, 6), features, labels, mask)
    keep = np.asarray(mask, bool)
    _assert_matches(scatter.measure(stats, head), it.interplay(features[keep], labels[keep], head))
    _assert_matches(
        it.interplay(features, labels, head, mask), it.interplay(features[keep], labels[keep], head)
    )


def test_lanczos_within_its_standard_error():
    features, labels, head = _data(2000, 24, 10)
    stats = scatter.update(scatter.init(10, 24), features, labels)
    g = it.gram(head)
    exact = float(scatter.joint_entropy_exact(stats, g))
    est, sem = scatter.joint_entropy_lanczos(
        stats, g, jax.random.key(0), num_probes=64, num_matvecs=40
    )
    assert float(sem) > 0
    assert abs(float(est) - exact) <= 4 * float(sem) + 1e-3 * exact, (float(est), exact, float(sem))
    approx = it.dataset_interplay([(features, labels)], head, num_classes=10, method="lanczos")
    assert abs(float(approx.mir) - float(scatter.measure(stats, head).mir)) < 0.02


def test_auto_method_chooses_by_dual_size():
    assert scatter.choose_method(256, 10) == "exact"
    assert scatter.choose_method(512, 100) == "lanczos"


def test_sharded_over_eight_devices_equals_single_device():
    assert jax.device_count() == 8, "conftest sets JAX_NUM_CPU_DEVICES=8"
    mesh = jax.make_mesh((8,), ("data",))
    shard = NamedSharding(mesh, PartitionSpec("data"))
    features, labels, head = _data(512, 16, 5)
    batches = [(features[i : i + 128], labels[i : i + 128]) for i in range(0, 512, 128)]
    sharded = [(jax.device_put(f, shard), jax.device_put(y, shard)) for f, y in batches]
    assert len(sharded[0][0].sharding.device_set) == 8
    got = it.dataset_interplay(sharded, head, num_classes=5)
    _assert_matches(got, it.dataset_interplay(batches, head, num_classes=5), rtol=1e-5, atol=1e-5)
    # The per-batch function under jit with sharded input, too.
    f = jax.jit(it.interplay)
    _assert_matches(f(*sharded[0], head), it.interplay(*batches[0], head), rtol=1e-5, atol=1e-5)
