"""What each optimizer does inside, as formulas over its state: the knowledge that internals shows, one `Inside`
a step kernel, hung on every registry entry that uses the kernel (OptimizerSpec.inside).

Every formula indexes hp and state by the kernel's named places (kernels.optimizers.positions), so it reads
the numbers the kernel reads. `state` has the slots first and may carry more axes after them (a surface
trajectory's recorded points); t, b1pow and b2pow are floats or arrays that broadcast against a state row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tuilab.kernels import optimizers as K


@dataclass(frozen=True)
class Inside:
    """What internals can show of one step kernel; None or empty where the optimizer has no such figure."""

    # (hp, lr, state, t, b1pow, b2pow) -> the step each parameter takes per unit of its (bias-corrected)
    # first moment or gradient, as the kernel's last step computed it
    effective: Callable | None = None
    squares: int | None = None  # the state row of each parameter's accumulated g^2 (or |g|): no gradient yet
    floor: int | None = None  # ... while that row is at this hp (Adamax's u starts at eps), else at 0
    bias_corrections: tuple[str, ...] = ()  # of "bias_correction1", "bias_correction2": the beta powers it keeps
    # (hp, t, b1pow, b2pow) -> its own scalars (internals.SCALARS: RAdam's rho_t, NAdam's mu_t as momentum_t)
    own_scalars: Callable | None = None
    own_scalar_names: tuple[str, ...] = ()
    point_step: str | None = None  # a surface point's step with no per-parameter scale: "lr" or "eta" (ASGD)
    # scalars from an epoch's last step that need a state row from before it (Lion's sign agreement): the
    # trainer runs that step on its own and keeps row `last_step_apart`; (hp, state, row before) -> scalars
    last_step_apart: int | None = None
    last_step: Callable | None = None


def radam_rho(b2, t, b2pow):
    """RAdam's rho_t = rho_inf - 2 t b2^t / (1 - b2^t) (NaN before the first step)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 / (1.0 - b2) - 1.0 - 2.0 * np.asarray(t) * b2pow / (1.0 - np.asarray(b2pow))


def _adagrad(hp, lr, state, t, b1pow, b2pow):
    """lr / (1 + (t - 1) lr_decay) / (sqrt(sum) + eps)"""
    H = K.ADAGRAD_HP
    return lr / (1.0 + (t - 1.0) * hp[H.lr_decay]) / (np.sqrt(state[K.ADAGRAD_STATE.sum]) + hp[H.eps])


def _rmsprop(hp, lr, state, t, b1pow, b2pow):
    """lr / (sqrt(v - gbar^2 if centered else v) + eps)"""
    H, S = K.RMSPROP_HP, K.RMSPROP_STATE
    v = state[S.square_avg] - state[S.grad_avg] ** 2 if hp[H.centered] else state[S.square_avg]
    return lr / (np.sqrt(v) + hp[H.eps])


def _adadelta(hp, lr, state, t, b1pow, b2pow):
    """lr sqrt(u + eps) / sqrt(v + eps)"""
    eps, S = hp[K.ADADELTA_HP.eps], K.ADADELTA_STATE
    return lr * np.sqrt(state[S.acc_delta] + eps) / np.sqrt(state[S.square_avg] + eps)


def _adam(hp, lr, state, t, b1pow, b2pow):
    """(lr / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps), v the running max with amsgrad"""
    H, S = K.ADAM_HP, K.ADAM_STATE
    v = state[S.max_exp_avg_sq] if hp[H.amsgrad] else state[S.exp_avg_sq]
    return (lr / (1.0 - b1pow)) / (np.sqrt(v) / np.sqrt(1.0 - b2pow) + hp[H.eps])


def _nadam(hp, lr, state, t, b1pow, b2pow):
    """the scale of both of its terms: lr / (sqrt(v / (1 - b2^t)) + eps)"""
    return lr / (np.sqrt(state[K.NADAM_STATE.exp_avg_sq] / (1.0 - b2pow)) + hp[K.NADAM_HP.eps])


def _radam(hp, lr, state, t, b1pow, b2pow):
    """lr r_t sqrt(1 - b2^t) / (sqrt(v) + eps) / (1 - b1^t) while rho_t > 5, else lr / (1 - b1^t) for all"""
    H = K.RADAM_HP
    bc1, bc2 = 1.0 - b1pow, 1.0 - b2pow
    rho, rho_inf = radam_rho(hp[H.betas_1], t, b2pow), 2.0 / (1.0 - hp[H.betas_1]) - 1.0
    rect = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    adaptive = lr * rect * np.sqrt(bc2) / (np.sqrt(state[K.RADAM_STATE.exp_avg_sq]) + hp[H.eps]) / bc1
    return np.where(rho > 5.0, adaptive, np.broadcast_to(lr / bc1, np.shape(adaptive)))


def _adamax(hp, lr, state, t, b1pow, b2pow):
    """(lr / (1 - b1^t)) / u"""
    return (lr / (1.0 - b1pow)) / state[K.ADAMAX_STATE.exp_inf]


def _qhadam(hp, lr, state, t, b1pow, b2pow):
    """the denominator's nu2 part (this step's g^2 aside): lr / (sqrt(nu2 v / (1 - b2^t)) + eps)"""
    H = K.QHADAM_HP
    return lr / (np.sqrt(hp[H.nus_1] * state[K.QHADAM_STATE.exp_avg_sq] / (1.0 - b2pow)) + hp[H.eps])


def _rprop(hp, lr, state, t, b1pow, b2pow):
    """each parameter's own step size"""
    return state[K.RPROP_STATE.step_size].copy()


def _radam_scalars(hp, t, b1pow, b2pow) -> dict:
    rho = radam_rho(hp[K.RADAM_HP.betas_1], t, b2pow)
    return {"radam_rho": rho, "radam_adaptive": np.where(np.isfinite(rho), rho > 5.0, np.nan)}


def _nadam_scalars(hp, t, b1pow, b2pow) -> dict:
    """mu_t = b1 (1 - 0.5 * 0.96^(t psi)): the momentum coefficient NAdam applies"""
    H = K.NADAM_HP
    mu = hp[H.betas_0] * (1.0 - 0.5 * 0.96 ** (t * hp[H.momentum_decay]))
    return {"momentum_t": mu, "nadam_mu": mu}


def _lion_agreement(hp, state, before) -> dict:
    """the share of moving parameters whose update sign(b1 m + (1 - b1) g) agrees with sign(g), g recovered from
    m_t = b2 m_{t-1} + (1 - b2) g_t"""
    H = K.LION_HP
    b1, b2 = hp[H.betas_0], hp[H.betas_1]
    m_now, m_then = state[K.LION_STATE.exp_avg].astype(np.float64), before.astype(np.float64)
    g = (m_now - b2 * m_then) / (1.0 - b2)
    update = b1 * m_then + (1.0 - b1) * g
    moving = g != 0
    agree = float(np.mean(np.sign(update[moving]) == np.sign(g[moving]))) if moving.any() else float("nan")
    return {"lion_agreement": agree}


_BOTH = ("bias_correction1", "bias_correction2")
NOTHING = Inside()
SGD = Inside(point_step="lr")
ADAGRAD = Inside(_adagrad, squares=K.ADAGRAD_STATE.sum)
RMSPROP = Inside(_rmsprop, squares=K.RMSPROP_STATE.square_avg)
ADADELTA = Inside(_adadelta, squares=K.ADADELTA_STATE.square_avg)
ADAM = Inside(_adam, squares=K.ADAM_STATE.exp_avg_sq, bias_corrections=_BOTH)
NADAM = Inside(_nadam, squares=K.NADAM_STATE.exp_avg_sq, bias_corrections=("bias_correction2",),
               own_scalars=_nadam_scalars, own_scalar_names=("momentum_t", "nadam_mu"))
RADAM = Inside(_radam, squares=K.RADAM_STATE.exp_avg_sq, bias_corrections=_BOTH, own_scalars=_radam_scalars,
               own_scalar_names=("radam_rho", "radam_adaptive"))
ADAMAX = Inside(_adamax, squares=K.ADAMAX_STATE.exp_inf, floor=K.ADAMAX_HP.eps,
                bias_corrections=("bias_correction1",))
QHM = Inside(point_step="lr")
QHADAM = Inside(_qhadam, squares=K.QHADAM_STATE.exp_avg_sq, bias_corrections=_BOTH)
LION = Inside(own_scalar_names=("lion_agreement",), last_step_apart=K.LION_STATE.exp_avg, last_step=_lion_agreement)
RPROP = Inside(_rprop)
ASGD = Inside(point_step="eta")
