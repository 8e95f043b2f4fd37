"""Interplay of a batch of features with the classification head.

`interplay(features, labels, head)` uses the class structure of `G(W_Y)`:
its entropy comes from a C × C matrix weighted by class counts, and the joint
entropy from whichever is smaller of the n × n matrix `G(Z) ⊙ G(W_Y)` and the
`(dC, dC)` class-scatter dual (see `interplay.infotheory.scatter`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from interplay.infotheory import _checks, scatter
from interplay.infotheory._precision import full_precision
from interplay.infotheory._sharding import replicate
from interplay.infotheory.information import density, density_entropy, row_density
from interplay.infotheory.kernels import as_float, gram, normalize
from interplay.infotheory.results import Interplay


def _validate(features, labels, head, mask, match_width: bool) -> None:
    _checks.check_samples("features", features)
    num_classes = _checks.check_head(head, width=jnp.shape(features)[1] if match_width else None)
    _checks.check_labels(labels, num_classes, jnp.shape(features)[0])
    if mask is not None:
        _checks.check_mask(mask, jnp.shape(features)[0])


def _from_normalized(zn, labels, head, mask) -> Interplay:
    """The interplay of unit (or zero, masked) rows `zn`: the computation behind `interplay`."""
    num_classes = head.shape[0]
    onehot = jax.nn.one_hot(labels, num_classes, dtype=zn.dtype) * mask[:, None]
    g_head = gram(head)
    h_heads = scatter.head_entropy(onehot.sum(0), g_head)
    n, d = zn.shape
    if n <= d * num_classes:
        g_features = zn @ zn.T
        h_joint = density_entropy(density(g_features * (onehot @ g_head @ onehot.T)))
        h_features = density_entropy(row_density(zn))
    else:
        stats = scatter.update(scatter.init(num_classes, d, zn.dtype), zn, labels, mask)
        h_joint = scatter.joint_entropy_exact(stats, g_head)
        h_features = scatter.features_entropy(stats)
    return Interplay.from_entropies(h_features, h_heads, h_joint)


@jax.jit
def _interplay(features, labels, head, mask) -> Interplay:
    # A batch is small: replicate it so that the eigendecompositions run unsharded.
    features, labels, mask = replicate(as_float(features)), replicate(labels), replicate(mask)
    head = as_float(head).astype(features.dtype)
    r = _from_normalized(normalize(features) * mask[:, None], labels, head, mask)
    return _checks.poison(r, _checks.labels_valid(labels, head.shape[0]) & _checks.mask_valid(mask))


@full_precision
def interplay(
    features: ArrayLike,
    labels: ArrayLike,
    head: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    match_width: bool = True,
) -> Interplay:
    """Interplay between a batch's features and its labels' head vectors.

    Computes, with `K₁ = G(Z)` and `K₂ = G(W_Y) = G([w_{y₁} … w_{yₙ}])`,
    `H(K₁)`, `H(K₂)`, `H(K₁ ⊙ K₂)`, `MI = H(K₁) + H(K₂) − H(K₁ ⊙ K₂)`,
    `MIR = MI / min(H(K₁), H(K₂))` and `HDR = |H(K₁) − H(K₂)| / max(H(K₁), H(K₂))`.

    Args:
      features: `(n, d)` penultimate representations.
      labels: `(n,)` integer classes in `[0, C)`.
      head: `(C, d)` class vectors as rows (a Flax Dense kernel is `(d, C)`:
        pass `kernel.T`).
      mask: optional `(n,)` 0/1 mask keeping at least 2 samples; masked-out
        samples are dropped (e.g. unconfident pseudo-labels).
      match_width: require the head's width to equal the features' `d`, which
        catches a kernel passed untransposed; False compares with a head of
        another width on purpose (e.g. hidden activations vs the unembedding).

    Returns:
      `Interplay(h_features, h_heads, h_joint, mi, mir, hdr, mi_stderr)`.

    Raises:
      ValueError: on wrong shapes or dtypes, fewer than 2 samples, labels
        outside `[0, C)` or non-finite values. Under `jit`/`vmap` only shape
        errors are raised; bad values make the result NaN, and
        `checkify.checkify(f, errors=checkify.user_checks)` names them.

    >>> head = jnp.eye(3)
    >>> r = interplay(head, jnp.arange(3), head)  # features equal their heads
    >>> round(float(r.mir), 4), round(float(r.hdr), 4)
    (1.0, 0.0)
    """
    features, labels, head, mask = _checks.arrays(features, labels, head, mask)
    _validate(features, labels, head, mask, match_width)
    mask = jnp.ones(jnp.shape(features)[0]) if mask is None else jnp.asarray(mask)
    return _interplay(features, jnp.asarray(labels), head, mask.astype(jnp.float32))
