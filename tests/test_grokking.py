"""Grokking: the modular-arithmetic dataset, the transformer, the fused loop and resume."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from trainers import grokking, metrics
from trainers.configs.grokking import get_config
from trainers.data import modular
from trainers.state import TrainState, train_step


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.mark.parametrize("operation", sorted(modular.OPERATIONS))
def test_every_pair_exactly_once_with_correct_labels(data_dir, operation):
    p = 7
    splits = modular.load(modular.modular_config(p, operation, 0.3, split_seed=1), data_dir)
    tokens = np.concatenate([splits["train"]["tokens"], splits["test"]["tokens"]])
    labels = np.concatenate([splits["train"]["label"], splits["test"]["label"]])
    expected = {(a, b) for a in range(p) for b in range(1 if operation == "div" else 0, p)}
    got = [tuple(t[:2]) for t in tokens]
    assert len(got) == len(set(got)) and set(got) == expected
    assert (tokens[:, 2] == p).all()  # the "=" token
    assert len(splits["train"]["label"]) == round(0.3 * len(expected))
    a, b = tokens[:, 0], tokens[:, 1]
    check = {
        "add": (a + b) % p,
        "sub": (a - b) % p,
        "mul": (a * b) % p,
        "sq_sum": (a * a + b * b) % p,
        "div": None,
    }[operation]
    if operation == "div":
        np.testing.assert_array_equal((labels * b) % p, a)  # label · b ≡ a
    else:
        np.testing.assert_array_equal(labels, check)


def test_split_is_deterministic_and_seeded(data_dir):
    one = modular.load(modular.modular_config(11, "add", 0.5, 0), data_dir)
    again = modular.load(modular.modular_config(11, "add", 0.5, 0), data_dir + "/again")
    other = modular.load(modular.modular_config(11, "add", 0.5, 1), data_dir)
    key = lambda s: sorted(map(tuple, s["train"]["tokens"]))  # noqa: E731
    assert key(one) == key(again) and key(one) != key(other)


def test_bad_dataset_configs():
    with pytest.raises(ValueError, match="prime"):
        modular.modular_config(100)
    with pytest.raises(ValueError, match="operation"):
        modular.modular_config(7, "pow")
    with pytest.raises(ValueError, match="train_fraction"):
        modular.modular_config(7, "add", 1.5)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_transformer_shapes_and_head(layer_norm):
    config = get_config()
    config.layer_norm = layer_norm
    model = grokking.make_model(config)
    tokens = jnp.array([[1, 2, 113], [5, 7, 113]])
    params = model.init(jax.random.key(0), tokens)["params"]
    logits, features = model.apply({"params": params}, tokens)
    assert logits.shape == (2, 113) and features.shape == (2, 128)
    assert models.head(params).shape == (113, 128)
    assert ("ln_final" in params) == layer_norm
    assert params["query"]["kernel"].shape == (128, 4, 32)
    assert params["mlp_in"]["kernel"].shape == (128, 512)


def test_fused_scan_equals_per_step_loop():
    config = get_config("small")
    tokens = jnp.array([[a, b, 23] for a in range(23) for b in range(0, 23, 5)])
    labels = (tokens[:, 0] + tokens[:, 1]) % 23
    model, (tx, _) = grokking.make_model(config), grokking.make_optimizer(config)
    state = TrainState.create(model.init(jax.random.key(0), tokens[:1]), tx)
    fused, per_step = grokking.fused_steps(state, tokens, labels, model=model, num_steps=5)
    loss_fn = functools.partial(grokking.loss_fn, model=model)
    step = jax.jit(functools.partial(train_step, loss_fn=loss_fn))
    looped = state
    for i in range(5):
        looped, row = step(looped, (tokens, labels))
        for key, value in row.items():
            np.testing.assert_allclose(per_step[key][i], value, rtol=1e-5, err_msg=key)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), fused, looped)


def _small(data_dir, **overrides):
    config = get_config("small")
    config.update({"data_dir": data_dir, "num_steps": 300, "checkpoint_every": 100, **overrides})
    return config


def _evals(path):
    return metrics.evals(metrics.read(path / "metrics.jsonl"))


def test_tiny_run_fits_train_set_and_resumes_exactly(tmp_path, data_dir):
    summary = grokking.train_and_evaluate(_small(data_dir), tmp_path / "full")
    records = _evals(tmp_path / "full")
    assert records[-1]["eval_train/accuracy"] == 1.0 and summary["train_fit_at"] <= 300
    keys = {
        f"{s}/{k}"
        for s in ("eval_train", "eval")
        for k in ("loss", "accuracy", "mir", "hdr", "mi", "h_features", "h_heads")
    }
    train = {f"train/{k}" for k in ("loss", "grad_norm", "update_norm", "param_norm")}
    train |= {"train/learning_rate", "train/steps_per_sec"}
    assert set(records[-1]) == keys | train | {"step", "time"}
    assert (tmp_path / "full" / "config.json").exists()
    assert (tmp_path / "full" / "grokking.png").stat().st_size > 20_000
    assert (tmp_path / "full" / "summary.json").exists()
    # Stop at 200, then continue the same workdir to 300: same end as the uninterrupted run.
    grokking.train_and_evaluate(_small(data_dir, num_steps=200), tmp_path / "resumed")
    grokking.train_and_evaluate(_small(data_dir), tmp_path / "resumed")
    resumed = _evals(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == [r["step"] for r in records]
    for key in keys | train - {"train/steps_per_sec"}:
        np.testing.assert_allclose(resumed[-1][key], records[-1][key], rtol=1e-5, err_msg=key)


def test_bad_trainer_config(tmp_path, data_dir):
    with pytest.raises(ValueError, match="multiple of eval_every"):
        grokking.train_and_evaluate(_small(data_dir, num_steps=275), tmp_path)
    with pytest.raises(ValueError, match="num_heads must be positive"):
        grokking.train_and_evaluate(_small(data_dir, num_heads=0), tmp_path)


def test_layer_norm_features_are_what_the_head_reads():
    config = get_config("small")
    config.layer_norm = True
    model = grokking.make_model(config)
    tokens = jnp.array([[1, 2, 23], [5, 7, 23], [3, 3, 23]])
    params = model.init(jax.random.key(0), tokens)["params"]
    logits, features = model.apply({"params": params}, tokens)
    np.testing.assert_allclose(logits, features @ params["head"]["kernel"], rtol=1e-5, atol=1e-6)
