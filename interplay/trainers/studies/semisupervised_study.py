"""Error rates of semi-supervised sweeps over seeds, paired by seed, and their dynamics.

    python -m interplay.trainers.studies.semisupervised_study --workdir ROOT \
        [--figure F] [--json F] [--former FINALS]

`ROOT` holds `interplay.trainers.studies.sweep` runs of `configs/semisupervised.py`:
`ROOT/<cell>/<variant>/seed<k>/metrics.jsonl`, a cell being a preset (e.g.
`digits_40`) and a variant an algorithm with or without the interplay term
(`freematch`, `freematch_interplay`, ...). Prints, per cell, the test error
rate (%, mean ± std over seeds, final eval) and the validation error (mean of
the last `LAST_EVALS` evals) of each variant, then every `X_interplay` paired
with its `X` seed by seed (same labeled subset, same initialization): the
mean difference in error and the sign count (better / equal / worse). With
`--former` (another study's `--json` file, e.g. of the former protocol), each
variant is also paired with itself there, seed by seed. The figure plots the
MIR and HDR of the measured unlabeled features and the mask rate against step
(mean over seeds, band: min–max).
"""

from __future__ import annotations

import json
import pathlib

import matplotlib.pyplot as plt
import numpy as np
from absl import app, flags

from interplay.trainers.core import logs, plots

SUFFIX = "_interplay"


def load(root: pathlib.Path) -> dict[str, dict[str, dict[int, list[dict]]]]:
    """`{cell: {variant: {seed: records}}}` of the finished runs under `root` (their last
    eval at the `num_steps` of their `config.json`); unfinished ones are named and left out."""
    cells, unfinished = {}, []
    for path in sorted(root.glob("*/*/seed*/metrics.jsonl")):
        seed_dir = path.parent
        variant, cell = seed_dir.parent.name, seed_dir.parent.parent.name
        records = logs.read(path)
        evals = logs.evals(records)
        num_steps = json.loads((seed_dir / "config.json").read_text())["num_steps"]
        if not evals or evals[-1]["step"] != num_steps:
            unfinished.append(str(seed_dir.relative_to(root)))
            continue
        seed = int(seed_dir.name.removeprefix("seed"))
        cells.setdefault(cell, {}).setdefault(variant, {})[seed] = records
    if unfinished:
        print(f"left out, not finished: {', '.join(unfinished)}")
    if not cells:
        raise ValueError(f"no finished runs under {root}/<cell>/<variant>/seed<k>/.")
    return cells


def final(records: list[dict], key: str) -> float:
    return logs.evals(records)[-1][key]


#: Validation accuracy is averaged over this many last evals (less noisy on 100 examples);
#: the interplay weight λ is chosen by it (README), never by a test value.
LAST_EVALS = 3


def validation_accuracy(records: list[dict]) -> float:
    """Mean `eval_val/accuracy` over the `LAST_EVALS` last evals."""
    return float(np.mean([r["eval_val/accuracy"] for r in logs.evals(records)[-LAST_EVALS:]]))


def error_table(cells) -> str:
    """Markdown: test and validation error (%) and final unlabeled MIR/HDR per cell and variant."""
    lines = [
        "| cell | variant | seeds | test error % | validation error % (last 3 evals) "
        "| unlabeled MIR | unlabeled HDR |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell, variants in cells.items():
        for variant, runs in variants.items():
            runs = list(runs.values())
            test = [100 * (1 - final(r, "eval/accuracy")) for r in runs]
            val = [100 * (1 - validation_accuracy(r)) for r in runs]
            lines.append(
                f"| {cell} | {variant} | {len(runs)} "
                f"| {logs.mean_std(test, 2)} | {logs.mean_std(val, 2)} "
                f"| {logs.mean_std([final(r, 'eval_unlabeled/mir') for r in runs], 3)} "
                f"| {logs.mean_std([final(r, 'eval_unlabeled/hdr') for r in runs], 3)} |"
            )
    return "\n".join(lines)


def paired(cells) -> list[dict]:
    """Every `X_interplay` against `X` on the seeds both have: per-seed test errors (%)."""
    pairs = []
    for cell, variants in cells.items():
        for variant, runs in variants.items():
            base = variant.removesuffix(SUFFIX)
            if not variant.endswith(SUFFIX) or base not in variants:
                continue
            seeds = sorted(set(runs) & set(variants[base]))
            pairs.append(
                {
                    "cell": cell,
                    "comparison": f"{variant} vs {base}",
                    "seeds": seeds,
                    "base": [100 * (1 - final(variants[base][s], "eval/accuracy")) for s in seeds],
                    "with": [100 * (1 - final(runs[s], "eval/accuracy")) for s in seeds],
                }
            )
    return pairs


def former_pairs(cells, former: dict) -> list[dict]:
    """Every variant against itself in `former` (a `--json` file's `finals`) on the seeds both
    have: per-seed test errors (%), `base` the former's."""
    pairs = []
    for cell, variants in cells.items():
        for variant, runs in variants.items():
            old = former.get(cell, {}).get(variant, {})
            seeds = [s for s in sorted(runs) if str(s) in old]
            if seeds:
                pairs.append(
                    {
                        "cell": cell,
                        "comparison": f"{variant}, now vs former",
                        "seeds": seeds,
                        "base": [100 * (1 - old[str(s)]["eval/accuracy"]) for s in seeds],
                        "with": [100 * (1 - final(runs[s], "eval/accuracy")) for s in seeds],
                    }
                )
    return pairs


def paired_table(pairs: list[dict], difference: str = "with − without") -> str:
    """Markdown: both sides' test error (%), their mean difference and the sign count per seed."""
    lines = [
        f"| cell | comparison | seeds | test error % ({difference.replace(' − ', ' / ')}) "
        f"| Δ test error % ({difference}) | better / equal / worse |",
        "|---|---|---|---|---|---|",
    ]
    for p in pairs:
        diff = np.subtract(p["with"], p["base"])
        signs = f"{(diff < 0).sum()} / {(diff == 0).sum()} / {(diff > 0).sum()}"
        errors = f"{logs.mean_std(p['with'], 2)} / {logs.mean_std(p['base'], 2)}"
        lines.append(
            f"| {p['cell']} | {p['comparison']} | {len(diff)} | {errors} "
            f"| {logs.mean_std(diff, 2)} | {signs} |"
        )
    return "\n".join(lines)


def plot_dynamics(cells, path: pathlib.Path) -> None:
    """Unlabeled-feature MIR, HDR and the mask rate vs step: a row per cell, a colour per
    variant (the same in every row)."""
    panels = (
        ("eval_unlabeled/mir", "MIR, unlabeled features"),
        ("eval_unlabeled/hdr", "HDR, unlabeled features"),
        ("train/mask_rate", "mask rate"),
    )
    variants = sorted({v for runs in cells.values() for v in runs})
    colours = {variant: f"C{i % 10}" for i, variant in enumerate(variants)}
    fig, axes = plt.subplots(
        len(cells), len(panels), figsize=(5 * len(panels), 3.4 * len(cells)), squeeze=False
    )
    for row, (cell, runs_of) in zip(axes, cells.items(), strict=True):
        for ax, (key, label) in zip(row, panels, strict=True):
            for variant, runs in runs_of.items():
                curves = [
                    [(r["step"], r[key]) for r in records if key in r] for records in runs.values()
                ]
                length = min(map(len, curves))
                if not length:
                    continue
                values = np.array([[v for _, v in c[:length]] for c in curves])
                steps = [s for s, _ in curves[0][:length]]
                colour = colours[variant]
                ax.plot(steps, values.mean(0), color=colour, label=variant)
                ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.15)
            ax.set(xlabel="step", ylabel=label, title=cell)
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    plots.finish(fig, path, "semi-supervised dynamics (mean over seeds, band: min–max)")


def main(argv) -> None:
    del argv
    f = flags.FLAGS
    cells = load(pathlib.Path(f.workdir))
    pairs = paired(cells)
    print(error_table(cells), "", paired_table(pairs), sep="\n")
    if f.former:
        former = json.loads(pathlib.Path(f.former).read_text())["finals"]
        print("", paired_table(former_pairs(cells, former), "now − former"), sep="\n")
    if f.figure:
        plot_dynamics(cells, pathlib.Path(f.figure))
        print(f"figure: {f.figure}")
    if f.json:
        finals = {
            cell: {
                variant: {
                    seed: {k: v for k, v in logs.evals(r)[-1].items() if k.startswith("eval")}
                    for seed, r in runs.items()
                }
                for variant, runs in variants.items()
            }
            for cell, variants in cells.items()
        }
        pathlib.Path(f.json).write_text(json.dumps({"finals": finals, "paired": pairs}, indent=1))
        print(f"per-seed values: {f.json}")


if __name__ == "__main__":
    flags.DEFINE_string("workdir", None, "Root of the sweeps: <cell>/<variant>/seed<k>/.")
    flags.DEFINE_string("figure", None, "Where to save the dynamics figure (png).")
    flags.DEFINE_string("json", None, "Where to save every run's final eval values (json).")
    flags.DEFINE_string("former", None, "Another study's --json file to pair each variant with.")
    flags.mark_flag_as_required("workdir")
    app.run(main)
