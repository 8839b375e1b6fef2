"""Choosing a training path by timing: what is timed, what is kept, what a user can force."""

import json

import numpy as np
import pytest

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training import autotune, paths
from tuilab.engine.training import threads as blas
from tuilab.engine.training.fit import train_steps
from tuilab.errors import TuilabError


@pytest.fixture
def fresh(tmp_path, monkeypatch, on_path):
    """An empty path cache in tmp_path and a two-core budget; the chunks each path ran."""
    ran = on_path("1 thread")
    monkeypatch.delenv("TUILAB_PATH")
    monkeypatch.setenv("TUILAB_PATH_CACHE", str(tmp_path / "paths.json"))
    autotune.forget()
    yield ran
    autotune.forget()


def _setup(n_in=64, n=512):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    net = MLP([n_in, 24, 4], "relu")
    theta = net.init("kaiming_uniform", seed=0)
    return net, theta, Optimizer("adam", theta.size, np.float32), X, Y, rng.permutation(n)


def test_every_fitting_path_is_timed_once_then_the_choice_is_kept(fresh, tmp_path):
    net, theta, opt, X, Y, order = _setup()
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    timed = set(fresh)
    assert timed == {"1 thread", "BLAS x2", "gather ahead", "split 1/3", "split 1/2"}
    saved = json.loads((tmp_path / "paths.json").read_text())
    key = autotune.shape_key(net, 16, X)
    chosen = saved["choices"][key]
    assert chosen in paths.PATHS and saved["machine"] == autotune.machine()
    fresh.clear()
    train_steps(net, opt, theta, X, Y, order, 8, np.full(8, 1e-3), 16)
    assert fresh == [chosen]  # no timing again in this process
    autotune.forget()
    fresh.clear()
    train_steps(net, opt, theta, X, Y, order, 16, np.full(8, 1e-3), 16)
    assert fresh == [chosen]  # nor in the next one: read back from the file


def test_timing_leaves_the_run_untouched(fresh):
    """The first chunk of a shape (timed first) trains exactly as the same chunk on its chosen path."""
    net, theta, opt, X, Y, order = _setup()
    done, losses, _ = train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    chosen = fresh[-1]
    net2, theta2, opt2, *_ = _setup()
    c = paths.Chunk(net2, theta2, opt2.state, opt2.scal, opt2.hp, opt2.opt_id, X, Y, order, 0, np.full(8, 1e-3), 16,
                    np.empty(8), np.zeros((0, 2)))
    assert paths.PATHS[chosen].run(c) == done == 8
    np.testing.assert_array_equal(theta, theta2)
    np.testing.assert_array_equal(opt.scal, opt2.scal)
    assert opt.steps_taken == 8


def test_short_calls_are_not_timed_but_full_batches_are(fresh, tmp_path):
    net, theta, opt, X, Y, order = _setup()
    train_steps(net, opt, theta, X, Y, order, 0, np.full(autotune.MIN_STEPS - 1, 1e-3), 16)
    assert fresh == ["1 thread"]
    fresh.clear()
    train_steps(net, opt, theta, X, Y, order, 0, np.full(1, 1e-3), len(X))  # one step an epoch
    assert set(fresh) == {"1 thread", "BLAS x2", "gather ahead", "split 1/3", "split 1/2"}
    assert autotune.shape_key(net, len(X), X) in json.loads((tmp_path / "paths.json").read_text())["choices"]


def test_a_simpler_path_wins_a_near_tie():
    fits = [paths.PATHS[n] for n in ("1 thread", "BLAS x2", "split 1/2")]
    assert autotune.pick({"1 thread": 1.04, "BLAS x2": 1.0, "split 1/2": 2.0}, fits) == "1 thread"
    assert autotune.pick({"1 thread": 1.2, "BLAS x2": 1.0, "split 1/2": 0.99}, fits) == "BLAS x2"
    assert autotune.pick({"1 thread": 1.2, "BLAS x2": 1.0, "split 1/2": 0.5}, fits) == "split 1/2"


def test_a_forced_path_and_a_wrong_name(fresh, monkeypatch):
    net, theta, opt, X, Y, order = _setup()
    monkeypatch.setenv("TUILAB_PATH", "split 1/3")
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    assert fresh == ["split 1/3"]
    monkeypatch.setenv("TUILAB_PATH", "warp drive")
    with pytest.raises(TuilabError, match="not a training path; choose from 1 thread, BLAS x2"):
        train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)


def test_a_path_that_does_not_fit_is_never_taken(fresh, monkeypatch):
    net = MLP([8, 6, 2], "relu")  # 8 inputs: too few columns to split
    assert [p.name for p in paths.candidates(net, 2)] == ["1 thread", "BLAS x2", "gather ahead"]
    assert [p.name for p in paths.candidates(net, 1)] == ["1 thread"]


def test_an_optimizer_that_needs_whole_matrices_never_gets_a_split(fresh, monkeypatch):
    """Adafactor's factored moments are per matrix: a path that steps W1's columns on two threads would
    treat each side's columns as a matrix of their own. It is not a candidate, not even when forced, and
    its choice is kept apart from that of the elementwise optimizers on the same shape."""
    net, theta, _, X, Y, order = _setup()
    opt = Optimizer("adafactor", theta.size, np.float32, layout=net.layout)
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    assert set(fresh) == {"1 thread", "BLAS x2", "gather ahead"}
    saved = json.loads((autotune.cache_file()).read_text())["choices"]
    assert autotune.shape_key(net, 16, X, whole_tensors=True) in saved
    assert autotune.shape_key(net, 16, X) not in saved
    monkeypatch.setenv("TUILAB_PATH", "split 1/2")
    fresh.clear()
    train_steps(net, opt, theta, X, Y, order, 8, np.full(8, 1e-3), 16)
    assert fresh == ["1 thread"]


def test_the_blas_limit_reaches_the_library_the_kernels_call(fresh):
    """SciPy's OpenBLAS, which numba's np.dot calls, runs on the threads a path asks for."""
    from threadpoolctl import threadpool_info

    net, theta, opt, X, Y, order = _setup()
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    import scipy.linalg.cython_blas  # noqa: F401  (what numba's np.dot calls)

    libs = {lib.filepath for lib in blas.numba_blas()}
    scipy_own = {i["filepath"] for i in threadpool_info() if "scipy" in i["filepath"].split("site-packages")[-1]
                 and "numpy" not in i["filepath"].split("site-packages")[-1]}
    assert libs and scipy_own <= libs  # a wheel's own OpenBLAS is the one controlled
    seen = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    assert all(seen[f] == 1 for f in libs)  # one thread after any chunk, as the paths assume


def test_a_run_that_cannot_split_does_not_compile_the_split_path():
    """Issue 31's cold start: the column-split kernels (6.4 s of a cold compile) only where a run may take them:
    32 or more inputs and a hidden layer (paths.Path.fits)."""
    from types import SimpleNamespace

    from tuilab.engine.training.paths import PATHS
    from tuilab.engine.training.warmup import may_split

    def run(hidden):
        return SimpleNamespace(model=SimpleNamespace(hidden=hidden))

    two_d, images = SimpleNamespace(n_inputs=2), SimpleNamespace(n_inputs=784)
    assert not may_split([run([64, 64])], [two_d])
    assert not may_split([run([])], [images])  # a linear model has no later layer to share
    assert may_split([run([64, 64]), run([30])], [two_d, images])
    from tuilab.engine.nn.model import MLP

    for sizes in ([2, 64, 64, 2], [784, 10], [31, 8, 2]):  # what may_split says no to, no split path fits
        net = MLP(sizes, "relu", "softmax", "cross_entropy", "float32")
        assert not any(p.splits and p.fits(net, cores=64) for p in PATHS.values()), sizes
