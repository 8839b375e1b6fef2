"""Knowing whether the Numba kernels are compiled (or cached on disk), and compiling them."""

from __future__ import annotations

import numpy as np

from tuilab.engine.events import Notice


def _cached(dispatcher, dtype: str | None = None) -> bool:
    """Whether this kernel is compiled, or in numba's on-disk cache, for a first argument that is an
    array of `dtype` (None: for any signature). It reads a private API, so any surprise counts as
    'not cached': the cost is one notice too many."""
    def fits(sig) -> bool:
        return dtype is None or str(sig[0]).startswith(f"array({dtype}")

    try:
        if any(fits(sig) for sig in dispatcher.signatures):
            return True
        index = dispatcher._cache._cache_file._load_index()
        return any(fits(key[0]) for key in index)
    except Exception:
        return False


def network_kernels_ready(dtype: str = "float32") -> bool:
    from tuilab.engine.training.paths import SPLIT_AVAILABLE
    from tuilab.kernels import column_split, fpu, mlp

    kernels = (mlp.train_chunk, mlp.gather_rows, mlp.mlp_evaluate, mlp.mlp_predict)
    if SPLIT_AVAILABLE:
        kernels += (column_split.lead_steps, column_split.partner_steps)
    return all(_cached(k, dtype) for k in kernels) and _cached(fpu.current_fpu)


def surface_kernels_ready() -> bool:
    from tuilab.kernels import surfaces

    return _cached(surfaces.surface_descent)


def compile_network_kernels(dtype: str = "float32") -> None:
    """Run every training path once on a tiny network, so that every kernel they call is compiled."""
    from tuilab.engine.nn.model import MLP
    from tuilab.engine.nn.optim import Optimizer
    from tuilab.engine.training.paths import PATHS, Chunk, run_path

    net = MLP([32, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    X = np.zeros((4, 32), net.dtype)
    Y = np.eye(2, dtype=net.dtype)[[0, 1, 0, 1]]
    for path in PATHS.values():
        if path.fits(net, cores=2):
            theta = net.init("xavier_normal", "zeros", 0)
            opt = Optimizer("sgd", net.layout.size, net.dtype)
            run_path(path, Chunk(net, theta, opt.state, opt.scal, opt.hp, opt.opt_id, X, Y, np.arange(4), 0,
                                 np.full(2, 0.1), 2, np.empty(2), np.zeros((2, 2))))
    net.evaluate(theta, X, Y)
    net.predict(theta, X)


def ensure_compiled(dtypes, emit) -> None:
    """Compile (with a notice) or load from numba's cache every kernel, before any timing starts."""
    for dtype in sorted(set(dtypes)):
        cached = network_kernels_ready(dtype)
        if not cached:
            emit(Notice(f"compiling kernels ({dtype}), first run only; this takes about a minute",
                        "compiling"))
        compile_network_kernels(dtype)  # when cached: a load from disk, a fraction of a second
        if not cached:
            emit(Notice("kernels compiled and cached", "compiled"))
