"""Every formulation agrees: naive n × n, dual, class-structured, streaming, Lanczos, sharded."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import NamedSharding, PartitionSpec
from matfree import decomp

from interplay import infotheory as it
from interplay.infotheory import features_dual, scatter, spectral
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


def _class_sums_float64(z, labels, num_classes):
    z = np.asarray(z, np.float64)
    return np.stack([z[labels == c].T @ z[labels == c] for c in range(num_classes)])


def test_class_sorted_sums_match_float64_numpy():
    # C = 100 over 1 000 rows takes the class-sorted windows; class 0 spans ten windows of 32,
    # classes 90–99 are empty.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1000, 16)).astype(np.float32)
    labels = rng.permutation(np.concatenate([np.zeros(300, int), rng.integers(1, 90, 700)]))
    sums = jnp.ones((100, 16, 16))
    got = jax.jit(scatter.add_class_sums)(sums, z, labels)
    want = 1 + _class_sums_float64(z, labels, 100)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    # Masked rows (zeroed, as `update` does) take part in nothing; vmapped over two batches.
    mask = rng.random(1000) < 0.5
    stats = jax.vmap(lambda f: scatter.update(scatter.init(100, 16), f, labels, mask))(
        np.stack([z, -2 * z])
    )
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    want = _class_sums_float64(zn[mask], labels[mask], 100)
    np.testing.assert_allclose(stats.scatter, np.stack([want, want]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(stats.counts[0], np.bincount(labels[mask], minlength=100))


@pytest.mark.parametrize("width", [6, 50])  # narrower than C = 40: unit head rows; wider: G^½
def test_kept_features_matvec_equals_the_float64_dual(width):
    rng = np.random.default_rng(1)
    z, labels = rng.normal(size=(300, 8)), rng.integers(0, 40, 300)
    head = rng.normal(size=(40, width))
    kept = features_dual.keep(jnp.asarray(z, jnp.float32), jnp.asarray(labels), 40)
    factor = features_dual.head_factor(jnp.asarray(head, jnp.float32))
    # Float64 NumPy: the dual Σ_c S_c ⊗ l_c l_cᵀ of unit rows, with l_c from NumPy too.
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    hn = head / np.linalg.norm(head, axis=1, keepdims=True)
    lam, u = np.linalg.eigh(hn @ hn.T)
    l64 = hn if width < 40 else (u * np.sqrt(np.clip(lam, 0, None))) @ u.T
    s = _class_sums_float64(zn, labels, 40)
    dual = np.einsum("cab,ci,cj->aibj", s, l64, l64).reshape(8 * l64.shape[1], -1)
    v = rng.normal(size=(8, l64.shape[1]))
    got = features_dual.joint_matvec(jnp.asarray(v, jnp.float32), kept, factor, 1.0)
    np.testing.assert_allclose(np.ravel(got), dual @ np.ravel(v), rtol=1e-4, atol=1e-4)
    # The same operator in sample space: the joint Gram G(Z) ⊙ G(W_Y), rows in class order.
    order = np.argsort(labels, kind="stable")
    joint = ((zn @ zn.T) * (l64[labels] @ l64[labels].T))[np.ix_(order, order)]
    t = rng.normal(size=300)
    got = features_dual.sample_matvec(jnp.asarray(t, jnp.float32), kept, factor, 1.0)
    np.testing.assert_allclose(got, joint @ t, rtol=1e-4, atol=1e-3)


def test_kept_features_lanczos_in_sample_space_when_fewer_samples_than_dual_size():
    # n = 48 < d·d' = 256: Lanczos runs on the 48 × 48 joint Gram (no dual null space to probe).
    features, labels, head = _data(48, 16, 40)
    exact = it.dataset_interplay([(features, labels)], head, num_classes=40, method="exact")
    _assert_matches(exact, reference.interplay(features, labels, head))
    plain = it.dataset_interplay(
        [(features, labels)], head, num_classes=40, method="lanczos", num_deflate=0
    )
    assert float(plain.mi_stderr) > 0
    assert abs(float(plain.mi - exact.mi)) <= 4 * float(plain.mi_stderr)
    whole = it.dataset_interplay([(features, labels)], head, num_classes=40, method="lanczos")
    assert float(whole.mi_stderr) == 0  # the 128 deflation vectors span all 48 samples
    np.testing.assert_allclose(whole.h_joint, exact.h_joint, rtol=1e-4)


def test_kept_features_lanczos_within_its_standard_error_of_the_exact_dual():
    # n = 300 ≤ C·d = 320: dataset_interplay keeps the features, Lanczos runs on them.
    features, labels, head = _data(300, 8, 40)
    batches = [(features[:150], labels[:150]), (features[150:], labels[150:])]
    exact = it.dataset_interplay(batches, head, num_classes=40, method="exact")
    est = it.dataset_interplay(
        batches, head, num_classes=40, method="lanczos", num_probes=128, num_deflate=0
    )
    _assert_matches(exact, reference.interplay(features, labels, head))
    assert float(est.mi_stderr) > 0
    np.testing.assert_allclose(est.h_features, exact.h_features, rtol=1e-5)
    np.testing.assert_allclose(est.h_heads, exact.h_heads, rtol=1e-5)
    assert abs(float(est.mi - exact.mi)) <= 4 * float(est.mi_stderr), (est, exact)
    deflated = it.dataset_interplay(  # of the d·d' = 64 directions, 16 taken exactly
        batches, head, num_classes=40, method="lanczos", num_probes=32, num_deflate=16
    )
    assert 0 < float(deflated.mi_stderr) < float(est.mi_stderr)
    assert abs(float(deflated.mi - exact.mi)) <= 4 * float(deflated.mi_stderr) + 1e-3


def test_lanczos_within_its_standard_error():
    features, labels, head = _data(2000, 24, 10)
    stats = scatter.update(scatter.init(10, 24), features, labels)
    g = it.gram(head)
    exact = float(scatter.joint_entropy_exact(stats, g))
    est, sem = scatter.joint_entropy_lanczos(
        stats, g, jax.random.key(0), num_probes=64, num_matvecs=40, num_deflate=0
    )
    assert float(sem) > 0
    assert abs(float(est) - exact) <= 4 * float(sem) + 1e-3 * exact, (float(est), exact, float(sem))
    approx = it.dataset_interplay([(features, labels)], head, num_classes=10, method="lanczos")
    assert abs(float(approx.mir) - float(scatter.measure(stats, head).mir)) < 0.02


def test_deflated_lanczos_is_exact_on_the_whole_space_and_tighter_below_it():
    features, labels, head = _data(2000, 12, 10)  # dC = 120
    stats = scatter.update(scatter.init(10, 12), features, labels)
    g = it.gram(head)
    exact = float(scatter.joint_entropy_exact(stats, g))
    key = jax.random.key(0)
    # Deflating all dC directions leaves nothing to the probes: the Ritz values are the spectrum.
    whole, sem = scatter.joint_entropy_lanczos(stats, g, key, num_probes=8, num_deflate=120)
    assert float(sem) == 0
    np.testing.assert_allclose(float(whole), exact, rtol=1e-4)
    plain, plain_sem = scatter.joint_entropy_lanczos(
        stats, g, key, num_probes=64, num_matvecs=30, num_deflate=0
    )
    est, est_sem = scatter.joint_entropy_lanczos(
        stats, g, key, num_probes=64, num_matvecs=30, num_deflate=24
    )
    assert 0 < float(est_sem) < float(plain_sem) / 2, (float(est_sem), float(plain_sem))
    assert abs(float(est) - exact) <= 4 * float(est_sem) + 1e-4 * exact, (float(est), exact)
    approx = it.dataset_interplay(
        [(features, labels)], head, num_classes=10, method="lanczos", num_deflate=24
    )
    assert abs(float(approx.mir) - float(scatter.measure(stats, head).mir)) < 0.01


def test_auto_method_chooses_by_dual_size_and_backend():
    assert scatter.choose_method(256, 10) == "exact"  # this CPU: up to dC = 6 144
    assert scatter.choose_method(512, 100) == "lanczos"
    assert scatter.choose_method(128, 48, "cpu") == "exact"  # dC = 6 144, the CPU's limit
    assert scatter.choose_method(128, 49, "cpu") == "lanczos"
    assert scatter.choose_method(512, 48, "gpu") == "exact"  # 24 576, an H100's
    assert scatter.choose_method(512, 49, "gpu") == "lanczos"
    assert scatter.choose_method(128, 49, "tpu") == "lanczos"  # unmeasured: the CPU's


def test_sharded_over_eight_devices_equals_single_device():
    assert jax.device_count() == 8, "conftest sets JAX_NUM_CPU_DEVICES=8"
    mesh = jax.make_mesh((8,), ("data",))
    shard = NamedSharding(mesh, PartitionSpec("data"))
    features, labels, head = _data(512, 16, 5)
    # Batches of 128 take the class-sorted windows (per device, then all-reduced), of 64 the
    # one-hot contraction (see `scatter.add_class_sums`).
    for size in (128, 64):
        batches = [(features[i : i + size], labels[i : i + size]) for i in range(0, 512, size)]
        sharded = [(jax.device_put(f, shard), jax.device_put(y, shard)) for f, y in batches]
        assert len(sharded[0][0].sharding.device_set) == 8
        got = it.dataset_interplay(sharded, head, num_classes=5)
        want = it.dataset_interplay(batches, head, num_classes=5)
        _assert_matches(got, want, rtol=1e-5, atol=1e-5)
    # The per-batch function under jit with sharded input, too.
    f = jax.jit(it.interplay)
    _assert_matches(f(*sharded[0], head), it.interplay(*batches[0], head), rtol=1e-5, atol=1e-5)


def test_deflation_stays_unbiased_for_a_poor_subspace():
    # A wide Marchenko–Pastur spectrum and Q random (no subspace iteration): the split
    # Σ q_iᵀ f(ρ) q_i + E (Pv)ᵀ f(ρ) (Pv) is still unbiased. The Ritz values of QᵀρQ in place
    # of the first term would overestimate (f is concave) by 0.12 nats, ≈ 10 standard errors.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 210))
    rho = a @ a.T / np.trace(a @ a.T)
    lam, u = np.linalg.eigh(rho)
    exact = -np.sum(lam * np.log(lam))
    q = np.linalg.qr(rng.normal(size=(200, 100)))[0]
    ritz = np.linalg.eigvalsh(q.T @ rho @ q)
    top = np.trace(q.T @ (u * (-lam * np.log(lam))) @ u.T @ q)
    est, sem = spectral.entropy_lanczos(
        lambda v, m: m @ v,
        jnp.zeros(200),
        jax.random.key(0),
        jnp.asarray(rho, jnp.float32),
        num_probes=1024,
        num_matvecs=30,
        num_deflate=100,
        deflate_iters=0,
    )
    assert -np.sum(ritz * np.log(ritz)) - top > 6 * float(sem) > 0
    assert abs(float(est) - exact) <= 4 * float(sem), (float(est), exact, float(sem))


@functools.cache
def _bracket(steps: int):
    """Jitted `(gauss, radau)` of `steps` Lanczos steps on `(rho, v)`: one program per count."""

    def bracket(rho, v):
        lanczos = decomp.tridiag_sym(steps)(lambda x: rho @ x, v)
        return spectral.gauss_radau_bracket(lanczos.J_small, jnp.linalg.norm(lanczos.residual))

    return jax.jit(bracket)


def _bracket_case(seed, rank, steps):
    """`(radau, float64 vᵀ f(ρ) v, gauss)` for a random ρ (40 × 40, given rank), unit v."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(40, rank)) * rng.uniform(0.1, 3, size=rank) ** 3
    rho = a @ a.T / np.sum(a * a)
    lam, u = np.linalg.eigh(rho)
    lam = np.clip(lam, 1e-300, None)
    v = rng.normal(size=40)
    v /= np.linalg.norm(v)
    exact = np.sum((u.T @ v) ** 2 * -lam * np.log(lam))
    gauss, radau = _bracket(steps)(jnp.asarray(rho, jnp.float32), jnp.asarray(v, jnp.float32))
    return float(radau), exact, float(gauss)


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**16), st.integers(1, 40), st.integers(2, 12))
def test_gauss_and_radau_bracket_each_quadrature(seed, rank, steps):
    # Any rank (null spaces included), one float32 Lanczos run, the float64 value.
    radau, exact, gauss = _bracket_case(seed, rank, steps)
    assert radau - 1e-5 <= exact <= gauss + 1e-5, (radau, exact, gauss)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bracket_midpoint_removes_most_of_the_gauss_bias(seed):
    radau, exact, gauss = _bracket_case(seed, rank=40, steps=3)
    assert radau < exact - 5e-4 and gauss > exact + 1e-3, (radau, exact, gauss)
    assert abs((gauss + radau) / 2 - exact) < (gauss - exact) / 2
