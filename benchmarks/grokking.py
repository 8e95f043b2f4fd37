"""Fused full-batch training (`lax.scan`) against a per-step Python loop, side by side.

    .venv/bin/python benchmarks/grokking.py            # steps/s of both loops (p = 113)
    .venv/bin/python benchmarks/grokking.py --grok DIR # instead, time the default task to grokking
    .venv/bin/python benchmarks/grokking.py --grok DIR --grokfast  # ... with Grokfast

Both loops run the same jitted `train_step` on the default task (p = 113, a + b,
30 % train: 3 830 examples per full batch). Then `--seeds` seeds trained as one
vmapped state (`--config.num_seeds`) against the same seeds one after another,
both through the trainer's own `experiment(config).train`.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from interplay.trainers import grokking
from interplay.trainers.configs.grokking import get_config
from interplay.trainers.core import logs
from interplay.trainers.core.state import TrainState, train_step
from interplay.trainers.data import modular


def steps_per_second(run, state, repeats: int) -> tuple[float, object]:
    state = run(state)  # compile and warm up
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = run(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), state


def seeds_vmapped_vs_sequential(config, args) -> tuple[float, float]:
    """Seconds for `args.steps` steps of `args.seeds` seeds: sequential runs, one vmapped run."""
    config = config.copy_and_resolve_references()
    seeds = []
    for seed in range(args.seeds):
        config.seed = seed
        seeds.append(grokking.experiment(config))
    sequential = [e.init() for e in seeds]

    def run_sequential(states):
        return [e.train(s, 0, args.steps)[0] for e, s in zip(seeds, states, strict=True)]

    config.seed, config.num_seeds = 0, args.seeds
    vmapped = grokking.experiment(config)
    t_seq, _ = steps_per_second(run_sequential, sequential, args.repeats)
    t_vmap, _ = steps_per_second(
        lambda s: vmapped.train(s, 0, args.steps)[0], vmapped.init(), args.repeats
    )
    return t_seq, t_vmap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per timed chunk")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5, help="seeds vmapped vs sequential")
    parser.add_argument("--grok", metavar="WORKDIR", help="only time training to grokking")
    parser.add_argument("--grokfast", action="store_true", help="--grok with Grokfast's filter")
    args = parser.parse_args()
    config = get_config()
    if args.grok:
        config.grokfast = args.grokfast
        [summary] = grokking.train_and_evaluate(config, args.grok)
        records = logs.read(f"{args.grok}/metrics.jsonl")
        at = summary["grokked_at"]
        t = next((r["time"] for r in records if r["step"] == at), None)
        print(f"  time to grok: {t} s at step {at} (grokfast={args.grokfast}; target < 600 s)")
        return
    data = modular.load(modular.modular_config(config.p, config.operation, config.train_fraction))
    tokens, labels = jnp.asarray(data["train"]["tokens"]), jnp.asarray(data["train"]["label"])
    model, (tx, _) = grokking.make_model(config), grokking.make_optimizer(config)
    state = TrainState.create(model.init(jax.random.key(0), tokens[:1]), tx)
    loss_fn = functools.partial(grokking.loss_fn, model=model)
    step = jax.jit(functools.partial(train_step, loss_fn=loss_fn), donate_argnums=0)

    def python_loop(state):
        for _ in range(args.steps):
            state, _ = step(state, (tokens, labels))
        return state

    fused = jax.jit(
        functools.partial(grokking.fused_steps, model=model, num_steps=args.steps),
        donate_argnums=0,
    )
    t_loop, state = steps_per_second(python_loop, state, args.repeats)
    t_fused, state = steps_per_second(lambda s: fused(s, tokens, labels)[0], state, args.repeats)
    print(f"devices: {jax.devices()}   full batch: {tokens.shape[0]} examples")
    print(f"  per-step Python loop   {args.steps / t_loop:8.1f} steps/s")
    print(f"  fused lax.scan         {args.steps / t_fused:8.1f} steps/s")
    print(f"  ratio                  {t_loop / t_fused:8.2f}x   (target ≥ 1.5x)")
    t_seq, t_vmap = seeds_vmapped_vs_sequential(config, args)
    print(f"{args.seeds} seeds, {args.steps} steps each:")
    print(f"  one after another      {t_seq:8.2f} s")
    print(f"  vmapped, one state     {t_vmap:8.2f} s")
    print(f"  ratio                  {t_seq / t_vmap:8.2f}x")


if __name__ == "__main__":
    main()
