"""Learning-rate schedules with the semantics of torch.optim.lr_scheduler.

A schedule maps a scheduler step t = 0, 1, 2, ... (what `scheduler.step()` counts:
the Trainer steps it once per epoch) to a learning rate. Warm-up is linear
(torch LinearLR from `warmup_start_factor` to 1 over `warmup` steps) and hands over
to the main schedule, which then starts from its own step 0 (torch SequentialLR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.errors import TuilabError, choice_error

SCHEDULES = {
    "constant": {},
    "step": {"step_size": 1, "gamma": 0.1},
    "exponential": {"gamma": 0.9},
    "cosine": {"T_max": 10, "eta_min": 0.0},
}
WARMUP_KEYS = {"warmup": 0, "warmup_start_factor": 1.0 / 3.0}


@dataclass(frozen=True)
class Schedule:
    """name, its parameters, and an optional linear warm-up in front."""

    name: str = "constant"
    step_size: int = 1
    gamma: float = 0.1
    T_max: int = 10
    eta_min: float = 0.0
    warmup: int = 0
    warmup_start_factor: float = 1.0 / 3.0

    @classmethod
    def make(cls, name: str = "constant", **params) -> Schedule:
        """A validated schedule; unknown names or keys and out-of-range values raise TuilabError."""
        if not isinstance(name, str) or name not in SCHEDULES:
            raise choice_error("schedule", name, SCHEDULES)
        allowed = set(SCHEDULES[name]) | set(WARMUP_KEYS)
        for key in params:
            if key not in allowed:
                raise choice_error(f"setting for schedule {name!r}:", key, allowed)
        merged = {**SCHEDULES[name], **WARMUP_KEYS, **params}
        for key in {"step_size", "T_max"} & set(merged):
            v = merged[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise TuilabError(f"schedule {name}: {key} must be a whole number >= 1, got {v!r}")
        w = merged["warmup"]
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 0:
            raise TuilabError(f"schedule {name}: warmup must be a whole number >= 0, got {w!r}")
        for key, ok, words in (
            ("gamma", lambda x: x > 0, "> 0"),
            ("eta_min", lambda x: x >= 0, ">= 0"),
            ("warmup_start_factor", lambda x: 0 < x <= 1, "in (0, 1]"),
        ):
            if key not in merged:
                continue
            v = merged[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
                raise TuilabError(f"schedule {name}: {key} must be a number {words}, got {v!r}")
        return cls(name=name, **merged)

    def _main(self, base_lr: float, t: int) -> float:
        if self.name == "step":
            return base_lr * self.gamma ** (t // self.step_size)
        if self.name == "exponential":
            return base_lr * self.gamma**t
        if self.name == "cosine":
            return self.eta_min + (base_lr - self.eta_min) * (
                1.0 + math.cos(math.pi * t / self.T_max)) / 2.0
        return base_lr

    def lr_at(self, base_lr: float, t: int) -> float:
        """The learning rate after t scheduler steps."""
        if t < self.warmup:
            f = self.warmup_start_factor
            return self._main(base_lr, 0) * (f + (1.0 - f) * t / self.warmup)
        return self._main(base_lr, t - self.warmup)

    def lrs(self, base_lr: float, start: int, n: int) -> np.ndarray:
        """lr_at for t = start .. start + n - 1, as float64."""
        return np.array([self.lr_at(base_lr, t) for t in range(start, start + n)], np.float64)
