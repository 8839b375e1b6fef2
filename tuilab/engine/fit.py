"""Training steps on a network: the thin, checked Python face of the chunk kernel."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from threadpoolctl import ThreadpoolController

from tuilab.engine.model import MLP
from tuilab.engine.optim import Optimizer
from tuilab.errors import TuilabError
from tuilab.kernels.column_split import N_FLAGS, STOP, lead_steps, partner_steps
from tuilab.kernels.mlp import gather_rows, train_chunk

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


def _small_products(net: MLP, batch_size: int) -> bool:
    sizes = net.sizes
    return batch_size * max(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) < PARALLEL_GEMM_WORK


def blas_threads_for(net: MLP, batch_size: int):
    """A context that keeps BLAS single-threaded when this network's products are small."""
    if _small_products(net, batch_size):
        return blas_controller().limit(limits=1, user_api="blas")
    return nullcontext()


# Gathering ahead. A step's rows are random rows of X, and reading them from memory is a
# large share of a small step: one epoch of 60,000 random rows of 784 float32 took 41 ms
# against 136 ms for the whole epoch of [784, 30, 10] at batch 10. When BLAS runs on one
# core, a helper thread on the other copies the next block of rows into training order
# while this one trains on the current block in place. Measured on the 2-core machine,
# [784, 30, 10] sigmoid, one epoch: batch 10: 161 -> 124 ms; batch 20: 129 -> 101 ms;
# batch 32: 129 -> 89 ms; but batch 64: 160 -> 164 ms and batch 128: 141 -> 150 ms, where
# the two threads' memory traffic costs more than the overlap gives back: hence the limit.
GATHER_AHEAD_MAX_BATCH = 32
GATHER_AHEAD_MIN_BYTES = 8 * 2**20  # a small X is cheap to gather: the hand-offs would cost more
GATHER_BLOCK_BYTES = 2 * 2**20  # rows per block (the same figures at 2 MB and 8 MB)
_helper: ThreadPoolExecutor | None = None


def _gather_helper() -> ThreadPoolExecutor:
    global _helper
    if _helper is None:
        _helper = ThreadPoolExecutor(1, thread_name_prefix="tuilab-gather")
    return _helper


def _gathers_ahead(net: MLP, X: np.ndarray, batch_size: int, n_steps: int) -> bool:
    return (batch_size <= GATHER_AHEAD_MAX_BATCH and X.nbytes >= GATHER_AHEAD_MIN_BYTES
            and n_steps >= 4 and _small_products(net, batch_size))


def _blocks(first_row: int, end_row: int, batch_size: int, row_bytes: int) -> list[tuple[int, int]]:
    """Row ranges of whole batches covering [first_row, end_row): the first two batches, then
    doubling up to GATHER_BLOCK_BYTES, so training starts after a short wait."""
    most = max(1, GATHER_BLOCK_BYTES // (row_bytes * batch_size)) * batch_size
    size = min(2 * batch_size, most)
    blocks = []
    lo = first_row
    while lo < end_row:
        hi = min(lo + size, end_row)
        blocks.append((lo, hi))
        lo = hi
        size = min(2 * size, most)
    return blocks


def _train_gathered_ahead(kernel_args, X, Y, order, first_batch, n_steps, batch_size, lrs, losses,
                          grad_sq, tail) -> int:
    """train_chunk over blocks of rows put in training order by the helper thread, one block
    ahead; the same steps, rows and arithmetic as one train_chunk call over `order`."""
    end_row = min((first_batch + n_steps) * batch_size, len(order))
    blocks = _blocks(first_batch * batch_size, end_row, batch_size, X.shape[1] * X.itemsize)
    most = max(hi - lo for lo, hi in blocks)
    bufs = [(np.empty((most, X.shape[1]), X.dtype), np.empty((most, Y.shape[1]), Y.dtype))
            for _ in range(2)]
    in_order = np.empty(0, np.int64)
    gather_rows(X, Y, order, *blocks[0], *bufs[0])
    pending = None
    step = 0
    try:
        for k, (lo, hi) in enumerate(blocks):
            if pending is not None:
                pending.result()
                pending = None
            if k + 1 < len(blocks):
                pending = _gather_helper().submit(gather_rows, X, Y, order, *blocks[k + 1], *bufs[(k + 1) % 2])
            xk, yk = bufs[k % 2]
            m = -(-(hi - lo) // batch_size)
            done = train_chunk(*kernel_args, xk[:hi - lo], yk[:hi - lo], in_order, 0, m, batch_size, *tail,
                               lrs[step:step + m], losses[step:step + m], grad_sq[step:step + m])
            step += done
            if done < m:
                break
    finally:
        if pending is not None:
            pending.result()  # its buffers are ours: never leave a writer behind
    return step


# Splitting the first layer by input columns between two threads (kernels.column_split).
# Measured on the 2-core machine, one epoch of 60,000 rows of 784 float32, every step the
# same arithmetic up to rounding: [784, 30, 10] sigmoid batch 10 (Nesterov) 107 -> 76 ms,
# batch 128 (Adam) 110 -> 64 ms; [784, 30x8, 10] relu batch 64 (momentum) 176 -> 86 ms.
SPLIT_MIN_INPUTS = 256  # narrower inputs: too little first-layer work to share
# The lead also runs every later layer, so it takes the smaller share of the columns:
# a third was best of 1/4 .. 1/2 (batch 64: 86 ms at 1/3, 91 at 3/8, 152 at 1/2).
LEAD_SHARE = 1 / 3
# Multiply-adds up to which SciPy's OpenBLAS takes its small-matrix path, which two
# threads can run at once; its general path runs one thread's product at a time (a batch
# of 64 rows of 400 columns through 30 units: 15 us alone, 29 us each beside another).
SMALL_GEMM_WORK = 512_000


# One split at a time in a process: the helper runs one partner, and a second lead would
# spin on a core waiting for its partner until the first chunk ends (two experiments
# running at once in the dashboard). The second trains on one thread meanwhile.
_split_busy = threading.Lock()
_one_core = False
# The kernels' waits call POSIX sched_yield (kernels.atomics.yield_cpu): not on Windows.
SPLIT_AVAILABLE = hasattr(os, "sched_yield")


def train_on_one_core() -> None:
    """Never share a layer between threads in this process: it runs beside other training
    processes (the runner's jobs), and spinning hand-offs on shared cores would stall."""
    global _one_core
    _one_core = True


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _splits_columns(net: MLP, X: np.ndarray, batch_size: int, n_steps: int) -> bool:
    return (SPLIT_AVAILABLE and not _one_core and _cpus() >= 2 and net.layout.n_layers >= 2
            and X.shape[1] >= SPLIT_MIN_INPUTS and n_steps >= 4 and _small_products(net, batch_size))


def _column_split(n_in: int, width: int) -> tuple[int, int]:
    """(lead's columns, rows per product piece) for a first layer n_in -> width."""
    lead = max(16, int(round(n_in * LEAD_SHARE / 16)) * 16)
    piece = max(1, min(32, SMALL_GEMM_WORK // (width * max(lead, n_in - lead))))
    return lead, piece


def _train_column_split(net: MLP, opt: Optimizer, theta, X, Y, order, first_batch, lrs, batch_size,
                        losses, grad_sq) -> int:
    """The steps of train_chunk with the first layer's columns split between this thread and the
    helper (kernels.column_split): the same arithmetic up to rounding."""
    L = net.layout
    n_in, width = int(L.sizes[0]), int(L.sizes[1])
    lead, piece = _column_split(n_in, width)
    w0, b0 = int(L.w_off[0]), int(L.b_off[0])
    W1 = theta[w0:w0 + width * n_in].reshape(width, n_in)
    S1 = opt.state[:, w0:w0 + width * n_in].reshape(-1, width, n_in)
    slots = S1.shape[0]
    Wa, Wb = np.ascontiguousarray(W1[:, :lead]), np.ascontiguousarray(W1[:, lead:])
    Sa = np.ascontiguousarray(S1[:, :, :lead]).reshape(slots, -1)
    Sb = np.ascontiguousarray(S1[:, :, lead:]).reshape(slots, -1)
    rest, rest_state = theta[b0:].copy(), np.ascontiguousarray(opt.state[:, b0:])
    sub = (L.w_off[1:] - b0, L.b_off[1:] - b0, L.sizes[1:].copy())
    n_steps = len(lrs)
    z_part = np.empty((batch_size, width), theta.dtype)
    dz = np.empty((batch_size, width), theta.dtype)
    flags = np.zeros(N_FLAGS, np.int64)
    partner_sq = np.zeros(n_steps if grad_sq.shape[0] else 0)

    def partner():
        try:
            return partner_steps(Wb, Sb, scal_b, opt.hp, opt.kind, X, order, first_batch, n_steps,
                                 batch_size, lead, n_in, piece, lrs, z_part, dz, flags, partner_sq)
        finally:
            flags[STOP] = 1  # the lead never waits on a partner that has left

    scal_b = opt.scal.copy()  # before the lead's first update moves opt.scal
    pending = _gather_helper().submit(partner)
    try:
        done = lead_steps(Wa, Sa, opt.scal.copy(), rest, rest_state, opt.scal, opt.hp, opt.kind, X, Y, order,
                          first_batch, n_steps, batch_size, 0, lead, piece, *sub, net.acts, net.loss, lrs, losses,
                          z_part, dz, flags, grad_sq)
    finally:
        flags[STOP] = 1
        partner_done = pending.result()  # its buffers are ours: never leave a writer behind
    if partner_done != done:
        raise RuntimeError(f"column split out of step: lead {done} steps, partner {partner_done}")
    W1[:, :lead], W1[:, lead:] = Wa, Wb
    S1[:, :, :lead] = Sa.reshape(slots, width, lead)
    S1[:, :, lead:] = Sb.reshape(slots, width, n_in - lead)
    theta[b0:], opt.state[:, b0:] = rest, rest_state
    if grad_sq.shape[0]:
        grad_sq[:done, 0] += partner_sq[:done]
    return done


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
    With two CPUs, a wide-input network shares its first layer with a helper thread
    (the same steps; sums in another order, so equal up to rounding); otherwise small
    batches of a large X train from blocks the helper gathers ahead (the same bits).
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
    order = np.ascontiguousarray(order, np.int64)
    lrs = np.ascontiguousarray(lrs, np.float64)
    kernel_args = (theta, np.empty_like(theta), opt.state, opt.scal, opt.hp, opt.kind)
    tail = (L.w_off, L.b_off, L.sizes, net.acts, net.loss)
    with blas_threads_for(net, batch_size):
        if _splits_columns(net, X, batch_size, n_steps) and _split_busy.acquire(blocking=False):
            try:
                done = _train_column_split(net, opt, theta, X, Y, order, first_batch, lrs, batch_size, losses,
                                           grad_sq)
            finally:
                _split_busy.release()
        elif _gathers_ahead(net, X, batch_size, n_steps):
            done = _train_gathered_ahead(kernel_args, X, Y, order, first_batch, n_steps, batch_size, lrs,
                                         losses, grad_sq, tail)
        else:
            done = train_chunk(*kernel_args, X, Y, order, first_batch, n_steps, batch_size, *tail, lrs,
                               losses, grad_sq)
    return int(done), losses
