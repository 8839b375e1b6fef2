"""The first layer split by input columns between two threads trains as one thread does."""

import numpy as np
import pytest

from tuilab.engine import fit
from tuilab.engine.fit import steps_per_epoch, train_steps
from tuilab.engine.model import MLP
from tuilab.engine.optim import Optimizer


@pytest.fixture
def splits(monkeypatch):
    """Count the split runs (any machine: the kernels' arithmetic does not need two cores)."""
    calls = []
    real = fit._train_column_split

    def counted(*args):
        calls.append(args[-3])  # batch size
        return real(*args)

    monkeypatch.setattr(fit, "_train_column_split", counted)
    monkeypatch.setattr(fit, "_cpus", lambda: 2)
    return calls


def _run(net, name, X, Y, order, first_batch, lrs, bs, track=True, **hyper):
    theta = net.init("xavier_uniform", seed=3)
    opt = Optimizer(name, theta.size, net.dtype, **hyper)
    grad_sq = np.zeros((len(lrs), net.layout.n_layers)) if track else None
    done, losses = train_steps(net, opt, theta, X, Y, order, first_batch, lrs, bs, grad_sq)
    return done, losses, grad_sq, theta, opt.state.copy(), opt.scal.copy()


def _data(rng, n, n_in, n_out, dtype, scale=1.0):
    X = (rng.normal(size=(n, n_in)) * scale).astype(dtype)
    Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    return X, Y


@pytest.mark.parametrize("name,hyper", [("nesterov", {}), ("adam", {"weight_decay": 0.01}),
                                        ("rmsprop", {"centered": True, "momentum": 0.5}), ("lion", {})])
@pytest.mark.parametrize("sizes,act,bs,first_batch", [
    ([300, 12, 5], "sigmoid", 10, 0),
    ([300, 9, 7, 7, 5], "relu", 64, 2),  # pieces of 32 rows, a short last batch
    ([520, 40, 5], "tanh", 33, 1),  # a piece size that does not divide the batch
])
def test_same_training_as_one_thread(splits, monkeypatch, name, hyper, sizes, act, bs, first_batch):
    rng = np.random.default_rng(5)
    n = 700
    X, Y = _data(rng, n, sizes[0], sizes[-1], np.float64)
    net = MLP(sizes, act, dtype="float64")
    order = rng.permutation(n)
    lrs = np.linspace(0.05, 0.01, steps_per_epoch(n, bs) - first_batch)
    split = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    assert splits == [bs]
    monkeypatch.setattr(fit, "SPLIT_MIN_INPUTS", 10**9)
    plain = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    assert splits == [bs]
    assert split[0] == plain[0] == len(lrs)
    # Sums are taken in another order (Z_1 in two parts, dW_1 in pieces), so the two runs part
    # at the last digit and drift apart slowly over ~70 steps (fastest for centered RMSProp,
    # whose denominator sqrt(v - m^2) magnifies it); a wrong column or a stale copy would be
    # off in the first digits.
    np.testing.assert_allclose(split[1], plain[1], rtol=1e-7)  # losses
    np.testing.assert_allclose(split[2], plain[2], rtol=1e-6)  # gradient norms
    for a, b in zip(split[3:], plain[3:], strict=True):  # parameters, optimizer state and scalars
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7 * np.abs(b).max())


def test_float32_split_learns_and_leaves_parameters_where_they_belong(splits):
    rng = np.random.default_rng(6)
    n, n_in = 2000, 256
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    w = rng.normal(size=n_in)
    labels = (X @ w > 0).astype(int)
    Y = np.eye(2, dtype=np.float32)[labels]
    net = MLP([n_in, 16, 2], "relu")
    theta = net.init("kaiming_uniform", seed=0)
    opt = Optimizer("momentum", theta.size, np.float32, lr=0.05, momentum=0.9)
    for _ in range(5):
        order = rng.permutation(n)
        lrs = np.full(steps_per_epoch(n, 20), 0.05)
        done, losses = train_steps(net, opt, theta, X, Y, order, 0, lrs, 20)
        assert done == len(lrs)
    assert len(splits) == 5
    accuracy = np.mean(net.predict(theta, X).argmax(1) == labels)
    assert accuracy > 0.95  # a scrambled column block or stale copy-back would not learn this


def test_divergence_stops_both_threads_at_the_same_step(splits, monkeypatch):
    rng = np.random.default_rng(7)
    X, Y = _data(rng, 600, 300, 4, np.float64, scale=50.0)
    net = MLP([300, 8, 4], "relu", dtype="float64")
    order = rng.permutation(600)
    lrs = np.full(60, 1e6)
    split = _run(net, "sgd", X, Y, order, 0, lrs, 10, track=False)
    assert 0 < split[0] < 60  # it diverged inside the chunk
    monkeypatch.setattr(fit, "SPLIT_MIN_INPUTS", 10**9)
    plain = _run(net, "sgd", X, Y, order, 0, lrs, 10, track=False)
    assert split[0] == plain[0]
    assert not np.isfinite(split[1][split[0]])
    assert np.all(np.isfinite(split[3]))  # the last finite point, on both threads' columns
    np.testing.assert_allclose(split[3], plain[3], rtol=1e-6, atol=1e-7 * np.abs(plain[3]).max())


def test_a_partner_failure_is_raised_not_waited_on(splits, monkeypatch):
    def broken(*args):
        raise MemoryError("partner could not allocate")

    monkeypatch.setattr(fit, "partner_steps", broken)
    rng = np.random.default_rng(8)
    X, Y = _data(rng, 200, 300, 3, np.float32)
    net = MLP([300, 6, 3], "sigmoid")
    with pytest.raises(MemoryError, match="partner could not allocate"):
        _run(net, "adam", X, Y, rng.permutation(200), 0, np.full(10, 1e-3), 10)


def test_used_only_where_it_pays(monkeypatch):
    monkeypatch.setattr(fit, "_cpus", lambda: 2)
    X = np.zeros((100, 784), np.float32)
    assert fit._splits_columns(MLP([784, 30, 10]), X, 10, 100)
    assert not fit._splits_columns(MLP([784, 10]), X, 10, 100)  # no later layer for the lead
    assert not fit._splits_columns(MLP([64, 30, 10]), X[:, :64], 10, 100)  # too narrow
    assert not fit._splits_columns(MLP([784, 256, 128, 10]), X, 128, 100)  # BLAS wants both cores
    assert not fit._splits_columns(MLP([784, 30, 10]), X, 10, 3)
    monkeypatch.setattr(fit, "_cpus", lambda: 1)
    assert not fit._splits_columns(MLP([784, 30, 10]), X, 10, 100)


def test_pieces_stay_small():
    lead, piece = fit._column_split(784, 30)
    assert lead == 256 and piece == 32
    lead, piece = fit._column_split(784, 100)
    assert piece * 100 * (784 - lead) <= fit.SMALL_GEMM_WORK and piece >= 1


def test_a_second_training_meanwhile_runs_on_one_thread(splits):
    rng = np.random.default_rng(9)
    X, Y = _data(rng, 200, 300, 3, np.float64)
    net = MLP([300, 6, 3], "sigmoid", dtype="float64")
    order = rng.permutation(200)
    with fit._split_busy:  # another experiment is splitting right now
        busy = _run(net, "adam", X, Y, order, 0, np.full(10, 1e-3), 10)
    assert splits == []
    free = _run(net, "adam", X, Y, order, 0, np.full(10, 1e-3), 10)
    assert splits == [10]
    np.testing.assert_allclose(busy[1], free[1], rtol=1e-12)


def test_parallel_jobs_train_on_one_core(monkeypatch):
    monkeypatch.setattr(fit, "_cpus", lambda: 2)
    monkeypatch.setattr(fit, "_one_core", False)
    X = np.zeros((100, 784), np.float32)
    assert fit._splits_columns(MLP([784, 30, 10]), X, 10, 100)
    fit.train_on_one_core()  # what each of the runner's job processes calls first
    assert not fit._splits_columns(MLP([784, 30, 10]), X, 10, 100)
