"""A sweep's results by axis values: each run's last validation figure, grouped over seeds.

No drawing here (views.sweep draws, for the terminal and the dashboard alike). A run is its
summary (with `settings`, as summary.json keeps it); its history is the per-epoch validation
figures, when there are any (metrics.csv, or a live run's series).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

SEED_KEYS = ("train.seed", "data.seed")  # axes of repeats: averaged over, never plotted against


@dataclass
class Cell:
    """The runs at one combination of the non-seed axes."""

    values: tuple  # one per axis of SweepResults.axes
    figures: list[float] = field(default_factory=list)  # each run's last figure (NaN: none)
    statuses: list[str] = field(default_factory=list)

    @property
    def finite(self) -> list[float]:
        return [f for f in self.figures if math.isfinite(f)]

    @property
    def mean(self) -> float:
        f = self.finite
        return statistics.fmean(f) if f else math.nan

    @property
    def spread(self) -> float:
        """The standard deviation over its seeds (NaN below two)."""
        f = self.finite
        return statistics.stdev(f) if len(f) > 1 else math.nan


@dataclass
class SweepResults:
    metric: str  # "val accuracy", "val loss" or (no validation set) "train loss"
    higher_is_better: bool
    axes: list[tuple[str, tuple]]  # the axes other than seeds
    seeds: list[str]  # the seed axes averaged over
    cells: list[Cell]

    def best(self) -> Cell | None:
        scored = [c for c in self.cells if math.isfinite(c.mean)]
        if not scored:
            return None
        return (max if self.higher_is_better else min)(scored, key=lambda c: c.mean)

    def numeric_axes(self) -> list[int]:
        """Indices of the axes whose values are all numbers (the charts' x axes)."""
        return [k for k, (_, values) in enumerate(self.axes)
                if len(values) > 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)]


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def last_figures(history: list[tuple]) -> tuple[float, float, float]:
    """(val accuracy, val loss, train loss) at the last epoch that has each, from a run's epochs
    [(val_accuracy, val_loss, train_loss), ...]: the model a run ends with, as the results table ranks it
    (a best epoch would be a model the run no longer holds)."""
    out = []
    for k in range(3):
        f = _finite(h[k] for h in history)
        out.append(f[-1] if f else math.nan)
    return tuple(out)


def sweep_results(axes, runs: list[dict], histories: dict[int, list]) -> SweepResults:
    """axes: ((key, values), ...); runs: summaries with `settings`; histories: {run: [(acc, loss)]}."""
    best = {}
    for i, r in enumerate(runs):
        h = histories.get(i) or [(r.get("val_accuracy"), r.get("val_loss"), r.get("train_loss"))]
        best[i] = last_figures(h)
    # the validation figures where there is a validation set, else the training loss
    which = next((k for k in (0, 1) if any(math.isfinite(b[k]) for b in best.values())), 2)
    plotted = [(k, tuple(v)) for k, v in axes if k not in SEED_KEYS]
    seeds = [k for k, _ in axes if k in SEED_KEYS]
    cells: dict[tuple, Cell] = {}
    for i, r in enumerate(runs):
        settings = r.get("settings") or {}
        key = tuple(_hashable(settings.get(k)) for k, _ in plotted)
        cell = cells.setdefault(key, Cell(tuple(settings.get(k) for k, _ in plotted)))
        cell.figures.append(best[i][which])
        cell.statuses.append(str(r.get("status", "?")))
    order = {k: [_hashable(v) for v in values] for k, values in plotted}

    def place(c: Cell):
        return tuple(order[k].index(_hashable(v)) if _hashable(v) in order[k] else len(order[k])
                     for (k, _), v in zip(plotted, c.values, strict=True))

    metric = ("val accuracy", "val loss", "train loss")[which]
    return SweepResults(metric, which == 0, plotted, seeds, sorted(cells.values(), key=place))


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def histories_from_rows(rows) -> dict[int, list]:
    """metrics.csv rows -> {run: [(val_accuracy, val_loss, train_loss), ...]}."""
    out: dict[int, list] = {}
    for row in rows:
        out.setdefault(int(row["run"]), []).append(
            tuple(row.get(k) if isinstance(row.get(k), float) else math.nan
                  for k in ("val_accuracy", "val_loss", "train_loss")))
    return out


def from_records(rec) -> SweepResults | None:
    """A reopened records folder's sweep (records.read_records), or None when it was no sweep."""
    sweep = rec.summary.get("sweep")
    if not isinstance(sweep, dict) or not sweep.get("axes"):
        return None
    axes = [(k, tuple(v)) for k, v in sweep["axes"].items()]
    runs = [{k: math.nan if v is None and k in ("val_accuracy", "val_loss", "train_loss") else v
             for k, v in r.items()}
            for r in rec.runs]
    return sweep_results(axes, runs, histories_from_rows(rec.metrics))
