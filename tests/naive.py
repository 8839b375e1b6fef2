"""Slow, obviously correct NumPy twins of the kernels, written from the papers' equations."""

import math

import numpy as np


def demon_beta(beta_init, t, T):
    """Chen et al. 2019, eq. for beta_t with t counted from 0."""
    frac = 1.0 - t / T
    return beta_init * frac / ((1.0 - beta_init) + beta_init * frac)


def qhm(theta, grads, lr, beta, nu, demon_T=None):
    """Ma & Yarats 2019, QHM: g <- beta g + (1 - beta) grad; theta <- theta - lr ((1 - nu) grad + nu g)."""
    theta = theta.copy()
    buf = np.zeros_like(theta)
    out = []
    for t, g in enumerate(grads):
        b = demon_beta(beta, t, demon_T) if demon_T else beta
        buf = b * buf + (1 - b) * g
        theta = theta - lr * ((1 - nu) * g + nu * buf)
        out.append(theta.copy())
    return np.array(out)


def qhadam(theta, grads, lr, betas, nus, eps, demon_T=None):
    """Ma & Yarats 2019, QHAdam (Algorithm 2), bias corrections with the product of the betas used."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1pow = b2pow = 1.0
    out = []
    for t, g in enumerate(grads):
        b1 = demon_beta(betas[0], t, demon_T) if demon_T else betas[0]
        b1pow *= b1
        b2pow *= betas[1]
        m = b1 * m + (1 - b1) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat = m / (1 - b1pow)
        v_hat = v / (1 - b2pow)
        num = (1 - nus[0]) * g + nus[0] * m_hat
        den = np.sqrt((1 - nus[1]) * g * g + nus[1] * v_hat) + eps
        theta = theta - lr * num / den
        out.append(theta.copy())
    return np.array(out)


def lion(theta, grads, lr, betas, wd):
    """Chen et al. 2023, Algorithm 2 (Lion)."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    out = []
    for g in grads:
        c = betas[0] * m + (1 - betas[0]) * g
        theta = theta - lr * (np.sign(c) + wd * theta)
        m = betas[1] * m + (1 - betas[1]) * g
        out.append(theta.copy())
    return np.array(out)


def demon_sgdm(theta, grads, lr, beta, T):
    """Chen et al. 2019, Algorithm 1 (Demon SGDM): v <- beta_t v - lr g; theta <- theta + v."""
    theta = theta.copy()
    v = np.zeros_like(theta)
    out = []
    for t, g in enumerate(grads):
        v = demon_beta(beta, t, T) * v - lr * g
        theta = theta + v
        out.append(theta.copy())
    return np.array(out)


def adam(theta, grads, lr, betas, eps, demon_T=None):
    """Kingma & Ba (Algorithm 1); with Demon, beta1 = beta_t and the bias correction 1 - prod beta1."""
    return qhadam(theta, grads, lr, betas, (1.0, 1.0), eps, demon_T)


def mlp_loss(theta, X, Y, layout, acts, loss):
    """Forward pass by the definitions, float64, for finite differences."""
    a = X
    for l in range(layout.n_layers):
        W, b = layout.layer(theta, l)
        z = a @ W.T + b
        a = ACT[acts[l]](z)
    if loss == "cross_entropy":
        zs = z - z.max(axis=1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        return -(Y * logp).sum() / X.shape[0]
    return 0.5 * np.mean((a - Y) ** 2)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_erf = np.vectorize(math.erf)
ACT = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "softplus": lambda z: np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20)))),
    "gelu": lambda z: 0.5 * z * (1 + _erf(z / np.sqrt(2))),
    "softmax": _softmax,
}
