"""The interplay term's overhead in the semi-supervised step, side by side in one process.

    .venv/bin/python benchmarks/semisupervised.py [--algorithm freematch] [--mu 7] [--breakdown]

The trainer's jitted step (`interplay.trainers.semisupervised`, digits model, batch 64,
μ = 7: 64 labeled + 2 × 448 unlabeled views per step) with and without
`mi_weight = hdr_weight = 0.1`, run alternately on the same batch (median of
`--repeats`); target: the term costs ≤ 1.3× the plain step's time (≤ 1.5× on a GPU).
`--breakdown` then times the term's parts alone on the step's unlabeled features: its value
and gradient, and one eigendecomposition of each matrix it decomposes (the `(m, m)` joint
Gram, the features' `min(m, d)²` Gram, the head's `C²`), with each solver the backend offers.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from metrics import timeit  # benchmarks/metrics.py, beside this script

from interplay import infotheory as it
from interplay import models
from interplay.trainers import semisupervised
from interplay.trainers.classifier import parts
from interplay.trainers.configs.semisupervised import get_config


def breakdown(classifier: parts.Classifier, state, batch, repeats: int) -> None:
    """Prints the term's parts, each timed alone on this step's unlabeled features."""
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    logits, features = classifier.model.apply(variables, batch["unlabeled"]["image"], train=False)
    head, labels = models.head(state.params), jnp.argmax(logits, -1)

    def term(features, head):
        return it.losses.interplay_regularizer(
            features, labels, head, mi_weight=0.1, hdr_weight=0.1
        )

    (m, d), num_classes = features.shape, head.shape[0]
    timed = {"value": jax.jit(term), "+ gradient": jax.jit(jax.value_and_grad(term, (0, 1)))}
    for name, fn in timed.items():
        ms = 1e3 * timeit(fn, features, head, repeats=repeats)
        print(f"  the term alone, {name:27s} {ms:8.2f} ms")
    solvers = {"default": None}
    if jax.default_backend() == "gpu":
        solvers["jacobi"] = jax.lax.linalg.EighImplementation.JACOBI
    sizes = {"joint Gram": m, "features' Gram": min(m, d), "head's Gram": num_classes}
    for name, size in sizes.items():
        x = jax.random.normal(jax.random.key(0), (size, size))
        matrix = x @ x.T / size
        for solver, implementation in solvers.items():
            eigh = jax.jit(lambda a, i=implementation: jax.lax.linalg.eigh(a, implementation=i))
            ms = 1e3 * timeit(eigh, matrix, repeats=repeats)
            print(f"  eigh {size:4d}², {name + ' (' + solver + ')':26s} {ms:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", default="freematch")
    parser.add_argument("--mu", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--breakdown", action="store_true", help="time the term's parts")
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
    print(f"  ratio                   {term / plain:8.2f}x   (target ≤ 1.3x, GPU ≤ 1.5x)")
    if args.breakdown:
        breakdown(classifier, state, batch, args.repeats)


if __name__ == "__main__":
    main()
