"""Every classifier returns (logits, features) and names its head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from interplay import models


@pytest.mark.parametrize(
    "name,shape,features_dim,num_params",
    [
        ("mlp", (8, 8, 1), 128, None),
        ("mlp8", (8, 8, 1), 128, None),
        ("small_cnn", (8, 8, 1), 128, None),
        ("resnet18", (32, 32, 3), 512, 11.17e6),
        ("wrn28_2", (32, 32, 3), 128, 1.47e6),  # Zagoruyko & Komodakis: 1.5M
        ("wrn28_8", (32, 32, 3), 512, 23.35e6),  # 23.4M
    ],
)
def test_shapes_head_and_parameter_counts(name, shape, features_dim, num_params):
    model = models.get_model(name, 10)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, *shape))))
    logits, features = jax.eval_shape(
        lambda v: model.apply(v, jnp.zeros((4, *shape)), train=False), variables
    )
    assert logits.shape == (4, 10) and features.shape == (4, features_dim)
    assert jax.eval_shape(models.head, variables["params"]).shape == (10, features_dim)
    if num_params:
        count = sum(x.size for x in jax.tree.leaves(variables["params"]))
        assert abs(count - num_params) / num_params < 0.01
        assert "batch_stats" in variables


def test_head_is_the_kernel_the_logits_use():
    model = models.SmallCNN(num_classes=3)
    x = jax.random.normal(jax.random.key(0), (5, 8, 8, 1))
    variables = model.init(jax.random.key(1), x)
    logits, features = model.apply(variables, x)
    bias = variables["params"]["head"]["bias"]
    np.testing.assert_allclose(
        logits, features @ models.head(variables["params"]).T + bias, rtol=1e-5, atol=1e-5
    )


def test_train_mode_updates_batch_stats():
    model = models.SmallCNN(num_classes=3)
    x = jax.random.normal(jax.random.key(0), (5, 8, 8, 1))
    variables = model.init(jax.random.key(1), x)
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    changed = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], updates["batch_stats"]
    )
    assert any(jax.tree.leaves(changed))


def test_unknown_model_is_an_error():
    with pytest.raises(ValueError, match="unknown model"):
        models.get_model("vit", 10)


def test_bn_momentum_sets_how_far_the_running_mean_moves():
    x = jax.random.normal(jax.random.key(0), (6, 8, 8, 1)) + 3.0
    moved = {}
    for momentum in (0.9, 0.999):
        model = models.get_model("small_cnn", 3, bn_momentum=momentum)
        variables = model.init(jax.random.key(1), x)
        _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
        moved[momentum] = updates["batch_stats"]["BatchNorm_0"]["mean"]  # from 0: (1 − m)·mean
    np.testing.assert_allclose(moved[0.999], moved[0.9] * (0.001 / 0.1), rtol=1e-4)


def test_usb_wide_resnet_biases_and_initial_scales():
    # WRN-10-2 has every kind of layer of WRN-28-2 (one block per stage) at a tenth of the cost
    x = jnp.zeros((1, 8, 8, 3))  # the parameters' shapes do not depend on the image size
    flax_style = jax.eval_shape(models.WideResNet(10, depth=10).init, jax.random.key(0), x)
    usb = jax.jit(models.WideResNet(10, depth=10, style="usb").init)(jax.random.key(0), x)
    convs = {
        path: leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(usb["params"])
        if "Conv" in jax.tree_util.keystr(path) and leaf.ndim == 4
    }
    # USB's tree is Flax's plus one bias per convolution (every conv has one in wrn.py)
    count = lambda v: sum(x.size for x in jax.tree.leaves(v["params"]))  # noqa: E731
    assert count(usb) - count(flax_style) == sum(k.shape[-1] for k in convs.values())
    for kernel in convs.values():  # Kaiming normal over fan-out: variance 2 / fan_out
        if kernel.size >= 20_000:
            fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[3]
            np.testing.assert_allclose(np.std(kernel), np.sqrt(2 / fan_out), rtol=0.03)
            assert np.abs(kernel).max() > 2.5 * np.sqrt(2 / fan_out)  # not truncated at 2σ
    bias = usb["params"]["WideBlock_2"]["Conv_2"]["bias"]  # fan_in 3·3·128: U(±1/√fan_in)
    bound = 1 / np.sqrt(9 * 128)
    assert np.abs(bias).max() <= bound and np.std(bias) > 0.4 * bound
    head = usb["params"]["head"]  # Xavier normal, zero bias
    np.testing.assert_allclose(np.std(head["kernel"]), np.sqrt(2 / (128 + 10)), rtol=0.1)
    assert not np.any(head["bias"])
    with pytest.raises(ValueError, match="style"):
        models.get_model("wrn28_2", 10, style="torch")


@pytest.mark.parametrize("name", ["small_cnn", "wrn28_2"])
def test_standardized_model_is_the_model_on_standardized_inputs_with_the_same_params(name):
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    bare = models.get_model(name, 4)
    model = models.get_model(name, 4, input_stats=(mean, std))
    x = jax.random.uniform(jax.random.key(0), (3, 32, 32, 3))
    variables = model.init(jax.random.key(1), x)
    assert jax.tree.structure(variables) == jax.tree.structure(bare.init(jax.random.key(1), x))
    standardized = (np.asarray(x, np.float64) - mean) / std
    for train in (False, True):
        got = model.apply(variables, x, train=train, mutable=["batch_stats"])
        want = bare.apply(
            variables, jnp.float32(standardized), train=train, mutable=["batch_stats"]
        )
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), got, want)


def test_bad_input_stats_are_an_error():
    with pytest.raises(ValueError, match="one mean and one positive std per channel"):
        models.get_model("mlp", 10, input_stats=((0.5,), (0.0,)))
    with pytest.raises(ValueError, match="one mean and one positive std per channel"):
        models.get_model("mlp", 10, input_stats=((0.5, 0.5), (0.2,)))
