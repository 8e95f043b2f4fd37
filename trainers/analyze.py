"""Analysis of saved checkpoints with one jitted `vmap` over checkpoints.

    python -m trainers.analyze --workdir DIR --mode trajectory
    python -m trainers.analyze --workdir DIR --mode lmc --other DIR2
    python -m trainers.analyze --workdir DIR --mode prune [--finetune_steps 100]

`trajectory`: every completed checkpoint, stacked in chunks: test accuracy and
loss, the whole-split interplay and NC1–NC4. `lmc`: the path `(1−ω)θ₁ + ωθ₂`
between the last checkpoints of two runs. `prune`: global magnitude pruning.
Each writes `DIR/analysis/<mode>.jsonl` and `<mode>.png`.
"""

from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from tqdm.auto import tqdm

import infotheory as it
import models
from infotheory import neural_collapse as nc
from infotheory import scatter
from trainers import checkpoints, data, plots, supervised
from trainers.data import pipeline

Variables = dict  # {"params": …, "batch_stats": …}, optionally stacked along a leading axis


def stack(trees: list) -> object:
    """Stacks pytrees along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


class Run:
    """A training run's config, model and completed checkpoints."""

    def __init__(self, workdir: str | pathlib.Path):
        self.workdir = pathlib.Path(workdir)
        ckpt_dir = self.workdir / "checkpoints"
        if not ckpt_dir.is_dir():
            raise ValueError(f"{ckpt_dir} does not exist: no checkpoints to analyze.")
        config_path = self.workdir / "config.json"
        if not config_path.exists():
            raise ValueError(
                f"{config_path} is missing: was {self.workdir} written by trainers.supervised?"
            )
        self.config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
        self.spec = data.spec(self.config.dataset)
        self.model = models.get_model(self.config.model, self.spec.num_classes)
        self.manager = checkpoints.manager(ckpt_dir, read_only=True)
        self.steps = sorted(self.manager.all_steps())
        if not self.steps:
            raise ValueError(f"{ckpt_dir} holds no completed checkpoint.")
        tx = supervised.make_optimizer(self.config)
        self.abstract = jax.eval_shape(
            lambda: supervised.init_state(self.model, tx, self.spec.image_shape, self.config.seed)
        )

    def variables(self, step: int) -> Variables | None:
        """Params and batch stats at `step`, or None (with a warning) if unreadable."""
        try:
            state, _ = checkpoints.restore(self.manager, step, self.abstract)
        except Exception as e:  # noqa: BLE001  (any corruption: report and skip)
            logging.warning(
                "checkpoint at step %d is unreadable and skipped: %s: %s",
                step,
                type(e).__name__,
                str(e).splitlines()[0][:200],
            )
            print(f"skipping unreadable checkpoint at step {step} ({type(e).__name__})")
            return None
        return {"params": state["params"], "batch_stats": state["batch_stats"]}


# Per-checkpoint evaluation; `Evaluator` vmaps these over stacked checkpoints.


def _accumulate(variables, batch, carry, *, model):
    logits, features = model.apply(variables, batch["image"])
    mask = batch["mask"].astype(jnp.float32)
    sums = supervised.classification_sums(logits, batch["label"], mask)
    return {
        "stats": scatter.update(carry["stats"], features, batch["label"], mask),
        "moments": nc.update_moments(carry["moments"], features, batch["label"], mask),
        "loss": carry["loss"] + sums["loss"],
        "correct": carry["correct"] + sums["correct"],
    }


def _agreement(variables, batch, means, *, model):
    logits, features = model.apply(variables, batch["image"])
    return (nc.nearest_mean_agreement(features, logits, means) * batch["mask"]).sum()


def _finish(variables, carry, agreement, *, method, key):
    head = models.head(variables["params"])
    n = carry["stats"].counts.sum()
    r = scatter.measure(carry["stats"], head, method=method, key=key)
    collapse = nc.measure_collapse(carry["moments"], head)
    return {
        "accuracy": carry["correct"] / n,
        "loss": carry["loss"] / n,
        **{k: v for k, v in r._asdict().items() if k != "h_joint"},
        **collapse._asdict(),
        "nc4": agreement / n,
    }


class Evaluator:
    """Metrics of one checkpoint (`evaluate_one`) or of stacked ones (`evaluate`, vmapped)."""

    def __init__(
        self,
        model,
        spec: data.DatasetSpec,
        source,
        batch_size: int,
        method: str = "auto",
        seed: int = 0,
    ):
        self.model, self.spec = model, spec
        self.batches = [jax.device_put(b) for b in pipeline.eval_batches(source, spec, batch_size)]
        self.key = jax.random.key(seed)
        self.method = method

    def _carry(self, variables) -> dict:
        _, features = jax.eval_shape(self.model.apply, variables, self.batches[0]["image"])
        dim = features.shape[-1]
        return {
            "stats": scatter.init(self.spec.num_classes, dim),
            "moments": nc.init_moments(self.spec.num_classes, dim),
            "loss": jnp.zeros(()),
            "correct": jnp.zeros(()),
        }

    @functools.cached_property
    def _single(self):
        acc = jax.jit(functools.partial(_accumulate, model=self.model))
        agree = jax.jit(functools.partial(_agreement, model=self.model))
        fin = jax.jit(functools.partial(_finish, method=self.method, key=self.key))
        return acc, agree, fin

    @functools.cached_property
    def _batched(self):
        acc = jax.jit(
            jax.vmap(functools.partial(_accumulate, model=self.model), in_axes=(0, None, 0))
        )
        agree = jax.jit(
            jax.vmap(functools.partial(_agreement, model=self.model), in_axes=(0, None, 0))
        )
        fin = jax.jit(jax.vmap(functools.partial(_finish, method=self.method, key=self.key)))
        return acc, agree, fin

    def _run(self, variables, carry, fns) -> dict:
        acc, agree, fin = fns
        for batch in self.batches:
            carry = acc(variables, batch, carry)
        means = nc.class_means(carry["moments"])
        agreement = sum(agree(variables, batch, means) for batch in self.batches)
        return jax.device_get(fin(variables, carry, agreement))

    def evaluate_one(self, variables: Variables) -> dict:
        """Metrics of one checkpoint (scalars)."""
        carry = self._carry(variables)
        return self._run(variables, carry, self._single)

    def evaluate(self, stacked: Variables) -> dict:
        """Metrics of `K` stacked checkpoints (arrays of shape `(K,)`), one vmap."""
        num = jax.tree.leaves(stacked)[0].shape[0]
        one = jax.tree.map(lambda x: x[0], stacked)
        carry = jax.tree.map(lambda x: jnp.broadcast_to(x, (num, *x.shape)), self._carry(one))
        return self._run(stacked, carry, self._batched)


def _test_evaluator(run: Run) -> Evaluator:
    """Evaluator on the run's test split with the run's eval settings."""
    return Evaluator(
        run.model,
        run.spec,
        data.source(run.config.dataset, "test", run.config.data_dir),
        run.config.eval_batch_size,
        run.config.interplay_method,
        run.config.seed,
    )


def _records(values: dict, xs, x_key: str) -> list[dict]:
    return [{x_key: x, **{k: float(v[i]) for k, v in values.items()}} for i, x in enumerate(xs)]


def _save(run: Run, mode: str, records: list[dict], x: str, panels, title: str) -> None:
    """Writes `analysis/<mode>.jsonl` and `analysis/<mode>.png` of `run`."""
    out = run.workdir / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{mode}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    plots.plot_panels(records, x, panels, out / f"{mode}.png", title=title)


def trajectory(run: Run, chunk: int = 8) -> list[dict]:
    """Metrics of every readable checkpoint, `chunk` checkpoints per vmapped evaluation."""
    evaluator = _test_evaluator(run)
    records = []
    for start in tqdm(range(0, len(run.steps), chunk), desc="trajectory", unit="chunk"):
        loaded = [(s, run.variables(s)) for s in run.steps[start : start + chunk]]
        loaded = [(s, v) for s, v in loaded if v is not None]
        if loaded:
            steps, variables = zip(*loaded, strict=True)
            records += _records(evaluator.evaluate(stack(list(variables))), steps, "step")
    if not records:
        raise ValueError(f"no readable checkpoint in {run.workdir / 'checkpoints'}.")
    _save(
        run,
        "trajectory",
        records,
        "step",
        [
            ("test accuracy", ["accuracy"], []),
            ("MIR", ["mir"], [float(it.nc_mir(run.spec.num_classes))]),
            ("HDR", ["hdr"], [0.0]),
            ("NC1", ["nc1"], []),
            ("NC2, NC3", ["nc2", "nc3"], [0.0]),
            ("NC4", ["nc4"], [1.0]),
        ],
        f"checkpoint trajectory: {run.workdir.name}",
    )
    return records


def interpolate(a: Variables, b: Variables, omegas) -> Variables:
    """Stacked `(1 − ω)·a + ω·b` for each ω."""
    omegas = jnp.asarray(omegas, jnp.float32)
    return jax.tree.map(
        lambda x, y: (
            (1 - omegas.reshape((-1,) + (1,) * x.ndim)) * x
            + omegas.reshape((-1,) + (1,) * x.ndim) * y
        ),
        a,
        b,
    )


def reestimate_batch_stats(model, stacked: Variables, images: list) -> Variables:
    """Re-estimates BatchNorm running statistics of stacked models on training images."""
    if not jax.tree.leaves(stacked["batch_stats"]):
        return stacked
    update = jax.jit(
        jax.vmap(
            lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])[1],
            in_axes=(0, None),
        )
    )
    for x in images:
        stacked = {**stacked, **update(stacked, x)}
    return stacked


def linear_mode_connectivity(
    run: Run, other: Run, num_points: int = 21, bn_batches: int = 50
) -> list[dict]:
    """Metrics along `(1−ω)θ₁ + ωθ₂` between the last checkpoints of two runs."""
    if (run.config.model, run.config.dataset) != (other.config.model, other.config.dataset):
        raise ValueError("lmc needs two runs of the same model and dataset.")
    a, b = run.variables(run.steps[-1]), other.variables(other.steps[-1])
    if a is None or b is None:
        raise ValueError("the last checkpoint of a run is unreadable.")
    omegas = np.linspace(0, 1, num_points)
    stacked = interpolate(a, b, omegas)
    train_ds = pipeline.train_dataset(
        data.source(run.config.dataset, "train", run.config.data_dir),
        run.spec,
        run.config.batch_size,
        seed=0,
    )
    if jax.tree.leaves(a["batch_stats"]):
        print(
            f"BatchNorm statistics re-estimated at each ω on {bn_batches} training batches "
            "(running averages, momentum 0.9)."
        )
        stacked = reestimate_batch_stats(
            run.model, stacked, [train_ds[i]["image"] for i in range(bn_batches)]
        )
    evaluator = _test_evaluator(run)
    records = _records(evaluator.evaluate(stacked), omegas.tolist(), "omega")
    _save(
        run,
        "lmc",
        records,
        "omega",
        [
            ("test accuracy", ["accuracy"], []),
            ("test loss", ["loss"], []),
            ("MIR", ["mir"], []),
            ("HDR", ["hdr"], []),
        ],
        f"linear mode connectivity: {run.workdir.name} → {other.workdir.name}",
    )
    return records


def magnitude_masks(params, sparsity: float):
    """Global unstructured magnitude pruning of every `kernel`: exactly ⌊s·N⌋ weights set to 0."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    is_kernel = [any(getattr(k, "key", None) == "kernel" for k in path) for path, _ in leaves]
    weights = np.concatenate(
        [
            np.abs(np.asarray(x)).ravel()
            for (_, x), kernel in zip(leaves, is_kernel, strict=True)
            if kernel
        ]
    )
    keep = np.ones(weights.size, bool)
    keep[np.argsort(weights, kind="stable")[: int(sparsity * weights.size)]] = False
    masks, offset = [], 0
    for (_, x), kernel in zip(leaves, is_kernel, strict=True):
        if kernel:
            masks.append(jnp.asarray(keep[offset : offset + x.size].reshape(x.shape), x.dtype))
            offset += x.size
        else:
            masks.append(jnp.ones_like(x))
    return jax.tree.unflatten(treedef, masks)


def finetune(run: Run, variables: Variables, mask, steps: int) -> Variables:
    """`steps` SGD steps of the run's loss with the pruning mask re-applied after each."""
    if steps == 0:
        return variables
    config = run.config
    tx = optax.sgd(0.1 * config.learning_rate, momentum=config.momentum)
    loss = functools.partial(
        supervised.loss_fn, model=run.model, config=config, num_classes=run.spec.num_classes
    )

    @jax.jit
    def step(params, batch_stats, opt_state, batch):
        (_, batch_stats), grads = jax.value_and_grad(loss, has_aux=True)(params, batch_stats, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree.map(jnp.multiply, optax.apply_updates(params, updates), mask)
        return params, batch_stats, opt_state

    train_ds = pipeline.train_dataset(
        data.source(config.dataset, "train", config.data_dir), run.spec, config.batch_size, seed=1
    )
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = tx.init(params)
    for i in range(steps):
        params, batch_stats, opt_state = step(params, batch_stats, opt_state, train_ds[i])
    return {"params": params, "batch_stats": batch_stats}


SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def prune(
    run: Run,
    sparsities=SPARSITIES,
    finetune_steps: int = 0,
    max_samples: int = 2048,
) -> list[dict]:
    """Accuracy, MIR/HDR against the head and MIR(features before, after) per sparsity."""
    dense = run.variables(run.steps[-1])
    if dense is None:
        raise ValueError("the last checkpoint is unreadable.")
    variants = []
    for s in tqdm(sparsities, desc="prune"):
        mask = magnitude_masks(dense["params"], s)
        pruned = {**dense, "params": jax.tree.map(jnp.multiply, dense["params"], mask)}
        variants.append(finetune(run, pruned, mask, finetune_steps))
    stacked = stack(variants)
    evaluator = _test_evaluator(run)
    values = evaluator.evaluate(stacked)
    images = np.concatenate([b["image"][b["mask"]] for b in evaluator.batches])[:max_samples]
    _, before = run.model.apply(dense, images)
    _, after = jax.jit(jax.vmap(run.model.apply, in_axes=(0, None)))(stacked, images)
    values["mir_before_after"] = jax.vmap(it.mir, in_axes=(None, 0))(before, after)
    records = _records(values, [float(s) for s in sparsities], "sparsity")
    _save(
        run,
        "prune",
        records,
        "sparsity",
        [
            ("test accuracy", ["accuracy"], []),
            ("MIR with head", ["mir"], []),
            ("HDR with head", ["hdr"], []),
            ("MIR(features before, after)", ["mir_before_after"], []),
        ],
        f"magnitude pruning ({finetune_steps} fine-tuning steps): {run.workdir.name}",
    )
    return records


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.ERROR)  # Orbax warns that read-only managers do not save
    f = flags.FLAGS
    run = Run(f.workdir)
    if f.mode == "trajectory":
        records = trajectory(run, f.chunk)
    elif f.mode == "lmc":
        if not f.other:
            raise app.UsageError("--mode lmc needs --other DIR2.")
        records = linear_mode_connectivity(run, Run(f.other), f.num_points, f.bn_batches)
    else:
        records = prune(run, finetune_steps=f.finetune_steps, max_samples=f.max_samples)
    x = next(iter(records[0]))
    keys = [k for k in records[0] if k != x]
    print(f"{x:>9} " + " ".join(f"{k:>9}" for k in keys))
    for r in records:
        print(f"{r[x]:>9.3g} " + " ".join(f"{r[k]:>9.4f}" for k in keys))
    print(f"written: {run.workdir / 'analysis' / f.mode}.jsonl and .png")


if __name__ == "__main__":
    flags.DEFINE_string("workdir", None, "Run directory (holds checkpoints/ and config.json).")
    flags.DEFINE_enum("mode", "trajectory", ["trajectory", "lmc", "prune"], "Analysis.")
    flags.DEFINE_string("other", None, "Second run for --mode lmc.")
    flags.DEFINE_integer("chunk", 8, "Checkpoints per vmapped evaluation.")
    flags.DEFINE_integer("num_points", 21, "ω grid size for lmc.")
    flags.DEFINE_integer("bn_batches", 50, "Training batches to re-estimate BatchNorm for lmc.")
    flags.DEFINE_integer("finetune_steps", 0, "Fine-tuning steps after pruning.")
    flags.DEFINE_integer("max_samples", 2048, "Test samples for MIR(before, after) in prune.")
    flags.mark_flag_as_required("workdir")
    app.run(main)
