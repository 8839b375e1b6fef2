"""The one decorator every kernel uses, and the scalar cast they share."""

from numba import njit
from numba.extending import overload

# No fastmath: it would let LLVM assume no NaN/Inf, and divergence must be seen.
# error_model="numpy": x / 0 gives inf or nan as in NumPy instead of raising
# ZeroDivisionError; the raise check on every division also kept LLVM from
# vectorising the optimizer loops (Adam on 24k floats: 54 us a step, now a fraction).
kernel = njit(cache=True, nogil=True, error_model="numpy")


def like(arr, value):
    """`value` as a scalar of arr's dtype: a float32 loop stays float32 (a float64 scalar would
    widen every element and halve the SIMD width). Only callable from a kernel."""
    raise TypeError("like() is for use inside @njit kernels")


@overload(like, jit_options={"cache": True})
def _like(arr, value):
    dtype = arr.dtype

    def impl(arr, value):
        return dtype(value)  # a cast, no allocation: two-parameter surface runs call this per step

    return impl
