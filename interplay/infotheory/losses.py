"""Interplay regularizers and paper [B]'s cross-modal alignment loss for optax loops.

The papers' objective adds to the cross-entropy

    −λ_mi · MI(G(f), G(W_Y)) + λ_hd · |H(G(f)) − H(G(W_Y))|

with unnormalized MI and entropy difference (Tan et al., ICML 2024, §5).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from interplay.infotheory import _checks
from interplay.infotheory._precision import full_precision
from interplay.infotheory.batch import interplay
from interplay.infotheory.information import density, density_entropy
from interplay.infotheory.kernels import normalize


@full_precision
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
    spectra, see `interplay.infotheory.spectral`). Add it to an optax loss inside the
    jitted step.

    Args:
      features: `(n, d)` penultimate features.
      labels: `(n,)` labels, or pseudo-labels for unlabeled data.
      head: `(C, d)` head vectors as rows (`kernel.T` of a Flax Dense).
      mi_weight: λ_mi ≥ 0.
      hdr_weight: λ_hd ≥ 0.
      mask: optional `(n,)` 0/1 mask of samples to use (e.g. confident pseudo-labels).
      match_width: see `interplay.infotheory.batch`.

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


@full_precision
def cross_modal_alignment(
    features: ArrayLike,
    labels: ArrayLike,
    class_embeddings: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    normalize: str = "none",
) -> jax.Array:
    """Paper [B]'s cross-modal alignment loss `L_cma`.

    `L_cma = (1/|C_b|) Σ_{c ∈ C_b} H(G([Z_c ; e_c])) / N_c`, with `C_b` the
    classes present in the (kept part of the) batch, `Z_c` their `m_c`
    features and `e_c` the other modality's vector of class `c` (e.g. CLIP's
    text feature of the class prompt). `normalize="none"`: `N_c = 1`, nats, 0
    when every feature of a class points along its embedding and `log(m_c + 1)`
    when they are orthogonal; `"log_group"`: `N_c = log(m_c + 1)`, each group
    in [0, 1], as the reference code (`skingorz/CMA`, `MIE`) divides by the log
    of the group's size, so small groups weigh more than in nats.
    Shapes are fixed: a class absent from the batch is masked, not sliced, so
    nothing recompiles; `min(C, n)` entropies of `(n + 1)`-square matrices.

    Args:
      features: `(n, d)` features of one modality (e.g. image features).
      labels: `(n,)` classes in `[0, C)`.
      class_embeddings: `(C, d)` the other modality's class vectors.
      mask: optional `(n,)` 0/1 samples to use.
      normalize: `"none"` or `"log_group"` (above).

    Returns:
      Scalar loss (0 when a traced mask keeps no sample); NaN for labels
      outside `[0, C)` under `jit`.

    >>> import optax
    >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    >>> features, labels = jnp.array([[1.0, 0.1], [0.0, 1.0], [1.0, -0.1]]), jnp.array([0, 1, 0])
    >>> text = jnp.eye(2)  # class embeddings of the other modality
    >>> ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    >>> lam = 0.5
    >>> loss = (1 - lam) * ce + lam * cross_modal_alignment(features, labels, text)
    >>> round(float(loss), 4)
    0.1044
    """
    features, labels, class_embeddings, mask = _checks.arrays(
        features, labels, class_embeddings, mask
    )
    _checks.check_rank("features", features, 2)
    _checks.check_finite("features", features)
    _checks.check_rank("class_embeddings", class_embeddings, 2)
    if jnp.shape(class_embeddings)[1] != jnp.shape(features)[1]:
        raise ValueError(
            f"class_embeddings of shape {jnp.shape(class_embeddings)} do not match features "
            f"of width {jnp.shape(features)[1]}."
        )
    _checks.check_finite("class_embeddings", class_embeddings)
    _checks.check_labels(labels, jnp.shape(class_embeddings)[0], jnp.shape(features)[0])
    if mask is not None:
        _checks.check_mask(mask, jnp.shape(features)[0], min_kept=1)
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    mask = jnp.ones(jnp.shape(features)[0]) if mask is None else jnp.asarray(mask)
    return _cross_modal_alignment(
        features, jnp.asarray(labels), class_embeddings, mask, normalize == "log_group"
    )


#: `cross_modal_alignment`'s `normalize` values.
NORMALIZATIONS = ("none", "log_group")


@functools.partial(jax.jit, static_argnums=4)
def _cross_modal_alignment(features, labels, class_embeddings, mask, log_group) -> jax.Array:
    zn, en = normalize(features), normalize(class_embeddings)
    en = en.astype(zn.dtype)
    keep = jnp.asarray(mask, zn.dtype)
    n, num_classes = zn.shape[0], en.shape[0]
    g, cross = zn @ zn.T, zn @ en.T
    if num_classes <= n:  # one slot per class
        slots = jnp.arange(num_classes)
        used = (jax.nn.one_hot(labels, num_classes, dtype=zn.dtype) * keep[:, None]).sum(0) > 0
    else:  # one slot per sample: the first kept sample of each class
        same = (labels[:, None] == labels[None]) & (keep[None] > 0)
        slots = labels
        used = (keep > 0) & ~jnp.any(jnp.tril(same, -1), -1)

    def entropy(c):  # H(G([Z_c; e_c])) with the rows of other classes zeroed
        m = (labels == c) * keep
        k = jnp.block([[g * jnp.outer(m, m), (cross[:, c] * m)[:, None]], [cross[:, c] * m, 1]])
        h = density_entropy(density(k))
        return h / jnp.log(jnp.maximum(m.sum(), 1) + 1) if log_group else h  # absent: 0

    h = jax.vmap(entropy)(slots)
    used = used.astype(zn.dtype)
    loss = jnp.sum(h * used) / jnp.maximum(used.sum(), 1)
    return _checks.poison(loss, _checks.labels_valid(labels, num_classes))
