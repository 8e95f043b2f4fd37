"""CIFAR ResNet-18 (He et al., 2016) and WideResNet-28-k (Zagoruyko & Komodakis, 2016).

`bn_momentum` is Flax's: the running statistics move by `1 − bn_momentum` per
step (PyTorch's `momentum` 0.001 is Flax's 0.999, an average over ≈ 1 000 steps).
`WideResNet(style="usb")` is USB's `wrn.py` (the FixMatch/FreeMatch code): every
convolution with a bias, convolution kernels Kaiming-normal over fan-out
(variance 2/fan_out, untruncated), conv biases PyTorch's default
U(±1/√fan_in), the head Xavier-normal with a zero bias, BatchNorm ε 1e-3;
`style="flax"` is Flax's defaults (no conv bias, LeCun-normal kernels, ε 1e-5).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

#: BatchNorm ε by `WideResNet.style`.
EPSILON = {"flax": 1e-5, "usb": 1e-3}
STYLES = tuple(EPSILON)


def _batch_norm(train: bool, momentum: float, epsilon: float = 1e-5) -> nn.Module:
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon)


def _torch_bias(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch's default bias of a layer with `fan_in` inputs: U(−1/√fan_in, 1/√fan_in)."""
    bound = 1 / fan_in**0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


def _conv(style: str, x: jax.Array, features: int, kernel: int, strides: int = 1) -> nn.Conv:
    """A convolution reading `x`, with `style`'s bias and initializers."""
    if style == "flax":
        return nn.Conv(features, (kernel, kernel), strides, use_bias=False)
    return nn.Conv(
        features,
        (kernel, kernel),
        strides,
        kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
        bias_init=_torch_bias(x.shape[-1] * kernel * kernel),
    )


class BasicBlock(nn.Module):
    """Post-activation residual block of ResNet-18."""

    channels: int
    strides: int = 1
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = functools.partial(nn.Conv, use_bias=False)
        norm = functools.partial(_batch_norm, train, self.bn_momentum)
        y = conv(self.channels, (3, 3), self.strides)(x)
        y = nn.relu(norm()(y))
        y = norm()(conv(self.channels, (3, 3))(y))
        if x.shape != y.shape:
            x = norm()(conv(self.channels, (1, 1), self.strides)(x))
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """ResNet-18 with a 3×3 stem for 32×32 inputs; features are the pooled 512-d output."""

    num_classes: int
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        x = nn.Conv(64, (3, 3), use_bias=False)(x)
        x = nn.relu(_batch_norm(train, self.bn_momentum)(x))
        for i, channels in enumerate((64, 128, 256, 512)):
            for j in range(2):
                strides = 2 if i > 0 and j == 0 else 1
                x = BasicBlock(channels, strides, self.bn_momentum)(x, train)
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features


class WideBlock(nn.Module):
    """Pre-activation wide residual block; where the width or stride changes, the 1×1
    shortcut reads the activated input, as conv1 does (USB's `BasicBlock` too)."""

    channels: int
    strides: int = 1
    bn_momentum: float = 0.9
    style: str = "flax"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        norm = functools.partial(_batch_norm, train, self.bn_momentum, EPSILON[self.style])
        y = nn.leaky_relu(norm()(x), 0.1)
        shortcut = (
            x
            if x.shape[-1] == self.channels and self.strides == 1
            else _conv(self.style, y, self.channels, 1, self.strides)(y)
        )
        y = _conv(self.style, y, self.channels, 3, self.strides)(y)
        y = nn.leaky_relu(norm()(y), 0.1)
        return shortcut + _conv(self.style, y, self.channels, 3)(y)


class WideResNet(nn.Module):
    """WRN-depth-k as in FixMatch/FreeMatch (the papers' models); features `64k`-d."""

    num_classes: int
    depth: int = 28
    widen_factor: int = 2
    bn_momentum: float = 0.9
    style: str = "flax"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        if (self.depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6k + 4, got {self.depth}.")
        if self.style not in STYLES:
            raise ValueError(f"WideResNet style must be one of {STYLES}, got {self.style!r}.")
        blocks = (self.depth - 4) // 6
        x = _conv(self.style, x, 16, 3)(x)
        for i, width in enumerate((16, 32, 64)):
            for j in range(blocks):
                strides = 2 if i > 0 and j == 0 else 1
                block = WideBlock(width * self.widen_factor, strides, self.bn_momentum, self.style)
                x = block(x, train)
        x = nn.leaky_relu(_batch_norm(train, self.bn_momentum, EPSILON[self.style])(x), 0.1)
        features = jnp.mean(x, axis=(1, 2))
        head = (
            nn.Dense(self.num_classes, name="head")
            if self.style == "flax"
            else nn.Dense(
                self.num_classes,
                kernel_init=nn.initializers.variance_scaling(1.0, "fan_avg", "normal"),
                name="head",
            )
        )
        return head(features), features
