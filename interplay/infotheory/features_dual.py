"""Whole-split interplay from the kept features: the joint dual applied matrix-free.

`scatter.ClassScatter` holds `C·d²` numbers: 16 GiB for C = 1 000 classes of
d = 2 048 features, more than the 50 000 × 2 048 features themselves (400 MiB).
When `n·d < C·d²`, keeping the unit features `Ẑ (n, d)` sorted by class is the
smaller sufficient statistic. With a factor `G(W) = L Lᵀ`, `L (C, r)`, the
class-scatter dual `ρ = Σ_c Ẑ_cᵀẐ_c ⊗ l_c l_cᵀ / tr` (`(d·r)²`, never formed)
applies to `v (d, r)` as

    u_c = v l_c,   tᵢ = ẑᵢ · u_{yᵢ},   w_c = Σ_{yᵢ=c} tᵢ ẑᵢ,   ρv = Wᵀ L / tr

in `O(n·d + C·d·r)` per matvec (W stacks the `w_c` as rows). `L` is the head's
unit rows (`r = d'`) when `d' < C`, else `G(W)^{1/2}` (`r = C`): both give the
joint Gram `G(Z) ⊙ G(W_Y)` as the Gram of the rows `ẑᵢ ⊗ l_{yᵢ}`.

With `A t = Σᵢ tᵢ ẑᵢ l_{yᵢ}ᵀ` (`Rⁿ → R^{d×r}`), `ρ = A Aᵀ / tr` and the joint Gram
is `Aᵀ A`: both have the same nonzero spectrum, and Lanczos runs in the smaller
space. When `n < d·r` that is the samples' (`sample_matvec`, same cost): the
dual's null space (all but n of its `d·r` dimensions) would otherwise hold most of
each probe, and a Gauss quadrature of few steps puts a node just above 0 with its
mass, overestimating `−λ log λ` there.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from interplay.infotheory import scatter, spectral
from interplay.infotheory._precision import full_precision
from interplay.infotheory.information import density, density_entropy
from interplay.infotheory.kernels import as_float, gram, normalize
from interplay.infotheory.results import Interplay
from interplay.infotheory.spectral import entropy_lanczos, psd_sqrt


class LabelledFeatures(NamedTuple):
    """Unit features `ẑᵢ = zᵢ / ‖zᵢ‖` `(n, d)` sorted by class, their labels `(n,)` and
    class counts `n_c = #{i : yᵢ = c}` `(C,)`."""

    features: jax.Array
    labels: jax.Array
    counts: jax.Array


def keep(features: jax.Array, labels: jax.Array, num_classes: int) -> LabelledFeatures:
    """`LabelledFeatures` of a split: rows `ẑᵢ = zᵢ / ‖zᵢ‖`, then sorted by label.

    >>> kept = keep(jnp.array([[3.0, 4.0], [1.0, 0.0]]), jnp.array([1, 0]), 2)
    >>> kept.features, kept.labels, kept.counts
    (Array([[1. , 0. ],
           [0.6, 0.8]], dtype=float32), Array([0, 1], dtype=int32), Array([1., 1.], dtype=float32))
    """
    order = jnp.argsort(labels, stable=True)
    counts = jnp.bincount(labels, length=num_classes).astype(features.dtype)
    return LabelledFeatures(normalize(features)[order], labels[order], counts)


@full_precision
def head_factor(head: jax.Array) -> jax.Array:
    """`L (C, r)` with `L Lᵀ = G(W)`: unit head rows if `d' < C`, else `G(W)^{1/2}`."""
    num_classes, width = head.shape
    return normalize(head) if width < num_classes else psd_sqrt(gram(head))


def _from_rows(t, features, labels, factor):
    """`A t = Wᵀ L`, `w_c = Σ_{yᵢ=c} tᵢ ẑᵢ`: `(n,)` ↦ `(d, r)`."""
    w = jax.ops.segment_sum(features * t[:, None], labels, factor.shape[0], indices_are_sorted=True)
    return w.T @ factor


def _to_rows(v, features, labels, factor):
    """`Aᵀ v`: `tᵢ = ẑᵢ · u_{yᵢ}`, `u_c = v l_c`; `(d, r)` ↦ `(n,)`."""
    u = v @ factor.T  # (d, C)
    return jnp.sum(features * u.T[labels], axis=1)


@full_precision
def joint_matvec(v, features, labels, factor, trace):
    """`ρv` for `v (d, r)`, `ρ = Σ_c Ẑ_cᵀẐ_c ⊗ l_c l_cᵀ / trace = A Aᵀ / trace`."""
    return _from_rows(_to_rows(v, features, labels, factor), features, labels, factor) / trace


@full_precision
def sample_matvec(t, features, labels, factor, trace):
    """`(G(Z) ⊙ G(W_Y)) t / trace = Aᵀ A t / trace` for `t (n,)`, matrix-free."""
    return _to_rows(_from_rows(t, features, labels, factor), features, labels, factor) / trace


@full_precision
def joint_entropy_lanczos(
    kept: LabelledFeatures,
    factor: jax.Array,
    key: jax.Array,
    *,
    num_probes: int = spectral.NUM_PROBES,
    num_matvecs: int = spectral.NUM_MATVECS,
    num_deflate: int = spectral.NUM_DEFLATE,
) -> tuple[jax.Array, jax.Array]:
    """`H(G(Z) ⊙ G(W_Y))` by `spectral.entropy_lanczos` on `sample_matvec` when
    `n < d·r`, else on `joint_matvec` (module docstring).

    Returns `(estimate, error)` as `spectral.entropy_lanczos`.
    """
    norms = jnp.sum(factor**2, axis=1)[kept.labels] * jnp.sum(kept.features**2, axis=1)
    trace = jnp.sum(norms)
    (n, dim), rank = kept.features.shape, factor.shape[1]
    matvec, shape = (sample_matvec, (n,)) if n < dim * rank else (joint_matvec, (dim, rank))
    return entropy_lanczos(
        matvec,
        jnp.zeros(shape, kept.features.dtype),
        key,
        kept.features,
        kept.labels,
        factor,
        jnp.where(trace > 0, trace, 1),
        num_probes=num_probes,
        num_matvecs=num_matvecs,
        num_deflate=num_deflate,
    )


@full_precision
@functools.partial(jax.jit, static_argnames=("num_probes", "num_matvecs", "num_deflate"))
def measure(
    kept: LabelledFeatures,
    head: jax.Array,
    key: jax.Array,
    num_probes: int = spectral.NUM_PROBES,
    num_matvecs: int = spectral.NUM_MATVECS,
    num_deflate: int = spectral.NUM_DEFLATE,
) -> Interplay:
    """Interplay of kept features against `head (C, d')`, the joint entropy by Lanczos.

    Memory: the `n·d` features, one `(d, d)` and one `(C, C)` matrix,
    `num_deflate` vectors of `min(n, d·r)` numbers and `num_matvecs` of them for
    each of the `spectral.PROBES_AT_ONCE` probes in flight (`spectral.entropy_lanczos`).
    """
    head = as_float(head).astype(kept.features.dtype)
    h_features = density_entropy(density(kept.features.T @ kept.features))
    h_heads = scatter.head_entropy(kept.counts, gram(head))
    h_joint, stderr = joint_entropy_lanczos(
        kept,
        head_factor(head),
        key,
        num_probes=num_probes,
        num_matvecs=num_matvecs,
        num_deflate=num_deflate,
    )
    return Interplay.from_entropies(h_features, h_heads, h_joint, stderr)
