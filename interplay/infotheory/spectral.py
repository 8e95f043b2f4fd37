"""Spectral functions of symmetric PSD matrices with gap-free derivatives.

`jnp.linalg.eigh`'s JVP divides by eigenvalue gaps and is NaN wherever the
spectrum is degenerate (Neural Collapse, rank one, duplicated rows). The trace
functions here differentiate as spectral functions instead,

    d tr f(M) = tr(f'(M) dM),  f'(M) = U diag(f'(λ)) Uᵀ,

which needs no gaps (Lewis, "Derivatives of spectral functions", 1996).

On CPU, under `vmap` every eigendecomposition (and QR) here runs as a loop over
the batch (`jax.custom_batching.sequential_vmap`), so LAPACK never receives a
batch: jaxlib splits a batched LAPACK call into tasks on the intra-op thread
pool and blocks a pool thread until they finish; two such calls running at once
on a 2-core machine hold both pool threads and wait forever (seen vmapping
analysis over checkpoints, and reported by others for vmap graphs). On other
backends (`jax.lax.platform_dependent`) the batch goes to the batched solver,
since a loop launches one small kernel after another (docs/benchmarks.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import sequential_vmap
from jax.scipy.linalg import eigh_tridiagonal
from matfree import decomp


def eigenvalue_floor(dtype: jnp.dtype) -> float:
    """Floor ε on eigenvalues inside derivatives: `10 · eps(dtype)`.

    The derivative of `-λ log λ` is unbounded at λ = 0; tangents use
    `f'(max(λ, ε))`. Values are computed without it. Directions with λ < ε are
    those that Gram matrices of features cannot reach to first order (their
    null space), so the clipped tangent changes no reachable gradient beyond
    round-off.
    """
    return 10 * float(jnp.finfo(dtype).eps)


def rank_tolerance(lam: jax.Array) -> jax.Array:
    """`k · eps · max λ` for `k` eigenvalues `lam`: smaller ones are round-off (as numpy's rank)."""
    return lam.shape[-1] * jnp.finfo(lam.dtype).eps * jnp.max(lam)


def null_tolerance(lam: jax.Array) -> jax.Array:
    """`√k · eps · max λ`: below it, eigenvalues of α < 1 summands count as zero.

    For α < 1, `λ^α` amplifies round-off in the null space, so a cut-off is
    needed; `√k` is the typical (not worst-case `k`) growth of eigenvalue
    round-off. Measured against float64 NumPy (tests/test_numerics.py), float32
    input stays within 1e-4 nats for α ∈ {0.5, 0.9, 1.01, 2} on square Gaussian
    data up to n = 512 (the cut-off `k · eps · max λ` lost 1.6e-4 at n = 512,
    α = 0.5) and on rank-deficient Grams. Where the spectrum has eigenvalues at
    float32 round-off (e.g. an RBF Gram of ETF features with noise 0.01: 500
    eigenvalues spanning 1 to 1e-7 of λ_max), float32 cannot resolve them: α =
    0.5 is off by −2.6e-2 nats there; use float64 (`jax_enable_x64`).
    """
    return jnp.sqrt(lam.shape[-1]) * jnp.finfo(lam.dtype).eps * jnp.max(lam)


def _f(alpha: float, lam: jax.Array) -> jax.Array:
    """Summand of the trace: `-λ log λ` at α = 1, `λ^α` otherwise (0 for λ ≤ 0).

    For α < 1, eigenvalues below `null_tolerance` count as zero.
    """
    pos = lam > (null_tolerance(lam) if alpha < 1 else 0)
    safe = jnp.where(pos, lam, 1)
    value = -safe * jnp.log(safe) if alpha == 1 else safe**alpha
    return jnp.where(pos, value, 0)


def _f_prime(alpha: float, lam: jax.Array) -> jax.Array:
    """Derivative of `_f` at `max(λ, ε)`."""
    lam = jnp.maximum(lam, eigenvalue_floor(lam.dtype))
    return -(1 + jnp.log(lam)) if alpha == 1 else alpha * lam ** (alpha - 1)


def _eigvalsh_tridiagonal(m: jax.Array) -> jax.Array:
    _, diag, off_diag, _ = jax.lax.linalg.tridiagonal(m)
    return eigh_tridiagonal(diag, off_diag, eigvals_only=True)


def _looped_on_cpu(fn, cpu=None):
    """`fn` (or `cpu` on CPU): a loop under `vmap` on CPU (module docstring), batched elsewhere."""
    batched = lambda m: fn(m)  # noqa: E731  (jnp.linalg's jitted functions fail as branches)
    looped = sequential_vmap(cpu or batched)
    return lambda m: jax.lax.platform_dependent(m, cpu=looped, default=batched)


_eigh = _looped_on_cpu(jnp.linalg.eigh)


def eigh(m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`m = U diag(λ) Uᵀ`: `jnp.linalg.eigh` (ascending λ, eigenvectors as columns of U),
    looped on CPU under vmap.

    >>> eigh(jnp.array([[2.0, 1.0], [1.0, 2.0]]))[0].round(4)
    Array([1., 3.], dtype=float32)
    """
    return _eigh(m)


def psd_pinv(m: jax.Array) -> jax.Array:
    """Pseudo-inverse of a symmetric PSD matrix; eigenvalues below `k·eps·λ_max` are dropped.
    NaN when `m` is not finite (LAPACK may return finite eigenpairs of a NaN matrix)."""
    lam, u = eigh(m)
    big = lam > rank_tolerance(lam)
    pinv = (u * jnp.where(big, 1 / jnp.where(big, lam, 1), 0)) @ u.T
    return jnp.where(jnp.all(jnp.isfinite(m)), pinv, jnp.nan)


# On CPU, smaller matrices go to LAPACK: bisection saves under a millisecond per call there
# and costs about a second more to compile (docs/benchmarks.md).
TRIDIAGONAL_MIN_DIM = 512


def _eigvalsh_cpu(m: jax.Array) -> jax.Array:
    if m.shape[-1] < TRIDIAGONAL_MIN_DIM:
        return jnp.linalg.eigvalsh(m)
    return _eigvalsh_tridiagonal(m)


_eigvalsh = _looped_on_cpu(jnp.linalg.eigvalsh, cpu=_eigvalsh_cpu)


def eigvalsh(m: jax.Array) -> jax.Array:
    """Eigenvalues `λ` of symmetric `m = U diag(λ) Uᵀ`, ascending.

    >>> eigvalsh(jnp.array([[2.0, 1.0], [1.0, 2.0]])).round(4)
    Array([1., 3.], dtype=float32)

    On CPU from `TRIDIAGONAL_MIN_DIM` up by Householder tridiagonalization and
    bisection, which skips the eigenvectors that `jnp.linalg.eigvalsh` forms anyway;
    a loop under vmap. Smaller on CPU, and on other backends, `jnp.linalg.eigvalsh`.
    """
    if m.shape[-1] < 2:
        return jnp.linalg.eigvalsh(m)
    return _eigvalsh(m)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def trace_function(alpha: float, m: jax.Array) -> jax.Array:
    """`Σᵢ f(λᵢ)` over the eigenvalues of symmetric `m`, f as in `_f`.

    Args:
      alpha: 1 for the von Neumann summand `-λ log λ`, else the power `λ^α`.
      m: symmetric PSD matrix `(k, k)`.

    Returns:
      The scalar trace `tr f(m)`; NaN when `m` is not PSD beyond round-off
      (an eigenvalue below `−k · eps · max λ`).
    """
    return _trace(alpha, eigvalsh(m))


def _trace(alpha: float, lam: jax.Array) -> jax.Array:
    psd = lam[0] >= -rank_tolerance(jnp.abs(lam))
    return jnp.where(psd, jnp.sum(_f(alpha, lam)), jnp.nan)


@trace_function.defjvp
def _trace_function_jvp(alpha, primals, tangents):
    (m,), (dm,) = primals, tangents
    lam, u = eigh(m)
    grad = (u * _f_prime(alpha, lam)) @ u.T
    return _trace(alpha, lam), jnp.sum(grad * dm)


@jax.custom_jvp
def psd_sqrt(g: jax.Array) -> jax.Array:
    """Symmetric square root `G^{1/2} = U diag(√λ) Uᵀ` of a PSD matrix.

    Its JVP is the Daleckii–Krein divided difference `dL = U (Uᵀ dG U ⊘ (√λᵢ + √λⱼ)) Uᵀ`,
    finite at repeated eigenvalues. Where both eigenvalues are zero the entry is
    set to 0: for `G = W Wᵀ` any first-order `dG` vanishes there.
    """
    lam, u = eigh(g)
    return (u * jnp.sqrt(jnp.maximum(lam, 0))) @ u.T


@psd_sqrt.defjvp
def _psd_sqrt_jvp(primals, tangents):
    (g,), (dg,) = primals, tangents
    lam, u = eigh(g)
    root = jnp.sqrt(jnp.maximum(lam, 0))
    denom = root[:, None] + root[None, :]
    ok = denom > eigenvalue_floor(g.dtype)
    inner = jnp.where(ok, (u.T @ dg @ u) / jnp.where(ok, denom, 1), 0)
    return (u * root) @ u.T, u @ inner @ u.T


def gauss_radau_bracket(tridiagonal: jax.Array, beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gauss and Gauss–Radau quadratures of `e₁ᵀ f(ρ) e₁`, `f(λ) = −λ log λ`, from one Lanczos run.

    Gauss is `e₁ᵀ f(T) e₁` for the Lanczos tridiagonal `T` (m × m). Gauss–Radau
    prescribes a node at 0: `T̃ = [[T, β e_m], [β e_mᵀ, α̃]]`, `α̃ = β² (T⁻¹)_mm`,
    `β` the norm of the Lanczos residual, and is `e₁ᵀ f(T̃) e₁`. As every
    even derivative of `f` is negative and every odd one (from the third)
    positive on (0, ∞), Gauss overestimates and Gauss–Radau underestimates (the
    remainder formulas of Golub & Meurant, "Matrices, Moments and Quadrature",
    2010, ch. 6; `f` is singular at 0 itself, so tests check the bracket against
    exact values), and the two bracket the integral for a spectrum in `[0, 1]`
    (a density matrix). Where `T̃` has a node above 1 (a Ritz value of `T` at
    round-off, e.g. rank-deficient `ρ`), the Radau rule is not trusted and
    Gauss is returned for both.

    Returns:
      `(gauss, radau)` for a unit start vector.
    """
    m = tridiagonal.shape[0]
    theta, u = eigh(tridiagonal)
    gauss = jnp.sum(u[0] ** 2 * _f(1.0, theta))
    inverse_mm = jnp.sum(u[-1] ** 2 / jnp.maximum(theta, rank_tolerance(theta)))
    edge = jnp.zeros((m, 1), tridiagonal.dtype).at[-1].set(beta)
    corner = jnp.reshape(beta**2 * inverse_mm, (1, 1))
    extended = jnp.block([[tridiagonal, edge], [edge.T, corner]])
    nodes, w = eigh(extended)
    radau = jnp.sum(w[0] ** 2 * _f(1.0, nodes))
    inside = nodes[-1] <= 1 + rank_tolerance(nodes)
    return gauss, jnp.where(inside, radau, gauss)


#: Lanczos probes run at once in `entropy_lanczos` (memory: `num_matvecs` vectors each).
PROBES_AT_ONCE = 4

#: Defaults of every Lanczos estimate (`entropy_lanczos`), from the error-vs-matvecs
#: tables of `benchmarks/lanczos_accuracy.py` (`docs/lanczos_accuracy.md`).
NUM_PROBES = 256
NUM_MATVECS = 16
NUM_DEFLATE = 128
DEFLATE_ITERS = 3
#: Lanczos steps from each deflation vector: it starts near an eigenvector, so the
#: quadrature converges fast (bracket half-width of the whole top part 5e-6 in MIR at 4
#: steps on the benchmark's d = 64, C = 96 case, against 2e-3 of probe error).
TOP_MATVECS = 4


_orthonormal_columns = _looped_on_cpu(lambda m: jnp.linalg.qr(m)[0])  # Q of QR, as `eigh`


def _dominant_subspace(apply, like: jax.Array, key: jax.Array, size: int, iters: int):
    """Orthonormal `Q` `(size, *like.shape)` near the top eigenvectors of `ρ`:
    `iters` rounds of subspace iteration `Y ← ρ·orth(Y)` from a Gaussian block."""

    def orth(y):
        return _orthonormal_columns(y.reshape(size, -1).T).T.reshape(y.shape)

    y = jax.random.normal(key, (size, *like.shape), like.dtype)
    for _ in range(iters):
        y = apply(orth(y))
    return orth(y)


def entropy_lanczos(
    matvec,
    like: jax.Array,
    key: jax.Array,
    *operands,
    num_probes: int = NUM_PROBES,
    num_matvecs: int = NUM_MATVECS,
    num_deflate: int = NUM_DEFLATE,
    deflate_iters: int = DEFLATE_ITERS,
) -> tuple[jax.Array, jax.Array]:
    """Stochastic Lanczos quadrature of `tr(−ρ log ρ)`, density matrix `ρ` (`v ↦ ρv`), deflated.

    `tr f(ρ) = Σ_i q_iᵀ f(ρ) q_i + E[(Pv)ᵀ f(ρ) (Pv)]`, `P = I − QQᵀ` (Hutch++'s
    split): `Q` holds `num_deflate = k` orthonormal vectors near the top
    eigenvectors (`deflate_iters` rounds of subspace iteration), the mean runs
    over `num_probes` Rademacher probes `v` shaped like `like`, and every
    `uᵀ f(ρ) u` is bracketed by the Gauss and Gauss–Radau quadratures of one
    Lanczos run (`gauss_radau_bracket`; matfree, full reorthogonalization) and
    estimated by their midpoint: `num_matvecs` steps from each probe,
    `TOP_MATVECS` from each `q_i`; `matvec(v, *operands)`.
    The top eigenvalues carry most of `‖f(ρ)‖_F`, hence of the probe variance:
    the probes see only the rest. The split is unbiased for any `Q`; a better
    `Q` only lowers the variance. `k = 0` is plain Hutchinson; `k ≥ like.size`
    the exact entropy (Rayleigh–Ritz on a complete basis).

    Cost: `num_probes·num_matvecs + k·(deflate_iters + TOP_MATVECS)` matvecs, run
    `PROBES_AT_ONCE` at a time. Memory: `k·like.size` numbers for `Q`, and
    `num_matvecs·like.size` for each vector in flight.

    Returns:
      `(estimate, error)`, `error = √(s² + h²)`: `s` the probes' standard error
      (sample std of the midpoints, ddof 1, / √num_probes) and `h` the half-width
      of the summed brackets, a bound on the quadrature's bias.
      `benchmarks/lanczos_accuracy.py` measures the total error against the
      exact entropy.
    """
    if num_probes < 2:
        raise ValueError(f"num_probes must be at least 2 for a standard error, got {num_probes}.")
    size = min(num_deflate, like.size)
    deflate_key, probe_key = jax.random.split(key)

    def apply(vs):
        return jax.lax.map(lambda v: matvec(v, *operands), vs, batch_size=PROBES_AT_ONCE)

    def bracket(v, steps=num_matvecs):
        lanczos = decomp.tridiag_sym(min(steps, like.size))(matvec, v, *operands)
        beta = jnp.linalg.norm(lanczos.residual)
        return jnp.stack(gauss_radau_bracket(lanczos.J_small, beta)) / lanczos.init_length_inv**2

    top, project = jnp.zeros(2, like.dtype), lambda v: v
    if size > 0:
        q = _dominant_subspace(apply, like, deflate_key, size, deflate_iters)
        flat = q.reshape(size, -1)
        if size == like.size:
            rayleigh = flat @ apply(q).reshape(size, -1).T
            exact = jnp.sum(_f(1.0, jnp.clip(eigvalsh((rayleigh + rayleigh.T) / 2), 0, None)))
            return exact, jnp.zeros_like(exact)
        top = jax.lax.map(lambda v: bracket(v, TOP_MATVECS), q, batch_size=PROBES_AT_ONCE)
        top = jnp.sum(top, axis=0)

        def project(v):
            return v - (flat.T @ (flat @ v.reshape(-1))).reshape(v.shape)

    values = jax.lax.map(
        lambda k: bracket(project(jax.random.rademacher(k, like.shape, like.dtype))),
        jax.random.split(probe_key, num_probes),
        batch_size=PROBES_AT_ONCE,
    )
    gauss, radau = top + values.mean(axis=0)
    sem = values.mean(axis=1).std(ddof=1) / jnp.sqrt(num_probes)
    return (gauss + radau) / 2, jnp.sqrt(sem**2 + ((gauss - radau) / 2) ** 2)
