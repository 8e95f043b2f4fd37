"""Grokking: the modular-arithmetic dataset, the transformer, the fused loop and resume."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from interplay import infotheory as it
from interplay import models
from interplay.trainers import grokfast, grokking, profile
from interplay.trainers.configs.grokking import get_config
from interplay.trainers.core import checkpoints, logs
from interplay.trainers.core.state import TrainState, train_step
from interplay.trainers.data import modular
from interplay.trainers.studies import grokking_study


@pytest.mark.parametrize("operation", sorted(modular.OPERATIONS))
def test_every_pair_exactly_once_with_correct_labels(data_dir, operation):
    p = 7
    splits = modular.load(modular.modular_config(p, operation, 0.3, split_seed=1), data_dir)
    tokens = np.concatenate([splits["train"]["tokens"], splits["test"]["tokens"]])
    labels = np.concatenate([splits["train"]["label"], splits["test"]["label"]])
    expected = {(a, b) for a in range(p) for b in range(1 if operation == "div" else 0, p)}
    got = [tuple(t[:2]) for t in tokens]
    assert len(got) == len(set(got)) and set(got) == expected
    assert (tokens[:, 2] == p).all()  # the "=" token
    assert len(splits["train"]["label"]) == round(0.3 * len(expected))
    a, b = tokens[:, 0], tokens[:, 1]
    check = {
        "add": (a + b) % p,
        "sub": (a - b) % p,
        "mul": (a * b) % p,
        "sq_sum": (a * a + b * b) % p,
        "div": None,
    }[operation]
    if operation == "div":
        np.testing.assert_array_equal((labels * b) % p, a)  # label · b ≡ a
    else:
        np.testing.assert_array_equal(labels, check)


def test_split_is_deterministic_and_seeded(data_dir):
    one = modular.load(modular.modular_config(11, "add", 0.5, 0), data_dir)
    again = modular.load(modular.modular_config(11, "add", 0.5, 0), data_dir + "/again")
    other = modular.load(modular.modular_config(11, "add", 0.5, 1), data_dir)
    key = lambda s: sorted(map(tuple, s["train"]["tokens"]))  # noqa: E731
    assert key(one) == key(again) and key(one) != key(other)


def test_bad_dataset_configs():
    with pytest.raises(ValueError, match="prime"):
        modular.modular_config(100)
    with pytest.raises(ValueError, match="operation"):
        modular.modular_config(7, "pow")
    with pytest.raises(ValueError, match="train_fraction"):
        modular.modular_config(7, "add", 1.5)


@pytest.mark.parametrize("layer_norm,style", [(False, "nanda"), (True, "nanda"), (False, "flax")])
def test_transformer_shapes_and_head(layer_norm, style):
    config = get_config()
    config.update(layer_norm=layer_norm, model_style=style)
    model = grokking.make_model(config)
    tokens = jnp.array([[1, 2, 113], [5, 7, 113]])
    params = model.init(jax.random.key(0), tokens)["params"]
    logits, features = model.apply({"params": params}, tokens)
    outputs = 114 if style == "nanda" else 113  # Nanda's unembedding also scores `=`
    assert logits.shape == (2, outputs) and features.shape == (2, 128)
    assert models.head(params).shape == (outputs, 128)
    assert ("ln_final" in params) == layer_norm
    assert params["query"]["kernel"].shape == (128, 4, 32)
    assert params["mlp_in"]["kernel"].shape == (128, 512)


def test_nanda_initialization_scales():
    """Plain normal, std 1/√width everywhere (the MLP's output too), the unembedding 1/√114;
    Flax's default gives the MLP's output LeCun's truncated 1/√512."""
    tokens = jnp.array([[1, 2, 113]])
    params = {}
    for style in ("nanda", "flax"):
        config = get_config()
        config.model_style = style
        params[style] = grokking.make_model(config).init(jax.random.key(0), tokens)["params"]
    nanda = params["nanda"]
    for name in ("query", "key", "value", "out", "mlp_in", "mlp_out"):
        kernel = nanda[name]["kernel"]
        np.testing.assert_allclose(np.std(kernel), 1 / np.sqrt(128), rtol=0.03, err_msg=name)
        assert np.abs(kernel).max() > 3.5 / np.sqrt(128), name  # untruncated tails
    np.testing.assert_allclose(np.std(nanda["head"]["kernel"]), 1 / np.sqrt(114), rtol=0.03)
    assert np.std(params["flax"]["mlp_out"]["kernel"]) < 0.6 / np.sqrt(128)


def test_fused_scan_equals_per_step_loop():
    config = get_config("small")
    tokens = jnp.array([[a, b, 23] for a in range(23) for b in range(0, 23, 5)])
    labels = (tokens[:, 0] + tokens[:, 1]) % 23
    model, (tx, _) = grokking.make_model(config), grokking.make_optimizer(config)
    state = TrainState.create(model.init(jax.random.key(0), tokens[:1]), tx)
    fused, per_step = grokking.fused_steps(state, tokens, labels, model=model, num_steps=5)
    loss_fn = functools.partial(grokking.loss_fn, model=model)
    step = jax.jit(functools.partial(train_step, loss_fn=loss_fn))
    looped = state
    for i in range(5):
        looped, row = step(looped, (tokens, labels))
        for key, value in row.items():
            np.testing.assert_allclose(per_step[key][i], value, rtol=1e-5, err_msg=key)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), fused, looped)


def _small(data_dir, **overrides):
    config = get_config("small")
    config.update({"data_dir": data_dir, "num_steps": 300, "checkpoint_every": 100, **overrides})
    return config


def _evals(path):
    return logs.evals(logs.read(path / "metrics.jsonl"))


def test_tiny_run_fits_train_set_and_logs_every_interplay(tmp_path, data_dir):
    # Resuming (the same vmapped state, one member here) is tested with two seeds below.
    reps = "features,mlp_hidden_centred"  # each variant adds to the eval's compile time
    [summary] = grokking.train_and_evaluate(
        _small(data_dir, representations=reps), tmp_path / "full"
    )
    records = _evals(tmp_path / "full")
    assert records[-1]["eval_train/accuracy"] == 1.0 and summary["train_fit_at"] <= 300
    keys = {f"{s}/{k}" for s in ("eval_train", "eval", "eval_table") for k in ("loss", "accuracy")}
    keys |= {
        grokking.interplay_key(s, r, k)
        for s in grokking.SAMPLES
        for r in reps.split(",")
        for k in ("mir", "hdr", "mi", "h_features", "h_heads")
    }
    assert {"eval_table/mlp_hidden_centred_hdr", "eval_batch/mir"} <= keys
    train = {f"train/{k}" for k in ("loss", "grad_norm", "update_norm", "param_norm")}
    train |= {"train/learning_rate", "train/steps_per_sec"}
    assert set(records[-1]) == keys | train | {"step", "time"}
    assert (tmp_path / "full" / "config.json").exists()
    assert (tmp_path / "full" / "grokking.png").stat().st_size > 20_000
    assert (tmp_path / "full" / "summary.json").exists()
    # The layer profile reads the run's checkpoints: its residual stream is the head's input.
    config = _small(data_dir, representations=reps)
    last = records[-1]["step"]
    rows = profile.profile_run(tmp_path / "full", split="test", steps=[last], progress=False)
    assert [r["layer"] for r in rows] == list(profile.GROKKING_LAYERS)
    state, _ = checkpoints.restore(
        checkpoints.manager(tmp_path / "full" / "checkpoints", read_only=True),
        last,
        jax.eval_shape(grokking.experiment(config).init),
    )
    params = jax.tree.map(lambda x: x[0], state.params)
    data = modular.load(
        modular.modular_config(config.p, config.operation, config.train_fraction, 0), data_dir
    )["test"]
    model = grokking.make_model(config)
    _, reps_by_hand = grokking.taps(params, model, jnp.asarray(data["tokens"]))
    features, head = reps_by_hand["residual"]
    want = it.dataset_interplay([(features, data["label"])], head, num_classes=config.p)
    residual = next(r for r in rows if r["layer"] == "residual")
    np.testing.assert_allclose(residual["mir"], want.mir, rtol=1e-4)


def test_bad_trainer_config(tmp_path, data_dir):
    with pytest.raises(ValueError, match="multiple of eval_every"):
        grokking.train_and_evaluate(_small(data_dir, num_steps=275), tmp_path)
    with pytest.raises(ValueError, match="num_heads must be positive"):
        grokking.train_and_evaluate(_small(data_dir, num_heads=0), tmp_path)
    with pytest.raises(ValueError, match="representations='features,logits'.*mlp_hidden_centred"):
        grokking.train_and_evaluate(_small(data_dir, representations="features,logits"), tmp_path)
    with pytest.raises(ValueError, match="samples"):
        grokking.train_and_evaluate(_small(data_dir, samples=""), tmp_path)
    with pytest.raises(ValueError, match="num_seeds"):
        grokking.train_and_evaluate(_small(data_dir, num_seeds=0), tmp_path)
    with pytest.raises(ValueError, match=r"config.grokfast_alpha must be in \[0, 1\)"):
        grokking.train_and_evaluate(_small(data_dir, grokfast=True, grokfast_alpha=1.5), tmp_path)
    with pytest.raises(ValueError, match="config.model_style must be one of flax, nanda"):
        grokking.train_and_evaluate(_small(data_dir, model_style="torch"), tmp_path)
    assert not (tmp_path / "config.json").exists()  # refused before anything was written


def test_layer_norm_features_are_what_the_head_reads():
    config = get_config("small")
    config.layer_norm = True
    model = grokking.make_model(config)
    tokens = jnp.array([[1, 2, 23], [5, 7, 23], [3, 3, 23]])
    params = model.init(jax.random.key(0), tokens)["params"]
    logits, features = model.apply({"params": params}, tokens)
    np.testing.assert_allclose(logits, features @ params["head"]["kernel"], rtol=1e-5, atol=1e-6)


def test_grokfast_filter_against_a_hand_computed_three_steps():
    # α = 0.5, λ = 2; gradients 1, 3, −1 (and twice that in a second leaf).
    # m: 1 (the first gradient), 0.5·1 + 0.5·3 = 2, 0.5·2 + 0.5·(−1) = 0.5
    # out = g + 2m: 3, 7, 0
    tx = grokfast.ema_filter(alpha=0.5, lamb=2.0)
    params = {"a": jnp.zeros(()), "b": jnp.zeros(2)}
    state = tx.init(params)
    for g, expected in ((1.0, 3.0), (3.0, 7.0), (-1.0, 0.0)):
        grads = {"a": jnp.asarray(g), "b": jnp.full(2, 2 * g)}
        out, state = tx.update(grads, state, params)
        np.testing.assert_allclose(out["a"], expected, rtol=1e-6)
        np.testing.assert_allclose(out["b"], 2 * expected, rtol=1e-6)
    assert int(state.count) == 3
    with pytest.raises(ValueError, match="alpha"):
        grokfast.ema_filter(alpha=1.0)


def test_taps_equal_a_manual_forward_pass():
    config = get_config("small")
    model = grokking.make_model(config)
    tokens = jnp.array([[1, 2, 23], [5, 7, 23], [3, 3, 23], [22, 0, 23]])
    params = model.init(jax.random.key(1), tokens)["params"]
    logits, reps = grokking.taps(params, model, tokens)
    P = jax.tree.map(np.asarray, params)  # noqa: N806
    x = P["embed"]["embedding"][np.asarray(tokens)] + P["position"][:3]  # (n, 3, width)
    q = np.einsum("nw,whd->nhd", x[:, -1], P["query"]["kernel"])
    k = np.einsum("ntw,whd->nthd", x, P["key"]["kernel"])
    v = np.einsum("ntw,whd->nthd", x, P["value"]["kernel"])
    scores = np.einsum("nhd,nthd->nht", q, k) / np.sqrt(config.head_dim)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attention = np.einsum("nhd,hdw->nw", np.einsum("nht,nthd->nhd", weights, v), P["out"]["kernel"])
    hidden = np.maximum((x[:, -1] + attention) @ P["mlp_in"]["kernel"] + P["mlp_in"]["bias"], 0)
    residual = x[:, -1] + attention + hidden @ P["mlp_out"]["kernel"] + P["mlp_out"]["bias"]
    unembed = P["head"]["kernel"].T  # (24, width): Nanda's also scores `=`
    head = unembed[: config.p]  # the class vectors the metrics read
    expected = {
        "features": (residual, head),
        "residual": (residual, head),
        "attention": (attention, head),
        "mlp_hidden": (hidden, head @ P["mlp_out"]["kernel"].T),
    }
    assert set(reps) == set(grokking.REPRESENTATIONS) == set(expected)
    for name, (features, w) in expected.items():
        np.testing.assert_allclose(reps[name][0], features, rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(reps[name][1], w, rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(logits, residual @ unembed.T, rtol=1e-4, atol=1e-5)
    # The MLP's head is its logit map: hidden @ W_hidden.T is the MLP's share of the logits.
    np.testing.assert_allclose(
        hidden @ expected["mlp_hidden"][1].T,
        hidden @ P["mlp_out"]["kernel"] @ head.T,
        rtol=1e-4,
        atol=1e-5,
    )


def _log(steps, test, train=1.0, mir=None, hdr=None, h=None, norm=None):
    """Hand-made eval records."""
    rows = []
    for i, step in enumerate(steps):
        row = {"step": step, "time": step / 10, "eval/accuracy": test[i]}
        row["eval_train/accuracy"] = train
        row |= {"eval/mir": mir[i], "eval/hdr": hdr[i], "eval/h_features": h[i]}
        row["train/param_norm"] = norm[i]
        rows.append(row)
    return rows


def test_summary_landmarks_and_leads_on_a_hand_made_log():
    records = _log(
        steps=[0, 100, 200, 300, 400, 500],
        test=[0.0, 0.1, 0.2, 0.6, 0.995, 1.0],
        mir=[0.4, 0.6, 0.5, 0.3, 0.35, 0.36],  # peak at 100
        hdr=[0.1, 0.1, 0.5, 0.6, 0.2, 0.2],  # largest rise 0.1 → 0.5 at 200
        h=[np.log(10), np.log(9), np.log(2), np.log(1.5), 0.0, 0.0],  # rank falls most at 200
        norm=[5, 9, 8, 7, 6, 5],  # peak at 100
    )
    s = grokking.summarize(records, threshold=0.99)
    assert (s["train_fit_at"], s["jump_at"], s["grokked_at"]) == (0, 300, 400)
    assert s["landmarks"]["eval/mir"] == {
        "init": 0.4,
        "train_fit": 0.4,
        "jump": 0.3,
        "grokked": 0.35,
        "max": [100, 0.6],
        "min": [300, 0.3],
    }
    expected = {
        "eval/mir peak": 100,
        "eval/hdr rise": 200,
        "eval/effective_rank fall": 200,
        "weight_norm peak": 100,
    }
    assert {k: v["step"] for k, v in s["signals"].items()} == expected
    for name, step in expected.items():
        assert s["signals"][name]["lead_jump"] == 300 - step
        assert s["signals"][name]["lead_grokked"] == 400 - step


@pytest.mark.slow  # four trainer runs, two vmapped (about 70 s): margin under make test's 15 min
def test_seeds_vmapped_each_write_a_run_and_resume_exactly(tmp_path, data_dir):
    # Grokfast on, so its EMA state is part of what must resume exactly.
    base = dict(num_seeds=2, representations="features,mlp_hidden", samples="train,batch")
    base["grokfast"] = True
    grokking.train_and_evaluate(_small(data_dir, num_steps=150, **base), tmp_path / "full")
    grokking.train_and_evaluate(_small(data_dir, num_steps=100, **base), tmp_path / "resumed")
    summaries = grokking.train_and_evaluate(
        _small(data_dir, num_steps=150, **base), tmp_path / "resumed"
    )
    assert len(summaries) == 2
    for seed in ("seed_0", "seed_1"):
        full, resumed = _evals(tmp_path / "full" / seed), _evals(tmp_path / "resumed" / seed)
        assert [r["step"] for r in resumed] == [r["step"] for r in full] == [0, 50, 100, 150]
        assert "eval_batch/mlp_hidden_mir" in full[-1] and "eval/attention_mir" not in full[-1]
        for key in full[-1].keys() - {"time", "train/steps_per_sec"}:
            np.testing.assert_allclose(resumed[-1][key], full[-1][key], rtol=1e-5, err_msg=key)
        assert (tmp_path / "full" / seed / "summary.json").exists()
    seeds = [_evals(tmp_path / "full" / s)[0]["eval_train/mir"] for s in ("seed_0", "seed_1")]
    assert seeds[0] != seeds[1]  # different initializations
    # Member 0 of the vmapped run starts where a single run of seed 0 starts: the same MIR up to
    # float32 round-off of the batched products, absolute (MIR is a difference of entropies of
    # a few nats, however small it is; 3.7e-6 at MIR 0.148 on an AMD EPYC).
    [single] = grokking.train_and_evaluate(
        _small(data_dir, num_steps=50, representations="features"), tmp_path / "single"
    )
    assert single["last_step"] == 50
    np.testing.assert_allclose(
        _evals(tmp_path / "single")[0]["eval_train/mir"], seeds[0], rtol=0, atol=1e-5
    )


def test_study_tables_from_hand_made_runs(tmp_path):
    # Seed 1 jumps one eval later than seed 0; seed 2 too, and its MIR peaks one eval later.
    late_peak = [0.4, 0.5, 0.6, 0.3, 0.35, 0.36]
    for seed, jump_test, peak in ((0, 0.6, 100), (1, 0.4, 100), (2, 0.4, 200)):
        d = tmp_path / "multi" / f"seed_{seed}"
        d.mkdir(parents=True)
        records = _log(
            [0, 100, 200, 300, 400, 500],
            [0.0, 0.1, 0.2, jump_test, 0.995, 1.0],
            mir=[0.4, 0.6, 0.5, 0.3, 0.35, 0.36] if peak == 100 else late_peak,
            hdr=[0.1, 0.1, 0.5, 0.6, 0.2, 0.2],
            h=[2.0, 1.0, 0.5, 0.4, 0.3, 0.3],
            norm=[5, 9, 8, 7, 6, 5],
        )
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        summary = grokking.summarize(records, threshold=0.99)
        (d / "summary.json").write_text(json.dumps(summary))
    runs = grokking_study.load([tmp_path / "multi"])
    assert len(runs) == 3
    leads = grokking_study.lead_table([s for _, s in runs])
    # MIR peaks at 100, 100, 200; jumps (≥ 50 %) at 300, 400, 400: leads 200, 300, 200 and
    # r = corr((100, 100, 200), (300, 400, 400)) = 3333 / 6667 = 0.5 by hand; grokked at 400
    # in all three (leads 300, 300, 200), a constant landmark: no r.
    assert "| eval/mir peak | 133 ± 58 | 233 ± 58 | 3/3 | 0.50 | 267 ± 58 | 3/3 | — |" in leads
    # Paired by seed with runs that grok at step 200 (logged time: step / 10 s).
    faster = [(records, summary | {"grokked_at": 200}) for records, summary in runs]
    paired = grokking_study.paired_table(runs, faster)
    assert "| 0 | 400 | 200 | 2.00 | 40 | 20 |" in paired
    assert "| mean ± std | 400 ± 0 | 200 ± 0 | 2.00 ± 0.00 | 40 ± 0 | 20 ± 0 |" in paired
    assert "fewer steps in 3 of 3 seeds" in paired
    with pytest.raises(ValueError, match="cannot pair"):
        grokking_study.paired_table(runs, faster[:2])
    landmarks = grokking_study.landmarks_paired(runs, faster, ("a", "b"))
    fit, jump = runs[0][1]["train_fit_at"], runs[0][1]["jump_at"]
    assert f"| 0 | {fit} / {fit} | {jump} / {jump} | 400 / 200 |" in landmarks
    assert "| b − a | 0 ± 0 | 0 ± 0 | -200 ± 0 |" in landmarks
    c = grokking_study.claims(runs, "eval", "features")
    assert c["mir_0"] == [0.4] * 3 and c["mir_1000"] == [0.36] * 3
    assert c["mir_before"] == [0.4] * 3  # 500 before the jump is clipped to step 0
    assert c["hdr_jump_max"] == [0.6] * 3 and c["hdr_rise_from_jump"] == [-100, -200, -200]
    assert "| eval | features | 0.400 ± 0.000 → 0.360 ± 0.000 |" in grokking_study.report(runs)
    with pytest.raises(ValueError, match="summary.json"):
        grokking_study.load([tmp_path])
