"""Plots of metric records against step."""

from __future__ import annotations

import pathlib

import matplotlib.pyplot as plt
import numpy as np

from interplay import infotheory as it


def _series(records: list[dict], key: str, x: str = "step"):
    points = [(r[x], r[key]) for r in records if key in r]
    return np.array(points).T if points else (np.array([]), np.array([]))


def finish(fig, path: str | pathlib.Path, title: str) -> None:
    """Titles, lays out, saves and closes `fig`."""
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dynamics(
    records: list[dict], num_classes: int, path: str | pathlib.Path, title: str = ""
) -> None:
    """Accuracy, MIR, HDR and both entropies vs step, with Neural-Collapse references."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    ax = axes[0]
    ax.plot(*_series(records, "eval/accuracy"), label="test accuracy")
    ax.set(ylabel="accuracy", ylim=(0, 1.01))
    ax = axes[1]
    ax.plot(*_series(records, "eval/mir"), label="MIR (whole test split)")
    ax.plot(*_series(records, "eval/batch_mir"), ls=":", label="MIR (batch mean)")
    ax.axhline(float(it.nc_mir(num_classes)), c="k", ls="--", lw=0.8, label="MIR at NC")
    ax.set(ylabel="MIR")
    ax = axes[2]
    ax.plot(*_series(records, "eval/hdr"), label="HDR (whole test split)")
    ax.plot(*_series(records, "eval/batch_hdr"), ls=":", label="HDR (batch mean)")
    ax.axhline(0, c="k", ls="--", lw=0.8, label="HDR at NC")
    ax.set(ylabel="HDR")
    ax = axes[3]
    ax.plot(*_series(records, "eval/h_features"), label="H(G(Z)) features")
    ax.plot(*_series(records, "eval/h_heads"), label="H(G(W_Y)) heads")
    ax.axhline(np.log(num_classes - 1), c="k", ls="--", lw=0.8, label="log(C−1)")
    ax.set(ylabel="entropy (nats)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    finish(fig, path, title)


def plot_grokking(
    records: list[dict], grokked_at: int | None, path: str | pathlib.Path, title: str = ""
) -> None:
    """Train/test accuracy, MIR and HDR against steps (log axis), grokking step marked."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    rows = [r for r in records if r["step"] > 0]
    for ax, name in zip(axes, ("accuracy", "mir", "hdr"), strict=True):
        for prefix, split, style in (("eval_train", "train", "-"), ("eval", "test", "--")):
            ax.plot(*_series(rows, f"{prefix}/{name}"), style, label=f"{split} {name}")
        if grokked_at:
            ax.axvline(grokked_at, c="k", lw=0.8, ls=":", label=f"grokked at {grokked_at}")
        ax.set(xscale="log", xlabel="step (= epoch, full batch)", ylabel=name.upper())
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    finish(fig, path, title)


def plot_panels(
    records: list[dict],
    x: str,
    panels: list[tuple[str, list[str], list[float]]],
    path: str | pathlib.Path,
    title: str = "",
    xscale: str = "linear",
) -> None:
    """One panel per `(ylabel, keys, reference values)`, each key against `x`.

    A key with a `<key>_std` companion in the records gets error bars.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, keys, refs) in zip(axes[0], panels, strict=True):
        for key in keys:
            xs, ys = _series(records, key, x)
            std = _series(records, f"{key}_std", x)[1]
            ax.errorbar(xs, ys, std if len(std) else None, fmt="o-", ms=3, capsize=3, label=key)
        for ref in refs:
            ax.axhline(ref, c="k", ls="--", lw=0.8)
        ax.set(xlabel=x, ylabel=ylabel, xscale=xscale)
        if len(keys) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    finish(fig, path, title)
