"""Activation health per hidden layer, on a fixed probe batch of training rows (issue 29): the mean derivative
of its activation (the factor by which the layer scales the gradient going back: a sigmoid's is at most 1/4),
the share of saturated (unit, row) pairs, the share of dead ReLU units, and the activations' mean and spread.

These are why a deep sigmoid net's first layers barely learn: the gradient reaching layer l is the last layer's
times, for each layer above it, its weights' gain and its mean f'(z); eight sigmoid layers at about 0.2 each
leave ~1e-5 of it. Recorded with the optimizer's internals (train.internals), in metrics.csv as
dact_mean_l, saturated_l, dead_l, act_mean_l, act_std_l for each hidden layer l, and act_hist_l: the
activations' histogram as one cell, "min max c0 c1 ... c23" (counts of (unit, row) pairs in equal bins from min
to max), which the dashboard draws over the epochs as a heat strip per layer (TensorBoard's "distributions").
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


HISTOGRAM = "act_hist"  # the column name's stem: act_hist_1, act_hist_2, ...


@functools.lru_cache(maxsize=16)
def columns(n_layers: int) -> list[str]:
    """metrics.csv's health columns for a network of n_layers weight layers (n_layers - 1 hidden ones)."""
    return ([f"{name}_{l + 1}" for l in range(n_layers - 1) for name in FIGURES]
            + [f"{HISTOGRAM}_{l + 1}" for l in range(n_layers - 1)])


def histogram_cell(lo: float, hi: float, counts) -> str:
    """One metrics.csv cell for a histogram: "min max c0 c1 ...". Plain text, so that every way records are
    written, reopened and resumed carries it as it carries a number."""
    return f"{lo:.6g} {hi:.6g} " + " ".join(str(int(c)) for c in counts)


def read_histogram(cell) -> tuple[float, float, np.ndarray] | None:
    """(min, max, counts) from a histogram cell; None for an empty or unreadable one (an epoch without
    internals, a diverged run, a hand-edited file)."""
    if not isinstance(cell, str):
        return None
    parts = cell.split()
    try:
        lo, hi, counts = float(parts[0]), float(parts[1]), np.array([float(c) for c in parts[2:]])
    except (ValueError, IndexError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi >= lo) or len(counts) == 0 or counts.sum() <= 0:
        return None
    return lo, hi, counts


def _cdf(lo: float, hi: float, counts: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The share of a histogram's mass below each value of at, the mass spread evenly within each bin (a bin
    of zero width, min == max, is a step)."""
    share = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
    if hi <= lo:
        return (at >= lo).astype(np.float64)
    return np.interp(at, np.linspace(lo, hi, len(counts) + 1), share)


def density_grid(histograms, rows: int, clip: float = 0.005) -> tuple[float, float, np.ndarray]:
    """The histograms of one layer over epochs on a common value axis: (lo, hi, grid) with grid[r, e] the share
    of epoch e's activations in the r-th of rows equal bins from lo (r = 0) to hi. The axis spans every epoch's
    values but the outer clip share at each end (a few outliers would squeeze the rest into one bin); the mass
    beyond it counts in the end bins. histograms: (min, max, counts) each."""
    if not histograms:
        return 0.0, 1.0, np.zeros((rows, 0))
    los, his = [], []
    for lo, hi, counts in histograms:
        if hi <= lo:
            los.append(lo)
            his.append(hi)
            continue
        edges = np.linspace(lo, hi, 201)
        cdf = _cdf(lo, hi, counts, edges)
        q_lo = float(np.interp(clip, cdf, edges))  # the clip-quantiles: cdf is non-decreasing
        q_hi = float(np.interp(1 - clip, cdf, edges))
        near = (q_hi - q_lo) / (2 * rows)  # an end within half a bin of its quantile is kept (ReLU's 0)
        los.append(lo if q_lo - lo < near else q_lo)
        his.append(hi if hi - q_hi < near else q_hi)
    lo, hi = min(los), max(his)
    if hi <= lo:  # every value the same (a dead layer): one band in the middle
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, rows + 1)
    edges[0], edges[-1] = -np.inf, np.inf  # what lies beyond the axis counts at its ends
    grid = np.empty((rows, len(histograms)))
    for e, (a, b, counts) in enumerate(histograms):
        cdf = _cdf(a, b, counts, edges)
        cdf[0], cdf[-1] = 0.0, 1.0
        grid[:, e] = np.diff(cdf)
    return lo, hi, grid


PROBE_SHARE = 8  # the probe is at most 1/8 of the training rows (but at least PROBE_LEAST, or all of them)
PROBE_LEAST = 64


def probe_rows(n_rows: int, size: int = PROBE_ROWS) -> np.ndarray:
    """The probe batch's rows: evenly spread over the training set, the same every epoch (no generator: the
    data order's generator is the run's own). On a small set a 512-row probe would cost as much as a third of an
    epoch's training (spirals' 1,400 rows: +3.1 % of its training time); an eighth of the rows keeps it near 1 %."""
    if not n_rows:
        return np.zeros(0, int)
    rows = min(size, n_rows, max(n_rows // PROBE_SHARE, PROBE_LEAST))
    return np.unique(np.linspace(0, n_rows - 1, rows).astype(np.int64))


def activation_health(net, theta: np.ndarray, X: np.ndarray) -> dict:
    """Every health column of a network on the probe rows X; NaN where a figure means nothing for the layer's
    activation (saturation of a ReLU, death of a sigmoid)."""
    hidden = net.layout.n_layers - 1
    if hidden < 1 or len(X) == 0:
        return {}
    L = net.layout
    out = np.zeros((hidden, K.N_FIGURES))
    bounds = np.zeros((hidden, 2))
    hist = np.zeros((hidden, K.HIST_BINS), np.int64)
    deriv_max = np.array([DERIV_MAX[a] for a in net.activations[:hidden]], np.float64)
    K.layer_health(theta, X, L.w_off, L.b_off, L.sizes, net.acts, deriv_max, out, bounds, hist)
    found = {}
    for l, act in enumerate(net.activations[:hidden]):
        row = out[l].tolist()
        row[K.F_SATURATED] = row[K.F_SATURATED] if act in SATURATING else math.nan
        row[K.F_DEAD] = row[K.F_DEAD] if act in DYING else math.nan
        found.update({f"{name}_{l + 1}": v for name, v in zip(FIGURES, row, strict=True)})
        lo, hi = bounds[l]
        found[f"{HISTOGRAM}_{l + 1}"] = histogram_cell(lo, hi, hist[l]) if hist[l].sum() else None
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
