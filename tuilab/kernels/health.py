"""Activation health: what each hidden layer does to the signal on a batch of rows (a forward pass, then the
activations' derivatives there), the figures behind "why do the first layers' gradients vanish"."""

import numpy as np

from tuilab.kernels._jit import kernel
from tuilab.kernels.activations import activation_backward
from tuilab.kernels.mlp import _block, mlp_forward, workspace

N_FIGURES = 5  # out's columns, per hidden layer
F_DACT_MEAN = 0  # mean of f'(z) over units and rows: the factor the layer scales the signal going back by
F_SATURATED = 1  # share of (unit, row) pairs with f'(z) below SATURATED_BELOW of its largest value
F_DEAD = 2  # share of units whose activation is 0 on every row
F_ACT_MEAN = 3  # mean of the activations
F_ACT_STD = 4  # their standard deviation
SATURATED_BELOW = 0.05
HIST_BINS = 24  # bins of each layer's activation histogram, spread over its [min, max] on the rows


@kernel
def layer_health(theta, X, w_off, b_off, sizes, acts, deriv_max, out, bounds, hist):
    """out[l] = (mean f'(z), saturated share, dead share, mean a, std a) for each hidden layer l on the rows of
    X; deriv_max[l] is f''s largest value for layer l's activation (sigmoid 1/4). Sums in float64. bounds[l] =
    (min a, max a) and hist[l, k] counts the (unit, row) pairs whose a falls in the k-th of hist's equal bins
    over them (all in bin 0 when min == max)."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    zbuf, abuf, dbuf, _ = workspace(theta, sizes, n)
    mlp_forward(theta, X, w_off, b_off, sizes, acts, zbuf, abuf, n)
    for l in range(L - 1):
        Z = _block(zbuf, n, sizes, l, n)
        A = _block(abuf, n, sizes, l, n)
        D = _block(dbuf, n, sizes, l, n)
        ones = np.ones_like(Z)
        activation_backward(Z, A, ones, D, acts[l])  # D = f'(z)
        width = Z.shape[1]
        floor = SATURATED_BELOW * deriv_max[l]
        d_sum = 0.0
        saturated = 0
        a_sum = 0.0
        a_sq = 0.0
        lo = np.inf
        hi = -np.inf
        alive = np.zeros(width, np.bool_)
        for i in range(n):  # row by row: the blocks are row-major
            for j in range(width):
                d = D[i, j]
                d_sum += d
                saturated += d < floor
                a = A[i, j]
                a_sum += a
                a_sq += a * a
                lo = a if a < lo else lo  # comparisons, not min(): a NaN (a diverged run) is left out of both
                hi = a if a > hi else hi
                alive[j] |= a != 0.0
        dead = width - alive.sum()
        cells = n * width
        mean = a_sum / cells
        out[l, F_DACT_MEAN] = d_sum / cells
        out[l, F_SATURATED] = saturated / cells
        out[l, F_DEAD] = dead / width
        out[l, F_ACT_MEAN] = mean
        out[l, F_ACT_STD] = np.sqrt(max(a_sq / cells - mean * mean, 0.0))
        bins = hist.shape[1]
        bounds[l, 0] = lo
        bounds[l, 1] = hi
        counts = hist[l]
        counts[:] = 0
        scale = bins / (hi - lo) if hi > lo else 0.0
        for i in range(n):
            for j in range(width):
                a = A[i, j]
                if lo <= a <= hi:
                    counts[min(int((a - lo) * scale), bins - 1)] += 1
