"""Neural-Collapse metrics NC1–NC4 (Papyan, Han & Donoho, PNAS 2020) from streaming moments.

Accumulate `ClassMoments` (per-class counts and means, the pooled within-class
scatter) over batches with `update_moments` / `merge_moments`; then, over the
`C` classes that have samples, with class means `μ_c`, the **unweighted** mean
of class means `μ_G = (1/C) Σ_c μ_c` (so that a simplex of means reaches the
targets whatever the class counts; the convention of rhubarbwu/neural-collapse),
centred means `M = [μ_c − μ_G]` (C, d), `Σ_W = (1/n) Σᵢ (zᵢ − μ_{yᵢ})(zᵢ − μ_{yᵢ})ᵀ`
and `Σ_B = (1/C) MᵀM`:

* `nc1` = `tr(Σ_W Σ_B^†) / C` (within-class variability; → 0; Papyan et al.);
* `nc2_etf` = `‖MMᵀ/‖MMᵀ‖_F − (I − 11ᵀ/C)/√(C−1)‖_F` (Frobenius distance to the
  simplex Gram; Zhu et al., NeurIPS 2021; → 0);
* `nc2_equinorm` = std/mean of `‖M_c‖` (Papyan et al., Fig. 2; → 0);
* `nc2_equiangular` = std over `c ≠ c'` of `cos(M_c, M_c')` (Papyan et al., Fig. 3; → 0);
* `nc2_maxangle` = mean over `c ≠ c'` of `|cos(M_c, M_c') + 1/(C−1)|` (Papyan et
  al., Fig. 4 and their measurement code; → 0);
* `nc3` = `‖W/‖W‖_F − M/‖M‖_F‖_F` (self-duality, Zhu et al.; → 0) and
  `nc3_squared` = its square (Papyan et al.'s measurement code);
* NC4 (`nearest_mean_agreement`): the fraction of samples whose prediction from
  the real logits (bias included; rhubarbwu/neural-collapse uses `W z` without
  the bias) is their nearest class mean (→ 1).

Classes without samples are left out of `C`, of `M` and of the head rows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from interplay.infotheory import _checks
from interplay.infotheory._precision import full_precision
from interplay.infotheory.kernels import as_float
from interplay.infotheory.spectral import psd_pinv


class ClassMoments(NamedTuple):
    """Per class: `counts (C,)`, an `anchor (C, d)` (a sample of the class, 0 while
    it has none) and `sums (C, d) = Σ_{yᵢ=c} (zᵢ − anchor_c)`; pooled over classes,
    the within-class scatter `within (d, d) = Σᵢ (zᵢ − μ_{yᵢ})(zᵢ − μ_{yᵢ})ᵀ`."""

    counts: jax.Array
    anchors: jax.Array
    sums: jax.Array
    within: jax.Array


class CollapseMetrics(NamedTuple):
    """NC1–NC3 as in the module docstring: `nc1 = tr(Σ_W Σ_B^†) / C`, the NC2 variants,
    `nc3 = ‖W/‖W‖_F − M/‖M‖_F‖_F` and `nc3_squared = nc3²`; each → 0 at collapse."""

    nc1: jax.Array
    nc2_etf: jax.Array
    nc2_equinorm: jax.Array
    nc2_equiangular: jax.Array
    nc2_maxangle: jax.Array
    nc3: jax.Array
    nc3_squared: jax.Array


def init_moments(num_classes: int, dim: int, dtype=jnp.float32) -> ClassMoments:
    """Empty moments: `counts = 0`, `anchors = sums = 0 (C, d)`, `within = 0 (d, d)`.

    >>> init_moments(3, 2).sums.shape
    (3, 2)
    """
    zeros = jnp.zeros((num_classes, dim), dtype)
    return ClassMoments(
        jnp.zeros((num_classes,), dtype), zeros, zeros, jnp.zeros((dim, dim), dtype)
    )


def class_means(m: ClassMoments) -> jax.Array:
    """`μ_c = anchor_c + sums_c / n_c` `(C, d)` (0 for empty classes)."""
    return m.anchors + m.sums / jnp.maximum(m.counts, 1)[:, None]


def _pool(a: ClassMoments, counts, anchors, sums, within) -> ClassMoments:
    """`a` ∪ a set with `counts`, `sums` about `anchors` (equal to `a.anchors`
    wherever `a` has samples) and within-class scatter `within`.

    Chan et al.'s parallel update `W = W_a + W_b + Σ_c (n_a n_b / n) δ_c δ_cᵀ`,
    with `δ_c = μ_b − μ_a` formed from the anchored sums, so nothing cancels.
    """
    n = a.counts + counts
    delta = sums / jnp.maximum(counts, 1)[:, None] - a.sums / jnp.maximum(a.counts, 1)[:, None]
    weight = a.counts * counts / jnp.maximum(n, 1)
    within = a.within + within + (delta * weight[:, None]).T @ delta
    anchors = jnp.where((n > 0)[:, None], anchors, a.anchors)
    return ClassMoments(n, anchors, a.sums + sums, within)


@full_precision
def update_moments(
    m: ClassMoments, features: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
) -> ClassMoments:
    """Adds a batch of (raw, unnormalized) features. Jittable, shardable.

    Samples are summed as deviations from their class's anchor (its first
    sample), centred per class within the batch and pooled with Chan et al.'s
    update: every sum holds numbers at the scale of the class spread, so
    float32 stays accurate at collapse, where `Σ zzᵀ − Σ n_c μ_c μ_cᵀ` would
    cancel. Labels outside `[0, C)` make the counts (hence NC1–NC3) NaN;
    non-finite features propagate.
    """
    z = as_float(features).astype(m.sums.dtype)
    num_classes = m.counts.shape[0]
    keep = jnp.ones(z.shape[:1], bool) if mask is None else jnp.asarray(mask) > 0
    onehot = jax.nn.one_hot(labels, num_classes, dtype=z.dtype) * keep[:, None]
    counts = onehot.sum(0)
    first = jnp.argmax(onehot, 0)  # a sample of each class present in the batch
    anchors = jnp.where((m.counts > 0)[:, None], m.anchors, z[first])
    shifted = jnp.where(keep[:, None], z - anchors[labels], 0)
    sums = onehot.T @ shifted
    centred = jnp.where(
        keep[:, None], shifted - (sums / jnp.maximum(counts, 1)[:, None])[labels], 0
    )
    counts = _checks.poison(counts, _checks.labels_valid(labels, num_classes))
    return _pool(m, counts, anchors, sums, centred.T @ centred)


@full_precision
def merge_moments(a: ClassMoments, b: ClassMoments) -> ClassMoments:
    """Moments of the union of two disjoint sets of samples (e.g. two hosts' shards).

    Counts add; `b`'s sums are re-anchored on `a`'s anchors,
    `sums = a.sums + b.sums + n_b·(anchor_b − anchor_a)`, and the within-class
    scatters pool with the between-halves term of each class.

    >>> z, y = jnp.arange(12.0).reshape(6, 2), jnp.array([0, 1, 0, 1, 0, 1])
    >>> one = update_moments(init_moments(2, 2), z, y)
    >>> a, b = (update_moments(init_moments(2, 2), z[s], y[s]) for s in (slice(3), slice(3, 6)))
    >>> bool(jnp.allclose(class_means(merge_moments(a, b)), class_means(one)))
    True
    """
    anchors = jnp.where((a.counts > 0)[:, None], a.anchors, b.anchors)
    sums = b.sums + b.counts[:, None] * (b.anchors - anchors)  # b re-anchored: a difference
    return _pool(a, b.counts, anchors, sums, b.within)  # of two samples of one class


def _std(x: jax.Array, weights: jax.Array) -> jax.Array:
    mean = (x * weights).sum() / weights.sum()
    return jnp.sqrt(((x - mean) ** 2 * weights).sum() / weights.sum())


def _centred(m: ClassMoments) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(present (C,) as 0/1, μ_G, μ_c − μ_G)`, `μ_G` the unweighted mean of the class
    means that have samples: the one centring of NC1–NC4."""
    present = (m.counts > 0).astype(m.sums.dtype)
    means = class_means(m)
    centre = (means * present[:, None]).sum(0) / present.sum()
    return present, centre, means - centre


def _nc1(m: ClassMoments, present: jax.Array, centred: jax.Array) -> jax.Array:
    c = present.sum()
    centred = centred * present[:, None]
    sigma_b = centred.T @ centred / c
    return jnp.trace(m.within / m.counts.sum() @ psd_pinv(sigma_b)) / c


@full_precision
def within_class_variability(m: ClassMoments) -> jax.Array:
    """NC1 alone, `tr(Σ_W Σ_B^†) / C`: it needs no head, so any layer of any width has it."""
    present, _, centred = _centred(m)
    return _nc1(m, present, centred)


@full_precision
def measure_collapse(m: ClassMoments, head: ArrayLike) -> CollapseMetrics:
    """NC1–NC3 (every named variant) from accumulated moments and the `(C, d)` head.

    Formulas in the module docstring; e.g. `nc1 = tr(Σ_W Σ_B^†) / C`, 0 when every
    sample sits on its class mean:

    >>> z = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> m = update_moments(init_moments(2, 2), z, jnp.array([0, 0, 1, 1]))
    >>> float(measure_collapse(m, jnp.eye(2)).nc1)
    0.0
    """
    present, _, centred = _centred(m)
    nc1 = _nc1(m, present, centred)
    c = present.sum()
    centred = centred * present[:, None]

    gram = centred @ centred.T
    etf = (jnp.diag(present) - jnp.outer(present, present) / c) / jnp.sqrt(c - 1)
    norms = jnp.sqrt(jnp.diag(gram))
    cosines = gram / jnp.where(present > 0, norms, 1)[:, None] / jnp.where(present > 0, norms, 1)
    pairs = jnp.outer(present, present) * (1 - jnp.eye(len(present), dtype=present.dtype))

    w = as_float(head).astype(m.sums.dtype) * present[:, None]
    nc3 = jnp.linalg.norm(w / jnp.linalg.norm(w) - centred / jnp.linalg.norm(centred))
    return CollapseMetrics(
        nc1=nc1,
        nc2_etf=jnp.linalg.norm(gram / jnp.linalg.norm(gram) - etf),
        nc2_equinorm=_std(norms, present) / ((norms * present).sum() / c),
        nc2_equiangular=_std(cosines, pairs),
        nc2_maxangle=(jnp.abs(cosines + 1 / (c - 1)) * pairs).sum() / pairs.sum(),
        nc3=nc3,
        nc3_squared=nc3**2,
    )


@full_precision
def nearest_mean_agreement(features: ArrayLike, logits: ArrayLike, m: ClassMoments) -> jax.Array:
    """Per-sample 1.0 where `argmax logits` is the nearest class mean (NC4), `(n,)`.

    Distances `‖z − μ_c‖²` up to the per-sample constant, `‖μ'_c‖² − 2 z'·μ'_c`,
    in coordinates centred at `μ_G` (`z' = z − μ_G`), so that a large common
    offset does not cancel; classes without samples are never the nearest.
    """
    z = as_float(features).astype(m.sums.dtype)
    present, centre, means = _centred(m)
    distances = jnp.sum(means * means, -1) - 2 * (z - centre) @ means.T
    nearest = jnp.argmin(jnp.where(present > 0, distances, jnp.inf), -1)
    return (nearest == jnp.argmax(logits, -1)).astype(z.dtype)
