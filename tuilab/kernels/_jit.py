"""The one decorator every kernel uses."""

from numba import njit

# No fastmath: it would let LLVM assume no NaN/Inf, and divergence must be seen.
kernel = njit(cache=True, nogil=True)
