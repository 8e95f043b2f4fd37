"""Supervised trainer: outputs, resume after SIGKILL, data parallelism, NaN and config errors."""

import json
import pathlib
import sys

import numpy as np
import optax
import pytest

from interplay.trainers import supervised
from interplay.trainers.classifier import parts
from interplay.trainers.classifier.saved import SavedRun
from interplay.trainers.configs.supervised import get_config
from interplay.trainers.core import checkpoints, logs
from interplay.trainers.data import pipeline
from tests import reference, resume

TRAIN_KEYS = {
    f"train/{k}"
    for k in ("loss", "grad_norm", "update_norm", "param_norm", "learning_rate", "steps_per_sec")
}
EVAL_KEYS = {
    f"eval/{k}"
    for k in (
        "loss",
        "accuracy",
        "mir",
        "hdr",
        "mi",
        "mi_stderr",
        "h_features",
        "h_heads",
        "batch_mir",
        "batch_hdr",
        "nc1",
        "nc2_etf",
        "nc2_equinorm",
        "nc2_equiangular",
        "nc2_maxangle",
        "nc3",
        "nc3_squared",
        "nc4",
        "silhouette",
        "davies_bouldin",
        "class_entropy",
    )
}
KEYS = {"step", "time"} | TRAIN_KEYS | EVAL_KEYS


def tiny(data_dir, **overrides):
    config = get_config("digits")
    config.model = "mlp"
    config.data_dir = data_dir
    config.num_steps, config.eval_every, config.checkpoint_every, config.log_every = 40, 20, 20, 10
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory, data_dir) -> tuple[pathlib.Path, dict]:
    """The `tiny` run on one device, trained once for the tests that read it: (workdir, last)."""
    workdir = tmp_path_factory.mktemp("plain")
    return workdir, supervised.train_and_evaluate(tiny(data_dir, num_devices=1), workdir)


# The tests that read `plain_run` run in one worker (`--dist loadgroup`), so it trains once.
@pytest.mark.xdist_group("plain_run")
def test_short_run_writes_metrics_checkpoints_and_plot(plain_run):
    workdir, last = plain_run
    with pytest.raises(ValueError, match="kept no EMA"):
        SavedRun(workdir, "ema")
    records = logs.read(workdir / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 10, 20, 30, 40]  # log rows every 10
    assert set(records[0]) == {"step", "time"} | EVAL_KEYS  # at initialization
    assert set(records[1]) == {"step", "time"} | TRAIN_KEYS
    assert all(set(r) == KEYS for r in logs.evals(records[1:]))
    assert [r["step"] for r in logs.evals(records)] == [0, 20, 40]
    evals = logs.evals(records)
    assert evals[-1]["eval/accuracy"] > evals[0]["eval/accuracy"]
    lr = [r["train/learning_rate"] for r in records[1:]]
    assert lr == sorted(lr, reverse=True) and lr[0] < 0.03  # cosine decay, logged
    assert all(r["train/update_norm"] > 0 and r["train/param_norm"] > 0 for r in records[1:])
    assert last == evals[-1]
    assert 0 <= last["eval/mir"] <= 1 and 0 <= last["eval/hdr"] <= 1
    assert (workdir / "dynamics.png").stat().st_size > 20_000
    assert any((workdir / "tensorboard").iterdir())
    mngr = checkpoints.manager(workdir / "checkpoints", read_only=True)
    assert list(mngr.all_steps()) == [20, 40]


@pytest.mark.xdist_group("plain_run")
def test_loss_terms_train_and_change_the_trajectory(plain_run, tmp_path, data_dir):
    _, plain = plain_run
    shaped = supervised.train_and_evaluate(
        tiny(data_dir, num_devices=1, mi_weight=0.5, hdr_weight=0.5, label_smoothing=0.1),
        tmp_path,
    )
    assert np.isfinite(shaped["train/loss"]) and shaped["train/loss"] != plain["train/loss"]


def test_eight_devices_match_one_device(tmp_path, data_dir):
    one = tiny(data_dir, num_devices=1, model="small_cnn", num_steps=20, eval_every=10)
    eight = tiny(data_dir, num_devices=8, model="small_cnn", num_steps=20, eval_every=10)
    supervised.train_and_evaluate(one, tmp_path / "one")
    supervised.train_and_evaluate(eight, tmp_path / "eight")
    a, b = (
        logs.evals(logs.read(tmp_path / "one/metrics.jsonl")),
        logs.evals(logs.read(tmp_path / "eight/metrics.jsonl")),
    )
    for ra, rb in zip(a, b, strict=True):
        keys = ("eval/loss", "eval/accuracy", "eval/batch_mir", "eval/batch_hdr", "eval/nc1")
        for key in (*keys, *(k for k in ("train/loss", "train/grad_norm") if k in ra)):
            np.testing.assert_allclose(ra[key], rb[key], rtol=2e-4, atol=2e-5, err_msg=key)
        # At initialization h_features ≈ 0.02 (nearly collinear features): absolute round-off.
        reference.assert_interplay_close(ra, rb, rtol=1e-4, prefix="eval/", atol=1e-4)


def test_nan_loss_stops_naming_the_step(tmp_path, data_dir):
    with pytest.raises(FloatingPointError, match=r"at step \d+"):
        supervised.train_and_evaluate(tiny(data_dir, num_devices=1, learning_rate=1e30), tmp_path)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"batch_size": 60, "num_devices": 8}, "not divisible by the 8 devices"),
        ({"num_devices": 64}, "there are 8 devices"),
        ({"batch_size": 2048}, "exceeds the 1437 training examples"),
        ({"keep_checkpoints": 0}, "keep_checkpoints must be"),
        ({"model": "vit"}, "unknown model"),
        ({"dataset": "imagenet"}, "unknown dataset"),
        ({"mi_weight": -1.0}, "mi_weight must be non-negative"),
        ({"eval_every": 0}, "eval_every must be positive"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"interplay_method": "svd"}, "interplay_method"),
    ],
)
def test_bad_config_fails_before_training(tmp_path, data_dir, overrides, match):
    with pytest.raises(ValueError, match=match):
        supervised.train_and_evaluate(tiny(data_dir, **overrides), tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing written


def _command(workdir, data_dir):
    return [
        sys.executable,
        "-m",
        "interplay.trainers.supervised",
        "--config",
        "interplay/trainers/configs/supervised.py:digits",
        "--workdir",
        str(workdir),
        "--config.model=mlp",
        f"--config.data_dir={data_dir}",
        "--config.num_steps=300",
        "--config.eval_every=50",
        "--config.checkpoint_every=100",
        "--config.num_devices=1",
        "--config.ema_momentum=0.99",  # the EMA of the weights resumes too
    ]


def test_sigkill_and_restart_ends_like_an_uninterrupted_run(tmp_path, data_dir):
    full, resumed = resume.full_and_resumed(lambda d: _command(d, data_dir), tmp_path, 100)
    assert [r["step"] for r in resumed] == [r["step"] for r in full]  # none duplicated or missing
    assert [r["step"] for r in logs.evals(resumed)] == list(range(0, 301, 50))
    for key in KEYS - {"time", "train/steps_per_sec"}:
        assert resumed[-1][key] == pytest.approx(full[-1][key], rel=1e-6, abs=1e-7), key
    times = [r["time"] for r in resumed]
    assert times == sorted(times)  # cumulative across the restart
    json.dumps(resumed)
    # The trainer evaluated the EMA weights; the analysis reads them back, or the trained ones.
    run = SavedRun(tmp_path / "killed")
    assert run.weights == "ema"
    evaluator = run.test_evaluator()
    ema = evaluator.evaluate(run.variables(300))
    assert float(ema["accuracy"]) == resumed[-1]["eval/accuracy"]
    np.testing.assert_allclose(ema["mir"], resumed[-1]["eval/mir"], rtol=1e-4)
    raw = evaluator.evaluate(SavedRun(tmp_path / "killed", "raw").variables(300))
    assert float(raw["loss"]) != pytest.approx(resumed[-1]["eval/loss"], rel=1e-3)


def test_sweep_over_seeds_and_variants(tmp_path, data_dir):
    from interplay.trainers.studies import sweep

    variants = sweep.parse_variants('plain:;ls:label_smoothing=0.2,model="mlp"')
    assert variants == {"plain": {}, "ls": {"label_smoothing": 0.2, "model": "mlp"}}
    base = tiny(data_dir, num_devices=1, num_steps=20, eval_every=20)
    results = sweep.sweep(base, variants, [0, 1], tmp_path)
    assert set(results) == {"plain", "ls"} and len(results["ls"]["eval/accuracy"]) == 2
    assert (
        results["plain"]["eval/accuracy"][0] != results["plain"]["eval/accuracy"][1]
    )  # seeds differ
    rows = sweep.table(results).splitlines()
    assert rows[2].startswith("| plain (n=2) |") and "±" in rows[3]


def test_sweep_validates_every_variant_before_training(tmp_path, data_dir):
    from interplay.trainers.studies import sweep

    base = tiny(data_dir, num_devices=1)
    for variants, match in (
        ({"ok": {}, "bad": {"lerning_rate": 0.1}}, "variant 'bad': .*Did you mean 'learning_rate'"),
        ({"ok": {}, "bad": {"label_smoothing": 2.0}}, "variant 'bad': config.label_smoothing"),
    ):
        with pytest.raises(ValueError, match=match):
            sweep.sweep(base, variants, [0, 1], tmp_path)
        assert not (tmp_path / "ok").exists()  # nothing trained


def test_temperature_divides_the_logits_of_the_loss(data_dir):
    classifier = parts.Classifier.create(tiny(data_dir, temperature=3.0))
    state = parts.supervised_state(classifier)
    batch = next(iter(pipeline.eval_batches(classifier.source("test"), classifier.spec, 40)))
    loss, _ = classifier.loss(state.params, state, batch)
    (logits, _), _ = classifier.model.apply(
        state.variables, batch["image"], train=True, mutable=["batch_stats"]
    )
    expected = optax.softmax_cross_entropy_with_integer_labels(logits / 3.0, batch["label"])
    assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-6)
