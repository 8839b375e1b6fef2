"""What a training or surface run tells its listener: small frozen dataclasses.

The Trainer emits them to one callback; the headless printer, the run records and
the Textual app each read them and nothing else of the engine's insides. The other way,
they hold a `Control` (pause, resume, stop) that the runs check between chunks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

STATUS_ORDER = ("interrupted", "failed", "diverged")  # an experiment takes the first of these any run has


def overall_status(statuses) -> str:
    """interrupted if any run was stopped, else failed if any failed (its worker lost twice), else
    diverged if any diverged, else completed (pruned runs included)."""
    statuses = list(statuses)
    return next((s for s in STATUS_ORDER if s in statuses), "completed")


@dataclass(frozen=True)
class Notice:
    """A one-line message for the person: a data-set fallback, a first-run compilation."""

    text: str
    category: str = "info"  # "info", "warning", "compiling", "compiled"


@dataclass(frozen=True)
class Phase:
    """A fair race (engine.training.race) begins a phase: its runs are this experiment's from now on."""

    name: str  # "tune" or "race"
    experiment: object  # engine.config.experiment.Experiment


@dataclass(frozen=True)
class Started:
    run: int
    label: str
    epochs: int
    steps_per_epoch: int
    n_params: int
    sizes: tuple[int, ...]
    dataset: str
    optimizer: str
    samples_per_epoch: int  # training rows: an epoch trains each once
    first_epoch: int = 0  # the epochs it had already done: a resumed run, or one going on past a rung


@dataclass(frozen=True)
class Progress:
    """Sent a few times a second: the mean training loss of the steps since the last one."""

    run: int
    epoch: int  # the epoch being trained, from 1
    step: int  # steps done in this run so far
    total_steps: int
    loss: float
    samples_per_second: float
    elapsed: float  # seconds of training in this run
    samples: int  # samples trained in this run so far


@dataclass(frozen=True)
class EpochEnd:
    run: int
    epoch: int
    metrics: dict  # the metrics.csv columns of this epoch; treat as read-only
    grad_norms: tuple[float, ...]


@dataclass(frozen=True)
class Diverged:
    run: int
    epoch: int
    step: int  # the step (from 1) whose loss was NaN or infinite; it was not applied
    loss: float


@dataclass(frozen=True)
class Finished:
    run: int
    label: str
    status: str  # "completed", "diverged", "interrupted"
    summary: dict = field(default_factory=dict)
    confusion: tuple = ()  # rows of the test-set confusion matrix (true x predicted), when there is one


@dataclass(frozen=True)
class LrRangePoints:
    """A learning-rate range test's steps since the last: each step's learning rate, minibatch loss
    (before its update) and the smoothed loss (engine.training.lr_range)."""

    run: int
    first_step: int  # the first of these steps, from 0
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]


@dataclass(frozen=True)
class DecisionMapped:
    """A two-input run's decision map at an epoch's end (engine.nn.decision), with the points to draw over it:
    a fixed sample of training points and every test point with what the network predicts there now."""

    run: int
    epoch: int
    x: object  # (nx,) the grid's axes in the data's units
    y: object  # (ny,)
    p: object  # (ny, nx, classes) float32
    train_xy: object  # (n, 2)
    train_labels: object  # (n,) or None (regression)
    test_xy: object
    test_labels: object
    test_predicted: object  # (n,) the class predicted at each test point now, or None


@dataclass(frozen=True)
class SurfaceDone:
    """One optimizer's run over a landscape has ended; `result` is a SurfaceResult (read-only)."""

    run: int
    label: str
    result: object


class Control:
    """Pause, resume and stop, shared between the one who asks and the training thread."""

    def __init__(self):
        self._running = threading.Event()
        self._running.set()
        self.stop_requested = threading.Event()
        # the dashboard's pace for a run whose epochs take milliseconds (0: full speed; headless never sets it)
        self.min_epoch_seconds = 0.0
        # how often a two-input run sends its decision map (0: never; the dashboard sets it, headless does not)
        self.map_seconds = 0.0

    def pace(self, since: float) -> None:
        """Wait until an epoch begun at `since` (time.monotonic) has lasted min_epoch_seconds, or a stop.
        Read again as it waits, so that full speed asked for takes effect at once."""
        while not self.stop_requested.is_set():
            left = since + self.min_epoch_seconds - time.monotonic()
            if left <= 0:
                return
            self.stop_requested.wait(min(left, 0.05))

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def stop(self) -> None:
        self.stop_requested.set()
        self._running.set()  # a paused run must wake up to stop

    def wait_while_paused(self) -> bool:
        """Block while paused; True when training may go on, False when stopped."""
        while not self._running.wait(0.1):
            pass
        return not self.stop_requested.is_set()
