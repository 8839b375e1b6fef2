"""A preset's [race] table (or --fair): a fair race, each optimizer at its own tuned learning rate over several
seeds, parsed and checked. The race itself is engine.training.race."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuilab.errors import TuilabError

TARGET_METRICS = ("val_accuracy", "val_loss", "train_loss")


@dataclass(frozen=True)
class RaceSpec:
    """How a fair race tunes and races. Each run's learning rate is tuned over `grid` values spread evenly on a
    log scale over `decades` decades centred on its preset value, with successive halving on validation loss
    within each run's grid; then each runs at its best over `seeds` seeds."""

    grid: int = 8
    decades: float = 3.0
    seeds: int = 3
    tune_epochs: int = 0  # 0: the preset's epochs
    rung_epochs: int = 1
    keep: float = 1 / 3
    target_metric: str = ""  # "": val_accuracy for a classifier, else val_loss
    target: float = math.nan  # NaN: the median optimizer's best mean value

    def lrs(self, lr: float) -> np.ndarray:
        """The grid around a preset learning rate."""
        half = self.decades / 2
        return lr * np.logspace(-half, half, self.grid)

    def options(self) -> dict:
        out = {"grid": self.grid, "decades": self.decades, "seeds": self.seeds, "rung_epochs": self.rung_epochs,
               "keep": self.keep}
        if self.tune_epochs:
            out["tune_epochs"] = self.tune_epochs
        if self.target_metric:
            out["target_metric"] = self.target_metric
        if math.isfinite(self.target):
            out["target"] = self.target
        return out


def _whole(source, key, value, lo, hi=None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise TuilabError(f"{source}: [race] {key} must be a whole number {rng}, got {value!r}")
    return value


def parse_race(table, source: str) -> RaceSpec:
    """A [race] table, checked: every mistake one line naming the key."""
    if not isinstance(table, dict):
        raise TuilabError(f"{source}: race must be a table ([race] with grid, decades, seeds, ...)")
    allowed = tuple(RaceSpec().options()) + ("tune_epochs", "target_metric", "target")
    for key in table:
        if key not in allowed:
            raise TuilabError(f"{source}: unknown key {key!r} in [race]; valid keys: {', '.join(allowed)}")
    grid = _whole(source, "grid", table.get("grid", 8), 2, 64)
    seeds = _whole(source, "seeds", table.get("seeds", 3), 1, 100)
    tune_epochs = _whole(source, "tune_epochs", table.get("tune_epochs", 0), 0)
    rung_epochs = _whole(source, "rung_epochs", table.get("rung_epochs", 1), 1)
    decades = table.get("decades", 3.0)
    if isinstance(decades, bool) or not isinstance(decades, (int, float)) or not 0 < decades <= 12:
        raise TuilabError(f"{source}: [race] decades must be a number in (0, 12], got {decades!r}")
    keep = table.get("keep", 1 / 3)
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep < 1:
        raise TuilabError(f"{source}: [race] keep must be a fraction between 0 and 1 (e.g. 0.33), got {keep!r}")
    metric = table.get("target_metric", "")
    if metric and metric not in TARGET_METRICS:
        raise TuilabError(f"{source}: [race] target_metric must be one of {', '.join(TARGET_METRICS)}, "
                          f"got {metric!r}")
    target = table.get("target", math.nan)
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise TuilabError(f"{source}: [race] target must be a number (a loss, or an accuracy from 0 to 1), "
                          f"got {target!r}")
    return RaceSpec(grid, float(decades), seeds, tune_epochs, rung_epochs, float(keep), metric, float(target))
