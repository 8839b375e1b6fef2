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
    from tuilab.engine.training.warmup import wait_for_background_compiles

    wait_for_background_compiles()  # a split an earlier test left compiling would keep shapes on one thread
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


@pytest.fixture
def split_compiling():
    """The column split's kernels said to be compiling in the background (paths.split_compiling) until
    the test calls the function this yields."""
    paths.split_compiling_begins()
    done = []

    def compiled():
        if not done:
            done.append(True)
            paths.split_compiled()

    yield compiled
    compiled()


def test_a_shape_that_could_split_trains_on_one_thread_until_the_split_has_compiled(fresh, tmp_path,
                                                                                    split_compiling):
    """Issue 31's cold start: while the split compiles on a thread of its own, no shape is timed or given a kept
    choice (timing then would leave the split out for good, and the compile keeps the other core busy); once it
    has compiled, every path is timed as on a warm start."""
    net, theta, opt, X, Y, order = _setup()
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    train_steps(net, opt, theta, X, Y, order, 8, np.full(8, 1e-3), 16)
    assert fresh == ["1 thread", "1 thread"]
    assert not (tmp_path / "paths.json").exists()
    narrow, theta_n, opt_n, X_n, Y_n, order_n = _setup(n_in=8)  # too few columns to split
    fresh.clear()
    train_steps(narrow, opt_n, theta_n, X_n, Y_n, order_n, 0, np.full(8, 1e-3), 16)
    assert fresh == ["1 thread"]
    split_compiling()
    fresh.clear()
    train_steps(net, opt, theta, X, Y, order, 16, np.full(8, 1e-3), 16)
    assert set(fresh) == {"1 thread", "BLAS x2", "gather ahead", "split 1/3", "split 1/2"}
    assert autotune.shape_key(net, 16, X) in json.loads((tmp_path / "paths.json").read_text())["choices"]


def test_a_kept_split_choice_waits_for_its_kernels(fresh, tmp_path, split_compiling):
    """A path cache that says 'split' (kept from an earlier launch) beside a numba cache without the split:
    one thread until the background compile is done, then the kept choice, untimed."""
    net, theta, opt, X, Y, order = _setup()
    key = autotune.shape_key(net, 16, X)
    (tmp_path / "paths.json").write_text(json.dumps({"machine": autotune.machine(),
                                                     "choices": {key: "split 1/2"}}))
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    assert fresh == ["1 thread"]
    split_compiling()
    fresh.clear()
    train_steps(net, opt, theta, X, Y, order, 8, np.full(8, 1e-3), 16)
    assert fresh == ["split 1/2"]


def test_a_cold_start_compiles_the_split_beside_the_first_epochs(monkeypatch):
    """warmup.ensure_compiled, where a run trains here and may split and the kernels are not cached: the
    notice's estimate leaves the split out, the foreground compile too, and the split compiles on a thread of
    its own while paths.split_compiling() says so. For runs sent to workers (compile_later=False), everything
    in the foreground, as before."""
    import threading
    from types import SimpleNamespace

    from tuilab.engine.training import warmup

    calls, release = [], threading.Event()
    monkeypatch.setattr(warmup, "network_kernels_ready", lambda *a, **k: False)
    monkeypatch.setattr(warmup, "compile_network_kernels",
                        lambda dtype, split, ids, table=None: calls.append((dtype, split)))

    def slow_split(dtype, ids):
        assert release.wait(30)
        calls.append((dtype, "split"))

    monkeypatch.setattr(warmup, "compile_split_kernels", slow_split)
    run = SimpleNamespace(model=SimpleNamespace(hidden=[30], dtype="float32"), optimizer=SimpleNamespace(name="adam"))
    said = []
    ended = warmup.ensure_compiled([run], [SimpleNamespace(n_inputs=784)], said.append, compile_later=True)
    try:
        assert calls == [("float32", False)]
        assert paths.split_compiling()
        assert [n.category for n in said] == ["compiling", "compiled", "info"]
        assert said[2].text == ("the column split compiles in the background, first run only; runs train on one "
                                "thread until the split is ready")
    finally:
        release.set()
        warmup.wait_for_background_compiles(30)
    assert calls == [("float32", False), ("float32", "split")] and not paths.split_compiling()
    assert said[3].text == "the background compile is done: every training path is timed from the next chunk"
    ended()
    calls.clear()
    warmup.ensure_compiled([run], [SimpleNamespace(n_inputs=784)], said.append, compile_later=False)
    assert calls == [("float32", True)] and not paths.split_compiling()


def test_the_background_split_compile_runs_beside_training(fresh):
    """compile_split_kernels for real, on its thread while this one trains: the split's zero-step warm-up
    returns (no partner waits on a lead that takes no step), and the split then trains as the plain path."""
    from tuilab.engine.training import warmup
    from tuilab.kernels.optimizers import STEP_KERNELS

    adam = next(i for i, k in enumerate(STEP_KERNELS) if k.__name__ == "adam_step")
    thread = warmup.compile_in_background(["float32", "float64"], [], [adam])
    net, theta, opt, X, Y, order = _setup()
    train_steps(net, opt, theta, X, Y, order, 0, np.full(8, 1e-3), 16)
    thread.join(120)
    assert not thread.is_alive() and not paths.split_compiling()
    net2, theta2, opt2, *_ = _setup()
    c = paths.Chunk(net2, theta2, opt2.state, opt2.scal, opt2.hp, opt2.opt_id, X, Y, order, 0, np.full(8, 1e-3), 16,
                    np.empty(8), np.zeros((0, 2)))
    assert paths.PATHS["split 1/2"].run(c) == 8


def test_a_cold_zoo_trains_its_first_optimizer_while_the_table_compiles(monkeypatch):
    """warmup.ensure_compiled for runs of many optimizers (the whole table pays), trained here, table not
    cached: the first run's optimizer compiles alone in the foreground (the notice's estimate is one
    optimizer's), the table on a thread of its own; meanwhile that optimizer's runs train with their own
    kernel and the others wait in kernel_choice.wait_for_kernel; then every run takes the table."""
    import threading
    from types import SimpleNamespace

    from tuilab.engine.nn.optim import get_spec
    from tuilab.engine.training import kernel_choice, warmup
    from tuilab.kernels.step_choice import TABLE

    calls, release = [], threading.Event()
    monkeypatch.setattr(warmup, "network_kernels_ready", lambda *a, **k: False)
    monkeypatch.setattr(warmup, "compile_network_kernels",
                        lambda dtype, split, ids, table=None: calls.append(("now", dtype, split, list(ids), table)))

    def slow_table(dtype, ids):
        assert release.wait(30)
        calls.append(("table", dtype, list(ids)))

    monkeypatch.setattr(warmup, "compile_table_kernels", slow_table)
    monkeypatch.setattr(warmup, "compile_split_kernels", lambda dtype, ids, table=None: calls.append(("split",)))
    names = ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam"]
    ids = [get_spec(n).opt_id for n in names]
    runs = [SimpleNamespace(model=SimpleNamespace(hidden=[8], dtype="float64"), optimizer=SimpleNamespace(name=n))
            for n in names]
    said = []
    ended = warmup.ensure_compiled(runs, [SimpleNamespace(n_inputs=2)] * len(runs), said.append, compile_later=True)
    ended()  # the runs ended before the compile did: it says nothing when it ends
    others_waited = threading.Event()

    def other_run():
        kernel_choice.wait_for_kernel(ids[1])
        others_waited.set()

    other = threading.Thread(target=other_run)
    try:
        assert calls == [("now", "float64", False, ids[:1], False)]
        assert "about 12 s" in said[0].text
        assert said[2].text == ("the other optimizers' kernel compiles in the background, first run only; the "
                                "other optimizers' runs wait for it")
        assert not kernel_choice.whole_table()
        kernel_choice.wait_for_kernel(ids[0])  # the first optimizer's runs train at once
        assert kernel_choice.choice_for(ids[0]).name != TABLE  # with its own kernel
        other.start()
        assert not others_waited.wait(0.3)  # a run of another optimizer waits for the table
    finally:
        release.set()
        warmup.wait_for_background_compiles(30)
        other.join(30)
    assert others_waited.is_set() and kernel_choice.whole_table()
    assert calls[1] == ("table", "float64", ids[:1]) and len(said) == 3
    kernel_choice.use_whole_table(False)


def test_the_table_compiled_beside_training_trains_as_the_optimizers_own_kernel(fresh):
    """The background compile for real (warmup.compile_in_background; float64, so that the suite's float32
    kernels are not in question): a run of another optimizer waits for it, then trains on the table's
    kernel the same bits as on its own."""
    from tuilab.engine.nn.optim import get_spec
    from tuilab.engine.training import kernel_choice, warmup

    def run(opt_name):
        _, _, _, X, Y, order = _setup(n_in=8)  # too narrow to split: the table's split is not compiled here
        net = MLP([8, 24, 4], "relu", dtype="float64")
        theta = net.init("kaiming_uniform", seed=0)
        opt = Optimizer(opt_name, theta.size, np.float64)
        train_steps(net, opt, theta, X.astype(np.float64), Y.astype(np.float64), order, 0, np.full(8, 1e-2), 16)
        return theta, opt.state

    own = run("adam")
    sgd = get_spec("sgd").opt_id
    thread = warmup.compile_in_background([], ["float64"], [sgd])
    try:
        assert not kernel_choice.whole_table()
        by_table = run("adam")  # waits for the table, then trains with it
        assert kernel_choice.whole_table()
    finally:
        thread.join(300)
        kernel_choice.use_whole_table(False)
    for a, b in zip(own, by_table, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_run_waiting_for_the_table_stops_when_asked():
    """A run of an optimizer whose kernel compiles in the background (a zoo's first cold start) waits for it
    in the Trainer, but a stop ends it at once as interrupted, untrained, not when the compile ends."""
    import threading
    import time

    from tuilab.engine.config.experiment import build_experiment
    from tuilab.engine.events import Control
    from tuilab.engine.nn.optim import get_spec
    from tuilab.engine.training import kernel_choice
    from tuilab.engine.training.runner import DataCache, DataOptions
    from tuilab.engine.training.train import Trainer

    exp = build_experiment({"data": {"name": "xor"}, "model": {"hidden": [4]}, "optimizer": {"name": "adam"},
                            "train": {"epochs": 2, "batch_size": 4}}, "t.toml", "t")
    run = exp.runs[0]
    control = Control()
    t = Trainer(0, run, DataCache(DataOptions(), lambda e: None).get(run), lambda e: None, control)
    kernel_choice.table_compiling(own=[get_spec("sgd").opt_id])
    try:
        runner = threading.Thread(target=t.run)
        runner.start()
        time.sleep(0.5)
        assert t.epoch == 0 and runner.is_alive()  # waiting for its kernel
        began = time.monotonic()
        control.stop()
        runner.join(10)
        assert not runner.is_alive() and time.monotonic() - began < 2
        assert t.status == "interrupted" and t.epoch == 0
    finally:
        kernel_choice.table_compiled(use=False)


def test_racing_runs_take_turns_past_a_run_waiting_for_its_kernel():
    """The dashboard races runs chunk by chunk on as many threads as cores; a run whose kernel still compiles
    in the background gives up its turn instead of holding a thread, so the first optimizer's run trains to
    its end meanwhile."""
    import threading

    from tuilab.engine.config.experiment import build_experiment
    from tuilab.engine.events import Control
    from tuilab.engine.nn.optim import get_spec
    from tuilab.engine.training import kernel_choice
    from tuilab.engine.training.runner import DataCache, DataOptions, _race
    from tuilab.engine.training.train import Trainer

    exp = build_experiment({"data": {"name": "xor"}, "model": {"hidden": [4]}, "train": {"epochs": 3, "batch_size": 4},
                            "runs": [{"label": "sgd", "optimizer": {"name": "sgd"}}] +
                                    [{"label": f"adam{k}", "optimizer": {"name": "adam"}} for k in range(3)]},
                           "t.toml", "t")
    control = Control()
    cache = DataCache(DataOptions(), lambda e: None)
    trainers = [Trainer(i, r, cache.get(r), lambda e: None, control) for i, r in enumerate(exp.runs)]
    kernel_choice.table_compiling(own=[get_spec("sgd").opt_id])
    racing = threading.Thread(target=_race, args=(trainers, control))
    try:
        racing.start()
        deadline = 30
        while trainers[0].status in ("pending", "running") and deadline > 0:
            racing.join(0.1)
            deadline -= 0.1
        assert trainers[0].status == "completed" and trainers[0].epoch == 3
        assert all(t.epoch == 0 for t in trainers[1:])  # still waiting for the table
    finally:
        kernel_choice.table_compiled(use=False)  # each optimizer's own kernel: no table compiled for this test
        racing.join(60)
    assert all(t.status == "completed" and t.epoch == 3 for t in trainers)


def test_a_table_that_fails_to_compile_leaves_each_optimizer_its_own_kernel(monkeypatch):
    """The background table compile failing (logged) does not leave the waiting runs on a kernel that cannot
    compile: they go on, each with its optimizer's own."""
    from tuilab.engine.nn.optim import get_spec
    from tuilab.engine.training import kernel_choice, warmup

    def broken(dtype, ids):
        raise RuntimeError("no table today")

    monkeypatch.setattr(warmup, "compile_table_kernels", broken)
    thread = warmup.compile_in_background([], ["float32"], [get_spec("sgd").opt_id])
    thread.join(30)
    assert kernel_choice.wait_for_kernel(get_spec("adam").opt_id, timeout=0)
    assert not kernel_choice.whole_table()
