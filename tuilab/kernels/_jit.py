"""The one decorator every kernel uses."""

from numba import njit

# No fastmath: it would let LLVM assume no NaN/Inf, and divergence must be seen.
# error_model="numpy": x / 0 gives inf or nan as in NumPy instead of raising
# ZeroDivisionError; the raise check on every division also kept LLVM from
# vectorising the optimizer loops (Adam on 24k floats: 54 us a step, now a fraction).
kernel = njit(cache=True, nogil=True, error_model="numpy")
