"""`dataset_interplay` of batches spread over the processes of a run (see test_distributed).

    python -m tests.distributed_interplay OUT.json   # under JAX_NUM_PROCESSES etc.

Every process draws the same seeded split and keeps only its rows of each
batch; the global batches are sharded over all devices of all processes.
Process 0 writes the interplay to OUT.json.
"""

import json
import sys

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from interplay.trainers.core import distributed

N, D, C, BATCH = 2048, 8, 10, 256  # N > C·D: the batches are folded into the class scatter


def data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, N).astype(np.int32)
    means = rng.normal(size=(C, D)).astype(np.float32)
    features = means[labels] + 0.5 * rng.normal(size=(N, D)).astype(np.float32)
    return features, labels, rng.normal(size=(C, D)).astype(np.float32)


def main(out: str) -> None:
    distributed.initialize()
    from interplay import infotheory as it

    features, labels, head = data()
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    rows = NamedSharding(mesh, PartitionSpec("data"))
    index, count = distributed.shard()
    local = BATCH // count
    batches = [
        distributed.put_local(
            (
                features[s + index * local : s + (index + 1) * local],
                labels[s + index * local : s + (index + 1) * local],
            ),
            rows,
        )
        for s in range(0, N, BATCH)
    ]
    r = it.dataset_interplay(batches, head, num_classes=C, method="exact")
    if jax.process_index() == 0:
        with open(out, "w") as f:
            json.dump({k: float(v) for k, v in r._asdict().items()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
