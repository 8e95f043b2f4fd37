"""Replicated outputs for inputs sharded along the sample axis.

With explicit sharding (the default axis type of `jax.make_mesh`), a
contraction over a sharded axis must name its output sharding; these helpers
ask for a replicated result, which XLA produces with an all-reduce.
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec


def _on_mesh(x: jax.Array) -> NamedSharding | None:
    """`x`'s (abstract) sharding when it lies on a non-empty mesh, else None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    return None if mesh is None or mesh.empty else sharding


def replicated_like(x: jax.Array) -> NamedSharding | None:
    """Fully replicated sharding on `x`'s mesh, or None when `x` is on no mesh."""
    sharding = _on_mesh(x)
    return None if sharding is None else NamedSharding(sharding.mesh, PartitionSpec())


def replicate(x: jax.Array) -> jax.Array:
    """`x` resharded to be replicated on its mesh (unchanged when on no mesh)."""
    target = replicated_like(x)
    return x if target is None else jax.sharding.reshard(x, target)


def sample_axis(x: jax.Array) -> str | tuple | None:
    """The mesh axis that `x`'s leading (sample) axis is sharded over, or None."""
    sharding = _on_mesh(x)
    return sharding.spec[0] if sharding is not None and sharding.spec else None
