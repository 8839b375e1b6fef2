"""The network results table's rows, computed once for every view of them (headless, dashboard, reports).

A run is its summary dict (Trainer.summary, as summary.json keeps it). The rows come best
first: completed runs before the rest, then by test accuracy (high), then test loss (low).
"""

from __future__ import annotations

import math

COLUMNS = ("#", "run", "optimizer", "lr", "status", "epochs", "train loss", "val acc", "test acc", "test loss",
           "samples/s", "grad ratio")
NUMERIC = frozenset({0, 3, 5, 6, 7, 8, 9, 10, 11})  # right-aligned columns


def cell(value, spec: str = ".4f") -> str:
    """A figure as text; missing or NaN is '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def best_first(run: dict):
    """Sort key: completed runs first, then by test accuracy (high), then test loss (low)."""
    acc = run.get("test_accuracy")
    loss = run.get("test_loss")
    good = {"completed": 0, "interrupted": 1, "diverged": 2}.get(run.get("status"), 3)
    acc = -acc if isinstance(acc, float) and not math.isnan(acc) else math.inf
    loss = loss if isinstance(loss, float) and not math.isnan(loss) else math.inf
    return (good, acc, loss)


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
        rows.append([str(place + 1), str(r.get("label", "")), str(r.get("optimizer", "")), cell(r.get("lr"), "g"),
                     status, str(r.get("epochs_done", 0)), cell(r.get("train_loss")),
                     cell(r.get("val_accuracy"), ".2%"), cell(r.get("test_accuracy"), ".2%"),
                     cell(r.get("test_loss")), cell(r.get("samples_per_second"), ",.0f"),
                     cell(r.get("grad_ratio"), ".2g")])
    return rows
