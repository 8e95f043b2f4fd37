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
