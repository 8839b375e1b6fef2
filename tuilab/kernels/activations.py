"""Element-wise activations and their derivatives, selected by integer id.

Derivatives take both the pre-activation z and the activation a = f(z), so each
uses whichever is cheaper (sigmoid' = a(1 - a), relu' = [z > 0], ...).
"""

import math

from tuilab.kernels._jit import kernel

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
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@kernel
def activation_forward(z, a, act):
    """a = f(z) for a 2-D block; softmax is taken row by row (max-shifted)."""
    n, w = z.shape
    if act == SOFTMAX:
        for i in range(n):
            m = z[i, 0]
            for j in range(1, w):
                if z[i, j] > m:
                    m = z[i, j]
            s = 0.0
            for j in range(w):
                e = math.exp(z[i, j] - m)
                a[i, j] = e
                s += e
            inv = 1.0 / s
            for j in range(w):
                a[i, j] *= inv
        return
    for i in range(n):
        for j in range(w):
            x = z[i, j]
            if act == IDENTITY:
                y = x
            elif act == SIGMOID:
                y = 1.0 / (1.0 + math.exp(-x))
            elif act == TANH:
                y = math.tanh(x)
            elif act == RELU:
                y = x if x > 0 else 0.0
            elif act == LEAKY_RELU:
                y = x if x > 0 else LEAKY_SLOPE * x
            elif act == ELU:
                y = x if x > 0 else ELU_ALPHA * (math.exp(x) - 1.0)
            elif act == SOFTPLUS:
                y = x if x > SOFTPLUS_THRESHOLD else math.log1p(math.exp(x))
            else:  # GELU, the exact erf form (torch's default)
                y = 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))
            a[i, j] = y


@kernel
def activation_backward(z, a, da, dz, act):
    """dz = da * f'(z), element-wise (not for softmax: see losses.softmax_backward)."""
    n, w = z.shape
    for i in range(n):
        for j in range(w):
            x = z[i, j]
            if act == IDENTITY:
                d = 1.0
            elif act == SIGMOID:
                d = a[i, j] * (1.0 - a[i, j])
            elif act == TANH:
                d = 1.0 - a[i, j] * a[i, j]
            elif act == RELU:
                d = 1.0 if x > 0 else 0.0
            elif act == LEAKY_RELU:
                d = 1.0 if x > 0 else LEAKY_SLOPE
            elif act == ELU:
                d = 1.0 if x > 0 else a[i, j] + ELU_ALPHA
            elif act == SOFTPLUS:
                d = 1.0 if x > SOFTPLUS_THRESHOLD else 1.0 / (1.0 + math.exp(-x))
            else:  # GELU: Phi(x) + x * phi(x)
                d = 0.5 * (1.0 + math.erf(x * _INV_SQRT2)) + x * _INV_SQRT_2PI * math.exp(
                    -0.5 * x * x
                )
            dz[i, j] = da[i, j] * d
