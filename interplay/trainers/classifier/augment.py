"""Weak and strong views of image batches on the device, after USB's FixMatch/FreeMatch.

Both are pure functions of `(key, images)`; images are `(n, H, W, C)` floats in
[0, 1] and come back with the same shape, dtype and range. A trainer derives the
key from `(seed, step)`, so a step's views are reproducible after a resume.

* `weak`: reflect-pad by `pad = H/8` pixels and crop back at a random offset
  (USB's crop ratio 0.875: 4 px on 32 × 32 CIFAR, 1 px on 8 × 8 digits), then a
  random horizontal flip where `flip` (CIFAR; not digits, whose mirror images
  are not digits).
* `strong`: the weak view, then RandAugment, `ops="usb"`: USB's 14 operations
  with PIL's semantics, in the drawn order, then USB's Cutout
  (`classifier.randaugment`); `ops="dm_pix"` (this project's former view):
  `NUM_OPS` = 3 operations drawn uniformly with replacement from `OPS`, each
  with a magnitude uniform in its range, then Cutout: a square of side
  `U(0, 0.5)·H` at a uniform centre, filled with 0.5.

`OPS` of `ops="dm_pix"` (dm-pix function, range) and what differs from USB's
PIL list:

| op | dm-pix | magnitude |
|---|---|---|
| identity | – | – |
| brightness | `adjust_brightness` | δ ∈ [−0.3, 0.3], additive (PIL's is a factor) |
| contrast | `adjust_contrast` | factor ∈ [0.05, 0.95] |
| colour | `adjust_saturation` | factor ∈ [0.05, 0.95]; RGB only, not on digits |
| rotate | `rotate` | ±30° |
| shear_x, shear_y | `affine_transform` | ±0.3, about the centre |
| translate_x, translate_y | `affine_transform` | ±0.3 · size |
| solarize | `solarize` | threshold ∈ [0, 1] |

USB's autocontrast, equalize, posterize and sharpness have no dm-pix
counterpart and are left out; Cutout has none in dm-pix or augmax and is the
one op written here. Geometric ops fill with 0 outside the image, and every
op's output is clipped to [0, 1].
"""

from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp

from interplay.trainers.classifier import randaugment

#: `strong`'s RandAugment variants.
VARIANTS = ("usb", "dm_pix")
NUM_OPS = 3
CUTOUT_MAX = 0.5
CUTOUT_FILL = 0.5


def _affine(image, matrix, shift):
    """`image` resampled at `matrix @ (o − centre) + centre + shift` (pull), rows and columns."""
    m = jnp.eye(3).at[:2, :2].set(matrix)
    centre = (jnp.asarray(image.shape, jnp.float32) - 1) / 2
    offset = centre - m @ centre + jnp.concatenate([shift, jnp.zeros(1)])
    return pix.affine_transform(image, m, offset=offset, mode="constant", cval=0.0)


def _span(lo, hi, u):
    return lo + (hi - lo) * u


def _photometric(colour: bool):
    """RandAugment's pixel operations as `(image, u) → image`, `u ~ U(0, 1)` scaled to the range."""
    ops = {
        "brightness": lambda x, u: pix.adjust_brightness(x, _span(-0.3, 0.3, u)),
        "contrast": lambda x, u: pix.adjust_contrast(x, _span(0.05, 0.95, u)),
        "solarize": lambda x, u: pix.solarize(x, u),
    }
    if colour:
        ops["colour"] = lambda x, u: pix.adjust_saturation(x, _span(0.05, 0.95, u))
    return ops


def _geometric(size: int):
    """RandAugment's geometric operations as `u → (2 × 2 pull matrix, shift)` in (row, column)."""

    def rotate(u):
        a = jnp.deg2rad(_span(-30.0, 30.0, u))
        c, s = jnp.cos(a), jnp.sin(a)
        return jnp.array([[c, s], [-s, c]]), jnp.zeros(2)

    def shear(u, axis):
        m = jnp.eye(2).at[axis, 1 - axis].set(_span(-0.3, 0.3, u))
        return m, jnp.zeros(2)

    def translate(u, axis):
        return jnp.eye(2), jnp.zeros(2).at[axis].set(_span(-0.3, 0.3, u) * size)

    return {
        "rotate": rotate,
        "shear_x": lambda u: shear(u, 1),
        "shear_y": lambda u: shear(u, 0),
        "translate_x": lambda u: translate(u, 1),
        "translate_y": lambda u: translate(u, 0),
    }


#: RandAugment's operations on RGB images ("colour" is left out on grayscale).
OPS = ("identity", *_photometric(colour=True), *_geometric(32))


def _weak_one(key, image, flip: bool):
    h, w = image.shape[:2]
    pad = max(1, h // 8)
    crop_key, flip_key = jax.random.split(key)
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = pix.random_crop(crop_key, padded, image.shape)
    return pix.random_flip_left_right(flip_key, out) if flip else out


def _cutout(key, image):
    h, w = image.shape[:2]
    side_key, centre_key = jax.random.split(key)
    half = jax.random.uniform(side_key, maxval=CUTOUT_MAX) * h / 2
    cy, cx = jax.random.uniform(centre_key, (2,)) * jnp.array([h, w])
    rows, cols = jnp.arange(h)[:, None, None], jnp.arange(w)[None, :, None]
    inside = (jnp.abs(rows + 0.5 - cy) < half) & (jnp.abs(cols + 0.5 - cx) < half)
    return jnp.where(inside, jnp.asarray(CUTOUT_FILL, image.dtype), image)


def _strong_one(key, image, flip: bool, ops: str):
    weak_key, ops_key, cut_key = jax.random.split(key, 3)
    image = _weak_one(weak_key, image, flip)
    if ops == "usb":
        return randaugment.rand_augment(ops_key, image)
    pixel = list(_photometric(colour=image.shape[-1] == 3).values())
    geometric = list(_geometric(image.shape[0]).values())
    identity = (jnp.eye(2), jnp.zeros(2))
    matrix, shift = identity
    for k in jax.random.split(ops_key, NUM_OPS):
        which_key, u_key = jax.random.split(k)
        which = jax.random.randint(which_key, (), 0, 1 + len(pixel) + len(geometric))
        u = jax.random.uniform(u_key)
        image = jax.lax.switch(
            jnp.where((1 <= which) & (which <= len(pixel)), which - 1, len(pixel)),
            [*pixel, lambda x, u: x],
            image,
            u,
        )
        image = jnp.clip(image, 0.0, 1.0).astype(image.dtype)
        m, t = jax.lax.switch(
            jnp.clip(which - len(pixel), 0, len(geometric)),
            [lambda u: identity, *geometric],
            u,
        )
        matrix, shift = matrix @ m, matrix @ t + shift  # pull maps compose right to left
    image = jnp.clip(_affine(image, matrix, shift), 0.0, 1.0).astype(image.dtype)
    return _cutout(cut_key, image)


def weak(key: jax.Array, images: jax.Array, *, flip: bool) -> jax.Array:
    """Random translation by up to `H/8` pixels (reflect padding), and a random h-flip if `flip`."""
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, x: _weak_one(k, x, flip))(keys, images)


def strong(key: jax.Array, images: jax.Array, *, flip: bool, ops: str = "usb") -> jax.Array:
    """The weak view, then RandAugment (`ops`: `"usb"` or `"dm_pix"`) and Cutout (module
    docstring)."""
    if ops not in VARIANTS:
        raise ValueError(f"RandAugment ops must be one of {VARIANTS}, got {ops!r}.")
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, x: _strong_one(k, x, flip, ops))(keys, images)
