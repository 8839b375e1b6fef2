"""Element-wise activations and their derivatives, selected by integer id.

Derivatives take both the pre-activation z and the activation a = f(z), so each
uses whichever is cheaper (sigmoid' = a(1 - a), relu' = [z > 0], ...).
"""

import math

from tuilab.kernels._jit import kernel, like
from tuilab.kernels.copies import copy_into
from tuilab.kernels.vexp import vexp, vphi, vtanh

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
GELU = 7
SOFTMAX = 8  # output layer only: acts on a row, not an element

LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU default
ELU_ALPHA = 1.0  # torch.nn.ELU default
SOFTPLUS_THRESHOLD = 20.0  # torch.nn.Softplus: linear above this, as torch does
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@kernel
def _softmax_rows(z, a):
    """a_ij = e^(z_ij - m_i) / sum_k e^(z_ik - m_i), m_i = max_k z_ik.

    The exponentials are taken over the whole block in one loop, apart from the row
    sums, so that loop vectorises (a row of 10 classes is too short to).
    """
    n, w = z.shape
    for i in range(n):
        m = z[i, 0]
        for j in range(1, w):
            if z[i, j] > m:
                m = z[i, j]
        for j in range(w):
            a[i, j] = z[i, j] - m
    flat = a.reshape(a.size)
    for k in range(flat.size):
        flat[k] = vexp(flat[k])
    for i in range(n):
        s = 0.0
        for j in range(w):
            s += a[i, j]
        inv = 1.0 / s
        for j in range(w):
            a[i, j] *= inv


@kernel
def activation_forward(z2, a2, act):
    """a = f(z) for a C-contiguous 2-D block; softmax is taken row by row (max-shifted).

    One branch-free loop per activation over the flat block, so LLVM can vectorise it.
    """
    if act == SOFTMAX:
        _softmax_rows(z2, a2)
        return
    z = z2.reshape(z2.size)
    a = a2.reshape(a2.size)
    zero, one, slope, alpha = (like(z, 0.0), like(z, 1.0), like(z, LEAKY_SLOPE), like(z, ELU_ALPHA))
    if act == IDENTITY:
        copy_into(a, z)
    elif act == SIGMOID:
        for i in range(z.size):
            a[i] = one / (one + vexp(-z[i]))
    elif act == TANH:
        for i in range(z.size):
            a[i] = vtanh(z[i])
    elif act == RELU:
        for i in range(z.size):
            a[i] = z[i] if z[i] > zero else zero
    elif act == LEAKY_RELU:
        for i in range(z.size):
            a[i] = z[i] if z[i] > zero else slope * z[i]
    elif act == ELU:
        for i in range(z.size):
            a[i] = z[i] if z[i] > zero else alpha * (vexp(z[i]) - one)
    elif act == SOFTPLUS:
        for i in range(z.size):
            x = z[i]
            a[i] = x if x > SOFTPLUS_THRESHOLD else math.log1p(math.exp(x))
    else:  # GELU, the exact erf form (torch's default): x Phi(x)
        for i in range(z.size):
            a[i] = z[i] * vphi(z[i])


@kernel
def activation_backward(z2, a2, da2, dz2, act):
    """dz = da * f'(z), element-wise (not for softmax: see losses.softmax_backward)."""
    z = z2.reshape(z2.size)
    a = a2.reshape(a2.size)
    da = da2.reshape(da2.size)
    dz = dz2.reshape(dz2.size)
    zero, one, slope, alpha = (like(z, 0.0), like(z, 1.0), like(z, LEAKY_SLOPE), like(z, ELU_ALPHA))
    if act == IDENTITY:
        copy_into(dz, da)
    elif act == SIGMOID:
        for i in range(z.size):
            dz[i] = da[i] * (a[i] * (one - a[i]))
    elif act == TANH:
        for i in range(z.size):
            dz[i] = da[i] * (one - a[i] * a[i])
    elif act == RELU:
        for i in range(z.size):
            dz[i] = da[i] if z[i] > zero else zero
    elif act == LEAKY_RELU:
        for i in range(z.size):
            dz[i] = da[i] if z[i] > zero else da[i] * slope
    elif act == ELU:
        for i in range(z.size):
            dz[i] = da[i] if z[i] > zero else da[i] * (a[i] + alpha)
    elif act == SOFTPLUS:
        for i in range(z.size):
            x = z[i]
            dz[i] = da[i] if x > SOFTPLUS_THRESHOLD else da[i] * (1.0 / (1.0 + math.exp(-x)))
    else:  # GELU: Phi(x) + x * phi(x)
        c, minus_half = like(z, _INV_SQRT_2PI), like(z, -0.5)
        for i in range(z.size):
            x = z[i]
            dz[i] = da[i] * (vphi(x) + x * c * vexp(minus_half * x * x))
