"""The train state of every trainer, its checkpoints and the analysis.

A `flax.struct` dataclass (a pytree): `step`, `params`, `batch_stats` (empty
for models without BatchNorm) and `opt_state`; the optimizer `tx` is static.
The data position needs no field: every trainer's batch of step s is a pure
function of (seed, s), so the step is the position.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @classmethod
    def create(cls, variables: dict, tx: optax.GradientTransformation) -> TrainState:
        """State at step 0 from `model.init`'s variables."""
        params = variables["params"]
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
            tx=tx,
        )

    @property
    def variables(self) -> dict:
        """`{"params", "batch_stats"}` for `model.apply`."""
        return {"params": self.params, "batch_stats": self.batch_stats}

    def apply_gradients(self, grads, batch_stats=None) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimizer step; returns the new state and the norms every log row carries.

        Returns:
          `(state, {"grad_norm", "update_norm", "param_norm"})`, global L2 norms of
          the gradient, of the parameter update and of the new parameters.
        """
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        norms = {
            "grad_norm": optax.tree.norm(grads),
            "update_norm": optax.tree.norm(updates),
            "param_norm": optax.tree.norm(params),
        }
        new = self.replace(
            step=self.step + 1,
            params=params,
            opt_state=opt_state,
            batch_stats=self.batch_stats if batch_stats is None else batch_stats,
        )
        return new, norms


def train_step(state: TrainState, batch, *, loss_fn) -> tuple[TrainState, dict[str, jax.Array]]:
    """One gradient step of `loss_fn(params, state, batch) → (loss, new batch_stats)`.

    Returns:
      The new state and `{"loss", "grad_norm", "update_norm", "param_norm"}`.
    """
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state, batch
    )
    state, norms = state.apply_gradients(grads, batch_stats)
    return state, {"loss": loss, **norms}
