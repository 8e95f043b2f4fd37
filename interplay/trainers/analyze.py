"""Analysis of saved checkpoints with one jitted `vmap` over checkpoints.

    python -m interplay.trainers.analyze --workdir DIR --mode trajectory
    python -m interplay.trainers.analyze --workdir DIR --mode lmc --other DIR2
    python -m interplay.trainers.analyze --workdir DIR --mode prune [--finetune_steps 100]

Reads runs of `interplay.trainers.supervised` (`classifier.saved.SavedRun`),
with the weights the run evaluated (`--weights ema|raw` to choose).
`trajectory`: every completed checkpoint, stacked in chunks: test accuracy and
loss, the whole-split interplay and NC1–NC4. `lmc`: the path `(1−ω)θ₁ + ωθ₂`
between the last checkpoints of two runs. `prune`: global magnitude pruning.
Each writes `DIR/analysis/<mode>.jsonl` and `<mode>.png`.
"""

from __future__ import annotations

import functools
import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags, logging
from tqdm.auto import tqdm

from interplay import infotheory as it
from interplay.trainers.classifier.saved import SavedRun, Variables
from interplay.trainers.core import cli, logs, plots
from interplay.trainers.core.state import TrainState, train_step
from interplay.trainers.data import pipeline


def stack(trees: list) -> object:
    """Stacks pytrees along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _records(values: dict, xs, x_key: str) -> list[dict]:
    return [{x_key: x, **{k: float(v[i]) for k, v in values.items()}} for i, x in enumerate(xs)]


def _save(run: SavedRun, mode: str, records: list[dict], x: str, panels, title: str) -> None:
    """Writes `analysis/<mode>.jsonl` and `analysis/<mode>.png` of `run`."""
    out = run.workdir / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{mode}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    plots.plot_panels(records, x, panels, out / f"{mode}.png", title=title)


def trajectory(run: SavedRun, chunk: int = 8) -> list[dict]:
    """Metrics of every readable checkpoint, `chunk` checkpoints per vmapped evaluation."""
    evaluator = run.test_evaluator()
    records = []
    for start in tqdm(range(0, len(run.steps), chunk), desc="trajectory", unit="chunk"):
        loaded = [(s, run.variables(s)) for s in run.steps[start : start + chunk]]
        loaded = [(s, v) for s, v in loaded if v is not None]
        if loaded:
            steps, variables = zip(*loaded, strict=True)
            values = evaluator.evaluate_stacked(stack(list(variables)), chunk)
            records += _records(values, steps, "step")
    if not records:
        raise ValueError(f"no readable checkpoint in {run.workdir / 'checkpoints'}.")
    for r in records:
        logs.report_nonfinite(r, f"checkpoint at step {r['step']}")
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
            ("NC2, NC3", ["nc2_etf", "nc2_equinorm", "nc2_equiangular", "nc3"], [0.0]),
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
    run: SavedRun, other: SavedRun, num_points: int = 21, bn_batches: int = 50
) -> list[dict]:
    """Metrics along `(1−ω)θ₁ + ωθ₂` between the last checkpoints of two runs."""
    if (run.config.model, run.config.dataset) != (other.config.model, other.config.dataset):
        raise ValueError("lmc needs two runs of the same model and dataset.")
    a, b = run.variables(run.steps[-1]), other.variables(other.steps[-1])
    if a is None or b is None:
        raise ValueError("the last checkpoint of a run is unreadable.")
    omegas = np.linspace(0, 1, num_points)
    stacked = interpolate(a, b, omegas)
    train_ds = pipeline.train_dataset(run.source("train"), run.spec, run.config.batch_size, seed=0)
    if jax.tree.leaves(a["batch_stats"]):
        print(
            f"BatchNorm statistics re-estimated at each ω on {bn_batches} training batches "
            "(running averages, momentum 0.9)."
        )
        stacked = reestimate_batch_stats(
            run.model, stacked, [train_ds[i]["image"] for i in range(bn_batches)]
        )
    evaluator = run.test_evaluator()
    records = _records(evaluator.evaluate_stacked(stacked), omegas.tolist(), "omega")
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


class _MaskState(NamedTuple):
    mask: object


def _keep_masked() -> optax.GradientTransformation:
    """Updates times the mask in the state (ones at init): one program for every mask."""
    return optax.GradientTransformation(
        lambda params: _MaskState(jax.tree.map(jnp.ones_like, params)),
        lambda updates, state, params=None: (
            jax.tree.map(jnp.multiply, updates, state.mask),
            state,
        ),
    )


def finetune(run: SavedRun, pruned: list[tuple[Variables, object]], steps: int) -> list[Variables]:
    """Each `(variables, mask)` after `steps` SGD steps (momentum, lr/10) of the run's loss on
    gradients masked by `mask`, all with one compiled step.

    Pruned weights start at zero, and masked gradients with no weight decay keep
    them there exactly.
    """
    if steps == 0:
        return [variables for variables, _ in pruned]
    config = run.config
    tx = optax.chain(
        _keep_masked(), optax.sgd(0.1 * config.learning_rate, momentum=config.momentum)
    )
    step = jax.jit(functools.partial(train_step, loss_fn=run.classifier.loss))
    train_ds = pipeline.train_dataset(run.source("train"), run.spec, config.batch_size, seed=1)
    tuned = []
    for variables, mask in tqdm(pruned, desc="fine-tune"):
        state = TrainState.create(variables, tx)
        state = state.replace(opt_state=(_MaskState(mask), *state.opt_state[1:]))
        for i in range(steps):
            state, _ = step(state, train_ds[i])
        tuned.append(state.variables)
    return tuned


SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def prune(
    run: SavedRun,
    sparsities=SPARSITIES,
    finetune_steps: int = 0,
    max_samples: int = 2048,
) -> list[dict]:
    """Accuracy, MIR/HDR against the head and MIR(features before, after) per sparsity."""
    dense = run.variables(run.steps[-1])
    if dense is None:
        raise ValueError("the last checkpoint is unreadable.")
    pruned = []
    for s in sparsities:
        mask = magnitude_masks(dense["params"], s)
        pruned.append(
            ({**dense, "params": jax.tree.map(jnp.multiply, dense["params"], mask)}, mask)
        )
    stacked = stack(finetune(run, pruned, finetune_steps))
    evaluator = run.test_evaluator()
    values = evaluator.evaluate_stacked(stacked)
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
    run = SavedRun(f.workdir, f.weights)
    if f.mode == "trajectory":
        records = trajectory(run, f.chunk)
    elif f.mode == "lmc":
        if not f.other:
            raise ValueError("--mode lmc needs --other DIR2.")
        other = SavedRun(f.other, f.weights)
        records = linear_mode_connectivity(run, other, f.num_points, f.bn_batches)
    else:
        records = prune(run, finetune_steps=f.finetune_steps, max_samples=f.max_samples)
    x = next(iter(records[0]))
    keys = [k for k in records[0] if k != x]
    print(f"{x:>9} " + " ".join(f"{k:>9}" for k in keys))
    for r in records:
        print(f"{r[x]:>9}" if x == "step" else f"{r[x]:>9.3g}", end=" ")
        print(" ".join(f"{r[k]:>9.4f}" for k in keys))
    print(f"written: {run.workdir / 'analysis' / f.mode}.jsonl and .png")


if __name__ == "__main__":
    flags.DEFINE_string("workdir", None, "Run directory (holds checkpoints/ and config.json).")
    flags.DEFINE_enum("mode", "trajectory", ["trajectory", "lmc", "prune"], "Analysis.")
    flags.DEFINE_string("other", None, "Second run for --mode lmc.")
    flags.DEFINE_enum(
        "weights", None, ["ema", "raw"], "EMA or trained weights (default: what the run evaluated)."
    )
    flags.DEFINE_integer("chunk", 8, "Checkpoints per vmapped evaluation.", lower_bound=1)
    flags.DEFINE_integer("num_points", 21, "ω grid size for lmc.", lower_bound=2)
    flags.DEFINE_integer(
        "bn_batches", 50, "Training batches to re-estimate BatchNorm for lmc.", lower_bound=0
    )
    flags.DEFINE_integer("finetune_steps", 0, "Fine-tuning steps after pruning.", lower_bound=0)
    flags.DEFINE_integer(
        "max_samples", 2048, "Test samples for MIR(before, after) in prune.", lower_bound=2
    )
    flags.mark_flag_as_required("workdir")
    cli.run(main)
