"""CPU eigenvalues: LAPACK against tridiagonalization and bisection, compile and run time.

    .venv/bin/python benchmarks/eigvalsh.py [--repeats 5]

`spectral.eigvalsh` on CPU uses bisection from `spectral.TRIDIAGONAL_MIN_DIM` up and
LAPACK (`jnp.linalg.eigvalsh`) below. This prints, side by side at each size, the
compile time of either program and its run time (median of `--repeats`, after
compiling) on random PSD float32 matrices, and the ratios LAPACK / bisection: where
bisection's run-time gain stays under a millisecond, its extra second of compile
time never pays back within one evaluation.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from interplay.infotheory import spectral

SIZES = (16, 64, 128, 256, 384, 512, 1024, 2048)


def _time(fn, m, repeats: int) -> tuple[float, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(m).compile()
    compile_s = time.perf_counter() - start
    compiled(m).block_until_ready()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        compiled(m).block_until_ready()
        samples.append(time.perf_counter() - start)
    return compile_s, float(np.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"devices: {jax.devices()}   TRIDIAGONAL_MIN_DIM = {spectral.TRIDIAGONAL_MIN_DIM}")
    print(
        f"{'n':>6} {'LAPACK compile':>15} {'bisection compile':>18} "
        f"{'LAPACK run':>11} {'bisection run':>14} {'run ratio':>10}"
    )
    rng = np.random.default_rng(0)
    for n in SIZES:
        a = rng.normal(size=(n, n)).astype(np.float32)
        m = jnp.asarray(a @ a.T / n)
        lapack = _time(jnp.linalg.eigvalsh, m, args.repeats)
        bisection = _time(spectral._eigvalsh_tridiagonal, m, args.repeats)
        print(
            f"{n:>6} {lapack[0]:>14.2f}s {bisection[0]:>17.2f}s "
            f"{lapack[1] * 1e3:>9.1f}ms {bisection[1] * 1e3:>12.1f}ms "
            f"{lapack[1] / bisection[1]:>9.2f}×"
        )


if __name__ == "__main__":
    main()
