"""A preset's [lr_range] table: the learning-rate range test's settings, parsed and checked.

Apart from the test itself (engine.training.lr_range), so that the configuration reads the table
without reaching the code that trains (which reads the configuration: a circle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.errors import TuilabError


@dataclass(frozen=True)
class LrRange:
    """A preset's [lr_range] table."""

    start: float = 1e-7
    end: float = 10.0
    steps: int = 200
    smooth: float = 0.98
    stop_factor: float = 4.0

    def lrs(self, first: int, n: int) -> np.ndarray:
        """The learning rates of steps first .. first + n - 1."""
        k = np.arange(first, first + n, dtype=np.float64)
        return self.start * (self.end / self.start) ** (k / (self.steps - 1))

    def options(self) -> dict:
        return {"start": self.start, "end": self.end, "steps": self.steps, "smooth": self.smooth,
                "stop_factor": self.stop_factor}


def parse_lr_range(table, source: str) -> LrRange:
    """A [lr_range] table, checked: every mistake one line naming the key."""
    if not isinstance(table, dict):
        raise TuilabError(f"{source}: lr_range must be a table ([lr_range] with start, end, steps, smooth)")
    allowed = LrRange().options()
    for key, value in table.items():
        if key not in allowed:
            raise TuilabError(f"{source}: unknown key {key!r} in [lr_range]; valid keys: {', '.join(allowed)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TuilabError(f"{source}: [lr_range] {key} must be a number, got {value!r}")
    r = LrRange(**{k: (int(v) if k == "steps" else float(v)) for k, v in table.items()})
    if "steps" in table and (not isinstance(table["steps"], int) or r.steps < 2):
        raise TuilabError(f"{source}: [lr_range] steps must be a whole number >= 2, got {table['steps']!r}")
    if not 0 < r.start < r.end:
        raise TuilabError(f"{source}: [lr_range] needs 0 < start < end, got start {r.start:g}, end {r.end:g}")
    if not 0 <= r.smooth < 1:
        raise TuilabError(f"{source}: [lr_range] smooth must be a number in [0, 1), got {r.smooth:g}")
    if not r.stop_factor > 1:
        raise TuilabError(f"{source}: [lr_range] stop_factor must be a number > 1, got {r.stop_factor:g}")
    return r
