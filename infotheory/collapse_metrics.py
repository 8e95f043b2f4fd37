"""Neural-Collapse metrics NC1–NC4 (Papyan, Han & Donoho, PNAS 2020) from streaming sums.

Accumulate `ClassMoments` (per-class counts and feature sums, the total second
moment) over batches; then, with class means `μ_c`, global mean `μ_G`, centered
means `M = [μ_c − μ_G]` (C, d), within-class covariance
`Σ_W = (1/n) Σᵢ (zᵢ − μ_{yᵢ})(zᵢ − μ_{yᵢ})ᵀ` and between-class `Σ_B = (1/C) MᵀM`:

* NC1 = `tr(Σ_W Σ_B^†) / C` (within-class variability; → 0),
* NC2 = `‖MMᵀ/‖MMᵀ‖_F − (I − 11ᵀ/C)/√(C−1)‖_F` (distance to a simplex ETF; → 0),
* NC3 = `‖W/‖W‖_F − M/‖M‖_F‖_F` (self-duality of head and means; → 0),
* NC4 = fraction of samples whose prediction is the nearest class mean (→ 1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from infotheory import checks
from infotheory.gram import as_float
from infotheory.spectral import psd_pinv


class ClassMoments(NamedTuple):
    """`counts (C,)`, `sums (C, d)` of features per class, `second (d, d) = Σᵢ zᵢzᵢᵀ`."""

    counts: jax.Array
    sums: jax.Array
    second: jax.Array


class CollapseMetrics(NamedTuple):
    nc1: jax.Array
    nc2: jax.Array
    nc3: jax.Array


def init_moments(num_classes: int, dim: int, dtype=jnp.float32) -> ClassMoments:
    return ClassMoments(
        jnp.zeros((num_classes,), dtype),
        jnp.zeros((num_classes, dim), dtype),
        jnp.zeros((dim, dim), dtype),
    )


def update_moments(
    m: ClassMoments, features: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
) -> ClassMoments:
    """Adds a batch of (raw, unnormalized) features. Jittable.

    Labels outside `[0, C)` make the counts (hence NC1–NC3) NaN; non-finite
    features propagate.
    """
    z = as_float(features).astype(m.sums.dtype)
    num_classes = m.counts.shape[0]
    onehot = jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
    if mask is not None:
        w = jnp.asarray(mask, z.dtype)
        onehot, z_w = onehot * w[:, None], z * w[:, None]
    else:
        z_w = z
    counts = checks.poison(onehot.sum(0), checks.labels_valid(labels, num_classes))
    return ClassMoments(m.counts + counts, m.sums + onehot.T @ z, m.second + z_w.T @ z)


def class_means(m: ClassMoments) -> jax.Array:
    """`μ_c` `(C, d)` (zero for empty classes)."""
    return m.sums / jnp.maximum(m.counts, 1)[..., None]


def measure_collapse(m: ClassMoments, head: ArrayLike) -> CollapseMetrics:
    """NC1–NC3 from accumulated moments and the `(C, d)` head."""
    n, c = m.counts.sum(), m.counts.shape[0]
    means = class_means(m)
    centered = means - m.sums.sum(0) / n
    sigma_w = (m.second - (means * m.counts[:, None]).T @ means) / n
    sigma_b = centered.T @ centered / c
    nc1 = jnp.trace(sigma_w @ psd_pinv(sigma_b)) / c
    gram = centered @ centered.T
    etf = (jnp.eye(c) - 1 / c) / jnp.sqrt(c - 1)
    nc2 = jnp.linalg.norm(gram / jnp.linalg.norm(gram) - etf)
    w = as_float(head).astype(means.dtype)
    nc3 = jnp.linalg.norm(w / jnp.linalg.norm(w) - centered / jnp.linalg.norm(centered))
    return CollapseMetrics(nc1, nc2, nc3)


def nearest_mean_agreement(features: ArrayLike, logits: ArrayLike, means: ArrayLike) -> jax.Array:
    """Per-sample 1.0 where `argmax logits` is the nearest class mean (NC4), `(n,)`."""
    z = as_float(features)
    distances = jnp.sum(z * z, -1, keepdims=True) - 2 * z @ means.T + jnp.sum(means * means, -1)
    return (jnp.argmin(distances, -1) == jnp.argmax(logits, -1)).astype(z.dtype)
