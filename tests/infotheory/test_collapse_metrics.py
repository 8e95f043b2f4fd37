"""NC1–NC4 against an independent two-pass long-double NumPy reference (tests/reference.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay import infotheory as it
from interplay.infotheory import collapse_metrics as nc
from tests import reference


def _data(spread, offset, counts, dim, seed=0):
    """Class means `N(0, I) + offset`, samples `mean + spread · N(0, I)`, shuffled."""
    rng = np.random.default_rng(seed)
    c = len(counts)
    means = rng.normal(size=(c, dim)) + offset
    labels = rng.permutation(np.repeat(np.arange(c), counts))
    features = means[labels] + spread * rng.normal(size=(len(labels), dim))
    head = means - means.mean(0) + 0.3 * rng.normal(size=(c, dim))
    return features, labels, head


def _moments(features, labels, num_classes, dtype, batch):
    """Streamed in batches of `batch`, the last one padded with garbage and masked."""
    update = jax.jit(nc.update_moments)
    m = nc.init_moments(num_classes, features.shape[1], dtype)
    for i in range(0, len(features), batch):
        f = np.full((batch, features.shape[1]), 1e3)
        y = np.zeros(batch, int)
        part = features[i : i + batch]
        f[: len(part)], y[: len(part)] = part, labels[i : i + batch]
        m = update(m, jnp.asarray(f, dtype), y, np.arange(batch) < len(part))
    return m


MEASURE = jax.jit(nc.measure_collapse)
CASES = {  # name: (spread, offset, class counts, dim)
    "collapsed 1e-3 @ 50": (1e-3, 50.0, [200] * 10, 32),
    "collapsed 1e-4 @ 50": (1e-4, 50.0, [200] * 10, 32),
    "collapsed 1e-4 @ 100": (1e-4, 100.0, [200] * 10, 32),
    "unbalanced": (0.5, 3.0, list(range(600, 0, -60)) + [30], 16),
    "d < C": (0.5, 1.0, [40] * 12, 5),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [None, 128])
def test_equals_two_pass_reference(case, dtype, batch):
    features, labels, head = _data(*CASES[case])
    c = head.shape[0]
    with jax.enable_x64(dtype == "float64"):
        features = features.astype(dtype)  # the reference sees the same rounded inputs
        m = _moments(features, labels, c, dtype, batch or len(features))
        ours = MEASURE(m, jnp.asarray(head, dtype))._asdict()
        logits = (features - features.mean(0)) @ head.T + np.random.default_rng(1).normal(size=c)
        agreement = np.asarray(nc.nearest_mean_agreement(jnp.asarray(features, dtype), logits, m))
    expected = reference.collapse(features, labels, head, logits)
    rtol = 1e-3 if dtype == "float32" else 1e-9
    for key, value in ours.items():
        np.testing.assert_allclose(float(value), expected[key], rtol=rtol, err_msg=key)
    assert int(agreement.sum()) == round(expected["nc4"] * len(labels)) > 0


def test_float32_collapse_is_not_round_off():
    """The case where `Σ zzᵀ − Σ n_c μ_c μ_cᵀ` in float32 was off by 9.3e4×."""
    features, labels, head = _data(1e-4, 50.0, [200] * 10, 32)
    m = _moments(features.astype(np.float32), labels, 10, jnp.float32, 2000)
    nc1 = float(nc.measure_collapse(m, head).nc1)
    expected = reference.collapse(features.astype(np.float32), labels, head)["nc1"]
    assert abs(nc1 - expected) < 1e-3 * expected and expected < 1e-7


@pytest.mark.parametrize("counts", [[5] * 4, [600, 300, 100, 30], [50, 0, 7, 0, 3]])
def test_simplex_reaches_every_target_whatever_the_counts(counts):
    present = [k for k, n in enumerate(counts) if n]
    etf = np.zeros((len(counts), 8))
    etf[present] = reference.etf_features(len(present), 1, 8)[2]
    labels = np.repeat(np.arange(len(counts)), counts)
    features = 3.0 * etf[labels] + 0.7  # a perfect simplex around a nonzero centre
    head = 2.0 * etf + np.where(np.asarray(counts)[:, None] > 0, 0, 5.0)  # junk rows: absent
    m = _moments(features, labels, len(counts), jnp.float32, len(labels))
    r = MEASURE(m, head)
    for key, value in r._asdict().items():
        assert abs(float(value)) < 2e-5, key
    logits = features @ etf.T
    assert float(nc.nearest_mean_agreement(features, logits, m).mean()) == 1.0


def test_nc_means_ignore_a_far_empty_class():
    """An absent class's zero mean is never the nearest one, even when it is the closest point."""
    features, labels, head = _data(0.1, 40.0, [30, 30, 0], 4)
    m = _moments(features, labels, 3, jnp.float32, len(labels))
    logits = np.eye(3)[labels]
    assert float(nc.nearest_mean_agreement(features - 40.0, logits, m).mean()) < 1
    assert float(nc.nearest_mean_agreement(features, logits, m).mean()) == 1.0


def test_random_features_are_far_from_collapse():
    features, labels, head = _data(2.0, 0.0, [20] * 4, 6)
    r = MEASURE(_moments(features, labels, 4, jnp.float32, 80), head)
    assert float(r.nc1) > 0.1 and float(r.nc2_etf) > 0.05 and float(r.nc3) > 0.1


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**16), st.integers(1, 79), st.booleans())
def test_merge_and_stream_equal_one_batch(seed, split, first_class_only):
    """Any split, merged or streamed, even when a class is seen by one part only."""
    features, labels, head = _data(0.01, 20.0, [20] * 4, 3, seed)
    if first_class_only:
        order = np.argsort(labels != 0, kind="stable")
        features, labels = features[order], labels[order]
    update = jax.jit(nc.update_moments)  # fixed shapes: the parts are masks
    first = np.arange(len(labels)) < split
    one = update(nc.init_moments(4, 3), features, labels)
    a = update(nc.init_moments(4, 3), features, labels, first)
    b = update(nc.init_moments(4, 3), features, labels, ~first)
    expected = np.array(MEASURE(one, head))
    for m in (jax.jit(nc.merge_moments)(a, b), update(a, features, labels, ~first)):
        np.testing.assert_allclose(np.array(MEASURE(m, head)), expected, rtol=2e-4)
        np.testing.assert_allclose(nc.class_means(m), nc.class_means(one), rtol=1e-6)


def test_etf_of_the_library_is_collapse_of_the_metrics():
    etf = it.simplex_etf(5, 8, jax.random.key(0))
    labels = jnp.repeat(jnp.arange(5), 7)
    m = nc.update_moments(nc.init_moments(5, 8), 3.0 * etf[labels] + 0.5, labels)
    r = nc.measure_collapse(m, 2.0 * etf)
    assert max(float(v) for v in r) < 1e-5


def test_non_finite_features_make_nc1_nan_not_zero():
    # LAPACK returns finite eigenpairs of a NaN matrix; the pseudo-inverse must not pass them on.
    m = nc.update_moments(nc.init_moments(3, 4), jnp.full((6, 4), jnp.nan), jnp.arange(6) % 3)
    assert np.isnan(float(nc.within_class_variability(m)))
    assert np.isnan(float(nc.measure_collapse(m, jnp.ones((3, 4))).nc1))
