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
    # a small set's probe is an eighth of it (its cost a few per cent of an epoch), never under 64 rows
    assert len(health.probe_rows(1400)) == 175 and len(health.probe_rows(300)) == 64
    assert len(health.probe_rows(40)) == 40


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
    # the histograms ride in the same rows, one cell a layer; tuilab report draws them
    for r in recorded:
        lo, hi, counts = health.read_histogram(r["act_hist_1"])
        assert 0 < lo < hi < 1 and counts.sum() == 4 * exp.runs[0].model.hidden[0]  # xor: 4 probe rows
    assert all(health.read_histogram(r["act_hist_1"]) is None for r in rows if r not in recorded)
    import io

    from tuilab.report import report

    stream = io.StringIO()
    report([out], stream)
    assert "activations over the epochs" in stream.getvalue() and "\nL2\n" in stream.getvalue()


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


def _numpy_histograms(net, theta, X, bins):
    """Each hidden layer's (min, max, counts) in equal bins from min to max, written out plainly."""
    out, a = [], X.astype(np.float64)
    for l in range(net.layout.n_layers - 1):
        W, b = net.layout.layer(theta.astype(np.float64), l)
        z = a @ W.T + b
        a = np.maximum(z, 0) if net.activations[l] == "relu" else 1 / (1 + np.exp(-z))
        lo, hi = a.min(), a.max()
        k = np.zeros(a.shape, int) if hi <= lo else np.minimum(((a - lo) * (bins / (hi - lo))).astype(np.int64),
                                                                 bins - 1)
        out.append((lo, hi, np.bincount(k.ravel(), minlength=bins)))
    return out


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_the_histograms_are_numpys_and_their_cells_read_back(act):
    from tuilab.kernels.health import HIST_BINS

    rng = np.random.default_rng(7)
    net = MLP([5, 12, 9, 3], act, "softmax", "cross_entropy", "float64")
    theta = net.init("xavier_normal", "zeros", 3) * 2.0
    X = rng.normal(size=(250, 5))
    got = health.activation_health(net, theta, X)
    for l, (lo, hi, counts) in enumerate(_numpy_histograms(net, theta, X, HIST_BINS), start=1):
        read_lo, read_hi, read_counts = health.read_histogram(got[f"act_hist_{l}"])
        assert read_lo == pytest.approx(lo, rel=1e-5, abs=1e-12) and read_hi == pytest.approx(hi, rel=1e-5)
        # a value on a bin's edge may fall either side in the kernel's float arithmetic and NumPy's
        assert np.abs(read_counts - counts).sum() <= 2 and read_counts.sum() == 250 * net.sizes[l]
    for bad in (None, "", "x y 1", "1 0 3 4", "0 1", math.nan, "0 1 0 0"):
        assert health.read_histogram(bad) is None


def test_a_dead_layer_has_one_value_and_a_diverged_one_no_histogram():
    net = MLP([4, 6, 3], "relu", "softmax", "cross_entropy", "float64")
    theta = net.init("kaiming_uniform", "zeros", 1)
    X = np.random.default_rng(2).normal(size=(50, 4))
    W, b = net.layout.layer(theta, 0)
    b[:] = -1e3  # every unit below zero on every row
    lo, hi, counts = health.read_histogram(health.activation_health(net, theta, X)["act_hist_1"])
    assert lo == hi == 0 and counts[0] == 300 and counts[1:].sum() == 0
    net = MLP([4, 6, 3], "sigmoid", "softmax", "cross_entropy", "float64")
    theta = np.full(net.layout.size, np.nan)  # a diverged run's weights: no value to count
    assert health.activation_health(net, theta, X)["act_hist_1"] is None


def test_the_density_grid_keeps_each_epochs_mass_on_a_common_axis():
    rng = np.random.default_rng(3)
    hists = []
    for spread in (0.5, 1.0, 4.0):  # widening over the epochs, as a ReLU layer's activations do
        a = np.concatenate([np.zeros(500), rng.exponential(spread, 500)])
        counts, edges = np.histogram(a, bins=24)
        hists.append((edges[0], edges[-1], counts))
    lo, hi, grid = health.density_grid(hists, rows=8)
    assert grid.shape == (8, 3) and np.allclose(grid.sum(axis=0), 1.0)
    assert lo == 0.0  # ReLU's zero is an end, not a quantile half a bin above it
    assert 4.0 < hi < max(h[1] for h in hists)  # the last epoch's outliers clipped off the axis
    assert np.all(grid[0] > 0.5)  # the half at exactly zero stays in the lowest bin
    assert grid[-1, 2] > grid[-1, 0]  # the widening shows at the top
    one = health.density_grid([(0.0, 0.0, np.array([9, 0, 0]))], rows=4)[2]
    assert np.allclose(one.sum(axis=0), 1.0)


def test_the_strips_draw_in_plain_characters_for_report():
    from tuilab.views.distributions import SHADES, distributions_text

    rows = []
    for epoch, share in ((1, 0.9), (2, 0.5), (3, 0.1)):  # mass moving from the lowest bin to the highest
        counts = np.array([share * 100, 0, 0, (1 - share) * 100])
        rows.append({"epoch": epoch, "act_hist_1": health.histogram_cell(0.0, 1.0, counts), "act_hist_2": ""})
    text = distributions_text(rows, width=3, strip_rows=4)
    lines = text.splitlines()
    assert lines[1] == "L1" and "L2" not in lines  # the second layer has no histogram: no strip
    top, bottom = lines[2], lines[5]
    assert top.startswith("       1 │") and bottom.startswith("       0 │")
    strip_top, strip_bottom = top.split("│")[1], bottom.split("│")[1]
    assert SHADES.index(strip_top[0]) < SHADES.index(strip_top[2])  # more at the top as the epochs go
    assert SHADES.index(strip_bottom[0]) > SHADES.index(strip_bottom[2])
    assert lines[6].strip() == "epochs 1-3"


def test_the_per_layer_factors_multiply_to_the_measured_fall():
    rng = np.random.default_rng(5)
    norms = list(rng.uniform(1e-4, 1.0, size=7))
    dact = list(rng.uniform(0.05, 0.25, size=6))
    fall = health.gradient_fall(norms, dact)
    assert len(fall) == 6 and math.prod(share for share, _ in fall) == pytest.approx(norms[0] / norms[-1])
    assert [d for _, d in fall] == dact[::-1]  # from the last hidden layer to the first


def test_the_inside_panel_splits_the_fall_into_its_factors():
    from tuilab.app.widgets import InsidePanel

    norms = [1e-5, 5e-5, 2.5e-4, 1.25e-3]  # each layer passes back 0.2
    m = {f"dact_mean_{l}": 0.2 for l in (1, 2, 3)}
    m |= {f"{k}_{l}": 0.0 for l in (1, 2, 3) for k in ("saturated", "act_mean", "act_std")}
    text = InsidePanel._health(m, 4, norms).plain
    rows = [line.split() for line in text.splitlines() if line.startswith("L")]
    assert [r[0] for r in rows] == ["L1", "L2", "L3"]
    for r in rows:  # back 0.2 = mean f'(z) 0.2 x gain 1
        assert r[-2] == "0.2" and r[-1] == "1"
