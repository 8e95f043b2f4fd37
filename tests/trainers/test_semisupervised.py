"""Semi-supervised trainer: thresholds, masks, views, split, resume, presets, config errors."""

import functools
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.trainers import data, semisupervised
from interplay.trainers.classifier import augment, parts, pseudo_labels
from interplay.trainers.classifier.saved import SavedRun
from interplay.trainers.configs.semisupervised import get_config
from interplay.trainers.core import checkpoints, logs
from tests import resume

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def tiny(data_dir, **overrides):
    config = get_config("digits_40")
    config.update(data_dir=data_dir, num_devices=1, batch_size=8, mu=2, eval_batch_size=120)
    config.update(num_eval_unlabeled=120, num_steps=20, eval_every=10, checkpoint_every=10)
    config.update(log_every=5)
    config.update(overrides)
    return config


def test_freematch_thresholds_follow_a_hand_computed_two_step_example():
    t = pseudo_labels.Thresholds.create(2)
    assert float(t.global_threshold) == 0.5
    # Step 1 (decay 0.5): mean max-probability 0.75, mean probabilities (0.75, 0.25), both
    # predictions class 0.
    t = t.update(jnp.array([[0.9, 0.1], [0.6, 0.4]]), decay=0.5)
    np.testing.assert_allclose(t.global_threshold, 0.625)
    np.testing.assert_allclose(t.class_probs, [0.625, 0.375])
    np.testing.assert_allclose(t.label_hist, [0.75, 0.25])
    np.testing.assert_allclose(t.local_thresholds, [0.625, 0.375])
    mask = pseudo_labels.freematch_mask(t, jnp.array([[0.9, 0.1], [0.6, 0.4]]))
    np.testing.assert_array_equal(mask, [1.0, 0.0])  # 0.6 < 0.625
    # Step 2: mean max 0.75, mean probabilities (0.45, 0.55), one prediction of each class.
    probs = jnp.array([[0.2, 0.8], [0.7, 0.3]])
    t = t.update(probs, decay=0.5)
    np.testing.assert_allclose(t.global_threshold, 0.6875)
    np.testing.assert_allclose(t.class_probs, [0.5375, 0.4625])
    np.testing.assert_allclose(t.label_hist, [0.625, 0.375])
    np.testing.assert_allclose(t.local_thresholds, [0.6875, 0.6875 * 0.4625 / 0.5375], rtol=1e-6)
    np.testing.assert_array_equal(pseudo_labels.freematch_mask(t, probs), [1.0, 1.0])
    np.testing.assert_array_equal(pseudo_labels.fixmatch_mask(probs, 0.75), [1.0, 0.0])


def test_fairness_term_matches_hand_computed_values():
    t = pseudo_labels.Thresholds(jnp.asarray(0.5), jnp.array([0.6, 0.4]), jnp.array([0.5, 0.5]))
    logits = jnp.log(jnp.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]))
    # Kept: the first two; mean (0.45, 0.55), histogram (½, ½): SumNorm → (0.45, 0.55).
    loss = pseudo_labels.fairness_loss(t, logits, jnp.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(loss, 0.6 * np.log(0.45) + 0.4 * np.log(0.55), rtol=1e-5)
    # Kept: the first only; class 1 is never predicted, its 1/0 reads 0: SumNorm → (1, 0).
    loss = pseudo_labels.fairness_loss(t, logits, jnp.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(loss, 0.4 * np.log(1e-12), rtol=1e-5)
    assert float(pseudo_labels.fairness_loss(t, logits, jnp.zeros(3))) == 0.0
    # Nothing kept: no term, and no NaN through the masked-out branch into the gradient.
    grad = jax.grad(lambda x: pseudo_labels.fairness_loss(t, x, jnp.zeros(3)))(logits)
    np.testing.assert_array_equal(grad, np.zeros((3, 2)))


@pytest.mark.parametrize("algorithm", ["fixmatch", "freematch"])
def test_a_sample_below_threshold_contributes_nothing(algorithm):
    config = get_config("digits_40")
    config.update(algorithm=algorithm, mi_weight=0.3, hdr_weight=0.2, threshold=0.9)
    key = jax.random.key(0)
    m, c, d = 12, 4, 6
    weak = jax.random.normal(key, (m, c)) * 3
    weak = weak.at[0].set(jnp.array([0.1, 0.0, 0.0, 0.0]))  # unconfident under both rules
    strong = jax.random.normal(jax.random.fold_in(key, 1), (m, c))
    features = jax.random.normal(jax.random.fold_in(key, 2), (m, d))
    head = jax.random.normal(jax.random.fold_in(key, 3), (c, d))
    uniform = jnp.full(c, 1 / c)
    thresholds = pseudo_labels.Thresholds(jnp.asarray(0.7), uniform, uniform)  # a trained state

    def loss(strong, features):
        out = semisupervised.unlabeled_loss(weak, strong, features, head, thresholds, config)
        return out[0], out[2]

    value, mask = loss(strong, features)
    assert mask[0] == 0 and mask.sum() >= 2, mask
    changed, _ = loss(strong.at[0].set(5.0), features.at[0].set(-7.0))
    np.testing.assert_allclose(changed, value, rtol=1e-6)
    grads = jax.grad(lambda s, f: loss(s, f)[0], argnums=(0, 1))(strong, features)
    assert not np.any(grads[0][0]) and not np.any(grads[1][0])
    assert np.any(grads[1][mask > 0])  # the kept features do get the interplay gradient


FORMER_STRONG = functools.partial(augment.strong, ops="dm_pix")  # one object: jit's cache key


@settings(max_examples=8)
@given(seed=st.integers(0, 2**31 - 1), rgb=st.booleans())
def test_views_keep_shape_dtype_range_and_depend_only_on_the_key(seed, rgb):
    shape = (5, 32, 32, 3) if rgb else (5, 8, 8, 1)
    images = jax.random.uniform(jax.random.key(seed), shape)
    key = jax.random.key(seed + 1)
    for view in (augment.weak, augment.strong, FORMER_STRONG):
        view = jax.jit(view, static_argnames="flip")  # as in the train step: one program
        out = view(key, images, flip=rgb)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        np.testing.assert_array_equal(out, view(key, images, flip=rgb))
        assert not np.array_equal(out, view(jax.random.key(seed + 2), images, flip=rgb))


def test_weak_view_of_digits_is_a_translation_by_at_most_one_pixel():
    image = jnp.zeros((1, 8, 8, 1)).at[0, 3:5, 3:5, 0].set(1.0)  # a 2 × 2 blob, away from edges
    for i in range(10):
        out = np.asarray(augment.weak(jax.random.key(i), image, flip=False))[0, ..., 0]
        rows, cols = np.nonzero(out)
        assert out.sum() == 4 and np.ptp(rows) == 1 and np.ptp(cols) == 1
        assert 2 <= rows.min() <= 4 and 2 <= cols.min() <= 4


def test_split_is_balanced_disjoint_and_seeded():
    labels = np.repeat(np.arange(3), [20, 30, 25])
    config = get_config("digits_40")
    config.update(num_labels_per_class=4, num_validation_per_class=5)
    a = semisupervised.split_train(labels, 3, config)
    np.testing.assert_array_equal(np.bincount(labels[a.labeled]), [4, 4, 4])
    np.testing.assert_array_equal(np.bincount(labels[a.validation]), [5, 5, 5])
    pools = np.concatenate([a.labeled, a.validation, a.unlabeled])
    np.testing.assert_array_equal(np.sort(pools), np.arange(75))  # a partition
    config.label_seed = 1
    b = semisupervised.split_train(labels, 3, config)
    np.testing.assert_array_equal(a.validation, b.validation)  # validation_seed only
    assert not np.array_equal(a.labeled, b.labeled)
    config.num_labels_per_class = 16
    with pytest.raises(ValueError, match="num_labels_per_class=16 .* class 0 has 20"):
        semisupervised.split_train(labels, 3, config)


@pytest.mark.parametrize(
    "algorithm",
    [
        pytest.param("supervised", marks=pytest.mark.slow),  # the floor and FixMatch share the
        pytest.param("fixmatch", marks=pytest.mark.slow),  # loop and the views: 20 s each
        "freematch",
    ],
)
def test_short_run_logs_pseudo_labels_interplay_and_checkpoints_thresholds(
    tmp_path, data_dir, algorithm
):
    config = tiny(data_dir, algorithm=algorithm, mi_weight=0.1, hdr_weight=0.1)
    last = semisupervised.train_and_evaluate(config, tmp_path)
    records = logs.read(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 5, 10, 15, 20]
    for prefix in ("eval", "eval_val", "eval_unlabeled"):
        assert 0 <= last[f"{prefix}/mir"] <= 1 and 0 <= last[f"{prefix}/accuracy"] <= 1
    split = json.loads((tmp_path / "split.json").read_text())
    assert len(split["labeled"]) == 40 and len(split["validation"]) == 100
    assert (tmp_path / "dynamics.png").stat().st_size > 20_000
    if algorithm == "supervised":
        assert "train/mask_rate" not in last
        return
    rows = records[1:]
    assert all(0 <= r["train/mask_rate"] <= 1 for r in rows)
    assert all(np.isnan(a) or 0 <= a <= 1 for a in (r["train/pseudo_accuracy"] for r in rows))
    mngr = checkpoints.manager(tmp_path / "checkpoints", read_only=True)
    state, _ = checkpoints.restore(
        mngr, 20, semisupervised.init_state(parts.Classifier.create(config))
    )
    # USB's EMA of the weights (the preset's default) is checkpointed beside the weights
    moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.ema_params, state.params)
    assert any(jax.tree.leaves(moved))
    run = SavedRun(tmp_path)  # the analysis and the profile read a semi-supervised run too
    again = run.test_evaluator().evaluate(run.variables(20))
    assert again["accuracy"] == pytest.approx(last["eval/accuracy"], abs=1e-6)
    assert again["mir"] == pytest.approx(last["eval/mir"], rel=1e-4)
    if algorithm == "freematch":  # the EMA moved away from 1/C and was checkpointed
        assert float(state.thresholds.global_threshold) != pytest.approx(0.1)
        assert float(state.thresholds.global_threshold) == pytest.approx(
            last["train/global_threshold"], abs=0.01
        )
    else:
        assert last["train/global_threshold"] == pytest.approx(0.95)


def _split(config):
    return semisupervised.Split(np.arange(40), np.arange(40, 140), np.arange(140, 1437))


def test_a_refused_restart_leaves_the_runs_split_untouched(tmp_path, data_dir):
    semisupervised.train_and_evaluate(tiny(data_dir, num_steps=5, eval_every=5), tmp_path)
    before = (tmp_path / "split.json").read_text()
    with pytest.raises(ValueError, match="different config"):
        semisupervised.train_and_evaluate(tiny(data_dir, num_steps=5, label_seed=7), tmp_path)
    assert (tmp_path / "split.json").read_text() == before


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"num_labels_per_class": 200}, "num_labels_per_class=200"),
        ({"mu": 0}, "mu must be an integer ≥ 1"),
        ({"threshold": 1.0}, r"threshold must be in \(0, 1\)"),
        ({"ema_decay": 0.0}, r"ema_decay must be in \(0, 1\)"),
        ({"algorithm": "mixmatch"}, "algorithm must be one of supervised, fixmatch, freematch"),
        ({"mi_weight": -0.1}, "mi_weight must be non-negative"),
        ({"fairness_weight": -1.0}, "fairness_weight must be non-negative"),
        ({"unlabeled_weight": -1.0}, "unlabeled_weight must be non-negative"),
        ({"randaugment": "pil"}, "randaugment must be one of usb, dm_pix"),
        ({"ema_momentum": 1.0}, r"ema_momentum must be in \[0, 1\)"),
    ],
)
def test_bad_config_fails_before_training(tmp_path, data_dir, overrides, match):
    with pytest.raises(ValueError, match=match):
        semisupervised.train_and_evaluate(tiny(data_dir, **overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "preset,model",
    [  # about 45 s each on a CPU: a WRN-28-2 to compile; C = 100 takes the Lanczos path
        pytest.param("cifar10_40", None, marks=pytest.mark.slow),
        pytest.param("cifar100_400", "small_cnn", marks=pytest.mark.slow),
    ],
)
def test_cifar_presets_run_a_step_on_mock_data(tmp_path, monkeypatch, preset, model):
    # 256 mock examples leave some of CIFAR-100's classes empty: the balanced split needs more.
    monkeypatch.setattr(data, "FAKE_EXAMPLES", 1024 if preset.startswith("cifar100") else 256)
    config = get_config(f"{preset},runlocal")
    config.update(fake_data=True, num_devices=1, batch_size=2, mu=2, eval_batch_size=128)
    config.update(num_steps=1, eval_every=1, checkpoint_every=1, log_every=1)
    config.update(num_eval_unlabeled=128, num_labels_per_class=1)
    if model:  # WRN-28-8 takes minutes to compile on a CPU; its config is checked below
        assert config.model == "wrn28_8" and config.weight_decay == 1e-3
        config.model = model
    last = semisupervised.train_and_evaluate(config, tmp_path)
    assert last["step"] == 1 and np.isfinite(last["train/loss"])
    assert 0 <= last["eval/mir"] <= 1


def _command(workdir, data_dir):
    return [
        sys.executable,
        "-m",
        "interplay.trainers.semisupervised",
        "--config",
        "interplay/trainers/configs/semisupervised.py:digits_20",
        "--workdir",
        str(workdir),
        f"--config.data_dir={data_dir}",
        "--config.model=mlp",
        "--config.batch_size=8",
        "--config.mu=2",
        "--config.num_steps=300",
        "--config.eval_every=100",
        "--config.checkpoint_every=50",
        "--config.num_devices=1",
        "--config.eval_batch_size=120",
        "--config.num_eval_unlabeled=120",
    ]


@pytest.mark.slow  # three trainer processes (about 2 min); the supervised one runs in make test
def test_sigkill_and_restart_ends_like_an_uninterrupted_run(tmp_path, data_dir):
    full, resumed = resume.full_and_resumed(lambda d: _command(d, data_dir), tmp_path, 150)
    assert [r["step"] for r in resumed] == [r["step"] for r in full]
    assert "train/global_threshold" in full[-1]
    for key in set(full[-1]) - {"time", "train/steps_per_sec"}:
        assert resumed[-1][key] == pytest.approx(full[-1][key], rel=1e-6, abs=1e-7), key


def test_study_pairs_seeds_and_counts_signs(tmp_path):
    from interplay.trainers.studies import semisupervised_study as study

    accuracy = {"freematch": [0.80, 0.90, 0.70], "freematch_interplay": [0.85, 0.90, 0.65]}
    for variant, values in accuracy.items():
        for seed, acc in enumerate(values):
            d = tmp_path / "digits_40" / variant / f"seed{seed}"
            d.mkdir(parents=True)
            rows = [{"step": 0, "eval/accuracy": 0.1, "eval_val/accuracy": acc - 0.4}]
            rows.append({"step": 100, "train/mask_rate": 0.5})
            rows.append({"step": 200, "eval/accuracy": acc, "eval_val/accuracy": acc - 0.1})
            for row in rows[::2]:
                row.update({"eval_unlabeled/mir": 0.5, "eval_unlabeled/hdr": 0.2})
            (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
            (d / "config.json").write_text(json.dumps({"num_steps": 200}))
    unfinished = tmp_path / "digits_40" / "freematch" / "seed3"  # stopped at step 100
    unfinished.mkdir()
    (unfinished / "metrics.jsonl").write_text(json.dumps({"step": 100, "eval/accuracy": 0.5}))
    (unfinished / "config.json").write_text(json.dumps({"num_steps": 200}))
    cells = study.load(tmp_path)
    assert sorted(cells["digits_40"]["freematch"]) == [0, 1, 2]
    (pair,) = study.paired(cells)
    np.testing.assert_allclose(pair["base"], [20, 10, 30], atol=1e-9)
    np.testing.assert_allclose(pair["with"], [15, 10, 35], atol=1e-9)
    row = study.paired_table([pair]).splitlines()[-1]
    # Differences −5, 0, +5; with: 15, 10, 35 (std 13.23), without: 20, 10, 30.
    assert "| 3 | 20.00 ± 13.23 / 20.00 ± 10.00 | 0.00 ± 5.00 | 1 / 1 / 1 |" in row
    # Against a former study's finals: only the seeds and variants both have.
    former = {
        "digits_40": {"freematch": {"0": {"eval/accuracy": 0.7}, "2": {"eval/accuracy": 0.8}}}
    }
    (old,) = study.former_pairs(cells, former)
    assert old["seeds"] == [0, 2] and old["comparison"] == "freematch, now vs former"
    np.testing.assert_allclose(old["base"], [30, 20], atol=1e-9)
    np.testing.assert_allclose(old["with"], [20, 30], atol=1e-9)
    # Validation: the mean of the last evals (here both): 1 − (acc − 0.25).
    assert "| 20.00 ± 10.00 | 45.00 ± 10.00 |" in study.error_table(cells)
    study.plot_dynamics(cells, tmp_path / "dynamics.png")
    assert (tmp_path / "dynamics.png").stat().st_size > 10_000
