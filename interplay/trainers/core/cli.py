"""One command-line convention for every entry point: absl flags, ml_collections configs.

`define_config_flags(module)` adds `--config` (a file of `interplay/trainers/configs/`
with a preset; its help lists the presets) and `--workdir`; `run(main)` runs
`main` so that a bad value ends with a one-line `error: ...` (an unknown
`--config.FIELD` names the closest field) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import pathlib
import runpy
import sys
import types
from collections.abc import Callable

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from interplay.trainers import configs
from interplay.trainers.core import distributed, logs, workdir

flags.DEFINE_bool(
    "distributed",
    False,
    "Join JAX's distributed runtime with cluster auto-detection (TPU pods, SLURM, Open MPI). "
    "Without it, JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID configure "
    "several processes; one process needs nothing.",
)

_DEFAULT = [""]  # the entry point's default --config, set by define_config_flags


def define_config_flags(module: types.ModuleType) -> None:
    """`--config` (default: `module`'s file and first preset) and a required `--workdir`."""
    path = pathlib.Path(module.__file__)
    _DEFAULT[:] = [f"{path}:{next(iter(module.PRESETS))}"]
    with _unknown_fields_reported(sys.argv):  # the default config parses the overrides now
        config_flags.DEFINE_config_file(
            "config",
            _DEFAULT[0],
            configs.help_text(module.PRESETS, f"interplay/trainers/configs/{path.name}"),
            lock_config=True,
        )
    flags.DEFINE_string("workdir", None, "Directory of the run: metrics, checkpoints, plots.")
    flags.mark_flag_as_required("workdir")
    for name in ("config", "workdir"):  # listed by the entry point's --help
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


def _config_arg(argv: list[str]) -> str:
    """The `--config` value in `argv`, or its default."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.partition("=")[2]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return _DEFAULT[0]


@contextlib.contextmanager
def _unknown_fields_reported(argv: list[str]):
    """Turns ml_collections' error for an unknown `--config.FIELD` into a one-line exit."""
    try:
        yield
    except (AttributeError, KeyError):
        path, _, preset = _config_arg(argv).partition(":")
        config = runpy.run_path(path)["get_config"](*([preset] if preset else []))
        fields = [a[len("--config.") :].split("=")[0] for a in argv if a.startswith("--config.")]
        try:
            configs.check_fields(config, fields)
        except ValueError as e:
            sys.exit(f"error: {e}")
        raise


def _parse(argv: list[str]) -> list[str]:
    with _unknown_fields_reported(argv):
        return flags.FLAGS(argv)


def run(main: Callable[[list[str]], None]) -> None:
    """`app.run(main)`, reporting `ValueError`s (bad config, workdir, data) in one line."""

    def guarded(argv):
        try:
            if "workdir" in flags.FLAGS:  # before any data is built or downloaded
                workdir.check(flags.FLAGS.workdir)
            distributed.initialize(flags.FLAGS.distributed)
            main(argv)
        except ValueError as e:
            sys.exit(f"error: {e}")

    app.run(guarded, flags_parser=_parse)


def train_and_summarize(
    train_and_evaluate, summary
) -> tuple[ml_collections.ConfigDict, pathlib.Path]:
    """An entry point's work: trains `--config` in `--workdir`, prints `summary` of its records."""
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    config, workdir = flags.FLAGS.config, pathlib.Path(flags.FLAGS.workdir)
    train_and_evaluate(config, workdir)
    print(summary(logs.read(workdir / "metrics.jsonl")))
    return config, workdir
