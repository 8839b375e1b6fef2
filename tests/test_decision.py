"""Decision maps (issue 29): the grid's outputs are the network's forward pass on the same points, the grid is in
the data's own units (the training points map back exactly), records keep decision.npz, report draws it."""

import io

import numpy as np
import pytest

from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.data.sets import load_source, prepare
from tuilab.engine.nn import decision
from tuilab.engine.nn.model import MLP
from tuilab.engine.records.run_records import RunRecords
from tuilab.engine.training.runner import run_network
from tuilab.report import report


def _prepared(name="spirals", normalize="standardize", dtype=np.float64):
    src, _ = load_source(name, n_samples=600, noise=0.05, seed=3)
    return prepare(src, normalize=normalize, seed=0, dtype=dtype)


@pytest.mark.parametrize("normalize", ["standardize", "unit", "none"])
def test_the_training_points_map_back_to_the_datas_own_units_exactly(normalize):
    d = _prepared(normalize=normalize)
    raw = d.to_data(d.X_train)
    np.testing.assert_allclose(d.to_inputs(raw), d.X_train, rtol=1e-12, atol=1e-12)
    src, _ = load_source("spirals", n_samples=600, noise=0.05, seed=3)
    x, y = decision.grid_axes(d)
    assert x[0] < src.X_train[:, 0].min() and x[-1] > src.X_train[:, 0].max()  # the grid spans all the data
    assert y[0] < src.X_train[:, 1].min() and y[-1] > src.X_train[:, 1].max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_grid_is_the_networks_forward_pass_on_its_points(dtype):
    d = _prepared(dtype=dtype)
    net = MLP([2, 16, 16, 2], "tanh", "softmax", "cross_entropy", dtype)
    theta = net.init("xavier_normal", "zeros", 1)
    m = decision.decision_map(net, theta, d, nx=20, ny=12)
    gx, gy = np.meshgrid(m.x, m.y)
    points = d.to_inputs(np.column_stack([gx.ravel(), gy.ravel()])).astype(dtype)
    expected = net.predict(theta, points).reshape(12, 20, 2)
    np.testing.assert_array_equal(m.p, expected.astype(np.float32))
    np.testing.assert_allclose(m.p.sum(axis=2), 1.0, rtol=1e-5)
    # at the training points themselves the grid's function is the network's prediction there
    at_train = net.predict(theta, np.ascontiguousarray(d.to_inputs(d.to_data(d.X_train)), dtype=dtype))
    np.testing.assert_allclose(at_train, net.predict(theta, d.X_train), rtol=1e-5, atol=1e-6)


def test_only_two_input_sets_not_normalised_per_sample_get_a_map():
    assert decision.has_map(_prepared())
    assert not decision.has_map(_prepared(normalize="per_sample"))
    assert not decision.has_map(_prepared("sine", normalize="unit"))  # one input


def test_records_keep_each_runs_map_and_report_draws_it(tmp_path):
    exp = build_experiment({"data": {"name": "circles", "n_samples": 400, "noise": 0.05},
                            "model": {"hidden": [8], "activation": "tanh"},
                            "optimizer": {"name": "adam", "lr": 0.05}, "train": {"epochs": 40, "batch_size": 32}},
                           "t.toml", "t")
    run_network(exp, records=RunRecords(tmp_path))
    label = exp.runs[0].label
    from tuilab.engine.records.run_records import slug

    m = decision.load(tmp_path / slug(label) / "decision.npz")
    assert m.p.shape == (decision.GRID[1], decision.GRID[0], 2) and m.x.shape == (decision.GRID[0],)
    # circles: the inner circle (class 1) at the centre, the outer ring (class 0) at a corner
    centre = m.p[len(m.y) // 2, len(m.x) // 2]
    assert centre[1] > 0.5 and m.p[0, 0, 0] > 0.5
    out = io.StringIO()
    assert report([tmp_path], out) == 0
    text = out.getvalue()
    assert f"decision map of {label}" in text and "O class 0  X class 1" in text
    grid = [line for line in text.splitlines() if line and set(line) <= set("oOxX")]
    assert len(grid) == 24 and {"O", "X"} <= set("".join(grid))


def test_the_map_view_draws_classes_points_and_values_without_colour(monkeypatch):
    """NO_COLOR: a character per class (upper-case where sure), a test point it gets wrong as ✗ where it lies;
    a one-output map as its value 0-9, top row the largest y."""
    from tuilab.app.map_view import render_map
    from tuilab.engine.events import DecisionMapped

    monkeypatch.setenv("NO_COLOR", "1")
    p = np.zeros((64, 96, 2), np.float32)
    p[:32, :, 0], p[:32, :, 1] = 0.9, 0.1  # low y: class 0, sure
    p[32:, :, 0], p[32:, :, 1] = 0.45, 0.55  # high y: class 1, unsure
    axes = np.linspace(0, 1, 96), np.linspace(0, 1, 64)
    e = DecisionMapped(0, 1, *axes, p, None, None, np.array([[0.5, 0.9]]), np.array([1]), np.array([0]))
    assert render_map(e, 12, 4).plain.splitlines() == ["xxxxxx✗xxxxx", "x" * 12, "O" * 12, "O" * 12]
    values = np.linspace(-1, 1, 64 * 96, dtype=np.float32).reshape(64, 96, 1)
    e = DecisionMapped(0, 1, *axes, values, None, None, None, None, None)
    assert render_map(e, 12, 4).plain.splitlines() == ["9" * 12, "7" * 12, "4" * 12, "1" * 12]
