"""The few-shot cross-modal trainer and the temperature study's pure parts."""

import shutil

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
    config.update(features=str(npz), shots=4, num_steps=40, eval_every=20, log_every=10)
    config.update(checkpoint_every=20, **overrides)
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
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "40")  # as if killed after step 20
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
