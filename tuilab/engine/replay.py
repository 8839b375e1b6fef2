"""Records as the events their runs once sent, so that the dashboard can show a finished (or
stopped, or killed) experiment exactly as it showed it live: `tuilab open RUNDIR`."""

from __future__ import annotations

import math

from tuilab.engine.events import EpochEnd, Finished, Started
from tuilab.engine.records import Reopened


def _confusions(rec: Reopened) -> dict[int, tuple]:
    path = rec.folder / "confusion.csv"
    if not path.exists():
        return {}
    import csv

    out: dict[int, list] = {}
    for row in list(csv.reader(path.read_text().splitlines()))[1:]:
        try:
            out.setdefault(int(row[0]), []).append(tuple(int(c) for c in row[3:]))
        except (ValueError, IndexError):
            continue
    return {k: tuple(v) for k, v in out.items()}


def replayed_events(rec: Reopened, experiment) -> list:
    """Started, every EpochEnd and (for a run that ended) Finished, per run, from its records."""
    events = []
    confusion = _confusions(rec)
    for i, run in enumerate(experiment.runs):
        rows = [m for m in rec.metrics if m.get("run") == i]
        summary = rec.runs[i] if i < len(rec.runs) else {}
        steps = int(rows[-1]["step"]) // max(len(rows), 1) if rows else 0
        events.append(Started(i, run.label, run["train"]["epochs"], steps, 0, (), rec.summary.get("dataset", ""),
                              run["optimizer"]["name"], 0))
        for m in rows:
            grads = []
            while f"grad_norm_{len(grads) + 1}" in m:
                g = m[f"grad_norm_{len(grads) + 1}"]
                grads.append(float(g) if isinstance(g, (int, float)) else math.nan)
            events.append(EpochEnd(i, int(m["epoch"]), dict(m), tuple(grads)))
        status = summary.get("status", "pending")
        if status not in ("pending", "running"):
            events.append(Finished(i, run.label, status, dict(summary), confusion.get(i, ())))
    return events
