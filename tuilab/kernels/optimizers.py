"""Optimizer update kernels over one flat parameter vector.

Every kernel has the same signature, step(theta, grad, state, scal, hp, lr):

- theta, grad: 1-D arrays of one float dtype; theta is updated in place (grad is the step's own
  buffer, which maximize negates);
- state: 2-D array (slots, len(theta)) of that dtype: the optimizer's moment buffers;
- scal: float64 scalar state, see the S_* indices (step count, running beta powers, ...);
- hp: float64 hyperparameters, positional, as each docstring lists them;
- lr: this step's learning rate.

The element arithmetic follows torch.optim's single-tensor code, in the same order,
so float64 trajectories agree with PyTorch to ~1e-15. Scalars are cast to theta's
dtype before the element loop so float32 loops stay float32 (and vectorise), and
switches (weight decay on, momentum on, ...) are read into locals first: a test of
hp[k] inside the loop is a load LLVM cannot hoist (hp might alias theta), which
keeps the loop scalar.
Weight decay is L2 (added to the gradient) unless `decoupled`, then
theta <- theta * (1 - lr * wd) before the adaptive step (AdamW), never in a denominator.

One module over 400 lines, on purpose: every step kernel sits beside its named places (positions) and the
table the dispatch is generated from (STEP_KERNELS, LAYOUT_OF), and numba's cache sees a change in one file only
(a kernel calling into another file keeps a stale cached copy).
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from tuilab.kernels._jit import fma, kernel, like
from tuilab.kernels.copies import copy_into

# scal: float64 scalar state
S_STEP = 0  # steps taken, including the current one while a kernel runs
S_B1POW = 1  # product of beta1 over the steps taken (incremental bias correction)
S_B2POW = 2  # product of beta2 over the steps taken
S_MU_PRODUCT = 3  # NAdam's running product of mu_t
S_DEMON_T = 4  # Demon: total steps T (0: Demon off)
S_DEMON_IDX = 5  # Demon: index in hp of the momentum coefficient it decays
S_MAXIMIZE = 6  # 1: ascend (torch's maximize): the gradient is negated before the rule sees it
S_ETA = 7  # ASGD: this step's step size eta (starts at lr)
S_MU = 8  # ASGD: this step's averaging weight mu (starts at 1)
S_REST = 9  # Muon: where in hp its rest optimizer's block starts (0: no rest), see rest_step
N_SCALARS = 10


def positions(name: str, *entries: str):
    """Names for the places of a vector, given once and in order: "betas:2" takes two places (betas_0 and
    betas_1). Each optimizer's hp vector and state rows are named here, and the kernel, the registry (its
    hp_order and slots, engine.nn.optim) and internals all index by these names. Numba reads a global
    namedtuple's fields as constants, so `hp[ADAM_HP.eps]` compiles as `hp[2]` did."""
    fields, grouped = [], []
    for entry in entries:
        base, _, width = entry.partition(":")
        fields += [f"{base}_{k}" for k in range(int(width))] if width else [base]
        grouped.append((base, int(width or 1)))
    cls = namedtuple(name, fields)
    cls.grouped = tuple(grouped)  # (name, width) in order: what the registry calls hp_order and widths
    return cls(*range(len(fields)))


# Each kernel's hyperparameters (hp, float64; a switch is 0 or 1, a word its index) and state rows.
SGD_HP = positions("SgdHp", "momentum", "dampening", "weight_decay", "nesterov")
SGD_STATE = positions("SgdState", "momentum_buffer")
ADAGRAD_HP = positions("AdagradHp", "lr_decay", "weight_decay", "eps")
ADAGRAD_STATE = positions("AdagradState", "sum")
RMSPROP_HP = positions("RmspropHp", "alpha", "eps", "weight_decay", "momentum", "centered")
RMSPROP_STATE = positions("RmspropState", "square_avg", "momentum_buffer", "grad_avg")
ADADELTA_HP = positions("AdadeltaHp", "rho", "eps", "weight_decay")
ADADELTA_STATE = positions("AdadeltaState", "square_avg", "acc_delta")
ADAM_HP = positions("AdamHp", "betas:2", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay")
ADAM_STATE = positions("AdamState", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
NADAM_HP = positions("NadamHp", "betas:2", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay")
NADAM_STATE = positions("NadamState", "exp_avg", "exp_avg_sq")
RADAM_HP = positions("RadamHp", "betas:2", "eps", "weight_decay", "decoupled_weight_decay")
RADAM_STATE = positions("RadamState", "exp_avg", "exp_avg_sq")
ADAMAX_HP = positions("AdamaxHp", "betas:2", "eps", "weight_decay")
ADAMAX_STATE = positions("AdamaxState", "exp_avg", "exp_inf")
QHM_HP = positions("QhmHp", "momentum", "nu", "weight_decay", "decoupled_weight_decay")
QHM_STATE = positions("QhmState", "momentum_buffer")
QHADAM_HP = positions("QhadamHp", "betas:2", "nus:2", "eps", "weight_decay", "decoupled_weight_decay")
QHADAM_STATE = positions("QhadamState", "exp_avg", "exp_avg_sq")
LION_HP = positions("LionHp", "betas:2", "weight_decay")
LION_STATE = positions("LionState", "exp_avg")
RPROP_HP = positions("RpropHp", "etas:2", "step_sizes:2")
RPROP_STATE = positions("RpropState", "prev", "step_size")
ASGD_HP = positions("AsgdHp", "lambd", "alpha", "t0", "weight_decay")
ASGD_STATE = positions("AsgdState", "ax")
ADAFACTOR_HP = positions("AdafactorHp", "beta2_decay", "d", "eps:2", "weight_decay")
ADAFACTOR_STATE = positions("AdafactorState", "row_var", "col_var")
ADAFACTOR_TABLE = len(ADAFACTOR_HP)  # where theta's tensor table starts in hp
MUON_HP = positions("MuonHp", "momentum", "nesterov", "weight_decay", "eps", "ns_steps", "ns_coefficients:3",
                    "adjust_lr_fn")
MUON_STATE = positions("MuonState", "momentum_buffer")



@kernel
def _lerp(a, b, w, one_minus_w):
    """a + w (b - a), computed as torch.lerp does: from the nearer end, in one fused multiply-add."""
    if w < 0.5:
        return fma(w, b - a, a)
    return fma(-one_minus_w, b - a, b)


@kernel
def sgd_step(theta, grad, state, scal, hp, lr):
    """buf <- mu buf + (1 - dampening) g (buf = g at step 1); theta <- theta - lr (g + mu buf if nesterov else buf).

    hp: momentum, dampening, weight_decay, nesterov.
    """
    mu, keep, wd, neg_lr = (
        like(theta, hp[SGD_HP.momentum]), like(theta, 1.0 - hp[SGD_HP.dampening]),
        like(theta, hp[SGD_HP.weight_decay]), like(theta, -lr))
    first = scal[S_STEP] == 1.0
    nesterov = hp[SGD_HP.nesterov] != 0.0
    buf = state[SGD_STATE.momentum_buffer]
    use_momentum = hp[SGD_HP.momentum] != 0.0
    use_wd = hp[SGD_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i] if use_wd else grad[i]
        if use_momentum:
            b = g if first else buf[i] * mu + g * keep
            buf[i] = b
            g = g + mu * b if nesterov else b
        theta[i] = theta[i] + neg_lr * g


@kernel
def adagrad_step(theta, grad, state, scal, hp, lr):
    """s <- s + g^2; theta <- theta - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps).

    hp: lr_decay, weight_decay, eps.  state[0] starts at initial_accumulator_value.
    """
    clr = lr / (1.0 + (scal[S_STEP] - 1.0) * hp[ADAGRAD_HP.lr_decay])
    wd, eps, neg_clr = (like(theta, hp[ADAGRAD_HP.weight_decay]), like(theta, hp[ADAGRAD_HP.eps]), like(theta, -clr))
    s = state[ADAGRAD_STATE.sum]
    use_wd = hp[ADAGRAD_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i] if use_wd else grad[i]
        s[i] = s[i] + g * g
        theta[i] = theta[i] + neg_clr * (g / (math.sqrt(s[i]) + eps))


@kernel
def rmsprop_step(theta, grad, state, scal, hp, lr):
    """v <- alpha v + (1 - alpha) g^2; d = sqrt(v - gbar^2 if centered else v) + eps; theta <- theta - lr g / d (through a momentum buffer if momentum > 0).

    hp: alpha, eps, weight_decay, momentum, centered.  state: v, buf, gbar.
    """
    alpha, one_m_alpha, eps, wd, mu, neg_lr = (
        like(theta, hp[RMSPROP_HP.alpha]), like(theta, 1.0 - hp[RMSPROP_HP.alpha]), like(theta, hp[RMSPROP_HP.eps]),
        like(theta, hp[RMSPROP_HP.weight_decay]),
        like(theta, hp[RMSPROP_HP.momentum]), like(theta, -lr))
    centered = hp[RMSPROP_HP.centered] != 0.0
    v = state[RMSPROP_STATE.square_avg]
    buf = state[RMSPROP_STATE.momentum_buffer]
    gbar = state[RMSPROP_STATE.grad_avg]
    use_momentum = hp[RMSPROP_HP.momentum] > 0.0
    use_wd = hp[RMSPROP_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i] if use_wd else grad[i]
        v[i] = v[i] * alpha + g * g * one_m_alpha
        if centered:
            gbar[i] = _lerp(gbar[i], g, one_m_alpha, alpha)
            d = math.sqrt(v[i] - gbar[i] * gbar[i]) + eps
        else:
            d = math.sqrt(v[i]) + eps
        if use_momentum:
            buf[i] = buf[i] * mu + g / d
            theta[i] = theta[i] + neg_lr * buf[i]
        else:
            theta[i] = theta[i] + neg_lr * (g / d)


@kernel
def adadelta_step(theta, grad, state, scal, hp, lr):
    """v <- rho v + (1 - rho) g^2; dx = sqrt(u + eps) / sqrt(v + eps) g; u <- rho u + (1 - rho) dx^2; theta <- theta - lr dx.

    hp: rho, eps, weight_decay.  state: v, u.
    """
    rho, one_m_rho, eps, wd, neg_lr = (
        like(theta, hp[ADADELTA_HP.rho]), like(theta, 1.0 - hp[ADADELTA_HP.rho]), like(theta, hp[ADADELTA_HP.eps]),
        like(theta, hp[ADADELTA_HP.weight_decay]),
        like(theta, -lr))
    v = state[ADADELTA_STATE.square_avg]
    u = state[ADADELTA_STATE.acc_delta]
    use_wd = hp[ADADELTA_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i] if use_wd else grad[i]
        v[i] = v[i] * rho + g * g * one_m_rho
        dx = math.sqrt(u[i] + eps) / math.sqrt(v[i] + eps) * g
        u[i] = u[i] * rho + dx * dx * one_m_rho
        theta[i] = theta[i] + neg_lr * dx


@kernel
def adam_step(theta, grad, state, scal, hp, lr):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; theta <- theta - lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps).

    hp: beta1, beta2, eps, weight_decay, amsgrad, decoupled.  state: m, v, vmax.
    amsgrad uses vmax = max(vmax, v) in place of v; decoupled is AdamW.
    """
    b1 = hp[ADAM_HP.betas_0]
    b2 = hp[ADAM_HP.betas_1]
    scal[S_B1POW] *= b1
    scal[S_B2POW] *= b2
    step_size = lr / (1.0 - scal[S_B1POW])
    bc2_sqrt = math.sqrt(1.0 - scal[S_B2POW])
    decoupled = hp[ADAM_HP.decoupled_weight_decay] != 0.0
    amsgrad = hp[ADAM_HP.amsgrad] != 0.0
    b1c, w1, b2c, w2, eps, wd, neg_step, bc2s, decay = (
        like(theta, b1), like(theta, 1.0 - b1), like(theta, b2), like(theta, 1.0 - b2),
        like(theta, hp[ADAM_HP.eps]), like(theta, hp[ADAM_HP.weight_decay]), like(theta, -step_size),
        like(theta, bc2_sqrt),
        like(theta, 1.0 - lr * hp[ADAM_HP.weight_decay]))
    m = state[ADAM_STATE.exp_avg]
    v = state[ADAM_STATE.exp_avg_sq]
    vmax = state[ADAM_STATE.max_exp_avg_sq]
    use_wd = hp[ADAM_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        p = theta[i]
        g = grad[i]
        if use_wd:
            if decoupled:
                p = p * decay
            else:
                g = g + wd * p
        m[i] = _lerp(m[i], g, w1, b1c)
        v[i] = v[i] * b2c + g * g * w2
        if amsgrad:
            if v[i] > vmax[i]:
                vmax[i] = v[i]
            denom = math.sqrt(vmax[i]) / bc2s + eps
        else:
            denom = math.sqrt(v[i]) / bc2s + eps
        theta[i] = p + neg_step * (m[i] / denom)


@kernel
def nadam_step(theta, grad, state, scal, hp, lr):
    """mu_t = b1 (1 - 0.5 * 0.96^(t psi)); theta <- theta - lr (1 - mu_t)/(1 - prod mu) g/d - lr mu_{t+1}/(1 - prod mu * mu_{t+1}) m/d, d = sqrt(v/(1 - b2^t)) + eps.

    hp: beta1, beta2, eps, weight_decay, momentum_decay (psi), decoupled.  state: m, v.
    """
    b1 = hp[NADAM_HP.betas_0]
    b2 = hp[NADAM_HP.betas_1]
    t = scal[S_STEP]
    scal[S_B2POW] *= b2
    bc2 = 1.0 - scal[S_B2POW]
    mu = b1 * (1.0 - 0.5 * 0.96 ** (t * hp[NADAM_HP.momentum_decay]))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * hp[NADAM_HP.momentum_decay]))
    scal[S_MU_PRODUCT] *= mu
    mu_prod = scal[S_MU_PRODUCT]
    coef_g = -lr * (1.0 - mu) / (1.0 - mu_prod)
    coef_m = (-lr * mu_next) / (1.0 - mu_prod * mu_next)
    decoupled = hp[NADAM_HP.decoupled_weight_decay] != 0.0
    b1c, w1, b2c, w2, eps, wd, bc2c, cg, cm, decay = (
        like(theta, b1), like(theta, 1.0 - b1), like(theta, b2), like(theta, 1.0 - b2),
        like(theta, hp[NADAM_HP.eps]), like(theta, hp[NADAM_HP.weight_decay]), like(theta, bc2), like(theta, coef_g),
        like(theta, coef_m), like(theta, 1.0 - lr * hp[NADAM_HP.weight_decay]))
    m = state[NADAM_STATE.exp_avg]
    v = state[NADAM_STATE.exp_avg_sq]
    use_wd = hp[NADAM_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        p = theta[i]
        g = grad[i]
        if use_wd:
            if decoupled:
                p = p * decay
            else:
                g = g + wd * p
        m[i] = _lerp(m[i], g, w1, b1c)
        v[i] = v[i] * b2c + g * g * w2
        d = math.sqrt(v[i] / bc2c) + eps
        p = p + cg * (g / d)
        theta[i] = p + cm * (m[i] / d)


@kernel
def radam_step(theta, grad, state, scal, hp, lr):
    """m, v as Adam; rho_t = rho_inf - 2 t b2^t / (1 - b2^t); if rho_t > 5: theta <- theta - lr m_hat r_t sqrt(1 - b2^t)/(sqrt(v) + eps), else theta <- theta - lr m_hat.

    hp: beta1, beta2, eps, weight_decay, decoupled.  state: m, v.
    """
    b1 = hp[RADAM_HP.betas_0]
    b2 = hp[RADAM_HP.betas_1]
    t = scal[S_STEP]
    scal[S_B1POW] *= b1
    scal[S_B2POW] *= b2
    bc1 = 1.0 - scal[S_B1POW]
    bc2 = 1.0 - scal[S_B2POW]
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * t * scal[S_B2POW] / bc2
    rectify = rho_t > 5.0
    rect = 1.0
    if rectify:
        rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                         / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
    decoupled = hp[RADAM_HP.decoupled_weight_decay] != 0.0
    b1c, w1, b2c, w2, eps, wd, bc1c, lrc, sbc2, rectc, decay = (
        like(theta, b1), like(theta, 1.0 - b1), like(theta, b2), like(theta, 1.0 - b2),
        like(theta, hp[RADAM_HP.eps]), like(theta, hp[RADAM_HP.weight_decay]), like(theta, bc1), like(theta, lr),
        like(theta, math.sqrt(bc2)), like(theta, rect), like(theta, 1.0 - lr * hp[RADAM_HP.weight_decay]))
    m = state[RADAM_STATE.exp_avg]
    v = state[RADAM_STATE.exp_avg_sq]
    use_wd = hp[RADAM_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        p = theta[i]
        g = grad[i]
        if use_wd:
            if decoupled:
                p = p * decay
            else:
                g = g + wd * p
        m[i] = _lerp(m[i], g, w1, b1c)
        v[i] = v[i] * b2c + g * g * w2
        m_hat = m[i] / bc1c
        if rectify:
            adaptive = sbc2 / (math.sqrt(v[i]) + eps)
            theta[i] = p - m_hat * lrc * adaptive * rectc
        else:
            theta[i] = p - m_hat * lrc


@kernel
def adamax_step(theta, grad, state, scal, hp, lr):
    """m <- b1 m + (1 - b1) g; u <- max(b2 u, |g| + eps); theta <- theta - lr/(1 - b1^t) m / u.

    hp: beta1, beta2, eps, weight_decay.  state: m, u.
    """
    b1 = hp[ADAMAX_HP.betas_0]
    scal[S_B1POW] *= b1
    clr = lr / (1.0 - scal[S_B1POW])
    b1c, w1, b2c, eps, wd, neg_clr = (
        like(theta, b1), like(theta, 1.0 - b1), like(theta, hp[ADAMAX_HP.betas_1]), like(theta, hp[ADAMAX_HP.eps]),
        like(theta, hp[ADAMAX_HP.weight_decay]), like(theta, -clr))
    m = state[ADAMAX_STATE.exp_avg]
    u = state[ADAMAX_STATE.exp_inf]
    use_wd = hp[ADAMAX_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i] if use_wd else grad[i]
        m[i] = _lerp(m[i], g, w1, b1c)
        a = u[i] * b2c
        b = abs(g) + eps
        u[i] = a if a > b else b
        theta[i] = theta[i] + neg_clr * (m[i] / u[i])


@kernel
def qhm_step(theta, grad, state, scal, hp, lr):
    """buf <- beta buf + (1 - beta) g; theta <- theta - lr ((1 - nu) g + nu buf)  (Ma & Yarats 2019).

    hp: momentum (beta), nu, weight_decay, decoupled.  state: buf (starts at 0).
    """
    beta = hp[QHM_HP.momentum]
    nu = hp[QHM_HP.nu]
    decoupled = hp[QHM_HP.decoupled_weight_decay] != 0.0
    bc, one_m_beta, nuc, one_m_nu, wd, lrc, decay = (
        like(theta, beta), like(theta, 1.0 - beta), like(theta, nu), like(theta, 1.0 - nu),
        like(theta, hp[QHM_HP.weight_decay]), like(theta, lr), like(theta, 1.0 - lr * hp[QHM_HP.weight_decay]))
    buf = state[QHM_STATE.momentum_buffer]
    use_wd = hp[QHM_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        p = theta[i]
        g = grad[i]
        if use_wd:
            if decoupled:
                p = p * decay
            else:
                g = g + wd * p
        buf[i] = bc * buf[i] + one_m_beta * g
        theta[i] = p - lrc * (one_m_nu * g + nuc * buf[i])


@kernel
def qhadam_step(theta, grad, state, scal, hp, lr):
    """m, v as Adam; theta <- theta - lr ((1 - nu1) g + nu1 m_hat) / (sqrt((1 - nu2) g^2 + nu2 v_hat) + eps)  (Ma & Yarats 2019).

    hp: beta1, beta2, nu1, nu2, eps, weight_decay, decoupled (QHAdamW).  state: m, v.
    """
    b1 = hp[QHADAM_HP.betas_0]
    b2 = hp[QHADAM_HP.betas_1]
    scal[S_B1POW] *= b1
    scal[S_B2POW] *= b2
    decoupled = hp[QHADAM_HP.decoupled_weight_decay] != 0.0
    b1c, w1, b2c, w2, nu1, one_m_nu1, nu2, one_m_nu2, eps, wd, bc1, bc2, lrc, decay = (
        like(theta, b1), like(theta, 1.0 - b1), like(theta, b2), like(theta, 1.0 - b2),
        like(theta, hp[QHADAM_HP.nus_0]), like(theta, 1.0 - hp[QHADAM_HP.nus_0]), like(theta, hp[QHADAM_HP.nus_1]),
        like(theta, 1.0 - hp[QHADAM_HP.nus_1]),
        like(theta, hp[QHADAM_HP.eps]), like(theta, hp[QHADAM_HP.weight_decay]), like(theta, 1.0 - scal[S_B1POW]),
        like(theta, 1.0 - scal[S_B2POW]), like(theta, lr), like(theta, 1.0 - lr * hp[QHADAM_HP.weight_decay]))
    m = state[QHADAM_STATE.exp_avg]
    v = state[QHADAM_STATE.exp_avg_sq]
    use_wd = hp[QHADAM_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        p = theta[i]
        g = grad[i]
        if use_wd:
            if decoupled:
                p = p * decay
            else:
                g = g + wd * p
        m[i] = b1c * m[i] + w1 * g
        v[i] = b2c * v[i] + w2 * g * g
        num = one_m_nu1 * g + nu1 * (m[i] / bc1)
        den = math.sqrt(one_m_nu2 * g * g + nu2 * (v[i] / bc2)) + eps
        theta[i] = p - lrc * (num / den)


@kernel
def lion_step(theta, grad, state, scal, hp, lr):
    """theta <- theta (1 - lr wd) - lr sign(b1 m + (1 - b1) g); m <- b2 m + (1 - b2) g  (Chen et al. 2023).

    hp: beta1, beta2, weight_decay.  state: m.
    """
    b1, w1, b2, w2, lrc, decay = (
        like(theta, hp[LION_HP.betas_0]), like(theta, 1.0 - hp[LION_HP.betas_0]), like(theta, hp[LION_HP.betas_1]),
        like(theta, 1.0 - hp[LION_HP.betas_1]),
        like(theta, lr), like(theta, 1.0 - lr * hp[LION_HP.weight_decay]))
    m = state[LION_STATE.exp_avg]
    use_wd = hp[LION_HP.weight_decay] != 0.0
    for i in range(theta.shape[0]):
        g = grad[i]
        p = theta[i] * decay if use_wd else theta[i]
        u = b1 * m[i] + w1 * g
        s = 1.0 if u > 0 else (-1.0 if u < 0 else 0.0)
        theta[i] = p - lrc * s
        m[i] = b2 * m[i] + w2 * g


@kernel
def rprop_step(theta, grad, state, scal, hp, lr):
    """s <- clip(s * (eta+ if g g_prev > 0, eta- if < 0, else 1), s_min, s_max); g <- 0 where it shrank; theta <- theta - sign(g) s; g_prev <- g.

    hp: etaminus, etaplus, step_size_min, step_size_max.  state: prev, step_size (starts at lr).
    The learning rate only sets the first step sizes (torch.optim.Rprop); a schedule has no effect.
    """
    em, ep = like(theta, hp[RPROP_HP.etas_0]), like(theta, hp[RPROP_HP.etas_1])
    smin, smax = like(theta, hp[RPROP_HP.step_sizes_0]), like(theta, hp[RPROP_HP.step_sizes_1])
    one = like(theta, 1.0)
    prev, size = state[RPROP_STATE.prev], state[RPROP_STATE.step_size]
    for i in range(theta.shape[0]):
        g = grad[i]
        prod = g * prev[i]
        f = ep if prod > 0 else (em if prod < 0 else one)
        s = min(max(size[i] * f, smin), smax)
        size[i] = s
        if f == em:  # torch zeroes the gradient wherever the factor is eta-
            g = g * 0.0
        sg = 1.0 if g > 0 else (-1.0 if g < 0 else 0.0)
        theta[i] = theta[i] - sg * s
        prev[i] = g


@kernel
def asgd_step(theta, grad, state, scal, hp, lr):
    """theta <- theta (1 - lambd eta) - eta g; ax <- ax + mu (theta - ax); then eta <- lr / (1 + lambd lr t)^alpha, mu <- 1 / max(1, t - t0).

    hp: lambd, alpha, t0, weight_decay.  state: ax (the averaged parameters).  scal: S_ETA, S_MU
    (torch.optim.ASGD: eta and mu are computed for the next step, with this step's lr).
    """
    eta = scal[S_ETA]
    mu = scal[S_MU]
    wd, decay = like(theta, hp[ASGD_HP.weight_decay]), like(theta, 1.0 - hp[ASGD_HP.lambd] * eta)
    neg_eta, muc = like(theta, -eta), like(theta, mu)
    use_wd = hp[ASGD_HP.weight_decay] != 0.0
    average = mu != 1.0
    ax = state[ASGD_STATE.ax]
    for i in range(theta.shape[0]):
        g = grad[i] + wd * theta[i] if use_wd else grad[i]
        p = theta[i] * decay
        p = p + neg_eta * g
        theta[i] = p
        ax[i] = ax[i] + (p - ax[i]) * muc if average else p
    t = scal[S_STEP]
    scal[S_ETA] = lr / ((1.0 + hp[ASGD_HP.lambd] * lr * t) ** hp[ASGD_HP.alpha])
    scal[S_MU] = 1.0 / max(1.0, t - hp[ASGD_HP.t0])


# Optimizers that work tensor by tensor (Adafactor, Muon) find theta's tensors at the end of hp,
# after their own hyperparameters: the count k, then (offset, rows, cols) for each tensor, cols = 0
# for a vector of `rows` values (engine.model.Layout.tensor_table; a surface's theta is one vector).


@kernel
def tensor_at(hp, base, k):
    """(offset, rows, cols) of tensor k in the table that starts at hp[base] (its count)."""
    j = base + 1 + 3 * k
    return int(hp[j]), int(hp[j + 1]), int(hp[j + 2])


@kernel
def _machine_eps(theta):
    return 1.1920928955078125e-07 if theta.itemsize == 4 else 2.220446049250313e-16  # np.finfo(dtype).eps


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sum_sq(x, lo, hi):
    """sum of x[lo:hi]^2 in float64, in any order (reassoc, and nothing else of fastmath: NaN stays NaN):
    a sum in order is a chain of dependent adds, 4 cycles each, and Adafactor's three sums took 6.7 ns a
    parameter so; torch's own sums are not in order either."""
    total = 0.0
    for i in range(lo, hi):
        total += float(x[i]) * float(x[i])
    return total


@kernel
def adafactor_step(theta, grad, state, scal, hp, lr):
    """Per tensor: v <- lerp(v, g^2, t^beta2_decay) (as row and column means for a matrix, v = r c / mean(r));
    u = g / sqrt(max(v, eps1^2)); theta <- theta (1 - lr wd) - max(eps2, rms(theta)) min(lr, 1/sqrt(t)) u / max(1, rms(u)/d).

    hp: beta2_decay, d, eps1 (< 0: the dtype's machine epsilon, torch's None), eps2, weight_decay, then the
    tensors (tensor_at, from hp[ADAFACTOR_TABLE]).  state: row_var (a vector's whole variance), col_var: a matrix keeps
    its rows + cols numbers at the start of its slice of the two rows (torch.optim.Adafactor).
    The loops index theta, grad and the state rows flat (contiguous, so they vectorise); the update u goes
    to an array of its own (in a view of grad, LLVM could not tell the two apart and the loop ran 4x slower).
    """
    t = scal[S_STEP]
    w = t ** hp[ADAFACTOR_HP.beta2_decay]
    rho = min(lr, 1.0 / t ** 0.5)
    eps1 = hp[ADAFACTOR_HP.eps_0] if hp[ADAFACTOR_HP.eps_0] >= 0.0 else _machine_eps(theta)
    eps2, d = hp[ADAFACTOR_HP.eps_1], hp[ADAFACTOR_HP.d]
    wc, one_m_w, eps1c, eps1sq = like(theta, w), like(theta, 1.0 - w), like(theta, eps1), like(theta, eps1 * eps1)
    one = like(theta, 1.0)
    decay = like(theta, 1.0 - lr * hp[ADAFACTOR_HP.weight_decay])
    use_wd = hp[ADAFACTOR_HP.weight_decay] != 0.0
    row, col = state[ADAFACTOR_STATE.row_var], state[ADAFACTOR_STATE.col_var]
    for k in range(int(hp[ADAFACTOR_TABLE])):
        off, rows, cols = tensor_at(hp, ADAFACTOR_TABLE, k)
        n = rows * cols if cols > 0 else rows
        # of theta before its weight decay (torch: param.norm() / sqrt(numel))
        alpha = max(eps2, math.sqrt(_sum_sq(theta, off, off + n)) / math.sqrt(n)) * rho
        if use_wd:
            for i in range(off, off + n):
                theta[i] = theta[i] * decay
        U = np.empty(n, theta.dtype)
        if cols > 0:
            col_ss = np.zeros(cols)  # torch: norm(g, dim=-2)^2 / rows, summed down the rows
            for i in range(rows):
                base = off + i * cols
                for j in range(cols):
                    col_ss[j] += float(grad[base + j]) * float(grad[base + j])
                mean = like(theta, math.sqrt(_sum_sq(grad, base, base + cols)) ** 2 / cols)
                row[off + i] = _lerp(row[off + i], mean, wc, one_m_w)
            for j in range(cols):
                col[off + j] = _lerp(col[off + j], like(theta, math.sqrt(col_ss[j]) ** 2 / rows), wc, one_m_w)
            rsum = like(theta, 0.0)
            for i in range(rows):
                rsum += row[off + i]
            rmean = max(rsum / like(theta, rows), eps1c)
            for i in range(rows):
                ri = row[off + i]
                base = off + i * cols
                for j in range(cols):
                    v = max(ri * col[off + j] / rmean, eps1sq)  # torch: (r @ c) / mean(r), clamped
                    U[i * cols + j] = one / math.sqrt(v) * grad[base + j]
        else:
            for i in range(n):
                row[off + i] = _lerp(row[off + i], grad[off + i] * grad[off + i], wc, one_m_w)
                U[i] = one / math.sqrt(max(row[off + i], eps1sq)) * grad[off + i]
        scale = like(theta, -alpha / max(1.0, math.sqrt(_sum_sq(U, 0, n)) / (math.sqrt(n) * d)))
        for i in range(n):
            theta[off + i] = fma(scale, U[i], theta[off + i])  # torch's add_(update, alpha=...): fused


@kernel
def newton_schulz(U, a, b, c, steps, eps):
    """X <- U / max(|U|_F, eps) (as U^T when U is tall), then `steps` times X <- a X + (b A + c A^2) X with
    A = X X^T: close to the orthogonal factor of U (torch.optim.Muon's _zeropower_via_newtonschulz, in U's
    dtype where torch works in bfloat16). A new C-ordered array of U's shape."""
    tall = U.shape[0] > U.shape[1]
    X = np.ascontiguousarray(U.T) if tall else U.copy()
    ss = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            ss += float(X[i, j]) * float(X[i, j])
    scale = like(X, max(math.sqrt(ss), eps))
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            X[i, j] = X[i, j] / scale
    r = X.shape[0]
    A = np.empty((r, r), X.dtype)
    A2 = np.empty((r, r), X.dtype)
    BX = np.empty_like(X)
    ac, bc, cc = like(X, a), like(X, b), like(X, c)
    for _ in range(steps):
        np.dot(X, X.T, A)
        np.dot(A, A, A2)
        for i in range(r):
            for j in range(r):
                A2[i, j] = bc * A[i, j] + cc * A2[i, j]  # torch.addmm(A, A, A, beta=b, alpha=c)
        np.dot(A2, X, BX)
        for i in range(r):
            for j in range(X.shape[1]):
                X[i, j] = ac * X[i, j] + BX[i, j]  # torch.addmm(X, B, X, beta=a)
    return np.ascontiguousarray(X.T) if tall else X


# Muon's hp: its own, then its `rest` optimizer's (for the vectors), then theta's tensor table
MUON_REST = len(MUON_HP)  # there: the rest's id, its lr over Muon's, its hp count m, then its m hp


@kernel
def muon_step(theta, grad, state, scal, hp, lr):
    """Per matrix: B <- lerp(B, G, 1 - mu); O = NS(lerp(G, B, mu)) (nesterov; else NS(B));
    W <- W (1 - lr wd) - lr s O, s = sqrt(max(1, rows/cols)) or 0.2 sqrt(max(rows, cols)) (match_rms_adamw).

    hp: momentum, nesterov, weight_decay, eps, ns_steps, ns_coefficients (a, b, c), adjust_lr_fn (0 original,
    1 match_rms_adamw), then the rest optimizer (MUON_REST) and the tensor table. Vectors (biases) are
    stepped together by the rest (AdamW by default) in rest_step, which optimizer_step calls after this:
    its state rows follow Muon's momentum buffer, over their first n_vec columns; its scalars are
    scal[N_SCALARS:] (torch.optim.Muon beside a second optimizer).
    """
    mu, wd, eps = hp[MUON_HP.momentum], hp[MUON_HP.weight_decay], hp[MUON_HP.eps]
    nesterov = hp[MUON_HP.nesterov] != 0.0
    steps = int(hp[MUON_HP.ns_steps])
    base = MUON_REST + 3 + int(hp[MUON_REST + 2])
    w_buf, w_nest = like(theta, 1.0 - mu), like(theta, mu)
    decay = like(theta, 1.0 - lr * wd)
    buf = state[MUON_STATE.momentum_buffer]
    for k in range(int(hp[base])):
        off, rows, cols = tensor_at(hp, base, k)
        if cols == 0:
            continue
        n = rows * cols
        U = np.empty(n, theta.dtype)
        for i in range(n):
            buf[off + i] = _lerp(buf[off + i], grad[off + i], w_buf, w_nest)
            U[i] = _lerp(grad[off + i], buf[off + i], w_nest, w_buf) if nesterov else buf[off + i]
        O = newton_schulz(U.reshape((rows, cols)), hp[MUON_HP.ns_coefficients_0], hp[MUON_HP.ns_coefficients_1],
                          hp[MUON_HP.ns_coefficients_2], steps, eps).reshape(n)
        original = hp[MUON_HP.adjust_lr_fn] == 0.0
        ratio = math.sqrt(max(1.0, rows / cols)) if original else 0.2 * math.sqrt(max(rows, cols))
        step = like(theta, -lr * ratio)
        for i in range(n):
            theta[off + i] = fma(O[i], step, theta[off + i] * decay)  # mul_(1 - lr wd), add_(alpha=-lr s)


@kernel
def demon_beta(beta_init, t, total):
    """beta_t = beta_init (1 - t/T) / ((1 - beta_init) + beta_init (1 - t/T))  (Chen et al. 2019), t from 0; 0 from T on."""
    # the schedule decays momentum to 0 at T; past it the formula turns negative (beta 0.9, T 100:
    # beta(110) = -9) and a run longer than demon_steps diverged, so it holds at 0 there
    rest = max(0.0, 1.0 - t / total)
    return beta_init * rest / ((1.0 - beta_init) + beta_init * rest)


# The optimizer table: an optimizer's id is its row's index. The network step and the surface
# descent both dispatch through it (dispatch_on_id), so a new optimizer is its kernel with its named
# places (positions), one row here and in LAYOUT_OF, and its registry entry in engine/nn/optim.py.
STEP_KERNELS = (
    sgd_step,
    adagrad_step,
    rmsprop_step,
    adadelta_step,
    adam_step,
    nadam_step,
    radam_step,
    adamax_step,
    qhm_step,
    qhadam_step,
    lion_step,
    rprop_step,
    asgd_step,
    adafactor_step,
    muon_step,
)
# the rows that need theta's tensors (the table at the end of hp): they see whole matrices only, so
# no training path that splits a layer's columns between threads runs them
WHOLE_TENSOR_STEPS = (adafactor_step, muon_step)
# each row's named hp places and state rows (positions above): the registry's hp_order and slots come from here
LAYOUT_OF = {
    sgd_step: (SGD_HP, SGD_STATE),
    adagrad_step: (ADAGRAD_HP, ADAGRAD_STATE),
    rmsprop_step: (RMSPROP_HP, RMSPROP_STATE),
    adadelta_step: (ADADELTA_HP, ADADELTA_STATE),
    adam_step: (ADAM_HP, ADAM_STATE),
    nadam_step: (NADAM_HP, NADAM_STATE),
    radam_step: (RADAM_HP, RADAM_STATE),
    adamax_step: (ADAMAX_HP, ADAMAX_STATE),
    qhm_step: (QHM_HP, QHM_STATE),
    qhadam_step: (QHADAM_HP, QHADAM_STATE),
    lion_step: (LION_HP, LION_STATE),
    rprop_step: (RPROP_HP, RPROP_STATE),
    asgd_step: (ASGD_HP, ASGD_STATE),
    adafactor_step: (ADAFACTOR_HP, ADAFACTOR_STATE),
    muon_step: (MUON_HP, MUON_STATE),
}


def opt_id_of(step) -> int:
    """The id of a step kernel: its row in STEP_KERNELS."""
    return STEP_KERNELS.index(step)


def needs_whole_tensors(opt_id: int) -> bool:
    """Whether optimizer `opt_id` works per tensor (WHOLE_TENSOR_STEPS): no path may split its matrices."""
    return STEP_KERNELS[opt_id] in WHOLE_TENSOR_STEPS


def dispatch_on_id(make=None, skip=()):
    """A kernel f(opt_id, args) = make(STEP_KERNELS[opt_id])(*args); an id outside the table (or a row in
    `skip`) raises.

    `make(step)` gives the kernel to run for one row (by default the step kernel itself). The
    dispatcher is one function of compare-and-call branches, written out as text here, each branch
    calling its row's kernel directly: a step kernel handed over as a value is lowered as a pointer
    to a Python object, and numba will not cache a kernel that holds one (train_chunk would compile
    afresh in every process). One flat function, not a chain of closures each calling the next: numba
    optimises every compiled function together with all it links, so a chain of n rows optimised the
    table's code n(n+1)/2 times (optimizer_step took 40 s of a cold compile; now a few).
    It is not cached itself; the cached kernels that call it hold its code.
    """
    rows = [(i, step if make is None else make(step)) for i, step in enumerate(STEP_KERNELS) if step not in skip]
    source = ["def dispatch(opt_id, args):"]
    for i, _ in rows:
        source += [f"    if opt_id == {i}:", f"        return row_{i}(*args)"]
    source.append('    raise ValueError("unknown optimizer id")')
    scope = {f"row_{i}": impl for i, impl in rows}
    exec(compile("\n".join(source), f"<dispatch over STEP_KERNELS, {len(rows)} rows>", "exec"), scope)
    return njit(nogil=True, error_model="numpy")(scope["dispatch"])


@kernel
def begin_step(scal, hp, hp_t, demon):
    """Count the step; with Demon on (demon: scal[S_DEMON_T] > 0), hp_t[k] <- demon_beta(hp[k], t, T)."""
    t = scal[S_STEP]
    scal[S_STEP] = t + 1.0
    if demon:
        k = int(scal[S_DEMON_IDX])
        hp_t[k] = demon_beta(hp[k], t, scal[S_DEMON_T])


@kernel
def begin_update(grad, scal, hp):
    """What every update does before its kernel's step: with maximize on, grad is negated in place (as torch
    does before anything else: a scratch buffer here); the step is counted, and Demon's decayed coefficient
    put in a copy of hp. Returns the hp the step kernel takes."""
    if scal[S_MAXIMIZE] != 0.0:
        for i in range(grad.shape[0]):
            grad[i] = -grad[i]
    demon = scal[S_DEMON_T] > 0.0
    hp_t = hp.copy() if demon else hp
    begin_step(scal, hp, hp_t, demon)
    return hp_t


_step_by_id = dispatch_on_id()


@kernel
def rest_step(theta, grad, state, scal, hp, lr):
    """The vectors (biases) of an optimizer for matrices (Muon), gathered and stepped by its rest optimizer
    (hp[scal[S_REST]]: the rest's id, its lr over the caller's, its hp count m, its hp), then put back.
    Called by optimizer_step, not by the matrix kernel: one dispatch over the table serves both, where a
    second one inside muon_step doubled the compiled code every process loads at start."""
    at = int(scal[S_REST])
    m = int(hp[at + 2])
    base = at + 3 + m
    n_vec = 0
    for k in range(int(hp[base])):
        off, rows, cols = tensor_at(hp, base, k)
        if cols == 0:
            n_vec += rows
    if n_vec == 0:
        return
    tv = np.empty(n_vec, theta.dtype)
    gv = np.empty(n_vec, theta.dtype)
    j = 0
    for k in range(int(hp[base])):
        off, rows, cols = tensor_at(hp, base, k)
        if cols == 0:
            copy_into(tv[j:j + rows], theta[off:off + rows])
            copy_into(gv[j:j + rows], grad[off:off + rows])
            j += rows
    slots = state.shape[0] - 1
    rest_state = state[1:].reshape(-1)[:slots * n_vec].reshape((slots, n_vec))
    rest_scal = scal[N_SCALARS:2 * N_SCALARS].copy()
    rest_scal[S_STEP] += 1.0
    _step_by_id(int(hp[at]), (tv, gv, rest_state, rest_scal, hp[at + 3:base].copy(), lr * hp[at + 1]))
    copy_into(scal[N_SCALARS:2 * N_SCALARS], rest_scal)
    j = 0
    for k in range(int(hp[base])):
        off, rows, cols = tensor_at(hp, base, k)
        if cols == 0:
            copy_into(theta[off:off + rows], tv[j:j + rows])
            j += rows


@kernel
def optimizer_step(opt_id, theta, grad, state, scal, hp, lr):
    """One update of optimizer `opt_id` (a row of STEP_KERNELS) on theta in place (begin_update first)."""
    hp_t = begin_update(grad, scal, hp)
    _step_by_id(opt_id, (theta, grad, state, scal, hp_t, lr))
    if scal[S_REST] > 0.0:
        rest_step(theta, grad, state, scal, hp, lr)
