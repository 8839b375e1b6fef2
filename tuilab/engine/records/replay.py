"""Records as the events their runs once sent, so that the dashboard can show a finished (or
stopped, or killed) experiment exactly as it showed it live: `tuilab open RUNDIR`."""

from __future__ import annotations

import math

from tuilab.engine.events import DecisionMapped, EpochEnd, Finished, Started, SurfaceDone
from tuilab.engine.nn import decision
from tuilab.engine.records.run_records import Reopened, read_table, slug


def _confusions(rec: Reopened) -> dict[int, tuple]:
    out: dict[int, list] = {}
    for row in read_table(rec.folder / "confusion.csv", []):
        counts = list(row.values())[3:]  # after run, label, true
        out.setdefault(int(row["run"]), []).append(tuple(int(c) for c in counts))
    return {k: tuple(v) for k, v in out.items()}


def replayed_events(rec: Reopened, experiment) -> list:
    """Started, every EpochEnd and (for a run that ended) Finished, per run, from its records."""
    events = []
    confusion = _confusions(rec)
    for i, run in enumerate(experiment.runs):
        rows = [m for m in rec.metrics if m.get("run") == i]
        summary = rec.runs[i] if i < len(rec.runs) else {}
        steps = int(rows[-1]["step"]) // max(len(rows), 1) if rows else 0
        events.append(Started(i, run.label, run.train.epochs, steps, 0, (), rec.summary.get("dataset", ""),
                              run.optimizer.name, 0))
        for m in rows:
            grads = []
            while f"grad_norm_{len(grads) + 1}" in m:
                g = m[f"grad_norm_{len(grads) + 1}"]
                grads.append(float(g) if isinstance(g, (int, float)) else math.nan)
            events.append(EpochEnd(i, int(m["epoch"]), dict(m), tuple(grads)))
        kept = rec.folder / slug(run.label) / "decision.npz"
        if kept.is_file():  # its last map, without the points (the data is not reloaded to open records)
            m = decision.load(kept)
            events.append(DecisionMapped(i, int(rows[-1]["epoch"]) if rows else 0, m.x, m.y, m.p,
                                         None, None, None, None, None))
        status = summary.get("status", "pending")
        if status not in ("pending", "running"):
            events.append(Finished(i, run.label, status, dict(summary), confusion.get(i, ())))
    return events


def replayed_surface_events(rec: Reopened, experiment) -> list:
    """A SurfaceDone per run that has its trajectory in trajectory.csv, rebuilt as a SurfaceResult."""
    import numpy as np

    from tuilab.engine.nn.internals import POINT_COLUMNS
    from tuilab.engine.surfaces.landscapes import SurfaceResult, landscape_of

    landscape = landscape_of(experiment.runs[0].tables["surface"])
    points: dict[int, list] = {}
    inner: dict[int, list] = {}

    def number(v):  # a blank cell (or a column absent in older records) is NaN
        return float(v) if isinstance(v, (int, float)) else np.nan

    for row in read_table(rec.folder / "trajectory.csv", []):
        # average: absent before tuilab kept ASGD's average
        points.setdefault(int(row["run"]), []).append(
            [float(row[k]) for k in ("step", "x", "y", "f")] + [number(row.get(k)) for k in ("average_x", "average_y")])
        inner.setdefault(int(row["run"]), []).append([number(row.get(k)) for k in POINT_COLUMNS])
    events = []
    for i, run in enumerate(experiment.runs):
        if i not in points:
            continue
        pts, kept = np.array(points[i]), np.array(inner[i]).reshape(len(points[i]), len(POINT_COLUMNS))
        s = rec.runs[i] if i < len(rec.runs) else {}
        hit = s.get("steps_to_1e-3")
        result = SurfaceResult(run.label, run.optimizer.name, run.optimizer.lr,
                               pts[:, 0].astype(np.int64), pts[:, 1:3].copy(), pts[:, 3].copy(),
                               int(s.get("steps_done", pts[-1, 0])), hit if isinstance(hit, int) else None,
                               str(s.get("status", "interrupted")), landscape,
                               None if np.isnan(pts[:, 4]).all() else pts[:, 4:6].copy(),
                               {name: kept[:, k] for k, name in enumerate(POINT_COLUMNS)
                                if k < 2 or not np.isnan(kept[:, k]).all()})
        events.append(SurfaceDone(i, run.label, result))
    return events
