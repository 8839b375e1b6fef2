"""Atlases: every run of a surface preset at every pair of values of two settings (a learning rate, a
momentum, the start point), all cells in one kernel call a thread, kept in <dir>/atlas.npz.

A cell is exactly the run `landscapes.descend` makes with its settings: the same optimizer constructed the same
way, the same arithmetic step for step (kernels.surfaces.atlas_cells_of), so its final point is that run's, bit
for bit (tests/test_atlas.py holds them to it).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuilab.engine.config.atlas import DEFAULT_N, START_SETTINGS, AtlasAxis, AtlasSpec, hyper_key
from tuilab.engine.nn.optim import Optimizer, check_for_surfaces, get_spec, resolve_hyperparameters
from tuilab.engine.surfaces.landscapes import Landscape, landscape_of
from tuilab.errors import TuilabError
from tuilab.kernels import surfaces as K
from tuilab.kernels.step_choice import step_choice

METRIC_WORDS = {"final_error": "log10(f - f*) at the end", "steps_to_tol": "steps to within tol of a minimiser",
                "minimum": "the minimum it reached"}
STATUS_WORDS = {K.CONVERGED: "converged", K.OUT_OF_STEPS: "out of steps", K.DIVERGED: "diverged"}
LEFT = 3  # status: came within tol, then left (landscapes.LEFT)
FILE = "atlas.npz"


def axes_of(spec: AtlasSpec, landscape: Landscape) -> tuple[AtlasAxis, AtlasAxis]:
    """The spec's two axes; one left out is the start point's coordinate over the landscape's window."""
    x0, x1, y0, y1 = landscape.window
    x = spec.x or AtlasAxis("start.x", x0, x1, DEFAULT_N[0])
    y = spec.y or AtlasAxis("start.y" if x.setting != "start.y" else "start.x", y0, y1, DEFAULT_N[1])
    return x, y


def metric_of(spec: AtlasSpec, landscape: Landscape) -> str:
    if spec.metric != "auto":
        return spec.metric
    return "minimum" if len(landscape.minima) > 1 else "final_error"


@dataclass
class Atlas:
    """An atlas's cells: arrays [run, row (y value), column (x value)]."""

    landscape: str
    labels: list[str]
    optimizers: list[str]
    axes: tuple[str, str]
    log: tuple[bool, bool]
    values_0: np.ndarray  # the x axis's values (columns)
    values_1: np.ndarray  # the y axis's values (rows)
    final_x: np.ndarray
    final_y: np.ndarray
    final_error: np.ndarray  # log10(f - f*) at the last point (-inf: exactly f*; NaN: no f* known)
    steps_to_tol: np.ndarray  # the first step within tol of a minimiser, -1: never
    minimum: np.ndarray  # which minimiser (its index) the last point is within tol of, -1: none
    status: np.ndarray  # STATUS_WORDS' codes, LEFT for a run that came within tol and left
    steps: np.ndarray  # each run's steps
    tol: float
    metric: str
    minima: np.ndarray
    seconds: float  # the whole atlas: setting up every cell's optimizer and the descents
    threads: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.values_1), len(self.values_0)

    def grid(self, run: int, metric: str | None = None) -> np.ndarray:
        """The metric's values over the cells of one run (rows: y values, columns: x values)."""
        return getattr(self, metric or self.metric)[run]

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILE
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, landscape=self.landscape, labels=np.array(self.labels), optimizers=np.array(self.optimizers),
                 axes=np.array(self.axes), log=np.array(self.log), values_0=self.values_0, values_1=self.values_1,
                 final_x=self.final_x, final_y=self.final_y, final_error=self.final_error,
                 steps_to_tol=self.steps_to_tol, minimum=self.minimum, status=self.status, steps=self.steps,
                 tol=self.tol, metric=self.metric, minima=self.minima, seconds=self.seconds, threads=self.threads)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Atlas:
        path = Path(path)
        if path.is_dir():
            path = path / FILE
        try:
            with np.load(path) as z:
                d = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as exc:
            raise TuilabError(f"{path}: not an atlas tuilab can read ({exc})") from exc
        return cls(str(d["landscape"]), [str(s) for s in d["labels"]], [str(s) for s in d["optimizers"]],
                   tuple(str(s) for s in d["axes"]), tuple(bool(b) for b in d["log"]), d["values_0"],
                   d["values_1"], d["final_x"], d["final_y"], d["final_error"], d["steps_to_tol"], d["minimum"],
                   d["status"], d["steps"], float(d["tol"]), str(d["metric"]), d["minima"], float(d["seconds"]),
                   int(d["threads"]))


@dataclass(frozen=True)
class CellRun:
    """What one cell runs: the settings a single descend takes to make the same run."""

    optimizer: str
    start: tuple[float, float]
    steps: int
    hyper: dict


def cell_run(run, x: AtlasAxis, y: AtlasAxis, vx: float, vy: float, steps: int | None = None) -> CellRun:
    """Run `run` (an experiment's RunConfig) with axis x at vx and y at vy: its optimizer's hyperparameters
    checked by the registry, as a preset's would be (a value it refuses: one line naming the axis)."""
    start = list(run.surface.start)
    changes: dict = {}
    for axis, v in ((x, vx), (y, vy)):
        if axis.setting in START_SETTINGS:
            start[START_SETTINGS.index(axis.setting)] = float(v)
        elif axis.setting == "lr":
            changes["lr"] = float(v)
        else:
            key, index = hyper_key(axis.setting)
            if index is None:
                changes[key] = float(v)
            else:
                pair = list(changes.get(key, run.optimizer.hyper[key]))
                pair[index] = float(v)
                changes[key] = tuple(pair)
    hyper = dict(run.optimizer.hyper)
    if changes:
        given = {k: (list(v) if isinstance(v, tuple) else v) for k, v in {**hyper, **changes}.items()}
        try:
            hyper = resolve_hyperparameters(run.optimizer.name, given)
        except TuilabError as exc:
            raise TuilabError(f"atlas: {run.label} at {x.setting}={vx:g}, {y.setting}={vy:g}: {exc}") from exc
        hyper = {k: (tuple(v) if isinstance(v, list) else v) for k, v in hyper.items()}
    return CellRun(run.optimizer.name, (float(start[0]), float(start[1])), steps or run.surface.steps, hyper)


def _threads(cells: int) -> int:
    from tuilab.engine.training.threads import budget

    return max(1, min(budget().total, cells // 64 or 1))


def run_atlas(experiment, spec: AtlasSpec | None = None, threads: int | None = None, stop=None) -> Atlas:
    """Every run of the surface experiment at every cell of the atlas (experiment.atlas unless `spec`), on
    `threads` threads (default: this process's cores); `stop` (a threading.Event) set ends it early, the cells
    not reached NaN (status -1)."""
    from tuilab.engine.training.threads import budget

    spec = spec or experiment.atlas or AtlasSpec()
    landscape = landscape_of(experiment.runs[0].tables["surface"])
    x, y = axes_of(spec, landscape)
    vx, vy = x.values(), y.values()
    n1, n0 = len(vy), len(vx)
    runs = experiment.runs
    for run in runs:
        check_for_surfaces(run.optimizer.name)
        if get_spec(run.optimizer.name).closure is not None:
            raise TuilabError(f"atlas: {run.label} ({run.optimizer.name}) evaluates the function within a step and "
                              "has no kernel to run thousands of cells with; leave it out of the atlas preset")
    minima = np.array(landscape.minima, np.float64).reshape(-1, 2)
    p = np.array(landscape.params, np.float64)
    out = np.full((len(runs), n1 * n0, len(K.ATLAS_OUT)), np.nan)
    steps = np.zeros(len(runs), np.int64)
    threads = threads or _threads(n0 * n1)
    # chunks of cells, a few a thread: cells that diverge end early and leave their thread idle
    bounds = np.linspace(0, n1 * n0, 4 * threads + 1).astype(int)
    pieces = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    started = time.perf_counter()
    with budget().hold(threads), ThreadPoolExecutor(threads) as pool:
        for r, run in enumerate(runs):
            if stop is not None and stop.is_set():
                break
            args = _cells_of(run, x, y, vx, vy, spec)
            steps[r] = args[-1]
            choice = step_choice(get_spec(run.optimizer.name).opt_id)
            rest = (landscape.surface_id, p, *args[:4])
            tail = (args[4], int(steps[r]), minima, float(spec.tol))

            def chunk(piece, rest=rest, tail=tail, o=out[r], choice=choice):
                if stop is not None and stop.is_set():
                    return
                K.atlas_cells_of(choice, *rest, *tail, *piece, o)

            list(pool.map(chunk, pieces))
    seconds = time.perf_counter() - started
    return _atlas_of(landscape, runs, x, y, vx, vy, out.reshape(len(runs), n1, n0, -1), steps, spec,
                     metric_of(spec, landscape), minima, seconds, threads)


def _cells_of(run, x, y, vx, vy, spec):
    """(thetas, states, scals, hps, lrs, steps) of every cell of one run, each optimizer made as descend makes it."""
    n1, n0 = len(vy), len(vx)
    thetas = np.empty((n1 * n0, 2))
    lrs = np.empty(n1 * n0)
    states = scals = hps = None
    steps = 0
    for i in range(n1):
        for j in range(n0):
            c = i * n0 + j
            cell = cell_run(run, x, y, vx[j], vy[i], spec.steps)
            opt = Optimizer(cell.optimizer, 2, np.float64, total_steps=cell.steps, checked=cell.hyper)
            if states is None:
                states = np.empty((n1 * n0, *opt.state.shape))
                scals = np.empty((n1 * n0, opt.scal.size))
                hps = np.empty((n1 * n0, opt.hp.size))
            thetas[c] = cell.start
            states[c], scals[c], hps[c], lrs[c] = opt.state, opt.scal, opt.hp, opt.lr
            steps = cell.steps
    return thetas, states, scals, hps, lrs, steps


def _atlas_of(landscape, runs, x, y, vx, vy, out, steps, spec, metric, minima, seconds, threads) -> Atlas:
    fx, fy, f = out[..., 0], out[..., 1], out[..., 2]
    hit = np.where(np.isnan(out[..., 3]), -1, out[..., 3]).astype(np.int64)
    status = np.where(np.isnan(out[..., 4]), -1, out[..., 4]).astype(np.int64)
    status = np.where((status == K.OUT_OF_STEPS) & (hit >= 0), LEFT, status)
    with np.errstate(divide="ignore", invalid="ignore"):
        if landscape.f_min is None:
            error = np.full(f.shape, np.nan)
        else:
            error = np.log10(np.maximum(f - landscape.f_min, 0.0))
            error[~np.isfinite(f)] = np.inf  # diverged to NaN: as far from f* as it gets
    minimum = np.full(f.shape, -1, np.int64)
    if len(minima):
        d2 = (fx[..., None] - minima[:, 0]) ** 2 + (fy[..., None] - minima[:, 1]) ** 2
        near = np.argmin(np.where(np.isnan(d2), np.inf, d2), axis=-1)
        within = np.take_along_axis(d2, near[..., None], -1)[..., 0] < spec.tol ** 2
        minimum = np.where(within, near, -1)
    return Atlas(landscape.name, [r.label for r in runs], [r.optimizer.name for r in runs], (x.setting, y.setting),
                 (x.log, y.log), vx, vy, fx, fy, error, hit, minimum, status, steps, float(spec.tol), metric,
                 minima, seconds, threads)


def cell_count(experiment, spec: AtlasSpec | None = None) -> int:
    """Cells a run of the experiment's atlas has."""
    x, y = axes_of(spec or experiment.atlas or AtlasSpec(), landscape_of(experiment.runs[0].tables["surface"]))
    return x.n * y.n


def atlas_kernels_ready(experiment) -> bool:
    """Whether every run's atlas kernel is compiled or in numba's cache (the screen says so when not)."""
    from tuilab.engine.training.warmup import _cached

    return all(_cached(K.atlas_cells_of, None, repr(step_choice(get_spec(r.optimizer.name).opt_id)))
               for r in experiment.runs)


def describe_cell(atlas: Atlas, run: int, i: int, j: int) -> str:
    """One cell in words: its settings and how its run ended."""
    st = int(atlas.status[run, i, j])
    words = {**STATUS_WORDS, LEFT: "reached a minimum, then left it"}.get(st, "not run")
    parts = [f"{atlas.axes[0]}={atlas.values_0[j]:.4g}", f"{atlas.axes[1]}={atlas.values_1[i]:.4g}", words]
    err = float(atlas.final_error[run, i, j])
    if math.isfinite(err):
        parts.append(f"log10(f - f*) {err:.3g}")
    hit = int(atlas.steps_to_tol[run, i, j])
    if hit >= 0:
        parts.append(f"within {atlas.tol:g} at step {hit:,}")
    m = int(atlas.minimum[run, i, j])
    if m >= 0 and len(atlas.minima) > 1:
        mx, my = atlas.minima[m]
        parts.append(f"at the minimum ({mx:.3g}, {my:.3g})")
    return ", ".join(parts)
