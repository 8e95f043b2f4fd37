"""Demo: features and heads moving from random toward a simplex ETF (Neural Collapse).

    python -m interplay.trainers.studies.collapse_demo --workdir demo_out \
        [--num_classes 10 --dim 64 ...]

At step t of T, features are `(1−s)·noise + s·ETF[label]` and head rows
`(1−s)·random + s·ETF` with `s = t/T`; all steps are measured by one jitted
`vmap` of `interplay.infotheory.batch`. Prints H_features, H_heads, MI, MIR and HDR
beside the Neural-Collapse targets and writes `collapse.png`.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from absl import flags

from interplay import infotheory as it
from interplay.trainers.core import cli


def collapse_path(num_classes: int, per_class: int, dim: int, steps: int, seed: int):
    """Stacked `(steps, n, dim)` features and `(steps, C, dim)` heads along the path."""
    k_etf, k_noise, k_head = jax.random.split(jax.random.key(seed), 3)
    etf = it.simplex_etf(num_classes, dim, k_etf)
    labels = jnp.repeat(jnp.arange(num_classes), per_class)
    noise = jax.random.normal(k_noise, (labels.size, dim)) / jnp.sqrt(dim)
    random_head = jax.random.normal(k_head, (num_classes, dim)) / jnp.sqrt(dim)
    s = jnp.linspace(0, 1, steps)[:, None, None]
    return (1 - s) * noise + s * etf[labels], labels, (1 - s) * random_head + s * etf


def plot(path: pathlib.Path, s, metrics: it.Interplay, num_classes: int) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(s, metrics.mir, label="MIR")
    ax1.plot(s, metrics.hdr, label="HDR")
    ax1.axhline(float(it.nc_mir(num_classes)), ls="--", c="C0", lw=0.8, label="MIR at NC")
    ax1.axhline(0, ls="--", c="C1", lw=0.8, label="HDR at NC")
    ax1.set(xlabel="interpolation toward collapse s", ylabel="ratio", ylim=(-0.02, 1.02))
    ax1.legend()
    ax2.plot(s, metrics.h_features, label="H(G(Z)) features")
    ax2.plot(s, metrics.h_heads, label="H(G(W_Y)) heads")
    ax2.plot(s, metrics.mi, label="MI")
    ax2.axhline(jnp.log(num_classes - 1), ls="--", c="k", lw=0.8, label="log(C−1)")
    ax2.set(xlabel="interpolation toward collapse s", ylabel="nats")
    ax2.legend()
    fig.suptitle(f"Interplay on the way to Neural Collapse (C = {num_classes})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo(
    workdir: str | pathlib.Path,
    num_classes: int = 10,
    per_class: int = 50,
    dim: int = 64,
    steps: int = 11,
    seed: int = 0,
) -> None:
    """Prints the metrics along the path to collapse and writes `workdir/collapse.png`."""
    workdir = pathlib.Path(workdir)
    features, labels, heads = collapse_path(num_classes, per_class, dim, steps, seed)
    metrics = jax.jit(jax.vmap(it.interplay, in_axes=(0, None, 0)))(features, labels, heads)
    s = jnp.linspace(0, 1, steps)

    print(f"{'s':>5} {'H_features':>10} {'H_heads':>8} {'MI':>7} {'MIR':>6} {'HDR':>6}")
    for t in range(steps):
        print(
            f"{float(s[t]):5.2f} {float(metrics.h_features[t]):10.4f} "
            f"{float(metrics.h_heads[t]):8.4f} {float(metrics.mi[t]):7.4f} "
            f"{float(metrics.mir[t]):6.4f} {float(metrics.hdr[t]):6.4f}"
        )
    c = num_classes
    log_c = float(jnp.log(c - 1))
    print(
        f"{'NC':>5} {log_c:10.4f} {log_c:8.4f} {float(it.nc_interplay(c).mi):7.4f} "
        f"{float(it.nc_mir(c)):6.4f} {0:6.4f}   <- Neural-Collapse targets"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    plot(workdir / "collapse.png", s, metrics, c)
    print(f"plot: {workdir / 'collapse.png'}")


def main(argv) -> None:
    del argv
    f = flags.FLAGS
    demo(f.workdir, f.num_classes, f.per_class, f.dim, f.steps, f.seed)


if __name__ == "__main__":
    flags.DEFINE_string("workdir", "demo_out", "Directory of the plot.")
    flags.DEFINE_integer(
        "num_classes", 10, "Classes C (≥ 3: at C = 2 both entropies are 0).", lower_bound=3
    )
    flags.DEFINE_integer("per_class", 50, "Samples per class.", lower_bound=1)
    flags.DEFINE_integer("dim", 64, "Feature dimension (≥ C − 1 for a simplex ETF).", lower_bound=2)
    flags.DEFINE_integer("steps", 11, "Points on the path from random to collapse.", lower_bound=2)
    flags.DEFINE_integer("seed", 0, "PRNG seed.")
    cli.run(main)
