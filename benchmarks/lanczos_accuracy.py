"""Lanczos error in MIR against the exact dual: plain, control variate, deflated (issue 13 §4).

    .venv/bin/python benchmarks/lanczos_accuracy.py [--keys 20]

For class-structured synthetic data with dual size dC = 6 144 (the exact
eigendecomposition takes ≈ 10 s here), runs `--keys` independent sets of
32 probes × 64 Lanczos steps and prints the rms error in MIR, the mean stated
standard error, and the fraction of keys whose error lies within two standard
errors, for

* plain: the probes' mean of `vᵀ f(ρ) v` on the joint dual `ρ` (what
  `method="lanczos"` does);
* control variate: `H(B) + mean(vᵀ f(ρ) v − vᵀ f(B) v)` over the same probes,
  `B = ⊕_c S_c·G(W)_cc / tr` (the dual with `G(W)` replaced by its diagonal,
  `H(B)` exact from C eigendecompositions of d × d): twice the matvecs;
* deflated: `method="lanczos", num_deflate=256` (`spectral.entropy_lanczos`):
  the top 256 eigenvectors by 3 rounds of subspace iteration taken exactly, the
  same probes on the rest: 1 280 more matvecs than plain's 2 048.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from matfree import decomp, funm, stochtrace

import infotheory as it
from infotheory import scatter, spectral

CASES = ((512, 12, 1.0), (64, 96, 1.0), (64, 96, 0.3))  # (d, C, noise): dC = 6 144
DEFLATE = 256

deflated = jax.jit(
    functools.partial(scatter.joint_entropy_lanczos, num_probes=32, num_matvecs=64),
    static_argnames="num_deflate",
)


def synthetic(key, n, d, c, noise):
    k1, k2, k3 = jax.random.split(key, 3)
    means = jax.random.normal(k1, (c, d))
    labels = jax.random.randint(k2, (n,), 0, c)
    return means[labels] + noise * jax.random.normal(k3, (n, d)), labels, means


def block_entropy(stats, g):
    """Exact `H(B)`, `B = ⊕_c S_c·G_cc / tr`."""
    trace = jnp.einsum("cdd,cc->", stats.scatter, g)
    lam = jax.vmap(jnp.linalg.eigvalsh)(stats.scatter * (jnp.diag(g) / trace)[:, None, None])
    lam = jnp.clip(lam, 1e-30, None)
    return -jnp.sum(lam * jnp.log(lam))


@functools.partial(jax.jit, static_argnames=("num_probes", "num_matvecs"))
def paired_quadratures(stats, g, key, num_probes=32, num_matvecs=64):
    """`(vᵀ f(ρ) v, vᵀ f(B) v)` for each of the same Rademacher probes `v`."""
    root = spectral.psd_sqrt(g)
    trace = jnp.einsum("cdd,cc->", stats.scatter, g)
    num_classes, dim, _ = stats.scatter.shape

    def rho(v):
        return jnp.einsum("cab,bj,cj->ac", stats.scatter, v, root) @ root / trace

    def block(v):
        return jnp.einsum("cab,bc->ac", stats.scatter, v) * jnp.diag(g) / trace

    quadrature = funm.monte_carlo_funm_sym(
        spectral.von_neumann_funm, decomp.tridiag_sym(num_matvecs)
    )
    probes = stochtrace.sampler_signs(jnp.zeros((dim, num_classes)), num=num_probes)(key)
    at_once = spectral.PROBES_AT_ONCE
    return tuple(
        jax.lax.map(lambda v, m=m: quadrature(m, v), probes, batch_size=at_once)
        for m in (rho, block)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    print(f"devices: {jax.devices()}   32 probes × 64 matvecs, {args.keys} keys, n = {args.n}")
    for d, c, noise in CASES:
        features, labels, means = synthetic(jax.random.key(1), args.n, d, c, noise)
        stats = scatter.update(scatter.init(c, d), features, labels)
        g = it.gram(means)
        exact = scatter.measure(stats, means, method="exact")
        h_min = float(jnp.minimum(exact.h_features, exact.h_heads))
        h_block = float(block_entropy(stats, g))
        names = ("plain", "control variate", "deflated")
        errors, stderrs = {n: [] for n in names}, {n: [] for n in names}
        start, deflated_seconds = time.perf_counter(), 0.0
        for k in range(args.keys):
            key = jax.random.key(100 + k)
            q_rho, q_block = map(np.asarray, paired_quadratures(stats, g, key))
            for name, values, offset in (
                ("plain", q_rho, 0.0),
                ("control variate", q_rho - q_block, h_block),
            ):
                errors[name].append((offset + values.mean() - float(exact.h_joint)) / h_min)
                stderrs[name].append(values.std(ddof=1) / np.sqrt(len(values)) / h_min)
            tick = time.perf_counter()
            est, sem = jax.block_until_ready(deflated(stats, g, key, num_deflate=DEFLATE))
            deflated_seconds += time.perf_counter() - tick
            errors["deflated"].append((float(est) - float(exact.h_joint)) / h_min)
            stderrs["deflated"].append(float(sem) / h_min)
        seconds = (time.perf_counter() - start - deflated_seconds) / args.keys
        print(
            f"\nd={d} C={c} noise={noise}: H_joint = {float(exact.h_joint):.4f}, "
            f"H(B) = {h_block:.4f}; per key: plain + control variate {seconds:.1f} s, "
            f"deflated {deflated_seconds / args.keys:.1f} s"
        )
        for name in errors:
            e, s = np.array(errors[name]), np.array(stderrs[name])
            print(
                f"  {name:16s} MIR error rms {np.sqrt(np.mean(e**2)):.2e}  mean {e.mean():+.2e}  "
                f"mean SE {s.mean():.2e}  within 2 SE {np.mean(np.abs(e) <= 2 * s):.2f}"
            )


if __name__ == "__main__":
    main()
