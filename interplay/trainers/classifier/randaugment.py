"""USB's RandAugment on the device: its 14 operations with PIL's semantics, in JAX.

USB (`semilearn/datasets/augmentation/randaugment.py`) draws `NUM_OPS` = 3
operations with replacement from `OPS`, each with a magnitude `v` uniform in
its range, applies them in the drawn order to a uint8 PIL image, then Cutout.
Neither dm-pix nor augmax has AutoContrast, Equalize, Posterize or PIL's
Sharpness, and their affine ops resample about the centre where PIL's are
about the top-left corner, so every operation is written here after PIL's C
code, on one `(H, W, C)` image of levels in [0, 255] (floats holding uint8
values), and tested against Pillow on fixed images:

| op | PIL | v |
|---|---|---|
| auto_contrast | `ImageOps.autocontrast`: each channel's [min, max] onto [0, 255] | – |
| brightness | `ImageEnhance.Brightness`: blend with black | [0.05, 0.95] |
| colour | `ImageEnhance.Color`: blend with the image's luma (RGB only) | [0.05, 0.95] |
| contrast | `ImageEnhance.Contrast`: blend with the rounded mean luma | [0.05, 0.95] |
| equalize | `ImageOps.equalize`: each channel's histogram equalized | – |
| identity | – | – |
| posterize | `ImageOps.posterize`: keep the top `int(v)` bits | [4, 8] |
| rotate | `Image.rotate`: `v` degrees anticlockwise about the centre | [−30, 30] |
| sharpness | `ImageEnhance.Sharpness`: blend with PIL's SMOOTH filter | [0.05, 0.95] |
| shear_x, shear_y | `Image.transform(AFFINE)`: about the top-left corner | [−0.3, 0.3] |
| solarize | `ImageOps.solarize`: levels ≥ v inverted | [0, 256] |
| translate_x, translate_y | `Image.transform(AFFINE)`: by `v`·size | [−0.3, 0.3] |

A blend is `trunc(degenerate + v·(image − degenerate))` clipped to [0, 255]
(PIL's `Image.blend`); geometric ops sample the nearest input pixel of each
output pixel's centre and fill with 0 (PIL's NEAREST, `fillcolor` unset).
Cutout then paints a square of side `v·W`, `v ~ U(0, 0.5)`, with USB's grey
(125, 123, 114), its corner drawn as USB draws it (`np.random.uniform(w)`
samples in [1, w)). On single-channel images (digits) `colour` is the
identity (PIL's Color leaves an L image unchanged) and the grey is 125.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NUM_OPS = 3
GREY = (125.0, 123.0, 114.0)


def _blend(degenerate, image, factor):
    """PIL's `Image.blend(degenerate, image, factor)` on uint8 levels (truncated, clipped)."""
    return jnp.clip(jnp.trunc(degenerate + factor * (image - degenerate)), 0, 255)


def _luma(image):
    """PIL's `convert("L")`: (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16, as `(H, W, 1)`."""
    if image.shape[-1] == 1:
        return image
    weights = jnp.array([19595.0, 38470.0, 7471.0])
    return jnp.floor((image @ weights + 32768.0) / 65536.0)[..., None]


def _lut(image, table):
    """Each channel's levels through its `(C, 256)` lookup table."""
    levels = image.astype(jnp.int32)
    return jnp.take_along_axis(table.T, levels.reshape(-1, image.shape[-1]), 0).reshape(image.shape)


def auto_contrast(image, v):
    del v
    lo, hi = image.min((0, 1)), image.max((0, 1))
    # ⌊(x − lo)·255 / (hi − lo)⌋ exactly: a true quotient is an integer or at least 1/255 from
    # one, and XLA's vectorized division can land a hair under an integer, hence the 1e-3.
    # (PIL's double `x·scale + offset` itself sometimes lands under one and truncates lower.)
    out = jnp.floor((image - lo) * 255 / jnp.where(hi > lo, hi - lo, 1.0) + 1e-3)
    return jnp.where(hi > lo, out, image)


def brightness(image, v):
    return _blend(jnp.zeros_like(image), image, v)


def colour(image, v):
    return _blend(jnp.broadcast_to(_luma(image), image.shape), image, v)


def contrast(image, v):
    mean = jnp.floor(jnp.mean(_luma(image)) + 0.5)
    return _blend(jnp.full_like(image, mean), image, v)


def equalize(image, v):
    """PIL's `equalize`: step = (n − count of the last used level) // 255 per channel;
    level i → (step // 2 + pixels below i) // step; unchanged where step is 0."""
    del v
    counts = jax.vmap(lambda c: jnp.bincount(c, length=256), in_axes=1)(
        image.reshape(-1, image.shape[-1]).astype(jnp.int32)
    )  # (C, 256)
    last = 255 - jnp.argmax(counts[:, ::-1] > 0, axis=1)
    n = counts.sum(1)
    step = (n - jnp.take_along_axis(counts, last[:, None], 1)[:, 0]) // 255
    below = jnp.cumsum(counts, 1) - counts
    safe = jnp.maximum(step, 1)[:, None]
    table = jnp.where(step[:, None] > 0, (safe // 2 + below) // safe, jnp.arange(256))
    return _lut(image, jnp.clip(table, 0, 255).astype(image.dtype))


def identity(image, v):
    del v
    return image


def posterize(image, v):
    size = 2.0 ** (8 - jnp.maximum(1, jnp.floor(v)))
    return jnp.floor(image / size) * size


def _affine(image, matrix):
    """PIL's `transform(AFFINE, (a, b, c, d, e, f), NEAREST)`: output pixel (x, y) takes the
    input pixel holding (a·x' + b·y' + c, d·x' + e·y' + f), x' = x + ½, y' = y + ½; 0 outside."""
    h, w = image.shape[:2]
    a, b, c, d, e, f = matrix
    y, x = jnp.meshgrid(jnp.arange(h) + 0.5, jnp.arange(w) + 0.5, indexing="ij")
    xs, ys = a * x + b * y + c, d * x + e * y + f
    cols, rows = jnp.floor(xs).astype(jnp.int32), jnp.floor(ys).astype(jnp.int32)
    inside = (xs >= 0) & (ys >= 0) & (cols < w) & (rows < h)
    picked = image[jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1)]
    return jnp.where(inside[..., None], picked, 0.0)


def _rotation(shape, v):
    """PIL's `rotate(v)` matrix: `v` degrees anticlockwise about (W/2, H/2)."""
    h, w = shape[:2]
    angle = -jnp.deg2rad(v)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    cx, cy = w / 2, h / 2
    return (cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy)


def sharpness(image, v):
    """Blend with PIL's SMOOTH (3 × 3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, rounded; the border
    pixels kept)."""
    kernel = jnp.array([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13
    padded = jnp.pad(image, ((1, 1), (1, 1), (0, 0)))
    h, w = image.shape[:2]
    smooth = sum(kernel[i, j] * padded[i : i + h, j : j + w] for i in range(3) for j in range(3))
    smooth = jnp.clip(jnp.floor(smooth + 0.5), 0, 255)
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    border = (rows % (h - 1) == 0) | (cols % (w - 1) == 0)
    degenerate = jnp.where(border[..., None], image, smooth)
    return _blend(degenerate, image, v)


def solarize(image, v):
    return jnp.where(image >= v, 255 - image, image)


#: The geometric operations as PIL affine matrices `(shape, v) → (a, b, c, d, e, f)`.
_MATRICES = {
    "rotate": _rotation,
    "shear_x": lambda shape, v: (1.0, v, 0.0, 0.0, 1.0, 0.0),
    "shear_y": lambda shape, v: (1.0, 0.0, 0.0, v, 1.0, 0.0),
    "translate_x": lambda shape, v: (1.0, 0.0, v * shape[1], 0.0, 1.0, 0.0),
    "translate_y": lambda shape, v: (1.0, 0.0, 0.0, 0.0, 1.0, v * shape[0]),
}


def _geometric(name):
    return lambda image, v: _affine(image, _MATRICES[name](image.shape, v))


rotate, shear_x, shear_y = _geometric("rotate"), _geometric("shear_x"), _geometric("shear_y")
translate_x, translate_y = _geometric("translate_x"), _geometric("translate_y")


#: USB's `augment_list()`: name → (operation, lowest magnitude, highest magnitude).
OPS = {
    "auto_contrast": (auto_contrast, 0.0, 1.0),
    "brightness": (brightness, 0.05, 0.95),
    "colour": (colour, 0.05, 0.95),
    "contrast": (contrast, 0.05, 0.95),
    "equalize": (equalize, 0.0, 1.0),
    "identity": (identity, 0.0, 1.0),
    "posterize": (posterize, 4.0, 8.0),
    "rotate": (rotate, -30.0, 30.0),
    "sharpness": (sharpness, 0.05, 0.95),
    "shear_x": (shear_x, -0.3, 0.3),
    "shear_y": (shear_y, -0.3, 0.3),
    "solarize": (solarize, 0.0, 256.0),
    "translate_x": (translate_x, -0.3, 0.3),
    "translate_y": (translate_y, -0.3, 0.3),
}


def cutout(key: jax.Array, image: jax.Array) -> jax.Array:
    """USB's `Cutout(img, U(0, 0.5))`: a square of side s = v·W, corner
    `(int(max(0, x₀ − s/2)), …)` with x₀, y₀ in [1, W) and [1, H), drawn inclusive of its far
    edge (PIL's `rectangle`), in USB's grey."""
    h, w, channels = image.shape
    v_key, centre_key = jax.random.split(key)
    side = jax.random.uniform(v_key, maxval=0.5) * w
    centre = 1 + jax.random.uniform(centre_key, (2,)) * jnp.array([w - 1.0, h - 1.0])
    x0, y0 = jnp.floor(jnp.maximum(0, centre - side / 2))
    x1, y1 = jnp.minimum(w, x0 + side), jnp.minimum(h, y0 + side)
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    inside = (cols >= x0) & (cols <= x1) & (rows >= y0) & (rows <= y1) & (side > 0)
    grey = jnp.array(GREY[:channels] if channels == 3 else GREY[:1])
    return jnp.where(inside[..., None], grey, image)


def _draw(image, key):
    """One drawn operation: a pixel one through a switch, a geometric one as its matrix through
    a switch and one resampling (a batched switch computes every branch: one gather, not five)."""
    names = list(OPS)
    which_key, u_key = jax.random.split(key)
    which = jax.random.randint(which_key, (), 0, len(names))
    lo, hi = (jnp.asarray([op[i] for op in OPS.values()]) for i in (1, 2))
    v = lo[which] + (hi[which] - lo[which]) * jax.random.uniform(u_key)
    pixel = [OPS[n][0] if n not in _MATRICES else identity for n in names]
    unit = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    matrices = [
        (lambda v, n=n: _MATRICES[n](image.shape, v)) if n in _MATRICES else (lambda v: unit)
        for n in names
    ]
    moved = _affine(image, jax.lax.switch(which, matrices, v))
    geometric = jnp.isin(which, jnp.array([names.index(n) for n in _MATRICES]))
    return jnp.where(geometric, moved, jax.lax.switch(which, pixel, image, v)), None


def rand_augment(key: jax.Array, image: jax.Array) -> jax.Array:
    """`NUM_OPS` operations drawn from `OPS` with uniform magnitudes, in order, then Cutout, on
    one `(H, W, C)` image in [0, 1] (quantized to uint8 levels first, as USB's PIL images are)."""
    draws_key, cut_key = jax.random.split(key)
    out, _ = jax.lax.scan(_draw, jnp.round(image * 255), jax.random.split(draws_key, NUM_OPS))
    return (cutout(cut_key, out) / 255).astype(image.dtype)
