"""The classifier evaluator of the trainers and of the checkpoint analysis.

One set of pure per-batch functions, jitted once for a single model and once
vmapped over stacked checkpoints, so "the analysis equals the trainer's eval"
holds by construction. Per evaluation, over the whole eval split:

* `loss`, `accuracy` (masked sums of the padded batches);
* `h_features, h_heads, mi, mir, hdr`: the exact whole-split interplay of the
  features with the head (`interplay.infotheory.scatter`), and `mi_stderr`, the
  stated error of a `method="lanczos"` estimate (probes and quadrature; 0 when
  exact);
* `batch_mir, batch_hdr`: the papers' stand-in, `interplay` of each batch
  averaged with weights = samples per batch (batches of fewer than 2 samples,
  e.g. a padded last batch, have no interplay and are left out);
* `nc1, nc2_etf, nc2_equinorm, nc2_equiangular, nc2_maxangle, nc3, nc3_squared,
  nc4`: Neural-Collapse metrics (`interplay.infotheory.collapse_metrics`, which says
  which paper each variant follows); NC4 needs the class means, hence a second
  pass over the batches;
* `silhouette` (cosine), `davies_bouldin`, `class_entropy` (mean over classes
  of `H(G(Z_c))`): how tightly the features cluster by class
  (`interplay.infotheory.clustering`), from the same two passes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from interplay import infotheory as it
from interplay import models
from interplay.infotheory import clustering, scatter
from interplay.infotheory import collapse_metrics as nc


def classification_sums(logits, labels, mask) -> dict[str, jax.Array]:
    """Masked sums of the cross-entropy (`loss`) and of correct predictions (`correct`).

    A sample with a non-finite logit counts as NaN, not as a prediction of class 0.
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, -1) == labels).astype(mask.dtype)
    correct = jnp.where(jnp.all(jnp.isfinite(logits), -1), correct, jnp.nan)
    return {"loss": (ce * mask).sum(), "correct": (correct * mask).sum()}


def _accumulate(variables, batch, carry, *, model):
    logits, features = model.apply(variables, batch["image"])
    mask = batch["mask"].astype(jnp.float32)
    labels = batch["label"]
    sums = classification_sums(logits, labels, mask)
    r = it.interplay(features, labels, models.head(variables["params"]), mask)
    n = jnp.where(mask.sum() >= 2, mask.sum(), 0)  # a padded last batch of one sample has none
    return {
        "stats": scatter.update(carry["stats"], features, labels, mask),
        "moments": nc.update_moments(carry["moments"], features, labels, mask),
        "unit_sums": carry["unit_sums"]
        + clustering.unit_sums(features, labels, carry["unit_sums"].shape[0], mask),
        "loss": carry["loss"] + sums["loss"],
        "correct": carry["correct"] + sums["correct"],
        "batch_mir": carry["batch_mir"] + jnp.where(n > 0, r.mir * n, 0),
        "batch_hdr": carry["batch_hdr"] + jnp.where(n > 0, r.hdr * n, 0),
        "batch_count": carry["batch_count"] + n,
    }


def _second_pass(variables, batch, carry, *, model):
    """Sums that need the whole split's class means or class sums."""
    logits, features = model.apply(variables, batch["image"])
    labels, mask, moments = batch["label"], batch["mask"].astype(jnp.float32), carry["moments"]
    counts = moments.counts
    means = nc.class_means(moments)
    sums = clustering.cosine_sums(features, labels, carry["unit_sums"], counts)
    distances = jnp.linalg.norm(features - means[labels], axis=-1) * mask
    return {
        "agreement": (nc.nearest_mean_agreement(features, logits, moments) * mask).sum(),
        "silhouette": (clustering.silhouette_from_sums(sums, labels, counts) * mask).sum(),
        "spreads": jax.nn.one_hot(labels, counts.shape[0]).T @ distances,
    }


def _finish(variables, carry, second, *, method, key):
    """The metrics from the sums; all NaN for a model with a non-finite variable (whose
    features may still read finite: XLA may lower `relu(NaN)` to 0)."""
    head = models.head(variables["params"])
    n = carry["stats"].counts.sum()
    r = scatter.measure(carry["stats"], head, method=method, key=key)
    moments = carry["moments"]
    values = {
        "loss": carry["loss"] / n,
        "accuracy": carry["correct"] / n,
        **{k: v for k, v in r._asdict().items() if k != "h_joint"},
        "batch_mir": carry["batch_mir"] / carry["batch_count"],
        "batch_hdr": carry["batch_hdr"] / carry["batch_count"],
        **nc.measure_collapse(moments, head)._asdict(),
        "nc4": second["agreement"] / n,
        "silhouette": second["silhouette"] / n,
        "davies_bouldin": clustering.davies_bouldin_from(
            nc.class_means(moments), moments.counts, second["spreads"]
        ),
        "class_entropy": jnp.nanmean(scatter.class_entropies_from_scatter(carry["stats"])),
    }
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(variables)]))
    return jax.tree.map(lambda x: jnp.where(finite, x, jnp.nan), values)


def _local_copy(x: jax.Array) -> jax.Array:
    """`x` on this process's first device (its own copy when `x` is replicated)."""
    if x.is_fully_replicated:
        return x.addressable_data(0)
    return jax.device_put(x, jax.local_devices()[0])


def over_models(f, in_axes: tuple):
    """`f` over a leading models axis of the arguments whose axis is 0: `jax.vmap`, or on a
    CPU a `lax.map` (XLA:CPU lowers a batch of convolutions to a grouped one, slower than
    the loop; `benchmarks/analysis.py`)."""
    if jax.default_backend() != "cpu":
        return jax.vmap(f, in_axes=in_axes)

    def looped(*args):
        def one(mapped):
            parts = iter(mapped)
            return f(*(next(parts) if ax == 0 else a for a, ax in zip(args, in_axes, strict=True)))

        return jax.lax.map(one, tuple(a for a, ax in zip(args, in_axes, strict=True) if ax == 0))

    return looped


@functools.cache
def _programs(model: nn.Module, method: str, seed: int, *, batched: bool) -> tuple:
    """Jitted (accumulate, second pass, finish), shared by every `Evaluator` of an equal
    model: the runs of a sweep or a notebook trace and compile them once."""
    transform = over_models if batched else (lambda f, in_axes: f)
    acc = functools.partial(_accumulate, model=model)
    second = functools.partial(_second_pass, model=model)
    fin = functools.partial(_finish, method=method, key=jax.random.key(seed))
    return (
        jax.jit(transform(acc, in_axes=(0, None, 0))),
        jax.jit(transform(second, in_axes=(0, None, 0))),
        jax.jit(transform(fin, in_axes=(0, 0, 0))),
    )


class Evaluator:
    """Metrics of one model (`evaluate`) or of stacked ones (`evaluate_stacked`, one vmap).

    Args:
      model: a classifier returning `(logits, features)` with a `head` layer.
      batches: eval batches `{"image", "label", "mask"}` of equal size (already
        placed on devices, e.g. sharded over a data mesh).
      num_classes: C.
      method: whole-split interplay method (`interplay.infotheory.scatter.measure`).
      seed: key of the Lanczos probes.
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[dict],
        num_classes: int,
        method: str = "auto",
        seed: int = 0,
    ):
        if not batches:
            raise ValueError("the eval split is empty.")
        self.model, self.batches, self.num_classes = model, list(batches), num_classes
        self.method, self.seed = method, seed

    def _carry(self, variables, num: int | None = None) -> dict:
        """Zero sums (`num` copies when stacked), placed as the step's outputs are: replicated
        on the mesh of the variables or batches, so the first batch compiles the program that
        the others reuse."""
        _, features = jax.eval_shape(self.model.apply, variables, self.batches[0]["image"])
        dim = features.shape[-1]
        zero = jnp.zeros(())
        carry = {
            "stats": scatter.init(self.num_classes, dim),
            "moments": nc.init_moments(self.num_classes, dim),
            "unit_sums": jnp.zeros((self.num_classes, dim)),  # Σ ẑ per class
            **dict.fromkeys(("loss", "correct", "batch_mir", "batch_hdr", "batch_count"), zero),
        }
        if num is not None:
            carry = jax.tree.map(lambda x: jnp.broadcast_to(x, (num, *x.shape)), carry)
        for x in jax.tree.leaves((variables, self.batches[0])):
            if isinstance(getattr(x, "sharding", None), NamedSharding):
                return jax.device_put(carry, NamedSharding(x.sharding.mesh, PartitionSpec()))
        return carry

    @functools.cached_property
    def _single(self):
        return _programs(self.model, self.method, self.seed, batched=False)

    @functools.cached_property
    def _batched(self):
        return _programs(self.model, self.method, self.seed, batched=True)

    def _run(self, variables, carry, fns) -> dict[str, np.ndarray]:
        acc, second, fin = fns
        for batch in self.batches:
            carry = acc(variables, batch, carry)
        sums = jax.tree.map(lambda *x: sum(x), *[second(variables, b, carry) for b in self.batches])
        # The finish is small dense linear algebra on replicated statistics: one device of each
        # process runs it on its copy (replicated over a mesh, every device would repeat each
        # eigendecomposition).
        return jax.device_get(fin(*jax.tree.map(_local_copy, (variables, carry, sums))))

    def evaluate(self, variables: dict) -> dict[str, float]:
        """Metrics of one model's `{"params", "batch_stats"}` (floats)."""
        values = self._run(variables, self._carry(variables), self._single)
        return {k: float(v) for k, v in values.items()}

    def evaluate_stacked(self, stacked: dict, chunk: int = 8) -> dict[str, np.ndarray]:
        """Metrics of `K` stacked variables (arrays of shape `(K,)`).

        One vmap over `chunk` models at a time (a `lax.map` on a CPU: `over_models`); the
        last chunk is padded with copies of the last model, so every `K` runs the one
        compiled program of `chunk` models.
        """
        num = jax.tree.leaves(stacked)[0].shape[0]
        padded = -(-num // chunk) * chunk
        stacked = jax.tree.map(
            lambda x: jnp.concatenate([x, x[-1:].repeat(padded - num, 0)]), stacked
        )
        carry = self._carry(jax.tree.map(lambda x: x[0], stacked), chunk)
        parts = [
            self._run(jax.tree.map(lambda x, i=i: x[i : i + chunk], stacked), carry, self._batched)
            for i in range(0, padded, chunk)
        ]
        return {k: np.concatenate([p[k] for p in parts])[:num] for k in parts[0]}
