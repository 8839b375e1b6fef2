"""The learning-rate range test (Smith 2017, "Cyclical learning rates"; fastai's lr_find).

The learning rate rises exponentially from `start` to `end` over `steps` minibatch steps,
lr_k = start (end / start)^(k / (steps - 1)); each step's minibatch loss (taken before its
update) is smoothed as fastai does, avg_k = s avg_{k-1} + (1 - s) loss_k and
smoothed_k = avg_k / (1 - s^(k+1)); the test stops early once the smoothed loss exceeds
`stop_factor` (4) times its minimum so far, or a loss is NaN or infinite. It reports
`suggested_lr`, where the smoothed loss falls fastest against log lr, `min_loss_lr`, where it is
lowest (a tenth of it is the other usual pick), and `blowup_lr`, where it stopped early.
"""

from __future__ import annotations

import math

import numpy as np

from tuilab.engine.config.lr_range import LrRange, parse_lr_range  # noqa: F401  (the names users know here)
from tuilab.engine.events import Control, Finished, LrRangePoints, Progress, Started

CHUNK_STEPS = 16  # steps per kernel call: the test stops at most this many steps late (those steps are not shown)
COLUMNS = ["run", "label", "step", "lr", "loss", "smoothed_loss"]


def analyse(lrs, smoothed, blowup_lr: float | None) -> dict:
    """summary.json's lr_range from the steps shown: where the smoothed loss falls fastest against
    log lr before its lowest point, the lowest point, where the test stopped early (None if it ran to
    the end). The slope is taken across a window of a twenty-fifth of the steps on each side, and
    the first points are left out: step to step, minibatch noise is larger than the fall (fastai's
    plain gradient picked a lr ~1e-4 of the right one on a noisy quadratic)."""
    lrs, smoothed = np.asarray(lrs, np.float64), np.asarray(smoothed, np.float64)
    finite = np.isfinite(smoothed)
    out = {"suggested_lr": None, "min_loss_lr": None, "blowup_lr": blowup_lr, "steps_done": int(len(lrs))}
    if not finite.any():
        return out
    n = len(lrs)
    low = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    out["min_loss_lr"] = float(lrs[low])
    w = max(1, n // 25)
    at = np.arange(min(10, n // 10) + w, min(low, n - 1 - w) + 1)
    if len(at):
        log = np.log(lrs)
        slope = (smoothed[at + w] - smoothed[at - w]) / (log[at + w] - log[at - w])
        slope = np.where(np.isfinite(slope), slope, np.inf)
        if np.isfinite(slope).any() and slope.min() < 0:
            out["suggested_lr"] = float(lrs[at[int(np.argmin(slope))]])
    if out["suggested_lr"] is None:  # no fall to speak of: the other usual pick
        out["suggested_lr"] = out["min_loss_lr"] / 10
    return out


class RangeTest:
    """One run's range test: its network, optimizer, data order and schedule-free learning rates come
    from a Trainer made for it (as long as it needs), its steps from train_steps."""

    def __init__(self, run: int, config, data, emit, control: Control, spec: LrRange):
        from tuilab.engine.training.fit import steps_per_epoch
        from tuilab.engine.training.train import Trainer

        n = len(data.X_train)
        bs = config.train.batch_size
        bs = bs if 0 < bs < n else n
        epochs = -(-spec.steps // steps_per_epoch(n, bs))  # Demon's T and the schedule see the test's length
        tables = {**config.tables, "train": {**config.tables["train"], "epochs": epochs}}
        self.trainer = Trainer(run, type(config)(config.label, tables, config.settings), data, emit, control)
        self.spec = spec
        self.emit = emit
        self.control = control
        self.points: tuple[list, list, list] = ([], [], [])  # lrs, losses, smoothed of the steps shown
        self.blowup_lr: float | None = None
        self.status = "pending"

    def run(self) -> dict:
        from tuilab.engine.training.fit import train_steps

        t, spec = self.trainer, self.spec
        d, bs = t.data, t.batch_size
        n_rows = len(d.X_train)
        self.status = "running"
        self.emit(Started(t.run_index, t.config.label, 1, spec.steps, t.net.layout.size, tuple(t.net.sizes),
                          d.name, t.config.optimizer.name, spec.steps * bs))
        avg, best, step, pos, order = 0.0, math.inf, 0, t.steps_per_epoch, None
        while step < spec.steps:
            if not self.control.wait_while_paused():
                self.status = "interrupted"
                break
            if pos >= t.steps_per_epoch:
                order, pos = t.order_rng.permutation(n_rows), 0
            n = min(CHUNK_STEPS, spec.steps - step, t.steps_per_epoch - pos)
            lrs = spec.lrs(step, n)
            done, losses, seconds = train_steps(t.net, t.opt, t.theta, d.X_train, d.Y_train, order, pos, lrs, bs)
            t.train_seconds += seconds
            t.samples_seen += sum(min(bs, n_rows - (pos + k) * bs) for k in range(done))
            shown = ([], [], [])
            stop = False
            for k in range(min(done + 1, n)):  # a step past `done` is the one whose loss was not finite
                loss = float(losses[k])
                avg = spec.smooth * avg + (1 - spec.smooth) * loss
                smoothed = avg / (1 - spec.smooth ** (step + k + 1))
                for kept, value in zip(shown, (float(lrs[k]), loss, smoothed), strict=True):
                    kept.append(value)
                if not math.isfinite(smoothed) or smoothed > spec.stop_factor * best:
                    self.blowup_lr = float(lrs[k])
                    stop = True
                    break
                best = min(best, smoothed)
            for kept, new in zip(self.points, shown, strict=True):
                kept.extend(new)
            first = step
            step += len(shown[0])
            pos += n
            t.step = step
            self.emit(LrRangePoints(t.run_index, first, *map(tuple, shown)))
            finite = [x for x in shown[1] if math.isfinite(x)]
            self.emit(Progress(t.run_index, 1, step, spec.steps, float(np.mean(finite)) if finite else math.nan,
                               t.samples_seen / max(t.train_seconds, 1e-9), t.train_seconds, t.samples_seen))
            if stop:
                break
        if self.status == "running":
            self.status = "completed"
        summary = self.summary()
        self.emit(Finished(t.run_index, t.config.label, self.status, summary, ()))
        return summary

    def summary(self) -> dict:
        t = self.trainer
        lrs, _, smoothed = self.points
        return {"label": t.config.label, "optimizer": t.config.optimizer.name, "lr": t.config.optimizer.lr,
                "status": self.status, "steps_done": len(lrs), "train_seconds": t.train_seconds,
                "samples_per_second": t.samples_seen / t.train_seconds if t.train_seconds else math.nan,
                "lr_range": analyse(lrs, smoothed, self.blowup_lr)}


def run_lr_range(experiment, emit=None, control: Control | None = None, *, data=None, records=None):
    """Every run's range test, one after another in this process (each takes seconds), records kept
    whatever happens: config.toml, lr_range.csv (a row a step, written as the steps come) and summary.json."""
    from tuilab.engine.events import overall_status
    from tuilab.engine.training.data_cache import DataCache, DataOptions
    from tuilab.engine.training.outcome import Outcome
    from tuilab.engine.training.warmup import ensure_compiled

    emit = emit if emit is not None else (lambda event: None)
    control = control if control is not None else Control()
    cache = DataCache(data if data is not None else DataOptions(), emit)
    prepared = [cache.get(run) for run in experiment.runs]
    dataset = ", ".join(dict.fromkeys(p.name for p in prepared))
    runs = [{"label": r.label, "optimizer": r.optimizer.name, "lr": r.optimizer.lr, "status": "pending",
             "steps_done": 0} for r in experiment.runs]

    def write_summary(status: str) -> None:
        if records is not None:
            first = next((r["lr_range"] for r in runs if "lr_range" in r), None)
            records.write_summary({"preset": experiment.name, "title": experiment.title, "kind": "network",
                                   "status": status, "dataset": dataset, "notices": list(cache.notices),
                                   "lr_range": first, "runs": runs})

    def send(event) -> None:
        if records is not None and isinstance(event, LrRangePoints):
            label = experiment.runs[event.run].label
            steps = zip(event.lrs, event.losses, event.smoothed, strict=True)
            records.append_many("lr_range.csv", [
                {"run": event.run, "label": label, "step": event.first_step + k, "lr": lr, "loss": loss,
                 "smoothed_loss": sm} for k, (lr, loss, sm) in enumerate(steps)])
        emit(event)

    if records is not None:
        records.open(experiment.to_toml())
        records.start_table("lr_range.csv", COLUMNS)
        write_summary("running")
    compiled_all = None
    try:
        compiled_all = ensure_compiled(experiment.runs, prepared, emit, compile_later=True)
        for i, run in enumerate(experiment.runs):
            if control.stop_requested.is_set():
                break
            test = RangeTest(i, run, prepared[i], send, control, experiment.lr_range)
            runs[i] = {**runs[i], "status": "running"}
            try:
                runs[i] = test.run()
            finally:
                if runs[i]["status"] == "running":  # an exception mid-test: what it did stays in the records
                    runs[i] = {**test.summary(), "status": "interrupted"}
                write_summary("running")
    finally:
        if compiled_all is not None:
            compiled_all()
        for r in runs:
            if r["status"] in ("pending", "running"):
                r["status"] = "interrupted"
        outcome = Outcome(overall_status(r["status"] for r in runs), dataset, runs, list(cache.notices),
                          str(records.out) if records is not None else None)
        write_summary(outcome.status)
        if records is not None:
            records.close()
    return outcome


def curves_of(folder, runs: list[dict]) -> list[tuple[str, list, list]]:
    """(label, lrs, smoothed losses) of each run from a folder's lr_range.csv, in run order."""
    from pathlib import Path

    from tuilab.engine.records.run_records import read_table

    by_run: dict[int, tuple[list, list]] = {}
    for row in read_table(Path(folder) / "lr_range.csv", []):
        if isinstance(row.get("run"), int):
            lrs, smoothed = by_run.setdefault(row["run"], ([], []))
            lrs.append(row["lr"])
            smoothed.append(row["smoothed_loss"])
    return [(r.get("label", f"run {i + 1}"), *by_run.get(i, ([], []))) for i, r in enumerate(runs)]
