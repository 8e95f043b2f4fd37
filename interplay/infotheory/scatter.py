"""Whole-dataset interplay from streaming per-class scatter sums.

Accumulate (`init`, `update`, `merge`) the sufficient statistics

    S_c = Σ_{i: yᵢ = c} ẑᵢ ẑᵢᵀ   (C, d, d),   n_c = |{i: yᵢ = c}|,

then `measure` them against a head `W` (C, d'). With `ρ` denoting unit-trace:

* `H(G(Z))` from `Σ_c S_c` (d × d), the dual of the n × n Gram;
* `H(G(W_Y))` from `diag(√p) G(W) diag(√p)` (C × C), `p = n_c / n`;
* `H(G(Z) ⊙ G(W_Y))` from the class-scatter dual `Σ_c S_c ⊗ l_c l_cᵀ`
  (dC × dC), `L Lᵀ = G(W)` (rows `l_c`): the joint Gram is the Gram of the
  rows `ẑᵢ ⊗ l_{yᵢ}`, whose nonzero spectrum this matrix shares.

The n × n matrices are never formed. `update` is jittable and costs
`O((n + C·K)·d²)` per batch on CPU (class-sorted windows of `K` rows,
`add_class_sums`; one one-hot contraction on accelerators);
when its batch is sharded across devices, each device sums its rows and the
sums are all-reduced.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from interplay.infotheory import _checks, spectral
from interplay.infotheory._precision import full_precision
from interplay.infotheory._sharding import replicated_like, sample_axis
from interplay.infotheory.information import density, density_entropy
from interplay.infotheory.kernels import as_float, gram, normalize
from interplay.infotheory.results import Interplay
from interplay.infotheory.spectral import entropy_lanczos, psd_sqrt

#: Largest class-scatter dual `d·C` that `method="auto"` eigendecomposes, by backend: the
#: size one float32 eigendecomposition takes about 10 s (`benchmarks/exact_dual.py`,
#: docs/benchmarks.md): 6 144 on the 2-core CPU (10 s); 24 576 on an H100 (6.9 s; 32 768
#: took 15 s). Other backends (TPUs: not measured) take the CPU's.
EXACT_MAX_DIM = {"cpu": 6144, "gpu": 24576}


class ClassScatter(NamedTuple):
    """Streaming sufficient statistics: `scatter[c] = Σ_{yᵢ=c} ẑᵢẑᵢᵀ`, `counts[c] = n_c`."""

    scatter: jax.Array
    counts: jax.Array


def init(num_classes: int, dim: int, dtype: jnp.dtype = jnp.float32) -> ClassScatter:
    """Empty statistics for `num_classes` classes of `dim`-dimensional features:
    `counts = 0 (C,)`, `sums = 0 (C, d)`, `scatter S_c = 0 (C, d, d)`.

    >>> init(10, 4).scatter.shape
    (10, 4, 4)
    """
    if not (isinstance(num_classes, int) and isinstance(dim, int) and num_classes > 0 and dim > 0):
        raise ValueError(
            f"num_classes and dim must be positive integers, got {num_classes}, {dim}."
        )
    return ClassScatter(jnp.zeros((num_classes, dim, dim), dtype), jnp.zeros((num_classes,), dtype))


@full_precision
def update(
    stats: ClassScatter, features: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
) -> ClassScatter:
    """Adds a batch `(n, d)` with labels `(n,)` (and optional 0/1 `mask`) to `stats`.

    Jittable, in `O((n + C·K)·d²)` flops on CPU (see `add_class_sums`). Eagerly, bad values
    raise `ValueError`; under `jit` a non-finite feature or a label outside
    `[0, C)` makes the statistics (hence every measure of them) NaN.
    """
    features, labels, mask = _checks.arrays(features, labels, mask)
    _checks.check_rank("features", features, 2)
    num_classes, dim, _ = stats.scatter.shape
    if jnp.shape(features)[1] != dim:
        raise ValueError(f"features have dim {jnp.shape(features)[1]}, stats expect {dim}.")
    _checks.check_finite("features", features)
    _checks.check_labels(labels, num_classes, jnp.shape(features)[0])
    onehot = jax.nn.one_hot(labels, num_classes, dtype=stats.scatter.dtype)
    zn = normalize(features).astype(stats.scatter.dtype)
    if mask is not None:
        _checks.check_mask(mask, jnp.shape(features)[0], min_kept=0)
        mask = jnp.asarray(mask, zn.dtype)
        onehot, zn = onehot * mask[:, None], zn * mask[:, None]  # m² = m
    out = replicated_like(zn)  # sums over a sharded batch: all-reduce to every device
    counts = jnp.einsum("nc->c", onehot, out_sharding=out)
    return ClassScatter(
        add_class_sums(stats.scatter, zn, jnp.clip(labels, 0, num_classes - 1)),
        stats.counts + _checks.poison(counts, _checks.labels_valid(labels, num_classes)),
    )


#: Rows per product in `add_class_sums` (measured: `benchmarks/metrics.py` [5]).
WINDOW = 32


@full_precision
def add_class_sums(
    sums: jax.Array, z: jax.Array, labels: jax.Array, window: int = WINDOW
) -> jax.Array:
    """`sums[c] + Σ_{yᵢ=c} zᵢzᵢᵀ` for every class, `sums (C, d, d)`, labels in `[0, C)`.

    On CPU the rows, sorted by class, are read in windows of `K = window` rows
    that never cross a class boundary: class `c` takes `⌈n_c / K⌉` windows, at
    most `C + ⌈n/K⌉` in all (a static bound: a loop of fixed length), and each
    adds one `(K, d)ᵀ(K, d)` product to its class in place, `O((n + C·K)·d²)`
    flops against the one-hot contraction's `n·C·d²`. The contraction is kept
    where it is not dearer (`n·C ≤ 2·(n + C·K)`) and on other backends, where
    one large product beats a loop of small ones (`benchmarks/metrics.py` [5]
    times both, docs/benchmarks.md). On a batch sharded
    along its samples, each device sums its own rows (`shard_map`) and the sums
    are all-reduced.
    """
    num_classes, n = sums.shape[0], z.shape[0]
    if n * num_classes <= 2 * (n + num_classes * window):
        return _add_onehot(sums, z, labels)
    return jax.lax.platform_dependent(
        sums, z, labels, cpu=functools.partial(_add_sorted, window=window), default=_add_onehot
    )


def _add_onehot(sums, z, labels) -> jax.Array:
    onehot = jax.nn.one_hot(labels, sums.shape[0], dtype=z.dtype)
    return sums + jnp.einsum("nc,nd,ne->cde", onehot, z, z, out_sharding=replicated_like(z))


def _add_sorted(sums, z, labels, window: int) -> jax.Array:
    axis = sample_axis(z)
    if axis is None:
        return _add_windows(sums, z, labels, window)
    local = jax.shard_map(
        lambda z, y: jax.lax.psum(
            _add_windows(jnp.zeros(sums.shape, sums.dtype), z, y, window), axis
        ),
        mesh=jax.typeof(z).sharding.mesh,
        in_specs=(P(axis), P(axis)),
        out_specs=P(),
        check_vma=False,  # the loop's zero carry is not marked as varying per device
    )
    return sums + local(z, labels)


def _add_windows(sums, z, labels, window: int) -> jax.Array:
    num_classes, n = sums.shape[0], z.shape[0]
    order = jnp.argsort(labels, stable=True)
    rows = jnp.pad(z[order], ((0, window), (0, 0)))  # a window never reads past the end
    counts = jnp.bincount(labels, length=num_classes)
    starts = jnp.cumsum(counts) - counts
    windows = -(-counts // window)
    ends = jnp.cumsum(windows)  # class c owns windows [ends[c] - windows[c], ends[c])
    index = jnp.arange(window)

    def add_window(w, sums):
        c = jnp.minimum(jnp.searchsorted(ends, w, side="right"), num_classes - 1)
        offset = (w - ends[c] + windows[c]) * window
        kept = index < counts[c] - offset  # none for w past the last window
        block = jax.lax.dynamic_slice_in_dim(rows, starts[c] + offset, window)
        block = jnp.where(kept[:, None], block, 0)
        return sums.at[c].add(block.T @ block)

    return jax.lax.fori_loop(0, num_classes + -(-n // window), add_window, sums)


def merge(a: ClassScatter, b: ClassScatter) -> ClassScatter:
    """Statistics of the union of two disjoint sets of samples: `S_c = S_c^a + S_c^b`,
    counts and sums add likewise.

    >>> z, y = jnp.eye(4), jnp.array([0, 1, 0, 1])
    >>> whole = update(init(2, 4), z, y)
    >>> halves = merge(update(init(2, 4), z[:2], y[:2]), update(init(2, 4), z[2:], y[2:]))
    >>> bool(jnp.allclose(halves.scatter, whole.scatter))
    True
    """
    return jax.tree.map(jnp.add, a, b)


@full_precision
def head_entropy(counts: jax.Array, g_head: jax.Array) -> jax.Array:
    """`H(G(W_Y))` from class counts: eigenvalues of `diag(√p) G(W) diag(√p)`."""
    root = jnp.sqrt(counts)
    return density_entropy(density(root[:, None] * g_head * root[None, :]))


def _joint_factor(stats: ClassScatter, g_head: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`L = G(W)^{1/2}` and the trace of the class-scatter dual `Σ_c tr(S_c)·G(W)_cc`."""
    trace = jnp.einsum("cdd,cc->", stats.scatter, g_head)
    return psd_sqrt(g_head), jnp.where(trace > 0, trace, 1)


@full_precision
def joint_entropy_exact(stats: ClassScatter, g_head: jax.Array) -> jax.Array:
    """`H(G(Z) ⊙ G(W_Y))` by eigendecomposing the `(dC, dC)` class-scatter dual."""
    root, trace = _joint_factor(stats, g_head)
    num_classes, dim, _ = stats.scatter.shape
    dual = jnp.einsum("cab,ci,cj->aibj", stats.scatter, root, root)
    return density_entropy(dual.reshape(dim * num_classes, dim * num_classes) / trace)


@full_precision
def joint_entropy_lanczos(
    stats: ClassScatter,
    g_head: jax.Array,
    key: jax.Array,
    *,
    num_probes: int = spectral.NUM_PROBES,
    num_matvecs: int = spectral.NUM_MATVECS,
    num_deflate: int = spectral.NUM_DEFLATE,
) -> tuple[jax.Array, jax.Array]:
    """Stochastic Lanczos quadrature for the joint entropy, matrix-free.

    `spectral.entropy_lanczos` with `ρ = Σ_c S_c ⊗ l_c l_cᵀ / tr`: a matvec
    costs `O(C d² + d C²)` and never forms the `(dC, dC)` matrix.

    Returns:
      `(estimate, error)` as `spectral.entropy_lanczos`.
    """
    root, trace = _joint_factor(stats, g_head)
    num_classes, dim, _ = stats.scatter.shape

    def matvec(v, scatter, root, trace):  # v (d, C) ↦ Σ_c S_c v l_c l_cᵀ / tr
        return jnp.einsum("cab,bj,cj->ac", scatter, v, root) @ root / trace

    like = jnp.zeros((dim, num_classes), stats.scatter.dtype)
    return entropy_lanczos(
        matvec,
        like,
        key,
        stats.scatter,
        root,
        trace,
        num_probes=num_probes,
        num_matvecs=num_matvecs,
        num_deflate=num_deflate,
    )


@full_precision
def features_entropy(stats: ClassScatter) -> jax.Array:
    """`H(G(Z))` from the `(d, d)` dual `Σ_c S_c`."""
    return density_entropy(density(stats.scatter.sum(0)))


def choose_method(dim: int, num_classes: int, backend: str | None = None) -> str:
    """`"exact"` when the `(dC, dC)` dual has `dC ≤ EXACT_MAX_DIM[backend]` (default: JAX's
    default backend; 6 144 on a CPU, 24 576 on a GPU), else `"lanczos"`.

    >>> choose_method(64, 10), choose_method(512, 1000)
    ('exact', 'lanczos')
    >>> choose_method(512, 40, "cpu"), choose_method(512, 40, "gpu")
    ('lanczos', 'exact')
    """
    limit = EXACT_MAX_DIM.get(backend or jax.default_backend(), EXACT_MAX_DIM["cpu"])
    return "exact" if dim * num_classes <= limit else "lanczos"


@full_precision
def measure(
    stats: ClassScatter,
    head: ArrayLike,
    *,
    method: str = "exact",
    key: jax.Array | None = None,
    num_probes: int = spectral.NUM_PROBES,
    num_matvecs: int = spectral.NUM_MATVECS,
    num_deflate: int = spectral.NUM_DEFLATE,
    match_width: bool = True,
) -> Interplay:
    """Interplay of the accumulated features against `head` `(C, d')` (jitted inside).

    Args:
      stats: accumulated `ClassScatter`.
      head: class vectors as rows, `(C, d)` (a Flax Dense kernel: pass `kernel.T`).
      method: `"exact"` (eigendecompose the `(dC, dC)` dual), `"lanczos"`
        (stochastic Lanczos quadrature) or `"auto"` (`choose_method`: exact up to
        `dC` = 6 144 on a CPU and 24 576 on a GPU, where one eigendecomposition takes ≈ 10 s).
      key: PRNG key for the Lanczos probes (default `jax.random.key(0)`).
      num_probes: Lanczos probes.
      num_matvecs: Lanczos steps per probe.
      num_deflate: vectors near the top eigenvectors taken exactly before the
        probes (`spectral.entropy_lanczos`); 0 for plain Hutchinson.
      match_width: require `d' = d`; False measures against a head of another
        width on purpose (only `G(W)` enters).

    Returns:
      `Interplay`; `mi_stderr` is the Lanczos estimate's stated error
      (`spectral.entropy_lanczos`; 0 when exact).
      NaN when the statistics hold non-finite values (bad features or labels
      accumulated under `jit`).
    """
    num_classes, dim, _ = stats.scatter.shape
    head = _checks.arrays(head)
    _checks.check_head(head, num_classes, dim if match_width else None)
    if method == "auto":
        method = choose_method(dim, num_classes)
    if method not in ("exact", "lanczos"):
        raise ValueError(f'method must be "exact", "lanczos" or "auto", got {method!r}.')
    key = jax.random.key(0) if key is None else key
    return _measure(stats, head, key, method, num_probes, num_matvecs, num_deflate)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _measure(stats, head, key, method, num_probes, num_matvecs, num_deflate) -> Interplay:
    g_head = gram(as_float(head).astype(stats.scatter.dtype))
    stderr = None
    if method == "exact":
        h_joint = joint_entropy_exact(stats, g_head)
    else:
        h_joint, stderr = joint_entropy_lanczos(
            stats,
            g_head,
            key,
            num_probes=num_probes,
            num_matvecs=num_matvecs,
            num_deflate=num_deflate,
        )
    r = Interplay.from_entropies(
        features_entropy(stats), head_entropy(stats.counts, g_head), h_joint, stderr
    )
    finite = jnp.all(jnp.isfinite(stats.scatter)) & jnp.all(jnp.isfinite(stats.counts))
    return _checks.poison(r, finite)


@jax.jit
def class_entropies_from_scatter(stats: ClassScatter) -> jax.Array:
    """`H(G(Z_c))` of each class `(C,)` from its scatter `S_c` (NaN where `n_c = 0`)."""
    h = jax.vmap(lambda s: density_entropy(density(s)))(stats.scatter)
    return jnp.where(stats.counts > 0, h, jnp.nan)
