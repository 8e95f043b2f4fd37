"""Naive n × n formulation (the papers' code) against Interplay, side by side.

    make bench          # or: .venv/bin/python benchmarks/metrics.py [--quick]

1. One batch, n = 1024, d = 512, C = 100: three n × n eigendecompositions
   against `interplay.infotheory.batch` (feature dual d × d, heads C × C, joint n × n).
2. Whole dataset, n = 20 000, d = 256, C = 10, fed in batches: streaming class
   scatter + exact `(dC, dC)` dual. The naive form needs 20 000 × 20 000
   eigendecompositions; its cost is extrapolated (n³) from measured sizes.
3. n = 50 000, d = 512, C = 100 with Lanczos: time, memory, estimated error;
   the default estimate against the old one (32 probes × 64 steps, no
   deflation) in time (`--lanczos` prints only this). With `--quick` (n =
   5 000 < dC: the dual has a null space) also against the exact value, the
   5 000 × 5 000 joint Gram of all features at once (`interplay`); at full size
   with `--exact`, the exact 51 200² dual (10 GiB; on an 80 GB H100 the
   eigensolver's 29 GiB workspace beside it ran out of memory; an H200 did it).
4. The NaN-propagating checks of `interplay` against the same computation
   without them (printed first; `--checks` prints only this).
5. The class-scatter accumulation, one batch of n = 1000, d = 512 added in place
   to the sums: the one-hot contraction (`n·C·d²` flops) against the
   class-sorted windows (`(n + C·K)·d²`) at C = 10 and C = 100, and which of
   the two `scatter.add_class_sums` runs on this backend (`--accumulate`
   prints only this).
6. `--large-c` (alone, for its peak RSS): n = 20 000, d = 512, C = 1 000 with
   Lanczos, where `dataset_interplay` keeps the features (`n·d` numbers)
   instead of the class scatter (`C·d²`: 1 GiB) and applies the joint Gram
   matrix-free (in sample space: n < d·d'); with `--exact` also the exact
   value from the 20 000 × 20 000 joint Gram (after the RSS reading). Its time is also
   printed in units of a yardstick run in the same process (`yardstick`: `eigh` of a
   2 048² matrix), so runs on different days compare.
8. `--matvec`: one matvec of [6]'s joint Gram for 4 probes at once (as Lanczos runs them)
   in the class-block layout (`features_dual`) against the former layout, the n × d
   features sorted by class with a per-sample gather of `u_{yᵢ}` and a class segment-sum
   (kept here as the baseline), interleaved; and the share of the two `(d, r)·(r, C)`
   products in each.
7. `--precision` (alone): `interplay` with its matrix products at JAX's default
   precision (`_precision.MATMUL_PRECISION = None`) and at "highest" (the
   library's setting), each against a float64 NumPy reference, and their times.
   On CPU both are full float32; GPUs default to TF32, TPUs to bf16 passes.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from interplay import infotheory as it
from interplay.infotheory import _precision, scatter, spectral

interplay_module = importlib.import_module(
    "interplay.infotheory.batch"
)  # the package rebinds the name


def timeit(fn, *args, repeats: int = 5) -> float:
    """Median wall time of `fn(*args)` after one warm-up call, in seconds."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_naive(eigvalsh):
    """The papers' formulation: three n × n Grams, three n × n eigendecompositions."""

    def h(k):
        lam = eigvalsh(k / k.shape[0])
        lam = jnp.where(lam > 0, lam, 1)
        return -jnp.sum(lam * jnp.log(lam))

    @jax.jit
    def naive_interplay(features, labels, head):
        k1, k2 = it.gram(features), it.gram(head[labels])
        h1, h2, hj = h(k1), h(k2), h(k1 * k2)
        mi = h1 + h2 - hj
        return mi / jnp.minimum(h1, h2), jnp.abs(h1 - h2) / jnp.maximum(h1, h2)

    return naive_interplay


naive_interplay = make_naive(jnp.linalg.eigvalsh)


def synthetic(key, n, d, c, dtype=jnp.float32):
    """Features with class structure: class means plus noise; head near the means."""
    k1, k2, k3 = jax.random.split(key, 3)
    means = jax.random.normal(k1, (c, d), dtype)
    labels = jax.random.randint(k2, (n,), 0, c)
    return means[labels] + jax.random.normal(k3, (n, d), dtype), labels, means


def batches(key, n, d, c, means, batch_size):
    for k in jax.random.split(key, n // batch_size):
        k1, k2 = jax.random.split(k)
        labels = jax.random.randint(k2, (batch_size,), 0, c)
        yield means[labels] + jax.random.normal(k1, (batch_size, d)), labels


def stacked(data):
    """`(features, labels)` of a list of batches, concatenated."""
    return tuple(jnp.concatenate(x) for x in zip(*data, strict=True))


def temp_bytes(fn, *args) -> int:
    return fn.lower(*args).compile().memory_analysis().temp_size_in_bytes


def bench_batch() -> None:
    features, labels, head = synthetic(jax.random.key(0), 1024, 512, 100)
    ours = jax.jit(it.interplay)
    t_naive, t_ours = (
        timeit(naive_interplay, features, labels, head),
        timeit(ours, features, labels, head),
    )
    mir_n, hdr_n = naive_interplay(features, labels, head)
    r = ours(features, labels, head)
    print("\n[1] one batch  n=1024 d=512 C=100")
    args = (features, labels, head)
    mib_naive, mib_ours = (
        temp_bytes(naive_interplay, *args) / 2**20,
        temp_bytes(ours, *args) / 2**20,
    )
    print(f"  naive (3 × eigh 1024)    {t_naive * 1e3:8.1f} ms   temp {mib_naive:6.1f} MiB")
    print(f"  interplay                {t_ours * 1e3:8.1f} ms   temp {mib_ours:6.1f} MiB")
    naive_fast = make_naive(spectral.eigvalsh)
    t_fast = timeit(naive_fast, features, labels, head)
    print(f"  naive, fast eigvalsh     {t_fast * 1e3:8.1f} ms   (same eigensolver as interplay)")
    print(f"  speed-up                 {t_naive / t_ours:8.2f}x   (target ≥ 2.5x)")
    print(
        f"    of which structure     {t_fast / t_ours:8.2f}x   eigensolver {t_naive / t_fast:.2f}x"
    )
    print(f"  |ΔMIR| = {abs(float(mir_n - r.mir)):.2e}   |ΔHDR| = {abs(float(hdr_n - r.hdr)):.2e}")


def _unchecked_normalize(x):
    """The former `normalize`: `x / ‖x‖` from `Σx²` directly, NaN rows zeroed."""
    sq = jnp.sum(x * x, axis=-1, keepdims=True)
    return jnp.where(sq > 0, x * jax.lax.rsqrt(jnp.where(sq > 0, sq, 1)), 0)


@jax.jit
def unchecked_interplay(features, labels, head, mask):
    """`interplay` without its NaN propagation (rescaled normalize, label/mask poisoning)."""
    zn = _unchecked_normalize(features) * mask[:, None]
    return interplay_module._from_normalized(zn, labels, head, mask)


def interleaved(fns: dict, args, repeats: int = 15) -> dict[str, float]:
    """Median times of several functions, run alternately so drift hits them alike."""
    for fn in fns.values():
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def bench_checks() -> None:
    """The cost of NaN propagation in the jitted batch metric (target ≤ 5 %)."""
    print("\n[4] NaN-propagating checks in the jitted batch metric (median of 15, interleaved)")
    for n, d, c in ((1024, 512, 100), (256, 128, 10)):
        features, labels, head = synthetic(jax.random.key(0), n, d, c)
        mask = jnp.ones(n)
        t = interleaved(
            {"checked": jax.jit(interplay_module._interplay), "unchecked": unchecked_interplay},
            (features, labels, head, mask),
        )
        print(
            f"  n={n} d={d} C={c}: checked {t['checked'] * 1e3:7.2f} ms, unchecked "
            f"{t['unchecked'] * 1e3:7.2f} ms, ratio {t['checked'] / t['unchecked']:.3f}"
        )


def bench_dataset(n: int) -> None:
    d, c, bs = 256, 10, 1000
    _, _, means = synthetic(jax.random.key(1), 2, d, c)
    data = list(batches(jax.random.key(2), n, d, c, means, bs))
    jax.block_until_ready(data)
    it.dataset_interplay(data[:2], means, num_classes=c, method="exact")  # compile what is timed
    start = time.perf_counter()
    r = it.dataset_interplay(data, means, num_classes=c, method="exact")
    jax.block_until_ready(r)
    t_ours = time.perf_counter() - start
    print(f"\n[2] whole dataset  n={n} d={d} C={c}  (batches of {bs}, exact)")
    print(f"  interplay streaming+exact {t_ours:8.2f} s   (target ≤ 10 s)")
    print(f"  MIR = {float(r.mir):.4f}   HDR = {float(r.hdr):.4f}")
    # Naive: time 3 × eigh at growing n and extrapolate the cubic to n.
    sizes = (1024, 2048, 4096)
    times = []
    for m in sizes:
        f, y, _ = synthetic(jax.random.key(3), m, d, c)
        times.append(timeit(naive_interplay, f, y, means, repeats=1))
    slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
    t_naive = times[-1] * (n / sizes[-1]) ** 3
    measured = ", ".join(f"n={m}: {t:.2f} s" for m, t in zip(sizes, times, strict=True))
    print(f"  naive measured: {measured}  (log-log slope {slope:.2f})")
    print(
        f"  naive at n={n}: ≈{t_naive / 60:.0f} min extrapolated (n³), "
        f"3 × {n}² float32 matrices = {3 * n * n * 4 / 2**30:.1f} GiB + eigh workspace; not run"
    )
    print(f"  speed-up (extrapolated)  {t_naive / t_ours:8.0f}x")
    # Exactness against the naive form at the largest size it runs at.
    f, y, _ = synthetic(jax.random.key(3), sizes[-1], d, c)
    mir_n, _ = naive_interplay(f, y, means)
    r_small = it.dataset_interplay([(f, y)], means, num_classes=c)
    print(f"  at n={sizes[-1]}: |ΔMIR| streaming vs naive = {abs(float(mir_n - r_small.mir)):.2e}")


#: Largest n whose n × n joint Gram [3] eigendecomposes for an exact reference.
EXACT_GRAM = 8192


def bench_lanczos(n: int, exact: bool = False) -> None:
    d, c, bs = 512, 100, 1000
    _, _, means = synthetic(jax.random.key(4), 2, d, c)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    stats = scatter.init(c, d)
    update = jax.jit(scatter.update, donate_argnums=0)
    data = batches(jax.random.key(5), n, d, c, means, bs)
    if n <= EXACT_GRAM:
        data = list(data)
    start = time.perf_counter()
    for f, y in data:
        stats = update(stats, f, y)
    jax.block_until_ready(stats)
    t_acc = time.perf_counter() - start
    g = it.gram(means)
    lanczos = jax.jit(
        scatter.joint_entropy_lanczos,
        static_argnames=("num_probes", "num_matvecs", "num_deflate"),
    )
    args = (stats, g, jax.random.key(6))
    old = dict(num_probes=32, num_matvecs=64, num_deflate=0)  # the default before
    times, results = {}, {}
    for name, kwargs in (("old", old), ("default", {})):
        jax.block_until_ready(lanczos(*args, **kwargs))
        start = time.perf_counter()
        results[name] = jax.block_until_ready(lanczos(*args, **kwargs))
        times[name] = time.perf_counter() - start
    r = it.Interplay.from_entropies(
        scatter.features_entropy(stats), scatter.head_entropy(stats.counts, g), *results["default"]
    )
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    h_min = float(jnp.minimum(r.h_features, r.h_heads))
    print(f"\n[3] n={n} d={d} C={c} with Lanczos (dual dC = {d * c})")
    print(
        f"  accumulate {t_acc:6.2f} s   Lanczos, default ({spectral.NUM_PROBES} probes × "
        f"{spectral.NUM_MATVECS} steps, {spectral.NUM_DEFLATE} deflated) {times['default']:6.2f} s"
        f" = {times['default'] / times['old']:.2f}× the old 32 × 64 ({times['old']:.2f} s)"
    )
    print(
        f"  statistics {stats.scatter.nbytes / 2**20:.0f} MiB   "
        f"Lanczos temp {temp_bytes(lanczos, *args) / 2**20:.0f} MiB   "
        f"peak RSS {rss1:.0f} MiB (before: {rss0:.0f} MiB)"
    )
    for name, (h, e) in results.items():
        print(
            f"  {name:8s} H_joint = {float(h):.4f} ± {float(e):.4f} (stated error), "
            f"MIR ± {float(e) / h_min:.4f}"
        )
    print(f"  MIR = {float(r.mir):.4f} (default estimate)   HDR = {float(r.hdr):.4f} (exact)")
    if n > EXACT_GRAM and not exact:
        print(f"  exact would need eigh of {n}² or {d * c}² (`--exact`): not run")
        return
    start = time.perf_counter()
    if n <= EXACT_GRAM:
        ref, what = it.interplay(*stacked(data), means), "n × n joint Gram"
    else:
        ref, what = scatter.measure(stats, means, method="exact"), f"{d * c}² dual"
    seconds = time.perf_counter() - start
    print_exact(ref, what, seconds, {name: h for name, (h, _) in results.items()}, h_min)


def print_exact(ref, what: str, seconds: float, estimates: dict, h_min: float) -> None:
    """The exact reference and each estimate's error, `ΔH_joint / min(H_features, H_heads)`
    (as in `lanczos_accuracy.py`; with exact H_features and H_heads, MIR moves by minus it)."""
    print(
        f"  exact    H_joint = {float(ref.h_joint):.4f} ({what}, {seconds:.0f} s), MIR = "
        f"{float(ref.mir):.4f}; ΔH_joint / min(H): "
        + ", ".join(
            f"{name} {(float(h) - float(ref.h_joint)) / h_min:+.4f}"
            for name, h in estimates.items()
        )
    )


def onehot_update(sums, z, labels):
    """The former accumulation: one-hot `(n, C)` against `z ⊗ z`, `n·C·d²` flops."""
    onehot = jax.nn.one_hot(labels, sums.shape[0], dtype=z.dtype)
    return sums + jnp.einsum("nc,nd,ne->cde", onehot, z, z)


def bench_accumulate() -> None:
    n, d = 1000, 512
    print(f"\n[5] class-scatter accumulation, one batch n={n} d={d} into (C, d, d) sums, in place")
    for c in (10, 100):
        features, labels, _ = synthetic(jax.random.key(7), n, d, c)
        z = it.normalize(features)
        fns = {
            "one-hot": jax.jit(onehot_update, donate_argnums=0),
            "sorted": jax.jit(
                functools.partial(scatter._add_sorted, window=scatter.WINDOW), donate_argnums=0
            ),
        }
        sums = {name: jnp.zeros((c, d, d)) for name in fns}
        times = {name: [] for name in fns}
        for _ in range(8):  # interleaved, the first round compiles
            for name, fn in fns.items():
                start = time.perf_counter()
                sums[name] = jax.block_until_ready(fn(sums[name], z, labels))
                times[name].append(time.perf_counter() - start)
        t = {name: float(np.median(ts[1:])) for name, ts in times.items()}
        err = float(jnp.max(jnp.abs(sums["sorted"] - sums["one-hot"]))) / 8
        print(
            f"  C={c:3d}: one-hot {t['one-hot'] * 1e3:7.1f} ms   class-sorted "
            f"{t['sorted'] * 1e3:7.1f} ms   ratio {t['one-hot'] / t['sorted']:5.1f}x   "
            f"max |Δ| per batch {err:.1e}   (targets: ≥ 10x at C=100, ≥ 1x at C=10)"
        )
    print(
        f"  `scatter.update` runs the class-sorted form on CPU, the one-hot one elsewhere "
        f"(here: {jax.default_backend()})"
    )


def bench_large_c(exact: bool, n: int = 20000, d: int = 512, c: int = 1000) -> None:
    _, _, means = synthetic(jax.random.key(8), 2, d, c)
    data = list(batches(jax.random.key(9), n, d, c, means, 1000))
    unit = yardstick()
    start = time.perf_counter()
    r = jax.block_until_ready(it.dataset_interplay(data, means, num_classes=c))
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"\n    yardstick (eigh of 2 048²) {unit:.2f} s: [6] took {seconds / unit:.0f} yardsticks"
    )
    print(
        f"\n[6] n={n} d={d} C={c}, Lanczos ({spectral.NUM_PROBES} probes × "
        f"{spectral.NUM_MATVECS} steps, {spectral.NUM_DEFLATE} deflated) on the kept features"
    )
    print(
        f"  {seconds:.1f} s (compile included)   peak RSS of the process {rss:.2f} GiB   "
        f"features {n * d * 4 / 2**20:.0f} MiB, "
        f"class scatter would be {c * d * d * 4 / 2**30:.1f} GiB"
    )
    h_min = float(jnp.minimum(r.h_features, r.h_heads))
    print(
        f"  H_joint = {float(r.h_joint):.4f}   MIR = {float(r.mir):.4f} ± "
        f"{float(r.mi_stderr) / h_min:.4f} (stated error)   HDR = {float(r.hdr):.4f} (exact)"
    )
    if exact:  # after the RSS reading: the n × n joint Gram takes n² numbers
        start = time.perf_counter()
        ref = it.interplay(*stacked(data), means)
        seconds = time.perf_counter() - start
        print_exact(ref, "n × n joint Gram", seconds, {"default": r.h_joint}, h_min)


def yardstick() -> float:
    """Seconds of `jnp.linalg.eigh` of a fixed 2 048² symmetric matrix (median of 3)."""
    a = jax.random.normal(jax.random.key(0), (2048, 2048))
    return timeit(jax.jit(lambda m: jnp.linalg.eigh(m @ m.T)[0]), a, repeats=3)


def _former_sample_matvec(t, features, labels, factor):
    """The former layout's `Aᵀ A t`: features `(n, d)` sorted by class, a gather of
    `u_{yᵢ}` per sample and a class segment-sum (the baseline of [8])."""
    w = jax.ops.segment_sum(features * t[:, None], labels, factor.shape[0], indices_are_sorted=True)
    u = (w.T @ factor) @ factor.T
    return jnp.sum(features * u.T[labels], axis=1)


def bench_matvec(n: int = 20000, d: int = 512, c: int = 1000) -> None:
    from interplay.infotheory import features_dual

    features, labels, means = synthetic(jax.random.key(8), n, d, c)
    kept = features_dual.keep(features, labels, c)
    factor = features_dual.head_factor(means)
    order = jnp.argsort(labels, stable=True)
    sorted_features, sorted_labels = it.normalize(features)[order], labels[order]
    probes = jax.random.rademacher(jax.random.key(1), (spectral.PROBES_AT_ONCE, n), jnp.float32)
    new = jax.jit(jax.vmap(lambda t: features_dual.sample_matvec(t, kept, factor, 1.0)))
    old = jax.jit(
        jax.vmap(lambda t: _former_sample_matvec(t, sorted_features, sorted_labels, factor))
    )
    np.testing.assert_allclose(new(probes), old(probes), rtol=2e-3, atol=2e-3)
    v = jax.random.normal(jax.random.key(2), (spectral.PROBES_AT_ONCE, d, factor.shape[1]))
    products = jax.jit(jax.vmap(lambda v: (v @ factor.T) @ factor))
    times = interleaved({"class blocks": new, "former": old}, (probes,), repeats=9)
    share = timeit(products, v, repeats=9)
    print(
        f"\n[8] one matvec for {spectral.PROBES_AT_ONCE} probes, n={n} d={d} C={c}, "
        f"{kept.blocks.shape[0]} blocks of {kept.blocks.shape[1]} rows"
    )
    for name, seconds in times.items():
        print(
            f"  {name:>12}: {1e3 * seconds:7.1f} ms   "
            f"the two products {100 * share / seconds:4.1f} %"
        )
    print(f"  speed-up {times['former'] / times['class blocks']:.2f}×")


def float64_interplay(features, labels, head) -> tuple[float, float]:
    """(MIR, HDR) from three float64 NumPy n × n eigendecompositions (the papers' form)."""

    def unit_gram(x):
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        return x @ x.T

    def h(k):
        lam = np.linalg.eigvalsh(k / len(k))
        lam = lam[lam > 0]
        return -np.sum(lam * np.log(lam))

    k1 = unit_gram(np.asarray(features, np.float64))
    k2 = unit_gram(np.asarray(head, np.float64)[np.asarray(labels)])
    h1, h2, hj = h(k1), h(k2), h(k1 * k2)
    return (h1 + h2 - hj) / min(h1, h2), abs(h1 - h2) / max(h1, h2)


def bench_precision() -> None:
    print(
        "\n[7] float32 matmul precision: `interplay` against float64 NumPy (median of 15) with"
        " `_precision.MATMUL_PRECISION` None (JAX's default) and 'highest' (the library's)"
    )
    for n, d, c in ((1024, 512, 100), (4096, 256, 10)):
        features, labels, head = synthetic(jax.random.key(1), n, d, c)
        mir, hdr = float64_interplay(features, labels, head)
        times = {}
        for setting in (None, "highest"):
            _precision.MATMUL_PRECISION = setting
            measured = jax.jit(lambda *args: it.interplay(*args))  # traced anew per setting
            r = measured(features, labels, head)
            times[setting] = timeit(measured, features, labels, head, repeats=15)
            print(
                f"  n={n} d={d} C={c} {str(setting):8s} {times[setting] * 1e3:8.2f} ms   "
                f"ΔMIR {float(r.mir) - mir:+.1e}   ΔHDR {float(r.hdr) - hdr:+.1e}"
            )
        print(f"  highest / default time {times['highest'] / times[None]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller n for a smoke run")
    parser.add_argument("--checks", action="store_true", help="only [4], the cost of checks")
    parser.add_argument("--accumulate", action="store_true", help="only [5], the accumulation")
    parser.add_argument("--lanczos", action="store_true", help="only [3], Lanczos at dC = 51 200")
    parser.add_argument("--large-c", action="store_true", help="only [6], C = 1000 (its own RSS)")
    parser.add_argument("--precision", action="store_true", help="only [7], matmul precision")
    parser.add_argument("--matvec", action="store_true", help="only [8], the C = 1000 matvec")
    parser.add_argument(
        "--exact",
        action="store_true",
        help="with --lanczos / --large-c: also the exact value (51 200² dual / 20 000² joint Gram)",
    )
    args = parser.parse_args()
    print(f"devices: {jax.devices()}")
    if args.lanczos:
        bench_lanczos(5000 if args.quick else 50000, args.exact)
        return
    if args.large_c:
        bench_large_c(args.exact)
        return
    if args.matvec:
        bench_matvec()
        return
    if args.accumulate:
        bench_accumulate()
        return
    if args.precision:
        bench_precision()
        return
    bench_checks()
    if args.checks:
        return
    bench_batch()
    bench_dataset(4000 if args.quick else 20000)
    bench_lanczos(5000 if args.quick else 50000)
    bench_accumulate()


if __name__ == "__main__":
    main()
