"""Vmapped checkpoint trajectory against a per-checkpoint loop, side by side.

    .venv/bin/python benchmarks/analysis.py [--workdir DIR]

Trains a digits run with 12 checkpoints (unless DIR already holds one), then
evaluates all checkpoints (accuracy, loss, whole-split interplay, NC1–NC4) with
one vmapped evaluation and with a Python loop over single ones, and reports the
time and the compiled memory (XLA temp buffers) of both.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import jax
import numpy as np

from interplay.trainers import analyze, supervised
from interplay.trainers.classifier.saved import SavedRun
from interplay.trainers.configs.supervised import get_config


def temp_mib(fn, *args) -> float:
    return fn.lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="bench_analysis_"))
    if not (workdir / "checkpoints").exists():
        config = get_config("digits")
        config.update(model=args.model, num_steps=600, checkpoint_every=50, eval_every=600)
        supervised.train_and_evaluate(config, workdir)
    run = SavedRun(workdir)
    variables = [run.variables(s) for s in run.steps]
    stacked = analyze.stack(variables)
    evaluator = run.test_evaluator()

    def loop():
        return [evaluator.evaluate(v) for v in variables]

    def vmapped():
        return evaluator.evaluate_stacked(stacked, chunk=len(variables))

    times = {}
    for name, fn in (("loop", loop), ("vmap", vmapped)):
        fn()  # compile
        samples = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            samples.append(time.perf_counter() - start)
        times[name] = float(np.median(samples))
    single, batched = evaluator._single[0], evaluator._batched[0]
    one = variables[0]
    carry = evaluator._carry(one)
    carries = jax.tree.map(lambda x: np.broadcast_to(x, (len(variables), *x.shape)), carry)
    batch = evaluator.batches[0]
    k = len(variables)
    print(
        f"devices: {jax.devices()}   {k} checkpoints of {run.config.model} on "
        f"{sum(int(b['mask'].sum()) for b in evaluator.batches)} test images"
    )
    print(
        f"  per-checkpoint loop   {times['loop']:7.2f} s   "
        f"temp {temp_mib(single, one, batch, carry):6.1f} MiB per batch step"
    )
    print(
        f"  one program (vmap)    {times['vmap']:7.2f} s   "
        f"temp {temp_mib(batched, stacked, batch, carries):6.1f} MiB per batch step"
    )
    print(f"  ratio                 {times['loop'] / times['vmap']:7.2f}x   (aim ≥ 2x)")
    params_mib = sum(x.nbytes for x in jax.tree.leaves(stacked)) / 2**20
    print(f"  stacked variables     {params_mib:7.2f} MiB")


if __name__ == "__main__":
    main()
