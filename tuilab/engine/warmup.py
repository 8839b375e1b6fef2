"""Knowing whether the Numba kernels are compiled (or cached on disk), and compiling them."""

from __future__ import annotations

import numpy as np


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
    from tuilab.engine.fit import SPLIT_AVAILABLE
    from tuilab.kernels import column_split, mlp

    kernels = (mlp.train_chunk, mlp.gather_rows, mlp.mlp_evaluate, mlp.mlp_predict)
    if SPLIT_AVAILABLE:
        kernels += (column_split.lead_steps, column_split.partner_steps)
    return all(_cached(k, dtype) for k in kernels)


def surface_kernels_ready() -> bool:
    from tuilab.kernels import surfaces

    return _cached(surfaces.surface_descent)


def compile_network_kernels(dtype: str = "float32") -> None:
    """Call every kernel a training run uses once on a tiny network, so that it is compiled."""
    from tuilab.engine.fit import SPLIT_AVAILABLE, train_steps
    from tuilab.engine.model import MLP
    from tuilab.engine.optim import Optimizer
    from tuilab.kernels.mlp import gather_rows

    net = MLP([2, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    theta = net.init("xavier_normal", "zeros", 0)
    X = np.zeros((2, 2), net.dtype)
    Y = np.eye(2, dtype=net.dtype)
    opt = Optimizer("sgd", net.layout.size, net.dtype)
    train_steps(net, opt, theta, X, Y, np.arange(2), 0, np.full(1, 0.1), 2, np.zeros((1, 2)))
    gather_rows(X, Y, np.arange(2), 0, 2, X.copy(), Y.copy())  # training ahead of small batches
    if SPLIT_AVAILABLE:  # the first layer split between two threads (wide inputs): its own kernels
        _compile_column_split(dtype, Y)
    net.evaluate(theta, X, Y)
    net.predict(theta, X)


def _compile_column_split(dtype: str, Y: np.ndarray) -> None:
    from tuilab.engine.fit import _train_column_split
    from tuilab.engine.model import MLP
    from tuilab.engine.optim import Optimizer

    wide = MLP([32, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    _train_column_split(wide, Optimizer("sgd", wide.layout.size, wide.dtype), wide.init("xavier_normal", "zeros", 0),
                        np.zeros((2, 32), wide.dtype), Y, np.arange(2), 0, np.full(1, 0.1), 2, np.zeros(1),
                        np.zeros((1, 2)))
