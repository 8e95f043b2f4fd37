"""Which pseudo-labels to trust: FixMatch's fixed threshold and FreeMatch's self-adaptive ones.

FreeMatch (Wang et al., ICLR 2023), as USB's `FreeMatchThresholingHook` does it:
with `p_b` the weak-view class probabilities of unlabeled sample b and EMA decay m,

    τ_t  = m·τ_{t−1}  + (1 − m)·mean_b max_c p_bc        (global threshold)
    p̃_t  = m·p̃_{t−1}  + (1 − m)·mean_b p_b               (class-wise model expectation)
    h_t  = m·h_{t−1}  + (1 − m)·hist_c(argmax p_b) / B   (pseudo-label histogram)

all starting at 1/C, updated with the batch before its mask is taken; sample b
is kept when `max_c p_bc ≥ τ_t · p̃_t[ĉ_b] / max_c p̃_t` (its local threshold).
The self-adaptive fairness term on the kept strong-view probabilities `q_b`
(`q̄` their mean, `h̄` the histogram of their argmax) is

    L_f = Σ_c SumNorm(p̃_t / h_t)_c · log SumNorm(q̄ / h̄)_c

with the two rescalings held constant (stop-gradient) and 1/0 read as 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Thresholds:
    """FreeMatch's running estimates (part of the train state and its checkpoints).

    Attributes:
      global_threshold: τ, the EMA of the mean confidence.
      class_probs: p̃ `(C,)`, the EMA of the mean probability vector.
      label_hist: h `(C,)`, the EMA of the pseudo-label histogram.
    """

    global_threshold: jax.Array
    class_probs: jax.Array
    label_hist: jax.Array

    @classmethod
    def create(cls, num_classes: int) -> Thresholds:
        """All at 1/C, as in FreeMatch."""

        def uniform():  # separate buffers: the state is donated to the jitted step
            return jnp.full((num_classes,), 1.0 / num_classes)

        return cls(jnp.asarray(1.0 / num_classes), uniform(), uniform())

    def update(self, probs: jax.Array, decay: float) -> Thresholds:
        """One EMA step with the weak-view probabilities `probs (B, C)` of a batch."""

        def ema(old, new):
            return decay * old + (1 - decay) * new

        num_classes = probs.shape[-1]
        hist = jax.nn.one_hot(jnp.argmax(probs, -1), num_classes).mean(0)
        return Thresholds(
            ema(self.global_threshold, probs.max(-1).mean()),
            ema(self.class_probs, probs.mean(0)),
            ema(self.label_hist, hist),
        )

    @property
    def local_thresholds(self) -> jax.Array:
        """`τ · p̃_c / max p̃`, the threshold of each class `(C,)`."""
        return self.global_threshold * self.class_probs / self.class_probs.max()


def freematch_mask(thresholds: Thresholds, probs: jax.Array) -> jax.Array:
    """1.0 where a sample's confidence reaches its predicted class's local threshold."""
    local = thresholds.local_thresholds[jnp.argmax(probs, -1)]
    return (probs.max(-1) >= local).astype(probs.dtype)


def fixmatch_mask(probs: jax.Array, threshold: float) -> jax.Array:
    """1.0 where a sample's confidence reaches the fixed `threshold`."""
    return (probs.max(-1) >= threshold).astype(probs.dtype)


def _sum_normalized_inverse(values: jax.Array, hist: jax.Array) -> jax.Array:
    """`SumNorm(values / hist)` with 1/0 read as 0 and the rescaling held constant; all zeros
    (nothing kept) stay zeros, so that no NaN reaches the gradient through a masked branch."""
    scale = jax.lax.stop_gradient(jnp.where(hist > 0, 1.0 / jnp.where(hist > 0, hist, 1.0), 0.0))
    scaled = values * scale
    total = scaled.sum()
    return scaled / jnp.where(total > 0, total, 1.0)


def fairness_loss(thresholds: Thresholds, strong_logits: jax.Array, mask: jax.Array) -> jax.Array:
    """FreeMatch's self-adaptive fairness term `L_f` (module docstring); 0 when nothing is kept."""
    probs = jax.nn.softmax(strong_logits)
    kept = mask.sum()
    safe = jnp.maximum(kept, 1.0)
    mean_probs = (probs * mask[:, None]).sum(0) / safe
    hist = (jax.nn.one_hot(jnp.argmax(probs, -1), probs.shape[-1]) * mask[:, None]).sum(0) / safe
    target = _sum_normalized_inverse(thresholds.class_probs, thresholds.label_hist)
    batch = _sum_normalized_inverse(mean_probs, hist)
    loss = jnp.sum(target * jnp.log(batch + 1e-12))
    return jnp.where(kept > 0, loss, 0.0)
