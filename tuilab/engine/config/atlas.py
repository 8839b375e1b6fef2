"""A surface preset's [atlas] table: two axes of settings, a run at every pair of values, parsed and checked.

Apart from the atlas itself (engine.surfaces.atlas), as lr_range.py is, so that the configuration reads the
table without reaching the code that runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.errors import TuilabError

START_SETTINGS = ("start.x", "start.y")  # the start point's coordinates
METRICS = ("auto", "final_error", "steps_to_tol", "minimum")
MAX_N = 1000  # values an axis
MAX_CELLS = 1_000_000  # cells a run: 8 numbers each, and seconds of descents
DEFAULT_N = (64, 40)  # the start point's axes when [atlas] leaves them out: a heat map of 64 x 20 characters


@dataclass(frozen=True)
class AtlasAxis:
    """One axis: a setting ("lr", "start.x", "start.y", or a hyperparameter of the runs' optimizers, a pair's
    number as "betas[0]") and n values from lo to hi, evenly spaced or on a log scale."""

    setting: str
    lo: float
    hi: float
    n: int
    log: bool = False

    def values(self) -> np.ndarray:
        if self.log:
            return np.geomspace(self.lo, self.hi, self.n)
        return np.linspace(self.lo, self.hi, self.n)

    def options(self) -> dict:
        return {"setting": self.setting, ("log" if self.log else "lin"): [self.lo, self.hi], "n": self.n}


@dataclass(frozen=True)
class AtlasSpec:
    """A preset's [atlas] table. An axis left out is the start point's x (or y) over the landscape's window."""

    x: AtlasAxis | None = None
    y: AtlasAxis | None = None
    metric: str = "auto"  # auto: which minimum where the landscape has several, else the final error
    steps: int | None = None  # None: each run's [surface] steps
    tol: float = 1e-3  # "reached": within this distance of a minimiser

    def options(self) -> dict:
        out: dict = {"metric": self.metric, "tol": self.tol}
        if self.steps is not None:
            out["steps"] = self.steps
        for name in ("x", "y"):
            axis = getattr(self, name)
            if axis is not None:
                out[name] = axis.options()
        return out


def _number(source: str, where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TuilabError(f"{source}: [atlas] {where} must be a number, got {value!r}")
    return float(value)


def parse_axis(table, source: str, name: str) -> AtlasAxis:
    example = f"{name} = {{ setting = \"lr\", log = [1e-4, 1e-1], n = 40 }}"
    if not isinstance(table, dict):
        raise TuilabError(f"{source}: [atlas] {name} must be a table, e.g. {example}")
    allowed = ("setting", "log", "lin", "n")
    for key in table:
        if key not in allowed:
            raise TuilabError(f"{source}: unknown key {key!r} in [atlas] {name}; valid keys: {', '.join(allowed)}")
    setting = table.get("setting")
    if not isinstance(setting, str) or not setting:
        raise TuilabError(f"{source}: [atlas] {name} needs a setting: lr, start.x, start.y or a hyperparameter "
                          f"of the runs' optimizers, e.g. {example}")
    ranges = [k for k in ("log", "lin") if k in table]
    if len(ranges) != 1:
        raise TuilabError(f"{source}: [atlas] {name} needs one of log = [lo, hi] or lin = [lo, hi], e.g. {example}")
    pair = table[ranges[0]]
    if not isinstance(pair, list) or len(pair) != 2:
        raise TuilabError(f"{source}: [atlas] {name}.{ranges[0]} must be [lo, hi], got {pair!r}")
    lo, hi = (_number(source, f"{name}.{ranges[0]}", v) for v in pair)
    if not lo < hi:
        raise TuilabError(f"{source}: [atlas] {name}.{ranges[0]} needs lo < hi, got [{lo:g}, {hi:g}]")
    if ranges[0] == "log" and lo <= 0:
        raise TuilabError(f"{source}: [atlas] {name}.log needs 0 < lo, got {lo:g}; use lin for a range through 0")
    n = table.get("n", 40)
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_N:
        raise TuilabError(f"{source}: [atlas] {name}.n must be a whole number from 2 to {MAX_N}, got {n!r}")
    return AtlasAxis(setting, lo, hi, n, ranges[0] == "log")


def parse_atlas(table, source: str) -> AtlasSpec:
    """An [atlas] table, checked: every mistake one line naming the key."""
    if not isinstance(table, dict):
        raise TuilabError(f"{source}: atlas must be a table ([atlas] with x, y, metric, steps, tol)")
    allowed = ("x", "y", "metric", "steps", "tol")
    for key in table:
        if key not in allowed:
            raise TuilabError(f"{source}: unknown key {key!r} in [atlas]; valid keys: {', '.join(allowed)}")
    x = parse_axis(table["x"], source, "x") if "x" in table else None
    y = parse_axis(table["y"], source, "y") if "y" in table else None
    if x is not None and y is not None and x.setting == y.setting:
        raise TuilabError(f"{source}: [atlas] x and y both set {x.setting}; give each axis its own setting")
    metric = table.get("metric", "auto")
    if metric not in METRICS:
        raise TuilabError(f"{source}: [atlas] metric must be one of {', '.join(METRICS)}, got {metric!r}")
    steps = table.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise TuilabError(f"{source}: [atlas] steps must be a whole number >= 1, got {steps!r}")
    tol = _number(source, "tol", table.get("tol", 1e-3))
    if tol <= 0:
        raise TuilabError(f"{source}: [atlas] tol must be > 0, got {tol:g}")
    n0 = x.n if x is not None else DEFAULT_N[0]
    n1 = y.n if y is not None else DEFAULT_N[1]
    if n0 * n1 > MAX_CELLS:
        raise TuilabError(f"{source}: [atlas] {n0} x {n1} cells is more than {MAX_CELLS:,} a run; lower x.n or y.n")
    return AtlasSpec(x, y, metric, steps, tol)


def hyper_key(setting: str) -> tuple[str, int | None]:
    """The optimizer hyperparameter an axis sets, and which of a pair's numbers ("betas[1]" -> ("betas", 1))."""
    if setting.endswith("]") and "[" in setting:
        name, index = setting[:-1].split("[", 1)
        if index in ("0", "1"):
            return name, int(index)
    return setting, None


def check_axis_for_run(axis: AtlasAxis, optimizer: str, hyper: dict, source: str, label: str) -> None:
    """An axis that sets something the run's optimizer does not have: one line naming what it has."""
    if axis.setting in ("lr", *START_SETTINGS):
        return
    key, index = hyper_key(axis.setting)
    value = hyper.get(key)
    numbers = [k for k, v in hyper.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    pairs = [f"{k}[{i}]" for k, v in hyper.items() if isinstance(v, tuple) and len(v) == 2 for i in (0, 1)]
    has = ", ".join(["start.x", "start.y", *numbers, *pairs])
    if key not in hyper or (index is None) != (not isinstance(value, tuple)) or isinstance(value, bool):
        raise TuilabError(f"{source}: [atlas] axis {axis.setting!r}: run {label!r} ({optimizer}) has no such number; "
                          f"it has {has}")
