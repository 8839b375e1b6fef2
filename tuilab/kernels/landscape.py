"""A network's training loss over a plane through its parameters (issue 30): one forward pass a point."""

import numpy as np

from tuilab.kernels._jit import kernel, like
from tuilab.kernels.activations import activation_forward
from tuilab.kernels.losses import loss_value
from tuilab.kernels.mlp import _block, _weights, dense_forward, workspace


@kernel
def plane_losses(theta, d1, d2, coords, X, Y, P0, Pa, Pb, w_off, b_off, sizes, acts, loss, out):
    """out[g] = the loss on (X, Y) at θ + a d1 + b d2, (a, b) = coords[g]. The first layer's X W1ᵀ is linear in
    the point, P0 + a Pa + b Pb (X times θ's, d1's and d2's first weights, made once by the caller), so a point
    costs the deeper layers' products only: the first is most of a wide-input network's work."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    th = np.empty_like(theta)
    zbuf, abuf, _, _ = workspace(theta, sizes, n)
    for g in range(coords.shape[0]):
        a = like(theta, coords[g, 0])
        b = like(theta, coords[g, 1])
        for k in range(theta.shape[0]):
            th[k] = theta[k] + a * d1[k] + b * d2[k]
        prev = _block(abuf, n, sizes, 0, n)
        for l in range(L):
            W, bias = _weights(th, w_off, b_off, sizes, l)
            Z = _block(zbuf, n, sizes, l, n)
            A = _block(abuf, n, sizes, l, n)
            if l == 0:
                for i in range(n):
                    for j in range(Z.shape[1]):
                        Z[i, j] = P0[i, j] + a * Pa[i, j] + b * Pb[i, j] + bias[j]
                activation_forward(Z, A, acts[l])
            else:
                dense_forward(prev, W, bias, Z, A, acts[l])
            prev = A
        out[g] = loss_value(_block(zbuf, n, sizes, L - 1, n), _block(abuf, n, sizes, L - 1, n), Y, loss)
