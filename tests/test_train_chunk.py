"""The chunk kernel: many steps in one call equal the same steps taken one by one."""

import numpy as np
import pytest
from numba import njit

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training.fit import steps_per_epoch, train_steps
from tuilab.kernels import fpu
from tuilab.kernels.mlp import mlp_loss_and_grad, train_chunk

pytestmark = pytest.mark.blas  # the chunk kernel against step-by-step training: the same products in other shapes


def data(rng, n=103, d=6, k=3, dtype=np.float64):
    X = rng.normal(size=(n, d)).astype(dtype)
    Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    return X, Y


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam", "rmsprop", "demon_adam"])
def test_chunk_equals_step_by_step(name, rng):
    X, Y = data(rng)
    net = MLP([6, 9, 7, 3], "tanh", dtype="float64")
    bs = 10
    n_steps = steps_per_epoch(len(X), bs)  # 11: the last batch has 3 rows
    order = rng.permutation(len(X))
    lrs = np.linspace(0.05, 0.01, n_steps)
    hyper = {"demon_steps": 50} if name.startswith("demon") else {}

    theta_a = net.init(seed=1)
    opt_a = Optimizer(name, theta_a.size, np.float64, **hyper)
    grad_sq = np.zeros((n_steps, 3))
    done, losses, _ = train_steps(net, opt_a, theta_a, X, Y, order, 0, lrs, bs, grad_sq)

    theta_b = net.init(seed=1)
    opt_b = Optimizer(name, theta_b.size, np.float64, **hyper)
    for s in range(n_steps):
        rows = order[s * bs:(s + 1) * bs]
        value, grad = net.loss_and_grad(theta_b, X[rows], Y[rows])
        assert losses[s] == pytest.approx(value, rel=1e-12)
        layer_sq = [np.sum(grad[net.layout.layer_slice(l)] ** 2) for l in range(3)]
        np.testing.assert_allclose(grad_sq[s], layer_sq, rtol=1e-12)
        opt_b.step(theta_b, grad, lrs[s])
    assert done == n_steps
    np.testing.assert_allclose(theta_a, theta_b, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(opt_a.scal, opt_b.scal)


@pytest.mark.parametrize("loss,output", [("cross_entropy", "softmax"), ("squared_error", "sigmoid")])
def test_evaluate_in_batches_equals_one_batch(loss, output, rng):
    X, Y = data(rng)
    net = MLP([6, 8, 3], "relu", output, loss, dtype="float64")
    theta = net.init(seed=2)
    value, out = net.evaluate(theta, X, Y, batch=16)  # 103 rows: 6 full batches and 7 rows
    whole, _ = net.loss_and_grad(theta, X, Y)
    assert value == pytest.approx(whole, rel=1e-12)
    np.testing.assert_allclose(out, net.predict(theta, X, batch=1000), rtol=1e-12)


def test_chunks_resume_where_they_stopped(rng):
    """Two chunks of an epoch give the same result as one (the Trainer's pause points)."""
    X, Y = data(rng)
    net = MLP([6, 5, 3], "relu", dtype="float64")
    order = rng.permutation(len(X))
    lrs = np.full(steps_per_epoch(len(X), 8), 0.1)
    one = net.init(seed=4)
    opt1 = Optimizer("momentum", one.size, np.float64)
    train_steps(net, opt1, one, X, Y, order, 0, lrs, 8)
    two = net.init(seed=4)
    opt2 = Optimizer("momentum", two.size, np.float64)
    train_steps(net, opt2, two, X, Y, order, 0, lrs[:5], 8)
    train_steps(net, opt2, two, X, Y, order, 5, lrs[5:], 8)
    np.testing.assert_array_equal(one, two)


def test_divergence_stops_the_chunk(rng):
    X, Y = data(rng, n=200)
    X *= 50
    net = MLP([6, 16, 3], "relu", dtype="float32")
    theta = net.init(seed=0)
    opt = Optimizer("sgd", theta.size, np.float32)
    n = steps_per_epoch(200, 10)
    done, losses, _ = train_steps(net, opt, theta, X.astype(np.float32), Y.astype(np.float32),
                               np.arange(200), 0, np.full(n, 1e4), 10)
    assert 0 < done < n
    assert np.all(np.isfinite(losses[:done])) and not np.isfinite(losses[done])
    assert opt.steps_taken == done  # the failing step's update was not applied


def test_float32_training_learns(rng):
    """Not just 'the loss went down': a separable problem is solved to 100 %."""
    X = rng.normal(size=(400, 2)).astype(np.float32)
    labels = (X[:, 0] * X[:, 1] > 0).astype(int)  # xor of the signs
    Y = np.eye(2, dtype=np.float32)[labels]
    net = MLP([2, 16, 16, 2], "relu")
    theta = net.init("kaiming_uniform", seed=0)
    opt = Optimizer("adam", theta.size, np.float32, lr=0.01)
    for _ in range(60):
        order = rng.permutation(400)
        train_steps(net, opt, theta, X, Y, order, 0, np.full(steps_per_epoch(400, 20), 0.01), 20)
    acc = np.mean(net.predict(theta, X).argmax(1) == labels)
    assert acc > 0.97


def test_kernels_do_not_recompile(rng):
    X, Y = data(rng)
    for dtype in ("float32", "float64"):
        net = MLP([6, 4, 3], "relu", dtype=dtype)
        for _ in range(2):
            theta = net.init()
            opt = Optimizer("adam", theta.size, net.dtype)
            train_steps(net, opt, theta, X.astype(dtype), Y.astype(dtype), np.arange(103), 0,
                        np.full(3, 0.01), 10)
            net.loss_and_grad(theta, X.astype(dtype), Y.astype(dtype))
    # one machine-code version per dtype and optimizer (kernels.step_choice), whatever the calls
    assert len([sig for sig in train_chunk.signatures if "StepChoice(adam_step)" in map(str, sig)]) == 2
    assert len(mlp_loss_and_grad.signatures) == 2


@njit
def _scaled(a, s):
    return a * s


def test_flush_to_zero_is_per_call_and_restored():
    tiny = np.array([1e-36], np.float32)
    factor = np.float32(1e-3)
    assert _scaled(tiny, factor)[0] != 0  # subnormal result kept by default
    old = fpu.flush_denormals_on()
    try:
        assert _scaled(tiny, factor)[0] == 0
    finally:
        fpu.restore_fpu(old)
    assert _scaled(tiny, factor)[0] != 0
    # a training chunk leaves the caller's floating-point mode as it found it
    net = MLP([2, 2], "relu", dtype="float32")
    theta = net.init()
    train_steps(net, Optimizer("sgd", theta.size, np.float32), theta, np.ones((4, 2), np.float32),
                np.ones((4, 2), np.float32) / 2, np.arange(4), 0, np.full(1, 0.1), 4)
    assert _scaled(tiny, factor)[0] != 0


COLD_ADAM = """
import numpy as np
from numba.core.event import install_recorder
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.kernels import optimizers as K
from tuilab.kernels.mlp import train_chunk
from tuilab.kernels.step_choice import step_choice
net = MLP([3, 4, 2], "tanh", dtype="float64")
L = net.layout
theta = net.init()
opt = Optimizer("adam", theta.size, net.dtype)
X = np.ones((4, 3)); Y = np.eye(2)[[0, 1, 0, 1]]
with install_recorder("numba:compile") as compiled:
    train_chunk(theta, np.empty_like(theta), opt.state, opt.scal, opt.hp, step_choice(opt.opt_id), X, Y,
                np.arange(4), 0, 2, 2, L.w_off, L.b_off, L.sizes, net.acts, net.loss, np.full(2, 0.1),
                np.empty(2), np.zeros((0, 2)))
    net.evaluate(theta, X, Y)
    net.predict(theta, X)
print(" ".join(k.__name__ for k in K.STEP_KERNELS if k.signatures))
names = {getattr(e.data["dispatcher"], "py_func", e.data["dispatcher"]).__qualname__ for _, e in compiled.buffer}
print(" ".join(sorted(n for n in names if "raise_with_shape_context" in n or "unicode" in n)) or "-")
"""


def test_an_adam_run_compiles_adam_alone(tmp_path):
    """Issue 31's cold start: from an empty numba cache, training with Adam compiles Adam's step kernel and
    no other optimizer's (the dispatch over the whole table took 10 of train_chunk's 17 cold seconds), and
    none of the training and evaluation kernels compiles a run-time error message."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", COLD_ADAM], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    steps, messages = out.stdout.splitlines()
    assert steps.split() == ["adam_step"]
    # kernels.copies: no array slice assignment reached numba's shape-mismatch message, whose string
    # formatting, linked into every kernel, was a third of a cold compile
    assert messages == "-"


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam", "rmsprop", "muon"])
def test_each_optimizers_own_kernel_equals_the_tables(name, rng):
    """kernels.step_choice: a train_chunk compiled for one optimizer and one compiled for the whole table
    (engine.training.kernel_choice picks per process) take the same steps, bit for bit."""
    from tuilab.kernels.step_choice import step_choice

    X, Y = data(rng)
    net = MLP([6, 5, 3], "tanh", dtype="float64")
    L = net.layout
    ends = []
    for table in (False, True):
        theta = net.init(seed=3)
        opt = Optimizer(name, theta.size, net.dtype, layout=L)
        done = train_chunk(theta, np.empty_like(theta), opt.state, opt.scal, opt.hp, step_choice(opt.opt_id, table),
                           X, Y, np.arange(len(X)), 0, 6, 10, L.w_off, L.b_off, L.sizes, net.acts, net.loss,
                           np.full(6, 0.05), np.empty(6), np.zeros((0, 2)))
        assert done == 6
        ends.append((theta, opt.state.copy(), opt.scal.copy()))
    for own, whole in zip(*ends, strict=True):
        np.testing.assert_array_equal(own, whole)


def test_a_process_racing_many_optimizers_compiles_the_table():
    """The runner's choice (warmup.ensure_compiled): a few optimizers each alone, many the whole table
    (sooner compiled), and the column split tips it sooner; the decision reaches the paths."""
    from types import SimpleNamespace

    from tuilab.engine.training import kernel_choice
    from tuilab.engine.training.paths import Chunk
    from tuilab.engine.training.warmup import ensure_compiled

    def run(opt):
        return SimpleNamespace(optimizer=SimpleNamespace(name=opt), model=SimpleNamespace(dtype="float64", hidden=[4]))

    small = SimpleNamespace(n_inputs=2)
    notices = []
    try:
        zoo = [run(o) for o in ("sgd", "momentum", "adagrad", "rmsprop", "adam", "nadam", "radam", "adamax")]
        ensure_compiled(zoo, [small] * len(zoo), notices.append)
        assert kernel_choice.whole_table()
        net = MLP([6, 4, 3], "relu", dtype="float64")
        theta = net.init()
        c = Chunk(net, theta, np.zeros((1, theta.size)), np.zeros(12), np.zeros(5), 4, np.zeros((1, 6)),
                  np.zeros((1, 3)), np.arange(1), 0, np.zeros(1), 1, np.zeros(1), np.zeros((0, 2)))
        assert repr(c.kernel_head()[-1]) == "StepChoice(table)"
        pair = [run("adam"), run("lbfgs")]  # a closure optimizer has no step kernel to compile
        ensure_compiled(pair, [small] * 2, notices.append)
        assert not kernel_choice.whole_table()
        assert repr(c.kernel_head()[-1]) == "StepChoice(adam_step)"
    finally:
        kernel_choice.use_whole_table(False)
    assert kernel_choice.whole_table_pays(6, split=False) and not kernel_choice.whole_table_pays(5, split=False)
    assert kernel_choice.whole_table_pays(3, split=True) and not kernel_choice.whole_table_pays(2, split=True)
