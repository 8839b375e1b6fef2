"""The first layer split by input columns between threads (two, or k ways) trains as one thread does."""

import numpy as np
import pytest

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training import paths
from tuilab.engine.training.fit import steps_per_epoch, train_steps

pytestmark = pytest.mark.blas  # the column-split path against the plain one: BLAS on blocks against whole matrices


def _run(net, name, X, Y, order, first_batch, lrs, bs, track=True, **hyper):
    theta = net.init("xavier_uniform", seed=3)
    opt = Optimizer(name, theta.size, net.dtype, **hyper)
    grad_sq = np.zeros((len(lrs), net.layout.n_layers)) if track else None
    done, losses, _ = train_steps(net, opt, theta, X, Y, order, first_batch, lrs, bs, grad_sq)
    return done, losses, grad_sq, theta, opt.state.copy(), opt.scal.copy()


def _data(rng, n, n_in, n_out, dtype, scale=1.0):
    X = (rng.normal(size=(n, n_in)) * scale).astype(dtype)
    Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    return X, Y


@pytest.mark.parametrize("split", ["split 1/3", "split 1/2"])
@pytest.mark.parametrize("name,hyper", [("nesterov", {}), ("adam", {"weight_decay": 0.01}),
                                        ("rmsprop", {"centered": True, "momentum": 0.5}), ("lion", {})])
@pytest.mark.parametrize("sizes,act,bs,first_batch", [
    ([300, 12, 5], "sigmoid", 10, 0),
    ([300, 9, 7, 7, 5], "relu", 64, 2),  # a short last batch
    ([40, 40, 5], "tanh", 33, 1),  # the narrowest input that splits: 16 columns on one side
])
def test_same_training_as_one_thread(on_path, split, name, hyper, sizes, act, bs, first_batch):
    rng = np.random.default_rng(5)
    n = 700
    X, Y = _data(rng, n, sizes[0], sizes[-1], np.float64)
    net = MLP(sizes, act, dtype="float64")
    order = rng.permutation(n)
    lrs = np.linspace(0.05, 0.01, steps_per_epoch(n, bs) - first_batch)
    ran = on_path(split)
    split_run = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    on_path("1 thread")
    plain = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    assert ran == [split, "1 thread"]
    assert split_run[0] == plain[0] == len(lrs)
    # Sums are taken in another order (Z_1 in two parts), so the two runs part at the last
    # digit and drift apart slowly over ~70 steps (fastest for centered RMSProp, whose
    # denominator sqrt(v - m^2) magnifies it); a wrong column or a stale copy would be off
    # in the first digits.
    np.testing.assert_allclose(split_run[1], plain[1], rtol=1e-7)  # losses
    np.testing.assert_allclose(split_run[2], plain[2], rtol=1e-6)  # gradient norms
    for a, b in zip(split_run[3:], plain[3:], strict=True):  # parameters, optimizer state and scalars
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7 * np.abs(b).max())


def test_float32_split_learns_and_leaves_parameters_where_they_belong(on_path):
    rng = np.random.default_rng(6)
    n, n_in = 2000, 256
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    w = rng.normal(size=n_in)
    labels = (X @ w > 0).astype(int)
    Y = np.eye(2, dtype=np.float32)[labels]
    net = MLP([n_in, 16, 2], "relu")
    theta = net.init("kaiming_uniform", seed=0)
    opt = Optimizer("momentum", theta.size, np.float32, lr=0.05, momentum=0.9)
    ran = on_path("split 1/3")
    for _ in range(5):
        order = rng.permutation(n)
        lrs = np.full(steps_per_epoch(n, 20), 0.05)
        done, losses, _ = train_steps(net, opt, theta, X, Y, order, 0, lrs, 20)
        assert done == len(lrs)
    assert ran == ["split 1/3"] * 5
    accuracy = np.mean(net.predict(theta, X).argmax(1) == labels)
    assert accuracy > 0.95  # a scrambled column block or stale copy-back would not learn this


def test_divergence_stops_both_threads_at_the_same_step(on_path):
    rng = np.random.default_rng(7)
    X, Y = _data(rng, 600, 300, 4, np.float64, scale=50.0)
    net = MLP([300, 8, 4], "relu", dtype="float64")
    order = rng.permutation(600)
    lrs = np.full(60, 1e6)
    on_path("split 1/2")
    split = _run(net, "sgd", X, Y, order, 0, lrs, 10, track=False)
    assert 0 < split[0] < 60  # it diverged inside the chunk
    on_path("1 thread")
    plain = _run(net, "sgd", X, Y, order, 0, lrs, 10, track=False)
    assert split[0] == plain[0]
    assert not np.isfinite(split[1][split[0]])
    assert np.all(np.isfinite(split[3]))  # the last finite point, on both threads' columns
    np.testing.assert_allclose(split[3], plain[3], rtol=1e-6, atol=1e-7 * np.abs(plain[3]).max())
    np.testing.assert_array_equal(split[5], plain[5])  # the step count and powers, as one thread left them


@pytest.mark.parametrize("path,cores,failing", [("split 1/3", 2, 0), ("split 4 ways", 4, 1)])
def test_a_partner_failure_is_raised_and_leaves_the_run_as_before_the_chunk(on_path, monkeypatch, path, cores,
                                                                             failing):
    """A partner (with four ways, the second of three) trains some steps, then fails: nothing of the chunk
    may stay behind, neither in the parameters nor in the optimizer's state or its step count."""
    real = paths.partner_steps

    def fails_after_three(W, state, scal, hp, kind, X, order, first_batch, n_steps, batch_size, lo, hi, lrs,
                          z_part, dz, flags, posted_at, grad_sq):
        if posted_at != paths.PARTNER_POSTED + 8 * failing:
            return real(W, state, scal, hp, kind, X, order, first_batch, n_steps, batch_size, lo, hi, lrs, z_part,
                        dz, flags, posted_at, grad_sq)
        real(W, state, scal, hp, kind, X, order, first_batch, 3, batch_size, lo, hi, lrs, z_part, dz, flags,
             posted_at, grad_sq)
        raise MemoryError("partner could not allocate")

    monkeypatch.setattr(paths, "partner_steps", fails_after_three)
    rng = np.random.default_rng(8)
    X, Y = _data(rng, 200, 300, 3, np.float32)
    net = MLP([300, 6, 3], "sigmoid")
    theta = net.init("xavier_uniform", seed=3)
    opt = Optimizer("adam", theta.size, net.dtype)
    before = theta.copy(), opt.state.copy(), opt.scal.copy()
    on_path(path, cores=cores)
    with pytest.raises(MemoryError, match="partner could not allocate"):
        train_steps(net, opt, theta, X, Y, rng.permutation(200), 0, np.full(10, 1e-3), 10)
    for now, then in zip((theta, opt.state, opt.scal), before, strict=True):
        np.testing.assert_array_equal(now, then)
    assert opt.steps_taken == 0


def test_the_split_needs_a_later_layer_and_two_cores():
    split = paths.PATHS["split 1/3"]
    assert split.fits(MLP([784, 30, 10]), cores=2)
    assert not split.fits(MLP([784, 10]), cores=2)  # no later layer for the lead
    assert not split.fits(MLP([20, 30, 10]), cores=2)  # fewer than 16 columns a side
    assert not split.fits(MLP([784, 30, 10]), cores=1)


def test_lead_columns_are_whole_groups_of_16():
    assert paths.split_columns(784, 1 / 3) == 256
    assert paths.split_columns(784, 1 / 2) == 384
    assert paths.split_columns(40, 1 / 2) == 16 and paths.split_columns(32, 1 / 3) == 16


@pytest.mark.parametrize("ways", [3, 4, 8])
@pytest.mark.parametrize("name,hyper", [("nesterov", {}), ("adam", {"weight_decay": 0.01})])
@pytest.mark.parametrize("sizes,act,bs,first_batch", [
    ([300, 12, 5], "sigmoid", 10, 0),
    ([300, 9, 7, 5], "relu", 64, 2),  # a short last batch
])
def test_k_ways_train_as_one_thread_and_give_the_same_bits_each_time(on_path, ways, name, hyper, sizes, act, bs,
                                                                     first_batch):
    """Issue 31's paths for many cores, forced on this machine's two (k threads take turns): every partner's
    block is stepped and written back where it belongs, and the partners' sums are added in a fixed order."""
    rng = np.random.default_rng(11)
    n = 500
    X, Y = _data(rng, n, sizes[0], sizes[-1], np.float64)
    net = MLP(sizes, act, dtype="float64")
    order = rng.permutation(n)
    lrs = np.linspace(0.05, 0.01, steps_per_epoch(n, bs) - first_batch)
    path = f"split {ways} ways"
    ran = on_path(path, cores=ways)
    first = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    again = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    on_path("1 thread")
    plain = _run(net, name, X, Y, order, first_batch, lrs, bs, **hyper)
    assert ran == [path, path, "1 thread"]
    assert first[0] == plain[0] == len(lrs)
    for a, b in zip(first[1:], again[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first[1], plain[1], rtol=1e-7)  # losses
    np.testing.assert_allclose(first[2], plain[2], rtol=1e-6)  # gradient norms, every partner's block added
    for a, b in zip(first[3:], plain[3:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7 * np.abs(b).max())


def test_k_way_blocks_are_whole_groups_of_16_and_need_k_cores():
    assert paths.split_bounds(784, 3) == [0, 256, 512, 784]
    assert paths.split_bounds(784, 2) == [0, 384, 784]
    for n_in, k in ((300, 8), (64, 4), (2048, 16), (130, 8)):
        bounds = paths.split_bounds(n_in, k)
        widths = np.diff(bounds)
        assert len(widths) == k and widths.min() >= 16 and bounds[-1] == n_in
        assert all(b % 16 == 0 for b in bounds[:-1])
    four = paths.PATHS["split 4 ways"]
    assert four.fits(MLP([64, 30, 10]), cores=4)
    assert not four.fits(MLP([63, 30, 10]), cores=4)  # fewer than 16 columns a thread
    assert not four.fits(MLP([784, 30, 10]), cores=3)
    assert paths.PATHS["BLAS x8"].fits(MLP([784, 30, 10]), cores=8)
    assert not paths.PATHS["BLAS x8"].fits(MLP([784, 30, 10]), cores=4)
