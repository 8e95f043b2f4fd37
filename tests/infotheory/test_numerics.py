"""Precision, dtypes, and composability with jit, grad and vmap."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np

from interplay import infotheory as it
from interplay.infotheory import _precision, features_dual, scatter, spectral
from interplay.infotheory import collapse_metrics as nc
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


def _batched_lapack_calls(fn, *args) -> list[str]:
    """LAPACK custom calls in the compiled HLO whose results carry a batch axis."""
    text = jax.jit(fn).lower(*args).compile().as_text()
    calls = [line for line in text.splitlines() if 'custom_call_target="lapack' in line]
    assert calls, "expected LAPACK calls on CPU"
    return [c[:160] for c in calls if re.search(r"\w\[\d+,\d+,\d+", c.split("custom-call(")[0])]


def test_vmapped_metrics_never_batch_lapack():
    """A batched LAPACK call blocks a pool thread on its sub-tasks; two at once on a
    2-core CPU deadlock (seen in vmapped checkpoint analysis). Eigen-solvers loop instead."""
    k = 3
    z, y, w = _data(n=40, d=3, c=4)  # n > d·C: the class-scatter dual and psd_sqrt
    zs, ws = jnp.stack([z + i for i in range(k)]), jnp.stack([w - i for i in range(k)])
    zs, ws = zs.astype(jnp.float32), ws.astype(jnp.float32)
    assert not _batched_lapack_calls(jax.vmap(it.interplay, in_axes=(0, None, 0)), zs, y, ws)
    small = zs[:, :8]  # n ≤ d·C: the n × n path
    assert not _batched_lapack_calls(jax.vmap(it.interplay, in_axes=(0, None, 0)), small, y[:8], ws)
    grad = jax.vmap(jax.grad(lambda f, h: it.interplay(f, y, h).mi), in_axes=(0, 0))
    assert not _batched_lapack_calls(grad, zs, ws)
    stats = jax.vmap(lambda f: scatter.update(scatter.init(4, 3), f, y))(zs)
    key = jax.random.key(0)
    for method in ("exact", "lanczos"):
        measure = jax.vmap(
            lambda s, h, m=method: scatter.measure(
                s, h, method=m, key=key, num_probes=4, num_matvecs=5
            )
        )
        assert not _batched_lapack_calls(measure, stats, ws)
    moments = jax.vmap(lambda f: nc.update_moments(nc.init_moments(4, 3), f, y))(zs)
    assert not _batched_lapack_calls(jax.vmap(nc.measure_collapse), moments, ws)


def test_eigvalsh_on_both_sides_of_the_bisection_size_matches_float64():
    """On CPU, LAPACK below `TRIDIAGONAL_MIN_DIM`, tridiagonalization and bisection from it."""
    rng = np.random.default_rng(0)
    for n in (spectral.TRIDIAGONAL_MIN_DIM - 1, spectral.TRIDIAGONAL_MIN_DIM):
        a = rng.normal(size=(n, n))
        m = a @ a.T / n
        lowered = jax.jit(spectral.eigvalsh).lower(jnp.asarray(m, jnp.float32)).as_text()
        assert ("lapack_ssyevd" in lowered) == (n < spectral.TRIDIAGONAL_MIN_DIM), n
        lam = spectral.eigvalsh(jnp.asarray(m, jnp.float32))
        ref = np.linalg.eigvalsh(m)
        np.testing.assert_allclose(lam, ref, atol=1e-5 * ref.max())


def test_loops_only_on_cpu():
    """Off CPU a loop of small kernels is slow (on an H100, batching took the vmapped
    analysis from 0.57 to 0.14 s and the default Lanczos estimate from 0.36 to 0.12 s):
    eigendecompositions under vmap and the class-scatter accumulation loop on CPU only.
    Lowered for CUDA here, without a GPU (`jax.export`)."""
    z, y, w = _data(n=40, d=3, c=4)
    zs, ws = jnp.stack([z, z + 1]).astype(jnp.float32), jnp.stack([w, w - 1]).astype(jnp.float32)
    sums, z100, y100 = jnp.zeros((100, 8, 8)), jnp.ones((1000, 8)), jnp.arange(1000) % 100
    for fn, args in (
        (jax.vmap(it.interplay, in_axes=(0, None, 0)), (zs, y, ws)),
        (jax.vmap(jax.grad(lambda f, h: it.interplay(f, y, h).mi)), (zs, ws)),
        (scatter.add_class_sums, (sums, z100, y100)),
    ):
        loops = {
            p: jax.export.export(jax.jit(fn), platforms=[p])(*args).mlir_module().count("while")
            for p in ("cpu", "cuda")
        }
        assert loops["cpu"] > 0 and loops["cuda"] == 0, loops


def _dot_precisions(fn, *args) -> list[str]:
    """The precision of every matrix product in `fn`'s lowering."""
    text = jax.jit(fn).lower(*args).as_text()
    return re.findall(r"dot_general .*precision = \[(\w+), \w+\]", text)


def _library_calls():
    """One call of every entry point with matrix products; gradients where they are taken."""
    z, y, w = _data(n=40, d=8, c=4)
    z, y, w = jnp.asarray(z, jnp.float32), jnp.asarray(y), jnp.asarray(w, jnp.float32)
    stats = scatter.update(scatter.init(4, 8), z, y)
    moments = nc.update_moments(nc.init_moments(4, 8), z, y)
    kept, key = features_dual.keep(it.normalize(z), y, 4), jax.random.key(0)
    small = dict(num_probes=4, num_matvecs=4, num_deflate=2)
    return {
        "gram": (it.gram, z),
        "entropy": (jax.grad(lambda z: it.entropy(z)), z),
        "matrix_entropy": (jax.grad(lambda z: it.matrix_entropy(it.gram(z))), z),
        "mutual_information": (
            jax.grad(lambda z, w: it.mutual_information(it.gram(z), it.gram(w[y])), (0, 1)),
            z,
            w,
        ),
        "mir, hdr": (lambda z, w: (it.mir(z, w[y]), it.hdr(z, w[y])), z, w),
        "interplay": (jax.grad(lambda z, w: it.interplay(z, y, w).mir, (0, 1)), z, w),
        "regularizer": (
            jax.grad(lambda z: it.losses.interplay_regularizer(z, y, w, mi_weight=1, hdr_weight=1)),
            z,
        ),
        "cross_modal": (jax.grad(lambda z: it.losses.cross_modal_alignment(z, y, w)), z),
        "scatter.update": (scatter.update, stats, z, y),
        "scatter.measure exact": (lambda s: scatter.measure(s, w), stats),
        "scatter.measure lanczos": (
            lambda s: scatter.measure(s, w, method="lanczos", key=key, **small),
            stats,
        ),
        "features_dual.measure": (lambda k: features_dual.measure(k, w, key, **small), kept),
        "silhouette": (lambda z: it.silhouette_score(z, y, num_classes=4), z),
        "davies_bouldin": (lambda z: it.davies_bouldin_index(z, y, num_classes=4), z),
        "class_entropies": (lambda z: it.class_entropies(z, y, num_classes=4), z),
        "collapse": (lambda m: nc.measure_collapse(nc.update_moments(m, z, y), w), moments),
        "nearest_mean": (
            lambda z, logits: nc.nearest_mean_agreement(z, logits, moments),
            z,
            z @ w.T,
        ),
    }


def test_matmuls_at_full_precision_on_every_backend():
    """GPUs default to TF32 and TPUs to bf16 passes (on an H200, ΔMIR 2.7e-4 against 2.7e-6):
    every matrix product the library traces is at HIGHEST, with `_precision.MATMUL_PRECISION =
    None` the caller's (here DEFAULT, which shows the check can fail), and a caller's own
    product beside a metric keeps its _precision."""
    for name, (fn, *args) in _library_calls().items():
        found = _dot_precisions(fn, *args)
        assert found and set(found) == {"HIGHEST"}, (name, found)
    fn, *args = _library_calls()["interplay"]
    try:
        _precision.MATMUL_PRECISION = None
        assert set(_dot_precisions(fn, *args)) == {"DEFAULT"}
    finally:
        _precision.MATMUL_PRECISION = "highest"
    z = jnp.ones((6, 3))
    assert _dot_precisions(lambda z: it.gram(z) @ z, z) == ["HIGHEST", "DEFAULT"]


RENYI_ALPHAS = (0.5, 0.9, 1.01, 2.0)


def test_float32_renyi_within_1e4_of_float64():
    rng = np.random.default_rng(0)
    for n in (128, 512):  # square Gaussian data: a full spectrum down to ~1e-9
        x = rng.normal(size=(n, n))
        for alpha in RENYI_ALPHAS:
            got = it.entropy(x.astype(np.float32), alpha=alpha)
            want = reference.renyi_entropy(reference.gram(x), alpha)
            assert abs(float(got) - want) < 1e-4, (n, alpha)
    z = rng.normal(size=(512, 16))  # rank 16: round-off in a 496-dimensional null space
    for alpha in RENYI_ALPHAS:
        got = it.matrix_entropy(it.gram(z.astype(np.float32)), alpha=alpha)
        assert abs(float(got) - reference.renyi_entropy(reference.gram(z), alpha)) < 1e-4


def test_near_collapse_rbf_spectrum_needs_float64():
    """The documented limit of float32 (`spectral.null_tolerance`) and its remedy."""
    features, _, _ = reference.etf_features(10, 50, 64)
    features = features + 0.01 * np.random.default_rng(0).normal(size=features.shape)
    k = np.exp(-((features[:, None] - features[None]) ** 2).sum(-1) / 2)
    want = reference.renyi_entropy(k, 0.5)
    assert abs(float(it.matrix_entropy(k.astype(np.float32), alpha=0.5)) - want) > 1e-2
    with jax.enable_x64(True):
        np.testing.assert_allclose(it.matrix_entropy(k, alpha=0.5), want, atol=1e-8)
