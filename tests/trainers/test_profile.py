"""The interplay profile of models defined here (Linen and NNX), against activations
captured by hand and measured by `dataset_interplay`, the NC1 closed form and scikit-learn."""

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
from flax import nnx

from interplay import infotheory as it
from interplay.trainers import profile

NUM_CLASSES = 4


class Block(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Dense(self.width)(x))


class LinenNet(nn.Module):
    """A conv, two blocks of a Dense each, a head: six default layers."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(6, (3, 3))(x))
        x = Block(12)(x.reshape(x.shape[0], -1))
        x = Block(10)(x)
        return nn.Dense(NUM_CLASSES, name="head")(x)


class NNXBlock(nnx.Module):
    def __init__(self, width_in, width, rngs):
        self.linear = nnx.Linear(width_in, width, rngs=rngs)

    def __call__(self, x):
        return nnx.relu(self.linear(x))


class NNXNet(nnx.Module):
    """Attributes named against the forward order, which the profile must still follow."""

    def __init__(self, rngs):
        self.zeta = NNXBlock(36, 12, rngs)
        self.alpha = NNXBlock(12, 10, rngs)
        self.head = nnx.Linear(10, NUM_CLASSES, rngs=rngs)

    def __call__(self, x):
        return self.head(self.alpha(self.zeta(x.reshape(x.shape[0], -1))))


@pytest.fixture(scope="module")
def data():
    x = jax.random.normal(jax.random.key(0), (96, 6, 6, 1))
    y = jnp.arange(96) % NUM_CLASSES
    centres = jax.random.normal(jax.random.key(1), (NUM_CLASSES, 6, 6, 1))
    x = x + centres[y]  # classes apart in every direction: a well-conditioned Σ_B for NC1
    return x, y


def _batches(x, y, size):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


def _by_hand(features, labels, head, atol):
    """What every record must equal: `dataset_interplay`, NC1 from float64 NumPy, the
    cosine silhouette of scikit-learn."""
    z = np.asarray(features, np.float64)
    y = np.asarray(labels)
    r = it.dataset_interplay(
        [(z, y)], np.asarray(head, np.float64), num_classes=NUM_CLASSES, match_width=False
    )
    means = np.stack([z[y == c].mean(0) for c in range(NUM_CLASSES)])
    centred = means - means.mean(0)
    within = sum(np.outer(v, v) for v in z - means[y]) / len(z)
    between = centred.T @ centred / NUM_CLASSES
    nc1 = np.trace(within @ np.linalg.pinv(between, rcond=1e-10, hermitian=True)) / NUM_CLASSES
    silhouette = sklearn.metrics.silhouette_score(z, y, metric="cosine")
    return {
        "h_features": r.h_features,
        "mi": r.mi,
        "mir": r.mir,
        "hdr": r.hdr,
        "h_heads": r.h_heads,
        "nc1": nc1,
        "silhouette": silhouette,
    }


def _check(record, want, rtol):
    for key, value in want.items():
        np.testing.assert_allclose(record[key], value, rtol=rtol, atol=rtol, err_msg=key)
    np.testing.assert_allclose(record["effective_rank"], np.exp(record["h_features"]), rtol=1e-6)
    assert record["mi_stderr"] == 0  # exact at these widths


@pytest.mark.parametrize("dtype,rtol", [(jnp.float32, 1e-4), (jnp.float64, 1e-5)])
def test_linen_profile_equals_the_metrics_of_hand_captured_activations(data, dtype, rtol):
    x, y = data
    with jax.enable_x64(dtype == jnp.float64):
        model = LinenNet()
        variables = jax.tree.map(lambda v: v.astype(dtype), model.init(jax.random.key(1), x))
        x = x.astype(dtype)
        head = variables["params"]["head"]["kernel"].T
        records = profile.interplay_profile(
            model, variables, _batches(x, y, 40), head, num_classes=NUM_CLASSES, progress=False
        )
        layers = [r["layer"] for r in records]
        assert layers == [
            "Conv_0",
            "Block_0/Dense_0",
            "Block_0",
            "Block_1/Dense_0",
            "Block_1",
            "head",
        ]
        _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
        captured = state["intermediates"]
        by_hand = {
            "Conv_0": captured["Conv_0"]["__call__"][0].mean(axis=(1, 2)),  # global average
            "Block_0": captured["Block_0"]["__call__"][0],
            "head": captured["head"]["__call__"][0],
        }
        for record in records:
            if record["layer"] in by_hand:
                _check(record, _by_hand(by_hand[record["layer"]], y, head, rtol), rtol)


def test_nnx_profile_follows_the_forward_order_and_equals_hand_captured(data):
    x, y = data
    model = NNXNet(nnx.Rngs(0))
    head = model.head.kernel[...].T
    records = profile.interplay_profile(
        model, None, _batches(x, y, 50), head, num_classes=NUM_CLASSES, progress=False
    )
    assert [r["layer"] for r in records] == ["zeta/linear", "zeta", "alpha/linear", "alpha", "head"]
    hidden = model.alpha(model.zeta(x.reshape(len(x), -1)))
    _check(records[3], _by_hand(hidden, y, head, 1e-4), 1e-4)


def test_batch_size_does_not_change_the_profile(data):
    x, y = data
    model = LinenNet()
    variables = model.init(jax.random.key(1), x)
    head = variables["params"]["head"]["kernel"].T
    one, many = (
        profile.interplay_profile(
            model, variables, _batches(x, y, size), head, num_classes=NUM_CLASSES, progress=False
        )
        for size in (96, 17)
    )
    for a, b in zip(one, many, strict=True):
        for key in profile.METRICS:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_checkpoints_loop_and_vmap_agree_and_head_follows_each(data):
    x, y = data
    model = LinenNet()
    variables = [model.init(jax.random.key(k), x) for k in (1, 2, 3)]
    kwargs = dict(
        num_classes=NUM_CLASSES,
        progress=False,
        layers=["Block_1", "head"],
        checkpoints=[10, 20, 30],
    )
    head = lambda v: v["params"]["head"]["kernel"].T  # noqa: E731
    looped = profile.interplay_profile(
        model, variables, _batches(x, y, 48), head, vectorize=False, **kwargs
    )
    mapped = profile.interplay_profile(
        model, variables, _batches(x, y, 48), head, vectorize=True, **kwargs
    )
    assert [(r["checkpoint"], r["layer"]) for r in looped] == [
        (c, n) for c in (10, 20, 30) for n in ("Block_1", "head")
    ]
    for a, b in zip(looped, mapped, strict=True):
        for key in profile.METRICS:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *variables)
    from_stack = profile.interplay_profile(
        model, stacked, _batches(x, y, 48), head, stacked=True, **kwargs
    )
    assert [r["mir"] for r in from_stack] == pytest.approx([r["mir"] for r in looped], rel=1e-5)
    single = profile.interplay_profile(
        model,
        variables[2],
        _batches(x, y, 48),
        head(variables[2]),
        num_classes=NUM_CLASSES,
        layers=["head"],
        progress=False,
    )
    assert single[0]["mir"] == pytest.approx(looped[-1]["mir"], rel=1e-5)


def test_features_from_any_framework_equal_the_model_path(data, tmp_path):
    x, y = data
    model = LinenNet()
    variables = model.init(jax.random.key(1), x)
    head = np.asarray(variables["params"]["head"]["kernel"].T)
    from_model = profile.interplay_profile(
        model,
        variables,
        _batches(x, y, 32),
        head,
        num_classes=NUM_CLASSES,
        progress=False,
        layers=["Block_0", "Block_1"],
    )
    _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    arrays = {
        n: np.asarray(state["intermediates"][n]["__call__"][0]) for n in ("Block_0", "Block_1")
    }
    np.savez(tmp_path / "step_5.npz", labels=np.asarray(y), head=head, **arrays)
    out = tmp_path / "out"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "interplay.trainers.profile",
            "--features",
            str(tmp_path / "step_5.npz"),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    records = [
        __import__("json").loads(line) for line in (out / "profile.jsonl").read_text().splitlines()
    ]
    assert [(r["checkpoint"], r["layer"]) for r in records] == [
        ("step_5", "Block_0"),
        ("step_5", "Block_1"),
    ]
    for a, b in zip(from_model, records, strict=True):
        for key in profile.METRICS:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert (out / "heatmaps.png").stat().st_size > 10_000 and (out / "lines.png").exists()


def test_bad_inputs_are_clear_errors(data):
    x, y = data
    model = LinenNet()
    variables = model.init(jax.random.key(1), x)
    head = variables["params"]["head"]["kernel"].T
    call = lambda batches, h=head, **kw: profile.interplay_profile(  # noqa: E731
        model, variables, batches, h, num_classes=NUM_CLASSES, progress=False, **kw
    )
    with pytest.raises(ValueError, match="layers matched no layer of the model"):
        call(_batches(x, y, 48), layers=lambda name, kind: name.startswith("nothing"))
    with pytest.raises(ValueError, match=r"layers \['Block_9'\] are not outputs"):
        call(_batches(x, y, 48), layers=["Block_9"])
    with pytest.raises(ValueError, match="a batch has 47 labels for inputs of"):
        call([(x[:48], y[:47])])
    with pytest.raises(ValueError, match="pass kernel.T"):
        call(_batches(x, y, 48), h=head.T)
    with pytest.raises(ValueError, match="labels"):
        call([(x[:48], y[:48] + 4)])
    with pytest.raises(ValueError, match=r"non-finite activations in layers .*batch 1"):
        call([(x[:48], y[:48]), (x[48:].at[0].set(jnp.nan), y[48:])])
    with pytest.raises(ValueError, match="pool must be one of"):
        call(_batches(x, y, 48), pool="max")


class Wide(nn.Module):
    """A layer too wide for the exact dual at C = 4 (d·C = 6 400 > 6 144 on a CPU)."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(1600, name="wide")(x.reshape(x.shape[0], -1)))
        return nn.Dense(NUM_CLASSES, name="head")(x)


def test_a_wide_layer_is_measured_from_its_kept_features_by_lanczos(data):
    x, y = data
    model = Wide()
    variables = model.init(jax.random.key(1), x)
    head = variables["params"]["head"]["kernel"].T
    [record] = profile.interplay_profile(
        model,
        variables,
        _batches(x, y, 40),
        head,
        num_classes=NUM_CLASSES,
        layers=["wide"],
        progress=False,
    )
    wide = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    z = wide[1]["intermediates"]["wide"]["__call__"][0]  # the Dense output, before relu
    # n = 96 < C·d: dataset_interplay keeps the features too and runs Lanczos on the joint
    # Gram (96 samples: its 128 deflation vectors span it, so the estimate is exact).
    want = it.dataset_interplay([(z, y)], head, num_classes=NUM_CLASSES, match_width=False)
    exact = it.dataset_interplay(
        [(z, y)], head, num_classes=NUM_CLASSES, match_width=False, method="exact"
    )
    for key in ("mir", "hdr", "h_features"):
        np.testing.assert_allclose(record[key], getattr(want, key), rtol=1e-4, err_msg=key)
        np.testing.assert_allclose(record[key], getattr(exact, key), rtol=5e-4, err_msg=key)
