"""Two processes on JAX's distributed runtime (loopback, 4 CPU devices each) against one process
with the same 8 devices and global batch (slow); a kill of one process and a restart of both
(slow); `dataset_interplay` over two processes against one."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from interplay.trainers.core import logs
from tests import reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
ARGS = (
    "--config.model=mlp",
    "--config.num_steps=40",
    "--config.eval_every=20",
    "--config.checkpoint_every=10",
    "--config.log_every=10",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(workdir, data_dir, num_processes: int) -> list[subprocess.Popen]:
    """`num_processes` supervised trainers sharing 8 CPU devices, one global batch of 64."""
    port, procs = _free_port(), []
    for i in range(num_processes):
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(8 // num_processes)}
        if num_processes > 1:
            env.update(
                JAX_NUM_PROCESSES=str(num_processes),
                JAX_PROCESS_ID=str(i),
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            )
        command = [sys.executable, "-m", "interplay.trainers.supervised", "--workdir", str(workdir)]
        command += [f"--config.data_dir={data_dir}", *ARGS]
        procs.append(
            subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        )
    return procs


def _wait(procs) -> None:
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]


@pytest.mark.slow  # three trainer processes (about 70 s); the interplay job below is in make test
def test_two_processes_match_one(tmp_path, data_dir):
    _wait(_launch(tmp_path / "one", data_dir, 1))  # builds the dataset if this worker has not
    _wait(_launch(tmp_path / "two", data_dir, 2))
    one, two = (logs.read(tmp_path / d / "metrics.jsonl") for d in ("one", "two"))
    assert [r["step"] for r in two] == [r["step"] for r in one] == [0, 10, 20, 30, 40]
    for a, b in zip(one, two, strict=True):
        if "train/loss" in a:
            np.testing.assert_allclose(b["train/loss"], a["train/loss"], rtol=1e-6)
        if "eval/mir" in a:
            np.testing.assert_allclose(b["eval/loss"], a["eval/loss"], rtol=1e-6)
            assert b["eval/accuracy"] == a["eval/accuracy"]
            reference.assert_interplay_close(a, b, rtol=1e-4, prefix="eval/", atol=1e-4)
    assert (tmp_path / "two" / "dynamics.png").exists()


@pytest.mark.slow  # four more two-process trainer starts (about 100 s on two busy cores)
def test_two_processes_resume_after_a_kill(tmp_path, data_dir):
    _wait(_launch(tmp_path / "two", data_dir, 2))
    two = logs.read(tmp_path / "two" / "metrics.jsonl")
    killed = tmp_path / "killed"
    procs = _launch(killed, data_dir, 2)
    deadline = time.time() + 240
    while not (killed / "checkpoints" / "20").exists() and time.time() < deadline:
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # one process dies; its peer cannot go on alone
    time.sleep(1)
    procs[0].send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate()
    at_kill = logs.read(killed / "metrics.jsonl")
    assert at_kill and at_kill[-1]["step"] < 40, "the run must be killed mid-training"
    _wait(_launch(killed, data_dir, 2))
    resumed = logs.read(killed / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [r["step"] for r in two]
    for key in set(two[-1]) - {"time", "train/steps_per_sec"}:
        assert resumed[-1][key] == pytest.approx(two[-1][key], rel=1e-6, abs=1e-7), key


def test_dataset_interplay_over_two_processes_matches_one(tmp_path):
    from interplay import infotheory as it
    from tests import distributed_interplay as job

    port = _free_port()
    procs = []
    for i in range(2):
        env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_NUM_PROCESSES": "2"}
        env.update(JAX_PROCESS_ID=str(i), JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}")
        command = [sys.executable, "-m", "tests.distributed_interplay", str(tmp_path / "r.json")]
        procs.append(subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE))
    _wait(procs)
    two = json.loads((tmp_path / "r.json").read_text())
    features, labels, head = job.data()
    batches = [
        (features[s : s + job.BATCH], labels[s : s + job.BATCH]) for s in range(0, job.N, job.BATCH)
    ]
    one = it.dataset_interplay(batches, head, num_classes=job.C, method="exact")._asdict()
    reference.assert_interplay_close({k: float(v) for k, v in one.items()}, two, rtol=1e-5)
