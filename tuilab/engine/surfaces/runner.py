"""Running a surface preset: each run's descent, its records (trajectory.csv, summary.json)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuilab.engine.config.experiment import Experiment
from tuilab.engine.events import Control, Notice, SurfaceDone, overall_status
from tuilab.engine.nn.internals import POINT_COLUMNS
from tuilab.engine.records.run_records import RunRecords
from tuilab.engine.surfaces.landscapes import SurfaceResult, descend, landscape_of
from tuilab.engine.training.warmup import surface_kernels_ready

# average: ASGD's, else blank; then the optimizer inside at each point (blank where it means nothing)
TRAJECTORY_COLUMNS = ["run", "step", "x", "y", "f", "average_x", "average_y", *POINT_COLUMNS]


@dataclass
class SurfaceOutcome:
    status: str
    landscape: object
    results: list[SurfaceResult] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    out: str | None = None

    @property
    def dataset(self) -> str:
        return self.landscape.name


def run_surfaces(experiment: Experiment, emit=None, control: Control | None = None, *,
                 records: RunRecords | None = None) -> SurfaceOutcome:
    """Every run of a surface experiment, one after the other (each takes milliseconds)."""
    emit = emit if emit is not None else (lambda event: None)
    control = control if control is not None else Control()
    landscape = landscape_of(experiment.runs[0].tables["surface"])
    if records is not None:
        records.open(experiment.to_toml())
        records.start_table("trajectory.csv", TRAJECTORY_COLUMNS)
    compiling = not surface_kernels_ready()
    if compiling:
        emit(Notice("compiling the surface kernels, first run only; this takes about half a minute", "compiling"))
    results: list[SurfaceResult] = []
    try:
        for i, run in enumerate(experiment.runs):
            if control.stop_requested.is_set():
                break
            s, o = run.surface, run.optimizer
            result = descend(landscape, o.name, s.start, s.steps, s.max_points, run.label, checked=o.hyper)
            results.append(result)
            if compiling:  # the first descent compiled them: the screen's notice can go
                compiling = False
                emit(Notice("kernels compiled and cached", "compiled"))
            if records is not None:
                records.append_many("trajectory.csv", trajectory_rows(i, result))
            emit(SurfaceDone(i, run.label, result))
    finally:
        runs = [r.summary() for r in results]
        for run in experiment.runs[len(results):]:
            runs.append({"label": run.label, "optimizer": run.optimizer.name, "lr": run.optimizer.lr,
                         "status": "interrupted"})
        status = overall_status(r["status"] for r in runs)  # runs never reached count as interrupted
        outcome = SurfaceOutcome(status, landscape, results, runs,
                                 str(records.out) if records is not None else None)
        if records is not None:
            records.write_summary({"preset": experiment.name, "title": experiment.title, "kind": "surface",
                                   "status": status, "surface": landscape.name,
                                   "minima": [list(m) for m in landscape.minima], "f_min": landscape.f_min,
                                   "runs": runs})
            records.close()
    return outcome


def _cell(v) -> float | None:
    v = float(v)
    return v if v == v else None  # NaN: blank


def trajectory_rows(run: int, result: SurfaceResult):
    """trajectory.csv's rows of one run: its kept points, ASGD's average beside them, the internals."""
    avg = result.average if result.average is not None else [(None, None)] * len(result.path)
    inner = [(name, result.inner[name]) for name in POINT_COLUMNS if result.inner and name in result.inner]
    for k, (st, (x, y), f, (ax, ay)) in enumerate(zip(result.steps, result.path, result.f, avg, strict=True)):
        row = {"run": run, "step": int(st), "x": float(x), "y": float(y), "f": float(f),
               "average_x": None if ax is None else float(ax), "average_y": None if ay is None else float(ay)}
        row.update((name, _cell(values[k])) for name, values in inner)
        yield row
