"""Replicated outputs for inputs sharded along the sample axis.

With explicit sharding (the default axis type of `jax.make_mesh`), a
contraction over a sharded axis must name its output sharding; these helpers
ask for a replicated result, which XLA produces with an all-reduce.
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec


def replicated_like(x: jax.Array) -> NamedSharding | None:
    """Fully replicated sharding on `x`'s mesh, or None when `x` is on no mesh."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty:
        return None
    return NamedSharding(mesh, PartitionSpec())


def replicate(x: jax.Array) -> jax.Array:
    """`x` resharded to be replicated on its mesh (unchanged when on no mesh)."""
    target = replicated_like(x)
    return x if target is None else jax.sharding.reshard(x, target)


def sample_axis(x: jax.Array) -> str | tuple | None:
    """The mesh axis that `x`'s leading (sample) axis is sharded over, or None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty or not sharding.spec:
        return None
    return sharding.spec[0]
