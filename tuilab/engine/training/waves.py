"""The client's side of runs on an executor: tasks out, events and results back, a wave at a time.

A wave is a set of spans (run i from its state until an epoch, or to its end); `run_wave`
returns when every one has ended. Meanwhile the runs' events go to `send` in the order they
came; a result is taken only after all of its events (a result can overtake the events'
queue). A run whose worker died is retried once from the wave's start, its later rows dropped;
a second loss records it as failed with the epochs it finished. Stopping (Ctrl+C, q) stops the
running tasks at their next chunk and the waiting ones before they begin.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

from tuilab.engine.data import sets as data_mod
from tuilab.engine.events import EpochEnd, Finished, Notice
from tuilab.engine.training.executors import WorkerLost
from tuilab.engine.training.kernel_choice import whole_table
from tuilab.engine.training.tasks import NeedsData, RunTask, fingerprint

RESULT_GRACE_SECONDS = 10.0  # how long a result waits for events still on their way


@dataclass
class Span:
    start: bytes | None  # the checkpoint it goes on from (None: epoch 0)
    start_epoch: int
    stop_at: int | None  # a rung, or None: to the run's end


class WaveRunner:
    def __init__(self, experiment, executor, send, control, cache, columns, book=None, records=None):
        self.experiment = experiment
        self.executor = executor
        self.send = send
        self.control = control
        self.cache = cache
        self.columns = columns
        self.book = book
        self.records = records
        self.current: dict[int, str] = {}  # run -> the attempt whose events count
        self.dead: set[str] = set()
        self.batches: Counter = Counter()
        self.retried: set[int] = set()
        self.last_metrics: dict[int, dict] = {}
        self.scattered: dict = {}  # source key -> the cluster's copy of the client's data set
        self.data_tries: dict[int, int] = {}
        self.stop_sent = False

    # -- tasks --

    def _source_key(self, i: int):
        d = self.experiment.runs[i].data
        return (d.name, d.n_samples, d.noise, d.seed, d.path, d.label, d.classes)

    def _task(self, i: int, span: Span) -> tuple[RunTask, object]:
        run = self.experiment.runs[i]
        src = self.cache.source(run)
        key = self._source_key(i)
        image = src.name in data_mod.IMAGE_SETS
        if image and key not in self.cache.fingerprints:
            self.cache.fingerprints[key] = fingerprint(src)
        task = RunTask(i, run, self.cache.options, self.cache.fingerprints.get(key) if image else None, src.name,
                       self.columns, span.start, span.stop_at,
                       str(self.records.out) if self.records is not None and self.executor.shares_files else None,
                       whole_table=whole_table())
        return task, self.scattered.get(key)

    def _submit(self, i: int, span: Span):
        task, source = self._task(i, span)
        return self.executor.submit(task, source)

    # -- events --

    def _events(self) -> None:
        for attempt, batch in self.executor.drain():
            self.batches[attempt] += 1
            if attempt in self.dead:
                continue
            for event in batch:
                i = event.run
                if self.current.get(i) != attempt:
                    if i in self.current:  # the scheduler ran it again elsewhere: its worker was lost
                        self._forget_attempt(i, self.spans[i], "its worker was lost; the scheduler runs it "
                                                               "again from the start on another worker")
                    self.current[i] = attempt
                if isinstance(event, EpochEnd):
                    self.last_metrics[i] = event.metrics
                self.send(event)

    def _forget_attempt(self, i: int, span: Span, why: str) -> None:
        if i in self.current:
            self.dead.add(self.current.pop(i))
        label = self.experiment.runs[i].label
        if self.book is not None:
            self.book.drop_rows(i, span.start_epoch)
        self.last_metrics.pop(i, None)
        self.send(Notice(f"{label}: {why} (epoch {span.start_epoch})", "warning"))

    # -- one wave --

    def run_wave(self, spans: dict[int, Span]) -> dict[int, object]:
        """{run: RunResult} for each span (None: stopped before it began; a dict: its failed summary)."""
        self.spans = spans
        for i in spans:
            # the run's task of the last wave ended at the rung: its attempt's events are over, and the new
            # task's are not those of a task the scheduler ran again (a lost worker, whose rows are dropped).
            # Taken for one, each rung said a worker was lost and rewrote metrics.csv under the workers'
            # appends, which lost their rows (--jobs 2 with halving kept 14 of 26)
            ended = self.current.pop(i, None)
            if ended is not None:
                self.dead.add(ended)
        futures = {self._submit(i, span): i for i, span in spans.items()}
        waiting: dict[int, tuple] = {}
        out: dict[int, object] = {}
        while futures or waiting:
            if self.control.stop_requested.is_set() and not self.stop_sent:
                self.stop_sent = True
                self.executor.request_stop()
                self.executor.cancel_waiting(futures)
            done = self.executor.wait(futures, 0.1) if futures else set()
            if not futures:
                time.sleep(0.02)
            self._events()
            lost = []
            for f in done:
                i = futures.pop(f)
                if f.cancelled():
                    out[i] = None
                    continue
                try:
                    result = self.executor.result(f)
                except WorkerLost as exc:
                    lost.append((i, str(exc)))
                    continue
                except NeedsData as exc:
                    futures[self._send_data(i, spans[i], str(exc))] = i
                    continue
                waiting[i] = (result, time.monotonic() + RESULT_GRACE_SECONDS)
            if lost:
                if self.executor.shares_files:  # the pool broke: every task in it was lost with it
                    lost += [(i, "stopped with the pool") for i in futures.values()]
                    futures.clear()
                    self._events()
                self.executor.after_loss()
                for i, why in lost:
                    if i in self.retried or self.stop_sent:
                        out[i] = self._failed(i, why)
                        continue
                    self.retried.add(i)
                    self._forget_attempt(i, spans[i], f"{why}; trying it again from the start")
                    futures[self._submit(i, spans[i])] = i
            now = time.monotonic()
            for i, (result, deadline) in list(waiting.items()):
                if self.batches[result.attempt] >= result.batches or now > deadline:
                    del waiting[i]
                    out[i] = None if result.status == "cancelled" else result
                    if out[i] is not None:
                        self._keep_state(i, result)
        return out

    def _send_data(self, i: int, span: Span, why: str):
        key = self._source_key(i)
        if key in self.scattered:  # it had left before the copy was sent: again, with the copy
            self.data_tries[i] = self.data_tries.get(i, 0) + 1
            if self.data_tries[i] > 1:
                raise RuntimeError(f"a worker refused the data set sent to it: {why}")
            return self._submit(i, span)
        src = self.cache.source(self.experiment.runs[i])
        mb = sum(a.nbytes for a in (src.X_train, src.y_train, src.X_test, src.y_test) if a is not None) / 1e6
        self.send(Notice(f"a worker cannot load {src.name} ({why}); sending it the client's copy "
                         f"({mb:.0f} MB), once", "info"))
        self.scattered[key] = self.executor.scatter(src)
        return self._submit(i, span)

    def _keep_state(self, i: int, result) -> None:
        """Where the workers have no share of the records folder, the client writes their checkpoints
        (after the rows: every event of the result has been read)."""
        if self.records is None or self.executor.shares_files or result.state is None:
            return
        from tuilab.engine.records.run_records import write_atomic
        from tuilab.engine.training.checkpoint import checkpoint_of

        path = checkpoint_of(self.records, self.experiment.runs[i])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, result.state)

    def _failed(self, i: int, why: str) -> dict:
        from tuilab.engine.training.checkpoint import not_started

        run = self.experiment.runs[i]
        last = self.last_metrics.get(i, {})
        summary = {**not_started(run), "status": "failed",
                   **{k: last.get(k, math.nan) for k in ("epoch", "step", "train_loss", "val_loss", "val_accuracy",
                                                         "test_loss", "test_accuracy", "grad_ratio")},
                   "epochs_done": int(last.get("epoch", 0) or 0), "steps_done": int(last.get("step", 0) or 0),
                   "failure": why}
        self.send(Notice(f"{run.label}: {why} again; recorded as failed with its "
                         f"{summary['epochs_done']} finished epochs", "warning"))
        self.send(Finished(i, run.label, "failed", summary, ()))
        return summary
