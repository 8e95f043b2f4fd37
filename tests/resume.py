"""A run killed with SIGKILL mid-training and restarted, beside the same run uninterrupted."""

import os
import signal
import subprocess
import time

from interplay.trainers.core import logs

ROOT = os.path.dirname(os.path.dirname(__file__))


def full_and_resumed(command, tmp_path, kill_after_checkpoint: int) -> tuple[list, list]:
    """Records of `command(workdir)` run through, and run, SIGKILLed once the checkpoint at
    step `kill_after_checkpoint` exists, then restarted; one CPU device each."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1"}
    run = dict(check=True, env=env, cwd=ROOT, capture_output=True)
    subprocess.run(command(tmp_path / "full"), **run)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        command(killed), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not (killed / "checkpoints" / str(kill_after_checkpoint)).exists():
        if time.time() > deadline:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = logs.read(killed / "metrics.jsonl")
    full = logs.read(tmp_path / "full/metrics.jsonl")
    assert at_kill and at_kill[-1]["step"] < full[-1]["step"], "the run must be killed mid-training"
    subprocess.run(command(killed), **run)
    return full, logs.read(killed / "metrics.jsonl")
