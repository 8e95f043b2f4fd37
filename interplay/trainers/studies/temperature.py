"""Paper [B]'s softmax-temperature study: feature entropy as a reading of clustering.

    python -m interplay.trainers.studies.temperature --workdir DIR \
        [--taus 0.1,0.3,1,3,10] [--seeds 0,1,2]

Trains the supervised trainer (`--config`, default the digits preset) with the
loss's softmax temperature τ (`config.temperature`) at every τ and seed
through `interplay.trainers.studies.sweep` (one resumable workdir per run), then writes
`DIR/temperature.png` (feature entropy, silhouette, Davies–Bouldin, mean class
entropy, accuracy and MIR/HDR against τ, mean ± std over seeds) and
`DIR/temperature.md`: that table, and the Spearman correlation over all
(τ, seed) runs between the feature entropy and each clustering measure.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from absl import flags, logging

from interplay.trainers.configs import supervised as supervised_config
from interplay.trainers.core import cli, logs, plots
from interplay.trainers.studies import sweep

TAUS = (0.1, 0.3, 1.0, 3.0, 10.0)
#: (column, eval key) of the table; the figure has one panel each (MIR and HDR share one).
COLUMNS = (
    ("feature entropy", "eval/h_features"),
    ("silhouette", "eval/silhouette"),
    ("Davies–Bouldin", "eval/davies_bouldin"),
    ("class entropy", "eval/class_entropy"),
    ("accuracy", "eval/accuracy"),
    ("MIR", "eval/mir"),
    ("HDR", "eval/hdr"),
)


def sweep_taus(base, taus, seeds, workdir) -> dict[float, dict[str, list[float]]]:
    """Final eval values `{τ: {key: [value per seed]}}` (trains what is not done yet)."""
    variants = {f"tau_{tau:g}": {"temperature": float(tau)} for tau in taus}
    results = sweep.sweep(base, variants, seeds, workdir)
    return {float(tau): results[f"tau_{tau:g}"] for tau in taus}


def spearman(a, b) -> float:
    """Rank correlation (Pearson of ranks; ties are not expected of float metrics)."""
    ranks = [np.argsort(np.argsort(np.asarray(v))) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def correlations(results: dict) -> dict[str, float]:
    """Spearman ρ of the feature entropy with every other column, over all (τ, seed)."""
    pooled = {key: sum((r[key] for r in results.values()), []) for _, key in COLUMNS}
    entropy = pooled.pop("eval/h_features")
    return {key: spearman(entropy, values) for key, values in pooled.items()}


def report(results: dict) -> str:
    """Markdown: mean ± std per τ, then the Spearman correlations."""
    lines = [
        "| τ | " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for tau, r in results.items():
        cells = (logs.mean_std(r[k], digits=3) for _, k in COLUMNS)
        lines.append(f"| {tau:g} | " + " | ".join(cells) + " |")
    names = dict((k, n) for n, k in COLUMNS)
    num_runs = sum(len(r["eval/accuracy"]) for r in results.values())
    lines += ["", f"| Spearman ρ with feature entropy ({num_runs} runs) | ρ |", "|---|---|"]
    lines += [f"| {names[k]} | {rho:+.3f} |" for k, rho in correlations(results).items()]
    return "\n".join(lines)


def figure(results: dict, path: str | pathlib.Path, title: str = "") -> None:
    """Every column against τ (log axis), error bars = std over seeds."""
    records = [
        {"τ": tau, **{k: np.mean(v) for k, v in r.items()}}
        | {f"{k}_std": logs.seed_std(v) for k, v in r.items()}
        for tau, r in results.items()
    ]
    panels = [(name, [key], []) for name, key in COLUMNS[:5]]
    panels.append(("MIR, HDR", ["eval/mir", "eval/hdr"], []))
    plots.plot_panels(records, "τ", panels, path, title, xscale="log")


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    workdir = pathlib.Path(f.workdir)
    results = sweep_taus(f.config, [float(t) for t in f.taus], [int(s) for s in f.seeds], workdir)
    (workdir / "temperature.json").write_text(json.dumps(results, indent=1))
    text = report(results)
    (workdir / "temperature.md").write_text(text + "\n")
    figure(results, workdir / "temperature.png", f"softmax temperature: {f.config.dataset}")
    print(text)
    print(f"written: {workdir}/temperature.png, .md, .json")


if __name__ == "__main__":
    cli.define_config_flags(supervised_config)
    flags.DEFINE_list("taus", [f"{t:g}" for t in TAUS], "Softmax temperatures.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (init and data order).")
    cli.run(main)
