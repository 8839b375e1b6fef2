"""Activation health (issue 29) against NumPy on the same probe rows, the sigmoid's 1/4 bound, dead ReLU units,
the records' columns, and the inside tab's words for a gradient that vanished."""

import math

import numpy as np
import pytest

from tuilab.engine.nn import health, internals
from tuilab.engine.nn.model import MLP


def _numpy_health(net, theta, X):
    """Each hidden layer's (mean f'(z), saturated share, dead share, mean a, std a), written out plainly."""
    out, a = [], X.astype(np.float64)
    for l in range(net.layout.n_layers - 1):
        W, b = net.layout.layer(theta.astype(np.float64), l)
        z = a @ W.T + b
        act = net.activations[l]
        if act == "sigmoid":
            a = 1 / (1 + np.exp(-z))
            d = a * (1 - a)
        elif act == "tanh":
            a = np.tanh(z)
            d = 1 - a * a
        elif act == "relu":
            a = np.maximum(z, 0)
            d = (z > 0).astype(float)
        else:
            raise AssertionError(act)
        dead = np.mean(np.all(a == 0, axis=0))
        out.append((d.mean(), np.mean(d < 0.05 * health.DERIV_MAX[act]), dead, a.mean(), a.std()))
    return out


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_the_figures_are_numpys_on_the_same_probe_rows(act):
    rng = np.random.default_rng(4)
    net = MLP([6, 9, 7, 5, 3], act, "softmax", "cross_entropy", "float64")
    theta = net.init("xavier_normal", "zeros", 2) * 3.0  # large weights: some saturation, some dead units
    X = rng.normal(size=(300, 6))
    got = health.activation_health(net, theta, X)
    for l, (dact, sat, dead, mean, sd) in enumerate(_numpy_health(net, theta, X), start=1):
        assert got[f"dact_mean_{l}"] == pytest.approx(dact, rel=1e-9, abs=1e-12)
        assert got[f"act_mean_{l}"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert got[f"act_std_{l}"] == pytest.approx(sd, rel=1e-7, abs=1e-12)
        if act == "relu":
            assert got[f"dead_{l}"] == pytest.approx(dead) and math.isnan(got[f"saturated_{l}"])
        else:
            assert got[f"saturated_{l}"] == pytest.approx(sat) and math.isnan(got[f"dead_{l}"])
    assert sorted(got) == sorted(health.columns(net.layout.n_layers))


def test_a_sigmoid_layer_passes_back_at_most_a_quarter():
    rng = np.random.default_rng(0)
    for seed in range(20):
        net = MLP([5, 8, 8, 2], "sigmoid", "softmax", "cross_entropy", "float32")
        theta = (net.init("xavier_normal", "zeros", seed) * rng.uniform(0.1, 10)).astype(np.float32)
        got = health.activation_health(net, theta, rng.normal(size=(64, 5)).astype(np.float32))
        assert 0 < got["dact_mean_1"] <= 0.25 and 0 < got["dact_mean_2"] <= 0.25


def test_a_relu_unit_that_never_fires_is_counted_dead():
    net = MLP([4, 10, 3], "relu", "softmax", "cross_entropy", "float64")
    theta = net.init("kaiming_uniform", "zeros", 1)
    W, b = net.layout.layer(theta, 0)
    b[[2, 7]] = -1e3  # two of ten units below zero on every row
    got = health.activation_health(net, theta, np.random.default_rng(1).normal(size=(200, 4)))
    assert got["dead_1"] == pytest.approx(0.2)


def test_probe_rows_are_spread_and_fixed():
    rows = health.probe_rows(60_000)
    assert len(rows) == health.PROBE_ROWS and rows[0] == 0 and rows[-1] == 59_999
    assert np.array_equal(rows, health.probe_rows(60_000))
    assert np.array_equal(health.probe_rows(7), np.arange(7)) and len(health.probe_rows(0)) == 0


def test_the_trainer_records_them_with_the_internals(tmp_path):
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.run_records import RunRecords, read_records
    from tuilab.engine.training.runner import run_network

    exp = load_experiment("xor", overrides=[("train.epochs", 3)])
    out = tmp_path / "xor"
    run_network(exp, records=RunRecords(out))
    rows = read_records(out).metrics
    # in the epochs that record the internals (the first and last always; small epochs every k-th), as they do
    recorded = [r for r in rows if math.isfinite(r.get("update_ratio_1", math.nan))]
    assert [r["epoch"] for r in recorded][0] == 1 and recorded[-1]["epoch"] == 3
    for r in recorded:  # xor's hidden layers are sigmoid: each below 1/4
        assert 0 < r["dact_mean_1"] <= 0.25 and 0 < r["dact_mean_2"] <= 0.25 and r["act_std_1"] > 0
    assert all(math.isnan(r["dact_mean_1"]) for r in rows if r not in recorded)


def test_a_vanished_gradient_is_named_and_the_learning_rate_is_not_blamed():
    words = internals.verdict(1e-7, gradient_share=1e-5)
    assert "vanished" in words and "learning rate may be too small" not in words
    assert "learning rate may be too small" in internals.verdict(1e-7, gradient_share=0.5)
    # nine layers, each passing back 0.2: the line says so, and the factors multiply to the measured fall
    norms = [0.2 ** (8 - l) for l in range(9)]
    metrics = {f"dact_mean_{l + 1}": 0.19 for l in range(8)}
    line = internals.why_it_vanishes(norms, metrics, ("sigmoid",) * 8)
    assert line.startswith("each layer passes back about 0.2 of the gradient (mean σ'(z) 0.19): 8 layers: 2.6e-06")
    assert "vanishes" in line
    assert internals.why_it_vanishes(norms, {}, ("sigmoid",) * 8) == ""  # no health figures, no words
