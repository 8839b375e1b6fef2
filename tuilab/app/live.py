"""A running experiment as the dashboard sees it: engine events folded into immutable snapshots.

No Textual here. The training thread calls `LiveExperiment.on_event`; the screen takes
`snapshot()` on its own timer (at most ~10 times a second) and draws from that, so the
thread never touches a widget and a burst of events costs one redraw.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tuilab.app.series import Series, SeriesView
from tuilab.engine.config import Experiment
from tuilab.engine.events import Diverged, EpochEnd, Finished, Notice, Progress, Started, SurfaceDone
from tuilab.engine.records import RunRecords, default_out
from tuilab.engine.runner import DataOptions
from tuilab.engine.train import Control

LOSS_POINTS = 240  # training-loss points kept per run for its sparkline


@dataclass(frozen=True)
class RunView:
    """One run, frozen at a moment."""

    key: str  # unique across the dashboard: "<experiment>:<run>"
    label: str
    optimizer: str
    lr: float
    status: str  # pending, running, completed, diverged, interrupted
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    elapsed: float = 0.0
    samples_per_second: float = math.nan
    losses: tuple[float, ...] = ()  # the last LOSS_POINTS chunks' training losses
    # per epoch, thinned to a few hundred points however long the run (app.series)
    train_loss: SeriesView = SeriesView()
    val_accuracy: SeriesView = SeriesView()
    test_accuracy: SeriesView = SeriesView()
    val_loss: SeriesView = SeriesView()
    grad_norms: tuple[float, ...] = ()
    grad_ratio: float = math.nan
    sizes: tuple[int, ...] = ()
    summary: dict = field(default_factory=dict)
    confusion: tuple = ()
    diverged_at: tuple[int, int] | None = None  # (epoch, step)

    @property
    def eta(self) -> float:
        if not self.step or self.status != "running":
            return math.nan
        return (self.total_steps - self.step) * self.elapsed / self.step

    @property
    def finished(self) -> bool:
        return self.status not in ("pending", "running")


@dataclass(frozen=True)
class Snapshot:
    runs: tuple[RunView, ...]
    notices: tuple[str, ...]
    compiling: bool
    dataset: str
    version: int
    surface_results: tuple = ()  # (run key, SurfaceResult) pairs
    error: str | None = None


class LiveExperiment:
    """One preset (or one edited run) started from the dashboard: its thread, control and state."""

    def __init__(self, experiment: Experiment, tag: str, *, data: DataOptions | None = None,
                 out=None, records: bool = True):
        self.experiment = experiment
        self.tag = tag
        self.data = data or DataOptions()
        self.control = Control()
        self.out = out or (default_out(experiment.name) if records else None)
        self._lock = threading.Lock()
        self._version = 0
        self._runs: dict[int, dict] = {}
        for i, run in enumerate(experiment.runs):
            o = run["optimizer"]
            self._runs[i] = {"key": f"{tag}:{i}", "label": run.label, "optimizer": o["name"], "lr": o["lr"],
                             "status": "pending", "losses": deque(maxlen=LOSS_POINTS), "train_loss": Series(),
                             "val_accuracy": Series(), "test_accuracy": Series(), "val_loss": Series()}
        self._notices: list[str] = []
        self._compiling = False
        self._dataset = ""
        self._surface: list = []
        self._error: str | None = None
        self.thread = None  # a threading.Thread, or the app's stand-in for its thread worker
        self.worker = None
        self.outcome = None

    # -- the training thread's side --

    def on_event(self, event) -> None:
        with self._lock:
            self._fold(event)
            self._version += 1

    def _fold(self, e) -> None:
        if isinstance(e, Notice):
            if e.kind == "compiling":
                self._compiling = True
            elif e.kind == "compiled":
                self._compiling = False
            else:
                self._notices.append(e.text)
            return
        if isinstance(e, SurfaceDone):
            r = self._runs[e.run]
            self._surface.append((r["key"], e.result))
            r.update(status=e.result.status, summary=e.result.summary())
            return
        r = self._runs.get(getattr(e, "run", -1))
        if r is None:
            return
        if isinstance(e, Started):
            self._dataset = e.dataset
            r.update(status="running", epochs=e.epochs, total_steps=e.epochs * e.steps_per_epoch,
                     sizes=e.sizes)
        elif isinstance(e, Progress):
            r["losses"].append(e.loss)
            r.update(epoch=e.epoch, step=e.step, elapsed=e.elapsed, samples_per_second=e.samples_per_second)
        elif isinstance(e, EpochEnd):
            m = e.metrics
            for key in ("train_loss", "val_accuracy", "test_accuracy", "val_loss"):
                r[key].append(m[key])
            r.update(epoch=e.epoch, grad_norms=e.grad_norms, grad_ratio=m["grad_ratio"],
                     samples_per_second=m["samples_per_second"])
        elif isinstance(e, Diverged):
            r["diverged_at"] = (e.epoch, e.step)
        elif isinstance(e, Finished):
            r.update(status=e.status, summary=e.summary, confusion=e.confusion)

    # -- the screen's side --

    def snapshot(self) -> Snapshot:
        with self._lock:
            runs = []
            for r in self._runs.values():
                d = {k: (tuple(v) if isinstance(v, (list, deque)) else v.view() if isinstance(v, Series) else v)
                     for k, v in r.items()}
                runs.append(RunView(**d))
            return Snapshot(tuple(runs), tuple(self._notices), self._compiling, self._dataset, self._version,
                            tuple(self._surface), self._error)

    @property
    def version(self) -> int:
        return self._version

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def run(self) -> None:
        """The thread's body: the whole experiment, records kept whatever happens."""
        records = RunRecords(self.out) if self.out is not None else None
        try:
            if self.experiment.kind == "surface":
                from tuilab.engine.surface_runner import run_surfaces

                self.outcome = run_surfaces(self.experiment, self.on_event, self.control, records=records)
            else:
                from tuilab.engine.runner import run_network

                self.outcome = run_network(self.experiment, self.on_event, self.control, data=self.data,
                                           records=records, interleave=True)
        except Exception as exc:  # shown on screen; a user's mistake is one line, a bug its type too
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
                for r in self._runs.values():
                    if r["status"] in ("pending", "running"):
                        r["status"] = "interrupted"
                self._version += 1

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"tuilab-{self.tag}", daemon=True)
        self.thread.start()

    def stop(self, wait: float = 0.0) -> None:
        self.control.stop()
        if wait and self.thread is not None:
            self.thread.join(wait)

    def toggle_pause(self) -> bool:
        """Pause or resume; True when now paused."""
        if self.control.paused:
            self.control.resume()
            return False
        if self.running:
            self.control.pause()
            return True
        return False


def wait_all(experiments, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for live in experiments:
        if live.thread is not None:
            live.thread.join(max(0.0, deadline - time.monotonic()))
