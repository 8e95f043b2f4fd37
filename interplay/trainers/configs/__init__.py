"""ml_collections configs, one module per trainer: `get_config("PRESET[,runlocal]")`.

Each module lists its `PRESETS` (name → what it is) and the `RESUMABLE`
fields, those that may differ when a run is continued in the same workdir.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable

import ml_collections


def parse(arg: str, presets: dict[str, str], flags: tuple[str, ...] = ("runlocal",)):
    """`"preset,flag,..."` → `(preset, {flags})`; the first preset when `arg` names none.

    Raises:
      ValueError: an unknown preset or flag, listing the known ones.
    """
    preset, *given = arg.split(",")
    preset = preset or next(iter(presets))
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(presets)}.")
    unknown = sorted(set(given) - set(flags))
    if unknown:
        raise ValueError(f"unknown preset flag(s) {unknown}; known: {', '.join(flags)}.")
    return preset, set(given)


def help_text(presets: dict[str, str], path: str) -> str:
    """`--config` help: the file, its presets and the override syntax."""
    listed = "; ".join(f"{k}: {v}" for k, v in presets.items())
    return (
        f"Config file and preset, {path}:PRESET[,runlocal] (PRESET: {listed}). "
        "Override fields with --config.FIELD=VALUE."
    )


placeholder = ml_collections.config_dict.placeholder


def flat(config: ml_collections.ConfigDict) -> dict:
    """`{"a.b": value}` of every field, as the JSON of `config` holds it."""

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    return dict(walk(json.loads(config.to_json_best_effort())))


def check_positive(config: ml_collections.ConfigDict, keys: Iterable[str]) -> None:
    """Raises `ValueError` naming the first of `keys` whose value is not `> 0` (NaN included)."""
    for key in keys:
        if not config[key] > 0:
            raise ValueError(f"config.{key} must be positive, got {config[key]}.")


def check_non_negative(config: ml_collections.ConfigDict, keys: Iterable[str]) -> None:
    """Raises `ValueError` naming the first of `keys` whose value is not `≥ 0` (NaN included)."""
    for key in keys:
        if not config[key] >= 0:
            raise ValueError(f"config.{key} must be non-negative, got {config[key]}.")


def check_fields(config: ml_collections.ConfigDict, fields: Iterable[str]) -> None:
    """Raises `ValueError` for a field `config` does not have, suggesting the closest."""
    known = list(flat(config))
    for field in fields:
        if field not in known:
            close = difflib.get_close_matches(field, known, n=1, cutoff=0.4)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown config field {field!r}.{hint}")
