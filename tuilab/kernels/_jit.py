"""The one decorator every kernel uses, and the scalar helpers they share (a cast, a fused multiply-add)."""

from numba import njit, types
from numba.extending import intrinsic, overload

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


def fma(a, b, c):
    """a * b + c rounded once (a fused multiply-add). Only callable from a kernel."""
    raise TypeError("fma() is for use inside @njit kernels")


@intrinsic
def _fma(typingctx, a, b, c):
    # LLVM's llvm.fma: one rounding on every target (an instruction where the CPU has FMA). torch's
    # CPU lerp is fused (vec::fmadd; its scalar tail compiled with contraction), and chaotic paths such
    # as Adafactor's on Rosenbrock follow torch's only with the same single rounding.
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@overload(fma, jit_options={"cache": True})
def _fma_overload(a, b, c):
    if isinstance(a, types.Float) and a == b == c:
        return lambda a, b, c: _fma(a, b, c)
    return None
