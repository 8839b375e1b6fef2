"""A dense MLP on one flat parameter vector: forward, backward, loss, and the training chunk.

Layout (built by engine.nn.model): layer l maps sizes[l] -> sizes[l+1] with
W_l = theta[w_off[l] : w_off[l] + sizes[l+1]*sizes[l]] viewed (out, in) row-major,
as torch.nn.Linear keeps its weight, then b_l = theta[b_off[l] : b_off[l] + sizes[l+1]].
Forward is Z_l = A_{l-1} W_l^T + b_l, A_l = f_l(Z_l), with A_{-1} = X.  (out, in) is
also the faster orientation for OpenBLAS at small batches: X W^T and dZ^T X took 3.9
and 3.6 us for a batch of 10 through [784, 30], against 7.7 and 5.5 us for X W and
X^T dZ with W stored (in, out).

Workspaces are flat buffers with room for `cap` rows per layer: layer l's block
starts at cap * (sum of the widths before it), so a smaller last batch reuses them.
"""

import math

import numpy as np

from tuilab.kernels._jit import kernel
from tuilab.kernels.activations import activation_backward, activation_forward
from tuilab.kernels.copies import copy_into, copy_rows
from tuilab.kernels.fpu import flush_denormals_on, restore_fpu
from tuilab.kernels.losses import loss_backward, loss_value
from tuilab.kernels.prefetch import prefetch
from tuilab.kernels.step_choice import chosen_step


@kernel
def _weights(theta, w_off, b_off, sizes, l):
    n_in = sizes[l]
    n_out = sizes[l + 1]
    W = theta[w_off[l]:w_off[l] + n_in * n_out].reshape((n_out, n_in))
    b = theta[b_off[l]:b_off[l] + n_out]
    return W, b


@kernel
def _block(buf, cap, sizes, l, n):
    """Layer l's (n, width) block of a flat workspace with `cap` rows per layer."""
    off = 0
    for k in range(l):
        off += cap * sizes[k + 1]
    w = sizes[l + 1]
    return buf[off:off + n * w].reshape((n, w))


@kernel
def dense_forward(prev, W, b, Z, A, act):
    """Z = prev Wᵀ + b, A = f(Z): one dense layer on a block of rows."""
    np.dot(prev, W.T, Z)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            Z[i, j] += b[j]
    activation_forward(Z, A, act)


@kernel
def mlp_forward(theta, X, w_off, b_off, sizes, acts, zbuf, abuf, cap):
    """Fill Z and A for every layer for the rows of X (n <= cap); returns the output block A_L."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    prev = X
    for l in range(L):
        W, b = _weights(theta, w_off, b_off, sizes, l)
        A = _block(abuf, cap, sizes, l, n)
        dense_forward(prev, W, b, _block(zbuf, cap, sizes, l, n), A, acts[l])
        prev = A
    return prev


@kernel
def mlp_backward(theta, X, Y, w_off, b_off, sizes, acts, loss, zbuf, abuf, dbuf, tmp, grad, cap):
    """After mlp_forward on X: write dL/dtheta into grad and return the loss (float64).

    dbuf holds dL/dZ per layer (same layout as zbuf); tmp holds dL/dA of one layer.
    The first layer's dL/dX is never formed: nothing needs it.
    """
    n = X.shape[0]
    L = sizes.shape[0] - 1
    Zl = _block(zbuf, cap, sizes, L - 1, n)
    Al = _block(abuf, cap, sizes, L - 1, n)
    dZ = _block(dbuf, cap, sizes, L - 1, n)
    value = loss_value(Zl, Al, Y, loss)
    loss_backward(Zl, Al, Y, acts[L - 1], loss, dZ)
    for l in range(L - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        dZ = _block(dbuf, cap, sizes, l, n)
        prev = X if l == 0 else _block(abuf, cap, sizes, l - 1, n)
        gW = grad[w_off[l]:w_off[l] + n_in * n_out].reshape((n_out, n_in))
        gb = grad[b_off[l]:b_off[l] + n_out]
        np.dot(dZ.T, prev, gW)
        for j in range(n_out):
            gb[j] = 0.0
        for i in range(n):
            for j in range(n_out):
                gb[j] += dZ[i, j]
        if l > 0:
            W, _ = _weights(theta, w_off, b_off, sizes, l)
            dA = tmp[:n * n_in].reshape((n, n_in))
            np.dot(dZ, W, dA)
            activation_backward(
                _block(zbuf, cap, sizes, l - 1, n), _block(abuf, cap, sizes, l - 1, n),
                dA, _block(dbuf, cap, sizes, l - 1, n), acts[l - 1])
    return value


ROWS_AHEAD = 2


@kernel
def gather_columns(X, Y, order, start, n, lo, hi, X_out, Y_out):
    """X_out[i] = X[order[start + i], lo:hi] for i < n, and Y_out[i] = Y[order[start + i]] when
    Y_out has rows (an empty Y_out: the columns only).

    While row i is copied, row i + ROWS_AHEAD is already on its way into L2: a random row
    otherwise starts with a wait on memory. Measured per epoch (60,000 rows of 784 float32,
    2 cores): [784, 30, 10] batch 128 129 -> 114 ms, [784, 30x8, 10] batch 64 192 -> 182 ms;
    1, 3 or 4 rows ahead did about as well, 8 less; into L1 too (prefetcht0) as well,
    non-temporal (prefetchnta) worse than none.
    """
    n_in = X.shape[1]
    line = max(1, 64 // X.itemsize)  # elements per 64-byte cache line
    labels = Y_out.shape[0] > 0
    for i in range(n):
        if i + ROWS_AHEAD < n:
            ahead = order[start + i + ROWS_AHEAD] * n_in
            for k in range(lo, hi, line):
                prefetch(X, ahead + k)
        r = order[start + i]
        copy_into(X_out[i], X[r, lo:hi])
        if labels:
            copy_into(Y_out[i], Y[r])


@kernel
def gather_rows(X, Y, order, start, stop, X_out, Y_out):
    """X_out[i], Y_out[i] = X[order[start + i]], Y[order[start + i]] for start + i < stop."""
    gather_columns(X, Y, order, start, stop - start, 0, X.shape[1], X_out, Y_out)


@kernel
def workspace(theta, sizes, cap):
    """Fresh forward/backward buffers for batches of up to `cap` rows."""
    total = 0
    widest = 0
    for l in range(1, sizes.shape[0]):
        total += sizes[l]
        if sizes[l] > widest:
            widest = sizes[l]
    zbuf = np.empty(cap * total, theta.dtype)
    abuf = np.empty(cap * total, theta.dtype)
    dbuf = np.empty(cap * total, theta.dtype)
    tmp = np.empty(cap * widest, theta.dtype)
    return zbuf, abuf, dbuf, tmp


@kernel
def mlp_loss_and_grad(theta, X, Y, w_off, b_off, sizes, acts, loss, grad):
    """The loss over all rows of X as one batch; its gradient written into grad."""
    n = X.shape[0]
    zbuf, abuf, dbuf, tmp = workspace(theta, sizes, n)
    mlp_forward(theta, X, w_off, b_off, sizes, acts, zbuf, abuf, n)
    return mlp_backward(theta, X, Y, w_off, b_off, sizes, acts, loss, zbuf, abuf, dbuf, tmp,
                        grad, n)


@kernel
def mlp_predict(theta, X, w_off, b_off, sizes, acts, out, batch):
    """Output activations for every row of X, `batch` rows at a time, into out."""
    n = X.shape[0]
    zbuf, abuf, _, _ = workspace(theta, sizes, batch)
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        A = mlp_forward(theta, X[start:stop], w_off, b_off, sizes, acts, zbuf, abuf, batch)
        copy_rows(out[start:stop], A)


@kernel
def mlp_evaluate(theta, X, Y, w_off, b_off, sizes, acts, loss, out, batch):
    """Mean loss over all rows of X (batches weighted by size); outputs into out."""
    n = X.shape[0]
    zbuf, abuf, _, _ = workspace(theta, sizes, batch)
    L = sizes.shape[0] - 1
    total = 0.0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        A = mlp_forward(theta, X[start:stop], w_off, b_off, sizes, acts, zbuf, abuf, batch)
        Z = _block(zbuf, batch, sizes, L - 1, stop - start)
        total += loss_value(Z, A, Y[start:stop], loss) * (stop - start)
        copy_rows(out[start:stop], A)
    return total / n


@kernel
def change_and_size(now, before, lo, hi):
    """(|now - before|^2, |now|^2) over [lo, hi): a step's update and the parameters it left, for the
    update-to-weight ratio; `before` is overwritten with the change."""
    for i in range(lo, hi):
        before[i] = now[i] - before[i]
    d = before[lo:hi]
    t = now[lo:hi]
    return np.dot(d, d), np.dot(t, t)


@kernel
def train_chunk(theta, grad, state, scal, hp, step, X, Y, order, first_batch, n_steps,
                batch_size, w_off, b_off, sizes, acts, loss, lrs, losses, grad_sq):
    """Run n_steps minibatch steps (forward, backward, update) without returning to Python.

    Step s uses rows order[(first_batch + s) * batch_size : ...] (the last batch of an
    epoch may be short) and learning rate lrs[s]. An empty `order` means the rows of X
    and Y are already in training order: step s takes them from (first_batch + s) *
    batch_size on, in place, with no copy. Its loss goes to losses[s] and, when
    grad_sq has rows, each layer's squared gradient norm to grad_sq[s, l]; when it has
    3 L columns (the optimizer's internals), also the squared norm of the step's change
    of the layer's parameters to grad_sq[s, L + l] and of the parameters after it to
    grad_sq[s, 2 L + l], except in the steps whose grad_sq[s, L] holds NaN on the way in (the
    caller samples the steps it measures: engine.internals.step_norms_buffer).
    Returns the number of steps done: fewer than n_steps when a loss is NaN or Inf
    (that step's update is not applied, so theta holds the last finite point).
    Subnormal results are flushed to zero while it runs (see kernels.fpu). `step` is a
    kernels.step_choice.StepChoice: numba compiles this kernel once for each optimizer it trains.
    """
    # one function, not a wrapper around the loop: numba optimises each compiled function again
    # with all it calls, the whole optimizer table included (a wrapper cost ~6 s of every cold compile)
    fpu = flush_denormals_on()
    in_order = order.shape[0] == 0
    N = X.shape[0] if in_order else order.shape[0]
    L = sizes.shape[0] - 1
    xb = np.empty((0 if in_order else batch_size, X.shape[1]), X.dtype)
    yb = np.empty((0 if in_order else batch_size, Y.shape[1]), Y.dtype)
    zbuf, abuf, dbuf, tmp = workspace(theta, sizes, batch_size)
    track = grad_sq.shape[0] > 0
    inner = track and grad_sq.shape[1] == 3 * L
    before = np.empty(theta.shape[0] if inner else 0, theta.dtype)
    done = n_steps
    for s in range(n_steps):
        start = (first_batch + s) * batch_size
        n = min(batch_size, N - start)
        if in_order:
            xs = X[start:start + n]
            ys = Y[start:start + n]
        else:
            gather_rows(X, Y, order, start, start + n, xb, yb)
            xs = xb[:n]
            ys = yb[:n]
        mlp_forward(theta, xs, w_off, b_off, sizes, acts, zbuf, abuf, batch_size)
        value = mlp_backward(theta, xs, ys, w_off, b_off, sizes, acts, loss, zbuf, abuf, dbuf,
                             tmp, grad, batch_size)
        losses[s] = value
        if not math.isfinite(value):
            done = s
            break
        if track:
            for l in range(L):
                # BLAS's dot: a plain running sum here is a chain of dependent adds that
                # took 17 us a step for [784, 30, 10], as long as the rest of the step (the
                # dashboard's gradient norms doubled the epoch); the dot takes ~1 us. In
                # float32 it is ~1e-7 relative off the float64 sum: a diagnostic, not a step.
                g = grad[w_off[l]:b_off[l] + sizes[l + 1]]
                grad_sq[s, l] = np.dot(g, g)
        measure = inner and grad_sq[s, L] == grad_sq[s, L]  # NaN: a step left out
        if measure:
            copy_into(before, theta)
        chosen_step(step, theta, grad, state, scal, hp, lrs[s])
        if measure:
            for l in range(L):
                grad_sq[s, L + l], grad_sq[s, 2 * L + l] = change_and_size(theta, before, w_off[l],
                                                                           b_off[l] + sizes[l + 1])
    restore_fpu(fpu)
    return done
