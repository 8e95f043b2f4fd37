"""The training loop every trainer shares (restore-or-init, cadence, metrics, checkpoints).

A trainer supplies an `Experiment`: its initial state, a `train` function that
advances the state by a number of steps (a Python loop over a jitted step, or a
`lax.scan`), its evaluator and its plot. `run` owns the rest, in the manner of
big_vision's `train.py`:

* the workdir (`core.workdir`): refused if it is a file or holds another
  config's run; the config is written to `config.json` for a new run only;
* restore-or-init from the latest Orbax checkpoint (`interplay.trainers.core.checkpoints`);
* the cadence: `train` is called up to the next step at which
  `itstime` says to log, evaluate or checkpoint;
* every log row (`metrics.jsonl`, TensorBoard): `train/loss`, `train/grad_norm`,
  `train/update_norm`, `train/param_norm` (means since the previous row),
  `train/learning_rate`, `train/steps_per_sec`; eval rows add the evaluator's
  `eval/...` values; a non-finite loss stops the run naming its step;
* elapsed time across restarts, a tqdm bar, the final plot, and the
  hyper-parameters with the final metrics in TensorBoard's hparams;
* runs trained together in one state (`Experiment.members`, e.g. vmapped
  seeds): one checkpoint, one metrics file and plot per member; a single run
  is the one member `""`, written into the workdir itself.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from interplay.trainers import configs
from interplay.trainers.core import checkpoints, logs
from interplay.trainers.core import workdir as workdirs
from interplay.trainers.core.state import TrainState

POSTFIX = ("train/loss", "eval/accuracy", "eval/mir")  # shown on the progress bar


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What a trainer supplies to `run`.

    Attributes:
      name: label of the progress bar.
      init: returns the state at step 0 (also the restore target).
      train: `(state, first_step, num_steps) → (state, metrics)`, where metrics
        hold `loss, grad_norm, update_norm, param_norm`, each stacked over the
        `num_steps` steps. Called with consecutive ranges of steps.
      evaluate: `state → {key: value}`, written into the row as returned (keys
        start with `eval`, e.g. `eval/accuracy`; `eval/accuracy` and `eval/mir`
        go on the progress bar).
      learning_rate: `step → learning rate` (the optimizer's schedule).
      plot: `(records, workdir)`; called at the end with all records.
      finished: `runs → bool`, an early stop checked after each eval; `runs`
        holds the records of each member (one list for a single run).
      close: releases what `train` holds (data iterators).
      files: `{name: text}` written into the workdir once it is checked.
      members: names of the runs trained together in one state (e.g. seeds
        vmapped over); member m's rows, TensorBoard events and plot go to
        `workdir/m/`. A single run is the one member `""` (the workdir itself).
        With several members every value of `train`'s metrics and of
        `evaluate` carries a trailing member axis; with one it may be a scalar.
    """

    name: str
    init: Callable[[], TrainState]
    train: Callable[[TrainState, int, int], tuple[TrainState, dict]]
    evaluate: Callable[[TrainState], dict[str, float]]
    learning_rate: Callable[[int], float]
    plot: Callable[[list[dict], pathlib.Path], None]
    finished: Callable[[list[list[dict]]], bool] = lambda runs: False
    close: Callable[[], None] = lambda: None
    members: tuple[str, ...] = ("",)
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)


def itstime(step: int, every: int | None, last: int) -> bool:
    """True at multiples of `every` (never when it is None) and at the last step."""
    return step == last or (every is not None and step % every == 0)


def next_stop(step: int, cadences: Iterable[int | None], last: int) -> int:
    """The first step after `step` at which some cadence (or `last`) falls."""
    candidates = [(step // c + 1) * c for c in cadences if c is not None]
    return min([last, *candidates])


def _train_row(per_step: dict, first_step: int, seconds: float) -> dict[str, np.ndarray]:
    """Means over steps of the per-step training metrics (host arrays `(steps[, members])`).

    Stops at a non-finite loss of any member.
    """
    losses = np.asarray(per_step["loss"])
    logs.check_finite(losses.reshape(len(losses), -1).sum(1), first_step)
    row = {f"train/{k}": np.mean(v, axis=0) for k, v in per_step.items()}
    row["train/steps_per_sec"] = len(losses) / max(seconds, 1e-9)
    return row


class _Writers:
    """One `MetricWriter` per member; splits rows whose values carry a member axis."""

    def __init__(self, workdir: pathlib.Path, members: tuple[str, ...], start: int):
        self.members = members
        dirs = [workdir / m for m in members]
        for d in dirs:
            d.mkdir(exist_ok=True)
        self.dirs = dirs
        self.writers = [logs.MetricWriter(d, resume_step=start) for d in dirs]

    @property
    def runs(self) -> list[list[dict]]:
        return [w.records for w in self.writers]

    def write(self, step: int, seconds: float, row: dict, where: str | None = None) -> None:
        """Writes member m's slice of `row`; `where` names an eval row to check for non-finite."""
        for i, (d, w) in enumerate(zip(self.dirs, self.writers, strict=True)):
            values = {k: np.broadcast_to(v, (len(self.writers),))[i] for k, v in row.items()}
            if where is not None:
                member = f" ({d.name})" if len(self.members) > 1 else ""
                logs.report_nonfinite(
                    {k: v for k, v in values.items() if k.startswith("eval")}, where + member
                )
            w.write(step, seconds, values)


def run(
    experiment: Experiment,
    config: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    resumable: Iterable[str] = (),
) -> list[list[dict]]:
    """Trains `experiment` to `config.num_steps` (or until it is `finished`), resuming.

    The cadence comes from `config`: `num_steps`, `eval_every`, `checkpoint_every`
    and, where the config has them, `log_every` and `keep_checkpoints` (None:
    rows only at evals; all checkpoints kept).

    Returns:
      For each member of `experiment.members` (one for a single run), all its
      metric records, earlier sessions' included.
    """
    workdir = workdirs.prepare(config, workdir, resumable)
    if jax.process_index() == 0:
        for name, text in experiment.files.items():
            (workdir / name).write_text(text)
    num_steps, eval_every, checkpoint_every = (
        config.num_steps,
        config.eval_every,
        config.checkpoint_every,
    )
    log_every = config.get("log_every")
    state = experiment.init()
    mngr = checkpoints.manager(workdir / "checkpoints", max_to_keep=config.get("keep_checkpoints"))
    start, meta = mngr.latest_step() or 0, {"elapsed": 0.0}
    if start:
        state, meta = checkpoints.restore(mngr, start, state)
    writers = _Writers(workdir, experiment.members, start)
    t0 = time.perf_counter() - meta["elapsed"]
    if start >= num_steps or (start and experiment.finished(writers.runs)):
        print(f"{workdir}: already finished at step {start} (resumed from checkpoint).")
    else:
        if start == 0:  # the dynamics start at initialization
            values = experiment.evaluate(state)
            writers.write(0, time.perf_counter() - t0, values, "eval at step 0")
        bar = tqdm(
            total=num_steps, initial=start, desc=experiment.name, disable=jax.process_index() != 0
        )
        step = start
        try:
            while step < num_steps:
                stop = next_stop(step, (log_every, eval_every, checkpoint_every), num_steps)
                tick = time.perf_counter()
                state, per_step = experiment.train(state, step, stop - step)
                per_step = jax.device_get(per_step)
                row = _train_row(per_step, step + 1, time.perf_counter() - tick)
                row["train/learning_rate"] = float(experiment.learning_rate(stop - 1))
                evaluated = itstime(stop, eval_every, num_steps)
                if evaluated:
                    row.update(experiment.evaluate(state))
                where = f"eval at step {stop}" if evaluated else None
                writers.write(stop, time.perf_counter() - t0, row, where)
                bar.update(stop - step)
                bar.set_postfix({k: f"{np.mean(row[k]):.3f}" for k in POSTFIX if k in row})
                step = stop
                finished = evaluated and experiment.finished(writers.runs)
                if finished or itstime(step, checkpoint_every, num_steps):
                    checkpoints.save(mngr, step, state, {"elapsed": time.perf_counter() - t0})
                if finished:
                    break
        finally:
            bar.close()
            experiment.close()
            mngr.wait_until_finished()
    mngr.close()
    for d, w in zip(writers.dirs, writers.writers, strict=True):
        w.close(hparams=configs.flat(config))
        if jax.process_index() == 0:
            experiment.plot(w.records, d)
    return writers.runs
