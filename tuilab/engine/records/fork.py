"""Forks: a new run that starts from a finished (or stopped) run's checkpoint at an epoch's end, with some
settings changed ("what if I had lowered the learning rate at epoch 5?").

A fork is a records folder of its own beside the original: config.toml (the run with the changes, one run),
metrics.csv (the original's rows up to the fork's epoch, copied as they are), the fork point as the run's
checkpoint.npz, its snapshots up to there; then it is resumed like any stopped experiment. With no change, the
rows after the fork are the original's again, bit for bit (tests/test_fork.py): the checkpoint holds all a run's
remaining epochs depend on.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np

from tuilab.engine.config.experiment import Experiment, build_experiment
from tuilab.engine.records.resume import trained_records
from tuilab.engine.records.run_records import slug, write_atomic
from tuilab.engine.training import checkpoint as checkpoint_mod
from tuilab.errors import TuilabError

# what a fork may change: how it goes on, not what it is (the network, the data, the seed, the batches' order)
CHANGEABLE = ("optimizer.", "schedule.", "train.epochs", "train.internals", "train.snapshots", "train.fork_points",
              "train.sharpness_every")
# the optimizer's scalars that its settings make, not its steps: a fork takes them from its own settings
_CONFIG_SCALARS = ("S_DEMON_T", "S_DEMON_IDX", "S_MAXIMIZE", "S_REST")


def pick_run(experiment: Experiment, label: str | None, folder) -> int:
    """The run a fork starts from: the one named, or the only one."""
    labels = [r.label for r in experiment.runs]
    if label is None:
        if len(labels) == 1:
            return 0
        raise TuilabError(f"{folder} has {len(labels)} runs: say which with --run LABEL (one of "
                          + ", ".join(repr(x) for x in labels) + ")")
    if label not in labels:
        raise TuilabError(f"{folder} has no run {label!r}; its runs: " + ", ".join(repr(x) for x in labels))
    return labels.index(label)


def fork_label(label: str, at: int, changes) -> str:
    said = ", ".join(f"{k}={_value(v)}" for k, v in changes) or "no change"
    return f"{label} | from epoch {at}: {said}"


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def forked_experiment(experiment: Experiment, index: int, at: int, changes, source: str) -> Experiment:
    """The experiment of the fork: run `index` alone, with `changes` (--set pairs) over its tables."""
    for key, _ in changes:
        if not any(key == c or (c.endswith(".") and key.startswith(c)) for c in CHANGEABLE):
            raise TuilabError(f"a fork goes on from the run's parameters, data and minibatch order, so it cannot "
                              f"change {key}; it may change optimizer.*, schedule.* or train.epochs")
    run = experiment.runs[index]
    doc = {"title": f"{experiment.title} (fork)", "description": experiment.description,
           **copy.deepcopy(run.tables), "runs": [{"label": fork_label(run.label, at, changes)}]}
    forked = build_experiment(doc, source, f"{experiment.name}-fork", overrides=list(changes))
    epochs = forked.runs[0].train.epochs
    if epochs < at:
        raise TuilabError(f"the fork starts at epoch {at} and would train to epoch {epochs}: set train.epochs "
                          f"to more than {at}")
    return forked


def default_folder(folder: Path, at: int, changes) -> Path:
    """Beside the original: <folder>-fork<at>-<the changes>, numbered where it is taken."""
    said = "-".join(f"{k.split('.')[-1]}-{_value(v)}" for k, v in changes) or "same"
    base = folder.parent / f"{folder.name}-fork{at}-{re.sub(r'[^A-Za-z0-9.+-]+', '-', said)[:40].strip('-')}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def make_fork(folder, at: int, changes=(), run_label: str | None = None, out=None) -> tuple[Experiment, Path]:
    """Lay out the fork's records folder (ready to resume) and return its experiment and folder."""
    folder = Path(folder)
    _, experiment = trained_records(folder, "fork", "run it with other settings instead",
                                    "has no epochs to fork from")
    index = pick_run(experiment, run_label, folder)
    run = experiment.runs[index]
    run_folder = folder / slug(run.label)
    kept = checkpoint_mod.fork_epochs(run_folder)
    if at not in kept:
        where = (f"it kept epochs {', '.join(map(str, kept))}" if kept else
                 "it kept none (records of an older tuilab, or train.fork_points = 0)")
        raise TuilabError(f"{run.label} has no fork point at epoch {at}: {where}")
    forked = forked_experiment(experiment, index, at, list(changes), str(folder / "config.toml"))
    out = Path(out) if out is not None else default_folder(folder, at, list(changes))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TuilabError(f"{out} is {'not empty' if out.is_dir() else 'a file'}: give the fork another folder "
                          "with --out")
    new_run = forked.runs[0]
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "config.toml", forked.to_toml())
        write_atomic(out / "metrics.csv", _rows_up_to(folder / "metrics.csv", index, at, forked))
        target = out / slug(new_run.label)
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / checkpoint_mod.NAME, _start_state(checkpoint_mod.fork_point(run_folder, at).read_bytes(),
                                                                run, new_run))
        _copy_snapshots(run_folder, target)
        write_atomic(out / "forked_from.json", json.dumps(
            {"folder": str(folder), "run": run.label, "epoch": at,
             "changes": {k: v for k, v in changes}}, indent=2, default=str) + "\n")
    except OSError as exc:
        raise TuilabError(f"cannot write the fork to {out}: {exc.strerror or exc}; give it another folder with "
                          "--out") from None
    return forked, out


def _rows_up_to(metrics: Path, index: int, at: int, forked: Experiment) -> str:
    """metrics.csv's run `index`'s rows of epochs 1..at as the fork's (run 0, its label), in the fork's columns
    (another optimizer has other internals: the original's own are left out, the fork's blank): every figure as
    the original wrote it."""
    from tuilab.engine.training.train import experiment_columns

    columns = experiment_columns(forked.runs)
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(columns)
    with open(metrics, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("run") == str(index) and (row.get("epoch") or "").isdigit() and int(row["epoch"]) <= at:
                row.update(run="0", label=forked.runs[0].label)
                w.writerow([row.get(c) or "" for c in columns])
    return text.getvalue()


def _start_state(data: bytes, run, new_run) -> bytes:
    """The fork point as the fork's checkpoint: theta, the minibatch order and the counts as they were; the
    optimizer's state and step counts too where it is the same optimizer, with the scalars its own settings make
    (Demon's T, maximize: checkpoint.load keeps the trainer's own); a fresh optimizer where it is another."""
    from tuilab.kernels import optimizers as K

    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    if run.optimizer.name != new_run.optimizer.name:
        meta["fresh_optimizer"] = True
    else:
        meta["own_scalars"] = [getattr(K, name) for name in _CONFIG_SCALARS]
    arrays["meta"] = np.frombuffer(json.dumps(meta, default=float).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _copy_snapshots(src: Path, dst: Path) -> None:
    """The original's parameter snapshots, for the fork's landscape: a resume keeps those up to its epoch."""
    from tuilab.engine.records import snapshots as snapshots_mod

    if (src / snapshots_mod.FILE).is_file():
        shutil.copy2(src / snapshots_mod.FILE, dst / snapshots_mod.FILE)
    if (src / snapshots_mod.FOLDER).is_dir():
        shutil.copytree(src / snapshots_mod.FOLDER, dst / snapshots_mod.FOLDER, dirs_exist_ok=True)
