"""Whole-split interplay from the kept features: the joint dual applied matrix-free.

`scatter.ClassScatter` holds `C·d²` numbers: 16 GiB for C = 1 000 classes of
d = 2 048 features, more than the 50 000 × 2 048 features themselves (400 MiB).
When `n·d < C·d²`, keeping the unit features `Ẑ (n, d)` sorted by class is the
smaller sufficient statistic. With a factor `G(W) = L Lᵀ`, `L (C, r)`, the
class-scatter dual `ρ = Σ_c Ẑ_cᵀẐ_c ⊗ l_c l_cᵀ / tr` (`(d·r)²`, never formed)
applies to `v (d, r)` as

    u_c = v l_c,   tᵢ = ẑᵢ · u_{yᵢ},   w_c = Σ_{yᵢ=c} tᵢ ẑᵢ,   ρv = Wᵀ L / tr

in `O(n·d + C·d·r)` per matvec (W stacks the `w_c` as rows). The features are
kept in class blocks: each class cut into blocks of `m = ⌈n / C⌉` rows, the
last one zero-padded (`K ≤ n/m + C ≤ 2C` blocks, at most `2n` rows), so both
per-sample sums are dense batched products over `(K, m, d)` and only `K`
vectors `u_c` are gathered, not `n` (`benchmarks/metrics.py --matvec`). `L` is the head's
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
import numpy as np
from jax.typing import ArrayLike

from interplay.infotheory import scatter, spectral
from interplay.infotheory._precision import full_precision
from interplay.infotheory.information import density, density_entropy
from interplay.infotheory.kernels import as_float, gram, normalize
from interplay.infotheory.results import Interplay
from interplay.infotheory.spectral import entropy_lanczos, psd_sqrt


class LabelledFeatures(NamedTuple):
    """Unit features `ẑᵢ = zᵢ / ‖zᵢ‖` in class blocks `(K, m, d)` (zero rows pad each
    class's last block), the class of each block `(K,)`, the slot in the `K·m` block
    rows of each sample in class order `(n,)`, and the class counts `(C,)`."""

    blocks: jax.Array
    block_class: jax.Array
    slots: jax.Array
    counts: jax.Array


def keep(features: ArrayLike, labels: ArrayLike, num_classes: int) -> LabelledFeatures:
    """`LabelledFeatures` of a split, blocks of `m = ⌈n / C⌉` rows (eager: the block
    layout depends on the class counts).

    >>> kept = keep(jnp.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]]), jnp.array([1, 0, 1]), 2)
    >>> kept.blocks.shape, kept.block_class, kept.slots  # m = 2: class 0 padded by a zero row
    ((2, 2, 2), Array([0, 1], dtype=int32), Array([0, 2, 3], dtype=int32))
    """
    labels = np.asarray(labels)
    n = len(labels)
    counts = np.bincount(labels, minlength=num_classes)
    m = max(1, -(-n // num_classes))
    per_class = -(-counts // m)  # blocks of each class
    first = np.concatenate([[0], np.cumsum(per_class)[:-1]])  # its first block
    order = np.argsort(labels, kind="stable")
    rank = np.arange(n) - np.concatenate([[0], np.cumsum(counts)[:-1]])[labels[order]]
    slots = (first[labels[order]] + rank // m) * m + rank % m
    features = normalize(jnp.asarray(features))[order]
    blocks = jnp.zeros((int(per_class.sum()) * m, features.shape[1]), features.dtype)
    return LabelledFeatures(
        blocks.at[slots].set(features).reshape(-1, m, features.shape[1]),
        jnp.asarray(np.repeat(np.arange(num_classes), per_class), jnp.int32),
        jnp.asarray(slots, jnp.int32),
        jnp.asarray(counts, features.dtype),
    )


@full_precision
def head_factor(head: jax.Array) -> jax.Array:
    """`L (C, r)` with `L Lᵀ = G(W)`: unit head rows if `d' < C`, else `G(W)^{1/2}`."""
    num_classes, width = head.shape
    return normalize(head) if width < num_classes else psd_sqrt(gram(head))


def _from_rows(t, kept: LabelledFeatures, factor):
    """`A t = Wᵀ L`, `w_c = Σ_{yᵢ=c} tᵢ ẑᵢ`: `(n,)` ↦ `(d, r)`."""
    num_blocks, m, _ = kept.blocks.shape
    padded = jnp.zeros(num_blocks * m, t.dtype).at[kept.slots].set(t).reshape(num_blocks, m)
    sums = jnp.einsum("km,kmd->kd", padded, kept.blocks)
    w = jax.ops.segment_sum(sums, kept.block_class, factor.shape[0], indices_are_sorted=True)
    return w.T @ factor


def _to_rows(v, kept: LabelledFeatures, factor):
    """`Aᵀ v`: `tᵢ = ẑᵢ · u_{yᵢ}`, `u_c = v l_c`; `(d, r)` ↦ `(n,)`."""
    u = (v @ factor.T).T  # (C, d)
    return jnp.einsum("kmd,kd->km", kept.blocks, u[kept.block_class]).reshape(-1)[kept.slots]


@full_precision
def joint_matvec(v, kept: LabelledFeatures, factor, trace):
    """`ρv` for `v (d, r)`, `ρ = Σ_c Ẑ_cᵀẐ_c ⊗ l_c l_cᵀ / trace = A Aᵀ / trace`."""
    return _from_rows(_to_rows(v, kept, factor), kept, factor) / trace


@full_precision
def sample_matvec(t, kept: LabelledFeatures, factor, trace):
    """`(G(Z) ⊙ G(W_Y)) t / trace = Aᵀ A t / trace` for `t (n,)`, samples in class order."""
    return _to_rows(_from_rows(t, kept, factor), kept, factor) / trace


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
    block_norms = jnp.sum(kept.blocks**2, axis=(1, 2))
    trace = jnp.sum(jnp.sum(factor**2, axis=1)[kept.block_class] * block_norms)
    n, dim, rank = kept.slots.shape[0], kept.blocks.shape[2], factor.shape[1]
    matvec, shape = (sample_matvec, (n,)) if n < dim * rank else (joint_matvec, (dim, rank))
    return entropy_lanczos(
        matvec,
        jnp.zeros(shape, kept.blocks.dtype),
        key,
        kept,
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

    Memory: the features in blocks (at most `2n·d`), one `(d, d)` and one `(C, C)` matrix,
    `num_deflate` vectors of `min(n, d·r)` numbers and `num_matvecs` of them for
    each of the `spectral.PROBES_AT_ONCE` probes in flight (`spectral.entropy_lanczos`).
    """
    head = as_float(head).astype(kept.blocks.dtype)
    rows = kept.blocks.reshape(-1, kept.blocks.shape[2])
    h_features = density_entropy(density(rows.T @ rows))
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
