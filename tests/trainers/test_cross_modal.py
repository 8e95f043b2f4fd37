"""The few-shot cross-modal trainer and the temperature study's pure parts."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from interplay.trainers import cross_modal
from interplay.trainers.configs import cross_modal as cross_modal_config
from interplay.trainers.core import logs
from interplay.trainers.studies import temperature


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """Three classes of 8-d features around random centres; embeddings near the centres."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    arrays = {}
    for split, n in (("train", 60), ("test", 30)):
        labels = np.arange(n) % 3
        arrays[f"{split}_features"] = centres[labels] + 0.5 * rng.normal(size=(n, 8))
        arrays[f"{split}_labels"] = labels
    arrays["class_embeddings"] = centres[:, :6] + 0.1 * rng.normal(size=(3, 6))
    path = tmp_path_factory.mktemp("npz") / "pairs.npz"
    np.savez(path, **arrays)
    return path


def _config(npz, **overrides):
    config = cross_modal_config.get_config("digits")
    config.update(features=str(npz), shots=4, num_steps=100, eval_every=50, log_every=10)
    config.update(checkpoint_every=50, **overrides)
    return config


def test_few_shot_indices_are_balanced_and_seeded():
    labels = np.repeat(np.arange(4), [5, 9, 7, 6])
    a = cross_modal.few_shot_indices(labels, 3, seed=0)
    assert np.bincount(labels[a]).tolist() == [3, 3, 3, 3] and len(set(a)) == 12
    assert (a == cross_modal.few_shot_indices(labels, 3, seed=0)).all()
    assert (a != cross_modal.few_shot_indices(labels, 3, seed=1)).any()


def test_trains_resumes_exactly_and_cma_changes_the_run(npz, tmp_path):
    straight = cross_modal.train_and_evaluate(_config(npz), tmp_path / "straight")
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "100")  # as if killed after step 50
    resumed = cross_modal.train_and_evaluate(_config(npz), tmp_path / "resumed")
    for key in straight:
        if key.startswith("eval/"):
            assert resumed[key] == pytest.approx(straight[key], rel=1e-6), key
    rows = logs.read(tmp_path / "straight" / "metrics.jsonl")
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert losses[-1] < losses[0] and straight["eval/accuracy"] > 0.6
    for key in ("accuracy", "loss", "cma", "mir", "hdr", "mi", "h_features", "h_heads"):
        assert np.isfinite(straight[f"eval/{key}"]), key
    with_cma = cross_modal.train_and_evaluate(_config(npz, cma_weight=0.5), tmp_path / "cma")
    assert with_cma["eval/cma"] != pytest.approx(straight["eval/cma"], rel=1e-4)
    assert (tmp_path / "cma" / "dynamics.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"shots": 21}, "config.shots=21: the smallest class has 20"),
        ({"cma_weight": 1.5}, "config.cma_weight must be in"),
        ({"logit_scale": 0.0}, "config.logit_scale must be positive"),
        ({"prompt": "cocoop"}, "config.prompt must be one of"),
        ({"num_context_tokens": 0}, "config.num_context_tokens must be positive"),
        ({"warmup_epochs": -1}, "config.warmup_epochs must be non-negative"),
        ({"weight_decay": -1e-4}, "config.weight_decay must be non-negative"),
        ({"num_steps": 0}, "config.num_steps must be positive or None"),
    ],
)
def test_config_errors(npz, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        cross_modal.train_and_evaluate(_config(npz, **overrides), tmp_path)


def test_npz_without_an_array_is_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", train_features=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="lacks"):
        cross_modal.load(_config(tmp_path / "bad.npz"))


def test_spearman_and_report():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=15), rng.normal(size=15)
    assert temperature.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b)[0])
    keys = [k for _, k in temperature.COLUMNS]
    up = {"eval/h_features", "eval/class_entropy"}  # rise with τ; the rest fall
    results = {
        tau: {k: list(rng.normal(size=3) + tau * (1 if k in up else -1)) for k in keys}
        for tau in (0.1, 1.0, 10.0)
    }
    rho = temperature.correlations(results)
    assert rho["eval/class_entropy"] > 0.5 and rho["eval/silhouette"] < -0.5
    text = temperature.report(results)
    assert "| 0.1 |" in text and "Spearman ρ with feature entropy (9 runs)" in text


def test_batches_are_epochs_of_permutations_with_the_remainder_dropped():
    key, n, b = jax.random.key(3), 11, 4  # two batches an epoch, three examples dropped
    rows = [np.asarray(cross_modal.batch_rows(key, s, n, b)) for s in range(6)]
    for epoch in range(3):
        seen = np.concatenate(rows[2 * epoch : 2 * epoch + 2])
        assert len(set(seen)) == 8 and seen.max() < n  # no repeat within an epoch
    assert not np.array_equal(rows[0], rows[2])  # a fresh permutation each epoch


def test_schedule_is_a_constant_warmup_epoch_then_the_cosine(npz):
    config = _config(npz, num_steps=100, warmup_epochs=1, warmup_lr=1e-5, learning_rate=0.002)
    schedule = cross_modal.schedule_fn(config, steps_per_epoch=5)
    np.testing.assert_allclose([schedule(s) for s in range(5)], 1e-5)
    for s in (5, 50, 99):
        want = 0.001 * (1 + np.cos(np.pi * s / 100))
        np.testing.assert_allclose(schedule(s), want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("shots,epochs", [(1, 50), (2, 100), (4, 100), (8, 200), (16, 200)])
def test_coop_epochs_by_shots_set_the_steps(npz, shots, epochs):
    config = _config(npz, shots=shots, num_steps=None, batch_size=8)
    steps_per_epoch = (3 * shots) // min(8, 3 * shots)
    assert cross_modal.resolve_steps(config).num_steps == epochs * steps_per_epoch


@pytest.mark.parametrize("specific,shape", [(False, (16, 6)), (True, (3, 16, 6))])
def test_coop_prompt_is_context_read_by_the_class_token_through_attention(npz, specific, shape):
    config = _config(npz, class_specific_context=specific)
    e = np.random.default_rng(1).normal(size=(3, 6))
    prompt = cross_modal.Prompt(e, 8, config)
    context = np.asarray(prompt.init(jax.random.key(0))["params"]["context"], np.float64)
    assert context.shape == shape and 0.01 < context.std() < 0.03
    w_q, w_k, w_v = (np.asarray(w, np.float64) for w in prompt.attention)
    want = []
    for c in range(3):  # float64 loop over classes: e_c attends to its ctx_1 … ctx_16
        tokens = context[c] if specific else context
        scores = (e[c] @ w_q) @ (tokens @ w_k).T / np.sqrt(6)
        weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        want.append(e[c] + weights @ (tokens @ w_v))
    projected = cross_modal._apply_mlp(prompt.projection, jnp.asarray(np.stack(want), jnp.float32))
    got = prompt.text({"context": jnp.asarray(context, jnp.float32)})
    np.testing.assert_allclose(got, projected, rtol=1e-4, atol=1e-5)


def test_class_vector_prompt_is_the_former_one(npz):
    config = _config(npz, prompt="class_vector")
    e = np.random.default_rng(1).normal(size=(3, 6))
    prompt = cross_modal.Prompt(e, 8, config)
    context = prompt.init(jax.random.key(0))["params"]["context"]
    assert context.shape == (3, 6) and not np.any(context)
    shifted = {"context": jnp.ones((3, 6))}
    want = cross_modal._apply_mlp(prompt.projection, jnp.asarray(e + 1.0, jnp.float32))
    np.testing.assert_allclose(prompt.text(shifted), want, rtol=1e-5, atol=1e-6)
