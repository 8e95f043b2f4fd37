"""Input validation shared by the public entry points.

Shape and rank checks run always, so jitted and vmapped calls fail at trace
time. Value checks (finite entries, label range) run only on concrete arrays,
i.e. when the entry point is called eagerly; under `jit` values are unknown.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_rank(name: str, x, rank: int) -> None:
    """Raises `ValueError` unless `x` has `rank` axes."""
    if jnp.ndim(x) != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {jnp.shape(x)}.")


def check_finite(name: str, x) -> None:
    """Raises `ValueError` if a concrete `x` holds NaN or Inf."""
    if not _concrete(x):
        return
    with jax.ensure_compile_time_eval():
        finite = bool(jnp.all(jnp.isfinite(x)))
    if not finite:
        raise ValueError(f"{name} contains NaN or Inf values.")


def check_samples(name: str, x) -> None:
    """Raises `ValueError` unless `x` is a finite `(n, d)` matrix with n ≥ 2 and d ≥ 1."""
    check_rank(name, x, 2)
    n, d = jnp.shape(x)
    if n < 2:
        raise ValueError(f"{name} needs at least 2 samples (rows), got {n}.")
    if d < 1:
        raise ValueError(f"{name} needs at least 1 feature (column), got {d}.")
    check_finite(name, x)


def check_paired(name_a: str, a, name_b: str, b) -> None:
    """Raises `ValueError` unless `a` and `b` have the same number of rows."""
    if jnp.shape(a)[0] != jnp.shape(b)[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of rows, "
            f"got {jnp.shape(a)[0]} and {jnp.shape(b)[0]}."
        )


def check_square(name: str, k) -> None:
    """Raises `ValueError` unless `k` is a finite square matrix."""
    check_rank(name, k, 2)
    if jnp.shape(k)[0] != jnp.shape(k)[1]:
        raise ValueError(f"{name} must be square, got shape {jnp.shape(k)}.")
    check_finite(name, k)


def check_labels(labels, num_classes: int, num_samples: int | None = None) -> None:
    """Raises `ValueError` unless `labels` are integers in `[0, num_classes)`."""
    check_rank("labels", labels, 1)
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"labels must be integers, got dtype {jnp.result_type(labels)}.")
    if num_samples is not None and jnp.shape(labels)[0] != num_samples:
        raise ValueError(
            f"labels has {jnp.shape(labels)[0]} entries but features has {num_samples} rows."
        )
    if _concrete(labels) and jnp.size(labels):
        with jax.ensure_compile_time_eval():
            lo, hi = int(jnp.min(labels)), int(jnp.max(labels))
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{lo}, {hi}].")


def check_head(head, num_classes: int | None = None) -> int:
    """Validates a `(C, d)` head and returns C."""
    check_rank("head", head, 2)
    c = jnp.shape(head)[0]
    if c < 2:
        raise ValueError(f"head needs at least 2 classes (rows), got {c}.")
    if num_classes is not None and num_classes != c:
        raise ValueError(
            f"num_classes={num_classes} disagrees with head of shape {jnp.shape(head)}: "
            "head rows are classes (for a Flax Dense kernel (d, C) pass kernel.T)."
        )
    check_finite("head", head)
    return c


def check_mask(mask, num_samples: int) -> None:
    """Raises `ValueError` unless `mask` is an `(n,)` vector of booleans or 0/1 values."""
    check_rank("mask", mask, 1)
    if jnp.shape(mask)[0] != num_samples:
        raise ValueError(f"mask has {jnp.shape(mask)[0]} entries, expected {num_samples}.")
    if _concrete(mask) and not np.isin(np.asarray(mask, dtype=np.float64), (0, 1)).all():
        raise ValueError("mask entries must be booleans or 0/1 (1 keeps a sample).")
