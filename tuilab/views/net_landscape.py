"""A network's loss landscape (engine.nn.landscape) drawn with the surface lab's own contour and trajectory code
(views.surface.draw_surface): the computed grid stands in for a test function, each run's projected path for a
trajectory, o at its start and * at its end; and the table that says how much of the path the plane holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.engine.nn.landscape import MISREAD


@dataclass
class GridSurface:
    """What draw_surface reads of a landscape, from a computed loss grid (bilinear between its points)."""

    name: str
    summary: str
    window: tuple[float, float, float, float]
    minima: tuple  # the runs' ends: drawn as *
    a: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    f_min: float | None = None

    def grid(self, nx: int, ny: int, window=None):
        x0, x1, y0, y1 = window or self.window
        xs, ys = np.linspace(x0, x1, nx), np.linspace(y0, y1, ny)
        # along a, then along b: the grid is regular, so two passes of np.interp are bilinear
        rows = np.array([np.interp(xs, self.a, row) for row in self.loss])  # (len(b), nx)
        f = np.array([np.interp(ys, self.b, rows[:, j]) for j in range(nx)]).T  # (ny, nx)
        return xs, ys, f


@dataclass
class PathTrace:
    """A run's projected path as draw_surface draws a trajectory."""

    label: str
    path: np.ndarray
    status: str = "path"
    average: None = None

    def index_at(self, step: float) -> int:
        return min(len(self.path) - 1, max(0, int(step)))


def surface_of(land, title: str, labels=("run",)) -> tuple[GridSurface, list[PathTrace]]:
    """The landscape as draw_surface takes it: the surface, and the paths (the run's first, then the others)."""
    traces = [PathTrace(labels[0], land.path)] + [PathTrace(k, v) for k, v in land.others.items()]
    window = (float(land.a[0]), float(land.a[-1]), float(land.b[0]), float(land.b[-1]))
    ends = tuple((float(t.path[-1, 0]), float(t.path[-1, 1])) for t in traces)
    return GridSurface(title, axes_words(land), window, ends, land.a, land.b, land.loss), traces


def axes_words(land) -> str:
    """What the two axes are, in a few words."""
    if land.kind == "pca":
        e = land.explained
        return (f"PCA of the path: the axes explain {e[0]:.0%} and {e[1]:.0%} of its variance"
                if len(e) >= 2 else "PCA of the path")
    if land.kind == "runs":
        return "the plane through the runs' start (0, 0) and two runs' ends (1, 0), (0, 1)"
    return "two filter-normalised random directions (Li et al. 2018)"


def path_rows(land) -> tuple[list[str], list[list[str]]]:
    """Per snapshot: its epoch, where it projects, how far off the plane, the true loss and the plane's there."""
    header = ["epoch", "a", "b", "off plane", "true loss", "plane loss", ""]
    rows = []
    for k, e in enumerate(land.epochs):
        flag = "plane misreads it" if land.misread[k] else ""
        rows.append([str(int(e)), f"{land.path[k, 0]:.3g}", f"{land.path[k, 1]:.3g}", f"{land.off_plane[k]:.0%}",
                     _g(land.true_loss[k]), _g(land.plane_loss[k]), flag])
    return header, rows


def honesty_line(land) -> str:
    """One sentence on how far the picture can be trusted."""
    bad = int(land.misread.sum())
    worst = float(np.max(land.off_plane)) if len(land.off_plane) else 0.0
    words = (f"the plane holds the path to within {worst:.0%} of each snapshot's distance from the end"
             if worst < 0.5 else
             f"most of the path lies off the plane (up to {worst:.0%} of a snapshot's distance from the end): "
             "read the picture as a shadow")
    if bad:
        words += (f"; at {bad} of {len(land.epochs)} snapshots the plane's loss differs from the true loss by more "
                  f"than {MISREAD:.0%}")
    return words


def _g(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.4g}"
