"""The network results table's rows, computed once for every view of them (headless, dashboard, reports).

A run is its summary dict (Trainer.summary, as summary.json keeps it). The rows come best
first: completed runs before the rest, then by validation accuracy (high), then validation
loss (low), then training loss (low) where there is no validation set. Never by the test set:
a laboratory that picks its winner on the test set teaches the wrong habit, and the sweep
tab, halving and best-N choose on validation too. The test accuracy is the figure reported
for the run chosen (`chosen_line`).
"""

from __future__ import annotations

import math

# the figures a person compares first, so that 80 columns still show them; the settings after
COLUMNS = ("#", "run", "val acc", "test acc", "train loss", "test loss", "status", "epochs", "optimizer", "lr",
           "samples/s", "grad ratio")
NUMERIC = frozenset({0, 2, 3, 4, 5, 7, 9, 10, 11})  # right-aligned columns


def cell(value, spec: str = ".4f") -> str:
    """A figure as text; missing or NaN is '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def best_first(run: dict):
    """Sort key: completed runs first, then validation accuracy (high), validation loss (low), training loss (low)."""
    good = {"completed": 0, "interrupted": 1, "diverged": 2}.get(run.get("status"), 3)
    acc, val_loss, train_loss = (run.get(k) for k in ("val_accuracy", "val_loss", "train_loss"))
    return (good, -acc if _finite(acc) else math.inf, val_loss if _finite(val_loss) else math.inf,
            train_loss if _finite(train_loss) else math.inf)


def chosen_line(runs: list[dict]) -> str:
    """Which run validation chose, and its test figures: what a paper would report ("" for one run or none)."""
    if len(runs) < 2:
        return ""
    r = runs[ranked(runs)[0]]
    on = ("validation accuracy" if _finite(r.get("val_accuracy")) else
          "validation loss" if _finite(r.get("val_loss")) else "training loss (no validation set)")
    test = [f"test accuracy {cell(r.get('test_accuracy'), '.2%')}" if _finite(r.get("test_accuracy")) else "",
            f"test loss {cell(r.get('test_loss'))}" if _finite(r.get("test_loss")) else ""]
    test = ", ".join(t for t in test if t)
    return f"chosen on {on}: {r.get('label', '?')}" + (f"; {test}" if test else "")


def ranked(runs: list[dict]) -> list[int]:
    """Indices of `runs`, best first."""
    return sorted(range(len(runs)), key=lambda i: best_first(runs[i]))


def result_rows(runs: list[dict]) -> list[list[str]]:
    """One row of COLUMNS per run, best first; a diverged run's status says where."""
    rows = []
    for place, i in enumerate(ranked(runs)):
        r = runs[i]
        status = r.get("status", "?")
        at = r.get("diverged_at")
        if status == "diverged" and isinstance(at, dict) and "epoch" in at:
            status = f"diverged (epoch {at['epoch']}, step {at.get('step', 0):,})"
        rows.append([str(place + 1), str(r.get("label", "")), cell(r.get("val_accuracy"), ".2%"),
                     cell(r.get("test_accuracy"), ".2%"), cell(r.get("train_loss")), cell(r.get("test_loss")),
                     status, str(r.get("epochs_done", 0)), str(r.get("optimizer", "")), cell(r.get("lr"), "g"),
                     cell(r.get("samples_per_second"), ",.0f"), cell(r.get("grad_ratio"), ".2g")])
    return rows
