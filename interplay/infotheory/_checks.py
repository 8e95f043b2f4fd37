"""Input validation shared by the public entry points.

Shape, rank and dtype checks run always, so jitted and vmapped calls fail at
trace time. Value checks (finite entries, label range, masks, PSD kernels)
raise `ValueError` when the entry point is called eagerly. On traced values
they are `checkify.debug_check`s: no-ops under plain `jit` and `vmap`, where
bad values make the results NaN instead (`poison`), and the same named error
under `checkify.checkify(f, errors=checkify.user_checks)`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from interplay.infotheory.spectral import eigvalsh


def _traced(*xs) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))


def check(ok, message: str, **values) -> None:
    """`ok` must hold: eagerly a `ValueError`, traced a `checkify.debug_check`.

    Args:
      ok: boolean scalar (array or traced).
      message: the error, a `str.format` template over `values`.
      **values: scalars shown in the message (computed only when needed eagerly).
    """
    if _traced(ok, values):
        checkify.debug_check(ok, message, **values)
    elif not bool(ok):
        raise ValueError(message.format(**{k: np.asarray(v).item() for k, v in values.items()}))


def poison(tree, ok):
    """`tree` with every leaf NaN where `ok` is False: bad input never reads as a number."""
    return jax.tree.map(lambda x: jnp.where(ok, x, jnp.nan), tree)


def arrays(*xs):
    """Python lists and tuples as NumPy arrays (they are `ArrayLike`); others unchanged."""
    out = tuple(np.asarray(x) if isinstance(x, list | tuple) else x for x in xs)
    return out if len(out) > 1 else out[0]


def _dtype(x):
    """The dtype of an array, or of a nested Python list as NumPy reads it."""
    return jnp.result_type(x) if hasattr(x, "dtype") else np.asarray(x).dtype


def check_rank(name: str, x, rank: int) -> None:
    """Raises `ValueError` unless `x` is a real (non-complex) array with `rank` axes."""
    if jnp.ndim(x) != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {jnp.shape(x)}.")
    dtype = _dtype(x)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {dtype}.")


def check_finite(name: str, x) -> None:
    """`x` holds no NaN or Inf."""
    xp = _xp(x)
    check(xp.all(xp.isfinite(xp.asarray(x))), f"{name} contains NaN or Inf values.")


def check_samples(name: str, x) -> None:
    """`x` is a finite `(n, d)` matrix with n ≥ 2 and d ≥ 1."""
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


def _xp(*xs):
    """NumPy for values this process holds (no compilation per new shape), `jax.numpy` for
    traced ones and for arrays spread over several processes (none holds all of it)."""
    if _traced(*xs):
        return jnp
    leaves = jax.tree.leaves(xs)
    return (
        jnp if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves) else np
    )


def kernel_symmetric(k) -> jax.Array:
    """`max |K − Kᵀ| ≤ √eps · max |K|`: symmetric up to round-off."""
    xp = _xp(k)
    k = xp.asarray(k)
    eps = float(jnp.finfo(k.dtype).eps)
    return xp.max(xp.abs(k - k.T)) <= math.sqrt(eps) * xp.max(xp.abs(k))


def check_kernel(name: str, k) -> None:
    """`k` is a finite square, symmetric, PSD matrix with positive trace.

    Symmetry and PSD hold up to round-off: `|K − Kᵀ| ≤ √eps · max|K|` and
    `λ_min ≥ −n · eps · λ_max`.
    """
    check_rank(name, k, 2)
    if jnp.shape(k)[0] != jnp.shape(k)[1]:
        raise ValueError(f"{name} must be square, got shape {jnp.shape(k)}.")
    check_finite(name, k)
    xp = _xp(k)
    k = xp.asarray(k)
    if xp is jnp:  # no derivative through a check (the CPU eigensolver of `eigvalsh` has none)
        k = jax.lax.stop_gradient(k)
    k = k.astype(jnp.promote_types(k.dtype, jnp.float32))
    eps = float(jnp.finfo(k.dtype).eps)
    check(
        xp.trace(k) > 0,
        f"{name} must have a positive trace (a PSD kernel), got {{trace}}.",
        trace=xp.trace(k),
    )
    check(
        kernel_symmetric(k),
        f"{name} must be symmetric; max |K − Kᵀ| is {{asym}}.",
        asym=xp.max(xp.abs(k - k.T)),
    )
    lam = (eigvalsh if xp is jnp else np.linalg.eigvalsh)((k + k.T) / 2)
    check(
        lam[0] >= -k.shape[0] * eps * xp.maximum(lam[-1], 0),
        f"{name} must be positive semi-definite; its smallest eigenvalue is {{low}}.",
        low=lam[0],
    )


def labels_valid(labels, num_classes: int) -> jax.Array:
    """True when every label lies in `[0, num_classes)`."""
    xp = _xp(labels)
    labels = xp.asarray(labels)
    return xp.all((labels >= 0) & (labels < num_classes))


def check_labels(labels, num_classes: int, num_samples: int | None = None) -> None:
    """`labels` are `(n,)` integers in `[0, num_classes)`."""
    check_rank("labels", labels, 1)
    if not jnp.issubdtype(_dtype(labels), jnp.integer):
        raise ValueError(f"labels must be integers, got dtype {_dtype(labels)}.")
    if num_samples is not None and jnp.shape(labels)[0] != num_samples:
        raise ValueError(
            f"labels has {jnp.shape(labels)[0]} entries but features has {num_samples} rows."
        )
    if jnp.size(labels):
        xp = _xp(labels)
        labels = xp.asarray(labels)
        check(
            labels_valid(labels, num_classes),
            f"labels must lie in [0, {num_classes}), got values in [{{lo}}, {{hi}}].",
            lo=xp.min(labels),
            hi=xp.max(labels),
        )


def check_clusters(labels, num_classes: int, num_samples: int) -> None:
    """Between 2 and `num_samples − 1` classes have samples (scikit-learn's clustering scores)."""
    xp = _xp(labels)
    present = xp.sum(xp.any(xp.arange(num_classes)[:, None] == xp.asarray(labels), -1))
    check(
        (present >= 2) & (present < num_samples),
        "clustering scores need 2 ≤ classes with samples < samples, got {present} classes.",
        present=present,
    )


def check_head(head, num_classes: int | None = None, width: int | None = None) -> int:
    """Validates a finite `(C, d)` head (C ≥ 2, and d = `width` when given); returns C."""
    check_rank("head", head, 2)
    c, d = jnp.shape(head)
    kernel_hint = "head rows are classes: for a Flax Dense kernel (d, C) pass kernel.T"
    if c < 2:
        raise ValueError(f"head needs at least 2 classes (rows), got {c}.")
    if num_classes is not None and num_classes != c:
        raise ValueError(
            f"num_classes={num_classes} disagrees with head of shape {(c, d)}: {kernel_hint}."
        )
    if width is not None and d != width:
        raise ValueError(
            f"head of shape {(c, d)} does not match features of width {width}: {kernel_hint}; "
            "for a head of another width on purpose, pass match_width=False."
        )
    check_finite("head", head)
    return c


def mask_valid(mask, min_kept: int = 2) -> jax.Array:
    """True when `mask` holds only 0/1 values and keeps at least `min_kept` samples."""
    xp = _xp(mask)
    mask = xp.asarray(mask, np.float32)
    return xp.all((mask == 0) | (mask == 1)) & (xp.sum(mask) >= min_kept)


def check_mask(mask, num_samples: int, min_kept: int = 2) -> None:
    """`mask` is an `(n,)` vector of booleans or 0/1 values keeping at least `min_kept`."""
    check_rank("mask", mask, 1)
    if jnp.shape(mask)[0] != num_samples:
        raise ValueError(f"mask has {jnp.shape(mask)[0]} entries, expected {num_samples}.")
    xp = _xp(mask)
    mask = xp.asarray(mask, np.float32)
    check(
        xp.all((mask == 0) | (mask == 1)),
        "mask entries must be booleans or 0/1 (1 keeps a sample).",
    )
    check(
        xp.sum(mask) >= min_kept,
        f"mask keeps {{kept}} samples; at least {min_kept} are needed.",
        kept=xp.sum(mask).astype(np.int32),
    )


def check_alpha(alpha) -> None:
    """The Rényi order is a static, finite, positive Python number."""
    if isinstance(alpha, jax.core.Tracer):
        raise ValueError(
            "alpha must be a static Python number (it selects the computation); "
            "under jit mark it static, e.g. jax.jit(f, static_argnames='alpha')."
        )
    if not (isinstance(alpha, int | float | np.number) and 0 < alpha < math.inf):
        raise ValueError(
            f"alpha must be a positive finite number, got {alpha!r} "
            "(the min-entropy α = ∞ is not supported)."
        )
