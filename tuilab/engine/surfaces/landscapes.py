"""2-D landscapes (minima, windows) and optimizer runs over them with the network's kernels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.engine.nn.internals import trajectory_internals
from tuilab.engine.nn.optim import Optimizer, check_for_surfaces
from tuilab.engine.surfaces.params import PARAM_FLOORS, SURFACE_PARAMS, SURFACES
from tuilab.engine.training.kernel_choice import whole_table
from tuilab.errors import TuilabError, choice_error
from tuilab.kernels import surfaces as K
from tuilab.kernels.step_choice import step_choice

TOLERANCE = 1e-3  # "converged": within this distance of a minimiser


@dataclass(frozen=True)
class Landscape:
    """A test function: its kernel id, parameters, minimisers, minimum and a plotting window."""

    name: str
    surface_id: int
    params: tuple[float, ...]
    minima: tuple[tuple[float, float], ...]
    f_min: float | None
    window: tuple[float, float, float, float]  # x0, x1, y0, y1
    default_start: tuple[float, float]
    summary: str

    def value(self, x, y):
        """f on scalars or arrays (NumPy, for contours and checks)."""
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        out = np.empty(np.broadcast(x, y).shape)
        p = np.array(self.params, np.float64)
        for idx in np.ndindex(out.shape):
            out[idx] = K.surface_value(self.surface_id, float(np.broadcast_to(x, out.shape)[idx]),
                                       float(np.broadcast_to(y, out.shape)[idx]), p)
        return out if out.shape else float(out)

    def grid(self, nx: int, ny: int, window=None):
        """(xs, ys, f[ny, nx]) over the window."""
        x0, x1, y0, y1 = window or self.window
        xs = np.linspace(x0, x1, nx)
        ys = np.linspace(y0, y1, ny)
        return xs, ys, _grid_values(self.surface_id, np.array(self.params, np.float64), xs, ys)

    def gradient(self, x: float, y: float) -> np.ndarray:
        g = np.empty(2)
        K.surface_grad(self.surface_id, float(x), float(y), np.array(self.params, np.float64), g)
        return g


@K.kernel
def _grid_values(surface_id, p, xs, ys):
    out = np.empty((ys.shape[0], xs.shape[0]))
    for i in range(ys.shape[0]):
        for j in range(xs.shape[0]):
            out[i, j] = K.surface_value(surface_id, xs[j], ys[i], p)
    return out


# Himmelblau's minimisers, from Newton's method to machine precision
_HIMMELBLAU = ((3.0, 2.0), (-2.805118086952745, 3.131312518250573),
               (-3.779310253377747, -3.283185991286170), (3.584428340330492, -1.848126526964404))



def make_landscape(name: str, **params) -> Landscape:
    """A landscape by name; parameters (a, b, A, wall, condition) where it has them."""
    if name not in SURFACES:
        raise choice_error("surface", name, SURFACES)
    allowed = SURFACE_PARAMS.get(name, {})
    for key in params:
        if key not in allowed:
            raise TuilabError(f"surface {name!r} has no parameter {key!r}"
                              + (f"; it takes {', '.join(allowed)}" if allowed else ""))
    p = {**allowed, **params}
    if name == "rosenbrock":
        a, b = p["a"], p["b"]
        if b <= 0:
            raise TuilabError(f"rosenbrock: b must be > 0, got {b}")
        return Landscape(name, K.ROSENBROCK, (a, b), ((a, a * a),), 0.0,
                         (-5.0, 3.0, -3.0, 17.0), (-4.0, -2.0),
                         "the banana valley of (a - x)^2 + b (y - x^2)^2")
    if name == "beale":
        return Landscape(name, K.BEALE, (), ((3.0, 0.5),), 0.0, (-4.5, 4.5, -4.5, 4.5), (1.0, 1.5),
                         "flat plateaus and steep ridges around a minimum at (3, 0.5)")
    if name == "himmelblau":
        return Landscape(name, K.HIMMELBLAU, (), _HIMMELBLAU, 0.0, (-5.0, 5.0, -5.0, 5.0), (0.0, 0.0),
                         "four equal minima: which one an optimizer finds depends on its path")
    if name == "rastrigin":
        if p["A"] < 0:
            raise TuilabError(f"rastrigin: A must be >= 0, got {p['A']}")
        return Landscape(name, K.RASTRIGIN, (p["A"],), ((0.0, 0.0),), 0.0, (-5.12, 5.12, -5.12, 5.12),
                         (3.3, -2.7), "a bowl covered in local minima")
    if name == "booth":
        return Landscape(name, K.BOOTH, (), ((1.0, 3.0),), 0.0, (-10.0, 10.0, -10.0, 10.0), (-8.0, -8.0),
                         "a plain, slightly tilted bowl")
    if name == "saddle":
        wall = p["wall"]
        if wall < 0:
            raise TuilabError(f"saddle: wall must be >= 0, got {wall}")
        if wall == 0:  # x^2 - y^2: unbounded below, no minimiser
            return Landscape(name, K.SADDLE, (0.0,), (), None, (-2.0, 2.0, -2.0, 2.0), (1.5, 1e-6),
                             "x^2 - y^2: a saddle at the origin, unbounded below")
        m = 1.0 / math.sqrt(2.0 * wall)
        return Landscape(name, K.SADDLE, (wall,), ((0.0, m), (0.0, -m)), -1.0 / (4.0 * wall),
                         (-2.0, 2.0, -1.5 * m - 0.5, 1.5 * m + 0.5), (1.5, 1e-6),
                         "x^2 - y^2 + wall y^4: a saddle at the origin between two minima")
    c = p["condition"]
    if c < 1:
        raise TuilabError(f"ill-conditioned: condition must be >= 1, got {c}")
    return Landscape(name, K.QUADRATIC, (c,), ((0.0, 0.0),), 0.0, (-10.0, 10.0, -10.0, 10.0), (-9.0, 3.0),
                     f"(x^2 + {c:g} y^2) / 2: a narrow valley, condition number {c:g}")


def landscape_of(table: dict) -> Landscape:
    """The landscape a resolved [surface] table describes."""
    params = {k: table[k] for k in SURFACE_PARAMS.get(table["name"], {}) if k in table}
    return make_landscape(table["name"], **params)


def check_surface_table(table: dict) -> None:
    if table.get("name") not in SURFACES:
        raise choice_error("surface", table.get("name"), SURFACES)
    allowed = set(SURFACE_PARAMS.get(table["name"], {}))
    for key in PARAM_FLOORS:
        if key in table and key not in allowed:
            raise TuilabError(f"{table['name']} has no parameter {key!r}"
                              + (f"; it takes {', '.join(sorted(allowed))}" if allowed else ""))
    landscape_of(table)


@dataclass(frozen=True)
class SurfaceResult:
    """One optimizer's run over a landscape: its (thinned) path and how it ended."""

    label: str
    optimizer: str
    lr: float
    steps: np.ndarray  # step number of each kept point
    path: np.ndarray  # (points, 2)
    f: np.ndarray
    steps_done: int
    steps_to_tol: int | None
    status: str  # "converged", "out of steps", LEFT, "diverged" (older records: "running out of steps")
    landscape: Landscape
    average: np.ndarray | None = None  # (points, 2): ASGD's running average at the same steps
    inner: dict | None = None  # the optimizer inside at each kept point (engine.internals.trajectory_internals)

    @property
    def final(self) -> tuple[float, float]:
        return float(self.path[-1, 0]), float(self.path[-1, 1])

    @property
    def distance(self) -> np.ndarray:
        """Distance of each kept point to the nearest minimiser (NaN when there is none)."""
        if not self.landscape.minima:
            return np.full(len(self.path), np.nan)
        m = np.array(self.landscape.minima)
        return np.sqrt(((self.path[:, None, :] - m[None, :, :]) ** 2).sum(-1)).min(axis=1)

    @property
    def log10_error(self) -> np.ndarray:
        """log10(f - f*) per kept point (f* reached exactly gives -inf; none known gives NaN)."""
        if self.landscape.f_min is None:
            return np.full(len(self.f), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(np.maximum(self.f - self.landscape.f_min, 0.0))

    def summary(self) -> dict:
        x, y = self.final
        dist = self.distance[-1]
        err = self.log10_error[-1]
        return {"label": self.label, "optimizer": self.optimizer, "lr": self.lr, "status": self.status,
                "x": x, "y": y, "f": float(self.f[-1]), "distance": float(dist),
                "log10_error": float(err), "steps_done": self.steps_done,
                "steps_to_1e-3": self.steps_to_tol, **self._average_summary(), **self._inside_summary()}

    def _inside_summary(self) -> dict:
        """The optimizer inside at the final point (engine.internals.POINT_COLUMNS it has)."""
        if not self.inner:
            return {}
        found = {k: float(v[-1]) for k, v in self.inner.items() if len(v) and math.isfinite(float(v[-1]))}
        return {"inside": found} if found else {}

    def index_at(self, step: float) -> int:
        """The kept point at or last before `step`."""
        return max(0, int(np.searchsorted(self.steps, step, side="right")) - 1)

    def _average_summary(self) -> dict:
        if self.average is None:
            return {}
        ax, ay = (float(v) for v in self.average[-1])
        m = self.landscape.minima
        dist = min(math.hypot(ax - mx, ay - my) for mx, my in m) if m else math.nan
        f = float(self.landscape.value(ax, ay))
        f_min = self.landscape.f_min
        if f_min is None:
            err = math.nan
        else:
            err = math.log10(f - f_min) if f > f_min else -math.inf
        return {"average": {"x": ax, "y": ay, "f": f, "distance": dist, "log10_error": err}}


_STATUS = {K.CONVERGED: "converged", K.OUT_OF_STEPS: "out of steps", K.DIVERGED: "diverged"}
LEFT = "reached the minimum, then left it"  # within TOLERANCE at some step, outside it at the last


def _status(code: int, hit: int) -> str:
    """A finished run's status in words: one that came within TOLERANCE and left is not 'out of steps'."""
    return LEFT if code == K.OUT_OF_STEPS and hit >= 0 else _STATUS[code]


def _descend_with_closure(landscape, opt, theta, steps, stride, path, minima, label) -> SurfaceResult:
    """descend for an optimizer that evaluates f within a step (L-BFGS): the same records as
    K.surface_descent (a row every stride steps and the last, the first hit, the status), a Python loop
    whose steps each run up to max_iter iterations of their own."""
    p = np.array(landscape.params, np.float64)

    def closure(th):
        g = np.empty(2)
        K.surface_grad(landscape.surface_id, float(th[0]), float(th[1]), p, g)
        return float(K.surface_value(landscape.surface_id, float(th[0]), float(th[1]), p)), g

    def near(th):  # the kernel loop's own test
        return bool(K._within(float(th[0]), float(th[1]), minima, TOLERANCE**2))

    rows = 0

    def record(s):
        nonlocal rows
        if rows == len(path):
            rows -= 1  # the final point replaces the last thinned one
        path[rows, :4] = (s, theta[0], theta[1], K.surface_value(landscape.surface_id, theta[0], theta[1], p))
        path[rows, 4:] = np.nan
        moves[rows] = theta - before
        rows += 1

    moves = np.empty((len(path), 2))  # each kept point's last step (NaN at the start)
    before = np.full(2, np.nan)
    record(0)
    hit = 0 if near(theta) else -1
    status, done = K.OUT_OF_STEPS, 0
    for s in range(1, steps + 1):
        before = theta.copy()
        opt.step_closure(theta, closure)
        done = s
        bad = not (abs(theta[0]) <= K.BLOWUP and abs(theta[1]) <= K.BLOWUP)
        if hit < 0 and not bad and near(theta):
            hit = s
        if bad or s == steps or s % stride == 0:
            record(s)
        if bad:
            status = K.DIVERGED
            break
    if status != K.DIVERGED and hit >= 0 and near(theta):
        status = K.CONVERGED
    path = path[:rows]
    inner = trajectory_internals(opt, moves[:rows])  # L-BFGS has its steps only: no state the kernels keep
    return SurfaceResult(label, opt.name, float(opt.lr), path[:, 0].astype(np.int64), path[:, 1:3].copy(),
                         path[:, 3].copy(), done, None if hit < 0 else hit, _status(status, hit), landscape, None,
                         inner)


def descend(landscape: Landscape, optimizer: str, start, steps: int, max_points: int = 2000,
            label: str | None = None, *, checked: dict | None = None, **hyper) -> SurfaceResult:
    """Run `optimizer` from `start` for `steps` steps over the landscape (float64); `checked`: its
    hyperparameters as the preset reader resolved them (a run's OptimizerTable.hyper), else `hyper`."""
    if steps < 1:
        raise TuilabError(f"steps must be a whole number >= 1, got {steps}")
    if max_points < 2:
        raise TuilabError(f"max_points must be >= 2, got {max_points}")
    check_for_surfaces(optimizer)
    opt = Optimizer(optimizer, 2, np.float64, total_steps=steps, checked=checked, **hyper)
    theta = np.array(start, np.float64)
    stride = max(1, -(-steps // (max_points - 1)))
    path = np.empty((min(steps // stride + 2, max_points), 6))
    minima = np.array(landscape.minima, np.float64).reshape(-1, 2)
    if opt.closure is not None:
        return _descend_with_closure(landscape, opt, theta, steps, stride, path, minima, label or optimizer)
    inner = np.empty((len(path), 2 + opt.scal.size + opt.state.size))
    args = (landscape.surface_id, np.array(landscape.params, np.float64), theta, opt.state, opt.scal, opt.hp)
    rest = (float(opt.lr), steps, minima, TOLERANCE, stride, path, opt.shadow, inner)
    if whole_table():  # a surface preset of many optimizers (engine.surfaces.runner): the table's descent
        rows, done, hit, status = K.surface_descent(*args, opt.opt_id, *rest)
    else:
        rows, done, hit, status = K.surface_descent_of(step_choice(opt.opt_id), *args, *rest)
    path = path[:rows]
    return SurfaceResult(label or optimizer, optimizer, float(opt.lr), path[:, 0].astype(np.int64),
                         path[:, 1:3].copy(), path[:, 3].copy(), int(done), None if hit < 0 else int(hit),
                         _status(int(status), int(hit)), landscape, path[:, 4:6].copy() if opt.shadow >= 0 else None,
                         trajectory_internals(opt, inner[:rows]))
