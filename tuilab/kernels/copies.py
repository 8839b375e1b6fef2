"""Array copies written as loops: `dst[:] = src` in a kernel costs a cold start seconds.

Numba compiles an array-to-array slice assignment with a shape check whose error message is
built at run time (`raise_with_shape_context`: f-strings, str of ints, join). That string code
was linked into, and optimised again with, every kernel that reached one such assignment: about
a third of a cold compile of the training, evaluation and health kernels (33 s against 22 s on
the 2-core machine, benchmarks/cold_start.py). A loop compiles to the same vectorised copy.
"""

from tuilab.kernels._jit import kernel


@kernel
def copy_into(dst, src):
    """dst[i] = src[i] for every i of a 1-D dst (src at least as long)."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@kernel
def copy_rows(dst, src):
    """dst[i, j] = src[i, j] for every element of a 2-D dst (src at least as large)."""
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] = src[i, j]
