"""Sharpness against the stability threshold (issue 30): λ_max of the training loss's Hessian on a fixed probe
batch, by power iteration on Hessian-vector products, and the largest sharpness at which the run's optimizer is
stable on a quadratic, which gradient descent's sharpness rises to and then hovers at (Cohen et al. 2021,
"Gradient descent on neural networks typically occurs at the edge of stability").

Hv by a forward difference of the gradient kernel, in float64 whatever the run's dtype:
    Hv ≈ (∇L(θ + h w) − ∇L(θ)) / h along w,
whose error is h ‖∇³L‖ / 2 (none on a quadratic) plus rounding of about ε ‖∇L‖ / h; h = √ε max(1, ‖θ‖) / ‖w‖
balances the two (ε = 2.2e-16: a step of 1.5e-8 of θ's size, both errors near 1e-8 relative, far below what a
sharpness curve shows). One gradient a product, ∇L(θ) made once a measurement: central differences (error 1e-11)
cost two, and a measurement is most of its cost in gradients (the edge-of-stability preset: 2 iterations, warm).

Thresholds (η the learning rate at the epoch):
- SGD: 2/η;
- heavy-ball momentum β (torch's form, v ← βv + (1−τ)g, θ ← θ − ηv, τ its dampening): 2(1+β)/(η(1−τ));
- Nesterov momentum (torch's form): 2(1+β)/((1+2β)η(1−τ)); both from Cohen et al. 2021, appendix on
  momentum: the largest curvature at which the method's linear recurrence on a quadratic stays bounded;
- Adam and AdamW: the *preconditioned* sharpness λ_max(P⁻¹H), P = (1−β₁ᵗ)(diag(√v̂) + ε), v̂ the bias-corrected
  second moment at the epoch's end, against (2+2β₁)/((1−β₁)η) (Cohen et al. 2022, "Adaptive gradient methods at
  the edge of stability"); computed as λ_max of the symmetric P^(-1/2) H P^(-1/2), which has the same eigenvalues;
- others: the curve alone (no threshold is known; said in words).
"""

from __future__ import annotations

import math

import numpy as np

ITERATIONS = 20  # power iteration's most
RTOL = 1e-3  # it stops when λ changes by less than this share
STEP = math.sqrt(np.finfo(np.float64).eps)
NO_THRESHOLD = "no stability threshold is known for this optimizer: the curve alone"


def hessian_vector(net64, theta64: np.ndarray, X: np.ndarray, Y: np.ndarray, w: np.ndarray,
                   g0: np.ndarray | None = None) -> np.ndarray:
    """H w at theta64 on (X, Y), by a forward difference of the gradient (module docstring); float64 throughout.
    g0: the gradient at theta64, when the caller has it."""
    norm = float(np.linalg.norm(w))
    if norm == 0.0:
        return np.zeros_like(w)
    if g0 is None:
        g0 = net64.loss_and_grad(np.ascontiguousarray(theta64), X, Y)[1]
    h = STEP * max(1.0, float(np.linalg.norm(theta64))) / norm
    _, g_plus = net64.loss_and_grad(np.ascontiguousarray(theta64 + h * w), X, Y)
    return (g_plus - g0) / h


def top_eigenvalue(apply, v0: np.ndarray, iterations: int = ITERATIONS, rtol: float = RTOL):
    """(λ, v, iterations used): the eigenvalue of largest size of the symmetric operator `apply`, by power
    iteration from v0 (a warm start: last epoch's vector), the Rayleigh quotient v·Av its estimate; it stops
    after `iterations` or when λ moves by less than rtol of itself."""
    v = np.asarray(v0, np.float64)
    v = v / np.linalg.norm(v)
    lam = math.nan
    for k in range(1, iterations + 1):
        Av = apply(v)
        new = float(v @ Av)
        size = float(np.linalg.norm(Av))
        if not math.isfinite(size) or size == 0.0:
            return new, v, k
        v = Av / size
        if math.isfinite(lam) and abs(new - lam) <= rtol * abs(new):
            return new, v, k
        lam = new
    return lam, v, iterations


def preconditioner(opt) -> np.ndarray | None:
    """Adam's and AdamW's P (module docstring) as a vector, from the optimizer's state; None for the others."""
    if opt.name not in ("adam", "adamw") or "exp_avg_sq" not in opt.slots:
        return None
    from tuilab.kernels import optimizers as K

    b1, b2 = opt.hyper["betas"]
    b1pow, b2pow = float(opt.scal[K.S_B1POW]), float(opt.scal[K.S_B2POW])
    if b2pow >= 1.0:  # no step yet: no second moment
        return None
    v_hat = opt.state[opt.slots.index("exp_avg_sq")].astype(np.float64) / (1.0 - b2pow)
    return (1.0 - b1pow) * (np.sqrt(v_hat) + float(opt.hyper["eps"]))


def threshold(opt, lr: float) -> tuple[float, str]:
    """(the stability threshold for the run's optimizer at learning rate lr, what it is in words); NaN and
    NO_THRESHOLD where none is known."""
    h = opt.hyper
    if lr <= 0 or not math.isfinite(lr):
        return math.nan, NO_THRESHOLD
    if opt.name in ("sgd", "momentum", "nesterov"):
        beta, damp = float(h.get("momentum", 0.0)), float(h.get("dampening", 0.0))
        eta = lr * (1.0 - damp)
        if beta == 0.0:
            return 2.0 / lr, "2/η"
        if h.get("nesterov"):
            return 2.0 * (1 + beta) / ((1 + 2 * beta) * eta), "2(1+β)/((1+2β)η): Nesterov"
        return 2.0 * (1 + beta) / eta, "2(1+β)/η: heavy ball"
    if opt.name in ("adam", "adamw"):
        b1 = float(h["betas"][0])
        return (2 + 2 * b1) / ((1 - b1) * lr), "(2+2β₁)/((1−β₁)η), against the preconditioned sharpness"
    return math.nan, NO_THRESHOLD


class SharpnessProbe:
    """A run's sharpness each time it is asked: the probe rows in float64, the float64 twin of its network, and
    last time's vector (the warm start)."""

    def __init__(self, net, X: np.ndarray, Y: np.ndarray, seed: int):
        from tuilab.engine.nn.model import MLP

        acts = net.activations
        self.net64 = MLP(net.sizes, acts[:-1], acts[-1], net.loss_name, "float64")
        self.X = np.ascontiguousarray(X, np.float64)
        self.Y = np.ascontiguousarray(Y, np.float64)
        self.v = np.random.default_rng([seed, 31]).standard_normal(net.layout.size)

    def measure(self, theta: np.ndarray, opt=None) -> tuple[float, int]:
        """(λ_max, power iterations used): of H, or of P⁻¹H for Adam and AdamW (preconditioner)."""
        theta64 = np.ascontiguousarray(theta, np.float64)
        g0 = self.net64.loss_and_grad(theta64, self.X, self.Y)[1]
        p = preconditioner(opt) if opt is not None else None
        if p is None:
            def apply(u):
                return hessian_vector(self.net64, theta64, self.X, self.Y, u, g0)
        else:
            d = 1.0 / np.sqrt(p)

            def apply(u):
                return d * hessian_vector(self.net64, theta64, self.X, self.Y, d * u, g0)
        lam, v, used = top_eigenvalue(apply, self.v)
        if np.all(np.isfinite(v)):
            self.v = v
        return lam, used
