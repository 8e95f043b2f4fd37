"""`Interplay`: the result type of every interplay measurement."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from interplay.infotheory.information import ratios


class Interplay(NamedTuple):
    """Interplay of features and head (entropies in nats).

    Attributes:
      h_features: `H(G(Z))`.
      h_heads: `H(G(W_Y))`.
      h_joint: `H(G(Z) ⊙ G(W_Y))`.
      mi: `h_features + h_heads − h_joint`.
      mir: `mi / min(h_features, h_heads)` ∈ [0, 1].
      hdr: `|h_features − h_heads| / max(h_features, h_heads)` ∈ [0, 1].
      mi_stderr: stated error of `h_joint`, hence of `mi`, when it is a
        Lanczos estimate: `√(s² + h²)`, `s` the probes' standard error and `h`
        a bound on the quadrature's bias (`spectral.entropy_lanczos`); 0 when
        exact. MIR's is `mi_stderr / min(h_features, h_heads)`.
    """

    h_features: jax.Array
    h_heads: jax.Array
    h_joint: jax.Array
    mi: jax.Array
    mir: jax.Array
    hdr: jax.Array
    mi_stderr: jax.Array

    @classmethod
    def from_entropies(cls, h_features, h_heads, h_joint, mi_stderr=None) -> Interplay:
        r = ratios(h_features, h_heads, h_joint)
        stderr = jnp.zeros_like(r.mi) if mi_stderr is None else mi_stderr
        return cls(h_features, h_heads, h_joint, r.mi, r.mir, r.hdr, stderr)
