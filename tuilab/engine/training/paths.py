"""The ways a chunk of training steps can run on this machine, each the same steps.

- `1 thread`: train_chunk on this thread, BLAS on one thread.
- `BLAS x2` (x4, x8, x16): the same kernel, BLAS running its products on that many threads.
- `gather ahead`: a helper thread copies the next block of rows into training order
  while this one trains on the current block in place (bit-identical to `1 thread`).
- `split 1/3`, `split 1/2`: the first layer's input columns shared with a partner
  thread (kernels.column_split; the same arithmetic, sums in another order).
- `split 3 ways` (4, 8, 16): the columns in as many equal blocks, one a thread; the partners' sums
  are added in their order, so a run gives the same bits each time on a machine.

Which is fastest depends on the shape, the batch, the data's size and the machine, and
no rule of thumb held across them (training.autotune times them instead). Every path
takes the same arguments and leaves theta, the optimizer's state and its scalars as
the plain kernel would; on an exception none of them is left half-updated.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tuilab.engine.nn.model import MLP
from tuilab.engine.training.kernel_choice import choice_for
from tuilab.engine.training.threads import budget, set_blas_threads
from tuilab.kernels.column_split import PARTNER_POSTED, STOP, lead_steps, n_flags, partner_steps
from tuilab.kernels.fpu import current_fpu, restore_fpu
from tuilab.kernels.mlp import gather_rows, train_chunk


@dataclass
class Chunk:
    """What a path trains: the network, its parameters, the optimizer's arrays, the rows and the steps."""

    net: MLP
    theta: np.ndarray
    state: np.ndarray
    scal: np.ndarray
    hp: np.ndarray
    opt_id: int  # the optimizer: a row of kernels.optimizers.STEP_KERNELS
    X: np.ndarray
    Y: np.ndarray
    order: np.ndarray
    first_batch: int
    lrs: np.ndarray
    batch_size: int
    losses: np.ndarray
    grad_sq: np.ndarray
    grad: np.ndarray = field(default=None)  # a scratch gradient, made on first use
    table: bool | None = None  # the whole table's kernel (True), the optimizer's own (False), the process's (None)

    def step(self):
        return choice_for(self.opt_id, self.table)

    def kernel_head(self):
        if self.grad is None:
            self.grad = np.empty_like(self.theta)
        return self.theta, self.grad, self.state, self.scal, self.hp, self.step()

    def kernel_tail(self):
        L = self.net.layout
        return L.w_off, L.b_off, L.sizes, self.net.acts, self.net.loss


# ---- one thread (and BLAS on two) ----

def _plain(c: Chunk) -> int:
    return train_chunk(*c.kernel_head(), c.X, c.Y, c.order, c.first_batch, len(c.lrs), c.batch_size,
                       *c.kernel_tail(), c.lrs, c.losses, c.grad_sq)


# ---- gathering ahead ----

GATHER_BLOCK_BYTES = 2 * 2**20  # rows per block (the same figures at 2 MB and 8 MB)
_gather_pool: ThreadPoolExecutor | None = None
_partner_pool: ThreadPoolExecutor | None = None
_partner_threads = 0


def _gatherer() -> ThreadPoolExecutor:
    global _gather_pool
    if _gather_pool is None:
        _gather_pool = ThreadPoolExecutor(max(1, budget().total - 1), thread_name_prefix="tuilab-gather")
    return _gather_pool


def _partners(n: int) -> ThreadPoolExecutor:
    """The split's partner threads, at least n of them: their own pool, so a partner never queues behind a
    gather. Sized to the budget's cores (splits running at once hold at most that many), or to n where a
    split is run on more threads than cores (tests force it); a smaller pool is left to finish its work."""
    global _partner_pool, _partner_threads
    if _partner_pool is None or _partner_threads < n:
        _partner_threads = max(n, budget().total - 1, 1)
        _partner_pool = ThreadPoolExecutor(_partner_threads, thread_name_prefix="tuilab-partner")
    return _partner_pool


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


def _gathered_ahead(c: Chunk) -> int:
    """train_chunk over blocks of rows put in training order by a helper thread, one block
    ahead; the same steps, rows and arithmetic as one train_chunk call over `order`."""
    X, Y, order, bs = c.X, c.Y, c.order, c.batch_size
    n_steps = len(c.lrs)
    end_row = min((c.first_batch + n_steps) * bs, len(order))
    blocks = _blocks(c.first_batch * bs, end_row, bs, X.shape[1] * X.itemsize)
    most = max(hi - lo for lo, hi in blocks)
    bufs = [(np.empty((most, X.shape[1]), X.dtype), np.empty((most, Y.shape[1]), Y.dtype)) for _ in range(2)]
    in_order = np.empty(0, np.int64)
    gather_rows(X, Y, order, *blocks[0], *bufs[0])
    pending = None
    step = 0
    head, tail = c.kernel_head(), c.kernel_tail()
    try:
        for k, (lo, hi) in enumerate(blocks):
            if pending is not None:
                pending.result()
                pending = None
            if k + 1 < len(blocks):
                pending = _gatherer().submit(gather_rows, X, Y, order, *blocks[k + 1], *bufs[(k + 1) % 2])
            xk, yk = bufs[k % 2]
            m = -(-(hi - lo) // bs)
            done = train_chunk(*head, xk[:hi - lo], yk[:hi - lo], in_order, 0, m, bs, *tail,
                               c.lrs[step:step + m], c.losses[step:step + m], c.grad_sq[step:step + m])
            step += done
            if done < m:
                break
    finally:
        if pending is not None:
            pending.result()  # its buffers are ours: never leave a writer behind
    return step


# ---- the first layer's columns split between threads ----

def split_columns(n_in: int, share: float) -> int:
    """The lead's columns of n_in: `share` of them in whole 16-column groups, at least 16 on each side."""
    return min(n_in - 16, max(16, int(round(n_in * share / 16)) * 16))


def split_bounds(n_in: int, k: int) -> list[int]:
    """Column bounds of k blocks of n_in, as equal as whole 16-column groups make them, each at least 16
    wide (n_in >= 16 k): block i is [bounds[i], bounds[i + 1])."""
    groups = n_in // 16
    bounds = [16 * (groups * i // k) for i in range(k)] + [n_in]
    return bounds


def _column_split(c: Chunk, bounds: list[int]) -> int:
    """The steps of train_chunk with the first layer's columns split in blocks (bounds: as split_bounds):
    the first block this thread's (the lead's, with the rest of the network), each other one a partner
    thread's (kernels.column_split): the same arithmetic up to rounding. Each side works on contiguous
    copies of its parameters, state and scalars; they are written back only when every side has
    finished, so an exception leaves everything as before the chunk."""
    net, theta, state = c.net, c.theta, c.state
    L = net.layout
    n_in, width = int(L.sizes[0]), int(L.sizes[1])
    partners = len(bounds) - 2
    w0, b0 = int(L.w_off[0]), int(L.b_off[0])
    W1 = theta[w0:w0 + width * n_in].reshape(width, n_in)
    S1 = state[:, w0:w0 + width * n_in].reshape(-1, width, n_in)
    slots = S1.shape[0]
    blocks = list(zip(bounds[:-1], bounds[1:], strict=True))
    Ws = [np.ascontiguousarray(W1[:, lo:hi]) for lo, hi in blocks]
    Ss = [np.ascontiguousarray(S1[:, :, lo:hi]).reshape(slots, -1) for lo, hi in blocks]
    scals = [c.scal.copy() for _ in blocks]
    rest, rest_state = theta[b0:].copy(), np.ascontiguousarray(state[:, b0:])
    scal_lead = c.scal.copy()
    sub = (L.w_off[1:] - b0, L.b_off[1:] - b0, L.sizes[1:].copy())
    n_steps, bs = len(c.lrs), c.batch_size
    z_parts = np.empty((partners, bs, width), theta.dtype)
    dz = np.empty((bs, width), theta.dtype)
    flags = np.zeros(n_flags(partners), np.int64)
    n_layers = int(L.n_layers)
    inner = c.grad_sq.shape[1] == 3 * n_layers  # the internals' columns (kernels.mlp.train_chunk)
    partner_sq = np.zeros((partners, n_steps if c.grad_sq.shape[0] else 0, 3 if inner else 1))
    if inner:
        partner_sq[:, :, 1] = c.grad_sq[:, n_layers]  # the steps left out (NaN) are the lead's
    step = c.step()

    def partner(p: int) -> int:
        fpu = current_fpu()
        lo, hi = blocks[p + 1]
        try:
            return partner_steps(Ws[p + 1], Ss[p + 1], scals[p + 1], c.hp, step, c.X, c.order, c.first_batch,
                                 n_steps, bs, lo, hi, c.lrs, z_parts[p], dz, flags, PARTNER_POSTED + 8 * p,
                                 partner_sq[p])
        finally:
            flags[STOP] = 1  # the lead (and every other partner) never waits on a partner that has left
            restore_fpu(fpu)

    pool = _partners(partners)
    pending = [pool.submit(partner, p) for p in range(partners)]
    try:
        done = lead_steps(Ws[0], Ss[0], scals[0], rest, rest_state, scal_lead, c.hp, step, c.X, c.Y, c.order,
                          c.first_batch, n_steps, bs, 0, bounds[1], *sub, net.acts, net.loss, c.lrs, c.losses,
                          z_parts, dz, flags, c.grad_sq)
    finally:
        flags[STOP] = 1
        partner_done = [f.result() for f in pending]  # their buffers are ours: never leave a writer behind
    if any(d != done for d in partner_done):
        raise RuntimeError(f"column split out of step: lead {done} steps, partners {partner_done}")
    for (lo, hi), W, S in zip(blocks, Ws, Ss, strict=True):
        W1[:, lo:hi] = W
        S1[:, :, lo:hi] = S.reshape(slots, width, hi - lo)
    theta[b0:], state[:, b0:] = rest, rest_state
    c.scal[:] = scal_lead
    if c.grad_sq.shape[0]:
        for p in range(partners):  # in the partners' order: the same sums every run
            c.grad_sq[:done, 0] += partner_sq[p, :done, 0]
            if inner:
                c.grad_sq[:done, n_layers] += partner_sq[p, :done, 1]
                c.grad_sq[:done, 2 * n_layers] += partner_sq[p, :done, 2]
    return done


# ---- a split compiling on a thread of its own (engine.training.warmup.ensure_compiled) ----

_compiling_lock = threading.Lock()
_splits_compiling = 0


def split_compiling() -> bool:
    """Whether the column split's kernels are still compiling in the background: the autotuner times no shape
    meanwhile (one thread, no choice kept), and every path once they are ready."""
    return _splits_compiling > 0


def split_compiling_begins() -> None:
    global _splits_compiling
    with _compiling_lock:
        _splits_compiling += 1


def split_compiled() -> None:
    global _splits_compiling
    with _compiling_lock:
        _splits_compiling = max(0, _splits_compiling - 1)


# ---- the table ----

# The kernels' waits call POSIX sched_yield (kernels.atomics.yield_cpu): not on Windows.
SPLIT_AVAILABLE = hasattr(os, "sched_yield")


@dataclass(frozen=True)
class Path:
    """One way to run a chunk: its name, the cores it keeps busy and BLAS's threads meanwhile."""

    name: str
    cores: int
    blas: int
    run: object  # Chunk -> steps done
    splits: bool = False  # shares the first layer's columns: needs a later layer and 16+ columns a thread

    def fits(self, net: MLP, cores: int, whole_tensors: bool = False) -> bool:
        """Whether it can run this network with this many cores (what it needs, not whether it pays),
        for an optimizer that must see whole matrices or not (kernels.optimizers.needs_whole_tensors)."""
        if self.cores > cores:
            return False
        if self.splits and whole_tensors:
            return False  # each side would step its own columns of W1 as if they were the whole matrix
        if self.splits:
            return SPLIT_AVAILABLE and net.layout.n_layers >= 2 and int(net.layout.sizes[0]) >= 16 * self.cores
        return True


def _split_in_two(share: float):
    return lambda c: _column_split(c, [0, split_columns(int(c.net.layout.sizes[0]), share), int(c.net.layout.sizes[0])])


def _split_ways(k: int):
    return lambda c: _column_split(c, split_bounds(int(c.net.layout.sizes[0]), k))


# Paths for more cores than two take them where the budget has them (a machine's cores, less what other
# runs hold); which pays is the autotuner's to time, per shape and machine. Powers of two keep the timing
# short on a 16-core machine (11 candidates at most).
PATHS = {p.name: p for p in (
    Path("1 thread", 1, 1, _plain),
    Path("BLAS x2", 2, 2, _plain),
    Path("gather ahead", 2, 1, _gathered_ahead),
    Path("split 1/3", 2, 1, _split_in_two(1 / 3), splits=True),
    Path("split 1/2", 2, 1, _split_in_two(1 / 2), splits=True),
    *(Path(f"BLAS x{k}", k, k, _plain) for k in (4, 8, 16)),
    *(Path(f"split {k} ways", k, 1, _split_ways(k), splits=True) for k in (3, 4, 8, 16)),
)}


def candidates(net: MLP, cores: int, whole_tensors: bool = False) -> list[Path]:
    return [p for p in PATHS.values() if p.fits(net, cores, whole_tensors)]


def run_path(path: Path, c: Chunk) -> tuple[int, float]:
    """Run the chunk on `path`, holding its cores of the process's budget; the caller's
    flush-to-zero setting and BLAS's one thread are put back whatever happens. Returns (steps done, the
    seconds they trained, not counting the wait for cores)."""
    with budget().hold(path.cores):
        fpu = current_fpu()
        t0 = time.perf_counter()
        try:
            set_blas_threads(path.blas)
            done = path.run(c)
        finally:
            if path.blas != 1:
                set_blas_threads(1)
            restore_fpu(fpu)
        return done, time.perf_counter() - t0
