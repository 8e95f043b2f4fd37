"""`dataset_interplay`: the whole split's interplay from batches, in the smaller statistic.

Two sufficient statistics of a labelled split measure its interplay without an
`(n, n)` matrix: the class scatter (`scatter`, `C·d²` numbers, any n) and the
unit features kept sorted by class (`features_dual`, `n·d` numbers). Batches
are kept while `n ≤ C·d`, and folded into the class scatter once more arrive.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from interplay.infotheory import _checks, features_dual, scatter, spectral
from interplay.infotheory._precision import full_precision
from interplay.infotheory.kernels import as_float
from interplay.infotheory.results import Interplay

_update = jax.jit(scatter.update, donate_argnums=0)


@full_precision
def dataset_interplay(
    batches: Iterable[tuple[ArrayLike, ArrayLike]],
    head: ArrayLike,
    *,
    num_classes: int,
    method: str = "auto",
    key: jax.Array | None = None,
    num_probes: int = spectral.NUM_PROBES,
    num_matvecs: int = spectral.NUM_MATVECS,
    num_deflate: int = spectral.NUM_DEFLATE,
    match_width: bool = True,
    progress: bool = False,
) -> Interplay:
    """Whole-dataset interplay from `(features, labels)` batches.

    Never holds an `(n, n)` matrix. Memory: the smaller of the kept features
    (`n·d`, while `n ≤ C·d`) and the class scatter (`C·d²`), plus for
    `method="exact"` the `(dC)²` dual, for `"lanczos"` `num_deflate` vectors of
    `dC` numbers (`min(n, d·d')` on kept features when the head is narrower than C) and
    `num_matvecs` of them for each of the `spectral.PROBES_AT_ONCE` probes in flight.

    Error: `"exact"` is exact up to float round-off. A `"lanczos"` estimate
    (`spectral.entropy_lanczos`) returns its stated error as `mi_stderr`: the
    probes' standard error and the half-width of the Gauss / Gauss–Radau
    bracket around every quadrature, `√(s² + h²)`. How close the defaults come
    to the exact dual is measured by `benchmarks/lanczos_accuracy.py`
    (docs/lanczos_accuracy.md).

    Args:
      batches: iterable of `(features (b, d), labels (b,))`; may be sharded.
      head: `(C, d')` class vectors as rows (a Flax Dense kernel `(d, C)`: pass `kernel.T`).
      num_classes: C; must equal `head.shape[0]`.
      method: `"exact"`, `"lanczos"` or `"auto"` (`scatter.choose_method`: exact when
        `d·C ≤ EXACT_MAX_DIM` of the backend, 6 144 on a CPU and 24 576 on a GPU).
      key: PRNG key for Lanczos (default `jax.random.key(0)`, as in `measure`).
      num_probes: Lanczos probes.
      num_matvecs: Lanczos steps per probe.
      num_deflate: vectors near the top eigenvectors taken exactly before the
        probes (`spectral.entropy_lanczos`); 0 for plain Hutchinson.
      match_width: require the head's width to equal the features' (see `scatter.measure`).
      progress: show a tqdm bar over batches.

    Returns:
      `Interplay` of the whole dataset (`mi_stderr` > 0 for a Lanczos estimate).

    >>> z = jnp.eye(4)
    >>> r = dataset_interplay([(z[:2], jnp.array([0, 1])), (z[2:], jnp.array([0, 1]))],
    ...                       jnp.eye(2, 4), num_classes=2)
    >>> round(float(r.h_features), 4), round(float(r.h_heads), 4)  # log 4, log 2
    (1.3863, 0.6931)
    """
    head = _checks.arrays(head)
    _checks.check_head(head, num_classes)
    kept, stats, dim = [], None, None
    for features, labels in tqdm(batches, desc="interplay", disable=not progress, leave=False):
        features, labels = _checks.arrays(features, labels)
        _checks.check_rank("features", features, 2)
        _checks.check_finite("features", features)
        dim = jnp.shape(features)[1]
        _checks.check_labels(labels, num_classes, jnp.shape(features)[0])
        kept.append((features, labels))
        if stats is not None or sum(len(y) for _, y in kept) > num_classes * dim:
            stats, kept = _fold(stats, kept, num_classes), []
    if sum(len(y) for _, y in kept) + (0 if stats is None else float(stats.counts.sum())) < 2:
        raise ValueError("dataset_interplay needs at least 2 samples in total.")
    _checks.check_head(head, num_classes, dim if match_width else None)
    if method == "auto":
        method = scatter.choose_method(dim, num_classes)
    if stats is None and method == "lanczos":
        features = as_float(jnp.concatenate([jnp.asarray(f) for f, _ in kept]))
        labels = jnp.concatenate([jnp.asarray(y) for _, y in kept])
        key = jax.random.key(0) if key is None else key
        return features_dual.measure(
            features_dual.keep(features, labels, num_classes),
            head,
            key,
            num_probes=num_probes,
            num_matvecs=num_matvecs,
            num_deflate=num_deflate,
        )
    stats = _fold(stats, kept, num_classes)  # an exact dual is small: so is the class scatter
    return scatter.measure(
        stats,
        head,
        method=method,
        key=key,
        num_probes=num_probes,
        num_matvecs=num_matvecs,
        num_deflate=num_deflate,
        match_width=match_width,
    )


def _fold(stats, kept, num_classes: int) -> scatter.ClassScatter:
    """`kept` batches added to `stats` (created, at least float32, from the first batch)."""
    for features, labels in kept:
        if stats is None:
            dtype = jnp.promote_types(jnp.result_type(features), jnp.float32)
            stats = scatter.init(num_classes, jnp.shape(features)[1], dtype)
        stats = _update(stats, features, labels)
    return stats
