"""Layer profiles over training, and He & Su's law of data separation.

    python -m interplay.trainers.studies.layer_profile --mode digits --workdir ROOT --seeds 0,1,2
    python -m interplay.trainers.studies.layer_profile --mode grokking --workdir GROK_RUN
    python -m interplay.trainers.studies.layer_profile --mode report --workdir ROOT \\
        [--grokking GROK_RUN] --out docs/layer_profile

`digits` trains the 8-layer MLP (`mlp8`) and the small CNN on the digits with the
supervised trainer (`STEPS` steps, a checkpoint every `EVERY`) for each seed and profiles
every checkpoint on the train split: the post-activation output of each hidden layer
(`relu` of each Dense / BatchNorm output, the CNN's spatially averaged) and the logits.
`grokking` profiles the checkpoints of a vmapped grokking run on its test pairs: the
attention block's output, the MLP's pre- and post-activation, its output, the residual
stream the head reads, and the logits (each at the `=` position), for each seed.
`report` writes the tables and figures.

He & Su (PNAS 2023): in a well-trained network the separation fuzziness
`D_l = tr(Σ_W Σ_B^†)` (here `C · nc1`) falls geometrically with depth,
`D_l ≈ ρ^l D_0`, so `log nc1` is linear in the layer index. `law` fits it by least
squares over the hidden layers of one checkpoint: the ratio `ρ = exp(slope)` and R².
"""

from __future__ import annotations

import json
import pathlib

import jax
import matplotlib.pyplot as plt
import numpy as np
from absl import app, flags

from interplay.trainers import grokking, profile, supervised
from interplay.trainers.configs import supervised as supervised_config
from interplay.trainers.core import checkpoints, logs

STEPS, EVERY = 3000, 250
#: Post-activation layers of each digits model (the `relu` follows them), then the logits.
LAYERS = {
    "mlp8": [f"Dense_{i}" for i in range(8)] + ["head"],
    "small_cnn": ["BatchNorm_0", "BatchNorm_1", "Dense_0", "head"],
}


def post_activation(name: str, x: jax.Array) -> jax.Array:
    """`relu` of a hidden layer's output (the logits as they are), averaged over space."""
    x = x if name == "head" else jax.nn.relu(x)
    return x.mean(axis=tuple(range(1, x.ndim - 1))) if x.ndim > 2 else x


def train_digits(root: pathlib.Path, model: str, seed: int) -> list[dict]:
    """Trains `model` on the digits for `seed` (resumable) and profiles its checkpoints."""
    workdir = root / model / f"seed{seed}"
    config = supervised_config.get_config("digits")
    config.update(model=model, seed=seed, num_steps=STEPS, eval_every=EVERY)
    config.update(checkpoint_every=EVERY)
    supervised.train_and_evaluate(config, workdir)
    records = profile.profile_run(
        workdir, split="train", layers=LAYERS[model], pool=post_activation, progress=False
    )
    profile.write(records, workdir / "profile", f"{model}, seed {seed}, train split")
    return records


def profile_grokking(workdir: pathlib.Path, every: int = 1000) -> dict[int, list[dict]]:
    """`{seed: records}` of a grokking run's checkpoints (every `every` steps) on its test
    pairs (`profile.profile_run`), each also written to `workdir/seed_<s>/profile/`."""
    manager = checkpoints.manager(workdir / "checkpoints", read_only=True)
    steps = [s for s in manager.all_steps() if s % every == 0]
    records = profile.profile_run(workdir, split="test", steps=steps)
    out = {}
    for seed in sorted({r["seed"] for r in records}):
        out[seed] = [r for r in records if r["seed"] == seed]
        profile.write(out[seed], workdir / f"seed_{seed}" / "profile", f"grokking seed {seed}")
    return out


def law(records: list[dict], checkpoint) -> dict:
    """`log nc1 = a + depth · log ρ` fitted over the hidden layers at `checkpoint`."""
    rows = [r for r in records if r["checkpoint"] == checkpoint and r["layer"] != "head"]
    depth = np.arange(1, len(rows) + 1)
    log_nc1 = np.log([r["nc1"] for r in rows])
    slope, intercept = np.polyfit(depth, log_nc1, 1)
    residual = log_nc1 - (intercept + slope * depth)
    r2 = 1 - residual.var() / log_nc1.var()
    return {
        "checkpoint": checkpoint,
        "ratio": float(np.exp(slope)),
        "r2": float(r2),
        "log_nc1": log_nc1.tolist(),
    }


def _read(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _by(records, key, layer):
    rows = [r for r in records if r["layer"] == layer]
    return [r["checkpoint"] for r in rows], [r[key] for r in rows]


def report(root: pathlib.Path, grokking_run: pathlib.Path | None, out: pathlib.Path) -> str:
    """Tables (markdown, returned and written to `out/tables.md`), per-seed fits
    (`out/law.json`) and figures (`out/depth.png`, `out/law_over_training.png`,
    `out/grokking.png`)."""
    out.mkdir(parents=True, exist_ok=True)
    runs = {
        model: {
            int(p.parent.parent.name.removeprefix("seed")): _read(p)
            for p in sorted((root / model).glob("seed*/profile/profile.jsonl"))
        }
        for model in LAYERS
    }
    lines, fits = [], {}
    lines += [
        "| model | seed | final train loss | test accuracy | ratio ρ (final) | R² (final) "
        "| nc1 first → last hidden |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, seeds in runs.items():
        for seed, records in seeds.items():
            final = records[-1]["checkpoint"]
            fit = law(records, final)
            history = [law(records, c) for c in dict.fromkeys(r["checkpoint"] for r in records)]
            fits[f"{model}/seed{seed}"] = {"final": fit, "over_training": history}
            metrics = logs.read(root / model / f"seed{seed}" / "metrics.jsonl")
            loss = [r["train/loss"] for r in metrics if "train/loss" in r][-1]
            nc1 = np.exp(fit["log_nc1"])
            lines.append(
                f"| {model} | {seed} | {loss:.4f} | {logs.evals(metrics)[-1]['eval/accuracy']:.4f} "
                f"| {fit['ratio']:.3f} | {fit['r2']:.3f} | {nc1[0]:.3g} → {nc1[-1]:.3g} |"
            )
    (out / "law.json").write_text(json.dumps(fits, indent=1))

    keys = ("nc1", "mir", "hdr", "effective_rank")
    fig, axes = plt.subplots(
        len(runs), len(keys), figsize=(4 * len(keys), 3.2 * len(runs)), squeeze=False
    )
    for row, (model, seeds) in zip(axes, runs.items(), strict=True):
        for ax, key in zip(row, keys, strict=True):
            for seed, records in seeds.items():
                for c, colour in (
                    (records[0]["checkpoint"], "0.7"),
                    (records[-1]["checkpoint"], f"C{seed}"),
                ):
                    rows = [r for r in records if r["checkpoint"] == c]
                    ax.plot(
                        [r["depth"] + 1 for r in rows],
                        [r[key] for r in rows],
                        "o-",
                        ms=3,
                        color=colour,
                        label=f"seed {seed}, step {c}",
                    )
            ax.set_yscale("log" if key == "nc1" else "linear")
            ax.set_title(f"{model}: {key}")
            ax.set_xlabel("layer (last: logits)")
        row[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "depth.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, fit in fits.items():
        steps = [h["checkpoint"] for h in fit["over_training"]]
        ax.plot(steps, [h["r2"] for h in fit["over_training"]], "o-", ms=2, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("R² of log nc1 vs depth")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "law_over_training.png", dpi=110)
    plt.close(fig)

    if grokking_run is not None:
        lines += ["", *grokking_table(grokking_run, out)]
    text = "\n".join(lines) + "\n"
    (out / "tables.md").write_text(text)
    return text


def grokking_table(run: pathlib.Path, out: pathlib.Path) -> list[str]:
    """Per seed and layer: MIR, HDR and nc1 at the last checkpoint before the jump (the first
    eval with test accuracy ≥ 0.5) and the first once grokked (test accuracy ≥ 0.99)."""
    lines = [
        "| seed | jump / grokked at | checkpoints | layer | MIR | HDR | nc1 |",
        "|---|---|---|---|---|---|---|",
    ]
    members = sorted(run.glob("seed_*/profile/profile.jsonl"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for path in members:
        member = path.parent.parent
        records = _read(path)
        metrics = logs.read(member / "metrics.jsonl")
        jump = grokking.first_at(metrics, "eval/accuracy", 0.5)
        grokked = grokking.first_at(metrics, "eval/accuracy", 0.99)
        steps = sorted({r["checkpoint"] for r in records})
        before = max((s for s in steps if jump is None or s < jump), default=steps[0])
        after = min((s for s in steps if grokked is not None and s >= grokked), default=steps[-1])
        for layer in profile.GROKKING_LAYERS:
            b, a = (
                next(r for r in records if r["checkpoint"] == s and r["layer"] == layer)
                for s in (before, after)
            )
            lines.append(
                f"| {member.name} | {jump} / {grokked} | {before} → {after} | {layer} "
                f"| {b['mir']:.3f} → {a['mir']:.3f} | {b['hdr']:.3f} → {a['hdr']:.3f} "
                f"| {b['nc1']:.3g} → {a['nc1']:.3g} |"
            )
        for ax, key in zip(axes, ("mir", "hdr", "nc1"), strict=True):
            for i, layer in enumerate(profile.GROKKING_LAYERS):
                x, y = _by(records, key, layer)
                ax.plot(
                    x,
                    y,
                    color=f"C{i}",
                    lw=1,
                    label=layer if member == members[0].parent.parent else None,
                )
            if jump is not None:
                ax.axvline(jump, color="k", lw=0.5, ls="--")
            ax.set_title(f"grokking, test pairs: {key}")
            ax.set_yscale("log" if key == "nc1" else "linear")
            ax.set_xlabel("step")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "grokking.png", dpi=110)
    plt.close(fig)
    return lines


def main(argv) -> None:
    del argv
    f = flags.FLAGS
    root = pathlib.Path(f.workdir)
    if f.mode == "digits":
        for model in LAYERS:
            for seed in map(int, f.seeds):
                train_digits(root, model, seed)
    elif f.mode == "grokking":
        profile_grokking(root)
    else:
        print(report(root, pathlib.Path(f.grokking) if f.grokking else None, pathlib.Path(f.out)))


if __name__ == "__main__":
    flags.DEFINE_enum("mode", "digits", ["digits", "grokking", "report"], "What to run.")
    flags.DEFINE_string(
        "workdir", None, "Root of the digits runs, or a grokking run.", required=True
    )
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the digits runs.")
    flags.DEFINE_string("grokking", None, "A profiled grokking run (report mode).")
    flags.DEFINE_string("out", "docs/layer_profile", "Where the report goes.")
    app.run(main)
