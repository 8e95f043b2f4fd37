"""Orbax checkpoints of a train state pytree plus JSON metadata.

One `CheckpointManager` with `StandardSave`/`StandardRestore`; restoring takes
an abstract target (`jax.eval_shape` of the initial state) so arrays come back
with the right shapes, dtypes and shardings. Only finalized checkpoints are
listed, so a directory can be read while its run is still training.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp


def manager(
    directory: str | pathlib.Path, *, max_to_keep: int | None = None, read_only: bool = False
) -> ocp.CheckpointManager:
    """Checkpoint manager over `directory` (async saves; `max_to_keep=None` keeps all)."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=not read_only, read_only=read_only
    )
    return ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
    """Saves `state` (pytree of arrays) and `meta` (JSON) at `step`, asynchronously."""
    mngr.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
    )


def restore(mngr: ocp.CheckpointManager, step: int, like: Any) -> tuple[Any, dict]:
    """Restores `(state, meta)` at `step`; `like` is a pytree of arrays or ShapeDtypeStructs."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        ),
    )
    return restored.state, restored.meta
