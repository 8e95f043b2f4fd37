"""The way in: workdir safety, resume rules, CLI errors, offline smoke runs of any preset."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from interplay.trainers import data, supervised
from interplay.trainers.classifier.saved import SavedRun
from interplay.trainers.configs.supervised import get_config
from interplay.trainers.core import logs

ROOT = pathlib.Path(__file__).parents[2]


def _config(data_dir, **overrides):
    config = get_config("digits")
    config.update(model="mlp", data_dir=data_dir, num_devices=1, num_steps=20, eval_every=10)
    config.update(checkpoint_every=10, log_every=10, **overrides)
    return config


def test_a_refused_restart_leaves_the_run_intact_and_a_legitimate_one_resumes(
    tmp_path, data_dir, capsys
):
    supervised.train_and_evaluate(_config(data_dir), tmp_path)
    before = {p: (tmp_path / p).read_bytes() for p in ("config.json", "metrics.jsonl")}
    with pytest.raises(ValueError, match=r"model: 'mlp' in the run, 'small_cnn' now") as error:
        supervised.train_and_evaluate(_config(data_dir, model="small_cnn"), tmp_path)
    assert "--workdir" in str(error.value)
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    run = SavedRun(tmp_path)  # still analysable: every checkpoint restores
    assert run.steps == [10, 20] and all(run.variables(s) is not None for s in run.steps)

    supervised.train_and_evaluate(_config(data_dir), tmp_path)  # the same run again
    assert "already finished at step 20 (resumed from checkpoint)" in capsys.readouterr().out
    assert (tmp_path / "metrics.jsonl").read_bytes() == before["metrics.jsonl"]

    supervised.train_and_evaluate(_config(data_dir, num_steps=30), tmp_path)  # extended
    records = logs.read(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 10, 20, 30]
    old = [json.loads(line) for line in before["metrics.jsonl"].decode().splitlines()]
    assert records[:3] == old  # the first 20 steps are kept as they were
    assert json.loads((tmp_path / "config.json").read_text())["num_steps"] == 20  # first run's


def test_workdir_that_is_a_file_is_refused_before_any_work(tmp_path, data_dir):
    file = tmp_path / "file"
    file.write_text("")
    for workdir, match in ((file, "is a file"), (file / "run", "cannot be created")):
        with pytest.raises(ValueError, match=match):
            supervised.train_and_evaluate(_config(data_dir), workdir)


def test_catalog_dataset_without_data_fails_at_once_saying_how(tmp_path):
    with pytest.raises(ValueError, match=r"cifar10 is not prepared .*fake_data=True"):
        data.source("cifar10", "train", str(tmp_path))


@pytest.mark.slow  # compiles a WRN-28-2 (about 1 min); the semi-supervised CIFAR-10 preset too
def test_any_preset_runs_offline_on_fake_data(tmp_path):
    config = get_config("cifar10_wrn28_2,runlocal")
    config.update(fake_data=True, num_devices=1, num_steps=2, eval_every=2, log_every=1)
    config.update(checkpoint_every=2, eval_batch_size=128)
    last = supervised.train_and_evaluate(config, tmp_path)
    assert last["step"] == 2 and 0 <= last["eval/mir"] <= 1
    assert sum(1 for _ in logs.read(tmp_path / "metrics.jsonl")) == 3


def _cli(*args, cwd=ROOT):
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_cli_errors_are_one_line_and_help_lists_the_presets(tmp_path):
    done = _cli(
        "interplay.trainers.supervised", "--workdir", str(tmp_path), "--config.lerning_rate=1"
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "error: unknown config field 'lerning_rate'. Did you mean 'learning_rate'?"
    )
    done = _cli(
        "interplay.trainers.grokking",
        "--config=interplay/trainers/configs/grokking.py:small,runloacl",
        f"--workdir={tmp_path}",
    )
    assert done.returncode != 0 and "unknown preset flag(s) ['runloacl']" in done.stderr
    (tmp_path / "file").write_text("")
    data_dir = tmp_path / "data"  # refused before the dataset is built there
    done = _cli(
        "interplay.trainers.supervised",
        "--workdir",
        str(tmp_path / "file"),
        f"--config.data_dir={data_dir}",
    )
    assert (
        done.stderr.strip() == f"error: --workdir {tmp_path / 'file'} is a file, not a directory."
    )
    assert not data_dir.exists()
    for module, presets in (
        ("interplay.trainers.supervised", ("digits", "cifar10_wrn28_2", "cifar100_wrn28_8")),
        ("interplay.trainers.grokking", ("default", "small")),
    ):
        text = " ".join(_cli(module, "--help").stdout.split())
        assert "--workdir" in text and all(f"{p}:" in text for p in presets), module
    text = _cli("interplay.trainers.analyze", "--help").stdout
    assert "--mode" in text and "--chunk" in text
    done = _cli("interplay.trainers.analyze", "--workdir", str(tmp_path), "--chunk", "0")
    assert done.returncode != 0 and "chunk" in done.stderr
