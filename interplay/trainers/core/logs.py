"""Metrics: JSON lines (`metrics.jsonl`) and TensorBoard events (tensorboardX, no TensorFlow).

Only process 0 writes. On resume, lines past the restored step are dropped so
the file has no duplicated or missing steps.
"""

from __future__ import annotations

import json
import math
import pathlib

import jax
import numpy as np
from tensorboardX import SummaryWriter


def check_finite(losses, first_step: int) -> np.ndarray:
    """`losses` of consecutive steps from `first_step` as an array; raises at the first non-finite.

    Raises:
      FloatingPointError: naming the step and the value.
    """
    values = np.asarray(losses, np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise FloatingPointError(
            f"non-finite training loss {values[bad[0]]} at step {first_step + int(bad[0])}."
        )
    return values


def report_nonfinite(values: dict[str, float], where: str) -> list[str]:
    """Prints which `values` are NaN or Inf (e.g. a diverged checkpoint); returns their keys."""
    bad = sorted(k for k, v in values.items() if not math.isfinite(float(v)))
    if bad:
        print(f"{where}: non-finite {', '.join(bad)} (diverged weights or bad input)")
    return bad


def seed_std(values) -> float:
    """Sample standard deviation over seeds (ddof = 1); 0 for a single seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def mean_std(values, digits: int = 4) -> str:
    """`"mean ± std"` over seeds (`seed_std`)."""
    return f"{np.mean(values):.{digits}f} ± {seed_std(values):.{digits}f}"


def read(path: str | pathlib.Path) -> list[dict]:
    """All records of a metrics.jsonl file (empty when it does not exist)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evals(records: list[dict]) -> list[dict]:
    """The records that hold evaluation metrics (`eval/...` keys)."""
    return [r for r in records if any(k.startswith("eval") for k in r)]


class MetricWriter:
    """Appends `{"step": …, "time": …, **scalars}` records and TensorBoard scalars.

    `records` holds every record of the run, those of earlier sessions included.
    """

    def __init__(self, workdir: str | pathlib.Path, resume_step: int = 0):
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self.records = [r for r in read(self.path) if r["step"] <= resume_step]
        self.active = jax.process_index() == 0
        if not self.active:
            return
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        self.tensorboard = SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))

    def write(self, step: int, time: float, scalars: dict[str, float]) -> None:
        record = {"step": int(step), "time": round(float(time), 3)}
        record.update({k: float(v) for k, v in scalars.items()})
        self.records.append(record)
        if not self.active:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")
        for key, value in scalars.items():
            if math.isfinite(float(value)):
                self.tensorboard.add_scalar(key, float(value), step)
        self.tensorboard.flush()

    def close(self, hparams: dict | None = None) -> None:
        """Closes TensorBoard, first recording `hparams` with the last eval's metrics."""
        if not self.active:
            return
        last = evals(self.records)
        if hparams and last:
            final = {k: v for k, v in last[-1].items() if k.startswith("eval") and math.isfinite(v)}
            values = {
                k: v if isinstance(v, int | float | str | bool) else str(v)
                for k, v in hparams.items()
            }
            self.tensorboard.add_hparams(values, final, name="hparams")
        self.tensorboard.close()


def summary(records: list[dict], columns: dict[str, str], keys=None) -> str:
    """A fixed-width table of the eval records, then the legend of its `columns`.

    Column `k` shows `keys[k]`, by default `eval/k`; a value a row lacks shows as NaN.
    """
    keys = {k: (keys or {}).get(k, f"eval/{k}") for k in columns}
    head = f"{'step':>6} " + " ".join(f"{k:>11}" for k in columns)
    lines = [
        f"{r['step']:>6d} " + " ".join(f"{r.get(keys[k], np.nan):>11.4f}" for k in columns)
        for r in evals(records)
    ]
    legend = [f"  {k:>11}: {v}" for k, v in columns.items()]
    return "\n".join([head, *lines, "", *legend])
