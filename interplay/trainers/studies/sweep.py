"""Seeds × config variants of a trainer, summarized as mean ± std.

    python -m interplay.trainers.studies.sweep \\
        --config interplay/trainers/configs/supervised.py:digits --workdir DIR --seeds 0,1,2 \\
        --variants 'plain:;mi_hdr_0.1:mi_weight=0.1,hdr_weight=0.1'

The trainer is the one the config file is named after (`core.trainer.trainer_for`:
`configs/supervised.py` runs `interplay.trainers.supervised`); any module
satisfying `core.trainer.Trainer` can be swept.
Each variant is `name:key=value,...`; every (variant, seed) run gets its own
workdir, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
import pathlib

from absl import flags, logging
from ml_collections import config_flags

from interplay.trainers import configs, supervised
from interplay.trainers.configs import supervised as supervised_config
from interplay.trainers.core import cli, logs
from interplay.trainers.core.trainer import Trainer, trainer_for


def parse_variants(text: str) -> dict[str, dict]:
    """`'a:x=1,y=2;b:'` → `{'a': {'x': 1.0, 'y': 2.0}, 'b': {}}` (values parsed as JSON)."""
    variants = {}
    for item in filter(None, text.split(";")):
        name, _, assignments = item.partition(":")
        pairs = (a.split("=", 1) for a in filter(None, assignments.split(",")))
        variants[name] = {k.strip(): json.loads(v) for k, v in pairs}
    return variants


def variant_config(base, overrides: dict, seed: int, trainer: Trainer = supervised):
    """`base` with `overrides` and `seed`, validated by `trainer.validate`.

    Raises:
      ValueError: an unknown field (with the closest one) or a bad value.
    """
    configs.check_fields(base, overrides)
    config = base.copy_and_resolve_references()
    config.update(overrides, seed=int(seed))
    trainer.validate(config)
    return config


def sweep(
    base, variants: dict[str, dict], seeds, workdir, trainer: Trainer = supervised
) -> dict[str, dict[str, list[float]]]:
    """Final metrics per variant: `{variant: {key: [value per seed]}}` of `trainer`'s runs.

    Every variant's config is validated before the first run trains.
    """
    for name, overrides in variants.items():
        try:
            variant_config(base, overrides, seeds[0], trainer)
        except ValueError as e:
            raise ValueError(f"variant {name!r}: {e}") from None
    results = {}
    for name, overrides in variants.items():
        finals = [
            trainer.train_and_evaluate(
                variant_config(base, overrides, seed, trainer),
                pathlib.Path(workdir) / name / f"seed{seed}",
            )
            for seed in seeds
        ]
        results[name] = {k: [f[k] for f in finals] for k in finals[0] if k.startswith("eval")}
    return results


def table(results: dict[str, dict[str, list[float]]], keys=supervised.SWEEP_KEYS) -> str:
    """Markdown table of mean ± std (std with ddof=1) of `keys`."""
    lines = ["| variant | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, values in results.items():
        cells = [logs.mean_std(values[k]) for k in keys]
        lines.append(
            f"| {name} (n={len(next(iter(values.values())))}) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    trainer = trainer_for(config_flags.get_config_filename(f["config"]))
    results = sweep(f.config, parse_variants(f.variants), f.seeds, f.workdir, trainer)
    print(table(results, trainer.SWEEP_KEYS))
    path = pathlib.Path(f.workdir) / "sweep.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"per-seed values: {path}")


if __name__ == "__main__":
    cli.define_config_flags(supervised_config)
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_string(
        "variants", "plain:", "';'-separated name:key=value,... list (values as JSON)."
    )
    cli.run(main)
