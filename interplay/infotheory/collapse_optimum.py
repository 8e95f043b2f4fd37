"""Neural-Collapse geometry: simplex ETFs and the interplay they imply.

At Neural Collapse (balanced classes, NC1–NC3) `G(Z) = G(W_Y) = ℰ(−1/(C−1)) ⊗ 1_{m×m}`,
so `H(G(Z)) = H(G(W_Y)) = log(C−1)`, HDR = 0 and

    MIR = 1/(C−1) + (C−2)·log(C−2) / ((C−1)·log(C−1)).

For unbalanced counts the eigenvalues of `G/n` equal those of
`diag(√p) ℰ diag(√p)`, `p = counts / n`, and of `diag(√p) (ℰ ⊙ ℰ) diag(√p)`
for the joint.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from interplay.infotheory._precision import full_precision
from interplay.infotheory.results import Interplay
from interplay.infotheory.scatter import head_entropy


def _check_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes must be an integer, got {num_classes!r}.")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")


def etf_gram(num_classes: int) -> jax.Array:
    """`ℰ(−1/(C−1)) = (C·I − 11ᵀ) / (C − 1)`: ones on the diagonal, `−1/(C−1)` off it.

    >>> etf_gram(3)
    Array([[ 1. , -0.5, -0.5],
           [-0.5,  1. , -0.5],
           [-0.5, -0.5,  1. ]], dtype=float32)
    """
    _check_classes(num_classes)
    c = num_classes
    return (c * jnp.eye(c) - jnp.ones((c, c))) / (c - 1)


@full_precision
def simplex_etf(num_classes: int, dim: int, key: jax.Array) -> jax.Array:
    """`(C, dim)` unit rows of a randomly rotated simplex ETF: `⟨wᵢ, wⱼ⟩ = −1/(C−1)`.

    Args:
      num_classes: C ≥ 2.
      dim: `dim ≥ C − 1`.
      key: a PRNG key (`jax.random.key(seed)`) for the random rotation.

    >>> w = simplex_etf(3, 5, jax.random.key(0))
    >>> bool(jnp.allclose(w @ w.T, etf_gram(3), atol=1e-6))
    True
    """
    _check_classes(num_classes)
    if dim < num_classes - 1:
        raise ValueError(f"a simplex ETF of {num_classes} classes needs dim ≥ C−1, got {dim}.")
    if not (isinstance(key, jax.Array) and key.shape in ((), (2,))) or isinstance(key, int):
        raise ValueError(f"key must be a PRNG key, e.g. jax.random.key(0), got {key!r}.")
    # Orthonormal basis of the centered subspace {x: Σx = 0} of R^C.
    centered = np.eye(num_classes) - 1 / num_classes
    basis = np.linalg.svd(centered)[0][:, : num_classes - 1]
    rows = basis * np.sqrt(num_classes / (num_classes - 1))
    rotation = jnp.linalg.qr(jax.random.normal(key, (dim, num_classes - 1)))[0]
    return jnp.asarray(rows, rotation.dtype) @ rotation.T


def nc_interplay(num_classes: int, counts: ArrayLike | None = None) -> Interplay:
    """Interplay at Neural Collapse, from `C × C` matrices.

    Args:
      num_classes: C ≥ 2 (C = 2 is degenerate: both entropies are 0, MIR = 0
        by the convention of `interplay.infotheory.ratios`).
      counts: optional `(C,)` class counts (balanced when omitted).
    """
    _check_classes(num_classes)
    counts = jnp.ones(num_classes) if counts is None else jnp.asarray(counts, jnp.float32)
    if counts.shape != (num_classes,) or not bool(jnp.all(counts >= 0) & (counts.sum() > 0)):
        raise ValueError(f"counts must be {num_classes} non-negative numbers, not all zero.")
    etf = etf_gram(num_classes).astype(counts.dtype)
    h = head_entropy(counts, etf)
    return Interplay.from_entropies(h, h, head_entropy(counts, etf * etf))


def nc_mir(num_classes: int, counts: ArrayLike | None = None) -> jax.Array:
    """MIR at Neural Collapse.

    Balanced: `1/(C−1) + (C−2)·log(C−2) / ((C−1)·log(C−1))`; with `counts`, from
    `C × C` matrices (see `nc_interplay`).

    >>> round(float(nc_mir(3)), 4), round(float(nc_mir(10)), 4)
    (0.5, 0.9524)
    """
    if counts is not None:
        return nc_interplay(num_classes, counts).mir
    _check_classes(num_classes)
    if num_classes == 2:
        return jnp.zeros(())
    c = num_classes
    return jnp.asarray(1 / (c - 1) + (c - 2) * np.log(c - 2) / ((c - 1) * np.log(c - 1)))
