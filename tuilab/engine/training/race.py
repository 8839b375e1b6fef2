"""A fair race: "Adam beat SGD" often means Adam's default learning rate suited the problem better. Here each run
of a preset is first tuned over its own grid of learning rates (successive halving on validation loss, within
that run's grid only), then all race at their tuned rates over several seeds; the result is each one's mean curve
with its spread, and a leaderboard by epochs and seconds to a target.

Two experiments, each trained and recorded as any other (run_network): <out>/tune and <out>/race; <out>/race.json
keeps what was tuned, the target and the leaderboard.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tuilab.engine.config.experiment import Experiment, build_experiment
from tuilab.engine.events import Control, EpochEnd, Notice, Phase
from tuilab.engine.records.run_records import RunRecords, write_atomic
from tuilab.engine.training.halving import figure
from tuilab.errors import TuilabError

FILE = "race.json"
BRACKET = "race.run"  # the tuning runs' setting naming the preset run they tune: halving within each


def _doc_of(experiment: Experiment) -> dict:
    """The preset's base tables, as build_experiment takes them."""
    return {"title": experiment.title, "description": experiment.description, **copy.deepcopy(experiment.base)}


def tune_experiment(experiment: Experiment) -> Experiment:
    """Every run at each learning rate of its grid (RaceSpec.lrs around its own), halved within its grid."""
    spec = experiment.race
    doc = _doc_of(experiment)
    doc["title"] = f"{experiment.title}: tuning"
    runs = []
    for run in experiment.runs:
        for lr in spec.lrs(run.optimizer.lr):
            lr = float(f"{lr:.4g}")
            tables = copy.deepcopy(run.tables)
            tables["optimizer"]["lr"] = lr
            if spec.tune_epochs:
                tables["train"]["epochs"] = spec.tune_epochs
            # runs to rank, not to fork or map: a zoo's 160 kept 1.8 GB of fork points and snapshots
            tables["train"]["fork_points"] = tables["train"]["snapshots"] = 0
            runs.append({"label": f"{run.label} lr={lr:g}", **tables,
                         "settings": {BRACKET: run.label, "optimizer.lr": lr}})
    doc["runs"] = runs
    doc["sweep"] = {"prune": "halving", "rung_epochs": spec.rung_epochs, "keep": spec.keep, "bracket": BRACKET}
    return build_experiment(doc, experiment.source, f"{experiment.name}-tune")


def race_experiment(experiment: Experiment, lrs: list[float]) -> Experiment:
    """Every run at its tuned learning rate, over the race's seeds."""
    spec = experiment.race
    doc = _doc_of(experiment)
    doc["title"] = f"{experiment.title}: the race"
    seed = experiment.runs[0].train.seed
    doc["runs"] = []
    for run, lr in zip(experiment.runs, lrs, strict=True):
        tables = copy.deepcopy(run.tables)
        tables["optimizer"]["lr"] = lr
        doc["runs"].append({"label": f"{run.label} @{lr:.3g}", **tables})
    doc["sweep"] = {"train.seed": list(range(seed, seed + spec.seeds))}
    return build_experiment(doc, experiment.source, f"{experiment.name}-race")


def halving_budget(experiment: Experiment, tune: Experiment) -> tuple[int, int]:
    """(run-epochs the tuning trains at most, with halving; without it): each grid kept to ceil(keep n) a rung."""
    from tuilab.engine.training.halving import rungs_of

    epochs = min(r.train.epochs for r in tune.runs)
    rungs = rungs_of(tune)
    grid, keep = experiment.race.grid, experiment.race.keep
    total, alive, last = 0, grid, 0
    for rung in [*rungs, epochs]:
        total += alive * (rung - last)
        last = rung
        alive = max(1, math.ceil(keep * alive - 1e-9))
    return total * len(experiment.runs), grid * epochs * len(experiment.runs)


@dataclass
class RaceOutcome:
    """What a fair race ended with (network runner's Outcome's fields, and the race's own)."""

    status: str
    dataset: str
    runs: list[dict] = field(default_factory=list)  # the race's runs (each run at each seed)
    notices: list[str] = field(default_factory=list)
    out: str | None = None
    result: dict = field(default_factory=dict)  # what race.json keeps


def run_race(experiment: Experiment, emit=None, control: Control | None = None, *, data=None,
             out: str | Path | None = None, jobs: int = 1, cluster: str | None = None,
             interleave: bool = False) -> RaceOutcome:
    """Tune, then race, each phase a network experiment of its own (records in out/tune and out/race), each
    announced by a Phase event; `interleave`: each phase's runs all at once in this process (the dashboard)."""
    from tuilab.engine.training.runner import run_network

    emit = emit if emit is not None else (lambda event: None)
    control = control if control is not None else Control()
    out = Path(out) if out is not None else None
    if out is not None:
        _write_top(out, experiment)
    tune = tune_experiment(experiment)
    most, without = halving_budget(experiment, tune)
    spec = experiment.race
    emit(Notice(f"fair race, 1 of 2: tuning {len(experiment.runs)} run(s) over {spec.grid} learning rates each "
                f"({spec.decades:g} decades around each preset lr), {tune.runs[0].train.epochs} epochs, halving "
                f"within each run's grid: at most {most:,} run-epochs (all {without:,} without halving)", "info"))
    emit(Phase("tune", tune))
    tuned = run_network(tune, emit, control, data=data, records=_records(out, "tune"), jobs=jobs, cluster=cluster,
                        interleave=interleave)
    picks = pick_lrs(experiment, tune, tuned.runs)
    result = {"preset": experiment.name, "title": experiment.title, "race": spec.options(),
              "budget": {"tune_run_epochs_at_most": most, "tune_run_epochs_without_halving": without,
                         "race_run_epochs": len(experiment.runs) * spec.seeds * experiment.runs[0].train.epochs},
              "tuned": picks, "status": tuned.status}
    if tuned.status == "interrupted" or control.stop_requested.is_set():
        result["status"] = "interrupted"
        _write_result(out, result)
        return RaceOutcome("interrupted", tuned.dataset, [], tuned.notices, str(out) if out else None, result)
    lrs = [p["tuned_lr"] for p in picks]
    emit(Notice("fair race, 2 of 2: " + ", ".join(f"{p['label']} at lr {p['tuned_lr']:g}" for p in picks)
                + f", over {spec.seeds} seed(s)", "info"))
    race = race_experiment(experiment, lrs)
    curves: dict[int, list[dict]] = {}

    def keep(event):
        if isinstance(event, EpochEnd):
            curves.setdefault(event.run, []).append(dict(event.metrics))
        emit(event)

    emit(Phase("race", race))
    raced = run_network(race, keep, control, data=data, records=_records(out, "race"), jobs=jobs, cluster=cluster,
                        interleave=interleave)
    result.update(leaderboard_of(experiment, curves, picks))
    result["status"] = raced.status
    _write_result(out, result)
    return RaceOutcome(raced.status, raced.dataset, raced.runs, [*tuned.notices, *raced.notices],
                       str(out) if out else None, result)


def _records(out: Path | None, name: str) -> RunRecords | None:
    return RunRecords(out / name) if out is not None else None


def _write_top(out: Path, experiment: Experiment) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "config.toml", experiment.to_toml())
    except OSError as exc:
        raise TuilabError(f"cannot write records to {out}: {exc.strerror}; choose another folder with --out") from None


def _write_result(out: Path | None, result: dict) -> None:
    if out is not None:
        write_atomic(out / FILE, json.dumps(result, indent=2, default=_plain) + "\n")


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return str(v)


def pick_lrs(experiment: Experiment, tune: Experiment, summaries: list[dict]) -> list[dict]:
    """Each preset run's best learning rate: the lowest validation loss (training loss without a validation set)
    among its grid's runs that trained to the end; the preset's own where none did."""
    picks = []
    for run in experiment.runs:
        mine = [(i, r) for i, r in enumerate(tune.runs) if r.settings.get(BRACKET) == run.label]
        done = [(figure(summaries[i]), r.optimizer.lr) for i, r in mine
                if i < len(summaries) and summaries[i].get("status") == "completed"
                and math.isfinite(figure(summaries[i]))]
        grid = [r.optimizer.lr for _, r in mine]
        if done:
            loss, lr = min(done)
            note = ""
        else:
            loss, lr = math.nan, run.optimizer.lr
            note = "no learning rate of its grid trained to the end (all diverged or were stopped): the preset's"
        picks.append({"label": run.label, "optimizer": run.optimizer.name, "preset_lr": run.optimizer.lr,
                      "grid": grid, "tuned_lr": lr, "tune_loss": loss, "at_grid_edge": lr in (grid[0], grid[-1]),
                      **({"note": note} if note else {})})
    return picks


def mean_curves(experiment: Experiment, curves: dict[int, list[dict]], metric: str) -> dict[str, dict]:
    """Per preset run (by its label): epochs and the metric's mean, sd, min, max over seeds, at the epochs every
    seed reached; and the mean cumulative training seconds there. The race's runs are each preset run at each
    seed in turn (race_experiment: a [[runs]] entry at every seed of the sweep)."""
    seeds = experiment.race.seeds
    groups = {run.label: list(range(k * seeds, (k + 1) * seeds)) for k, run in enumerate(experiment.runs)}
    out = {}
    for label, members in groups.items():
        rows = [sorted(curves.get(i, []), key=lambda m: m["epoch"]) for i in members]
        n = min((len(r) for r in rows), default=0)
        if n == 0:
            out[label] = {"epochs": [], "mean": [], "sd": [], "min": [], "max": [], "seconds": [], "seeds": 0}
            continue
        values = np.array([[_number(m.get(metric)) for m in r[:n]] for r in rows])
        seconds = np.array([np.cumsum([_number(m.get("seconds"), 0.0) for m in r[:n]]) for r in rows])
        with np.errstate(invalid="ignore"):
            out[label] = {"epochs": [int(m["epoch"]) for m in rows[0][:n]], "mean": values.mean(0).tolist(),
                          "sd": values.std(0).tolist(), "min": values.min(0).tolist(), "max": values.max(0).tolist(),
                          "seconds": seconds.mean(0).tolist(), "seeds": len(members)}
    return out


def _number(v, default=math.nan) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def leaderboard_of(experiment: Experiment, curves: dict[int, list[dict]], tuned: list[dict]) -> dict:
    """The target (the preset's, else the median run's best mean) and each run's epochs and seconds to it."""
    spec = experiment.race
    metric = spec.target_metric or ("val_accuracy" if _has(curves, "val_accuracy") else
                                    "val_loss" if _has(curves, "val_loss") else "train_loss")
    higher = metric.endswith("accuracy")
    means = mean_curves(experiment, curves, metric)
    bests = [(max if higher else min)(v for v in c["mean"] if math.isfinite(v)) for c in means.values()
             if any(math.isfinite(v) for v in c["mean"])]
    target, chosen = spec.target, "the preset's"
    if not math.isfinite(target):
        target = float(np.median(bests)) if bests else math.nan
        chosen = "the median run's best mean"
    board = []
    for label, c in means.items():
        hit = next((k for k, v in enumerate(c["mean"]) if math.isfinite(v) and (v >= target if higher
                                                                                 else v <= target)), None)
        final = c["mean"][-1] if c["mean"] else math.nan
        pick = next((p for p in tuned if p["label"] == label), {})
        board.append({"label": label, "lr": pick.get("tuned_lr"), "seeds": c["seeds"],
                      "epochs_to_target": c["epochs"][hit] if hit is not None else None,
                      "seconds_to_target": c["seconds"][hit] if hit is not None else None,
                      "final_mean": final, "final_sd": c["sd"][-1] if c["sd"] else math.nan,
                      "final_min": c["min"][-1] if c["min"] else math.nan,
                      "final_max": c["max"][-1] if c["max"] else math.nan})
    board.sort(key=lambda b: (b["epochs_to_target"] is None, b["epochs_to_target"] or 0,
                              b["seconds_to_target"] or 0.0,
                              -b["final_mean"] if higher and math.isfinite(b["final_mean"]) else
                              (b["final_mean"] if math.isfinite(b["final_mean"]) else math.inf)))
    return {"target": {"metric": metric, "value": target, "chosen": chosen, "higher_is_better": higher},
            "leaderboard": board, "curves": means}


def _has(curves, metric: str) -> bool:
    return any(math.isfinite(_number(m.get(metric))) for rows in curves.values() for m in rows)


def read_result(folder) -> dict | None:
    """race.json of a race's records, or None."""
    path = Path(folder) / FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None
