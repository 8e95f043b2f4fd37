"""The interplay term's overhead in the semi-supervised step, side by side in one process.

    .venv/bin/python benchmarks/semisupervised.py [--algorithm freematch] [--mu 7]

The trainer's jitted step (`interplay.trainers.semisupervised`, digits model, batch 64,
μ = 7: 64 labeled + 2 × 448 unlabeled views per step) with and without
`mi_weight = hdr_weight = 0.1`, run alternately on the same batch (median of
`--repeats`); target: the term costs ≤ 1.3× the plain step's time.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from interplay.trainers import semisupervised
from interplay.trainers.classifier import parts
from interplay.trainers.configs.semisupervised import get_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", default="freematch")
    parser.add_argument("--mu", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    steps = {}
    state = batch = None
    for name, weight in (("plain", 0.0), ("interplay", 0.1)):
        config = get_config("digits_40")
        config.update(algorithm=args.algorithm, mu=args.mu, batch_size=args.batch_size)
        config.update(mi_weight=weight, hdr_weight=weight, num_devices=1)
        split = semisupervised.Split(np.arange(40), np.arange(0), np.arange(40, 1437))
        classifier = parts.Classifier.create(config)
        steps[name] = jax.jit(semisupervised.make_step(classifier))
        if state is None:
            state = semisupervised.init_state(classifier)
            batch = jax.device_put(semisupervised.train_dataset(classifier, split)[0])
    times = {name: [] for name in steps}
    for step in steps.values():
        jax.block_until_ready(step(state, batch))  # compile
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(state, batch))
            times[name].append(time.perf_counter() - start)
    plain, term = (float(np.median(times[k])) for k in ("plain", "interplay"))
    m = args.mu * args.batch_size
    print(
        f"\n[semi-supervised] {args.algorithm} step, digits model, batch {args.batch_size}, "
        f"mu {args.mu} ({m} unlabeled), {jax.devices()[0].platform}"
    )
    print(f"  plain step              {plain * 1e3:8.1f} ms   ({1 / plain:6.2f} steps/s)")
    print(f"  with the interplay term {term * 1e3:8.1f} ms   ({1 / term:6.2f} steps/s)")
    print(f"  ratio                   {term / plain:8.2f}x   (target ≤ 1.3x)")


if __name__ == "__main__":
    main()
