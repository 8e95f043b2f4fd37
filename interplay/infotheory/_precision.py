"""Full float32 matrix products on every backend.

JAX multiplies float32 matrices at reduced precision by default on accelerators: TF32
(a 10-bit mantissa) on recent NVIDIA GPUs, one bfloat16 pass on TPUs. The metrics inherit
it (`benchmarks/metrics.py --precision` measures by how much, docs/benchmarks.md). So
every public function of the library traces its own matrix products at
`MATMUL_PRECISION`; the caller's operations, a model's included, keep theirs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import jax

F = TypeVar("F", bound=Callable)

#: Precision of the library's matrix products, as `jax.default_matmul_precision` takes it;
#: `None` inherits the caller's. Read when a function is traced.
MATMUL_PRECISION: str | None = "highest"


def full_precision(fn: F) -> F:
    """`fn` with the matrix products it traces at `MATMUL_PRECISION`.

    The outermost decorator, so that a jitted `fn` is keyed by the precision it traces with.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if MATMUL_PRECISION is None:
            return fn(*args, **kwargs)
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return fn(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
