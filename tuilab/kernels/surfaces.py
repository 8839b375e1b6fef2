"""2-D test functions (value and gradient) and the descent loop that moves a point over them.

The descent calls the very optimizer kernels that train the networks, on a theta of
two values. Surfaces are identified by an int; their parameters come in `p`.
"""

import math

import numpy as np
from numba import njit
from numba.extending import overload

from tuilab.kernels import optimizers as O
from tuilab.kernels._jit import kernel
from tuilab.kernels.step_choice import TABLE, StepChoiceType, kernel_named

ROSENBROCK = 0  # p = (a, b)
BEALE = 1
HIMMELBLAU = 2
RASTRIGIN = 3  # p = (A,)
BOOTH = 4
SADDLE = 5  # p = (wall,)
QUADRATIC = 6  # p = (condition,)

# statuses returned by surface_descent
CONVERGED = 0
OUT_OF_STEPS = 1
DIVERGED = 2
BLOWUP = 1e6  # a coordinate past this (or NaN) ends the run as diverged

# One descent loop is compiled per optimizer (_descend_with), with a direct call to its step
# kernel inside: 100k Adam steps in ~7 ms against ~13 ms through optimizer_step per step.


@kernel
def surface_value(surface_id, x, y, p):
    """f(x, y) of surface `surface_id` with parameters p."""
    if surface_id == ROSENBROCK:  # (a - x)^2 + b (y - x^2)^2
        return (p[0] - x) ** 2 + p[1] * (y - x * x) ** 2
    if surface_id == BEALE:  # (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2
        return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2
                + (2.625 - x + x * y * y * y) ** 2)
    if surface_id == HIMMELBLAU:  # (x^2 + y - 11)^2 + (x + y^2 - 7)^2
        return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2
    if surface_id == RASTRIGIN:  # 2A + x^2 - A cos(2 pi x) + y^2 - A cos(2 pi y)
        return (2.0 * p[0] + x * x - p[0] * math.cos(2.0 * math.pi * x)
                + y * y - p[0] * math.cos(2.0 * math.pi * y))
    if surface_id == BOOTH:  # (x + 2y - 7)^2 + (2x + y - 5)^2
        return (x + 2.0 * y - 7.0) ** 2 + (2.0 * x + y - 5.0) ** 2
    if surface_id == SADDLE:  # x^2 - y^2 + wall y^4
        return x * x - y * y + p[0] * y ** 4
    # QUADRATIC: (x^2 + condition y^2) / 2
    return 0.5 * (x * x + p[0] * y * y)


@kernel
def surface_grad(surface_id, x, y, p, g):
    """g[:] = grad f(x, y)."""
    if surface_id == ROSENBROCK:
        r = y - x * x
        g[0] = -2.0 * (p[0] - x) - 4.0 * p[1] * x * r
        g[1] = 2.0 * p[1] * r
    elif surface_id == BEALE:
        t1 = 1.5 - x + x * y
        t2 = 2.25 - x + x * y * y
        t3 = 2.625 - x + x * y * y * y
        g[0] = 2.0 * (t1 * (y - 1.0) + t2 * (y * y - 1.0) + t3 * (y * y * y - 1.0))
        g[1] = 2.0 * (t1 * x + t2 * 2.0 * x * y + t3 * 3.0 * x * y * y)
    elif surface_id == HIMMELBLAU:
        u = x * x + y - 11.0
        v = x + y * y - 7.0
        g[0] = 4.0 * x * u + 2.0 * v
        g[1] = 2.0 * u + 4.0 * y * v
    elif surface_id == RASTRIGIN:
        g[0] = 2.0 * x + 2.0 * math.pi * p[0] * math.sin(2.0 * math.pi * x)
        g[1] = 2.0 * y + 2.0 * math.pi * p[0] * math.sin(2.0 * math.pi * y)
    elif surface_id == BOOTH:
        u = x + 2.0 * y - 7.0
        v = 2.0 * x + y - 5.0
        g[0] = 2.0 * u + 4.0 * v
        g[1] = 4.0 * u + 2.0 * v
    elif surface_id == SADDLE:
        g[0] = 2.0 * x
        g[1] = -2.0 * y + 4.0 * p[0] * y ** 3
    else:
        g[0] = x
        g[1] = p[0] * y


@kernel
def nearest_distance(x, y, minima):
    """Euclidean distance from (x, y) to the nearest row of minima (inf when there is none)."""
    best = np.inf
    for k in range(minima.shape[0]):
        d = (x - minima[k, 0]) ** 2 + (y - minima[k, 1]) ** 2
        if d < best:
            best = d
    return math.sqrt(best)


@kernel
def _within(x, y, minima, tol2):
    for k in range(minima.shape[0]):
        if (x - minima[k, 0]) ** 2 + (y - minima[k, 1]) ** 2 < tol2:
            return True
    return False


@kernel
def _record(path, inner, rows, s, x, y, f, state, scal, shadow, dx, dy):
    if rows == path.shape[0]:
        rows -= 1  # the final point replaces the last thinned one
    path[rows, 0] = s
    path[rows, 1] = x
    path[rows, 2] = y
    path[rows, 3] = f
    if path.shape[1] > 4:  # the second trajectory an optimizer keeps (ASGD's average), or NaN
        path[rows, 4] = state[shadow, 0] if shadow >= 0 else np.nan
        path[rows, 5] = state[shadow, 1] if shadow >= 0 else np.nan
    if inner.shape[1] > 0:  # the optimizer inside at this point: the last step, its scalars, its state
        inner[rows, 0] = dx
        inner[rows, 1] = dy
        k = 2
        for i in range(scal.shape[0]):
            inner[rows, k] = scal[i]
            k += 1
        for i in range(state.shape[0]):
            for j in range(state.shape[1]):
                inner[rows, k] = state[i, j]
                k += 1
    return rows + 1


def _descend_with(step):
    """surface_descent's loop for one optimizer's step kernel: a direct call, no switch per step."""

    def descend(surface_id, p, theta, state, scal, hp, lr, n_steps, minima, tol, stride, path, shadow, inner):
        g = np.empty(2, theta.dtype)
        rows = _record(path, inner, 0, 0, theta[0], theta[1], surface_value(surface_id, theta[0], theta[1], p),
                       state, scal, shadow, np.nan, np.nan)
        tol2 = tol * tol
        first_hit = 0 if _within(theta[0], theta[1], minima, tol2) else -1
        status = OUT_OF_STEPS
        done = 0
        hp_t = hp.copy()
        demon = scal[O.S_DEMON_T] > 0.0
        maximize = scal[O.S_MAXIMIZE] != 0.0
        for s in range(1, n_steps + 1):
            surface_grad(surface_id, theta[0], theta[1], p, g)
            if maximize:  # as optimizer_step does
                g[0] = -g[0]
                g[1] = -g[1]
            # O.begin_step written out: called (inlined by numba or not) 100k Adam steps took
            # 7.3-8.7 ms against 5.8-6.6 ms like this; test_optimizer_table holds the two paths
            # to identical trajectories, Demon past T included
            t = scal[O.S_STEP]
            scal[O.S_STEP] = t + 1.0
            if demon:
                k = int(scal[O.S_DEMON_IDX])
                hp_t[k] = O.demon_beta(hp[k], t, scal[O.S_DEMON_T])
            x0 = theta[0]
            y0 = theta[1]
            step(theta, g, state, scal, hp_t, lr)
            done = s
            x = theta[0]
            y = theta[1]
            bad = not (abs(x) <= BLOWUP and abs(y) <= BLOWUP)  # also true for NaN
            if first_hit < 0 and not bad and _within(x, y, minima, tol2):
                first_hit = s
            if bad or s == n_steps or s % stride == 0:
                rows = _record(path, inner, rows, s, x, y, surface_value(surface_id, x, y, p), state, scal, shadow,
                               x - x0, y - y0)
            if bad:
                status = DIVERGED
                break
        if status != DIVERGED and first_hit >= 0 and _within(theta[0], theta[1], minima, tol2):
            status = CONVERGED
        return rows, done, first_hit, status
    return _jit_named(descend, f"surface_descent_{step.__name__}")


def _jit_named(func, name: str):
    """njit(func) under a name of its own. Each optimizer's loop is a closure of the same qualified name and
    argument types; numba's symbol for it is that name with a counter of the process that compiled it, so
    two loops cached by different processes could carry one symbol, and a process that loads both links
    one optimizer's code in the other's place (seen: an atlas's cells ran the wrong step and corrupted the
    heap). A name per step kernel keeps every loop's symbol its own."""
    func.__name__ = func.__qualname__ = name
    return njit(nogil=True, error_model="numpy")(func)


# Muon needs matrices and is refused on surfaces (engine.optim.check_for_surfaces): no loop of its own
_descend_by_id = O.dispatch_on_id(_descend_with, skip=(O.muon_step,))


@kernel
def surface_descent(surface_id, p, theta, state, scal, hp, opt_id, lr, n_steps, minima, tol, stride, path,
                    shadow, inner):
    """Move theta (x, y) for n_steps steps of optimizer `opt_id` over surface `surface_id`.

    Row r of path gets (step, x, y, f) for steps 0, stride, 2 stride, ... and the
    last row written is always the final point; a path of 6 columns also gets
    state[shadow] there (a second point the optimizer keeps: ASGD's average; NaN for shadow -1).
    Row r of inner, unless it has no columns, gets the optimizer inside at the same point: the last step's
    (dx, dy), then scal, then state row by row (NaN steps at step 0).
    Returns (rows written, steps done, first step with distance < tol or -1, status). A coordinate beyond BLOWUP or NaN
    stops the run at that step (status DIVERGED, its point the final row).
    """
    return _descend_by_id(opt_id, (surface_id, p, theta, state, scal, hp, lr, n_steps, minima, tol,
                                   stride, path, shadow, inner))


def _chosen_descent(step, args):
    """_descend_with(the kernel `step` names)(*args) (only callable from a kernel)."""
    raise TypeError("_chosen_descent() is for use inside @njit kernels")


@overload(_chosen_descent, jit_options={"cache": True})
def _chosen_descent_overload(step, args):
    if not isinstance(step, StepChoiceType) or step.kernel_name == TABLE:
        return None
    descend = _descend_with(kernel_named(step.kernel_name))
    return lambda step, args: descend(*args)


@kernel
def surface_descent_of(step, surface_id, p, theta, state, scal, hp, lr, n_steps, minima, tol, stride, path, shadow,
                       inner):
    """surface_descent for the one optimizer `step` (a kernels.step_choice.StepChoice) names, compiled for it
    alone: a surface preset of two optimizers compiles two descents, not the table's fourteen."""
    return _chosen_descent(step, (surface_id, p, theta, state, scal, hp, lr, n_steps, minima, tol, stride, path,
                                  shadow, inner))


# ---- atlases: many independent runs in one call, each exactly the run surface_descent makes ----

def _atlas_with(step):
    """atlas_cells_of's loop for one optimizer's step kernel. Each cell's arithmetic is _descend_with's, step for
    step (the same order, the same calls), so a cell gives the single run's bits; nothing is recorded on the way."""

    def cells(surface_id, p, thetas, states, scals, hps, lrs, n_steps, minima, tol, lo, hi, out):
        g = np.empty(2, thetas.dtype)
        theta = np.empty(2, thetas.dtype)
        tol2 = tol * tol
        for c in range(lo, hi):
            theta[0] = thetas[c, 0]
            theta[1] = thetas[c, 1]
            state = states[c]
            scal = scals[c]
            hp = hps[c]
            lr = lrs[c]
            first_hit = 0 if _within(theta[0], theta[1], minima, tol2) else -1
            status = OUT_OF_STEPS
            done = 0
            hp_t = hp.copy()
            demon = scal[O.S_DEMON_T] > 0.0
            maximize = scal[O.S_MAXIMIZE] != 0.0
            for s in range(1, n_steps + 1):
                surface_grad(surface_id, theta[0], theta[1], p, g)
                if maximize:
                    g[0] = -g[0]
                    g[1] = -g[1]
                t = scal[O.S_STEP]
                scal[O.S_STEP] = t + 1.0
                if demon:
                    k = int(scal[O.S_DEMON_IDX])
                    hp_t[k] = O.demon_beta(hp[k], t, scal[O.S_DEMON_T])
                step(theta, g, state, scal, hp_t, lr)
                done = s
                x = theta[0]
                y = theta[1]
                bad = not (abs(x) <= BLOWUP and abs(y) <= BLOWUP)
                if first_hit < 0 and not bad and _within(x, y, minima, tol2):
                    first_hit = s
                if bad:
                    status = DIVERGED
                    break
            if status != DIVERGED and first_hit >= 0 and _within(theta[0], theta[1], minima, tol2):
                status = CONVERGED
            out[c, 0] = theta[0]
            out[c, 1] = theta[1]
            out[c, 2] = surface_value(surface_id, theta[0], theta[1], p)
            out[c, 3] = first_hit
            out[c, 4] = status
            out[c, 5] = done
    return _jit_named(cells, f"atlas_cells_{step.__name__}")


ATLAS_OUT = ("x", "y", "f", "first_hit", "status", "steps_done")  # atlas_cells_of's columns of `out`
# No table version over every optimizer, as surface_descent has: an atlas's cells take seconds, and compiling
# the table (15-18 s on 2 cores) costs what compiling each of a zoo's optimizers alone does.


def _chosen_atlas(step, args):
    """_atlas_with(the kernel `step` names)(*args) (only callable from a kernel)."""
    raise TypeError("_chosen_atlas() is for use inside @njit kernels")


@overload(_chosen_atlas, jit_options={"cache": True})
def _chosen_atlas_overload(step, args):
    if not isinstance(step, StepChoiceType) or step.kernel_name == TABLE:
        return None
    cells = _atlas_with(kernel_named(step.kernel_name))
    return lambda step, args: cells(*args)


@kernel
def atlas_cells_of(step, surface_id, p, thetas, states, scals, hps, lrs, n_steps, minima, tol, lo, hi, out):
    """Cells lo..hi-1 of an atlas, each a run of the optimizer `step` (a kernels.step_choice.StepChoice) names, as
    surface_descent makes it: cell c starts at thetas[c] with states[c], scals[c], hps[c], lrs[c] (each changed in
    place) and gets row c of out (ATLAS_OUT: its final x, y and f, first step within tol of a minimiser or -1,
    status, steps done)."""
    _chosen_atlas(step, (surface_id, p, thetas, states, scals, hps, lrs, n_steps, minima, tol, lo, hi, out))
