"""Row normalization and cosine Gram matrices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from interplay.infotheory import _checks
from interplay.infotheory._precision import full_precision


def as_float(x: ArrayLike) -> jax.Array:
    """`x` as an array of at least float32 precision (bf16/fp16/ints → float32).

    >>> as_float(jnp.ones(2, jnp.bfloat16)).dtype, as_float(jnp.ones(2, jnp.int32)).dtype
    (dtype('float32'), dtype('float32'))
    """
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def normalize(x: ArrayLike, axis: int = -1) -> jax.Array:
    """L2-normalizes `x` along `axis`: `x / ‖x‖`, zero vectors stay zero.

    Computed in at least float32 as `(x / m) / ‖x / m‖` with `m = max|x|`, so
    it is scale invariant over the whole float range (no overflow of `Σx²` at
    1e19, no underflow at 1e-20). A vector with a NaN or Inf entry becomes NaN
    (never silently zero). The gradient at a zero vector is zero, never NaN.

    >>> normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
    Array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
    """
    x = as_float(x)
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=axis, keepdims=True))  # x/‖x‖ ignores it
    nonzero = m != 0  # NaN compares unequal: NaN rows stay on the NaN path
    y = x / jnp.where(nonzero, m, 1)
    sq = jnp.sum(y * y, axis=axis, keepdims=True)
    return jnp.where(nonzero, y * jax.lax.rsqrt(jnp.where(nonzero, sq, 1)), 0)


@full_precision
def gram(x: ArrayLike) -> jax.Array:
    """Cosine Gram matrix `G(X) = X̂ X̂ᵀ` of the rows of `x` `(n, d)` → `(n, n)`.

    PSD with unit diagonal (zero rows give zero rows and columns).

    >>> gram(jnp.array([[1.0, 0.0], [1.0, 1.0]])).round(4)
    Array([[1.    , 0.7071],
           [0.7071, 1.    ]], dtype=float32)
    """
    _checks.check_rank("x", x, 2)
    xn = normalize(x)
    return xn @ xn.T
