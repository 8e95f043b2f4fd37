"""Checkpoint analysis: vmapped values equal single evaluation and the trainer's own eval."""

import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics

from interplay.trainers import analyze, supervised
from interplay.trainers.classifier.saved import SavedRun
from interplay.trainers.configs.supervised import get_config
from interplay.trainers.core import logs
from tests import reference

FIELDS = (
    "accuracy",
    "loss",
    "mir",
    "hdr",
    "mi",
    "h_features",
    "h_heads",
    "nc1",
    "nc2_etf",
    "nc2_equinorm",
    "nc2_equiangular",
    "nc2_maxangle",
    "nc3",
    "nc3_squared",
    "nc4",
    "silhouette",
    "davies_bouldin",
    "class_entropy",
)


# One worker runs this module (`make test` distributes by `xdist_group`), so the runs, a
# session fixture, train once (while xdist ignored the group they trained in both workers).
pytestmark = pytest.mark.xdist_group("analyze")


@pytest.fixture(scope="session")
def runs(tmp_path_factory, data_dir):
    """Two short digits runs from the same init with different data order."""
    root = tmp_path_factory.mktemp("runs")
    for name, data_seed in (("a", 0), ("b", 1)):
        config = get_config("digits")
        config.update(
            model="small_cnn",
            data_dir=data_dir,
            num_steps=60,
            eval_every=20,
            checkpoint_every=20,
            log_every=10,
            num_devices=1,
            data_seed=data_seed,
        )
        supervised.train_and_evaluate(config, root / name)
    return root


def test_this_module_is_one_xdist_group(request):
    # pytest 9.2 with xdist 3.8 dropped the group silently, and the runs trained in both workers.
    if request.config.getoption("dist", "no") == "loadgroup":
        assert request.node.nodeid.endswith("@analyze"), request.node.nodeid


def test_trajectory_vmapped_equals_single_and_trainer_eval(runs):
    run = SavedRun(runs / "a")
    assert run.steps == [20, 40, 60]
    records = analyze.trajectory(run, chunk=2)  # chunks of 2 and 1
    assert [r["step"] for r in records] == [20, 40, 60]
    evaluator = run.test_evaluator()
    trained = {r["step"]: r for r in logs.evals(logs.read(runs / "a" / "metrics.jsonl"))}
    for record in records:
        single = {k: float(v) for k, v in evaluator.evaluate(run.variables(record["step"])).items()}
        interplay = {"mir", "hdr", "mi", "h_features", "h_heads"}  # checked below
        for key in {*FIELDS, "batch_mir", "batch_hdr"} - interplay:
            assert abs(record[key] - single[key]) <= 1e-5 * max(1, abs(record[key])), key
        # Two compiled programs (vmapped and single): float32 summation orders differ.
        reference.assert_interplay_close(record, single, rtol=2e-5)
        logged = {k.removeprefix("eval/"): v for k, v in trained[record["step"]].items()}
        for key in ("accuracy", "loss", "nc1", "nc4"):
            np.testing.assert_allclose(record[key], logged[key], rtol=2e-4, err_msg=key)
        reference.assert_interplay_close(record, logged, rtol=1e-4)
    assert (runs / "a/analysis/trajectory.png").stat().st_size > 20_000
    assert len(logs.read(runs / "a/analysis/trajectory.jsonl")) == 3


def test_clustering_keys_equal_sklearn_on_the_test_features(runs):
    run = SavedRun(runs / "a")
    evaluator = run.test_evaluator()
    variables = run.variables(60)
    values = evaluator.evaluate(variables)
    parts = [
        (run.model.apply(variables, b["image"])[1], b["label"], b["mask"])
        for b in evaluator.batches
    ]
    z = np.concatenate([np.asarray(f)[np.asarray(m) > 0] for f, _, m in parts]).astype(np.float64)
    y = np.concatenate([np.asarray(y)[np.asarray(m) > 0] for _, y, m in parts])
    expected = sklearn.metrics.silhouette_score(z, y, metric="cosine")
    assert values["silhouette"] == pytest.approx(expected, abs=1e-4)
    expected = sklearn.metrics.davies_bouldin_score(z, y)
    assert values["davies_bouldin"] == pytest.approx(expected, rel=1e-4)
    expected = np.mean([reference.matrix_entropy(reference.gram(z[y == c])) for c in set(y)])
    assert values["class_entropy"] == pytest.approx(expected, abs=1e-4)


def test_lmc_endpoints_equal_the_two_runs(runs):
    a, b = SavedRun(runs / "a"), SavedRun(runs / "b")
    va, vb = a.variables(60), b.variables(60)
    stacked = analyze.interpolate(va, vb, [0.0, 0.5, 1.0])
    for got, want in ((0, va), (2, vb)):
        jax.tree.map(
            lambda x, y, i=got: np.testing.assert_allclose(x[i], y, rtol=1e-6, atol=1e-7),
            stacked,
            want,
        )
    mid = jax.tree.map(lambda x, y: (x + y) / 2, va, vb)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x[1], y, rtol=1e-6, atol=1e-6), stacked, mid
    )
    records = analyze.linear_mode_connectivity(a, b, num_points=5, bn_batches=3)
    assert [r["omega"] for r in records] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(0 <= r["mir"] <= 1 for r in records)


def _kernels(tree):
    return [
        x
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
        if any(getattr(k, "key", None) == "kernel" for k in p)
    ]


def test_pruning_masks_hit_their_sparsity(runs):
    params = SavedRun(runs / "a").variables(60)["params"]
    total = sum(x.size for x in _kernels(params))
    for sparsity in (0.0, 0.3, 0.9):
        mask = analyze.magnitude_masks(params, sparsity)
        zeros = sum(int((m == 0).sum()) for m in jax.tree.leaves(mask))
        assert zeros == int(sparsity * total)  # only kernels, exactly ⌊s·N⌋ of them
        weights = jnp.concatenate([jnp.abs(x).ravel() for x in _kernels(params)])
        keep = jnp.concatenate([m.ravel() for m in _kernels(mask)]) > 0
        if sparsity:
            assert float(weights[~keep].max()) <= float(weights[keep].min())  # smallest go
    records = analyze.prune(
        SavedRun(runs / "a"), sparsities=(0.0, 0.5), finetune_steps=2, max_samples=64
    )
    assert [r["sparsity"] for r in records] == [0.0, 0.5]
    assert 0 <= records[1]["mir_before_after"] <= 1


def test_missing_empty_and_unreadable_checkpoints(runs, tmp_path, capsys):
    with pytest.raises(ValueError, match="does not exist"):
        SavedRun(tmp_path / "nothing")
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    shutil.copy(runs / "a" / "config.json", tmp_path / "empty")
    with pytest.raises(ValueError, match="no completed checkpoint"):
        SavedRun(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(runs / "a", broken)
    for f in pathlib.Path(broken / "checkpoints" / "40" / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 1000:
            f.write_bytes(b"garbage")
    records = analyze.trajectory(SavedRun(broken))
    assert [r["step"] for r in records] == [20, 60]
    out = capsys.readouterr().out
    assert "unreadable checkpoint at step 40: " in out  # with the underlying error


def test_a_diverged_checkpoint_reads_nan_and_is_reported(runs, capsys):
    run = SavedRun(runs / "a")
    good = run.variables(60)
    diverged = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), good)
    values = run.test_evaluator().evaluate_stacked(analyze.stack([good, diverged]))
    for key in values:  # every metric of the diverged model, those of its features included
        assert np.isfinite(values[key][0]) and np.isnan(values[key][1]), key
    records = analyze._records(values, [60, 61], "step")
    assert logs.report_nonfinite(records[1], "checkpoint at step 61")
    assert "checkpoint at step 61: non-finite accuracy" in capsys.readouterr().out
