"""Matrix entropy, matrix mutual information, MIR and HDR.

For a PSD matrix K, `H(K) = -tr(ρ log ρ) = -Σ λᵢ log λᵢ` with `ρ = K / tr K`
(for the unit-diagonal Grams of the papers `tr K = n`; zero rows, as left by
masks, then simply drop out). Rényi-α: `H_α(K) = log(Σ λᵢ^α) / (1 − α)`.
Natural log throughout: `0 ≤ H ≤ log n` and `exp(H)` is the effective rank.

Reference: Tan et al., "Unveiling the Dynamics of Information Interplay in
Supervised Learning", ICML 2024, §3.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from interplay.infotheory import _checks
from interplay.infotheory._precision import full_precision
from interplay.infotheory.kernels import as_float, normalize
from interplay.infotheory.spectral import trace_function


def density(k: jax.Array) -> jax.Array:
    """`ρ = K / tr K` (0 for a zero matrix)."""
    tr = jnp.trace(k)
    return k / jnp.where(tr > 0, tr, 1)


def density_entropy(rho: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Entropy of a unit-trace PSD `rho`: von Neumann at α = 1, Rényi-α otherwise.

    NaN when `rho` has a non-finite entry (eigensolvers may return finite garbage).
    """
    finite = jnp.all(jnp.isfinite(rho))
    rho = jnp.where(finite, rho, 0)
    if alpha == 1:
        return _checks.poison(trace_function(1.0, rho), finite)
    # Σλ² = ‖ρ‖_F²: α = 2 needs no eigendecomposition.
    power_sum = jnp.sum(rho * rho) if alpha == 2 else trace_function(float(alpha), rho)
    positive = power_sum > 0
    h = jnp.where(positive, jnp.log(jnp.where(positive, power_sum, 1)), 0) / (1 - alpha)
    return _checks.poison(h, finite)


@full_precision
def matrix_entropy(k: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """Matrix entropy `H(K) = -Σ λᵢ log λᵢ`, λ the eigenvalues of `K / tr K`.

    Args:
      k: PSD matrix `(n, n)`, e.g. a unit-diagonal Gram `G(Z)`: symmetric and PSD
        up to round-off, with positive trace (else `ValueError`; NaN under jit).
      alpha: Rényi order, a static positive finite Python number; 1 (default) is
        the von Neumann entropy of the papers. `alpha=2` is `-log ‖K/tr K‖_F²`
        and needs no eigendecomposition.

    Returns:
      Entropy in nats, in `[0, log n]`.

    >>> round(float(matrix_entropy(jnp.eye(4))), 4)  # log 4
    1.3863
    """
    _checks.check_alpha(alpha)
    k = _checks.arrays(k)
    _checks.check_kernel("k", k)
    k = as_float(k)
    h = density_entropy(density(k), alpha)  # NaN if not PSD (`trace_function`)
    return _checks.poison(h, _checks.kernel_symmetric(k) & (jnp.trace(k) > 0))


def row_density(x: jax.Array) -> jax.Array:
    """`ρ = X Xᵀ / tr(X Xᵀ)`, or its dual `Xᵀ X / tr(Xᵀ X)` when that is smaller.

    Both have the same nonzero spectrum, so entropies agree; when `d < n` the
    `(d, d)` dual is used and `(n, n)` is never formed.
    """
    n, d = x.shape
    return density(x.T @ x if d < n else x @ x.T)


@full_precision
def entropy(x: ArrayLike, alpha: float = 1.0) -> jax.Array:
    """Entropy of the cosine Gram of rows, `H(G(X))`, from features `(n, d)`.

    Uses the `(d, d)` dual `X̂ᵀX̂` when `d < n`.

    >>> round(float(entropy(jnp.eye(3))), 4)  # orthogonal rows: log 3
    1.0986
    """
    _checks.check_alpha(alpha)
    x = _checks.arrays(x)
    _checks.check_samples("x", x)
    return density_entropy(row_density(normalize(x)), alpha)


@full_precision
def mutual_information(k1: ArrayLike, k2: ArrayLike) -> jax.Array:
    """Matrix mutual information `MI(K₁, K₂) = H(K₁) + H(K₂) − H(K₁ ⊙ K₂)`.

    >>> k = jnp.array([[1.0, 0.5], [0.5, 1.0]])
    >>> bool(jnp.isclose(mutual_information(k, jnp.eye(2)), matrix_entropy(k)))  # MI(K, I) = H(K)
    True
    """
    k1, k2 = _checks.arrays(k1, k2)
    _checks.check_kernel("k1", k1)
    _checks.check_kernel("k2", k2)
    if jnp.shape(k1) != jnp.shape(k2):
        raise ValueError(f"k1 and k2 differ in shape: {jnp.shape(k1)} vs {jnp.shape(k2)}.")
    k1, k2 = as_float(k1), as_float(k2)
    return matrix_entropy(k1) + matrix_entropy(k2) - matrix_entropy(k1 * k2)


def zero_entropy_tolerance(dtype: jnp.dtype) -> float:
    """Entropies below `√eps(dtype)` count as zero in MIR and HDR.

    Round-off alone gives a rank-one 1024 × 1024 Gram an entropy of ~1e-4 in
    float32 (√eps ≈ 3.5e-4); such a matrix carries no information.
    """
    return float(jnp.finfo(dtype).eps) ** 0.5


class Ratios(NamedTuple):
    """`mi = H₁ + H₂ − H₁₂`, `mir = mi / min(H₁, H₂)`, `hdr = |H₁ − H₂| / max(H₁, H₂)`."""

    mi: jax.Array
    mir: jax.Array
    hdr: jax.Array


def _safe_ratio(num: jax.Array, den: jax.Array, tol: float) -> jax.Array:
    ok = den > tol
    ratio = jnp.where(ok, jnp.clip(num / jnp.where(ok, den, 1), 0, 1), 0)
    return _checks.poison(ratio, jnp.isfinite(num) & jnp.isfinite(den))


def ratios(h1: jax.Array, h2: jax.Array, h_joint: jax.Array) -> Ratios:
    """MI, MIR and HDR from the two entropies and the joint one.

    Convention: a matrix of zero entropy (rank one, e.g. C = 2 at collapse)
    shares no information, so MIR = 0 when `min(H₁, H₂)` is zero, and HDR = 0
    when both are. MI is clipped to its theoretical range `[0, min(H₁, H₂)]`
    (round-off can leave it slightly outside) and the ratios to [0, 1], so `mi`
    and `mir` always agree. NaN entropies give NaN everywhere.
    """
    tol = zero_entropy_tolerance(h1.dtype)
    low = jnp.minimum(h1, h2)
    mi = jnp.clip(h1 + h2 - h_joint, 0, jnp.maximum(low, 0))
    return Ratios(
        mi=mi,
        mir=_safe_ratio(mi, low, tol),
        hdr=_safe_ratio(jnp.abs(h1 - h2), jnp.maximum(h1, h2), tol),
    )


def _pair_ratios(z: ArrayLike, w: ArrayLike) -> Ratios:
    z, w = _checks.arrays(z, w)
    _checks.check_samples("z", z)
    _checks.check_samples("w", w)
    _checks.check_paired("z", z, "w", w)
    zn, wn = normalize(z), normalize(w)
    (n, d), dw = zn.shape, wn.shape[1]
    if d * dw < n:  # Gram of row-wise Kronecker products z_i ⊗ w_i, via its dual.
        joint = row_density((zn[:, :, None] * wn[:, None, :]).reshape(n, d * dw))
    else:
        joint = density((zn @ zn.T) * (wn @ wn.T))
    h1 = density_entropy(row_density(zn))
    h2 = density_entropy(row_density(wn))
    return ratios(h1, h2, density_entropy(joint))


@full_precision
def mir(z: ArrayLike, w: ArrayLike) -> jax.Array:
    """Mutual-information ratio `MI(G(Z), G(W)) / min(H(G(Z)), H(G(W)))` ∈ [0, 1].

    Args:
      z: features `(n, d)`.
      w: per-sample head vectors `(n, d')` (e.g. `head[labels]`), or any second
        representation of the same samples.

    >>> z = jnp.eye(4)  # orthogonal rows: K ⊙ K = K, so MI = H and MIR = 1
    >>> round(float(mir(z, z)), 4)
    1.0
    """
    return _pair_ratios(z, w).mir


@full_precision
def hdr(z: ArrayLike, w: ArrayLike) -> jax.Array:
    """Entropy-difference ratio `|H(G(Z)) − H(G(W))| / max(H(G(Z)), H(G(W)))` ∈ [0, 1].

    >>> z = jnp.eye(4)
    >>> round(float(hdr(z, jnp.ones((4, 1)))), 4)  # log 4 vs 0
    1.0
    """
    return _pair_ratios(z, w).hdr
