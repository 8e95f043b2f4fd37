"""The run directory: refused when it is a file or holds another config's run.

Every trainer writes into one `--workdir`: `config.json` (the config of the
run, written once), `metrics.jsonl`, `tensorboard/`, `checkpoints/` and its
plots. `check` runs before any data is built; `prepare` before training.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable

import jax
import ml_collections

from interplay.trainers import configs


def check(workdir: str | pathlib.Path) -> pathlib.Path:
    """`workdir` as a path, if it is not a file (else `ValueError`)."""
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"--workdir {workdir} is a file, not a directory.")
    return workdir


def prepare(
    config: ml_collections.ConfigDict, workdir: str | pathlib.Path, resumable: Iterable[str]
) -> pathlib.Path:
    """Creates `workdir` or checks that it continues the same run; writes `config.json` if new.

    Raises:
      ValueError: the workdir is a file or cannot be created, or it holds a run
        whose config differs in a field outside `resumable`.
    """
    workdir = check(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--workdir {workdir} cannot be created: {e.strerror}.") from None
    path = workdir / "config.json"
    new = configs.flat(config)
    if path.exists():
        old = json.loads(path.read_text())
        old = configs.flat(ml_collections.ConfigDict(old))
        allowed = set(resumable)
        changed = sorted(
            k for k in old.keys() | new.keys() if k not in allowed and old.get(k) != new.get(k)
        )
        if changed:
            lines = "\n".join(
                f"  {k}: {old.get(k)!r} in the run, {new.get(k)!r} now" for k in changed
            )
            raise ValueError(
                f"{workdir} holds a run with a different config:\n{lines}\n"
                f"Only {', '.join(sorted(allowed))} may change on resume; "
                "start a fresh run with another --workdir."
            )
    elif jax.process_index() == 0:
        path.write_text(config.to_json_best_effort(indent=1))
    return workdir
