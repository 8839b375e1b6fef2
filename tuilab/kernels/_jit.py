"""The one decorator every kernel uses, and the scalar cast they share."""

import numpy as np
from numba import njit

# No fastmath: it would let LLVM assume no NaN/Inf, and divergence must be seen.
# error_model="numpy": x / 0 gives inf or nan as in NumPy instead of raising
# ZeroDivisionError; the raise check on every division also kept LLVM from
# vectorising the optimizer loops (Adam on 24k floats: 54 us a step, now a fraction).
kernel = njit(cache=True, nogil=True, error_model="numpy")


@kernel
def scalars_like(arr, values):
    """float64 `values` as an array of arr's dtype: scalars taken from it keep a float32
    loop in float32 (a float64 scalar would widen every element and halve the SIMD width)."""
    out = np.empty(values.shape[0], arr.dtype)
    for k in range(values.shape[0]):
        out[k] = values[k]
    return out
