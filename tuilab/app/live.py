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
from tuilab.engine.config.experiment import Experiment
from tuilab.engine.events import (
    Control,
    DecisionMapped,
    Diverged,
    EpochEnd,
    Finished,
    LrRangePoints,
    Notice,
    Phase,
    Progress,
    Started,
    SurfaceDone,
)
from tuilab.engine.nn.health import FIGURES as HEALTH_FIGURES
from tuilab.engine.nn.health import HISTOGRAM, read_histogram
from tuilab.engine.records.run_records import RunRecords, default_out
from tuilab.engine.training.data_cache import DataOptions

LOSS_POINTS = 240  # training-loss points kept per run for its sparkline
# an epoch's metrics the internals tab shows (engine.internals.SCALARS and the per-layer columns)
INSIDE = ("weight_norm_", "grad_norm_", "update_ratio", "eff_step_", "no_gradient_", "momentum_t", "bias_correction",
          "radam_", "nadam_mu", "lion_agreement", *(f"{name}_" for name in HEALTH_FIGURES))
MAP_SECONDS = 1.0  # a live decision map at most this often: a 96x64 grid on [2,64,64,2] is ~5 ms of a core
GRAD_EPOCHS = 2000  # the last epochs whose per-layer gradient norms can be stepped through
ACT_EPOCHS = 2000  # the last epochs with activation histograms kept for the distributions' strips


def _hidden_activations(run) -> tuple[str, ...]:
    """A network run's hidden layers' activation names (one per layer); () for a surface run."""
    if run.model is None:
        return ()
    act = run.model.activation
    return (act,) * len(run.model.hidden) if isinstance(act, str) else tuple(act)


@dataclass(frozen=True)
class RunView:
    """One run, frozen at a moment."""

    key: str  # unique across the dashboard: "<experiment>:<run>"
    label: str
    optimizer: str
    lr: float
    status: str  # pending, running, completed, diverged, interrupted
    paused: bool = False  # running, and its experiment's Control is paused
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    elapsed: float = 0.0
    samples_per_second: float = math.nan
    samples: int = 0  # trained so far
    total_samples: int = 0  # epochs x training rows, once started
    losses: tuple[float, ...] = ()  # the last LOSS_POINTS chunks' training losses
    # per epoch, thinned to a few hundred points however long the run (app.series)
    train_loss: SeriesView = SeriesView()
    val_accuracy: SeriesView = SeriesView()
    test_accuracy: SeriesView = SeriesView()
    val_loss: SeriesView = SeriesView()
    sharpness: SeriesView = SeriesView()  # NaN at the epochs that did not measure it (train.sharpness_every)
    stability_threshold: SeriesView = SeriesView()
    grad_norms: tuple[float, ...] = ()
    grad_ratio: float = math.nan
    grad_history: tuple = ()  # (epoch, norms, first/last ratio) of the last GRAD_EPOCHS epochs
    act_history: tuple = ()  # (epoch, each hidden layer's (min, max, counts) or None) where health was recorded
    sizes: tuple[int, ...] = ()
    summary: dict = field(default_factory=dict)
    confusion: tuple = ()
    diverged_at: tuple[int, int] | None = None  # (epoch, step)
    inside: dict = field(default_factory=dict)  # the last epoch's weight norms and internals (engine.nn.internals)
    activations: tuple[str, ...] = ()  # the hidden layers' activations, for the inside tab's words
    decision: object = None  # the last DecisionMapped of a two-input run
    range_lrs: tuple[float, ...] = ()  # a learning-rate range test's steps: their lr and smoothed loss
    range_smoothed: tuple[float, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status not in ("pending", "running")


@dataclass(frozen=True)
class Snapshot:
    runs: tuple[RunView, ...]
    notices: tuple[str, ...]
    compiling: bool
    dataset: str
    surface_results: tuple = ()  # (run key, SurfaceResult) pairs
    error: str | None = None
    began: float | None = None  # time.monotonic() when its thread started
    ended: float | None = None  # and when it ended
    experiment: object = None  # whose runs these are (a fair race's phase changes it)


@dataclass(frozen=True)
class WallProgress:
    """Where the experiments on a screen stand, in wall-clock terms."""

    elapsed: float  # seconds since the first of them began, to now or to the last one's end
    eta: float  # seconds until every run is done at the recent rate (nan when unknown)
    rate: float  # samples trained per wall second, all runs together, over the last few seconds
    running: int
    paused: int  # running runs whose experiment is paused


class Pace:
    """How often a screen redraws, so that its drawing stays near `share` of one core however many
    runs it shows: each window of about a second, the UI thread's CPU time over the wall time is
    compared with the share; above it the interval between redraws grows by half (up to `most`),
    below half of it the interval shrinks back toward `base`. `factor` (interval / base) stretches
    the chart's interval alike. A key still redraws at once (screens call redraw(force=True)).

    With 20 runs at 120x40 a redraw at 5 a second took ~30 % of a core (the rows' sparklines and the
    chart's 20 lines); one run's redraw takes a few per cent and keeps the 5 a second.
    """

    WINDOW = 1.0

    def __init__(self, base: float, share: float = 0.08, most: float = 2.0, clock=time.monotonic,
                 cpu=time.thread_time):
        self.base, self.share, self.most = base, share, most
        self.clock, self.cpu = clock, cpu
        self.interval = base
        self._window = (clock(), cpu())
        self._drawn = -math.inf

    @property
    def factor(self) -> float:
        return self.interval / self.base

    def due(self) -> bool:
        """Called on the UI thread every `base` seconds: whether to redraw now (and if so, marked drawn)."""
        now, used = self.clock(), self.cpu()
        t0, c0 = self._window
        if now - t0 >= self.WINDOW:
            busy = (used - c0) / (now - t0)
            if busy > self.share:
                self.interval = min(self.most, self.interval * 1.5)
            elif busy < self.share / 2:
                self.interval = max(self.base, self.interval / 1.5)
            self._window = (now, used)
        if now - self._drawn >= self.interval - 1e-9:
            self._drawn = now
            return True
        return False


def busy_seconds(spans) -> float:
    """The wall time covered by any of the (start, end) spans: overlaps once, gaps not at all (an experiment
    restarted two minutes after the last one ended adds its own seconds, not the two minutes between)."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


class WallClock:
    """The whole experiment's progress on the wall clock, from the snapshots a screen draws.

    The ETA is the samples still to train over the rate at which they are being trained now
    (all runs together): per-run figures said "ETA 0:50" for an 18-run zoo with eight minutes
    to go, as each run counts only its own training time. A run not yet started is taken to
    be as long as the started runs' mean epoch times its epochs.
    """

    WINDOW = 5.0  # seconds of samples the rate is taken over

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._marks: deque[tuple[float, int]] = deque()

    def progress(self, snaps, views) -> WallProgress:
        now = self.clock()
        elapsed = busy_seconds([(s.began, now if s.ended is None else s.ended) for s in snaps if s.began is not None])
        done = sum(v.samples for v in views)
        marks = self._marks
        if marks and done < marks[-1][1]:
            marks.clear()  # rows were cleared: a new count
        marks.append((now, done))
        while len(marks) > 2 and now - marks[1][0] >= self.WINDOW:
            marks.popleft()
        dt = now - marks[0][0]
        rate = (done - marks[0][1]) / dt if dt > 0 else math.nan
        running = [v for v in views if v.status == "running"]
        started = [v for v in views if v.total_samples]
        per_epoch = (sum(v.total_samples / v.epochs for v in started) / len(started)) if started else math.nan
        left = 0.0
        for v in views:
            if v.status == "running":
                left += max(v.total_samples - v.samples, 0)
            elif v.status == "pending":
                left += per_epoch * v.epochs
        # nothing left and nothing running: no ETA to give; paused (rate 0) or unknown: none either
        known = (running or left) and rate > 0 and math.isfinite(left)
        return WallProgress(elapsed, left / rate if known else math.nan, rate, len(running),
                            sum(v.paused for v in running))


WATCH_SECONDS = 3.0  # a run of one preset in the dashboard lasts at least this long, so a curve is seen to grow
MIN_PACE = 0.005  # seconds an epoch: below it (over 600 epochs) no pace; the progress line says when there is one


def watch_pace(experiment) -> float:
    """The least time an epoch takes in the dashboard: a single network run's epochs spread over WATCH_SECONDS
    (spirals trains its 40 epochs in ~40 ms: the view jumped to the end). Runs that take longer anyway are not
    slowed; several runs, range tests and surfaces are not paced; `p` on the screen gives full speed."""
    if experiment.lab != "network" or experiment.lr_range is not None or len(experiment.runs) != 1:
        return 0.0
    pace = WATCH_SECONDS / max(1, experiment.runs[0].train.epochs)
    return pace if pace >= MIN_PACE else 0.0  # a run of thousands of epochs is watched as it is


class LiveExperiment:
    """One preset (or one edited run) started from the dashboard: its thread, control and state."""

    def __init__(self, experiment: Experiment, tag: str, *, data: DataOptions | None = None,
                 out=None, records: bool = True, resume: dict | None = None, cluster: str | None = None):
        self.experiment = experiment
        self.cluster = cluster
        self.resume = resume  # continue the records in `out` (engine.resume.plan_resume)
        self.tag = tag
        self.data = data or DataOptions()
        self.control = Control()
        self.control.min_epoch_seconds = watch_pace(experiment)
        self.control.map_seconds = MAP_SECONDS  # two-input runs send their decision maps (engine.nn.decision)
        self.out = out or (default_out(experiment.name) if records else None)
        self._lock = threading.Lock()
        self.plan = experiment  # what run() carries out; a fair race's phases bring experiments of their own
        if experiment.race is not None and resume is None:
            from tuilab.engine.training.race import tune_experiment

            # the tuning's runs from the start, keyed as its Phase event will key them: the preset's own runs
            # never show, so no row of theirs is mounted and at once taken down (that raced Textual's mounting)
            self._set_runs(tune_experiment(experiment), f"{tag}-tune")
        else:
            self._set_runs(experiment, tag)
        self._notices: list[str] = []
        self._compiling = False
        self._dataset = ""
        self._surface: list = []
        self._error: str | None = None
        self.thread = None  # the app's stand-in for its thread worker
        self.worker = None
        self.outcome = None
        self._began: float | None = None
        self._ended: float | None = None

    def _set_runs(self, experiment: Experiment, prefix: str) -> None:
        """The runs shown: the experiment's (a fair race's phase brings its own: keys of their own too)."""
        self.experiment = experiment
        self._runs: dict[int, dict] = {}
        for i, run in enumerate(experiment.runs):
            o = run.optimizer
            self._runs[i] = {"key": f"{prefix}:{i}", "label": run.label, "optimizer": o.name, "lr": o.lr,
                             "status": "pending", "epochs": run.train.epochs if run.train else 0,
                             "activations": _hidden_activations(run),
                             "losses": deque(maxlen=LOSS_POINTS), "grad_history": deque(maxlen=GRAD_EPOCHS),
                             "act_history": deque(maxlen=ACT_EPOCHS),
                             "train_loss": Series(),
                             "val_accuracy": Series(), "test_accuracy": Series(), "val_loss": Series(),
                             "sharpness": Series(), "stability_threshold": Series(),
                             "range_lrs": [], "range_smoothed": []}

    # -- the training thread's side --

    def on_event(self, event) -> None:
        with self._lock:
            self._fold(event)

    def _fold(self, e) -> None:
        if isinstance(e, Phase):  # a fair race's next phase: its runs replace the last phase's
            self._set_runs(e.experiment, f"{self.tag}-{e.name}")
            return
        if isinstance(e, Notice):
            if e.category == "compiling":
                self._compiling = True
            elif e.category == "compiled":
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
                     total_samples=e.epochs * e.samples_per_epoch, sizes=e.sizes)
        elif isinstance(e, Progress):
            r["losses"].append(e.loss)
            r.update(epoch=e.epoch, step=e.step, elapsed=e.elapsed, samples_per_second=e.samples_per_second,
                     samples=e.samples)
        elif isinstance(e, EpochEnd):
            m = e.metrics
            for key in ("train_loss", "val_accuracy", "test_accuracy", "val_loss"):
                r[key].append(m[key])
            for key in ("sharpness", "stability_threshold"):
                r[key].append(m.get(key, math.nan))
            r.update(epoch=e.epoch, grad_norms=e.grad_norms, grad_ratio=m["grad_ratio"],
                     samples_per_second=m["samples_per_second"])
            if "update_ratio_1" in m:  # small epochs record the internals every k-th epoch, not each
                r["inside"] = {k: v for k, v in m.items() if k.startswith(INSIDE)} | {"epoch": e.epoch}
            r["grad_history"].append((e.epoch, e.grad_norms, m["grad_ratio"]))
            if f"{HISTOGRAM}_1" in m:
                hists = tuple(read_histogram(m.get(f"{HISTOGRAM}_{l + 1}")) for l in range(len(e.grad_norms) - 1))
                if any(h is not None for h in hists):
                    r["act_history"].append((e.epoch, hists))
        elif isinstance(e, DecisionMapped):
            r["decision"] = e
        elif isinstance(e, Diverged):
            r["diverged_at"] = (e.epoch, e.step)
        elif isinstance(e, LrRangePoints):  # a few hundred steps in all: kept whole
            r["range_lrs"].extend(e.lrs)
            r["range_smoothed"].extend(e.smoothed)
        elif isinstance(e, Finished):
            r.update(status=e.status, summary=e.summary, confusion=e.confusion)

    # -- the screen's side --

    def snapshot(self) -> Snapshot:
        paused = self.control.paused  # the one place the pause lives: the Control the runs obey
        with self._lock:
            runs = []
            for r in self._runs.values():
                d = {k: (tuple(v) if isinstance(v, (list, deque)) else v.view() if isinstance(v, Series) else v)
                     for k, v in r.items()}
                runs.append(RunView(**d, paused=paused and d["status"] == "running"))
            return Snapshot(tuple(runs), tuple(self._notices), self._compiling, self._dataset,
                            tuple(self._surface), self._error, self._began, self._ended, self.experiment)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _replay_kept(self, records) -> None:
        """A resumed experiment's rows start with what its records keep: every epoch up to each run's
        checkpoint (the ones past it are trained again), the finished runs whole."""
        from tuilab.engine.records.replay import replayed_events
        from tuilab.engine.records.run_records import read_records
        from tuilab.engine.training.checkpoint import checkpoint_epoch

        kept = {i: (self.resume[i].get("epochs_done", 0) if i in self.resume else checkpoint_epoch(records, run))
                for i, run in enumerate(self.experiment.runs)}
        for event in replayed_events(read_records(self.out), self.experiment):
            if isinstance(event, EpochEnd) and event.epoch <= kept[event.run]:
                self.on_event(event)
                with self._lock:  # the row's sparkline: per epoch here, per chunk from now on
                    self._runs[event.run]["losses"].append(event.metrics.get("train_loss", math.nan))
            elif isinstance(event, Finished) and event.run in self.resume:
                self.on_event(event)

    def run(self) -> None:
        """The thread's body: the whole experiment, records kept whatever happens."""
        records = RunRecords(self.out) if self.out is not None else None
        if self.resume is not None and records is not None:
            self._replay_kept(records)
        self._began = time.monotonic()
        try:
            if self.plan.lab == "surface":
                from tuilab.engine.surfaces.runner import run_surfaces

                self.outcome = run_surfaces(self.plan, self.on_event, self.control, records=records)
            elif self.plan.race is not None and self.resume is None:
                from tuilab.engine.training.race import run_race

                self.outcome = run_race(self.plan, self.on_event, self.control, data=self.data, out=self.out,
                                        cluster=self.cluster, interleave=True)
            else:
                from tuilab.engine.training.runner import run_network

                self.outcome = run_network(self.plan, self.on_event, self.control, data=self.data,
                                           records=records, interleave=True, resume=self.resume,
                                           cluster=self.cluster)
        except Exception as exc:  # shown on screen; a user's mistake is one line, a bug its type too
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
                for r in self._runs.values():
                    if r["status"] in ("pending", "running"):
                        r["status"] = "interrupted"
        finally:
            self._ended = time.monotonic()

    def stop(self, wait: float = 0.0) -> None:
        self.control.stop()
        if wait and self.thread is not None:
            self.thread.join(wait)


class ReplayedExperiment(LiveExperiment):
    """A records folder shown as if live: its events replayed from metrics.csv and summary.json."""

    def __init__(self, experiment: Experiment, tag: str, reopened):
        super().__init__(experiment, tag, out=reopened.folder, records=False)
        self.reopened = reopened
        self.resumed = False  # continued with u: its rows give way to the resumed runs

    def run(self) -> None:
        from tuilab.engine.records.replay import replayed_events, replayed_surface_events

        self._began = time.monotonic()
        replay = replayed_surface_events if self.experiment.lab == "surface" else replayed_events
        for event in replay(self.reopened, self.experiment):
            self.on_event(event)
            if isinstance(event, EpochEnd):  # the row's sparkline: per epoch here, per chunk when live
                with self._lock:
                    self._runs[event.run]["losses"].append(event.metrics.get("train_loss", math.nan))
        with self._lock:
            self._notices.extend(f"{self.reopened.folder.name}: {n}" for n in self.reopened.notes)
            for r in self._runs.values():  # what was under way when it stopped is shown stopped
                if r["status"] in ("pending", "running"):
                    r["status"] = "interrupted" if r.get("epoch") else "pending"
        self._ended = self._began  # nothing trained now: no wall-clock figures to give


def wait_all(experiments, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for live in experiments:
        if live.thread is not None:
            live.thread.join(max(0.0, deadline - time.monotonic()))
