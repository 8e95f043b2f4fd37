"""The `make demo` script ends at the Neural-Collapse values it prints as targets."""

import jax
import numpy as np

from interplay import infotheory as it
from interplay.trainers.studies import collapse_demo


def test_collapse_path_ends_at_neural_collapse(tmp_path, capsys):
    collapse_demo.demo(tmp_path, steps=4, per_class=5)
    assert (tmp_path / "collapse.png").stat().st_size > 10_000
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:5]]
    last = np.array(rows[-1][1:], float)  # H_features H_heads MI MIR HDR at s = 1
    np.testing.assert_allclose(last[:2], np.log(9), atol=1e-3)
    np.testing.assert_allclose(last[3], float(it.nc_mir(10)), atol=1e-3)
    assert last[4] < 1e-3
    first = np.array(rows[0][1:], float)
    assert first[3] < last[3] and first[4] > last[4]  # MIR rises, HDR falls


def test_collapse_path_shapes():
    features, labels, heads = collapse_demo.collapse_path(3, 2, 4, 5, seed=0)
    assert features.shape == (5, 6, 4) and heads.shape == (5, 3, 4) and labels.shape == (6,)
    np.testing.assert_allclose(heads[-1] @ heads[-1].T, it.etf_gram(3), atol=1e-5)
    assert isinstance(heads, jax.Array)
