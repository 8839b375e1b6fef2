"""One run (or one span of it, up to a halving rung) as a task any worker process can take.

`train_task(task)` is what an executor runs: in a local process of `--jobs`, or on a Dask
worker of `--cluster`, on this machine or another. It finds its data through the same search
order as a local run (or takes the client's copy when the task carries one), trains, sends its
events back through the worker's link to the client, and returns a `RunResult` with
everything the records need (params, confusion, the state to continue from), so that the
client can write one experiment folder whatever machine trained the run.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from tuilab.engine.config.experiment import RunConfig
from tuilab.engine.data import sets as data_mod
from tuilab.engine.events import Control, EpochEnd, Progress
from tuilab.errors import TuilabError

FLUSH_SECONDS = 0.1  # events go back in batches: one round trip to a Dask scheduler costs a few ms


@dataclass
class RunTask:
    """What a worker needs to train run `index` from `start` (checkpoint bytes, or None: from
    epoch 0) until `stop_at` (an epoch, or None: to the end)."""

    index: int
    config: RunConfig
    data: object  # runner.DataOptions
    fingerprint: str | None  # of the client's source for an image set (None: made anywhere alike)
    source_name: str  # the set the client loaded (a stand-in's name when the asked one was missing)
    columns: list[str] = field(default_factory=list)
    start: bytes | None = None
    stop_at: int | None = None
    out: str | None = None  # the records folder, when the worker shares the client's disk
    source: object = None  # the client's Source itself, when the worker had none (a scattered future)
    whole_table: bool = False  # compile the optimizer table whole, as the client decided (kernel_choice)


@dataclass
class RunResult:
    index: int
    status: str  # "completed", "diverged", "interrupted", "paused" at a rung, or "cancelled" (not begun)
    attempt: str  # which try of the task this was (its events carry the same tag)
    batches: int  # how many batches of events it sent: the client reads them all before the result
    summary: dict = field(default_factory=dict)
    epochs_done: int = 0
    theta: np.ndarray | None = None
    meta: dict = field(default_factory=dict)  # sizes, activations, loss: what params.npz keeps beside theta
    confusion: np.ndarray | None = None
    state: bytes | None = None  # the checkpoint at the span's end


class NeedsData(Exception):
    """The worker has no copy of the data set the client has (or a different one)."""


def fingerprint(src: data_mod.Source) -> str:
    """A digest of a source's arrays: a worker's copy must be the client's, bit for bit."""
    h = hashlib.blake2b(digest_size=16)
    for a in (src.X_train, src.y_train, src.X_test, src.y_test):
        if a is not None:
            h.update(str((a.dtype, a.shape)).encode())
            h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


class _WorkerState:
    """What a worker process keeps between tasks: data sets, prepared arrays, the kinds of run it compiled for."""

    def __init__(self):
        self.sources: dict = {}
        self.prepared: dict = {}
        self.compiled: set = set()


_STATE = _WorkerState()
_LINK = None  # set in each local process by executors._init_local_process


def _source_for(task: RunTask) -> data_mod.Source:
    d = task.config.data
    key = (task.source_name, d.n_samples, d.noise, d.seed, d.path, d.label, d.classes, task.fingerprint)
    if key in _STATE.sources:
        return _STATE.sources[key]
    if task.source is not None:
        src = task.source
    elif task.fingerprint is None:  # synthetic, or the bundled digits: made here alike
        src, _ = data_mod.load_source(d.name, n_samples=d.n_samples, noise=d.noise, seed=d.seed, path=d.path,
                                      label=d.label, classes=d.classes)
    else:
        opts = task.data
        try:
            src, _ = data_mod.load_source(task.source_name, data_dir=opts.data_dir, strict=True,
                                          download=opts.download, mirror=opts.mirror)
        except TuilabError as exc:
            raise NeedsData(str(exc)) from None
        if fingerprint(src) != task.fingerprint:
            raise NeedsData(f"{task.source_name}: this worker's copy differs from the client's")
    _STATE.sources[key] = src
    return src


def _prepared_for(task: RunTask) -> data_mod.Prepared:
    d, dtype = task.config.data, task.config.model.dtype
    src = _source_for(task)
    key = (task.source_name, task.fingerprint, d, dtype)
    if key not in _STATE.prepared:
        _STATE.prepared[key] = data_mod.prepare(
            src, val_fraction=d.val_fraction, test_fraction=d.test_fraction, normalize=d.normalize,
            target=d.target, train_samples=d.train_samples, seed=d.seed, dtype=np.dtype(dtype))
    return _STATE.prepared[key]


class EventLink:
    """Events to the client in batches of at most FLUSH_SECONDS (each batch tagged with its attempt,
    so a run retried after its worker died is told apart from its first try)."""

    def __init__(self, put, stop_flag):
        self.put = put  # one batch -> the client
        self.stop = stop_flag  # .is_set(): the client asked every run to stop
        self.buffer: list = []
        self.last = time.monotonic()
        self.attempt = ""
        self.sent = 0

    def __call__(self, event) -> None:
        self.buffer.append(event)
        now = time.monotonic()
        if now - self.last >= FLUSH_SECONDS or not isinstance(event, (Progress, EpochEnd)):
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            batch, self.buffer = self.buffer, []
            self.put((self.attempt, batch))
            self.sent += 1
        self.last = time.monotonic()


def run_task(task: RunTask, link: EventLink) -> RunResult:
    """Train the task's span on this process; events through `link`."""
    from tuilab.engine.training import checkpoint
    from tuilab.engine.training.fit import train_on_one_core
    from tuilab.engine.training.kernel_choice import use_whole_table
    from tuilab.engine.training.train import Trainer
    from tuilab.engine.training.warmup import compile_network_kernels, may_split, step_kernels_of

    link.attempt, link.sent = uuid.uuid4().hex, 0
    if link.stop.is_set():  # stopped while it waited for a worker: it never begins
        return RunResult(task.index, "cancelled", link.attempt, 0)
    train_on_one_core()  # every worker process is one core; the others have the other cores
    prepared = _prepared_for(task)
    # once per worker process and kind of run (a load from numba's cache when warm): its dtype, its optimizer
    # (kernels.step_choice) and whether it may take the column split
    split = may_split([task.config], [prepared])
    use_whole_table(task.whole_table)
    kind = (task.config.model.dtype, tuple(step_kernels_of([task.config])), split, task.whole_table)
    if kind not in _STATE.compiled:
        compile_network_kernels(kind[0], split, kind[1])
        _STATE.compiled.add(kind)
    control = Control()
    control.stop_requested = link.stop
    records = None
    if task.out is not None:
        from tuilab.engine.records.run_records import RunRecords

        records = RunRecords(task.out)

    def emit(event):
        # where the worker shares the records folder, it writes its own rows, before the checkpoint
        # that follows them: a checkpoint on disk is then never ahead of metrics.csv
        if records is not None and isinstance(event, EpochEnd):
            records.append_from_job("metrics.csv", task.columns, event.metrics)
        link(event)

    ckpt = checkpoint.checkpoint_of(records, task.config) if records is not None else None
    t = Trainer(task.index, task.config, prepared, emit, control, ckpt)
    try:
        if task.start is not None:
            checkpoint.restore(task.start, t)
        t.stop_at = task.stop_at
        t.run()
    finally:
        link.flush()
    return RunResult(task.index, t.status, link.attempt, link.sent, t.summary(), t.epoch, t.theta,
                     {"sizes": t.net.sizes, "activations": t.net.activations, "loss": t.net.loss_name},
                     t.confusion, checkpoint.to_bytes(t, snapshots=True))


def train_in_local_process(task: RunTask) -> RunResult:
    """The task in a process of executors.LocalProcesses (its link set up when the process began)."""
    return run_task(task, _LINK)


def train_on_dask_worker(task: RunTask, queue_name: str, stop_name: str, source=None) -> RunResult:
    """The task on a Dask worker: events to a distributed.Queue, the stop from a distributed.Event;
    `source`: the client's data set (a scattered future, which Dask hands over as the Source)."""
    from distributed import Event, Queue

    if source is not None:
        task.source = source
    queue = Queue(queue_name)
    return run_task(task, EventLink(queue.put, PolledFlag(Event(stop_name))))


class PolledFlag:
    """A stop flag read from a Dask Event at most every 0.25 s (each look is a scheduler round trip)."""

    def __init__(self, event, every: float = 0.25):
        self.event = event
        self.every = every
        self._seen = False
        self._at = -1e9

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._seen and now - self._at >= self.every:
            self._at = now
            try:
                self._seen = bool(self.event.is_set())
            except Exception:  # the client is gone: nobody left to keep the rows; stop
                self._seen = True
        return self._seen

    def set(self) -> None:
        self.event.set()
