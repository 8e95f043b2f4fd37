"""Aggregates grokking runs over seeds: landmarks, the papers' claims, early-warning leads.

    python -m interplay.trainers.studies.grokking_study --workdirs DIR[,DIR2...] \
        [--figure study.png]
    python -m interplay.trainers.studies.grokking_study --workdirs PLAIN --compare GROKFAST \
        --figure grokfast.png
    python -m interplay.trainers.studies.grokking_study --workdirs FLAX/seed_0,FLAX/seed_1 \
        --compare NANDA --labels flax,nanda    # two initializations, paired by seed

A workdir is a run of `interplay.trainers.grokking` (its `summary.json` and `metrics.jsonl`)
or a multi-seed run holding `seed_<s>/` runs. Prints markdown tables: every
early-warning signal's lead over the test jump (mean ± std over seeds and how
many seeds lead), and per representation and sample set the values behind the
papers' three grokking claims. The figures align the curves on each seed's jump.
"""

from __future__ import annotations

import json
import pathlib

import matplotlib.pyplot as plt
import numpy as np
from absl import app, flags

from interplay.trainers import grokking
from interplay.trainers.core import logs, plots

#: What the papers report for the default task (docs/papers.md).
PAPER = {
    "mir_early": "MIR 0.47 → 0.62 by 10³",
    "hdr_spike": "HDR spikes ≈ 0.08 → 0.49 at the jump",
    "mir_jump": "MIR falls to ≈ 0.36 at the jump",
}
WINDOW = 500  # steps before the jump that count as "before it"


def load(workdirs) -> list[tuple[list[dict], dict]]:
    """`(records, summary)` of every run under `workdirs` (a `seed_<s>/` run counts as one)."""
    runs = []
    for workdir in map(pathlib.Path, workdirs):
        dirs = sorted(workdir.glob("seed_*")) or [workdir]
        for d in dirs:
            if not (d / "summary.json").exists():
                raise ValueError(f"{d} has no summary.json: is it a finished grokking run?")
            runs.append(
                (logs.read(d / "metrics.jsonl"), json.loads((d / "summary.json").read_text()))
            )
    if not runs:
        raise ValueError(f"no grokking runs under {', '.join(map(str, workdirs))}.")
    return runs


def _fmt(values, digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    return logs.mean_std(values, digits) if values else "—"


def lead_table(summaries: list[dict]) -> str:
    """Every signal's lead over the jump (≥ 50 %) and over grokking (≥ 99 %), in steps.

    Beside the lead, the signal's own step and `r`: the Pearson correlation over runs
    between the signal's step and the landmark's step. A signal that warns of the jump
    moves with it (r near 1, its step spread like the jump's); one that fires at the
    same step in every run leads only because the jump comes later (its step's spread
    near 0, the lead's equal to the jump's; r is then noise).
    """
    lines = [
        "| signal | its step | lead over test ≥ 50 % | seeds leading | r "
        "| lead over test ≥ 99 % | seeds leading | r |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in summaries[0]["signals"]:
        cells = [_fmt([s["signals"][name]["step"] for s in summaries], 0)]
        for landmark, at in (("lead_jump", "jump_at"), ("lead_grokked", "grokked_at")):
            pairs = [
                (s["signals"][name][landmark], s[at])
                for s in summaries
                if s["signals"][name][landmark] is not None
            ]
            known = [lead for lead, _ in pairs]
            cells += [_fmt(known, 0), f"{sum(v > 0 for v in known)}/{len(known)}"]
            cells.append(_correlation([at - lead for lead, at in pairs], [at for _, at in pairs]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _correlation(x: list[float], y: list[float]) -> str:
    """Pearson r of `x` and `y`, "—" when fewer than 3 pairs or either is constant."""
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return "—"
    return f"{np.corrcoef(x, y)[0, 1]:.2f}"


def _at(records: list[dict], key: str, step: int | None) -> float | None:
    """`key` at the last eval at or before `step`."""
    if step is None:
        return None
    rows = [r for r in records if key in r and r["step"] <= step]
    return rows[-1][key] if rows else None


def claims(runs: list[tuple[list[dict], dict]], prefix: str, representation: str) -> dict:
    """Per seed, the values behind the papers' three claims for one variant.

    `mir_0`, `mir_1000`: MIR at init and at step 10³; `hdr_before`, `mir_before`:
    at `WINDOW` steps before the jump (test ≥ 50 %); `hdr_jump_max`: HDR's maximum
    from there to `WINDOW` steps after grokking (test ≥ 99 %); `mir_grokked`: MIR at
    grokking; `hdr_rise_from_jump`: step of HDR's largest rise minus the jump step.
    """
    samples = {v: k for k, v in grokking.SAMPLES.items()}[prefix]
    mir, hdr = (grokking.interplay_key(samples, representation, k) for k in ("mir", "hdr"))
    out = {k: [] for k in ("mir_0", "mir_1000", "mir_before", "mir_grokked", "hdr_before")}
    out |= {"hdr_jump_max": [], "hdr_rise_from_jump": []}
    for records, summary in runs:
        evals = logs.evals(records)
        jump, grokked = summary["jump_at"], summary["grokked_at"]
        before = None if jump is None else max(jump - WINDOW, 0)
        out["mir_0"].append(_at(evals, mir, 0))
        out["mir_1000"].append(_at(evals, mir, 1000))
        out["mir_before"].append(_at(evals, mir, before))
        out["mir_grokked"].append(_at(evals, mir, grokked))
        out["hdr_before"].append(_at(evals, hdr, before))
        end = (grokked or jump or 0) + WINDOW
        window = [r[hdr] for r in evals if before is not None and before <= r["step"] <= end]
        out["hdr_jump_max"].append(max(window) if window else None)
        rise = summary["signals"][f"{hdr} rise"]["step"]
        out["hdr_rise_from_jump"].append(None if jump is None else rise - jump)
    return out


def claims_table(runs, variants) -> str:
    """The papers' claims against every `(prefix, representation)` variant, mean ± std."""
    lines = [
        "| samples | representation | MIR init → 10³ | MIR 500 before jump → at 99 % | "
        "HDR 500 before jump → max around it | HDR's largest rise − jump (steps) |",
        "|---|---|---|---|---|---|",
    ]
    for prefix, rep in variants:
        c = claims(runs, prefix, rep)
        lines.append(
            f"| {prefix} | {rep} | {_fmt(c['mir_0'])} → {_fmt(c['mir_1000'])} | "
            f"{_fmt(c['mir_before'])} → {_fmt(c['mir_grokked'])} | "
            f"{_fmt(c['hdr_before'])} → {_fmt(c['hdr_jump_max'])} | "
            f"{_fmt(c['hdr_rise_from_jump'], 0)} |"
        )
    return "\n".join(lines)


def landmarks_table(summaries: list[dict]) -> str:
    """Train fit, jump and grokking steps, mean ± std over seeds."""
    keys = ("train_fit_at", "jump_at", "grokked_at")
    lines = ["| " + " | ".join(keys) + " | seeds |", "|---|---|---|---|"]
    cells = [_fmt([s[k] for s in summaries], 0) for k in keys]
    return "\n".join([*lines, "| " + " | ".join(cells) + f" | {len(summaries)} |"])


def variants(summary: dict) -> list[tuple[str, str]]:
    """The `(prefix, representation)` pairs logged in a run."""
    found = []
    for key in summary["landmarks"]:
        prefix, name = key.split("/")
        if name.endswith("mir"):
            found.append((prefix, name.removesuffix("mir").removesuffix("_") or "features"))
    return sorted(set(found))


def plot_aligned(runs, path, keys=("mir", "hdr")) -> None:
    """MIR and HDR of every variant against steps from each seed's jump (test ≥ 50 %)."""
    runs = [(records, s) for records, s in runs if s["jump_at"] is not None]  # aligned on it
    reps = sorted({rep for _, rep in variants(runs[0][1])}, key=lambda r: (r != "features", r))
    fig, axes = plt.subplots(
        len(keys), len(reps), figsize=(3.6 * len(reps), 3.2 * len(keys)), squeeze=False
    )
    first_jump = min(s["jump_at"] for _, s in runs if s["jump_at"] is not None)
    for i, key in enumerate(keys):
        for j, rep in enumerate(reps):
            ax = axes[i, j]
            for c, samples in enumerate(grokking.SAMPLES):
                name = grokking.interplay_key(samples, rep, key)
                for n, (records, summary) in enumerate(runs):
                    rows = [r for r in records if name in r]
                    ax.plot(
                        [r["step"] - summary["jump_at"] for r in rows],
                        [r[name] for r in rows],
                        c=f"C{c}",
                        lw=0.6,
                        alpha=0.7,
                        label=samples if n == 0 else None,
                    )
            ax.axvline(0, c="k", lw=0.8, ls=":")
            ax.set(title=rep, xlabel="steps from the jump (test ≥ 50 %)", ylabel=key.upper())
            ax.set_xlim(-first_jump, 1500)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    plots.finish(fig, path, "MIR / HDR around the test-accuracy jump (a line per seed, sample set)")


def plot_compare(runs, other, path, labels=("AdamW", "AdamW + Grokfast")) -> None:
    """Test accuracy, MIR, HDR (features; MLP activations) and weight norm of two sets of runs."""
    keys = ("eval/accuracy", "eval/mir", "eval/features_centred_mir", "eval/hdr")
    keys += ("eval/mlp_hidden_hdr", "train/param_norm")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.6))
    for c, (group, label) in enumerate(zip((runs, other), labels, strict=True)):
        for n, (records, _) in enumerate(group):
            for ax, key in zip(axes, keys, strict=True):
                rows = [r for r in records if key in r and r["step"] > 0]
                ax.plot(
                    [r["step"] for r in rows],
                    [r[key] for r in rows],
                    c=f"C{c}",
                    lw=0.8,
                    label=label if n == 0 else None,
                )
    for ax, key in zip(axes, keys, strict=True):
        ax.set(xscale="log", xlabel="step", title=key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    plots.finish(fig, path, f"(a + b) mod 113: {labels[0]} vs {labels[1]} (one line per seed)")


def paired_table(runs, other, labels=("AdamW", "AdamW + Grokfast")) -> str:
    """Steps and wall time to grok (test ≥ 99 %) per seed, two sets of runs paired by seed.

    Runs pair in `load`'s order (workdirs, then `seed_<s>`); wall time is the run's
    logged `time` at that eval, evaluations included.
    """
    if len(runs) != len(other):
        raise ValueError(f"cannot pair {len(runs)} runs with {len(other)}.")
    header = f"| run | {labels[0]}: steps | {labels[1]}: steps | ratio "
    header += f"| {labels[0]}: s | {labels[1]}: s |"
    lines = [header, "|---|---|---|---|---|---|"]
    digits = (0, 0, 2, 0, 0)  # steps, steps, ratio, seconds, seconds
    rows = []
    for n, ((ra, sa), (rb, sb)) in enumerate(zip(runs, other, strict=True)):
        steps = (sa["grokked_at"], sb["grokked_at"])
        times = (_at(ra, "time", steps[0]), _at(rb, "time", steps[1]))
        ratio = steps[0] / steps[1] if None not in steps else None
        rows.append((*steps, ratio, *times))
        cells = ("—" if v is None else f"{v:.{k}f}" for v, k in zip(rows[-1], digits, strict=True))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    means = (_fmt(c, k) for c, k in zip(zip(*rows, strict=True), digits, strict=True))
    lines.append("| mean ± std | " + " | ".join(means) + " |")
    faster = sum(a > b for a, b, *_ in rows if a is not None and b is not None)
    lines.append(f"\n{labels[1]} grokked in fewer steps in {faster} of {len(rows)} seeds.")
    return "\n".join(lines)


def landmarks_paired(runs, other, labels=("AdamW", "AdamW + Grokfast")) -> str:
    """Train fit, jump and grokking steps per seed, two sets of runs side by side (paired in
    `load`'s order), and the mean ± std of their differences."""
    if len(runs) != len(other):
        raise ValueError(f"cannot pair {len(runs)} runs with {len(other)}.")
    keys = ("train_fit_at", "jump_at", "grokked_at")
    header = "| run | " + " | ".join(f"{k}: {labels[0]} / {labels[1]}" for k in keys) + " |"
    lines = [header, "|---" * (len(keys) + 1) + "|"]
    pairs = [(sa, sb) for (_, sa), (_, sb) in zip(runs, other, strict=True)]
    for n, (sa, sb) in enumerate(pairs):
        lines.append(f"| {n} | " + " | ".join(f"{sa[k]} / {sb[k]}" for k in keys) + " |")
    diffs = []
    for k in keys:
        d = [sb[k] - sa[k] for sa, sb in pairs if sa[k] is not None and sb[k] is not None]
        diffs.append(_fmt(d, 0))
    lines.append(f"| {labels[1]} − {labels[0]} | " + " | ".join(diffs) + " |")
    return "\n".join(lines)


def report(runs) -> str:
    summaries = [s for _, s in runs]
    return "\n\n".join(
        [
            landmarks_table(summaries),
            claims_table(runs, variants(summaries[0])),
            lead_table(summaries),
        ]
    )


FLAGS = flags.FLAGS
flags.DEFINE_list("workdirs", None, "grokking workdirs (multi-seed ones expand to their seeds)")
flags.DEFINE_list("compare", None, "a second set of workdirs (e.g. Grokfast) for --figure")
flags.DEFINE_string("figure", None, "write the aligned (or, with --compare, comparison) figure")
flags.DEFINE_list("labels", ["AdamW", "AdamW + Grokfast"], "names of --workdirs and --compare")


def main(argv) -> None:
    del argv
    runs = load(FLAGS.workdirs)
    print(report(runs))
    other = load(FLAGS.compare) if FLAGS.compare else None
    labels = tuple(FLAGS.labels)
    if other:
        print(f"\n--compare:\n\n{report(other)}\n\n{landmarks_paired(runs, other, labels)}")
        print("\n" + paired_table(runs, other, labels))
    if FLAGS.figure:
        if other:
            plot_compare(runs, other, FLAGS.figure, labels)
        else:
            plot_aligned(runs, FLAGS.figure)
        print(f"figure: {FLAGS.figure}")


if __name__ == "__main__":
    flags.mark_flag_as_required("workdirs")
    app.run(main)
