"""Knowing whether the Numba kernels are compiled (or cached on disk), and compiling them."""

from __future__ import annotations

import numpy as np


def _cached(dispatcher, dtype: str) -> bool:
    """Whether numba's on-disk cache holds this kernel for theta of `dtype` (a private API, so
    any surprise counts as 'not cached': the cost is one notice too many)."""
    try:
        if any(str(sig[0]).startswith(f"array({dtype}") for sig in dispatcher.signatures):
            return True
        index = dispatcher._cache._cache_file._load_index()
        return any(str(key[0][0]).startswith(f"array({dtype}") for key in index)
    except Exception:
        return False


def network_kernels_ready(dtype: str = "float32") -> bool:
    from tuilab.kernels import mlp

    return all(_cached(k, dtype) for k in (mlp.train_chunk, mlp.mlp_evaluate, mlp.mlp_predict))


def compile_network_kernels(dtype: str = "float32") -> None:
    """Call every kernel a training run uses once on a tiny network, so that it is compiled."""
    from tuilab.engine.fit import train_steps
    from tuilab.engine.model import MLP
    from tuilab.engine.optim import Optimizer

    net = MLP([2, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    theta = net.init("xavier_normal", "zeros", 0)
    X = np.zeros((2, 2), net.dtype)
    Y = np.eye(2, dtype=net.dtype)
    opt = Optimizer("sgd", net.layout.size, net.dtype)
    train_steps(net, opt, theta, X, Y, np.arange(2), 0, np.full(1, 0.1), 2, np.zeros((1, 2)))
    net.evaluate(theta, X, Y)
    net.predict(theta, X)
