"""The shared train state: the EMA of the weights, the weight-decay mask."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from interplay.trainers.classifier import parts
from interplay.trainers.configs.supervised import get_config
from interplay.trainers.core.state import TrainState


def _variables():
    rng = np.random.default_rng(0)
    params = {
        "dense": {"kernel": rng.normal(size=(3, 2)), "bias": rng.normal(size=2)},
        "norm": {"scale": rng.normal(size=2)},
    }
    return {"params": jax.tree.map(jnp.float32, params), "batch_stats": {"mean": jnp.ones(2)}}


def test_ema_follows_its_recursion_from_the_initial_weights():
    m, lr, steps = 0.9, 0.1, 5
    variables = _variables()
    state = TrainState.create(variables, optax.sgd(lr), ema_momentum=m)
    grads = jax.tree.map(jnp.ones_like, variables["params"])
    params = jax.tree.map(lambda x: np.asarray(x, np.float64), variables["params"])
    ema = params
    for _ in range(steps):
        state, _ = state.apply_gradients(grads, {"mean": state.batch_stats["mean"] + 1})
        params = jax.tree.map(lambda p: p - lr, params)  # SGD on a gradient of ones
        ema = jax.tree.map(lambda e, p: m * e + (1 - m) * p, ema, params)
    for got, want in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(ema), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(state.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # evaluated: the EMA weights with the live batch statistics (as USB's EMA hook)
    assert state.eval_variables["params"] is state.ema_params
    np.testing.assert_array_equal(state.eval_variables["batch_stats"]["mean"], 1.0 + steps)


def test_no_ema_evaluates_the_trained_weights():
    state = TrainState.create(_variables(), optax.sgd(0.1))
    assert state.ema_params is None and state.eval_variables["params"] is state.params
    with pytest.raises(ValueError, match="ema_momentum"):
        TrainState.create(_variables(), optax.sgd(0.1), ema_momentum=1.0)


@pytest.mark.parametrize("every", [True, False])
def test_weight_decay_reaches_kernels_and_spares_1d_parameters_unless_asked(every):
    config = get_config("digits")
    config.update(decay_every_param=every, weight_decay=0.01, momentum=0.9)
    lr = 0.1
    tx = parts.make_optimizer(config, optax.constant_schedule(lr))
    params = _variables()["params"]
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    # first Nesterov step on the decay term alone: −lr·(1 + momentum)·wd·p
    factor = -lr * (1 + 0.9) * 0.01
    np.testing.assert_allclose(
        updates["dense"]["kernel"], factor * params["dense"]["kernel"], rtol=1e-6
    )
    for layer, name in (("dense", "bias"), ("norm", "scale")):
        want = factor * params[layer][name] if every else np.zeros(2)
        np.testing.assert_allclose(updates[layer][name], want, rtol=1e-6)
