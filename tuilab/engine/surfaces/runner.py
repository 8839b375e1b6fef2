"""Running a surface preset: each run's descent, its records (trajectory.csv, summary.json)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuilab.engine.config.experiment import Experiment
from tuilab.engine.events import Control, Notice, SurfaceDone, overall_status
from tuilab.engine.nn.internals import POINT_COLUMNS
from tuilab.engine.records.run_records import RunRecords
from tuilab.engine.surfaces.landscapes import SurfaceResult, descend, landscape_of
from tuilab.engine.training.kernel_choice import surface_table_pays, use_whole_table, whole_table
from tuilab.engine.training.warmup import step_kernels_of, surface_kernels_ready

# average: ASGD's, else blank; then the optimizer inside at each point (blank where it means nothing)
TRAJECTORY_COLUMNS = ["run", "step", "x", "y", "f", "average_x", "average_y", *POINT_COLUMNS]


@dataclass
class SurfaceOutcome:
    status: str
    landscape: object
    results: list[SurfaceResult] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    out: str | None = None
    atlas: object = None  # engine.surfaces.atlas.Atlas, where the preset has [atlas]

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
    opt_ids = step_kernels_of(experiment.runs)
    use_whole_table(surface_table_pays(len(opt_ids)))
    compiling = not surface_kernels_ready(opt_ids)
    if compiling:
        seconds = 15 if whole_table() else 3 + round(1.4 * len(opt_ids))
        emit(Notice(f"compiling the surface kernels for {len(opt_ids)} optimizer{'s' * (len(opt_ids) != 1)} as "
                    f"their runs come, first run only: about {seconds} s on 2 cores", "compiling"))
    results: list[SurfaceResult] = []
    atlas = None
    try:
        for i, run in enumerate(experiment.runs):
            if control.stop_requested.is_set():
                break
            s, o = run.surface, run.optimizer
            result = descend(landscape, o.name, s.start, s.steps, s.max_points, run.label, checked=o.hyper)
            results.append(result)
            if records is not None:
                records.append_many("trajectory.csv", trajectory_rows(i, result))
            emit(SurfaceDone(i, run.label, result))
        if compiling:  # each descent compiled its optimizer's as it came: the screen's notice can go
            emit(Notice("kernels compiled and cached", "compiled"))
        if experiment.atlas is not None and not control.stop_requested.is_set():
            atlas = _atlas(experiment, emit, control)
    finally:
        runs = [r.summary() for r in results]
        for run in experiment.runs[len(results):]:
            runs.append({"label": run.label, "optimizer": run.optimizer.name, "lr": run.optimizer.lr,
                         "status": "interrupted"})
        status = overall_status(r["status"] for r in runs)  # runs never reached count as interrupted
        outcome = SurfaceOutcome(status, landscape, results, runs,
                                 str(records.out) if records is not None else None, atlas)
        if records is not None:
            extra = {}
            if atlas is not None:
                atlas.save(records.out)
                extra["atlas"] = {"cells": int(atlas.status[0].size), "seconds": atlas.seconds,
                                  "threads": atlas.threads, "complete": bool((atlas.status >= 0).all())}
            records.write_summary({"preset": experiment.name, "title": experiment.title, "kind": "surface",
                                   "status": status, "surface": landscape.name,
                                   "minima": [list(m) for m in landscape.minima], "f_min": landscape.f_min,
                                   "runs": runs, **extra})
            records.close()
    return outcome


def _atlas(experiment: Experiment, emit, control: Control):
    """The preset's atlas, every run at every cell, on this process's cores; a stop leaves its cells not run."""
    from tuilab.engine.surfaces.atlas import atlas_kernels_ready, cell_count, run_atlas

    cells = cell_count(experiment)
    ready = atlas_kernels_ready(experiment)
    emit(Notice(f"atlas: {len(experiment.runs)} x {cells:,} runs"
                + ("" if ready else ", compiling its kernels first (about 2 s an optimizer, first run only)"),
                "atlas"))
    atlas = run_atlas(experiment, stop=control.stop_requested)
    emit(Notice(f"atlas: {len(experiment.runs)} x {cells:,} runs in {atlas.seconds:.2f} s on {atlas.threads} "
                f"thread{'s' * (atlas.threads != 1)}", "atlas done"))
    return atlas


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
