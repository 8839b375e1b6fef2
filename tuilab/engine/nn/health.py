"""Activation health per hidden layer, on a fixed probe batch of training rows (issue 29): the mean derivative
of its activation (the factor by which the layer scales the gradient going back: a sigmoid's is at most 1/4),
the share of saturated (unit, row) pairs, the share of dead ReLU units, and the activations' mean and spread.

These are why a deep sigmoid net's first layers barely learn: the gradient reaching layer l is the last layer's
times, for each layer above it, its weights' gain and its mean f'(z); eight sigmoid layers at about 0.2 each
leave ~1e-5 of it. Recorded with the optimizer's internals (train.internals), in metrics.csv as
dact_mean_l, saturated_l, dead_l, act_mean_l, act_std_l for each hidden layer l.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tuilab.kernels import health as K

FIGURES = ("dact_mean", "saturated", "dead", "act_mean", "act_std")  # in kernels.health's column order
PROBE_ROWS = 512
# f'(z)'s largest value, per activation: what "saturated" is measured against (below 5 % of it)
DERIV_MAX = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "elu": 1.0, "softplus": 1.0,
             "gelu": 1.1289, "identity": 1.0}
SATURATING = {"sigmoid", "tanh", "elu", "softplus", "gelu"}  # f'(z) -> 0 far out: saturated_l means something
DYING = {"relu"}  # exactly 0 for every z < 0: a unit can die, dead_l means something


@functools.lru_cache(maxsize=16)
def columns(n_layers: int) -> list[str]:
    """metrics.csv's health columns for a network of n_layers weight layers (n_layers - 1 hidden ones)."""
    return [f"{name}_{l + 1}" for l in range(n_layers - 1) for name in FIGURES]


def probe_rows(n_rows: int, size: int = PROBE_ROWS) -> np.ndarray:
    """The probe batch's rows: evenly spread over the training set, the same every epoch (no generator: the
    data order's generator is the run's own)."""
    return np.unique(np.linspace(0, n_rows - 1, min(size, n_rows)).astype(np.int64)) if n_rows else np.zeros(0, int)


def activation_health(net, theta: np.ndarray, X: np.ndarray) -> dict:
    """Every health column of a network on the probe rows X; NaN where a figure means nothing for the layer's
    activation (saturation of a ReLU, death of a sigmoid)."""
    hidden = net.layout.n_layers - 1
    if hidden < 1 or len(X) == 0:
        return {}
    L = net.layout
    out = np.zeros((hidden, K.N_FIGURES))
    deriv_max = np.array([DERIV_MAX[a] for a in net.activations[:hidden]], np.float64)
    K.layer_health(theta, X, L.w_off, L.b_off, L.sizes, net.acts, deriv_max, out)
    found = {}
    for l, act in enumerate(net.activations[:hidden]):
        row = out[l].tolist()
        row[K.F_SATURATED] = row[K.F_SATURATED] if act in SATURATING else math.nan
        row[K.F_DEAD] = row[K.F_DEAD] if act in DYING else math.nan
        found.update({f"{name}_{l + 1}": v for name, v in zip(FIGURES, row, strict=True)})
    return found


def gradient_fall(grad_norms, dact) -> list[tuple[float, float]]:
    """Layer by layer from the last: (the measured |g_l| / |g_l+1|, the mean f'(z) of layer l's activation)
    for l = L-1 .. 1: the gradient's fall split into its per-layer factors. Their product is |g_1| / |g_L|."""
    out = []
    for l in range(len(grad_norms) - 2, -1, -1):
        above = grad_norms[l + 1]
        share = grad_norms[l] / above if above > 0 else math.nan
        out.append((share, dact[l] if l < len(dact) else math.nan))
    return out
