"""What an optimizer does inside, per layer and per run: the figures metrics.csv, headless and the
dashboard's internals tab show (no Textual).

- update-to-weight ratio ||d theta_l|| / ||theta_l|| of a layer (its W and b), for the epoch's last step
  and as the mean over its steps: from the kernel's per-step norms (kernels.mlp.train_chunk with
  3 L columns); the rule of thumb is ~1e-3;
- the effective per-parameter step of adaptive methods, lr x bias correction / (sqrt(v_hat) + eps) and
  the like, as its 10th, 50th and 90th percentile per layer, from the optimizer's state at the epoch's end;
- the run's scalars at the last step: the momentum coefficient applied (Demon's beta_t, NAdam's mu_t),
  Adam's bias corrections 1 - beta^t, RAdam's rho_t and whether its adaptive branch is on, and Lion's
  fraction of parameters whose update sign agrees with the gradient's.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tuilab.kernels import optimizers as K

TARGET = 1e-3  # the usual update-to-weight ratio
BAND = (1e-4, 1e-2)  # inside: fine; below: barely moving; above: steps large against the weights
SCALARS = ("momentum_t", "bias_correction1", "bias_correction2", "radam_rho", "radam_adaptive", "nadam_mu",
           "lion_agreement")
PERCENTILES = (10, 50, 90)

def has_effective_step(spec) -> bool:
    return spec.inside.effective is not None


def scalar_names(spec) -> list[str]:
    """The scalars that mean something for this optimizer, in SCALARS' order."""
    inside = spec.inside
    names = {"momentum_t"} if spec.momentum_param else set()
    names |= set(inside.bias_corrections) | set(inside.own_scalar_names)
    return [n for n in SCALARS if n in names]


def columns(n_layers: int, specs) -> list[str]:
    """metrics.csv's internals columns for an experiment whose runs use these optimizers."""
    specs = list(specs)
    ratio_names, eff_names = _names(n_layers)
    out = list(ratio_names)
    if any(has_effective_step(s) for s in specs):
        out += eff_names
    if any(s.inside.squares is not None for s in specs):
        out += [f"no_gradient_{l + 1}" for l in range(n_layers)]
    wanted = {n for s in specs for n in scalar_names(s)}
    return out + [n for n in SCALARS if n in wanted]


SAMPLED_STEPS = 32  # steps of an epoch whose update is measured (and its last): recording every step cost
# up to +71 % at batch 1 and +47 % for [784,2048,10] (benchmarks/shape_sweep.py): 3 passes over theta a step
SAMPLE_EVERY = 8  # and at most one step in this many: spirals' 2.7 ms epochs of 100 steps paid +11 % at 1 in 4
PERCENTILE_VALUES = 2048  # a layer's effective-step percentiles from at most this many of its values, evenly strided


def step_norms_buffer(steps: int, n_layers: int, internals: bool = True) -> np.ndarray:
    """An epoch's per-step norms for the kernel to fill: L columns of gradient norms and, with the
    internals, 2 L more, NaN in the steps it leaves out: every k-th step (k >= SAMPLE_EVERY) and the
    epoch's last are measured, at most SAMPLED_STEPS + 1 in all (the mean ratio is the mean over those)."""
    L = n_layers
    buf = np.zeros((steps, 3 * L if internals else L))
    if internals and steps:
        every = max(SAMPLE_EVERY, -(-steps // SAMPLED_STEPS))
        skip = np.ones(steps, bool)
        skip[every - 1::every] = False
        skip[-1] = False
        buf[skip, L:] = np.nan
    return buf


def update_ratios(grad_sq: np.ndarray, n_layers: int) -> tuple[list[float], list[float]]:
    """(the last step's, the mean over the steps measured) ||d theta_l|| / ||theta_l|| per layer, from the
    per-step norms the kernel wrote (columns L..2L: the change, 2L..3L: the parameters after it; NaN in the
    steps left out)."""
    L = n_layers
    measured = grad_sq[~np.isnan(grad_sq[:, L])] if grad_sq.shape[1] == 3 * L else grad_sq[:0]
    if len(measured) == 0:
        return [math.nan] * L, [math.nan] * L
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt(measured[:, L:2 * L] / measured[:, 2 * L:])
    ratio[~np.isfinite(ratio)] = np.nan  # a layer of zeros: no ratio to give
    return ratio[-1].tolist(), ratio.mean(axis=0).tolist()


def effective_step(opt, lr: float) -> np.ndarray | None:
    """The step each parameter takes per unit of its (bias-corrected) first moment or gradient, as the
    optimizer's last step computed it from its state: None for optimizers with no per-parameter scale."""
    if not has_effective_step(opt.spec) or opt.scal[K.S_STEP] == 0:
        return None
    scal = opt.scal
    # (a copy in float64: only for the optimizers that have a state)
    with np.errstate(divide="ignore", invalid="ignore"):
        return opt.spec.inside.effective(opt.hp, lr, opt.state.astype(np.float64), scal[K.S_STEP],
                                         scal[K.S_B1POW], scal[K.S_B2POW])


def _scalar_values(spec, hp, t, b1pow, b2pow, demon_total) -> dict:
    """scalars' figures but those of an epoch's last step on its own (Lion's), for a step count and beta powers
    that are floats or arrays."""
    out: dict = {}
    names = scalar_names(spec)
    if "momentum_t" in names:
        b = float(hp[spec.momentum_place])
        if demon_total > 0:  # beta_t as the kernel applied it at step t (counted from 1)
            out["momentum_t"] = np.vectorize(
                lambda s: float(K.demon_beta(b, s - 1.0, demon_total)) if s > 0 else b, otypes=[float])(t)
        else:
            out["momentum_t"] = np.full(np.shape(t), b)
    if "bias_correction1" in names:
        out["bias_correction1"] = 1.0 - b1pow
    if "bias_correction2" in names:
        out["bias_correction2"] = 1.0 - b2pow
    if spec.inside.own_scalars is not None:  # its own (NAdam's mu_t is its momentum_t)
        out.update(spec.inside.own_scalars(hp, t, b1pow, b2pow))
    return out


def scalars(opt, before_last_step: np.ndarray | None = None) -> dict:
    """The run's scalars at its last step (SCALARS; only those that mean something for its optimizer).
    before_last_step: the state row Inside.last_step_apart names, from before the epoch's last step (Lion's
    momentum: its gradient is recovered from the change)."""
    spec, scal = opt.spec, opt.scal
    out = _scalar_values(spec, opt.hp, scal[K.S_STEP], scal[K.S_B1POW], scal[K.S_B2POW], scal[K.S_DEMON_T])
    if spec.inside.last_step is not None:
        out.update(dict.fromkeys(spec.inside.own_scalar_names, math.nan))
        if before_last_step is not None:
            out.update(spec.inside.last_step(opt.hp, opt.state, before_last_step))
    return {k: float(v) for k, v in out.items()}


POINT_COLUMNS = ("step_x", "step_y", "eff_step_x", "eff_step_y", "momentum_t", "bias_correction1",
                 "bias_correction2", "radam_rho", "radam_adaptive")  # a surface trajectory's, in trajectory.csv


def trajectory_internals(opt, inner: np.ndarray) -> dict[str, np.ndarray]:
    """The optimizer inside at each kept point of a surface run, from the rows kernels.surfaces wrote
    (the last step's dx, dy; scal; state): the step (velocity) vector, the effective step per coordinate
    (lr where the rule has no per-parameter scale: SGD, momentum, QHM; ASGD's eta), and the scalars of
    POINT_COLUMNS that mean something for the optimizer. NaN at step 0."""
    spec, n = opt.spec, len(inner)
    out = {"step_x": inner[:, 0].copy(), "step_y": inner[:, 1].copy()}
    if spec.closure is not None or n == 0:
        return out
    scal = inner[:, 2:2 + opt.scal.size]
    state = inner[:, 2 + opt.scal.size:].reshape(n, -1, 2).transpose(1, 0, 2)  # slots, points, (x, y)
    t, b1pow, b2pow = (scal[:, k] for k in (K.S_STEP, K.S_B1POW, K.S_B2POW))
    started = t > 0
    eff = None
    if has_effective_step(spec):
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.asarray(spec.inside.effective(opt.hp, opt.lr, state, t[:, None], b1pow[:, None],
                                                   b2pow[:, None]), np.float64)
    elif spec.inside.point_step == "lr":
        eff = np.full((n, 2), float(opt.lr))
    elif spec.inside.point_step == "eta":
        eff = np.repeat(scal[:, K.S_ETA, None], 2, axis=1)
    if eff is not None:
        eff = np.where(started[:, None], eff, np.nan)
        out["eff_step_x"], out["eff_step_y"] = eff[:, 0], eff[:, 1]
    values = _scalar_values(spec, opt.hp, t, b1pow, b2pow, opt.scal[K.S_DEMON_T])
    for name in POINT_COLUMNS[4:]:
        if name in values:
            out[name] = np.where(started, np.asarray(values[name], np.float64), np.nan)
    return out


def epoch_internals(opt, layout, lr: float, grad_sq: np.ndarray, before_last_step=None) -> dict:
    """Every internals column of one epoch's end (update ratios, effective-step percentiles, scalars)."""
    L = layout.n_layers
    last, mean = update_ratios(grad_sq, L)
    ratio_names, eff_names = _names(L)
    out = dict(zip(ratio_names, last + mean, strict=True))
    eff = effective_step(opt, lr)
    if eff is not None:
        slot, at = opt.spec.inside.squares, opt.spec.inside.floor
        floor = opt.hp[at] if at is not None else 0.0
        never = opt.state[slot] <= opt.state.dtype.type(floor) if slot is not None else None  # in its dtype
        found = []
        for l in range(L):
            part = eff[layout.layer_slice(l)]
            if never is not None:  # the percentiles of steps taken; the rest counted apart
                gone = never[layout.layer_slice(l)]
                out[f"no_gradient_{l + 1}"] = float(gone.mean()) if len(gone) else math.nan
                part = part[~gone] if gone.any() else part
            found += percentiles(part)
        out.update(zip(eff_names, found, strict=True))
    out.update(scalars(opt, before_last_step))
    return out


def percentiles(values: np.ndarray) -> list[float]:
    """PERCENTILES of the finite values (of a strided sample of PERCENTILE_VALUES when there are more),
    interpolated as np.percentile does, from one partition: np.percentile itself cost ~150 us a layer in
    Python each epoch, a fifth of an epoch of a small net such as spirals'."""
    if len(values) > PERCENTILE_VALUES:  # a large layer's percentiles from an even sample of it
        values = values[::-(-len(values) // PERCENTILE_VALUES)]
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    if len(values) == 0:
        return [math.nan] * len(PERCENTILES)
    kth, lo, hi, frac = _order_statistics(len(values))
    part = np.partition(values, kth)
    a = part[lo]
    return (a + (part[hi] - a) * frac).tolist()


@functools.lru_cache(maxsize=64)
def _order_statistics(n: int):
    pos = np.array(PERCENTILES, np.float64) / 100.0 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    return np.unique(np.concatenate([lo, hi])), lo, hi, pos - lo


@functools.lru_cache(maxsize=16)
def _names(n_layers: int) -> tuple[list[str], list[str]]:
    """The ratio columns (last, then mean) and the effective-step columns (layer by layer, p10 p50 p90)."""
    L = n_layers
    return ([f"update_ratio_{l + 1}" for l in range(L)] + [f"update_ratio_mean_{l + 1}" for l in range(L)],
            [f"eff_step_p{p}_{l + 1}" for l in range(L) for p in PERCENTILES])


VANISHED = 1e-2  # a layer whose gradient is below this share of the last layer's: it vanished on the way back


def verdict(ratio: float, gradient_share: float = math.nan) -> str:
    """Words for an update-to-weight ratio against the band around 1e-3. gradient_share: the layer's gradient
    norm over the last layer's. A layer barely moving because its gradient vanished is said so: the learning
    rate is the same for every layer, and raising it would not mend the first layers (issue 29)."""
    if not math.isfinite(ratio):
        return ""
    if ratio < BAND[0] / 10:
        if gradient_share < VANISHED:
            return (f"barely moving: its gradient vanished on the way back ({gradient_share:.1e} of the last "
                    "layer's); the learning rate is the same for every layer")
        return "barely moving: the learning rate may be too small for this layer"
    if ratio > BAND[1] * 10:
        return "steps large against the weights: the learning rate may be too large"
    if ratio < BAND[0]:
        return "slow"
    if ratio > BAND[1]:
        return "fast"
    return "in the usual band"


def why_it_vanishes(grad_norms, metrics: dict, activations=None) -> str:
    """One line on the gradient's fall from the last layer to the first, split into its per-layer factors: "each
    layer passes back about 0.24 of the gradient (mean f'(z) 0.19): 8 layers: 1.5e-05". Empty without health
    figures or a fall worth a word."""
    g = [x for x in grad_norms]
    L = len(g)
    dact = [metrics.get(f"dact_mean_{l + 1}", math.nan) for l in range(L - 1)]
    if L < 2 or not all(math.isfinite(x) and x > 0 for x in g) or not all(math.isfinite(d) for d in dact):
        return ""
    fall = g[0] / g[-1]
    each = fall ** (1.0 / (L - 1))
    mean_dact = sum(dact) / len(dact)
    name = "f'(z)" if not activations or len(set(activations)) != 1 else {
        "sigmoid": "σ'(z)", "tanh": "tanh'(z)", "relu": "relu'(z)"}.get(activations[0], "f'(z)")
    text = (f"each layer passes back about {each:.2g} of the gradient (mean {name} {mean_dact:.2g}): "
            f"{L - 1} layers: {fall:.1e}")
    if fall < VANISHED:
        return text + ": it vanishes"
    return text
