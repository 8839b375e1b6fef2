"""What a network learned over its input plane, for any data set with two inputs (issue 29): its prediction on a
grid spanning the data, in the data's own coordinates (before normalising), as class probabilities, or the
output's value for one output under squared error.

Kept in `<run>/decision.npz`: `x` (nx), `y` (ny), the grid's axes; `p` (ny, nx, classes). `as_text` draws it
with a character per class (no colour needed), for `tuilab report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRID = (96, 64)  # nx, ny: two pixels a character cell in the dashboard's half-block drawing
PAD = 0.08  # the grid reaches this share of the data's range beyond it on each side
CLASS_CHARS = "oxsvzcnwkm"  # a character per class, in order (upper-case where sure)
UNSURE = 0.6  # a cell whose top probability is below this is drawn lower-case / faint: the boundary


@dataclass(frozen=True)
class DecisionMap:
    x: np.ndarray  # (nx,) the grid's first input, in the data's own units
    y: np.ndarray  # (ny,) its second
    p: np.ndarray  # (ny, nx, classes) probabilities; (ny, nx, 1) an output's value (regression)

    @property
    def classes(self) -> int:
        return self.p.shape[2]


def has_map(prepared) -> bool:
    """Whether a data set gets a decision map: two inputs, and inputs that can be mapped back to the data's own
    coordinates (not normalised per sample, which folds the plane)."""
    return prepared.n_inputs == 2 and prepared.normalize != "per_sample"


def grid_axes(prepared, nx: int = GRID[0], ny: int = GRID[1]) -> tuple[np.ndarray, np.ndarray]:
    """Axes spanning the training and test points (in the data's units), padded by PAD on each side."""
    points = np.concatenate([prepared.to_data(prepared.X_train), prepared.to_data(prepared.X_test)])
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - PAD * span, hi + PAD * span
    return np.linspace(lo[0], hi[0], nx), np.linspace(lo[1], hi[1], ny)


def decision_map(net, theta: np.ndarray, prepared, nx: int = GRID[0], ny: int = GRID[1]) -> DecisionMap:
    """The network's outputs over the grid: one forward pass of nx * ny rows (mlp_predict, in the network's
    dtype), the grid's points normalised as the training data was."""
    x, y = grid_axes(prepared, nx, ny)
    gx, gy = np.meshgrid(x, y)
    raw = np.column_stack([gx.ravel(), gy.ravel()])
    out = net.predict(theta, np.ascontiguousarray(prepared.to_inputs(raw), dtype=net.dtype))
    return DecisionMap(x, y, out.astype(np.float32).reshape(ny, nx, out.shape[1]))


def load(path: Path) -> DecisionMap:
    with np.load(path) as f:
        return DecisionMap(f["x"], f["y"], f["p"])


def cell_char(cell: np.ndarray, lo: float, hi: float) -> str:
    """One cell of a map in a character: its class's (upper-case where the top probability is at least UNSURE),
    or for one output its value from lo to hi in ten steps 0-9."""
    if len(cell) == 1:
        return str(min(9, int(10 * (float(cell[0]) - lo) / (hi - lo)))) if hi > lo else "0"
    k = int(np.argmax(cell))
    char = CLASS_CHARS[k % len(CLASS_CHARS)]
    return char.upper() if cell[k] >= UNSURE else char


def as_text(m: DecisionMap, width: int = 64, height: int = 24) -> str:
    """The map in characters, top row the largest y: each class's character where it wins (upper-case where
    sure, lower-case below UNSURE), for a regression its value in ten steps 0-9. Axes' ranges beneath."""
    xs = np.linspace(0, len(m.x) - 1, min(width, len(m.x))).round().astype(int)
    ys = np.linspace(0, len(m.y) - 1, min(height, len(m.y))).round().astype(int)[::-1]
    lo, hi = float(m.p.min()), float(m.p.max())
    lines = ["".join(cell_char(m.p[j, i], lo, hi) for i in xs) for j in ys]
    key = ("output value, 0 (lowest) .. 9 (highest)" if m.classes == 1 else
           "  ".join(f"{CLASS_CHARS[k % len(CLASS_CHARS)].upper()} class {k}" for k in range(m.classes))
           + f"  (lower-case: top probability below {UNSURE:.0%})")
    lines.append(f"x {m.x[0]:.3g} .. {m.x[-1]:.3g}, y {m.y[0]:.3g} .. {m.y[-1]:.3g}; {key}")
    return "\n".join(lines)
