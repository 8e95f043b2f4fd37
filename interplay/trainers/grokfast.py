"""Grokfast's EMA gradient filter as an optax transformation (Lee et al., 2024, arXiv 2405.20233).

    tx = optax.chain(grokfast.ema_filter(alpha=0.98, lamb=2.0), optax.adamw(...))

Amplifies the slow component of the gradient before the optimizer sees it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class EmaFilterState(NamedTuple):
    count: jax.Array  # steps seen; the EMA starts at the first gradient
    ema: Any  # EMA of the raw gradients, a pytree like the params


def ema_filter(alpha: float = 0.98, lamb: float = 2.0) -> optax.GradientTransformation:
    """`g ← g + λ·m`, with `m ← α·m + (1 − α)·g` and `m` set to the first gradient.

    The reference implementation (ironjr/grokfast, `gradfilter_ema`) starts its
    EMA at the first gradient rather than at zero, so step 0 returns
    `(1 + λ)·g₀`; so does this one. Defaults are the published ones for modular
    arithmetic.

    Args:
      alpha: EMA momentum in [0, 1).
      lamb: amplification λ ≥ 0 of the slow component.

    Returns:
      An `optax.GradientTransformation`; chain it before the optimizer.

    >>> tx = ema_filter(0.5, 1.0)
    >>> state = tx.init(jnp.zeros(1))
    >>> g, state = tx.update(jnp.ones(1), state)
    >>> float(g[0])
    2.0
    """
    if not 0 <= alpha < 1:
        raise ValueError(f"Grokfast alpha must be in [0, 1), got {alpha}.")
    if lamb < 0:
        raise ValueError(f"Grokfast lamb must be ≥ 0, got {lamb}.")

    def init(params) -> EmaFilterState:
        return EmaFilterState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(updates, state: EmaFilterState, params=None):
        del params
        first = state.count == 0
        ema = jax.tree.map(
            lambda m, g: jnp.where(first, g, alpha * m + (1 - alpha) * g), state.ema, updates
        )
        updates = jax.tree.map(lambda g, m: g + lamb * m, updates, ema)
        return updates, EmaFilterState(state.count + 1, ema)

    return optax.GradientTransformation(init, update)
