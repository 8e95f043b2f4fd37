"""The train state of every trainer, its checkpoints and the analysis.

A `flax.struct` dataclass (a pytree): `step`, `params`, `batch_stats` (empty
for models without BatchNorm), `opt_state` and, when the run keeps one,
`ema_params`, an exponential moving average of the weights,

    ema_{k+1} = m·ema_k + (1 − m)·params_{k+1},    ema_0 = params_0,

updated after every optimizer step (USB's `EMA` hook, m = 0.999); the optimizer
`tx` and `ema_momentum` m are static. `eval_variables` are what the evaluators
read: the EMA weights with the live BatchNorm statistics when there is an EMA
(as USB evaluates), else the trained weights. The data position needs no field:
every trainer's batch of step s is a pure function of (seed, s), so the step is
the position.
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
    ema_params: Any = None
    ema_momentum: float = struct.field(pytree_node=False, default=0.0)

    @classmethod
    def create(
        cls, variables: dict, tx: optax.GradientTransformation, ema_momentum: float = 0.0
    ) -> TrainState:
        """State at step 0 from `model.init`'s variables; an EMA of the weights when
        `ema_momentum` m is in (0, 1), none when it is 0.

        Raises:
          ValueError: m outside [0, 1).
        """
        if not 0 <= ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in [0, 1), got {ema_momentum}.")
        params = variables["params"]
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
            tx=tx,
            ema_params=jax.tree.map(jnp.copy, params) if ema_momentum else None,
            ema_momentum=ema_momentum,
        )

    @property
    def variables(self) -> dict:
        """`{"params", "batch_stats"}` of the trained weights, for `model.apply`."""
        return {"params": self.params, "batch_stats": self.batch_stats}

    @property
    def eval_variables(self) -> dict:
        """What the evaluators read: the EMA weights (if kept) with the live batch stats."""
        params = self.params if self.ema_params is None else self.ema_params
        return {"params": params, "batch_stats": self.batch_stats}

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
        ema = self.ema_params
        if ema is not None:
            ema = optax.incremental_update(params, ema, 1 - self.ema_momentum)
        new = self.replace(
            step=self.step + 1,
            params=params,
            opt_state=opt_state,
            batch_stats=self.batch_stats if batch_stats is None else batch_stats,
            ema_params=ema,
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
