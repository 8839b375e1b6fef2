"""Training from blocks a helper thread gathers ahead is the same training, bit for bit."""

import numpy as np
import pytest

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training import paths
from tuilab.engine.training.fit import steps_per_epoch, train_steps


@pytest.fixture
def gathers(monkeypatch, on_path):
    """Count the blocks gathered ahead, in small blocks; train_steps gathers ahead."""
    calls = []
    real = paths.gather_rows

    def counted(X, Y, order, start, stop, X_out, Y_out):
        calls.append((start, stop))
        real(X, Y, order, start, stop, X_out, Y_out)

    monkeypatch.setattr(paths, "gather_rows", counted)
    monkeypatch.setattr(paths, "GATHER_BLOCK_BYTES", 4000)
    on_path("gather ahead")
    return calls


def _run(net, name, X, Y, order, first_batch, lrs, bs, dtype):
    theta = net.init(seed=3)
    opt = Optimizer(name, theta.size, dtype)
    grad_sq = np.zeros((len(lrs), net.layout.n_layers))
    done, losses, _ = train_steps(net, opt, theta, X, Y, order, first_batch, lrs, bs, grad_sq)
    return done, losses, grad_sq, theta, opt.state.copy()


@pytest.mark.parametrize("name", ["nesterov", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("first_batch,bs", [(0, 10), (7, 10), (0, 32), (3, 7)])
def test_same_steps_as_one_chunk(gathers, on_path, name, dtype, first_batch, bs):
    rng = np.random.default_rng(11)
    n = 1003  # the epoch's last batch is short for every batch size here
    X = rng.normal(size=(n, 40)).astype(dtype)
    Y = np.eye(5, dtype=dtype)[rng.integers(0, 5, n)]
    net = MLP([40, 12, 5], "sigmoid", dtype=np.dtype(dtype).name)
    order = rng.permutation(n)
    lrs = np.linspace(0.1, 0.05, steps_per_epoch(n, bs) - first_batch)
    ahead = _run(net, name, X, Y, order, first_batch, lrs, bs, dtype)
    assert len(gathers) > 3  # it did train from gathered blocks
    rows = sorted(r for start, stop in gathers for r in range(start, stop))
    assert rows == list(range(first_batch * bs, n))  # each row of the chunk once
    on_path("1 thread")
    plain = _run(net, name, X, Y, order, first_batch, lrs, bs, dtype)
    assert ahead[0] == plain[0] == len(lrs)
    for a, b in zip(ahead[1:], plain[1:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_divergence_mid_block_stops_at_the_same_step(gathers, on_path):
    rng = np.random.default_rng(12)
    X = (rng.normal(size=(600, 6)) * 50).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 600)]
    net = MLP([6, 16, 3], "relu", dtype="float32")
    lrs = np.full(60, 1e4)
    ahead = _run(net, "sgd", X, Y, np.arange(600), 0, lrs, 10, np.float32)
    on_path("1 thread")
    plain = _run(net, "sgd", X, Y, np.arange(600), 0, lrs, 10, np.float32)
    assert 0 < ahead[0] == plain[0] < 60
    np.testing.assert_array_equal(ahead[3], plain[3])
    np.testing.assert_array_equal(ahead[1][:ahead[0] + 1], plain[1][:plain[0] + 1])


def test_blocks_cover_the_rows_in_whole_batches():
    blocks = paths._blocks(30, 1003, 10, 400)  # 2 MB blocks hold 5,240 batches of 400-byte rows
    assert blocks[0] == (30, 50) and blocks[1] == (50, 90)  # two batches, then doubling
    assert all(lo % 10 == 0 for lo, _ in blocks)
    assert [hi for _, hi in blocks][-1] == 1003 and all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))
