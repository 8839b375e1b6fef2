"""Training steps on a network: the thin, checked Python face of the chunk kernel."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from threadpoolctl import ThreadpoolController

from tuilab.engine.model import MLP
from tuilab.engine.optim import Optimizer
from tuilab.errors import TuilabError
from tuilab.kernels.mlp import train_chunk

# Multiply-adds in a step's largest matrix product from which OpenBLAS may use its
# threads. Below it, a second thread costs more in hand-offs than it brings: on the
# 2-core machine [784, 30x8, 10] at batch 64 took 0.19 s an epoch with two OpenBLAS
# threads and 0.16 s with one, while [784, 256, 128, 10] at batch 128 wants both.
PARALLEL_GEMM_WORK = 8_000_000
_blas: ThreadpoolController | None = None


def blas_controller() -> ThreadpoolController:
    """The process's threadpool controller, made once (it takes ~0.2 s: not inside a timed step)."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas


def blas_threads_for(net: MLP, batch_size: int):
    """A context that keeps BLAS single-threaded when this network's products are small."""
    sizes = net.sizes
    work = batch_size * max(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if work >= PARALLEL_GEMM_WORK:
        return nullcontext()
    return blas_controller().limit(limits=1, user_api="blas")


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Minibatches in one pass over n_samples (the last one may be short)."""
    return -(-n_samples // batch_size)


def train_steps(
    net: MLP,
    opt: Optimizer,
    theta: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    order: np.ndarray,
    first_batch: int,
    lrs: np.ndarray,
    batch_size: int,
    grad_sq: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """Run len(lrs) minibatch steps in one kernel call, batches taken from `order`.

    Returns (steps done, per-step losses); fewer steps than asked means a NaN/Inf
    loss at the next one (its loss is losses[done]). grad_sq, if given, is
    (len(lrs), n_layers) and receives each layer's squared gradient norm per step.
    """
    n_steps = len(lrs)
    if batch_size < 1:
        raise TuilabError(f"batch_size must be a whole number >= 1, got {batch_size}")
    if first_batch < 0:
        raise TuilabError(f"first_batch must be >= 0, got {first_batch}")
    if (first_batch + n_steps - 1) * batch_size >= len(order) and n_steps:
        raise TuilabError(
            f"{n_steps} steps from batch {first_batch} run past the {len(order)} samples of an epoch")
    net.check_arrays(theta, X, Y)
    if opt.dtype != net.dtype or opt.state.shape[1] != theta.shape[0]:
        raise TuilabError("the optimizer was made for another network (size or dtype differs)")
    if grad_sq is None:
        grad_sq = np.zeros((0, net.layout.n_layers), np.float64)
    losses = np.full(n_steps, np.nan, np.float64)
    L = net.layout
    X = np.ascontiguousarray(X)  # one compiled layout: no copy when it already is
    Y = np.ascontiguousarray(Y)
    with blas_threads_for(net, batch_size):
        done = train_chunk(
            theta, np.empty_like(theta), opt.state, opt.scal, opt.hp,
            opt.kind, X, Y, np.asarray(order, np.int64), first_batch, n_steps, batch_size,
            L.w_off, L.b_off, L.sizes, net.acts, net.loss, np.asarray(lrs, np.float64), losses,
            grad_sq,
        )
    return int(done), losses
