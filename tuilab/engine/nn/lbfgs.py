"""L-BFGS as torch.optim.LBFGS has it: a quasi-Newton step from the last `history_size` curvature pairs,
with a fixed step or a strong-Wolfe line search, `max_iter` iterations per step.

Unlike every other optimizer it re-evaluates the loss within a step, so it takes a closure
f(theta) -> (loss, gradient) rather than one gradient: full batches on networks (the
closure is the whole training set), natural on surfaces. The arithmetic is NumPy over the
flat theta, in torch's order (torch/optim/lbfgs.py); the closure is where the time goes.
Its dot products and sums are fixed-order kernels, not BLAS: OpenBLAS's dot rounds by
processor, and a line search grows that last bit (kernels/reductions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tuilab.kernels._jit import kernel, like
from tuilab.kernels.optimizers import fma
from tuilab.kernels.reductions import fixed_abs_sum, fixed_dot


@kernel
def add_scaled(y, a, x):
    """y + a x, each element rounded once: torch's y.add(x, alpha=a) (a fused multiply-add)."""
    out = np.empty_like(y)
    for i in range(y.shape[0]):
        out[i] = fma(x[i], like(y, a), y[i])
    return out


def dot(x, y):
    """x . y in the fixed order of kernels/reductions.py, as a scalar of x's dtype (float32 stays float32)."""
    return x.dtype.type(fixed_dot(x, y))


def abs_sum(x):
    """sum |x_i| in the same fixed order, as a scalar of x's dtype."""
    return x.dtype.type(fixed_abs_sum(x))


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), within bounds (torch's _cubic_interpolate)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def strong_wolfe(obj, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step length t along d meeting the strong Wolfe conditions (torch's _strong_wolfe, after minFunc):
    returns (f, g, t, evaluations). obj(x, t, d) is the loss and gradient at x + t d."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj(x, t, d)
    ls_func_evals = 1
    gtd_new = dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj(x, t, d)
        ls_func_evals += 1
        gtd_new = dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
        bracket_gtd = [gtd, gtd_new]

    # zoom: shrink the bracket until a point satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj(x, t, d)
        ls_func_evals += 1
        gtd_new = dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


@dataclass
class LBFGSState:
    """What L-BFGS carries from one step to the next (torch's state[...] of the same names)."""

    n_iter: int = 0
    func_evals: int = 0
    d: np.ndarray | None = None
    t: float | None = None
    old_dirs: list = field(default_factory=list)
    old_stps: list = field(default_factory=list)
    ro: list = field(default_factory=list)
    H_diag: float = 1.0
    prev_flat_grad: np.ndarray | None = None
    prev_loss: float | None = None


def state_to_arrays(st: LBFGSState, n: int, dtype) -> tuple[dict, dict]:
    """The state as arrays and plain numbers (for a checkpoint)."""
    k = len(st.old_dirs)
    empty = np.zeros((0, n), dtype)
    arrays = {"d": st.d if st.d is not None else np.zeros(0, dtype),
              "prev_flat_grad": st.prev_flat_grad if st.prev_flat_grad is not None else np.zeros(0, dtype),
              "old_dirs": np.array(st.old_dirs, dtype) if k else empty,
              "old_stps": np.array(st.old_stps, dtype) if k else empty,
              "ro": np.array(st.ro, dtype)}
    numbers = {"n_iter": st.n_iter, "func_evals": st.func_evals, "H_diag": float(st.H_diag),
               "t": None if st.t is None else float(st.t),
               "prev_loss": None if st.prev_loss is None else float(st.prev_loss)}
    return arrays, numbers


def state_from_arrays(arrays: dict, numbers: dict, dtype) -> LBFGSState:
    """state_to_arrays undone, with the numbers back in theta's dtype (so resumed steps round as before)."""
    num = np.dtype(dtype).type
    return LBFGSState(
        n_iter=int(numbers["n_iter"]), func_evals=int(numbers["func_evals"]),
        d=arrays["d"].copy() if len(arrays["d"]) else None,
        t=None if numbers["t"] is None else num(numbers["t"]),
        old_dirs=[r.copy() for r in arrays["old_dirs"]], old_stps=[r.copy() for r in arrays["old_stps"]],
        ro=[num(v) for v in arrays["ro"]], H_diag=num(numbers["H_diag"]),
        prev_flat_grad=arrays["prev_flat_grad"].copy() if len(arrays["prev_flat_grad"]) else None,
        prev_loss=numbers["prev_loss"])


class LBFGS:
    """torch.optim.LBFGS over one flat theta: step(theta, closure) moves theta in place and returns the loss
    at its start; closure(theta) -> (loss, gradient) is evaluated as often as the step needs."""

    def __init__(self, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        self.lr, self.max_iter = float(lr), int(max_iter)
        self.max_eval = int(max_eval) if max_eval else self.max_iter * 5 // 4
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)
        self.history_size, self.line_search_fn = int(history_size), line_search_fn
        self.state = LBFGSState()

    def step(self, theta: np.ndarray, closure, lr: float | None = None) -> float:
        lr = self.lr if lr is None else float(lr)
        st = self.state
        orig_loss, flat_grad = closure(theta)
        loss = float(orig_loss)
        current_evals = 1
        st.func_evals += 1
        if np.abs(flat_grad).max() <= self.tolerance_grad:
            return orig_loss
        d, t = st.d, st.t
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            st.n_iter += 1
            if st.n_iter == 1:
                d = -flat_grad
                st.old_dirs, st.old_stps, st.ro, st.H_diag = [], [], [], 1.0
            else:
                y = flat_grad - st.prev_flat_grad
                s = d * t
                ys = dot(y, s)
                if ys > 1e-10:
                    if len(st.old_dirs) == self.history_size:
                        st.old_dirs.pop(0)
                        st.old_stps.pop(0)
                        st.ro.pop(0)
                    st.old_dirs.append(y)
                    st.old_stps.append(s)
                    st.ro.append(1.0 / ys)
                    st.H_diag = ys / dot(y, y)
                num_old = len(st.old_dirs)
                al = [0.0] * num_old
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):  # the two-loop recursion: d = -H g
                    al[i] = dot(st.old_stps[i], q) * st.ro[i]
                    q = add_scaled(q, -al[i], st.old_dirs[i])
                d = r = q * st.H_diag
                for i in range(num_old):
                    be_i = dot(st.old_dirs[i], r) * st.ro[i]
                    r[:] = add_scaled(r, al[i] - be_i, st.old_stps[i])
            st.prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / abs_sum(flat_grad)) * lr if st.n_iter == 1 else lr
            gtd = dot(flat_grad, d)
            if gtd > -self.tolerance_change:
                break
            ls_func_evals = 0
            if self.line_search_fn == "strong_wolfe":
                x_init = theta.copy()

                def obj(x, t, d):
                    theta[:] = add_scaled(x, t, d)
                    f, g = closure(theta)
                    theta[:] = x
                    return float(f), g

                loss, flat_grad, t, ls_func_evals = strong_wolfe(obj, x_init, t, d, loss, flat_grad, gtd,
                                                                 max_ls=self.max_eval - current_evals)
                theta[:] = add_scaled(theta, t, d)
                opt_cond = np.abs(flat_grad).max() <= self.tolerance_grad
            else:
                theta[:] = add_scaled(theta, t, d)
                opt_cond = False
                if n_iter != self.max_iter:
                    loss, flat_grad = closure(theta)
                    loss = float(loss)
                    opt_cond = np.abs(flat_grad).max() <= self.tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            st.func_evals += ls_func_evals
            if n_iter == self.max_iter or current_evals >= self.max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change:
                break
        st.d, st.t, st.prev_loss = d, t, prev_loss
        return orig_loss
