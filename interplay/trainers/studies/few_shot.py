"""Paper [B]'s few-shot table: test accuracy of the CMA prompt tuner over shots, seeds and λ.

    python -m interplay.trainers.studies.few_shot --workdir DIR --shots_list 1,2,4,8,16 \\
        --seeds 0,1,2 --cma_weights 0,0.5

Every (λ, shots, seed) is a run of `interplay.trainers.cross_modal` in its own
workdir (an interrupted table resumes); the table pairs each λ with the first
(the baseline) by seed. Writes `DIR/few_shot.json` (per-seed values) and
`DIR/few_shot.md`.
"""

from __future__ import annotations

import itertools
import json
import pathlib

import numpy as np
from absl import flags, logging

from interplay.trainers import cross_modal
from interplay.trainers.configs import cross_modal as cross_modal_config
from interplay.trainers.core import cli, logs


def few_shot_table(base, shots_list, seeds, weights, workdir) -> tuple[dict, str]:
    """Test accuracy for every (λ, shots, seed); markdown with paired CMA − CE differences."""
    results = {f"{w:g}": {str(shots): [] for shots in shots_list} for w in weights}
    for weight, shots, seed in itertools.product(weights, shots_list, seeds):
        config = base.copy_and_resolve_references()
        config.update(shots=shots, seed=seed, cma_weight=weight)
        name = pathlib.Path(workdir) / f"cma_{weight:g}" / f"shots_{shots}" / f"seed{seed}"
        final = cross_modal.train_and_evaluate(config, name)
        results[f"{weight:g}"][str(shots)].append(final["eval/accuracy"])
    plain = results[f"{weights[0]:g}"]
    header = ["shots", *(f"λ = {w:g}" for w in weights)]
    header += [f"λ = {w:g} − λ = {weights[0]:g} (wins/seeds)" for w in weights[1:]]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for shots in map(str, shots_list):
        cells = [shots]
        for w in weights:
            values = results[f"{w:g}"][shots]
            cells.append(logs.mean_std(values))
        for w in weights[1:]:
            diff = np.subtract(results[f"{w:g}"][shots], plain[shots])
            cells.append(f"{diff.mean():+.4f} ({(diff > 0).sum()}/{len(diff)})")
        lines.append("| " + " | ".join(cells) + " |")
    return results, "\n".join(lines)


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    results, text = few_shot_table(
        f.config,
        [int(s) for s in f.shots_list],
        [int(s) for s in f.seeds],
        [float(w) for w in f.cma_weights],
        f.workdir,
    )
    pathlib.Path(f.workdir, "few_shot.json").write_text(json.dumps(results, indent=1))
    pathlib.Path(f.workdir, "few_shot.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    cli.define_config_flags(cross_modal_config)
    flags.DEFINE_list("shots_list", ["1", "2", "4", "8", "16"], "Shots per class.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (few-shot subsets).")
    flags.DEFINE_list("cma_weights", ["0", "0.5"], "λ values; the first is the baseline.")
    cli.run(main)
