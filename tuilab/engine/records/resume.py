"""What `tuilab resume` (and the dashboard's resume of opened records) will continue, and what it keeps."""

from __future__ import annotations

from pathlib import Path

from tuilab.engine.config.experiment import Experiment
from tuilab.engine.config.presets import load_experiment
from tuilab.engine.records.run_records import read_records, slug
from tuilab.errors import TuilabError


def trained_records(folder: Path, command: str, surface: str, range_test: str):
    """(records, experiment) of a folder whose network runs trained epochs, for `tuilab <command>`; a fair
    race's folder, a surface's or a range test's is one line (`surface`, `range_test`: what to do instead)."""
    if (folder / "race.json").is_file():
        raise TuilabError(f"{folder} is a fair race, two experiments in turn: {command} the one you mean "
                          f"(tuilab {command} {folder / 'tune'}, or {folder / 'race'})")
    rec = read_records(folder)
    if rec.lab != "network":
        raise TuilabError(f"{folder}: a surface experiment takes milliseconds; {surface}")
    experiment = load_experiment(str(folder / "config.toml"))
    if experiment.lr_range is not None:
        raise TuilabError(f"{folder}: a learning-rate range test {range_test}")
    return rec, experiment


def plan_resume(folder) -> tuple[Experiment, dict[int, dict]]:
    """The experiment in `folder` and {run index: summary} of its runs that need no more training."""
    folder = Path(folder)
    rec, experiment = trained_records(folder, "resume", "run it again instead",
                                      "is not resumed: run it again (it takes seconds)")
    # finished (a pruned run too: a sweep's halving stopped it for good) and saved: a run that
    # ended before a kill but whose params were not yet written
    # goes on from its last checkpoint, which ends it at once and writes them
    finished = {i: r for i, r in enumerate(rec.runs) if r.get("status") in ("completed", "diverged", "pruned")
                and i < len(experiment.runs) and (folder / slug(experiment.runs[i].label) / "params.npz").is_file()}
    return experiment, finished
