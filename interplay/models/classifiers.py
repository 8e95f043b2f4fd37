"""Small classifiers for the embedded datasets, the head accessor and the model registry."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def head(params) -> jax.Array:
    """Class vectors of the Dense layer named `head` as rows: `kernel.T`, `(C, d)`.

    Works on stacked params too (`(K, d, C)` kernels give `(K, C, d)`).
    """
    return jnp.swapaxes(params["head"]["kernel"], -1, -2)


class MLP(nn.Module):
    """ReLU MLP on flattened inputs; features are the last hidden layer."""

    num_classes: int
    widths: Sequence[int] = (256, 128)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        x = x.reshape(x.shape[0], -1)
        for width in self.widths:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_classes, name="head")(x), x


class SmallCNN(nn.Module):
    """Two conv–BN–ReLU stages, global average pooling, a Dense feature layer."""

    num_classes: int
    channels: Sequence[int] = (32, 64)
    features_dim: int = 128
    bn_momentum: float = 0.9  # Flax's: the running statistics move by 1 − bn_momentum a step

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        for c in self.channels:
            x = nn.Conv(c, (3, 3), use_bias=False)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x)
            x = nn.relu(x)
        x = jnp.mean(x, axis=(1, 2))
        features = nn.relu(nn.Dense(self.features_dim)(x))
        return nn.Dense(self.num_classes, name="head")(features), features


class Standardized(nn.Module):
    """`model` on inputs standardized per channel, `(x − mean) / std`.

    The parameters are `model`'s own, at the same paths (a shared scope), so
    `head(params)` and checkpoints read the same with or without it.
    """

    model: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def setup(self):
        nn.share_scope(self, self.model)

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        return self.model((x - jnp.asarray(self.mean)) / jnp.asarray(self.std), train=train)


def get_model(
    name: str,
    num_classes: int,
    *,
    bn_momentum: float = 0.9,
    style: str = "flax",
    input_stats: tuple[Sequence[float], Sequence[float]] | None = None,
) -> nn.Module:
    """Model by name: `mlp` (256, 128), `mlp8` (8 × 128: a deep one for layer profiles),
    `small_cnn`, `resnet18`, `wrn28_2`, `wrn28_8`.

    Args:
      name: the model.
      num_classes: C, the head's outputs.
      bn_momentum: Flax BatchNorm momentum of the models with BatchNorm (all but `mlp`).
      style: the WideResNets' layer details, `"flax"` or `"usb"` (`models.resnet`).
      input_stats: `(mean, std)` per channel: the model standardizes its inputs with them
        (`Standardized`); None: inputs as given.
    """
    from interplay.models.resnet import STYLES, ResNet18, WideResNet

    if style not in STYLES:
        raise ValueError(f"model style must be one of {STYLES}, got {style!r}.")
    if not 0 <= bn_momentum < 1:
        raise ValueError(f"bn_momentum must be in [0, 1), got {bn_momentum}.")
    wrn = functools.partial(WideResNet, num_classes, 28, bn_momentum=bn_momentum, style=style)
    registry = {
        "mlp": lambda: MLP(num_classes),
        "mlp8": lambda: MLP(num_classes, widths=(128,) * 8),
        "small_cnn": lambda: SmallCNN(num_classes, bn_momentum=bn_momentum),
        "resnet18": lambda: ResNet18(num_classes, bn_momentum),
        "wrn28_2": lambda: wrn(widen_factor=2),
        "wrn28_8": lambda: wrn(widen_factor=8),
    }
    if name not in registry:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(registry)}.")
    if input_stats is None:
        return registry[name]()
    mean, std = (tuple(float(v) for v in stat) for stat in input_stats)
    if len(mean) != len(std) or min(std) <= 0:
        raise ValueError(
            f"input_stats: one mean and one positive std per channel, got {input_stats}."
        )
    return Standardized(registry[name](), mean, std)
