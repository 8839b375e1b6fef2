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

_ADAPTIVE = {K.adagrad_step, K.rmsprop_step, K.adadelta_step, K.adam_step, K.nadam_step, K.radam_step,
             K.adamax_step, K.qhadam_step, K.rprop_step}
# the state slot that accumulates each parameter's squared (or absolute) gradient: zero there means the
# parameter has had no gradient yet (a dead unit's weights), and its "effective step" is lr / eps, no step.
# Adamax's u = max(b2 u, |g| + eps) starts from eps, not 0: its floor is its eps (hp[2])
_SQUARES_SLOT = {K.adagrad_step: 0, K.rmsprop_step: 0, K.adadelta_step: 0, K.adam_step: 1, K.nadam_step: 1,
                 K.radam_step: 1, K.adamax_step: 1, K.qhadam_step: 1}
_FLOOR_HP = {K.adamax_step: 2}
_BC1 = {K.adam_step, K.radam_step, K.adamax_step, K.qhadam_step}  # kernels keeping beta1's running power
_BC2 = {K.adam_step, K.radam_step, K.qhadam_step, K.nadam_step}


def has_effective_step(spec) -> bool:
    return spec.closure is None and spec.step in _ADAPTIVE


def scalar_names(spec) -> list[str]:
    """The scalars that mean something for this optimizer."""
    if spec.closure is not None:
        return []
    step = spec.step
    names = ["momentum_t"] if spec.momentum_param or step is K.nadam_step else []
    names += ["bias_correction1"] if step in _BC1 else []
    names += ["bias_correction2"] if step in _BC2 else []
    names += ["radam_rho", "radam_adaptive"] if step is K.radam_step else []
    names += ["nadam_mu"] if step is K.nadam_step else []
    names += ["lion_agreement"] if step is K.lion_step else []
    return names


def columns(n_layers: int, specs) -> list[str]:
    """metrics.csv's internals columns for an experiment whose runs use these optimizers."""
    specs = list(specs)
    ratio_names, eff_names = _names(n_layers)
    out = list(ratio_names)
    if any(has_effective_step(s) for s in specs):
        out += eff_names
    if any(s.closure is None and s.step in _SQUARES_SLOT for s in specs):
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


def _radam_rho(b2, t, b2pow):
    """RAdam's rho_t = rho_inf - 2 t b2^t / (1 - b2^t) (NaN before the first step)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 / (1.0 - b2) - 1.0 - 2.0 * np.asarray(t) * b2pow / (1.0 - np.asarray(b2pow))


def _effective(spec, hp, lr, state, t, b1pow, b2pow):
    """effective_step's figures from an optimizer's state (slots first) and its step count and beta
    powers: floats, or arrays that broadcast against state[0] (a trajectory's recorded points)."""
    step = spec.step
    bc1, bc2 = 1.0 - b1pow, 1.0 - b2pow
    with np.errstate(divide="ignore", invalid="ignore"):
        if step is K.adagrad_step:  # hp: lr_decay, weight_decay, eps
            return lr / (1.0 + (t - 1.0) * hp[0]) / (np.sqrt(state[0]) + hp[2])
        if step is K.rmsprop_step:  # hp: alpha, eps, weight_decay, momentum, centered
            v = state[0] - state[2] ** 2 if hp[4] else state[0]
            return lr / (np.sqrt(v) + hp[1])
        if step is K.adadelta_step:  # hp: rho, eps
            return lr * np.sqrt(state[1] + hp[1]) / np.sqrt(state[0] + hp[1])
        if step is K.adam_step:  # hp: betas, eps, wd, amsgrad
            v = state[2] if hp[4] else state[1]
            return (lr / bc1) / (np.sqrt(v) / np.sqrt(bc2) + hp[2])
        if step is K.nadam_step:  # the scale of both of its terms: lr / (sqrt(v / bc2) + eps)
            return lr / (np.sqrt(state[1] / bc2) + hp[2])
        if step is K.radam_step:
            rho, rho_inf = _radam_rho(hp[1], t, b2pow), 2.0 / (1.0 - hp[1]) - 1.0
            rect = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            adaptive = lr * rect * np.sqrt(bc2) / (np.sqrt(state[1]) + hp[2]) / bc1
            # its SGD-with-momentum branch (rho_t <= 5): one step for all
            return np.where(rho > 5.0, adaptive, np.broadcast_to(lr / bc1, np.shape(adaptive)))
        if step is K.adamax_step:  # hp: betas, eps
            return (lr / bc1) / state[1]
        if step is K.qhadam_step:  # hp: betas, nus, eps: the denominator's nu2 part (this step's g^2 aside)
            return lr / (np.sqrt(hp[3] * state[1] / bc2) + hp[4])
        if step is K.rprop_step:  # each parameter's own step size
            return state[1].copy()
    return None


def effective_step(opt, lr: float) -> np.ndarray | None:
    """The step each parameter takes per unit of its (bias-corrected) first moment or gradient, as the
    optimizer's last step computed it from its state: None for optimizers with no per-parameter scale."""
    if not has_effective_step(opt.spec) or opt.scal[K.S_STEP] == 0:
        return None
    scal = opt.scal
    # (a copy in float64: only for the optimizers that have a state)
    return _effective(opt.spec, opt.hp, lr, opt.state.astype(np.float64), scal[K.S_STEP], scal[K.S_B1POW],
                      scal[K.S_B2POW])


def _scalar_values(spec, hp, t, b1pow, b2pow, demon_total) -> dict:
    """scalars' figures but Lion's, for a step count and beta powers that are floats or arrays."""
    out: dict = {}
    names = scalar_names(spec)
    if "momentum_t" in names:
        if spec.step is K.nadam_step:
            out["momentum_t"] = hp[0] * (1.0 - 0.5 * 0.96 ** (t * hp[4]))
        else:
            from tuilab.engine.nn.optim import _flat_names

            b = float(hp[_flat_names(spec).index(spec.momentum_param)])
            if demon_total > 0:  # beta_t as the kernel applied it at step t (counted from 1)
                out["momentum_t"] = np.vectorize(
                    lambda s: float(K.demon_beta(b, s - 1.0, demon_total)) if s > 0 else b, otypes=[float])(t)
            else:
                out["momentum_t"] = np.full(np.shape(t), b)
    if "bias_correction1" in names:
        out["bias_correction1"] = 1.0 - b1pow
    if "bias_correction2" in names:
        out["bias_correction2"] = 1.0 - b2pow
    if "radam_rho" in names:
        rho = _radam_rho(hp[1], t, b2pow)
        out["radam_rho"], out["radam_adaptive"] = rho, np.where(np.isfinite(rho), rho > 5.0, np.nan)
    if "nadam_mu" in names:
        out["nadam_mu"] = out["momentum_t"]
    return out


def scalars(opt, lion_before: np.ndarray | None = None) -> dict:
    """The run's scalars at its last step (SCALARS; only those that mean something for its optimizer).
    lion_before: Lion's momentum before the last step (its gradient is recovered from the change)."""
    spec, hp, scal = opt.spec, opt.hp, opt.scal
    out = _scalar_values(spec, hp, scal[K.S_STEP], scal[K.S_B1POW], scal[K.S_B2POW], scal[K.S_DEMON_T])
    if "lion_agreement" in scalar_names(spec):
        out["lion_agreement"] = math.nan
        if lion_before is not None:
            b1, b2 = hp[0], hp[1]
            m_now, m_then = opt.state[0].astype(np.float64), lion_before.astype(np.float64)
            g = (m_now - b2 * m_then) / (1.0 - b2)  # m_t = b2 m_{t-1} + (1 - b2) g_t
            update = b1 * m_then + (1.0 - b1) * g  # its sign is the step's direction
            moving = g != 0
            if moving.any():
                out["lion_agreement"] = float(np.mean(np.sign(update[moving]) == np.sign(g[moving])))
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
        eff = np.asarray(_effective(spec, opt.hp, opt.lr, state, t[:, None], b1pow[:, None], b2pow[:, None]),
                         np.float64)
    elif spec.step in (K.sgd_step, K.qhm_step):
        eff = np.full((n, 2), float(opt.lr))
    elif spec.step is K.asgd_step:
        eff = np.repeat(scal[:, K.S_ETA, None], 2, axis=1)
    if eff is not None:
        eff = np.where(started[:, None], eff, np.nan)
        out["eff_step_x"], out["eff_step_y"] = eff[:, 0], eff[:, 1]
    values = _scalar_values(spec, opt.hp, t, b1pow, b2pow, opt.scal[K.S_DEMON_T])
    for name in POINT_COLUMNS[4:]:
        if name in values:
            out[name] = np.where(started, np.asarray(values[name], np.float64), np.nan)
    return out


def epoch_internals(opt, layout, lr: float, grad_sq: np.ndarray, lion_before=None) -> dict:
    """Every internals column of one epoch's end (update ratios, effective-step percentiles, scalars)."""
    L = layout.n_layers
    last, mean = update_ratios(grad_sq, L)
    ratio_names, eff_names = _names(L)
    out = dict(zip(ratio_names, last + mean, strict=True))
    eff = effective_step(opt, lr)
    if eff is not None:
        slot = _SQUARES_SLOT.get(opt.spec.step)
        floor = opt.hp[_FLOOR_HP[opt.spec.step]] if opt.spec.step in _FLOOR_HP else 0.0
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
    out.update(scalars(opt, lion_before))
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


def verdict(ratio: float) -> str:
    """Words for an update-to-weight ratio against the band around 1e-3."""
    if not math.isfinite(ratio):
        return ""
    if ratio < BAND[0] / 10:
        return "barely moving: the learning rate may be too small for this layer"
    if ratio > BAND[1] * 10:
        return "steps large against the weights: the learning rate may be too large"
    if ratio < BAND[0]:
        return "slow"
    if ratio > BAND[1]:
        return "fast"
    return "in the usual band"
