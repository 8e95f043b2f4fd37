"""The largest practical exact dual: time the entropy eigensolver at growing sizes.

    .venv/bin/python benchmarks/exact_dual.py [--limit 20]

`method="exact"` ends in `spectral.trace_function(1, dual)`, one eigendecomposition
of the `(dC, dC)` class-scatter dual. This times that call on random PSD float32
matrices of growing size `m` (after compiling it) and stops after the first size
that takes longer than `--limit` seconds. `scatter.EXACT_MAX_DIM` is where
`method="auto"` switches to Lanczos.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from interplay.infotheory import scatter, spectral

SIZES = (2048, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=20.0, help="stop after a slower size (s)")
    args = parser.parse_args()
    limit = scatter.EXACT_MAX_DIM.get(jax.default_backend(), scatter.EXACT_MAX_DIM["cpu"])
    print(f"devices: {jax.devices()}   EXACT_MAX_DIM here = {limit}")
    entropy = jax.jit(lambda m: spectral.trace_function(1.0, m))
    for m in SIZES:
        b = jax.random.normal(jax.random.key(m), (m, 256), jnp.float32)
        dual = jax.block_until_ready((b @ b.T) / (256 * m))
        compiled = entropy.lower(dual).compile()
        start = time.perf_counter()
        h = jax.block_until_ready(compiled(dual))
        seconds = time.perf_counter() - start
        print(
            f"  m = {m:6d}: {seconds:7.2f} s   ({m * m * 4 / 2**30:5.2f} GiB)   H = {float(h):.4f}"
        )
        del b, dual
        if seconds > args.limit:
            break


if __name__ == "__main__":
    main()
