"""Sharpness (issue 30): Hessian-vector products and power iteration against a linear model under squared error,
whose Hessian is known in closed form; the stability thresholds; Adam's preconditioned sharpness against NumPy;
the records; and the edge-of-stability preset's phenomenon."""

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from tuilab.engine.nn import sharpness as S
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer


def _linear(n=200, d=6, k=3, seed=0):
    """A linear model under squared error: L = 0.5 / (n k) Σ (X Wᵀ + b - Y)², so each output's block of H is
    AᵀA / (n k), A = [X 1]."""
    rng = np.random.default_rng(seed)
    net = MLP([d, k], "relu", "identity", "squared_error", "float64")
    X = rng.normal(size=(n, d)) * np.linspace(0.5, 3, d)
    Y = rng.normal(size=(n, k))
    A = np.hstack([X, np.ones((n, 1))])
    return net, X, Y, A.T @ A / (n * k), rng


def _closed_hv(net, G, v):
    """H v from the closed form, per output's (weights, bias) block."""
    out = np.zeros_like(v)
    Wv, bv = net.layout.layer(v, 0)
    Wo, bo = net.layout.layer(out, 0)
    d = Wv.shape[1]
    R = np.hstack([Wv, bv[:, None]]) @ G
    Wo[:], bo[:] = R[:, :d], R[:, d]
    return out


def test_hessian_vector_products_match_the_closed_form():
    net, X, Y, G, rng = _linear()
    theta = net.init("xavier_normal", "zeros", 0)
    for _ in range(5):
        v = rng.normal(size=theta.shape)
        got = S.hessian_vector(net, theta, X, Y, v)
        want = _closed_hv(net, G, v)
        assert np.linalg.norm(got - want) <= 1e-6 * np.linalg.norm(want)


def test_power_iteration_finds_the_largest_eigenvalue():
    net, X, Y, G, rng = _linear()
    theta = net.init("xavier_normal", "zeros", 1)
    top = np.linalg.eigvalsh(G).max()

    def apply(u):
        return S.hessian_vector(net, theta, X, Y, u)

    lam, v, used = S.top_eigenvalue(apply, rng.normal(size=theta.shape), iterations=500, rtol=1e-12)
    assert lam == pytest.approx(top, rel=1e-4)
    # the run's own settings (20 iterations at most, stopping at 1e-3): within a few tenths of a per cent
    probe = S.SharpnessProbe(net, X, Y, seed=0)
    first, n1 = probe.measure(theta)
    assert first == pytest.approx(top, rel=5e-3) and n1 <= S.ITERATIONS
    again, n2 = probe.measure(theta)  # warm: from last time's vector
    assert again == pytest.approx(top, rel=5e-3) and n2 <= 3


@pytest.mark.parametrize("name,hyper,want", [
    ("sgd", {"lr": 0.1}, 20.0),
    ("momentum", {"lr": 0.1, "momentum": 0.9}, 2 * 1.9 / 0.1),
    ("sgd", {"lr": 0.1, "momentum": 0.5, "dampening": 0.5}, 2 * 1.5 / 0.05),
    ("nesterov", {"lr": 0.1, "momentum": 0.9}, 2 * 1.9 / (2.8 * 0.1)),
    ("adam", {"lr": 0.01, "betas": (0.9, 0.999)}, 3.8 / (0.1 * 0.01)),
    ("adamw", {"lr": 0.001, "betas": (0.8, 0.999)}, 3.6 / (0.2 * 0.001)),
])
def test_each_optimizers_stability_threshold(name, hyper, want):
    opt = Optimizer(name, 10, np.float64, 100, **hyper)
    got, words = S.threshold(opt, hyper["lr"])
    assert got == pytest.approx(want) and words


def test_no_threshold_is_said_in_words():
    opt = Optimizer("rmsprop", 10, np.float64, 100, lr=0.01)
    got, words = S.threshold(opt, 0.01)
    assert math.isnan(got) and words == S.NO_THRESHOLD


def test_adams_preconditioned_sharpness_against_numpy():
    net, X, Y, G, rng = _linear(k=1)
    theta = net.init("xavier_normal", "zeros", 2)
    opt = Optimizer("adam", net.layout.size, np.float64, 100, lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    opt.state[opt.slots.index("exp_avg_sq")] = rng.uniform(1e-4, 1e-1, net.layout.size)
    from tuilab.kernels import optimizers as K

    opt.scal[K.S_B1POW], opt.scal[K.S_B2POW] = 0.9**7, 0.99**7  # after 7 steps
    p = S.preconditioner(opt)
    v_hat = opt.state[opt.slots.index("exp_avg_sq")] / (1 - 0.99**7)
    assert np.allclose(p, (1 - 0.9**7) * (np.sqrt(v_hat) + 1e-8))
    H = np.vstack([_closed_hv(net, G, e) for e in np.eye(net.layout.size)]).T
    want = np.linalg.eigvals(np.diag(1 / p) @ H).real.max()
    probe = S.SharpnessProbe(net, X, Y, seed=0)
    for _ in range(20):  # warm starts until it settles (the ratio of its top eigenvalues may be close to 1)
        got, used = probe.measure(theta, opt)
    assert got == pytest.approx(want, rel=1e-3)
    assert S.preconditioner(Optimizer("sgd", 4, np.float64, 10, lr=0.1)) is None


def tuilab(*args):
    return subprocess.run([sys.executable, "-m", "tuilab", *args], capture_output=True, text=True, timeout=600)


def test_records_and_the_headless_line_carry_it(tmp_path):
    out = tmp_path / "s"
    r = tuilab("--preset", "spirals", "--epochs", "6", "--set", "train.sharpness_every=2", "--set",
               'optimizer.name="momentum"', "--set", "optimizer.lr=0.05", "--out", str(out), "headless")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    measured = [r for r in rows if r["sharpness"]]
    assert [int(r["epoch"]) for r in measured] == [2, 4, 6]
    for row in measured:
        assert float(row["sharpness"]) > 0 and float(row["stability_threshold"]) == pytest.approx(2 * 1.9 / 0.05)
        assert 1 <= int(row["sharpness_iterations"]) <= S.ITERATIONS
    assert "sharpness" in r.stderr and "(stable below 76)" in r.stderr


def test_a_resumed_run_measures_as_one_never_stopped(tmp_path):
    """The power iteration's warm start rides in the checkpoint."""
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.training import checkpoint
    from tuilab.engine.training.data_cache import DataCache, DataOptions
    from tuilab.engine.training.train import Trainer

    exp = load_experiment("spirals", [("train.epochs", 4), ("train.sharpness_every", 1)])
    run = exp.runs[0]
    data = DataCache(DataOptions(download=False), lambda e: None).get(run)
    whole = Trainer(0, run, data, lambda e: None)
    whole.run()
    half = Trainer(0, run, data, lambda e: None)
    half.start()
    half.train_epoch()
    half.train_epoch()
    again = Trainer(0, run, data, lambda e: None)
    checkpoint.restore(checkpoint.to_bytes(half), again)
    assert np.array_equal(again.sharp.v, half.sharp.v)
    again.status = "running"
    while again.status == "running":
        again.train_epoch()
    assert again.last_metrics["sharpness"] == whole.last_metrics["sharpness"]


def test_the_edge_of_stability_preset_rises_to_two_over_eta_and_hovers(tmp_path):
    """The preset's η = 2 run alone, 900 epochs: after its first steps (which throw it off the edge it starts
    beyond: the catapult) the sharpness is below 2/η = 1, rises to it and stays near it while the loss goes on
    falling, not monotonically (Cohen et al. 2021). Bounds, not digits: the trajectory at the edge is chaotic,
    and its last bits differ from processor to processor."""
    import tomllib
    from pathlib import Path

    from tuilab.engine.config.tomlwrite import dumps

    doc = tomllib.loads((Path(__file__).parents[1] / "presets" / "edge-of-stability.toml").read_text())
    doc["runs"] = [r for r in doc["runs"] if r["label"] == "eta 2"]
    doc["train"]["epochs"] = 900
    preset = tmp_path / "eos.toml"
    preset.write_text(dumps(doc))
    out = tmp_path / "e"
    r = tuilab("--preset", str(preset), "--out", str(out), "headless")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    sharp = [(int(row["epoch"]), float(row["sharpness"])) for row in rows if row["sharpness"]]
    limit = float(next(row["stability_threshold"] for row in rows if row["stability_threshold"]))
    assert limit == pytest.approx(1.0)
    assert min(s for e, s in sharp if 20 <= e <= 200) < 0.9 * limit  # below the edge
    late = [s for e, s in sharp if e >= 600]
    assert all(0.85 * limit <= s <= 1.2 * limit for s in late), late  # risen to it, and held there
    losses = [float(row["train_loss"]) for row in rows]
    assert losses[-1] < 0.5 * losses[100]  # the loss goes on falling
    assert sum(b > a for a, b in zip(losses, losses[1:], strict=False)) > 20  # but not monotonically
