"""Interplay profile of any model: every layer against the head, over checkpoints.

    python -m interplay.trainers.profile --workdir RUN --out DIR          # a classifier run
    python -m interplay.trainers.profile --features A.npz[,B.npz] --out DIR

For every chosen layer `l`, in forward order, the activations `Z_l (n, d_l)` of
a labelled split are measured against the head's class vectors `W (C, d_head)`
through n × n Grams, so the widths may differ: `G(Z_l)` against `G(W_Y)`
(`W_Y`: the head row of each sample's label). From streaming statistics (class
scatter, class moments, class sums of unit features; never an n × n matrix),
over the whole split:

* `h_features = H(G(Z_l))` and `effective_rank = exp(h_features)`;
* `h_heads`, `mi`, `mir`, `hdr` against `G(W_Y)`, and `mi_stderr`, the stated
  error of a Lanczos estimate (0 when exact: `d_l·C ≤ scatter.EXACT_MAX_DIM`);
* `nc1 = tr(Σ_W Σ_B^†) / C`, the within-class variability;
* `silhouette`: the mean cosine silhouette of the classes.

Outputs `(b, ..., d)` are pooled to `(b, d)` first: the global average over the
middle axes by default (`pool="mean"`), the last position (`"last"`: the token
a transformer's head reads), everything flattened (`"flatten"`), or any
`(name, x) → (b, d')`.

The layers come from the model unmodified: a Flax Linen module through
`capture_intermediates`, a Flax NNX module through `nnx.capture`. Arrays from
any other framework go through `profile_features` (or `--features`: an `.npz`
with `labels (n,)`, `head (C, d_head)` and one `(n, d_l)` array per layer, in
forward order).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from absl import app, flags
from flax import nnx
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from interplay.infotheory import _checks, clustering, features_dual, scatter
from interplay.infotheory import collapse_metrics as nc

POOLS = ("mean", "last", "flatten")
METRICS = ("h_features", "effective_rank", "h_heads", "mi", "mir", "hdr", "mi_stderr", "nc1")
METRICS += ("silhouette",)

#: Layers chosen by default, besides every block (a module with submodules): their outputs.
LINEN_LAYERS = (
    nn.Dense,
    nn.DenseGeneral,
    nn.Conv,
    nn.ConvTranspose,
    nn.MultiHeadDotProductAttention,
)
NNX_LAYERS = (nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.ConvTranspose, nnx.MultiHeadAttention)

Layers = Sequence[str] | Callable[[str, type], bool] | None
Pool = str | Callable[[str, jax.Array], jax.Array]


def _name(path) -> str:
    return "/".join(str(p) for p in path if p != "__call__")


def _linen_outputs(model: nn.Module, apply_kwargs: Mapping[str, Any], types: dict):
    """`(variables, inputs) → {name: output}` of every Linen submodule's `__call__` (and what
    the model sows into `intermediates` itself) that is one array."""

    def keep(module, method):
        types[_name(module.path)] = type(module)  # recorded while tracing
        return method == "__call__"

    def outputs(variables, inputs):
        _, state = model.apply(
            variables, inputs, capture_intermediates=keep, mutable=["intermediates"], **apply_kwargs
        )
        flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(state["intermediates"]))
        return {_name(k): v[0] for k, v in flat.items() if isinstance(v[0], jax.Array)}

    return outputs


def _nnx_outputs(graphdef, apply_kwargs: Mapping[str, Any]):
    """`(state, inputs) → {name: output}` of every NNX submodule's methods (`nnx.capture`)
    that return one array."""

    def outputs(state, inputs):
        module = nnx.merge(graphdef, state)
        forward = nnx.capture(module, nnx.Intermediate, method_outputs=nnx.Intermediate)
        _, captured = forward(inputs, **apply_kwargs)
        values = {_name(p): v.get_value()[0] for p, v in nnx.to_flat_state(captured)}
        return {n: v for n, v in values.items() if isinstance(v, jax.Array)}

    return outputs


def _forward_order(outputs: Callable, variables, inputs) -> tuple[list[str], dict]:
    """Names of `outputs`' arrays in the order the forward pass computes them (the index of
    the equation that produces each; a block's output after its last layer's, which it may
    share), and their shapes, from one trace."""
    closed, shapes = jax.make_jaxpr(outputs, return_shape=True)(variables, inputs)
    names = list(shapes)  # the jaxpr's outputs follow the dict's flattening: sorted keys
    producer = {id(v): i for i, eqn in enumerate(closed.jaxpr.eqns) for v in eqn.outvars}
    index = {
        n: producer.get(id(v), -1) for n, v in zip(sorted(names), closed.jaxpr.outvars, strict=True)
    }
    return sorted(names, key=lambda n: (index[n], -n.count("/"), n)), shapes


def _choose(names, shapes, types, layers: Layers, defaults, batch: int) -> list[str]:
    """The chosen layer names among the model's outputs with the batch's leading axis."""
    arrays = [n for n in names if n and len(shapes[n].shape) >= 2 and shapes[n].shape[0] == batch]
    if layers is None:
        blocks = {n for n in arrays for m in arrays if m.startswith(n + "/")}
        chosen = [n for n in arrays if n in blocks or issubclass(types.get(n, object), defaults)]
    elif callable(layers):
        chosen = [n for n in arrays if layers(n, types.get(n, object))]
    else:
        unknown = sorted(set(layers) - set(arrays))
        if unknown:
            raise ValueError(f"layers {unknown} are not outputs of the model; it has: {arrays}.")
        chosen = [n for n in arrays if n in set(layers)]
    if not chosen:
        raise ValueError(f"layers matched no layer of the model; its layers are: {arrays}.")
    return chosen


def _pool(name: str, x: jax.Array, pool: Pool) -> jax.Array:
    if callable(pool):
        x = pool(name, x)
    elif x.ndim > 2 and pool == "mean":
        x = x.mean(axis=tuple(range(1, x.ndim - 1)))
    elif x.ndim > 2 and pool == "last":
        x = x.reshape(x.shape[0], -1, x.shape[-1])[:, -1]
    elif x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    return jnp.asarray(x, jnp.promote_types(x.dtype, jnp.float32))


class _Passes:
    """The two jitted passes over batches and the finish of one model's chosen layers.

    Each layer keeps the smaller sufficient statistic of its interplay, as
    `dataset_interplay` does: its class scatter (`C·d²`), or, where Lanczos is needed
    (`d·C` above `scatter.EXACT_MAX_DIM`) and `n < C·d`, its features themselves (`n·d`,
    measured by `features_dual`).
    """

    def __init__(
        self, outputs, names, shapes, num_samples, pool, num_classes, method, key, vectorize
    ):
        self.names, self.num_classes, self.key = names, num_classes, key
        self.widths = {n: shapes[n].shape[1] for n in names}
        self.methods = {
            n: scatter.choose_method(d, num_classes) if method == "auto" else method
            for n, d in self.widths.items()
        }
        self.kept = {
            n
            for n, d in self.widths.items()
            if self.methods[n] == "lanczos" and num_samples < num_classes * d
        }

        def pooled(variables, inputs):
            out = outputs(variables, inputs)
            return {n: _pool(n, out[n], pool) for n in names}

        def first(variables, inputs, labels, carry):
            z = pooled(variables, inputs)
            new = {}
            for n in names:
                new[n] = {
                    "moments": nc.update_moments(carry[n]["moments"], z[n], labels),
                    "unit_sums": carry[n]["unit_sums"]
                    + clustering.unit_sums(z[n], labels, num_classes),
                }
                if n not in self.kept:
                    new[n]["stats"] = scatter.update(carry[n]["stats"], z[n], labels)
            finite = {n: jnp.all(jnp.isfinite(z[n])) for n in names}
            return new, finite, {n: z[n] for n in self.kept}

        def second(variables, inputs, labels, carry):
            z = pooled(variables, inputs)
            silhouettes = {}
            for n in names:
                counts = carry[n]["moments"].counts
                sums = clustering.cosine_sums(z[n], labels, carry[n]["unit_sums"], counts)
                silhouettes[n] = clustering.silhouette_from_sums(sums, labels, counts).sum()
            return silhouettes

        axes = (0, None, None, 0)
        self.first = jax.jit(jax.vmap(first, axes) if vectorize else first)
        self.second = jax.jit(jax.vmap(second, axes) if vectorize else second)

    def carry(self, copies: int | None) -> dict:
        carry = {}
        for n, d in self.widths.items():
            carry[n] = {
                "moments": nc.init_moments(self.num_classes, d),
                "unit_sums": jnp.zeros((self.num_classes, d)),
            }
            if n not in self.kept:
                carry[n]["stats"] = scatter.init(self.num_classes, d)
        if copies is None:
            return carry
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (copies, *x.shape)), carry)

    def finish(self, carry, silhouettes, head, features, labels) -> list[dict]:
        """Records of one checkpoint; `features[n]` the kept `(n, d)` features of layer `n`."""
        _checks.check_head(head)
        rows = []
        for depth, n in enumerate(self.names):
            if n in self.kept:
                kept = features_dual.keep(features[n], labels, self.num_classes)
                r = features_dual.measure(kept, jnp.asarray(head, kept.blocks.dtype), self.key)
            else:
                r = scatter.measure(
                    carry[n]["stats"], head, method=self.methods[n], key=self.key, match_width=False
                )
            values = jax.device_get(
                {**r._asdict(), **_collapse(carry[n]["moments"], silhouettes[n])}
            )
            rows.append(
                {
                    "layer": n,
                    "depth": depth,
                    "width": self.widths[n],
                    **{k: float(values[k]) for k in ("h_features", "h_heads", "mi", "mir", "hdr")},
                    "effective_rank": float(np.exp(values["h_features"])),
                    "mi_stderr": float(values["mi_stderr"]),
                    "nc1": float(values["nc1"]),
                    "silhouette": float(values["silhouette"]),
                }
            )
        return rows


@jax.jit
def _collapse(moments, silhouette) -> dict:
    """NC1 and the mean silhouette of one layer from its moments and silhouette sum."""
    return {
        "nc1": nc.within_class_variability(moments),
        "silhouette": silhouette / moments.counts.sum(),
    }


def _batches(batches: Iterable, num_classes: int) -> list[tuple[Any, jax.Array]]:
    """The batches as a list (two passes read them), labels checked against their inputs."""
    kept = []
    for inputs, labels in batches:
        labels = jnp.asarray(labels)
        rows = {jnp.shape(x)[0] for x in jax.tree.leaves(inputs)}
        if rows != {labels.shape[0]}:
            raise ValueError(
                f"a batch has {labels.shape[0]} labels for inputs of {sorted(rows)} rows."
            )
        _checks.check_labels(labels, num_classes, labels.shape[0])
        kept.append((inputs, labels))
    if sum(len(y) for _, y in kept) < 2:
        raise ValueError("the profile needs at least 2 labelled samples.")
    return kept


def _heads(head, variables: list, num_classes: int | None) -> list[jax.Array]:
    """One `(C, d_head)` head per checkpoint: an array (shared), a sequence, a stacked
    `(K, C, d)` array, or a function of each checkpoint's variables; `num_classes` None
    takes the first head's C."""
    if callable(head):
        heads = [head(v) for v in variables]
    elif isinstance(head, (list, tuple)) or jnp.ndim(head) == 3:
        heads = list(head)
    else:
        heads = [head] * len(variables)
    if len(heads) != len(variables):
        raise ValueError(f"{len(heads)} heads for {len(variables)} checkpoints.")
    num_classes = num_classes or int(jnp.shape(heads[0])[0])
    for h in heads:
        _checks.check_head(_checks.arrays(h), num_classes)
    return heads


def _run(
    outputs,
    names,
    variables,
    batches,
    heads,
    *,
    num_classes,
    pool,
    method,
    key,
    vectorize,
    progress,
    labels,
):
    """Records of every (checkpoint, layer), in checkpoint then forward order."""
    key = jax.random.key(0) if key is None else key
    shapes = jax.eval_shape(
        lambda v, x: {n: _pool(n, o, pool) for n, o in outputs(v, x).items() if n in names},
        variables[0],
        batches[0][0],
    )
    num_samples = sum(len(y) for _, y in batches)
    passes = _Passes(outputs, names, shapes, num_samples, pool, num_classes, method, key, vectorize)
    all_labels = np.concatenate([np.asarray(y) for _, y in batches])
    groups = [variables] if vectorize else [[v] for v in variables]
    records, done = [], 0
    bar = tqdm(total=2 * len(batches) * len(groups), desc="profile", disable=not progress)
    for group in groups:
        if vectorize:
            carry, args = passes.carry(len(group)), jax.tree.map(lambda *x: jnp.stack(x), *group)
        else:
            carry, args = passes.carry(None), group[0]
        kept = []
        for b, (inputs, y) in enumerate(batches):
            carry, finite, z = passes.first(args, inputs, y, carry)
            bad = [n for n, ok in finite.items() if not np.all(np.asarray(ok))]
            if bad:
                raise ValueError(f"non-finite activations in layers {bad}, batch {b}.")
            kept.append(z)
            bar.update()
        axis = 1 if vectorize else 0
        features = {n: jnp.concatenate([z[n] for z in kept], axis) for n in passes.kept}
        silhouettes = None
        for inputs, y in batches:
            s = passes.second(args, inputs, y, carry)
            silhouettes = s if silhouettes is None else jax.tree.map(jnp.add, silhouettes, s)
            bar.update()
        for i in range(len(group)):
            pick = (lambda x, i=i: x[i]) if vectorize else (lambda x: x)
            rows = passes.finish(
                jax.tree.map(pick, carry),
                jax.tree.map(pick, silhouettes),
                heads[done + i],
                jax.tree.map(pick, features),
                all_labels,
            )
            records += [{"checkpoint": labels[done + i], **r} for r in rows]
        done += len(group)
    bar.close()
    return records


def interplay_profile(
    model: nn.Module | nnx.Module,
    variables,
    batches: Iterable[tuple[Any, ArrayLike]],
    head,
    *,
    num_classes: int,
    layers: Layers = None,
    pool: Pool = "mean",
    method: str = "auto",
    key: jax.Array | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
    checkpoints: Sequence | None = None,
    stacked: bool = False,
    vectorize: bool | None = None,
    progress: bool = True,
) -> list[dict]:
    """The interplay profile (module docstring) of every chosen layer of `model`.

    Args:
      model: a Flax Linen module, or a Flax NNX module; not modified.
      variables: Linen: its variables, or a list of them (checkpoints). NNX: None (the
        module's own state), or a list of `nnx.State` of it (checkpoints).
      batches: `(inputs, labels)` pairs; read twice (the silhouette needs the class sums).
      head: `(C, d_head)` class vectors as rows (a Flax Dense kernel: pass `kernel.T`); for
        checkpoints also a list, a stacked `(K, C, d_head)` array or `variables → head`.
      num_classes: C.
      layers: None (every Dense/Conv/attention output and every block output), module
        paths (`"Dense_0"`, `"block/conv"`), or a predicate `(path, module class) → bool`.
      pool: `"mean"`, `"last"`, `"flatten"` or `(path, x) → (b, d')` (module docstring).
      method: `"exact"`, `"lanczos"` or `"auto"` (`scatter.choose_method` per layer).
      key: PRNG key of the Lanczos probes.
      apply_kwargs: keyword arguments of the forward pass (e.g. `{"train": False}`).
      checkpoints: labels of the checkpoints (default 0, 1, …).
      stacked: `variables` is one pytree of `K` checkpoints stacked on a leading axis.
      vectorize: vmap the passes over checkpoints (default: except on a CPU, where XLA
        lowers a batch of convolutions to a slow grouped one and a loop is faster).
      progress: a tqdm bar over the passes.

    Returns:
      One record per (checkpoint, layer), in checkpoint then forward order: `checkpoint`,
      `layer` (its path), `depth`, `width` (`d_l` after pooling) and the `METRICS`.

    Raises:
      ValueError: `layers` matching nothing, labels that disagree with their inputs or lie
        outside `[0, C)`, a head that is not `(C, d_head)`, non-finite activations (naming
        the layers and the batch).
    """
    apply_kwargs = dict(apply_kwargs or {})
    if pool not in POOLS and not callable(pool):
        raise ValueError(f"pool must be one of {POOLS} or a function, got {pool!r}.")
    if stacked:
        count = jax.tree.leaves(variables)[0].shape[0]
        variables = [jax.tree.map(lambda x, i=i: x[i], variables) for i in range(count)]
    many = isinstance(variables, (list, tuple))
    if isinstance(model, nnx.Module):
        graphdef, state = nnx.split(model)
        outputs = _nnx_outputs(graphdef, apply_kwargs)
        types = {_name(p): type(m) for p, m in nnx.iter_graph(model) if isinstance(m, nnx.Module)}
        variables, defaults = (list(variables) if many else [state]), NNX_LAYERS
    else:
        types = {}
        outputs = _linen_outputs(model, apply_kwargs, types)
        variables, defaults = (list(variables) if many else [variables]), LINEN_LAYERS
    batches = _batches(batches, num_classes)
    names, shapes = _forward_order(outputs, variables[0], batches[0][0])
    names = _choose(names, shapes, types, layers, defaults, len(batches[0][1]))
    heads = _heads(head, variables, num_classes)
    labels = list(checkpoints) if checkpoints is not None else list(range(len(variables)))
    if len(labels) != len(variables):
        raise ValueError(f"{len(labels)} checkpoint labels for {len(variables)} checkpoints.")
    if vectorize is None:
        vectorize = len(variables) > 1 and jax.default_backend() != "cpu"
    return _run(
        outputs,
        names,
        variables,
        batches,
        heads,
        num_classes=num_classes,
        pool=pool,
        method=method,
        key=key,
        vectorize=vectorize,
        progress=progress,
        labels=labels,
    )


def profile_features(
    activations: Mapping[str, ArrayLike] | Sequence[Mapping[str, ArrayLike]],
    labels: ArrayLike | Sequence[ArrayLike],
    head,
    *,
    batch_size: int = 4096,
    checkpoints: Sequence | None = None,
    **kwargs,
) -> list[dict]:
    """The profile of activations exported from any framework.

    Args:
      activations: `{layer: (n, d_l)}` in forward order, or a list of them (checkpoints).
      labels: `(n,)`, or one array per checkpoint.
      head: `(C, d_head)`, or one per checkpoint (a list or a stacked array).
      batch_size: rows per streamed batch.
      checkpoints: labels of the checkpoints (default 0, 1, …).
      stacked: `variables` is one pytree of `K` checkpoints stacked on a leading axis.
      **kwargs: `interplay_profile`'s `pool`, `method`, `key` and `progress`.

    Returns:
      `interplay_profile`'s records.
    """
    many = not isinstance(activations, Mapping)
    activations = list(activations) if many else [activations]
    k = len(activations)
    labels = list(labels) if isinstance(labels, (list, tuple)) else [labels] * k
    heads = _heads(head, [None] * k, None)
    checkpoints = list(range(k)) if checkpoints is None else list(checkpoints)
    if not len(labels) == len(checkpoints) == k:
        raise ValueError(f"{len(labels)} label arrays and {len(checkpoints)} labels for {k}.")
    names, num_classes = list(activations[0]), heads[0].shape[0]
    records = []
    for label, arrays, y, h in zip(checkpoints, activations, labels, heads, strict=True):
        if list(arrays) != names:
            raise ValueError(
                f"checkpoint {label} has layers {list(arrays)}; the first has {names}."
            )
        y = np.asarray(y)
        for n, a in arrays.items():
            _checks.check_rank(n, a, 2)
            if len(a) != len(y):
                raise ValueError(f"layer {n!r} has {len(a)} rows for {len(y)} labels.")
        batches = [
            (
                {n: jnp.asarray(a[i : i + batch_size]) for n, a in arrays.items()},
                y[i : i + batch_size],
            )
            for i in range(0, len(y), batch_size)
        ]
        options = {"pool": "mean", "method": "auto", "key": None, "progress": True, **kwargs}
        records += _run(
            lambda _, inputs: inputs,
            names,
            [None],
            _batches(batches, num_classes),
            [h],
            num_classes=num_classes,
            labels=[label],
            vectorize=False,
            **options,
        )
    return records


def plot(records: list[dict], out: pathlib.Path, title: str = "") -> None:
    """`heatmaps.png` (each metric over layer × checkpoint) and `lines.png` (each metric per
    layer over the checkpoints, a line per layer coloured by depth) in `out`."""
    layers = list(dict.fromkeys(r["layer"] for r in records))
    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in records))
    value = {(r["layer"], r["checkpoint"]): r for r in records}
    shown = [m for m in METRICS if m not in ("h_heads", "mi_stderr")]
    grid = {m: np.array([[value[(n, c)][m] for c in checkpoints] for n in layers]) for m in shown}
    cols = 4
    rows = -(-len(shown) // cols)
    for kind in ("heatmaps", "lines"):
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax, m in zip(axes.flat, shown, strict=False):
            if kind == "heatmaps":
                image = ax.imshow(grid[m], aspect="auto", cmap="viridis", interpolation="nearest")
                fig.colorbar(image, ax=ax)
                ax.set_yticks(range(len(layers)), layers, fontsize=6)
                ax.set_xticks(range(len(checkpoints)), checkpoints, fontsize=6, rotation=90)
            else:
                colours = plt.cm.viridis(np.linspace(0, 1, len(layers)))
                for n, row, colour in zip(layers, grid[m], colours, strict=True):
                    ax.plot(checkpoints, row, "o-", ms=2, color=colour, label=n)
                ax.set_xlabel("checkpoint")
            ax.set_title(m)
        for ax in axes.flat[len(shown) :]:
            ax.axis("off")
        if kind == "lines" and len(layers) <= 12:
            axes.flat[0].legend(fontsize=6)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out / f"{kind}.png", dpi=110)
        plt.close(fig)


def write(records: list[dict], out: pathlib.Path, title: str = "") -> None:
    """`profile.jsonl` (a record per line) and the figures of `plot` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "profile.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    plot(records, out, title)


def read_features(path: str | pathlib.Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """`(activations, labels, head)` of an `.npz`: `labels`, `head` and every other array a
    layer, in the file's order."""
    with np.load(path) as f:
        missing = {"labels", "head"} - set(f.files)
        if missing:
            raise ValueError(f"{path} lacks {sorted(missing)}; it needs labels, head and layers.")
        layers = {k: f[k] for k in f.files if k not in ("labels", "head")}
        if not layers:
            raise ValueError(f"{path} holds no layer besides labels and head.")
        return layers, f["labels"], f["head"]


#: The grokking transformer's layers profiled by default: the attention block's output, the
#: MLP's pre- and post-activation and output, the residual stream the head reads (sown by the
#: model) and the logits, each at the `=` position.
GROKKING_LAYERS = ("out", "mlp_in", "mlp_hidden", "mlp_out", "residual", "head")


def profile_run(workdir, *, split: str = "test", weights: str | None = None, steps=None, **kwargs):
    """The profile of a run's checkpoints on `split`, at every step (or `steps`).

    A classifier run (supervised or semi-supervised, `classifier.saved.SavedRun`): its
    model's default layers against its head. A grokking run: `GROKKING_LAYERS` against the
    unembedding's class rows, each seed of a vmapped run in turn (its records carry `seed`).
    `kwargs` are `interplay_profile`'s.
    """
    config = json.loads((pathlib.Path(workdir) / "config.json").read_text())
    if "operation" in config:
        return _grokking_run(pathlib.Path(workdir), split, steps, **kwargs)
    from interplay import models
    from interplay.trainers.classifier.saved import SavedRun
    from interplay.trainers.data import pipeline

    run = SavedRun(workdir, weights)
    pairs = [(s, run.variables(s)) for s in run.steps if steps is None or s in set(steps)]
    steps, variables = zip(*[(s, v) for s, v in pairs if v is not None], strict=True)
    batches = []
    for b in pipeline.eval_batches(run.source(split), run.spec, run.config.eval_batch_size):
        keep = np.asarray(b["mask"]) > 0
        batches.append((b["image"][keep], b["label"][keep]))
    return interplay_profile(
        run.model,
        list(variables),
        batches,
        lambda v: models.head(v["params"]),
        num_classes=run.spec.num_classes,
        checkpoints=list(steps),
        **kwargs,
    )


def _grokking_run(workdir: pathlib.Path, split: str, steps, **kwargs) -> list[dict]:
    from interplay import models
    from interplay.trainers import grokking
    from interplay.trainers.configs import grokking as grokking_config
    from interplay.trainers.core import checkpoints
    from interplay.trainers.data import modular

    config = grokking_config.get_config()
    config.update(json.loads((workdir / "config.json").read_text()))
    exp = grokking.experiment(config)
    manager = checkpoints.manager(workdir / "checkpoints", read_only=True)
    steps = [s for s in sorted(manager.all_steps()) if steps is None or s in set(steps)]
    abstract = jax.eval_shape(exp.init)
    states = [checkpoints.restore(manager, s, abstract)[0] for s in steps]
    data = modular.load(
        modular.modular_config(
            config.p, config.operation, config.train_fraction, config.split_seed
        ),
        config.data_dir,
    )[split]
    tokens, labels = jnp.asarray(data["tokens"]), jnp.asarray(data["label"])
    batches = [(tokens[i : i + 2048], labels[i : i + 2048]) for i in range(0, len(labels), 2048)]
    kwargs = {"layers": list(GROKKING_LAYERS), **kwargs}
    records = []
    for k in range(config.num_seeds):
        variables = [{"params": jax.tree.map(lambda x, k=k: x[k], s.params)} for s in states]
        rows = interplay_profile(
            grokking.make_model(config),
            variables,
            batches,
            lambda v: models.head(v["params"])[: config.p],  # the class rows, not `=`'s
            num_classes=config.p,
            checkpoints=steps,
            **kwargs,
        )
        records += [{"seed": config.seed + k, **r} for r in rows]
    return records


def main(argv) -> None:
    del argv
    f = flags.FLAGS
    if bool(f.workdir) == bool(f.features):
        raise app.UsageError("give exactly one of --workdir and --features.")
    if f.workdir:
        steps = [int(s) for s in f.steps] if f.steps else None
        records = profile_run(f.workdir, split=f.split, weights=f.weights, steps=steps, pool=f.pool)
        out = pathlib.Path(f.out or pathlib.Path(f.workdir) / "profile")
        seeds = sorted({r["seed"] for r in records if "seed" in r})
        for seed in seeds:  # a vmapped grokking run: one profile per seed
            mine = [r for r in records if r["seed"] == seed]
            write(mine, out / f"seed_{seed}", f"{f.workdir}, seed {seed}")
        if seeds:
            print(f"{len(records)} records in {out}/seed_*/profile.jsonl with their figures")
            return
        title = f.workdir
    else:
        files = [read_features(p) for p in f.features]
        records = profile_features(
            [a for a, _, _ in files],
            [y for _, y, _ in files],
            [h for _, _, h in files],
            checkpoints=[pathlib.Path(p).stem for p in f.features],
            pool=f.pool,
        )
        out, title = pathlib.Path(f.out or "profile"), ", ".join(f.features)
    write(records, out, title)
    print(
        f"{len(records)} records in {out / 'profile.jsonl'}; figures {out}/heatmaps.png, lines.png"
    )


if __name__ == "__main__":
    flags.DEFINE_string("workdir", None, "A supervised, semi-supervised or grokking run.")
    flags.DEFINE_list("features", None, "`.npz` files (one per checkpoint): labels, head, layers.")
    flags.DEFINE_string("out", None, "Output directory (default WORKDIR/profile or ./profile).")
    flags.DEFINE_string("split", "test", "The run's split to profile (train or test).")
    flags.DEFINE_enum("weights", None, ["ema", "raw"], "The run's weights (default: evaluated).")
    flags.DEFINE_list("steps", None, "Checkpoint steps (default: all).")
    flags.DEFINE_enum("pool", "mean", list(POOLS), "Pooling of spatial/sequence outputs.")
    app.run(main)
