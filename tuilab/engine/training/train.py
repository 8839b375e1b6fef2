"""The Trainer: one network run as chunks of the kernel loop, with metrics and events.

It knows nothing of screens: it calls `emit(event)` and checks a `Control` between
chunks (pause, resume, stop). A chunk is sized to take about CHUNK_SECONDS so that a
listener hears from it a few times a second and a stop is answered quickly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuilab.engine.config.experiment import RunConfig
from tuilab.engine.data.sets import Prepared
from tuilab.engine.events import Control, DecisionMapped, Diverged, EpochEnd, Finished, Progress, Started
from tuilab.engine.nn import decision, health
from tuilab.engine.nn import internals as internals_mod
from tuilab.engine.nn import sharpness as sharpness_mod
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.nn.schedules import Schedule
from tuilab.engine.records import snapshots as snapshots_mod
from tuilab.engine.training import checkpoint as checkpoint_mod
from tuilab.engine.training.fit import steps_per_epoch, train_steps
from tuilab.engine.training.kernel_choice import wait_for_kernel
from tuilab.engine.training.threads import budget, numba_blas

CHUNK_SECONDS = 0.1
MAP_TRAIN_POINTS = 300  # training points drawn over a decision map
CHECKPOINT_SECONDS = 0.5  # the least time between two checkpoints of a run (and at its end, or a stop)
# An epoch of fewer parameter-samples (training rows x parameters) than this records the optimizer's internals
# only every k-th epoch (k = this / its own, at most INTERNALS_EVERY_MOST), with the first and the last: their
# figures cost ~0.1-0.3 ms an epoch whatever its size, and at every epoch spirals' (3,200 rows x 4,482
# parameters, 2.7 ms) paid +14 %. A count of work, not of seconds, so the same run records the same rows on
# any machine, in one process or on a cluster. MNIST-sized epochs (1e8 and more) record every epoch.
INTERNALS_WORK = 2**26
INTERNALS_EVERY_MOST = 1000


def _accuracy(data: Prepared, out: np.ndarray, labels: np.ndarray | None) -> float:
    if labels is None or len(labels) == 0:
        return math.nan
    return float((predictions(data, out) == labels).mean())


def predictions(data: Prepared, out: np.ndarray) -> np.ndarray:
    """Class ids from outputs: the argmax, or a value standing for a class rounded to the nearest."""
    if data.target == "value":
        return np.clip(np.rint(out[:, 0] * data.n_classes), 0, data.n_classes - 1).astype(np.int64)
    return out.argmax(axis=1)


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


AVERAGE_COLUMNS = ["average_val_loss", "average_val_accuracy", "average_test_loss", "average_test_accuracy"]


SHARPNESS_COLUMNS = ["sharpness", "stability_threshold", "sharpness_iterations"]


def metric_columns(n_layers: int, average: bool = False, internals=(), sharpness: bool = False) -> list[str]:
    """metrics.csv's columns for networks of up to n_layers weight layers (and, when a run's optimizer
    keeps a second point, ASGD's average, that point's scores: only then, so older records resume;
    internals: the optimizer specs of the runs that record their internals, engine.internals.columns;
    sharpness: a run measures it, train.sharpness_every)."""
    return (["run", "label", "epoch", "step", "train_loss", "val_loss", "val_accuracy", "test_loss",
             "test_accuracy", "lr", "seconds", "samples_per_second", "grad_ratio"]
            + [f"grad_norm_{l + 1}" for l in range(n_layers)]
            + [f"weight_norm_{l + 1}" for l in range(n_layers)]
            + (AVERAGE_COLUMNS if average else [])
            + (SHARPNESS_COLUMNS if sharpness else [])
            + (internals_mod.columns(n_layers, internals) + health.columns(n_layers) if internals else []))


def experiment_columns(runs) -> list[str]:
    """metric_columns for every run of an experiment."""
    from tuilab.engine.nn.optim import get_spec

    specs = [get_spec(r.optimizer.name) for r in runs]
    return metric_columns(max(len(r.model.hidden) + 1 for r in runs), any(s.shadow for s in specs),
                          [s for s, r in zip(specs, runs, strict=True) if r.train.internals],
                          any(r.train.sharpness_every > 0 for r in runs))


@dataclass
class _Epoch:
    """An epoch under way: its learning rate, row order, per-step losses and gradient norms, timing."""

    lr: float
    order: np.ndarray
    losses: np.ndarray
    grad_sq: np.ndarray
    begun: float
    first: int = 0  # the next step of the epoch
    trained: float = 0.0  # seconds spent training in its chunks
    inside: bool = False  # it records the optimizer's internals (engine.nn.internals)


class Trainer:
    """Train one run of an experiment on prepared data; `run()` returns its summary."""

    def __init__(self, run: int, config: RunConfig, data: Prepared, emit, control: Control | None = None,
                 checkpoint: Path | None = None):
        self.run_index = run
        self.checkpoint = checkpoint  # where its state goes at epochs' ends (training.checkpoint)
        self._checkpointed = -math.inf
        self.config = config
        self.data = data
        self.emit = emit
        self.control = control if control is not None else Control()
        m, t, o = config.model, config.train, config.optimizer
        activation = m.activation if isinstance(m.activation, str) else list(m.activation)
        self.net = MLP([data.n_inputs, *m.hidden, data.n_outputs], activation, m.output, m.loss, m.dtype)
        self.epochs = t.epochs
        n = len(data.X_train)
        self.batch_size = t.batch_size if 0 < t.batch_size < n else n
        self.steps_per_epoch = steps_per_epoch(n, self.batch_size)
        self.total_steps = self.epochs * self.steps_per_epoch
        # checked once, by the preset reader (config.experiment): the handle takes them as they are
        self.opt = Optimizer(o.name, self.net.layout.size, self.net.dtype, self.total_steps,
                             layout=self.net.layout, checked=o.hyper)
        self.schedule = Schedule.make(config.schedule.name, **config.schedule.params)
        self.seed = t.seed
        self.internals = t.internals  # the optimizer's insides each epoch (engine.nn.internals)
        # the rows activation health is measured on, the same every epoch (engine.nn.health)
        self._probe = np.ascontiguousarray(data.X_train[health.probe_rows(len(data.X_train))]) if self.internals \
            else data.X_train[:0]
        self._before_last_step: np.ndarray | None = None  # a state row before an epoch's last step
        self._map_sent = -math.inf  # when the last decision map went to the dashboard (Control.map_seconds)
        # θ at up to train.snapshots epochs, for tuilab landscape (engine.records.snapshots)
        self.snapshots = snapshots_mod.SnapshotKeeper(snapshots_mod.most_kept(t.snapshots, self.net.layout.size),
                                                      checkpoint.parent if checkpoint is not None else None)
        # λ_max of the Hessian every sharpness_every epochs, on the probe rows (all of them for a full-batch run)
        self.sharpness_every = t.sharpness_every
        self.sharp = None
        if self.sharpness_every > 0:
            rows = np.arange(n) if self.batch_size >= n else health.probe_rows(n)
            self.sharp = sharpness_mod.SharpnessProbe(self.net, data.X_train[rows], data.Y_train[rows], t.seed)
        if self.snapshots.most:  # said with -v (headless)
            kept = min(self.snapshots.most, self.epochs + 1)
            logging.getLogger("tuilab.snapshots").info(
                "%s: θ kept at %d epochs for tuilab landscape (%s parameters, %.1f MB a snapshot, %.1f MB in all; "
                "train.snapshots sets how many, 0 none)", config.label, kept, f"{self.net.layout.size:,}",
                4 * self.net.layout.size / 2**20, 4 * self.net.layout.size * kept / 2**20)
        self._map_points = None
        work = len(data.X_train) * self.net.layout.size
        self.inside_every = min(INTERNALS_EVERY_MOST, max(1, -(-INTERNALS_WORK // max(work, 1))))
        # the same seed gives the same start and the same minibatch order to every run
        self.theta = self.net.init(m.init, m.bias_init, self.seed)
        self.order_rng = np.random.default_rng([self.seed, 1])
        # whole checkpoints at every fork_every-th epoch (and the last), for tuilab fork (engine.records.fork)
        nbytes = self.theta.nbytes + self.opt.state.nbytes
        self.fork_every = checkpoint_mod.fork_stride(t.fork_points, self.epochs, nbytes) if checkpoint else 0
        self.status = "pending"
        self.epoch = 0
        self.step = 0
        self.last_metrics: dict = {}  # the last epoch's (the whole history is in the records)
        self.diverged_at: dict | None = None
        self.confusion: np.ndarray | None = None
        self.train_seconds = 0.0
        self.samples_seen = 0
        self._chunk = 8
        self._current: _Epoch | None = None  # the epoch under way, between its chunks
        self._epoch_began: float | None = None  # time.monotonic() when the last epoch began (the pace)
        self.stop_at: int | None = None  # pause (status "paused") at this epoch: a halving rung
        self.max_cores: int | None = None  # a cap on the cores its chunks' path keeps busy (runner._race)
        numba_blas()  # found once, before any chunk is timed

    # -- metrics --

    def _evaluate(self, X, Y, labels, theta=None) -> tuple[float, float]:
        if len(X) == 0:
            return math.nan, math.nan
        with budget().hold(1):  # a core of its own, beside the chunks of runs training meanwhile
            loss, out = self.net.evaluate(self.theta if theta is None else theta, X, Y)
        return loss, _accuracy(self.data, out, labels)

    def _norms(self, grad_sq: np.ndarray) -> tuple[list[float], list[float]]:
        L = self.net.layout.n_layers
        grads = np.sqrt(grad_sq[:, :L]).mean(axis=0) if len(grad_sq) else np.full(L, np.nan)
        weights = [float(np.linalg.norm(self.net.layout.layer(self.theta, l)[0].astype(np.float64)))
                   for l in range(self.net.layout.n_layers)]
        return [float(g) for g in grads], weights

    # -- the loop --

    def run(self) -> dict:
        self.start()
        while self.status == "running":
            self.train_epoch()
        return self.summary()

    def resume(self) -> int:
        """Continue from the checkpoint, if there is one; returns the epochs it had finished."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return 0
        return checkpoint_mod.load(self.checkpoint, self)

    def start(self) -> None:
        self.status = "running"
        if self.epoch == 0 and not self.snapshots.kept:
            self.snapshots.offer(0, self.theta)  # where it starts: θ0
        if self.epoch == 0:
            self._keep_fork_point()  # a fork from epoch 0: the same start and data order, other settings
        self.emit(Started(self.run_index, self.config.label, self.epochs, self.steps_per_epoch,
                          self.net.layout.size, tuple(self.net.sizes), self.data.name,
                          self.config.optimizer.name, len(self.data.X_train), self.epoch))
        if self.epoch >= self.epochs:  # resumed from its last epoch's checkpoint: only the ending was lost
            self.finish("completed")

    def train_epoch(self) -> None:
        """One epoch in chunks; afterwards status says whether there is more to do."""
        self.train_chunk()
        while self._current is not None:
            self.train_chunk()

    def train_chunk(self) -> None:
        """One chunk of steps (about CHUNK_SECONDS), starting an epoch or ending one where it falls;
        afterwards status says whether there is more to do. Runs that share the machine take turns
        by chunks (runner.run_network with interleave)."""
        stopped = not self.control.wait_while_paused()
        # a zoo's first cold start: this optimizer's kernel may still compile in the background
        # (warmup.ensure_compiled); a stop meanwhile is not kept waiting for it
        while not stopped and not wait_for_kernel(self.opt.opt_id, timeout=0.2):
            stopped = self.control.stop_requested.is_set()
        if stopped:
            self._current = None
            self.finish("interrupted")
            return
        if self._current is None:
            if self.control.min_epoch_seconds > 0 and self._epoch_began is not None:
                self.control.pace(self._epoch_began)  # between epochs, outside their timing: records unchanged
            self._epoch_began = time.monotonic()
            n_rows = len(self.data.X_train)
            now = time.perf_counter()
            nth = self.epoch + 1
            inside = self.internals and (nth == 1 or nth % self.inside_every == 0 or nth >= self.epochs)
            self._current = _Epoch(self.schedule.lr_at(self.opt.lr, self.epoch), self.order_rng.permutation(n_rows),
                                   np.empty(self.steps_per_epoch),
                                   internals_mod.step_norms_buffer(self.steps_per_epoch, self.net.layout.n_layers,
                                                                   inside),
                                   now, inside=inside)
        e, d = self._current, self.data
        first = e.first
        n = min(self._chunk, self.steps_per_epoch - first)
        apart = self.opt.spec.inside.last_step_apart
        if e.inside and apart is not None:
            # the epoch's last step on its own, a state row kept from before it: a scalar of that step needs
            # its gradient, which the change of the row gives back (Lion's sign agreement)
            if first + n == self.steps_per_epoch and n > 1:
                n -= 1
            elif first + n == self.steps_per_epoch:
                self._before_last_step = self.opt.state[apart].copy()
        # dt: the training itself, not a wait for a turn on the cores
        done, chunk_losses, dt = train_steps(self.net, self.opt, self.theta, d.X_train, d.Y_train, e.order,
                                             first, np.full(n, e.lr), self.batch_size,
                                             e.grad_sq[first:first + n], self.max_cores)
        e.trained += dt
        self.train_seconds += dt
        e.losses[first:first + done] = chunk_losses[:done]
        rows = len(d.X_train)
        bs = self.batch_size
        self.samples_seen += min((first + done) * bs, rows) - min(first * bs, rows)
        self.step += done
        if done < n:
            self._current = None
            self.diverged_at = {"epoch": self.epoch + 1, "step": self.step + 1,
                                "loss": float(chunk_losses[done])}
            self.emit(Diverged(self.run_index, self.epoch + 1, self.step + 1, float(chunk_losses[done])))
            self.finish("diverged")
            return
        e.first = first + n
        samples = min(e.first * self.batch_size, len(d.X_train))
        self.emit(Progress(self.run_index, self.epoch + 1, self.step, self.total_steps,
                           float(chunk_losses[:done].mean()), samples / max(e.trained, 1e-9),
                           self.train_seconds, self.samples_seen))
        # aim the next chunk at CHUNK_SECONDS, growing at most 4x at a time
        self._chunk = int(max(1, min(self._chunk * 4, n * CHUNK_SECONDS / max(dt, 1e-6))))
        if e.first >= self.steps_per_epoch:
            self._current = None
            self._end_epoch(e)

    def _end_epoch(self, e: _Epoch) -> None:
        d = self.data
        lr, losses, grad_sq, begun, trained = e.lr, e.losses, e.grad_sq, e.begun, e.trained
        self.epoch += 1
        grads, weights = self._norms(grad_sq)
        val_loss, val_acc = self._evaluate(d.X_val, d.Y_val, d.labels_val)
        test_loss, test_acc = self._evaluate(d.X_test, d.Y_test, d.labels_test)
        metrics = {
            "run": self.run_index, "label": self.config.label, "epoch": self.epoch, "step": self.step,
            "train_loss": float(losses.mean()), "val_loss": val_loss, "val_accuracy": val_acc,
            "test_loss": test_loss, "test_accuracy": test_acc, "lr": lr,
            "seconds": time.perf_counter() - begun,
            "samples_per_second": len(d.X_train) / max(trained, 1e-9),
            "grad_ratio": grads[0] / grads[-1] if grads[-1] > 0 else math.nan,
        }
        for l, (g, w) in enumerate(zip(grads, weights, strict=True)):
            metrics[f"grad_norm_{l + 1}"] = g
            metrics[f"weight_norm_{l + 1}"] = w
        if e.inside:
            metrics.update(internals_mod.epoch_internals(self.opt, self.net.layout, lr, grad_sq,
                                                           self._before_last_step))
            with budget().hold(1):  # one forward pass over the probe rows
                metrics.update(health.activation_health(self.net, self.theta, self._probe))
        if self.sharp is not None and self.epoch % self.sharpness_every == 0:
            with budget().hold(1):  # a power iteration: up to 21 float64 gradients of the probe rows
                lam, used = self.sharp.measure(self.theta, self.opt)
            metrics["sharpness"], metrics["sharpness_iterations"] = lam, used
            metrics["stability_threshold"] = sharpness_mod.threshold(self.opt, lr)[0]
        if self.opt.shadow >= 0:  # ASGD: how its running average scores, beside the iterate
            avg = np.ascontiguousarray(self.opt.state[self.opt.shadow])
            metrics["average_val_loss"], metrics["average_val_accuracy"] = self._evaluate(
                d.X_val, d.Y_val, d.labels_val, avg)
            metrics["average_test_loss"], metrics["average_test_accuracy"] = self._evaluate(
                d.X_test, d.Y_test, d.labels_test, avg)
        self.last_metrics = metrics
        self.snapshots.offer(self.epoch, self.theta)  # on disk before the checkpoint below
        self.emit(EpochEnd(self.run_index, self.epoch, dict(metrics), tuple(grads)))
        self._send_map(now_last=self.epoch >= self.epochs)
        now = time.monotonic()
        at_rung = self.stop_at is not None and self.epoch >= self.stop_at
        if self.checkpoint is not None and (now - self._checkpointed >= CHECKPOINT_SECONDS or at_rung
                                            or self.epoch >= self.epochs or self.control.stop_requested.is_set()):
            # after the row (in one process the records write it within emit): a checkpoint on disk
            # always has its row; rows past it (a kill came first) are redone, bit for bit, on resume.
            # At most every CHECKPOINT_SECONDS: at every epoch, spirals' 2,000 epochs took 8.8-11.9 s
            # against 3.9-4.0 s without
            checkpoint_mod.save(self.checkpoint, self)
            self._checkpointed = now
        self._keep_fork_point()
        if self.epoch >= self.epochs:
            self.finish("completed")
        elif self.control.stop_requested.is_set():
            self.finish("interrupted")
        elif at_rung:
            self.status = "paused"  # no Finished: the runner decides whether it goes on (engine.halving)

    def _keep_fork_point(self) -> None:
        """A whole checkpoint at this epoch, kept for tuilab fork, where it is one of the run's fork points."""
        if self.fork_every and (self.epoch % self.fork_every == 0 or self.epoch >= self.epochs):
            checkpoint_mod.save(checkpoint_mod.fork_point(self.checkpoint.parent, self.epoch), self)

    def finish(self, status: str) -> None:
        """End the run with this status: its confusion matrix on the test set, and Finished."""
        self.status = status
        self.snapshots.finish()
        d = self.data
        if d.classifies and d.labels_test is not None and len(d.X_test):
            with budget().hold(1):
                out = self.net.predict(self.theta, d.X_test)
            self.confusion = confusion_matrix(d.labels_test, predictions(d, out), d.n_classes)
        conf = tuple(tuple(int(c) for c in row) for row in self.confusion) if self.confusion is not None else ()
        self.emit(Finished(self.run_index, self.config.label, status, self.summary(), conf))

    def _send_map(self, now_last: bool = False) -> None:
        """A two-input run's decision map for a dashboard that asks (Control.map_seconds), at most that often and
        at the last epoch; computed here, in the training thread, never in the UI's."""
        every = self.control.map_seconds
        if every <= 0 or not decision.has_map(self.data):
            return
        now = time.monotonic()
        if not now_last and now - self._map_sent < every:
            return
        self._map_sent = now
        d = self.data
        with budget().hold(1):
            m = decision.decision_map(self.net, self.theta, d)
            predicted = predictions(d, self.net.predict(self.theta, d.X_test)) if d.labels_test is not None else None
        if self._map_points is None:  # a fixed sample of training points, at most MAP_TRAIN_POINTS
            rows = np.linspace(0, len(d.X_train) - 1, min(MAP_TRAIN_POINTS, len(d.X_train))).astype(np.int64)
            self._map_points = (d.to_data(d.X_train[rows]), None if d.labels_train is None else d.labels_train[rows],
                                d.to_data(d.X_test))
        train_xy, train_labels, test_xy = self._map_points
        self.emit(DecisionMapped(self.run_index, self.epoch, m.x, m.y, m.p, train_xy, train_labels, test_xy,
                                 d.labels_test, predicted))

    def prune(self) -> None:
        """End a run that halving left behind at a rung (no confusion matrix: it is not a result)."""
        self.status = "pruned"
        self.snapshots.finish()
        self.emit(Finished(self.run_index, self.config.label, "pruned", self.summary(), ()))

    def summary(self) -> dict:
        last = self.last_metrics
        keep = ("epoch", "step", "train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
                "grad_ratio")
        out = {"label": self.config.label, "optimizer": self.config.optimizer.name,
               "lr": self.config.optimizer.lr, "status": self.status}
        out.update({k: last.get(k, math.nan) for k in keep})
        if self.opt.shadow >= 0:
            out.update({k: last.get(k, math.nan) for k in AVERAGE_COLUMNS})
        out["epochs_done"] = self.epoch
        out["steps_done"] = self.step
        out["samples_per_second"] = (self.samples_seen / self.train_seconds
                                     if self.train_seconds else math.nan)
        out["train_seconds"] = self.train_seconds
        if self.diverged_at:
            out["diverged_at"] = dict(self.diverged_at)
        return out
