"""Grokking with information dynamics: full-batch AdamW, many steps per jitted call.

    python -m interplay.trainers.grokking \
        --config interplay/trainers/configs/grokking.py:default --workdir DIR

Every `eval_every` steps (one fused `lax.scan`): loss and accuracy of the train
split (`eval_train/...`), the test split (`eval/...`) and the whole table
(`eval_table/...`), and the interplay of each representation (`REPRESENTATIONS`)
with the unembedding on each sample set (`SAMPLES`). Stops `steps_after_grok`
steps after test accuracy first reaches `grok_threshold` (`grokked_at`), or at
`num_steps`. Writes `metrics.jsonl`, `summary.json` (landmarks and the lead of
each early-warning signal over the jump), `grokking.png` and Orbax checkpoints
(resumable). With `num_seeds > 1` the seeds train together in one vmapped state
and each writes its own `DIR/seed_<s>/`.
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
from absl import flags, logging

from interplay import infotheory as it
from interplay import models
from interplay.models.transformer import STYLES, Transformer
from interplay.trainers import configs, grokfast
from interplay.trainers.configs import grokking as grokking_config
from interplay.trainers.core import cli, logs, loop, plots
from interplay.trainers.core.state import TrainState, train_step
from interplay.trainers.data import modular

#: Representation → what it is; each is measured against the unembedding `W_U (C, width)`.
REPRESENTATIONS = {
    "features": "what the head reads: the residual stream at `=` (after ln_final if any)",
    "residual": "the residual stream at `=` before any final LayerNorm",
    "attention": "the attention block's output at `=` (what it adds to the stream)",
    "mlp_hidden": "the MLP's ReLU activations; head `W_U·W_outᵀ (C, mlp_dim)`, their logit map",
}
#: A representation named `<name>_centred` is measured with its mean over the measured
#: samples removed: a direction every sample shares (the residual stream grows one during
#: memorization) otherwise dominates the cosine Gram `G(Z)` and its entropy.
CENTRED = "_centred"
#: Sample set → metric prefix. `batch` is a fresh random draw from the train split every eval.
SAMPLES = {"train": "eval_train", "test": "eval", "table": "eval_table", "batch": "eval_batch"}
INTERPLAY = ("mir", "hdr", "mi", "h_features", "h_heads")


def interplay_key(samples: str, representation: str, name: str) -> str:
    """`eval_train/mir` for the features, `eval_train/attention_mir` for another representation."""
    prefix = "" if representation == "features" else f"{representation}_"
    return f"{SAMPLES[samples]}/{prefix}{name}"


def _names(value: str, known, field: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise ValueError(f"config.{field}={value!r}: choose from {', '.join(known)}.")
    return names


def _representations(value: str) -> tuple[str, ...]:
    known = [n + c for n in REPRESENTATIONS for c in ("", CENTRED)]
    return _names(value, known, "representations")


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ValueError` naming the first bad config value."""
    modular.modular_config(config.p, config.operation, config.train_fraction, config.split_seed)
    positive = ("num_steps", "eval_every", "checkpoint_every", "learning_rate", "warmup_steps")
    configs.check_positive(config, (*positive, "width", "num_heads", "head_dim", "mlp_dim"))
    for key in ("num_steps", "checkpoint_every"):
        if config[key] % config.eval_every:
            raise ValueError(
                f"config.{key}={config[key]} must be a multiple of eval_every={config.eval_every}."
            )
    if config.interplay_samples is not None and config.interplay_samples < 2:
        raise ValueError(
            f"config.interplay_samples must be ≥ 2 or None, got {config.interplay_samples}."
        )
    configs.check_non_negative(config, ("weight_decay", "steps_after_grok", "grokfast_lamb"))
    for key in ("b1", "b2", "grokfast_alpha"):
        if not 0 <= config[key] < 1:
            raise ValueError(f"config.{key} must be in [0, 1), got {config[key]}.")
    if not 0 < config.grok_threshold <= 1:
        raise ValueError(f"config.grok_threshold must be in (0, 1], got {config.grok_threshold}.")
    if config.num_seeds < 1:
        raise ValueError(f"config.num_seeds must be ≥ 1, got {config.num_seeds}.")
    _representations(config.representations)
    _names(config.samples, SAMPLES, "samples")
    if config.model_style not in STYLES:
        raise ValueError(
            f"config.model_style must be one of {', '.join(STYLES)}, got {config.model_style!r}."
        )


def make_model(config) -> Transformer:
    return Transformer(
        vocab_size=config.p + 1,
        num_classes=config.p,
        width=config.width,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        mlp_dim=config.mlp_dim,
        layer_norm=config.layer_norm,
        style=config.model_style,
    )


def make_optimizer(config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
    tx = optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
    if config.grokfast:
        tx = optax.chain(grokfast.ema_filter(config.grokfast_alpha, config.grokfast_lamb), tx)
    return tx, schedule


def loss_and_accuracy(params, model, tokens, labels):
    logits, features = model.apply({"params": params}, tokens)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (jnp.mean(jnp.argmax(logits, -1) == labels), features)


def loss_fn(params, state, batch, *, model):
    """Full-batch cross-entropy; no batch statistics."""
    del state
    return loss_and_accuracy(params, model, *batch)[0], {}


def fused_steps(state: TrainState, tokens, labels, *, model, num_steps: int):
    """`num_steps` train steps in one `lax.scan`; returns the state and the per-step metrics."""
    step = functools.partial(train_step, loss_fn=functools.partial(loss_fn, model=model))
    return jax.lax.scan(lambda s, _: step(s, (tokens, labels)), state, None, length=num_steps)


def taps(params, model: Transformer, tokens) -> tuple[jax.Array, dict]:
    """Logits and `{representation: (features (n, k), head (C, k))}` of every `REPRESENTATIONS`."""
    (logits, features), sown = model.apply({"params": params}, tokens, mutable=["intermediates"])
    sown = {k: v[0] for k, v in sown["intermediates"].items()}
    head = models.head(params)[: model.num_classes]  # style="nanda" also unembeds `=`
    return logits, {
        "features": (features, head),
        "residual": (sown["residual"], head),
        "attention": (sown["attention"], head),
        "mlp_hidden": (sown["mlp_hidden"], head @ params["mlp_out"]["kernel"].T),
    }


def evaluate(params, key, table, subsets, *, num_train: int, model, representations, samples):
    """Loss and accuracy of each split, interplay of each representation on each sample set.

    Args:
      params: one member's parameters.
      key: draws the `batch` sample set (`len(subsets["train"])` train samples).
      table: `(tokens, labels)` of the whole table, the train split first.
      num_train: size of the train split.
      subsets: sample set → fixed indices into the table.
      representations: `REPRESENTATIONS` names, each optionally with the suffix `CENTRED`.
      samples: `SAMPLES` names.
    """
    tokens, labels = table
    logits, reps = taps(params, model, tokens)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = jnp.argmax(logits, -1) == labels
    out = {}
    for prefix, part in (
        ("eval_train", slice(0, num_train)),
        ("eval", slice(num_train, None)),
        ("eval_table", slice(None)),
    ):
        out[f"{prefix}/loss"], out[f"{prefix}/accuracy"] = losses[part].mean(), correct[part].mean()
    indices = dict(subsets)
    indices["batch"] = jax.random.choice(key, num_train, (len(subsets["train"]),), replace=False)
    for name in samples:
        idx = indices[name]
        for rep in representations:
            features, head = reps[rep.removesuffix(CENTRED)]
            features = features[idx]
            if rep.endswith(CENTRED):
                features = features - features.mean(0)
            r = it.interplay(features, labels[idx], head)
            out.update({interplay_key(name, rep, k): getattr(r, k) for k in INTERPLAY})
    return out


def _subset(n: int, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def first_at(records: list[dict], key: str, threshold: float) -> int | None:
    """The first step whose `key` is at least `threshold`."""
    return next((r["step"] for r in records if r.get(key, -np.inf) >= threshold), None)


def _turns(records: list[dict]) -> dict[str, int]:
    """Step of each early-warning signal over the whole run.

    `<mir key> peak`: MIR's maximum (its turn-down); `<hdr key> rise`: HDR's
    largest rise between consecutive evals (its spike); `<prefix>/effective_rank
    fall`: the largest fall of `exp(h_features)` (RankMe's effective rank);
    `weight_norm peak`: the maximum of the parameter norm.
    """
    evals = logs.evals(records)
    steps = np.array([r["step"] for r in evals])
    turns = {}
    for key in sorted(evals[0]):
        values = np.array([r[key] for r in evals])
        if key.endswith("/mir") or key.endswith("_mir"):
            turns[f"{key} peak"] = int(steps[np.nanargmax(values)])
        elif key.endswith("hdr") and len(values) > 1:
            turns[f"{key} rise"] = int(steps[1:][np.nanargmax(np.diff(values))])
        elif key.endswith("h_features") and len(values) > 1:
            rank = key.replace("h_features", "effective_rank")
            turns[f"{rank} fall"] = int(steps[1:][np.nanargmax(-np.diff(np.exp(values)))])
    norms = [(r["step"], r["train/param_norm"]) for r in records if "train/param_norm" in r]
    if norms:
        turns["weight_norm peak"] = int(max(norms, key=lambda x: x[1])[0])
    return turns


def summarize(records: list[dict], threshold: float, jump: float = 0.5) -> dict:
    """Landmarks of one run and the lead of each early-warning signal over the test jump.

    Returns:
      `train_fit_at` (train accuracy ≥ `threshold`), `jump_at` (test ≥ `jump`),
      `grokked_at` (test ≥ `threshold`); `landmarks[key]` for every MIR/HDR key:
      its value at init, at `train_fit_at`, `jump_at` and `grokked_at`, and its
      `max`/`min` as `[step, value]`; `signals[name]`: `step` and `lead_jump`,
      `lead_grokked` (landmark step − signal step; positive = before).
    """
    evals = logs.evals(records)
    at = {
        "train_fit_at": first_at(evals, "eval_train/accuracy", threshold),
        "jump_at": first_at(evals, "eval/accuracy", jump),
        "grokked_at": first_at(evals, "eval/accuracy", threshold),
    }
    by_step = {r["step"]: r for r in evals}
    landmarks = {}
    for key in sorted(k for k in evals[0] if k.endswith("mir") or k.endswith("hdr")):
        values = [(r["step"], r[key]) for r in evals]
        landmarks[key] = {
            "init": evals[0][key],
            **{
                name.removesuffix("_at"): by_step[step][key] if step is not None else None
                for name, step in at.items()
            },
            "max": list(max(values, key=lambda x: x[1])),
            "min": list(min(values, key=lambda x: x[1])),
        }

    def lead(landmark, step):
        return None if at[landmark] is None else at[landmark] - step

    signals = {
        name: {
            "step": step,
            "lead_jump": lead("jump_at", step),
            "lead_grokked": lead("grokked_at", step),
        }
        for name, step in _turns(records).items()
    }
    return {**at, "landmarks": landmarks, "signals": signals}


def experiment(config: ml_collections.ConfigDict) -> loop.Experiment:
    """The grokking `Experiment`: the whole train split is every step's batch.

    The state holds `num_seeds` members stacked on a leading axis; training and
    evaluation are vmapped over it.
    """
    data = modular.load(
        modular.modular_config(
            config.p, config.operation, config.train_fraction, config.split_seed
        ),
        config.data_dir,
    )
    num_train, num_test = len(data["train"]["label"]), len(data["test"]["label"])
    table = tuple(
        jnp.asarray(np.concatenate([data["train"][k], data["test"][k]]))
        for k in ("tokens", "label")
    )
    tokens, labels = table[0][:num_train], table[1][:num_train]
    size = config.interplay_samples
    subsets = {
        "train": _subset(num_train, size, config.seed),
        "test": num_train + _subset(num_test, size, config.seed + 1),
        "table": _subset(num_train + num_test, size, config.seed + 2),
    }
    seeds = jnp.arange(config.seed, config.seed + config.num_seeds)
    # One member per seed, each in workdir/seed_<s>; a single seed writes into the workdir.
    members = tuple(f"seed_{s}" for s in seeds.tolist()) if config.num_seeds > 1 else ("",)
    model, (tx, schedule) = make_model(config), make_optimizer(config)

    @functools.partial(jax.jit, static_argnames="num_steps", donate_argnums=0)
    def scan_steps(state, tokens, labels, num_steps):
        fused = functools.partial(fused_steps, model=model, num_steps=num_steps)
        state, per_step = jax.vmap(fused, in_axes=(0, None, None))(state, tokens, labels)
        return state, jax.tree.map(lambda x: x.T, per_step)  # (steps, members)

    @jax.jit
    def measure(params, steps, table, subsets):
        keys = jax.vmap(lambda s, t: jax.random.fold_in(jax.random.key(s), t))(seeds, steps)
        one_member = functools.partial(
            evaluate,
            num_train=num_train,
            model=model,
            representations=_representations(config.representations),
            samples=_names(config.samples, SAMPLES, "samples"),
        )
        out = jax.vmap(one_member, in_axes=(0, 0, None, None))(params, keys, table, subsets)
        return {k: v.T for k, v in out.items()}

    def init() -> TrainState:
        keys = jax.vmap(jax.random.key)(seeds)
        return jax.vmap(lambda k: TrainState.create(model.init(k, tokens[:1]), tx))(keys)

    def train(state, first, num_steps):
        return scan_steps(state, tokens, labels, num_steps)

    def evaluate_state(state) -> dict:
        values = jax.device_get(measure(state.params, state.step, table, subsets))
        return {k: np.asarray(v, np.float64) for k, v in values.items()}

    def finished(runs) -> bool:
        def done(records):
            at = first_at(records, "eval/accuracy", config.grok_threshold)
            return at is not None and records[-1]["step"] >= at + config.steps_after_grok

        return all(done(records) for records in runs)

    def plot(records, workdir):
        seed = workdir.name.removeprefix("seed_") if len(members) > 1 else config.seed
        plots.plot_grokking(
            records,
            first_at(records, "eval/accuracy", config.grok_threshold),
            workdir / "grokking.png",
            title=f"({config.operation}) mod {config.p}, "
            f"{round(100 * config.train_fraction)}% train, seed {seed}",
        )

    return loop.Experiment(
        name=f"grokking p={config.p}" + (f" × {len(members)} seeds" if len(members) > 1 else ""),
        init=init,
        train=train,
        evaluate=evaluate_state,
        learning_rate=schedule,
        plot=plot,
        finished=finished,
        members=members,
    )


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | pathlib.Path
) -> list[dict]:
    """Trains until grokking (plus `steps_after_grok`) or `num_steps`; returns the summaries.

    One summary per seed, each also written to its `summary.json` (`DIR/` for one
    seed, `DIR/seed_<s>/` for `num_seeds > 1`).
    One process: the full batch (3 830 examples at p = 113) fits one device; seeds, not
    data, are what to spread (`num_seeds`).
    """
    if jax.process_count() > 1:
        raise ValueError(
            f"interplay.trainers.grokking runs in one process, not {jax.process_count()}: its "
            "full batch fits one device; train more seeds with --config.num_seeds instead."
        )
    validate(config)
    workdir = pathlib.Path(workdir)
    exp = experiment(config)
    runs = loop.run(exp, config, workdir, grokking_config.RESUMABLE)
    summaries = []
    for records, member in zip(runs, exp.members, strict=True):
        summary = {
            **summarize(records, config.grok_threshold),
            "last_step": records[-1]["step"],
            "time": records[-1]["time"],
        }
        (workdir / member / "summary.json").write_text(json.dumps(summary, indent=1))
        summaries.append(summary)
    return summaries


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    workdir = pathlib.Path(flags.FLAGS.workdir)
    for summary in train_and_evaluate(flags.FLAGS.config, workdir):
        print({k: summary[k] for k in ("train_fit_at", "jump_at", "grokked_at", "last_step")})
    print(
        f"written to {workdir}/: metrics.jsonl, summary.json, grokking.png, tensorboard/ "
        "(per seed_<s>/ with --config.num_seeds > 1), checkpoints/, config.json; "
        f"python -m interplay.trainers.studies.grokking_study --workdirs {workdir} prints the "
        "lead table."
    )


if __name__ == "__main__":
    cli.define_config_flags(grokking_config)
    cli.run(main)
