"""Training steps with the first layer split by input columns between threads: a lead and its partners.

The first layer of a wide-input network is most of a step: reading the batch's rows of X,
Z_1 = X W_1^T and dW_1 = dZ_1^T X. Split X's columns (and W_1's) in k blocks,
X W_1^T = X_a W_a^T + X_b W_b^T + ... and dW_1 = [dZ_1^T X_a | dZ_1^T X_b | ...]: each thread gathers
only its columns of the rows, keeps its W columns and their optimizer state, and updates
them itself. All that crosses between the cores each step is each partner's partial sum of Z_1 and
dZ_1, (batch x width) blocks:

    partner p: Z_p = X_p W_p^T -> post  | gather next | wait dZ_1 | dW_p, update W_p
    lead:      Z_a = X_a W_a^T | wait every Z_p | layers 2.. forward, loss, backward -> post dZ_1 |
               dW_a, update W_a and layers 2..

The lead adds the partners' blocks in their order, so a run gives the same bits every time on a machine
(and a split in two, one partner, adds as it always did). Each side runs its own copy of the optimizer's
scalar state (step count, beta powers): it depends on the step only, so all copies advance alike. The
caller (engine.training.paths) hands each side contiguous copies of its parameters and state and writes
them back after.

Every side calls BLAS on one thread (engine.training.threads): with its own threads on, OpenBLAS
runs one caller's product at a time, and the split lost to one thread by 2-10x.
"""

import math

import numpy as np

from tuilab.kernels._jit import kernel
from tuilab.kernels.activations import activation_backward, activation_forward
from tuilab.kernels.atomics import load_acquire, store_release, yield_cpu
from tuilab.kernels.copies import copy_into
from tuilab.kernels.fpu import flush_denormals_on, restore_fpu
from tuilab.kernels.mlp import _block, change_and_size, gather_columns, mlp_backward, mlp_forward, workspace
from tuilab.kernels.step_choice import chosen_step

# flags: counters 64 bytes apart, so that no two sides' writes share a cache line
LEAD_POSTED = 0  # 1 + the last step whose dZ_1 the lead has posted
STOP = 8  # nonzero: no more steps (the lead diverged or finished, or a side failed)
PARTNER_POSTED = 16  # partner p's counter is at PARTNER_POSTED + 8 p: 1 + the last step whose Z_p it posted


def n_flags(partners: int) -> int:
    """The length of the flags array for a lead and `partners` partners."""
    return PARTNER_POSTED + 8 * partners


SPINS = 1000  # checks before a waiting side starts yielding its core (~10-20 us)


@kernel
def _wait_for(flags, index, value):
    """Wait until flags[index] >= value (True) or a stop is posted first (False).

    Spins first: a hand-off on an idle machine takes a few microseconds, far less than a
    sleep would. Then yields the core at each check: when other programs keep the cores
    busy, the side we wait for may be off its core, and spinning on keeps it off. Case a
    of the benchmark beside one busy process: 673 ms an epoch spinning only, 357 ms
    yielding, 178 ms on one thread (idle machine: 99 / 92 / 119-144 ms).
    """
    spins = 0
    while True:
        if load_acquire(flags, index) >= value:
            return True
        if load_acquire(flags, STOP) != 0:
            return load_acquire(flags, index) >= value
        spins += 1
        if spins > SPINS:
            yield_cpu()


@kernel
def partner_steps(W, state, scal, hp, step, X, order, first_batch, n_steps, batch_size, lo, hi, lrs, z_part, dz,
                  flags, posted_at, grad_sq):
    """A partner's side of n_steps: columns lo:hi of the first layer (W: its (width, hi - lo) block); it posts
    its Z block's steps at flags[posted_at] (PARTNER_POSTED + 8 p for partner p).

    Returns the steps whose update it applied: the lead's count, once the lead has stopped.
    grad_sq[s, 0], when it has rows, gets the squared norm of this block's gradient; with 3 columns,
    [s, 1] and [s, 2] get those of its step's change and of the block after it (train_chunk's internals).
    """
    fpu = flush_denormals_on()
    N = order.shape[0]
    g = np.empty_like(W)
    xs = np.empty((2, batch_size, hi - lo), X.dtype)  # this step's columns and the next's
    no_labels = np.empty((0, 1), X.dtype)
    start = first_batch * batch_size
    gather_columns(X, X, order, start, min(batch_size, N - start), lo, hi, xs[0], no_labels)
    inner = grad_sq.shape[0] > 0 and grad_sq.shape[1] == 3
    before = np.empty(W.size if inner else 0, W.dtype)
    done = 0
    for s in range(n_steps):
        start = (first_batch + s) * batch_size
        n = min(batch_size, N - start)
        x = xs[s % 2]
        np.dot(x[:n], W.T, z_part[:n])
        store_release(flags, posted_at, s + 1)
        nxt = start + batch_size
        if s + 1 < n_steps:
            gather_columns(X, X, order, nxt, min(batch_size, N - nxt), lo, hi, xs[(s + 1) % 2], no_labels)
        if not _wait_for(flags, LEAD_POSTED, s + 1):
            break
        np.dot(dz[:n].T, x[:n], g)
        if grad_sq.shape[0] > 0:
            flat = g.reshape(-1)
            grad_sq[s, 0] = np.dot(flat, flat)
        measure = inner and grad_sq[s, 1] == grad_sq[s, 1]  # NaN: a step left out (as train_chunk)
        if measure:
            copy_into(before, W.reshape(-1))
        chosen_step(step, W.reshape(-1), g.reshape(-1), state, scal, hp, lrs[s])
        if measure:
            grad_sq[s, 1], grad_sq[s, 2] = change_and_size(W.reshape(-1), before, 0, before.shape[0])
        done = s + 1
    restore_fpu(fpu)
    return done


@kernel
def lead_steps(W, state1, scal1, rest, state, scal, hp, step, X, Y, order, first_batch, n_steps,
               batch_size, lo, hi, w_off, b_off, sizes, acts, loss, lrs, losses, z_parts, dz, flags,
               grad_sq):
    """The lead's side of n_steps: columns lo:hi of the first layer and everything after it.

    W: its (width, hi - lo) block of W_1, with optimizer state state1 and scalars scal1.
    rest: b_1 followed by layers 2.. (w_off, b_off, sizes, acts[1:] describe them as a network
    whose input is A_1), with state and scal, the optimizer's own scalars.
    z_parts: (partners, batch, width), partner p's Z block in z_parts[p].
    Losses, divergence and the return value are as train_chunk's; grad_sq[s, l] gets layer
    l's squared gradient norm without the partners' blocks (the caller adds them), and with 3 L columns
    the step's change and the parameters after it as train_chunk's internals, without the partners' blocks.
    """
    fpu = flush_denormals_on()
    N = order.shape[0]
    width = W.shape[0]
    partners = z_parts.shape[0]
    g = np.empty_like(W)
    grest = np.empty_like(rest)
    x = np.empty((batch_size, hi - lo), X.dtype)
    y = np.empty((batch_size, Y.shape[1]), Y.dtype)
    z1 = np.empty((batch_size, width), X.dtype)
    a1 = np.empty((batch_size, width), X.dtype)
    da1 = np.empty((batch_size, width), X.dtype)
    zbuf, abuf, dbuf, dtmp = workspace(rest, sizes, batch_size)
    b1 = rest[:width]
    W2 = rest[w_off[0]:w_off[0] + sizes[1] * sizes[0]].reshape((sizes[1], sizes[0]))
    L = sizes.shape[0] - 1
    track = grad_sq.shape[0] > 0
    inner = track and grad_sq.shape[1] == 3 * (L + 1)
    before_w = np.empty(W.size if inner else 0, W.dtype)
    before_rest = np.empty(rest.shape[0] if inner else 0, rest.dtype)
    done = 0
    for s in range(n_steps):
        start = (first_batch + s) * batch_size
        n = min(batch_size, N - start)
        gather_columns(X, Y, order, start, n, lo, hi, x, y)
        np.dot(x[:n], W.T, z1[:n])
        ready = True
        for p in range(partners):
            if not _wait_for(flags, PARTNER_POSTED + 8 * p, s + 1):
                ready = False
                break
        if not ready:
            break  # a partner failed: the caller raises its error
        for i in range(n):
            for j in range(width):
                v = z1[i, j]
                for p in range(partners):  # in the partners' order, whatever order they posted in
                    v = v + z_parts[p, i, j]
                z1[i, j] = v + b1[j]
        activation_forward(z1[:n], a1[:n], acts[0])
        mlp_forward(rest, a1[:n], w_off, b_off, sizes, acts[1:], zbuf, abuf, batch_size)
        value = mlp_backward(rest, a1[:n], y[:n], w_off, b_off, sizes, acts[1:], loss, zbuf, abuf, dbuf,
                             dtmp, grest, batch_size)
        losses[s] = value
        if not math.isfinite(value):
            break
        np.dot(_block(dbuf, batch_size, sizes, 0, n), W2, da1[:n])
        activation_backward(z1[:n], a1[:n], da1[:n], dz[:n], acts[0])
        store_release(flags, LEAD_POSTED, s + 1)
        for j in range(width):
            grest[j] = 0.0
        for i in range(n):
            for j in range(width):
                grest[j] += dz[i, j]
        np.dot(dz[:n].T, x[:n], g)
        if track:
            flat = g.reshape(-1)
            gb1 = grest[:width]
            grad_sq[s, 0] = np.dot(flat, flat) + np.dot(gb1, gb1)
            for l in range(L):
                gl = grest[w_off[l]:b_off[l] + sizes[l + 1]]
                grad_sq[s, l + 1] = np.dot(gl, gl)
        L1 = L + 1  # the whole network's layers: the first, then the rest's
        measure = inner and grad_sq[s, L1] == grad_sq[s, L1]  # NaN: a step left out (as train_chunk)
        if measure:
            copy_into(before_w, W.reshape(-1))
            copy_into(before_rest, rest)
        chosen_step(step, W.reshape(-1), g.reshape(-1), state1, scal1, hp, lrs[s])
        chosen_step(step, rest, grest, state, scal, hp, lrs[s])
        if measure:
            dw, ww = change_and_size(W.reshape(-1), before_w, 0, before_w.shape[0])
            db, wb = change_and_size(rest, before_rest, 0, width)
            grad_sq[s, L1], grad_sq[s, 2 * L1] = dw + db, ww + wb
            for l in range(L):
                grad_sq[s, L1 + l + 1], grad_sq[s, 2 * L1 + l + 1] = change_and_size(
                    rest, before_rest, w_off[l], b_off[l] + sizes[l + 1])
        done = s + 1
    store_release(flags, STOP, 1)
    restore_fpu(fpu)
    return done
