"""USB's RandAugment operations in JAX against Pillow, the library USB applies them with."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from interplay.trainers.classifier import randaugment as ra

# USB's calls (semilearn/datasets/augmentation/randaugment.py), one per operation
PIL_OPS = {
    "auto_contrast": lambda img, v: ImageOps.autocontrast(img),
    "brightness": lambda img, v: ImageEnhance.Brightness(img).enhance(v),
    "colour": lambda img, v: ImageEnhance.Color(img).enhance(v),
    "contrast": lambda img, v: ImageEnhance.Contrast(img).enhance(v),
    "equalize": lambda img, v: ImageOps.equalize(img),
    "identity": lambda img, v: img,
    "posterize": lambda img, v: ImageOps.posterize(img, max(1, int(v))),
    "rotate": lambda img, v: img.rotate(v),
    "sharpness": lambda img, v: ImageEnhance.Sharpness(img).enhance(v),
    "shear_x": lambda img, v: img.transform(img.size, Image.AFFINE, (1, v, 0, 0, 1, 0)),
    "shear_y": lambda img, v: img.transform(img.size, Image.AFFINE, (1, 0, 0, v, 1, 0)),
    "solarize": lambda img, v: ImageOps.solarize(img, v),
    "translate_x": lambda img, v: img.transform(
        img.size, Image.AFFINE, (1, 0, v * img.size[0], 0, 1, 0)
    ),
    "translate_y": lambda img, v: img.transform(
        img.size, Image.AFFINE, (1, 0, 0, 0, 1, v * img.size[1])
    ),
}
GEOMETRIC = {"rotate", "shear_x", "shear_y", "translate_x", "translate_y"}


def _images():
    """A natural-ish RGB image (smooth gradients, a bright square, noise) and a digit-sized L."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:32, :32]
    rgb = np.stack([4 * x + 20, 3 * y + 40, 2 * (x + y) + 10], -1) + rng.integers(
        0, 30, (32, 32, 3)
    )
    rgb[8:16, 10:20] = [230, 200, 90]
    gray = rng.integers(0, 17, (8, 8, 1)) * 15  # the digits' 17 levels
    return {"rgb": np.clip(rgb, 0, 255).astype(np.uint8), "gray": gray.astype(np.uint8)}


@pytest.mark.parametrize("name", sorted(ra.OPS))
def test_every_operation_matches_pillow(name):
    op, lo, hi = ra.OPS[name]
    jitted = jax.jit(op)
    for kind, image in _images().items():
        pil = Image.fromarray(image[..., 0] if kind == "gray" else image)
        for u in (0.0, 0.3, 0.77, 1.0):
            v = lo + (hi - lo) * u
            want = np.asarray(PIL_OPS[name](pil, v), np.float32).reshape(image.shape)
            got = np.asarray(jitted(jnp.asarray(image, jnp.float32), v))
            assert got.shape == image.shape
            differ = got != want
            if name in GEOMETRIC:  # nearest pixel: a centre on a pixel edge may round either way
                assert differ.mean() <= 0.02, (name, kind, v, differ.mean())
            else:  # float32 here, double in PIL: a level at most, at a few pixels
                assert np.abs(got - want).max() <= 1, (name, kind, v)
                assert differ.mean() <= 0.02, (name, kind, v, differ.mean())


def test_rand_augment_keeps_shape_dtype_range_and_depends_only_on_the_key():
    image = jnp.asarray(_images()["rgb"], jnp.float32) / 255
    augment = jax.jit(ra.rand_augment)
    a, b = augment(jax.random.key(0), image), augment(jax.random.key(0), image)
    np.testing.assert_array_equal(a, b)
    outs = [augment(jax.random.key(i), image) for i in range(8)]
    for out in outs:
        assert out.shape == image.shape and out.dtype == image.dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-3)  # uint8 levels
    assert len({np.asarray(o).tobytes() for o in outs}) == 8


def test_cutout_paints_usb_grey_square_of_at_most_half_the_width():
    image = jnp.zeros((32, 32, 3))
    for i in range(20):
        out = np.asarray(ra.cutout(jax.random.key(i), image))
        painted = np.all(out == ra.GREY, -1)
        if painted.any():
            rows, cols = np.nonzero(painted)
            assert rows.max() - rows.min() <= 17 and cols.max() - cols.min() <= 17
            assert painted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
