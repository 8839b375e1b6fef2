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


def network_kernels_ready(dtype: str = "float32", split: bool = True) -> bool:
    """split: the column-split path's kernels too (a run with 32 or more inputs and a hidden layer may take it)."""
    from tuilab.engine.training.paths import SPLIT_AVAILABLE
    from tuilab.kernels import column_split, fpu, mlp

    kernels = (mlp.train_chunk, mlp.gather_rows, mlp.mlp_evaluate, mlp.mlp_predict)
    if SPLIT_AVAILABLE and split:
        kernels += (column_split.lead_steps, column_split.partner_steps)
    return all(_cached(k, dtype) for k in kernels) and _cached(fpu.current_fpu)


def surface_kernels_ready() -> bool:
    from tuilab.kernels import surfaces

    return _cached(surfaces.surface_descent)


def compile_network_kernels(dtype: str = "float32", split: bool = True) -> None:
    """Run every training path once on a tiny network, so that every kernel they call is compiled; split=False
    leaves out the column-split path's (6.4 s of a cold start on the 2-core machine), which no network with
    fewer than 32 inputs or without a hidden layer can take (paths.Path.fits)."""
    from tuilab.engine.nn.model import MLP
    from tuilab.engine.nn.optim import Optimizer
    from tuilab.engine.training.paths import PATHS, Chunk, run_path

    net = MLP([32, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    X = np.zeros((4, 32), net.dtype)
    Y = np.eye(2, dtype=net.dtype)[[0, 1, 0, 1]]
    for path in PATHS.values():
        if path.fits(net, cores=2) and (split or not path.splits):
            theta = net.init("xavier_normal", "zeros", 0)
            opt = Optimizer("sgd", net.layout.size, net.dtype)
            run_path(path, Chunk(net, theta, opt.state, opt.scal, opt.hp, opt.opt_id, X, Y, np.arange(4), 0,
                                 np.full(2, 0.1), 2, np.empty(2), np.zeros((2, 2))))
    net.evaluate(theta, X, Y)
    net.predict(theta, X)


def may_split(runs, prepared) -> bool:
    """Whether a run of these may take the column-split path: 32 or more inputs and a hidden layer."""
    return any(p.n_inputs >= 32 and len(r.model.hidden) >= 1 for r, p in zip(runs, prepared, strict=True))


def ensure_compiled(dtypes, emit, split: bool = True) -> None:
    """Compile (with a notice) or load from numba's cache every kernel the runs may call, before any timing
    starts; split: the column-split path's too (may_split)."""
    for dtype in sorted(set(dtypes)):
        cached = network_kernels_ready(dtype, split)
        if not cached:
            emit(Notice(f"compiling kernels ({dtype}), first run only; this takes about "
                        f"{'half ' if not split else ''}a minute", "compiling"))
        compile_network_kernels(dtype, split)  # when cached: a load from disk, a fraction of a second
        if not cached:
            emit(Notice("kernels compiled and cached", "compiled"))
