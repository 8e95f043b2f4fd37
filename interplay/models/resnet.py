"""CIFAR ResNet-18 (He et al., 2016) and WideResNet-28-k (Zagoruyko & Komodakis, 2016)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


def _batch_norm(train: bool) -> nn.Module:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


class BasicBlock(nn.Module):
    """Post-activation residual block of ResNet-18."""

    channels: int
    strides: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = functools.partial(nn.Conv, use_bias=False)
        y = conv(self.channels, (3, 3), self.strides)(x)
        y = nn.relu(_batch_norm(train)(y))
        y = _batch_norm(train)(conv(self.channels, (3, 3))(y))
        if x.shape != y.shape:
            x = _batch_norm(train)(conv(self.channels, (1, 1), self.strides)(x))
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """ResNet-18 with a 3×3 stem for 32×32 inputs; features are the pooled 512-d output."""

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        x = nn.Conv(64, (3, 3), use_bias=False)(x)
        x = nn.relu(_batch_norm(train)(x))
        for i, channels in enumerate((64, 128, 256, 512)):
            for j in range(2):
                x = BasicBlock(channels, strides=2 if i > 0 and j == 0 else 1)(x, train)
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features


class WideBlock(nn.Module):
    """Pre-activation wide residual block."""

    channels: int
    strides: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = functools.partial(nn.Conv, use_bias=False)
        y = nn.leaky_relu(_batch_norm(train)(x), 0.1)
        shortcut = (
            x
            if x.shape[-1] == self.channels and self.strides == 1
            else conv(self.channels, (1, 1), self.strides)(y)
        )
        y = conv(self.channels, (3, 3), self.strides)(y)
        y = nn.leaky_relu(_batch_norm(train)(y), 0.1)
        return shortcut + conv(self.channels, (3, 3))(y)


class WideResNet(nn.Module):
    """WRN-depth-k as in FixMatch/FreeMatch (the papers' models); features `64k`-d."""

    num_classes: int
    depth: int = 28
    widen_factor: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        if (self.depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6k + 4, got {self.depth}.")
        blocks = (self.depth - 4) // 6
        x = nn.Conv(16, (3, 3), use_bias=False)(x)
        for i, width in enumerate((16, 32, 64)):
            for j in range(blocks):
                x = WideBlock(width * self.widen_factor, 2 if i > 0 and j == 0 else 1)(x, train)
        x = nn.leaky_relu(_batch_norm(train)(x), 0.1)
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features
