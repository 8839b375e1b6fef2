"""Output-layer losses and their gradient with respect to the output pre-activation.

Targets are always a 2-D float block y of the output's shape (one-hot rows for
classes), so one code path serves classification and regression.

- cross-entropy (softmax output):  L = -(1/n) sum_i sum_k y_ik log p_ik
- squared error (any output):      L = 0.5 * mean_ik (a_ik - y_ik)^2
"""

import math

from tuilab.kernels._jit import kernel
from tuilab.kernels.activations import SOFTMAX, activation_backward

CROSS_ENTROPY = 0
SQUARED_ERROR = 1


@kernel
def softmax_backward(a, da, dz):
    """dz_ij = a_ij * (da_ij - sum_k da_ik a_ik): the softmax Jacobian applied row-wise."""
    n, w = a.shape
    for i in range(n):
        s = 0.0
        for j in range(w):
            s += da[i, j] * a[i, j]
        for j in range(w):
            dz[i, j] = a[i, j] * (da[i, j] - s)


@kernel
def loss_value(z, a, y, loss):
    """The batch loss (float64) of output activations a (pre-activations z) against y.

    Cross-entropy needs a = softmax(z), as the output layer computed it.
    """
    n, w = a.shape
    total = 0.0
    if loss == CROSS_ENTROPY:
        # log p_ij = z_ij - lse_i from z, so a probability that underflows to 0 still gives a
        # finite loss. lse_i = log sum_j e^z_ij comes from the softmax output at the row's
        # largest z (whose a_ik = 1 / sum_j e^(z_ij - z_ik) >= 1/w never underflows): one log
        # per row instead of w more exponentials.
        for i in range(n):
            k = 0
            for j in range(1, w):
                if z[i, j] > z[i, k]:
                    k = j
            lse = z[i, k] - math.log(a[i, k])
            for j in range(w):
                if y[i, j] != 0.0:
                    total -= y[i, j] * (z[i, j] - lse)
        return total / n
    for i in range(n):
        for j in range(w):
            d = a[i, j] - y[i, j]
            total += d * d
    return 0.5 * total / (n * w)


@kernel
def loss_backward(z, a, y, out_act, loss, dz):
    """dz = dL/dz for the output layer; cross-entropy with softmax uses p * sum(y) - y."""
    n, w = a.shape
    if loss == CROSS_ENTROPY:
        inv_n = 1.0 / n
        for i in range(n):
            ysum = 0.0
            for j in range(w):
                ysum += y[i, j]
            for j in range(w):
                dz[i, j] = (a[i, j] * ysum - y[i, j]) * inv_n
        return
    scale = 1.0 / (n * w)
    # dz first holds dL/da, then is mapped through the activation in place
    for i in range(n):
        for j in range(w):
            dz[i, j] = (a[i, j] - y[i, j]) * scale
    if out_act == SOFTMAX:
        da = dz.copy()
        softmax_backward(a, da, dz)
    else:
        activation_backward(z, a, dz, dz, out_act)
