"""Reductions in a fixed order: the same bits on every x86-64 (and any IEEE) machine.

Why not ndarray.dot: NumPy hands a 1-D dot to OpenBLAS, which picks its kernel by processor.
Its SkylakeX kernel (AVX-512) accumulates with fused multiply-adds, its Haswell kernel and
torch's MKL multiply, round, then add: for x, y of length 2 the first gives
fma(x1, y1, x0 y0), the others x0 y0 + x1 y1 with the product rounded. L-BFGS feeds its
dot products into a line search and a curvature history, and on Rosenbrock 40 steps grow
that last bit to 1e-7, so the same run parted by processor (issue 26).

Here every product is rounded, then added into one of 8 lanes (lane i % 8) in index order;
the lanes are summed as a fixed tree, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
Numba compiles without fast-math, so LLVM may put the 8 lanes in one vector register but
may neither reassociate nor fuse: the order is the one written. For n = 2 (a surface's theta)
the result is x0 y0 + x1 y1 with both products rounded, what torch's MKL gives.
"""

import numpy as np

from tuilab.kernels._jit import kernel, like


@kernel
def _lanes_to_sum(l0, l1, l2, l3, l4, l5, l6, l7):
    return ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))


@kernel
def fixed_dot(x, y):
    """sum_i x_i y_i, each product rounded, summed in 8 lanes in a fixed order (see the module)."""
    n = x.shape[0]
    zero = like(x, 0.0)
    l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = zero
    full = n - n % 8
    for i in range(0, full, 8):
        l0 += x[i] * y[i]
        l1 += x[i + 1] * y[i + 1]
        l2 += x[i + 2] * y[i + 2]
        l3 += x[i + 3] * y[i + 3]
        l4 += x[i + 4] * y[i + 4]
        l5 += x[i + 5] * y[i + 5]
        l6 += x[i + 6] * y[i + 6]
        l7 += x[i + 7] * y[i + 7]
    tail = np.zeros(8, x.dtype)
    for i in range(full, n):
        tail[i - full] = x[i] * y[i]
    return _lanes_to_sum(l0 + tail[0], l1 + tail[1], l2 + tail[2], l3 + tail[3],
                         l4 + tail[4], l5 + tail[5], l6 + tail[6], l7 + tail[7])


def fixed_abs_sum(x):
    """sum_i |x_i| in fixed_dot's lanes and tree: |x_i| * 1 is exact, so these are the bits of that order."""
    return fixed_dot(np.abs(x), np.ones_like(x))
