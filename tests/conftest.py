import os

import numpy as np
import pytest


def torch_or_skip():
    """PyTorch, the oracle. Where CI (or TUILAB_REQUIRE_TORCH=1) is set, a missing torch
    fails the test instead of skipping it, so the oracle cannot silently drop out."""
    if os.environ.get("TUILAB_REQUIRE_TORCH") == "1" or os.environ.get("CI", "") in ("true", "1"):
        import torch  # noqa: F401  (an ImportError here fails the test)

        return torch
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _no_background_compile_outlives_its_test():
    """A test that trained on a cold cache may leave a compile running on a thread of its own
    (warmup.compile_in_background); the next test should not share the cores, numba's compiler lock and
    the autotuner's wait with it."""
    yield
    from tuilab.engine.training.warmup import wait_for_background_compiles

    wait_for_background_compiles(300)


@pytest.fixture(autouse=True, scope="session")
def _own_path_cache_and_compiled_kernels(tmp_path_factory):
    """The training-path choices of the test run in a file of its own, not the user's; and the
    kernels compiled before the first test, so that no test's time limit (the dashboard's waits
    for a first epoch) is spent by numba compiling on a fresh machine (30-40 s on 2 cores)."""
    os.environ["TUILAB_PATH_CACHE"] = str(tmp_path_factory.mktemp("paths") / "paths.json")
    # no test reaches the internet: a preset that names MNIST fetches from a port that refuses
    # at once (the download tests serve their own mirror on 127.0.0.1)
    from tests.test_data import refused_url

    os.environ["TUILAB_DATA_MIRROR"] = refused_url()
    from tuilab.engine.training.warmup import compile_network_kernels, network_kernels_ready
    from tuilab.kernels.optimizers import adam_step, opt_id_of, sgd_step

    # training compiles per optimizer (kernels.step_choice): SGD's and Adam's, which most tests train with;
    # the others compile in the first test that trains with them (~2 s each)
    common = (opt_id_of(sgd_step), opt_id_of(adam_step))
    for dtype in ("float32", "float64"):
        if not network_kernels_ready(dtype, opt_ids=common):
            compile_network_kernels(dtype, opt_ids=common)
    yield


@pytest.fixture
def on_path(monkeypatch):
    """on_path(NAME, cores=None): train_steps runs that path (training.paths), on a budget of two cores
    (or `cores`) whatever this machine has (the kernels' arithmetic does not need them); returns a list
    of the chunks each path ran, by name."""
    from tuilab.engine.training import autotune, paths
    from tuilab.engine.training import threads as cores_mod

    monkeypatch.setattr(cores_mod, "_budget", cores_mod.CoreBudget(2))
    autotune.forget()  # no answer remembered from before the paths were wrapped
    ran = []
    for name, p in list(paths.PATHS.items()):
        def counted(c, _run=p.run, _name=name):
            ran.append(_name)
            return _run(c)
        monkeypatch.setitem(paths.PATHS, name, paths.Path(p.name, p.cores, p.blas, counted, p.splits))

    def use(name, cores=None):
        """cores: a budget of that many (a path for more cores than this machine has runs oversubscribed)."""
        if cores is not None:
            monkeypatch.setattr(cores_mod, "_budget", cores_mod.CoreBudget(cores))
            autotune.forget()
        monkeypatch.setenv("TUILAB_PATH", name)
        return ran

    yield use
    autotune.forget()
