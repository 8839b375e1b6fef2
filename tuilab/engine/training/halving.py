"""Successive halving (as in Hyperband/ASHA): at each rung only the best `keep` of the runs go on.

The rungs are synchronous: every run still training reaches the rung (its state kept), then
they are ranked on validation loss and the rest stop with status "pruned". That makes the
decision a function of the runs alone, never of which worker was quicker, so a sweep prunes
the same runs on one process, on local processes and on a cluster.
"""

from __future__ import annotations

import math


def rungs_of(experiment) -> list[int]:
    """The epochs at which the experiment's sweep compares its runs (none without halving)."""
    sweep = experiment.sweep
    if sweep is None or sweep.prune != "halving":
        return []
    return sweep.rungs(min(r.train.epochs for r in experiment.runs))


def figure(metrics: dict) -> float:
    """What a rung ranks a run by: its validation loss, or its training loss without a validation set."""
    v = metrics.get("val_loss", math.nan)
    return v if v is not None and math.isfinite(v) else metrics.get("train_loss", math.nan)


def survivors(val_losses: dict[int, float], keep: float) -> set[int]:
    """The runs kept: the ceil(keep * n) lowest losses (NaN last; ties to the earlier run)."""
    if not val_losses:
        return set()
    n = max(1, math.ceil(keep * len(val_losses) - 1e-9))

    def rank(i):
        v = val_losses[i]
        return (v is None or not math.isfinite(v), v if v is not None and math.isfinite(v) else 0.0, i)

    return set(sorted(val_losses, key=rank)[:n])


def bracket_of(run, key: str):
    """The value of setting `key` (table.key) for a run: its sweep settings', else its resolved tables'."""
    if key in run.settings:
        return run.settings[key]
    table, _, name = key.partition(".")
    value = run.tables.get(table, {}).get(name)
    return tuple(value) if isinstance(value, list) else value


def survivors_by_bracket(figures: dict[int, float], keep: float, runs, key: str) -> set[int]:
    """survivors within each bracket (the runs with one value of setting `key`); one bracket where key is ""."""
    brackets: dict = {}
    for i, v in figures.items():
        brackets.setdefault(bracket_of(runs[i], key) if key else None, {})[i] = v
    return set().union(*(survivors(b, keep) for b in brackets.values()))
