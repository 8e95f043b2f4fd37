"""Bad input never becomes a plausible number: eager errors, NaN under jit/vmap, named by checkify.

Every public `infotheory` function is walked through a table of bad inputs in three
modes: eagerly (a `ValueError` naming the problem, or NaN where the function is a pure
transform), under `jit` + `checkify` (the same message), and under `vmap` over a good
and a bad input (NaN for the bad one only, finite for the good one).
"""

import re

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from jax.experimental import checkify

from interplay import infotheory as it
from interplay.infotheory import collapse_metrics as nc
from interplay.infotheory import losses, scatter

RNG = np.random.default_rng(0)
Z = RNG.normal(size=(6, 4)).astype(np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])
W = RNG.normal(size=(3, 4)).astype(np.float32)
K = (Z @ Z.T).astype(np.float32)
Z_NAN = np.where(np.eye(6, 4) > 0, np.nan, Z).astype(np.float32)
Z_INF = Z.copy()
Z_INF[2, 1] = np.inf
Y_BAD = np.where(Y == 0, 1000, Y)
W_NAN = W.copy()
W_NAN[1, 0] = np.nan
K_NAN = K.copy()
K_NAN[0, 1] = K_NAN[1, 0] = np.nan
K_NOT_PSD = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)
K_ASYM = np.array([[1.0, 0.9], [0.1, 1.0]], np.float32)
K_ZERO = np.zeros((2, 2), np.float32)
MASK_HALF = np.full(6, 0.5, np.float32)


def _scatter_measure(z, y, w):
    return scatter.measure(scatter.update(scatter.init(3, 4), z, y), w)


def _nc(z, y, w):
    return nc.measure_collapse(nc.update_moments(nc.init_moments(3, 4), z, y), w)


def _regularizer(z, y, w, mask=None):
    return losses.interplay_regularizer(z, y, w, mi_weight=1.0, hdr_weight=1.0, mask=mask)


# (id, function, good args, bad args, message of the eager/checkify error or None for NaN)
CASES = [
    ("interplay/features-nan", it.interplay, (Z, Y, W), (Z_NAN, Y, W), "features contains NaN"),
    ("interplay/features-inf", it.interplay, (Z, Y, W), (Z_INF, Y, W), "features contains NaN"),
    ("interplay/labels", it.interplay, (Z, Y, W), (Z, Y_BAD, W), r"labels must lie in \[0, 3\)"),
    ("interplay/head", it.interplay, (Z, Y, W), (Z, Y, W_NAN), "head contains NaN"),
    ("interplay/mask", it.interplay, (Z, Y, W, Y * 0 + 1.0), (Z, Y, W, MASK_HALF), "mask entries"),
    ("regularizer/features", _regularizer, (Z, Y, W), (Z_NAN, Y, W), "features contains NaN"),
    ("regularizer/labels", _regularizer, (Z, Y, W), (Z, Y_BAD, W), "labels must lie"),
    ("entropy", it.entropy, (Z,), (Z_NAN,), "x contains NaN"),
    ("mir", it.mir, (Z, W[Y]), (Z_NAN, W[Y]), "z contains NaN"),
    ("hdr", it.hdr, (Z, W[Y]), (Z, W_NAN[Y]), "w contains NaN"),
    ("matrix_entropy/nan", it.matrix_entropy, (K,), (K_NAN,), "k contains NaN"),
    ("matrix_entropy/psd", it.matrix_entropy, (K[:2, :2],), (K_NOT_PSD,), "semi-definite"),
    ("matrix_entropy/sym", it.matrix_entropy, (K[:2, :2],), (K_ASYM,), "must be symmetric"),
    ("matrix_entropy/trace", it.matrix_entropy, (K[:2, :2],), (K_ZERO,), "positive trace"),
    ("mutual_information", it.mutual_information, (K, K), (K, K_NAN), "k2 contains NaN"),
    ("scatter/features", _scatter_measure, (Z, Y, W), (Z_NAN, Y, W), "features contains NaN"),
    ("scatter/labels", _scatter_measure, (Z, Y, W), (Z, Y_BAD, W), "labels must lie"),
    ("scatter/head", _scatter_measure, (Z, Y, W), (Z, Y, W_NAN), "head contains NaN"),
    ("gram", it.gram, (Z,), (Z_NAN,), None),
    ("normalize", it.normalize, (Z,), (Z_INF,), None),
    ("collapse_metrics/labels", _nc, (Z, Y, W), (Z, Y_BAD, W), None),
    ("collapse_metrics/features", _nc, (Z, Y, W), (Z_NAN, Y, W), None),
]


def _values(out) -> list[np.ndarray]:
    """The numbers a reader would take for the result."""
    if isinstance(out, it.Interplay):
        out = (out.mi, out.mir, out.hdr)
    elif isinstance(out, nc.CollapseMetrics):
        out = tuple(out)
    return [np.asarray(x) for x in jax.tree.leaves(out)]


def _assert_nan(out, index=None):
    for v in _values(out):
        v = v if index is None else v[index]
        assert np.isnan(v).any(), v


@pytest.mark.parametrize("name,fn,good,bad,match", CASES, ids=[c[0] for c in CASES])
def test_eager_raises_or_gives_nan(name, fn, good, bad, match):
    assert all(np.isfinite(v).all() for v in _values(fn(*good)))
    if match is None:
        _assert_nan(fn(*bad))
    else:
        with pytest.raises(ValueError, match=match):
            fn(*bad)


@pytest.mark.parametrize("name,fn,good,bad,match", CASES, ids=[c[0] for c in CASES])
def test_jit_gives_nan_and_checkify_names_the_error(name, fn, good, bad, match):
    _assert_nan(jax.jit(fn)(*bad))
    err, out = checkify.checkify(jax.jit(fn), errors=checkify.user_checks)(*bad)
    if match is None:
        assert err.get() is None
        _assert_nan(out)
    else:
        assert err.get() is not None and re.search(match, err.get()), err.get()
    err, _ = checkify.checkify(jax.jit(fn), errors=checkify.user_checks)(*good)
    assert err.get() is None


@pytest.mark.parametrize("name,fn,good,bad,match", CASES, ids=[c[0] for c in CASES])
def test_vmap_isolates_the_bad_member(name, fn, good, bad, match):
    stacked = [jnp.stack([jnp.asarray(g), jnp.asarray(b)]) for g, b in zip(good, bad, strict=True)]
    out = jax.jit(jax.vmap(fn))(*stacked)
    assert all(np.isfinite(v[0]).all() for v in _values(out))
    _assert_nan(out, index=1)
    err, _ = checkify.checkify(jax.jit(jax.vmap(fn)), errors=checkify.user_checks)(*stacked)
    assert (err.get() is None) == (match is None)


def test_a_diverged_checkpoint_in_a_vmapped_trajectory_reads_nan_not_zero():
    features = jnp.stack([jnp.asarray(Z), jnp.full_like(Z, jnp.nan)])
    r = jax.jit(jax.vmap(it.interplay, in_axes=(0, None, None)))(features, Y, W)
    assert np.isfinite(r.mir[0]) and np.isnan(r.mir[1]) and np.isnan(r.hdr[1])


def test_other_eager_gaps_are_refused():
    with pytest.raises(ValueError, match="pass kernel.T"):
        it.interplay(Z, Y, np.ones((4, 3), np.float32))  # a Flax kernel (d, C), d > C
    with pytest.raises(ValueError, match="pass kernel.T"):
        _regularizer(Z, Y, np.ones((4, 3), np.float32))
    assert np.isfinite(it.interplay(Z, Y, W[:, :3], match_width=False).mir)  # on purpose
    with pytest.raises(ValueError, match="num_classes=3 disagrees"):
        scatter.measure(scatter.init(3, 4), np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="mask keeps 1 samples"):
        it.interplay(Z, Y, W, mask=np.eye(6)[0])
    with pytest.raises(ValueError, match="static Python number"):
        jax.jit(it.entropy)(Z, 0.5)
    with pytest.raises(ValueError, match="α = ∞ is not supported"):
        it.entropy(Z, alpha=np.inf)
    with pytest.raises(ValueError, match="must be an integer"):
        it.nc_mir(3.5)
    with pytest.raises(ValueError, match="at least 2"):
        it.nc_mir(1)
    with pytest.raises(ValueError, match="PRNG key"):
        it.simplex_etf(3, 4, 0)
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        it.simplex_etf(1, 4, jax.random.key(0))
    with pytest.raises(ValueError, match="positive integers"):
        scatter.init(0, 4)
    with pytest.raises(ValueError, match="must be real"):
        it.interplay(Z.astype(np.complex64), Y, W)
    with pytest.raises(ValueError, match="rank 2"):
        it.gram(Z.ravel())
    with pytest.raises(ValueError, match="contains NaN"):
        scatter.update(scatter.init(3, 4), Z_NAN, Y)
    r = it.interplay(Z.tolist(), Y.tolist(), W.tolist())  # Python lists are ArrayLike
    assert np.isclose(r.mir, it.interplay(Z, Y, W).mir)


def test_scale_invariance_over_the_float32_range():
    want = it.interplay(Z, Y, W)
    for scale in (1e19, 1e-20):
        got = it.interplay(Z * np.float32(scale), Y, W * np.float32(scale))
        np.testing.assert_allclose(got.mir, want.mir, rtol=1e-5)
        np.testing.assert_allclose(got.hdr, want.hdr, rtol=1e-5)


def test_mi_agrees_with_mir_in_degenerate_cases():
    zero = it.interplay(np.zeros_like(Z), Y, W)
    assert float(zero.mi) == 0 and float(zero.mir) == 0
    one_class = it.interplay(Z, np.zeros(6, int), W)
    assert float(one_class.mi) == 0 and float(one_class.mir) == 0


def test_lanczos_without_key_uses_the_same_default_key_in_both_entry_points():
    # n = 6 < d·C: dataset_interplay keeps the features (sample space), measure has the scatter.
    stats = scatter.update(scatter.init(3, 4), Z, Y)
    key = jax.random.key(0)
    for measure in (
        lambda **k: scatter.measure(stats, W, method="lanczos", num_deflate=0, **k),
        lambda **k: it.dataset_interplay(
            [(Z, Y)], W, num_classes=3, method="lanczos", num_deflate=0, **k
        ),
    ):
        a, b = measure(), measure(key=key)
        np.testing.assert_array_equal(a.mir, b.mir)
        assert float(a.mi_stderr) > 0  # the probes, hence the key, were used
    assert float(scatter.measure(stats, W).mi_stderr) == 0


_sizes = st.tuples(st.integers(2, 8), st.integers(1, 5), st.integers(2, 4))


@st.composite
def _batch(draw, finite: bool):
    n, d, c = draw(_sizes)
    values = st.floats(-1e6, 1e6, width=32)
    z = draw(hnp.arrays(np.float32, (n, d), elements=values))
    w = draw(hnp.arrays(np.float32, (c, d), elements=values))
    y = draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, c - 1)))
    if not finite:
        bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        target = draw(st.sampled_from(["z", "w"]))
        arr = z if target == "z" else w
        arr[draw(st.integers(0, arr.shape[0] - 1)), draw(st.integers(0, arr.shape[1] - 1))] = bad
    return z, y, w


_jitted = jax.jit(it.interplay)


@given(_batch(finite=True))
def test_finite_input_never_gives_nan_under_jit(batch):
    r = _jitted(*batch)
    assert all(np.isfinite(v) for v in (r.mi, r.mir, r.hdr, r.h_features, r.h_heads))


@given(_batch(finite=False))
def test_non_finite_input_never_gives_a_finite_ratio_under_jit(batch):
    r = _jitted(*batch)
    assert np.isnan(r.mir) and np.isnan(r.hdr)
