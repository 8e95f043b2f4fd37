"""Several processes on JAX's distributed runtime (`jax.distributed`): one global `data` mesh.

A single process needs nothing. Several join the runtime before any JAX work
(`interplay.trainers.core.cli.run` calls `initialize`), configured either by the environment,

    JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i  (i = 0 … N−1)

on any machines (e.g. N processes on the loopback interface), or with the
`--distributed` flag by JAX's cluster auto-detection (Cloud TPU pods, SLURM,
Open MPI, ...). On CPUs the cross-process collectives are gloo's. Each process
then reads only its rows of every batch (`interplay.trainers.data.pipeline.train_dataset`'s
`shard`) and `put_local` assembles the global array; process 0 writes the
metrics and plots; every process takes part in Orbax's checkpoint saves.
"""

from __future__ import annotations

import os

import jax


def initialize(auto: bool = False) -> None:
    """Joins the distributed runtime when the environment names several processes, or `auto`."""
    num_processes = int(os.environ.get("JAX_NUM_PROCESSES", "1"))
    if num_processes <= 1 and not auto:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto:
        jax.distributed.initialize()
        return
    missing = [k for k in ("JAX_COORDINATOR_ADDRESS", "JAX_PROCESS_ID") if k not in os.environ]
    if missing:
        raise ValueError(f"JAX_NUM_PROCESSES={num_processes} needs {' and '.join(missing)} too.")
    jax.distributed.initialize(
        os.environ["JAX_COORDINATOR_ADDRESS"], num_processes, int(os.environ["JAX_PROCESS_ID"])
    )


def shard() -> tuple[int, int]:
    """`(index, count)` of this process: it reads rows `index/count … (index+1)/count`."""
    return jax.process_index(), jax.process_count()


def put_local(tree, sharding):
    """Global arrays, sharded along their first axis by `sharding`, from each process's rows."""
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), tree)
