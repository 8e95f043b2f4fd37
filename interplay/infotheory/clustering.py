"""How tightly features cluster by class: silhouette, Davies–Bouldin, per-class entropy.

Paper [B] (arXiv 2409.16767) reads the matrix entropy of features as a
clustering measure; these are the classical measures it is compared with,
with scikit-learn's conventions (only classes that have samples count):

* silhouette `s(i) = (b(i) − a(i)) / max(a(i), b(i))`, `a(i)` the mean
  distance from `i` to the other members of its class, `b(i)` the smallest
  mean distance to another class; `s(i) = 0` for a sample alone in its class;
  the score is the mean of `s(i)` over samples (↑ tighter);
* Davies–Bouldin `(1/C) Σ_k max_{l≠k} (s_k + s_l) / ‖μ_k − μ_l‖`, `s_k` the
  mean distance of class `k`'s samples to its centroid `μ_k` (pairs with
  coincident centroids are skipped; 0 when all `s_k` or all centroid
  distances are 0) (↓ tighter);
* `class_entropies`: `H(G(Z_c))` of each class's features (↓ more similar).

Both scores need at least 2 classes with samples and fewer classes than
samples (`ValueError` eagerly, NaN under `jit`/`vmap`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from interplay.infotheory import _checks, scatter
from interplay.infotheory._precision import full_precision
from interplay.infotheory.kernels import as_float, normalize

METRICS = ("cosine", "euclidean")


def _validate(features, labels, num_classes: int) -> None:
    _checks.check_samples("features", features)
    _checks.check_labels(labels, num_classes, jnp.shape(features)[0])
    _checks.check_clusters(labels, num_classes, jnp.shape(features)[0])


def _valid(counts: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    present = jnp.sum(counts > 0)
    return _checks.labels_valid(labels, num_classes) & (present >= 2) & (present < counts.sum())


def silhouette_from_sums(sums: jax.Array, labels: jax.Array, counts: jax.Array) -> jax.Array:
    """Per-sample silhouette `(n,)` from `sums[i, c] = Σ_{j ∈ c, j ≠ i} d(i, j)` `(n, C)`."""
    own = jax.nn.one_hot(labels, counts.shape[0], dtype=sums.dtype)
    size = counts[labels]
    a = jnp.sum(sums * own, -1) / jnp.where(size > 1, size - 1, 1)
    others = jnp.where((own > 0) | (counts == 0), jnp.inf, sums / jnp.maximum(counts, 1))
    b = jnp.min(others, -1)
    s = (b - a) / jnp.maximum(a, b)
    return jnp.where((size > 1) & (jnp.maximum(a, b) > 0), s, 0)


@full_precision
def unit_sums(
    features: jax.Array, labels: jax.Array, num_classes: int, mask: jax.Array | None = None
) -> jax.Array:
    """`U_c = Σ_{yᵢ=c} ẑᵢ` `(C, d)` over the kept samples: with the counts, all that
    the cosine silhouette needs of the whole set."""
    zn = normalize(features)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=zn.dtype)
    return (onehot if mask is None else onehot * mask[:, None]).T @ zn


@full_precision
def cosine_sums(
    features: jax.Array, labels: jax.Array, unit_sums: jax.Array, counts: jax.Array
) -> jax.Array:
    """`Σ_{j ∈ c, j ≠ i} (1 − ẑᵢ·ẑⱼ)` `(n, C)` from the whole set's class sums of
    unit features `U (C, d)` and `counts (C,)`: `n_c − ẑᵢ·U_c − [yᵢ = c](1 − ‖ẑᵢ‖²)`.

    `O(n·C·d)`, so the cosine silhouette streams and needs no pairwise matrix.
    """
    zn = normalize(features)
    own = jax.nn.one_hot(labels, counts.shape[0], dtype=zn.dtype)
    return counts - zn @ unit_sums.T - own * (1 - jnp.sum(zn * zn, -1, keepdims=True))


def _euclidean_sums(features: jax.Array, onehot: jax.Array, block: int) -> jax.Array:
    """`Σ_{j ∈ c, j ≠ i} ‖zᵢ − zⱼ‖` `(n, C)`, a `(block, n)` distance matrix at a time."""
    n = features.shape[0]
    squares = jnp.sum(features * features, -1)
    padded = jnp.pad(features, ((0, -n % block), (0, 0)))

    def rows(start):
        z = jax.lax.dynamic_slice_in_dim(padded, start, block)
        d2 = jnp.sum(z * z, -1)[:, None] + squares[None] - 2 * z @ features.T
        d2 = jnp.where(start + jnp.arange(block)[:, None] == jnp.arange(n), 0, d2)
        return jnp.sqrt(jnp.maximum(d2, 0)) @ onehot

    sums = jax.lax.map(rows, jnp.arange(0, n, block))
    return sums.reshape(-1, onehot.shape[1])[:n]


@functools.partial(jax.jit, static_argnames=("num_classes", "metric", "block_size"))
def _silhouette(features, labels, *, num_classes, metric, block_size):
    z = as_float(features)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
    counts = onehot.sum(0)
    if metric == "cosine":
        sums = cosine_sums(z, labels, unit_sums(z, labels, num_classes), counts)
    else:
        sums = _euclidean_sums(z, onehot, block_size)
    score = jnp.mean(silhouette_from_sums(sums, labels, counts))
    return _checks.poison(score, _valid(counts, labels, num_classes))


@full_precision
def silhouette_score(
    features: ArrayLike,
    labels: ArrayLike,
    *,
    num_classes: int,
    metric: str = "cosine",
    block_size: int = 1024,
) -> jax.Array:
    """Mean silhouette of the classes `labels` in `features` (scikit-learn's `silhouette_score`).

    Args:
      features: `(n, d)`.
      labels: `(n,)` integers in `[0, num_classes)`; absent classes are ignored.
      num_classes: C (static).
      metric: `"cosine"` (`1 − cos`, from class sums in `O(n·C·d)` time and
        `O(C·d)` extra memory) or `"euclidean"` (pairwise, `block_size` rows
        at a time: `O(block_size · n)` memory).
      block_size: rows per block of the euclidean distance matrix.

    Returns:
      Scalar in `[−1, 1]`; 1 for tight, well separated classes.

    >>> z = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> round(float(silhouette_score(z, jnp.array([0, 0, 1, 1]), num_classes=2)), 3)
    0.994
    """
    features, labels = _checks.arrays(features, labels)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
    _validate(features, labels, num_classes)
    return _silhouette(
        features, labels, num_classes=num_classes, metric=metric, block_size=block_size
    )


@full_precision
def davies_bouldin_from(means: jax.Array, counts: jax.Array, spreads: jax.Array) -> jax.Array:
    """Davies–Bouldin from class `means (C, d)`, `counts (C,)` and `spreads (C,)`,
    `spreads[k] = Σ_{yᵢ=k} ‖zᵢ − μ_k‖` (streamable: a second pass given the means)."""
    present = counts > 0
    s = spreads / jnp.maximum(counts, 1)
    squares = jnp.sum(means * means, -1)
    d2 = squares[:, None] + squares[None] - 2 * means @ means.T
    pair = present[:, None] & present[None] & ~jnp.eye(len(counts), dtype=bool)
    distances = jnp.where(pair, jnp.sqrt(jnp.maximum(d2, 0)), 0)
    ratios = (s[:, None] + s[None]) / jnp.where(distances > 0, distances, jnp.inf)
    score = jnp.sum(jnp.where(present, jnp.max(ratios * pair, -1), 0)) / jnp.sum(present)
    degenerate = jnp.all(jnp.where(present, s, 0) <= 1e-8) | jnp.all(distances <= 1e-8)
    return jnp.where(degenerate, 0.0, score)


@functools.partial(jax.jit, static_argnames="num_classes")
def _davies_bouldin(features, labels, *, num_classes):
    z = as_float(features)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
    counts = onehot.sum(0)
    means = onehot.T @ z / jnp.maximum(counts, 1)[:, None]
    spreads = onehot.T @ jnp.linalg.norm(z - means[labels], axis=-1)
    score = davies_bouldin_from(means, counts, spreads)
    return _checks.poison(score, _valid(counts, labels, num_classes))


@full_precision
def davies_bouldin_index(features: ArrayLike, labels: ArrayLike, *, num_classes: int) -> jax.Array:
    """Davies–Bouldin index of the classes in `features` (scikit-learn's `davies_bouldin_score`).

    Euclidean; `O(C·d)` memory besides the features. 0 is best.

    >>> z = jnp.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    >>> round(float(davies_bouldin_index(z, jnp.array([0, 0, 1, 1]), num_classes=2)), 4)  # 2 / 10
    0.2
    """
    features, labels = _checks.arrays(features, labels)
    _validate(features, labels, num_classes)
    return _davies_bouldin(features, labels, num_classes=num_classes)


@full_precision
def class_entropies(features: ArrayLike, labels: ArrayLike, *, num_classes: int) -> jax.Array:
    """`H(G(Z_c))` for each class `(C,)`, NaN for a class without samples.

    From the class scatter `S_c = Σ_{yᵢ=c} ẑᵢẑᵢᵀ` (`scatter.class_entropies_from_scatter`),
    which shares the nonzero spectrum of `G(Z_c)`.

    >>> z = jnp.concatenate([jnp.eye(3), jnp.ones((2, 3))])
    >>> class_entropies(z, jnp.array([0, 0, 0, 1, 1]), num_classes=2).round(4)  # log 3, 0
    Array([1.0986, 0.    ], dtype=float32)
    """
    features, labels = _checks.arrays(features, labels)
    _checks.check_samples("features", features)
    _checks.check_labels(labels, num_classes, jnp.shape(features)[0])
    stats = scatter.update(scatter.init(num_classes, jnp.shape(features)[1]), features, labels)
    return scatter.class_entropies_from_scatter(stats)
