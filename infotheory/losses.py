"""Interplay regularizers for optax training loops.

The papers' objective adds to the cross-entropy

    −λ_mi · MI(G(f), G(W_Y)) + λ_hd · |H(G(f)) − H(G(W_Y))|

with unnormalized MI and entropy difference (Tan et al., ICML 2024, §5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from infotheory.interplay import interplay


def interplay_regularizer(
    features: ArrayLike,
    labels: ArrayLike,
    head: ArrayLike,
    *,
    mi_weight: float,
    hdr_weight: float,
    mask: ArrayLike | None = None,
    match_width: bool = True,
) -> jax.Array:
    """`−mi_weight · MI + hdr_weight · |h_features − h_heads|` for one batch.

    Differentiable in `features` and `head` (gradients are finite at degenerate
    spectra, see `infotheory.spectral`). Add it to an optax loss inside the
    jitted step.

    Args:
      features: `(n, d)` penultimate features.
      labels: `(n,)` labels, or pseudo-labels for unlabeled data.
      head: `(C, d)` head vectors as rows (`kernel.T` of a Flax Dense).
      mi_weight: λ_mi ≥ 0.
      hdr_weight: λ_hd ≥ 0.
      mask: optional `(n,)` 0/1 mask of samples to use (e.g. confident pseudo-labels).
      match_width: see `infotheory.interplay`.

    Returns:
      Scalar regularizer; 0 when a traced `mask` keeps fewer than 2 samples (no
      confident pseudo-label yet: no term, and no NaN into the loss).

    >>> import optax
    >>> logits, features = jnp.zeros((4, 3)), jnp.eye(4, 3)
    >>> labels, head = jnp.array([0, 1, 2, 0]), jnp.eye(3)
    >>> loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    >>> loss = loss + interplay_regularizer(features, labels, head, mi_weight=0.1, hdr_weight=0.1)
    >>> bool(jnp.isfinite(loss))
    True
    """
    if mi_weight < 0 or hdr_weight < 0:
        raise ValueError(f"weights must be non-negative, got {mi_weight=}, {hdr_weight=}.")
    r = interplay(features, labels, head, mask, match_width=match_width)
    term = -mi_weight * r.mi + hdr_weight * jnp.abs(r.h_features - r.h_heads)
    if mask is None:
        return term
    return jnp.where(jnp.sum(jnp.asarray(mask, jnp.float32)) >= 2, term, 0.0)
