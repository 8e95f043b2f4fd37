"""Seeds × config variants of the supervised trainer, summarized as mean ± std.

    python -m trainers.sweep --config trainers/configs/supervised.py:digits --workdir DIR \\
        --seeds 0,1,2 --variants 'plain:;mi_hdr_0.1:mi_weight=0.1,hdr_weight=0.1'

Each variant is `name:key=value,...`; every (variant, seed) run gets its own
workdir, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from trainers import supervised

KEYS = ("eval/accuracy", "eval/mir", "eval/hdr", "eval/h_features", "eval/h_heads")


def parse_variants(text: str) -> dict[str, dict]:
    """`'a:x=1,y=2;b:'` → `{'a': {'x': 1.0, 'y': 2.0}, 'b': {}}` (values parsed as JSON)."""
    variants = {}
    for item in filter(None, text.split(";")):
        name, _, assignments = item.partition(":")
        pairs = (a.split("=", 1) for a in filter(None, assignments.split(",")))
        variants[name] = {k.strip(): json.loads(v) for k, v in pairs}
    return variants


def sweep(base, variants: dict[str, dict], seeds, workdir) -> dict[str, dict[str, list[float]]]:
    """Final metrics per variant: `{variant: {key: [value per seed]}}`."""
    results = {}
    for name, overrides in variants.items():
        finals = []
        for seed in seeds:
            config = base.copy_and_resolve_references()
            config.update(overrides, seed=int(seed))
            finals.append(
                supervised.train_and_evaluate(config, pathlib.Path(workdir) / name / f"seed{seed}")
            )
        results[name] = {k: [f[k] for f in finals] for k in KEYS}
    return results


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """Markdown table of mean ± std (std with ddof=1)."""
    lines = [
        "| variant | " + " | ".join(k.split("/")[1] for k in KEYS) + " |",
        "|---|" + "---|" * len(KEYS),
    ]
    for name, values in results.items():
        cells = [
            f"{np.mean(v):.4f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.4f}"
            for v in values.values()
        ]
        lines.append(
            f"| {name} (n={len(next(iter(values.values())))}) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    results = sweep(f.config, parse_variants(f.variants), f.seeds, f.workdir)
    print(table(results))
    path = pathlib.Path(f.workdir) / "sweep.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"per-seed values: {path}")


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", None, "Base training configuration.")
    flags.DEFINE_string("workdir", None, "Root directory of the runs.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_string("variants", "plain:", "';'-separated name:key=value,... list.")
    app.run(main)
