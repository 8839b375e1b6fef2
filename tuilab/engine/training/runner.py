"""Running a network experiment: data for each run, the Trainers, the records.

`run_network(experiment, emit, ...)` loads (and shares) the data, compiles the
kernels with a notice when needed, runs the Trainers one after the other, all at once
chunk by chunk (`interleave`, for a live race on screen), or as tasks on local processes or a
Dask cluster (executors, waves), and keeps the records up to date. A sweep with halving runs
in waves up to each rung (halving). Every event goes to `emit` as well.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

import numpy as np

from tuilab.engine.config.experiment import Experiment
from tuilab.engine.events import Control, EpochEnd, Finished, Notice, Started, overall_status
from tuilab.engine.nn import decision
from tuilab.engine.nn.model import MLP
from tuilab.engine.records import snapshots as snapshots_mod
from tuilab.engine.records.run_records import RunRecords, slug
from tuilab.engine.training import checkpoint as checkpoint_mod
from tuilab.engine.training import executors
from tuilab.engine.training.checkpoint import checkpoint_epoch, checkpoint_of, not_started
from tuilab.engine.training.data_cache import DataCache, DataOptions
from tuilab.engine.training.halving import figure, rungs_of, survivors_by_bracket
from tuilab.engine.training.kernel_choice import wait_for_kernel
from tuilab.engine.training.outcome import Outcome
from tuilab.engine.training.threads import budget
from tuilab.engine.training.train import Trainer, experiment_columns
from tuilab.engine.training.warmup import ensure_compiled
from tuilab.engine.training.waves import Span, WaveRunner


class NetworkRecords:
    """The records of a network experiment, fed by events."""

    def __init__(self, records: RunRecords, experiment: Experiment, resume: dict | None = None):
        self.records = records
        self.experiment = experiment
        self.runs = [{**not_started(r), "status": "pending"} for r in experiment.runs]
        self.kept_confusion: list[list] = []
        self.columns = experiment_columns(experiment.runs)
        self.rows_by_jobs = False  # local processes write their own rows (before their checkpoints)
        if resume is None:
            records.open(experiment.to_toml())
            records.start_table("metrics.csv", self.columns)
        else:  # the same folder, continued: each run's rows up to its checkpoint, then on
            keep = {i: resume[i].get("epochs_done") if i in resume else checkpoint_epoch(records, run)
                    for i, run in enumerate(experiment.runs)}
            records.continue_table("metrics.csv", self.columns,
                                   lambda row: int(row["epoch"]) <= (keep.get(int(row["run"])) or 0))
            self.runs = [dict(resume[i]) if i in resume else r for i, r in enumerate(self.runs)]
            self.kept_confusion = records.read_csv_rows("confusion.csv", lambda row: int(row[0]) in resume)
        # a summary from the start, rewritten as each run ends: a run killed outright still
        # leaves one that says what was run and which runs had ended (records.read_records)
        self.dataset = ""
        self._write_summary("running", "", [])

    def _write_summary(self, status: str, dataset: str, notices: list, runs=None) -> None:
        sweep = {"sweep": self.experiment.sweep.describe()} if self.experiment.sweep is not None else {}
        runs = [{**r, "settings": dict(c.settings)} if c.settings else r
                for r, c in zip(runs or self.runs, self.experiment.runs, strict=True)]
        self.records.write_summary({
            "preset": self.experiment.name, "title": self.experiment.title, "kind": "network",
            "status": status, "dataset": dataset, "notices": notices, **sweep, "runs": runs})

    def drop_rows(self, run: int, after_epoch: int) -> None:
        """Forget a run's rows past an epoch (its worker died; it trains them again)."""
        self.records.continue_table("metrics.csv", self.columns,
                                    lambda row: int(row["run"]) != run or int(row["epoch"]) <= after_epoch)

    def __call__(self, event) -> None:
        if isinstance(event, EpochEnd):
            if not self.rows_by_jobs:
                self.records.append("metrics.csv", event.metrics)
        elif isinstance(event, Started):
            self.runs[event.run] = {**self.runs[event.run], "status": "running"}
            self.dataset = event.dataset
        elif isinstance(event, Finished):
            self.runs[event.run] = dict(event.summary)
            self._write_summary("running", self.dataset, [])

    def finish(self, outcome: Outcome, confusions: dict) -> None:
        kept_classes = len(self.kept_confusion[0]) - 3 if self.kept_confusion else 0  # after run, label, true
        n_classes = max((m.shape[0] for m in confusions.values()), default=kept_classes)
        rows = list(self.kept_confusion)  # runs finished before a resume keep theirs
        for run, m in sorted(confusions.items()):
            label = self.experiment.runs[run].label
            rows += [[run, label, t, *m[t]] for t in range(m.shape[0])]
        if rows:
            self.records.write_csv("confusion.csv", ["run", "label", "true", *map(str, range(n_classes))],
                                   rows)
        self._write_summary(outcome.status, outcome.dataset, outcome.notices, outcome.runs)
        self.records.close()


def run_network(experiment: Experiment, emit=None, control: Control | None = None, *,
                data: DataOptions | None = None, records: RunRecords | None = None,
                interleave: bool = False, jobs: int = 1, resume: dict | None = None,
                cluster: str | None = None) -> Outcome:
    """Run every run of a network experiment; records (if given) are kept whatever happens.

    In this process (one run after another, or all at once with `interleave`), or as tasks on
    `jobs` local processes or a Dask `cluster` (executors.make_executor; TUILAB_CLUSTER too).
    resume: continue the experiment in `records` (the same folder): {run index: summary} of the
    runs already finished, which are not run again; the others go on from their checkpoints.
    """
    if experiment.lr_range is not None:
        from tuilab.engine.training.lr_range import run_lr_range

        if emit is not None and (jobs > 1 or cluster or os.environ.get(executors.CLUSTER_ENV)):
            emit(Notice("a learning-rate range test runs in this process, one run after another (each takes "
                        "seconds): --jobs and --cluster are not used", "info"))
        return run_lr_range(experiment, emit, control, data=data, records=records)
    emit = emit if emit is not None else (lambda event: None)
    control = control if control is not None else Control()
    data = data if data is not None else DataOptions()
    cluster = cluster or os.environ.get(executors.CLUSTER_ENV) or None
    cache = DataCache(data, emit)
    prepared = [cache.get(run) for run in experiment.runs]  # every data error before any record or training
    book = NetworkRecords(records, experiment, resume) if records is not None else None
    done = dict(resume or {})
    todo = [i for i in range(len(experiment.runs)) if i not in done]

    lock = threading.Lock()  # interleaved runs train, and so send, from several threads

    def send(event):
        with lock:
            if book is not None:
                book(event)
            emit(event)

    summaries: dict[int, dict] = {}
    confusions: dict[int, np.ndarray] = {}
    dataset = ", ".join(dict.fromkeys(p.name for p in prepared))
    executor = None
    compiled_all = None  # what to call when the runs have ended (warmup.ensure_compiled)
    try:
        on_workers = bool(cluster) or (jobs > 1 and len(todo) > 1)
        compiled_all = ensure_compiled(experiment.runs, prepared, send, compile_later=not on_workers)
        if on_workers:
            executor = executors.make_executor(cluster, jobs)
            send(Notice(f"training on {executor.describe()}", "info"))
            if book is not None:
                book.rows_by_jobs = executor.shares_files
            way = _OnExecutor(experiment, executor, send, control, cache, book, records, todo, resume is not None,
                              summaries, confusions)
        else:
            way = _InProcess(experiment, prepared, send, control, records, todo, resume is not None, interleave)
        _over_rungs(experiment, way, control, send)
        way.collect(summaries, confusions)
    finally:
        if compiled_all is not None:
            compiled_all()
        if executor is not None:
            executor.close()
        runs = [summaries.get(i, done.get(i, not_started(r))) for i, r in enumerate(experiment.runs)]
        if any(r["status"] == "running" for r in runs):  # an exception mid-run
            for r in runs:
                r["status"] = "interrupted" if r["status"] == "running" else r["status"]
        outcome = Outcome(overall_status(r["status"] for r in runs), dataset, runs, list(cache.notices),
                          str(records.out) if records is not None else None)
        if book is not None:
            book.finish(outcome, confusions)
    return outcome


def _rung_notice(rung: int, kept: set, ranked: dict, experiment) -> Notice:
    names = ", ".join(experiment.runs[i].label for i in sorted(ranked) if i not in kept) or "none"
    return Notice(f"halving at epoch {rung}: {len(kept)} of {len(ranked)} runs go on; pruned: {names}", "info")


def _over_rungs(experiment, way, control, send) -> None:
    """The one loop over a sweep's halving rungs, whichever way the runs train (`way`: _InProcess or
    _OnExecutor). Each wave trains the runs still alive up to the next rung (the last: to their end); of those
    paused there the best `keep` go on and the others end as pruned; a stop ends the paused ones as
    interrupted. Without halving there is one wave."""
    alive = list(way.todo)
    for rung in [*rungs_of(experiment), None]:
        wave = [i for i in alive if rung is None or way.epoch(i) < rung]  # the others passed it
        paused = way.train(wave, rung)  # {run: what halving ranks it by}, for the runs paused at the rung
        if rung is None:
            break
        if control.stop_requested.is_set():
            way.end(list(paused), "interrupted")
            break
        kept = survivors_by_bracket({i: figure(m) for i, m in paused.items()}, experiment.sweep.keep,
                                    experiment.runs, experiment.sweep.bracket)
        way.end([i for i in paused if i not in kept], "pruned")
        if paused:
            send(_rung_notice(rung, kept, paused, experiment))
        alive = [i for i in alive if i in kept or i not in wave]


class _InProcess:
    """Runs trained here, one after another or raced chunk by chunk (interleave)."""

    def __init__(self, experiment, prepared, send, control, records, todo, resuming, interleave):
        runs = experiment.runs
        self.todo, self.control, self.records, self.interleave = todo, control, records, interleave
        self.trainers = {i: Trainer(i, runs[i], prepared[i], send, control, checkpoint_of(records, runs[i]))
                         for i in todo}
        if resuming:
            for t in self.trainers.values():
                t.resume()

    def epoch(self, i: int) -> int:
        return self.trainers[i].epoch

    def train(self, wave: list[int], rung: int | None) -> dict:
        trainers = [self.trainers[i] for i in wave]
        for t in trainers:
            t.stop_at = rung
        if self.interleave:
            _race(trainers, self.control)
        else:
            for t in trainers:
                if self.control.stop_requested.is_set():
                    break
                t.run()
        return {i: self.trainers[i].last_metrics for i in wave if self.trainers[i].status == "paused"}

    def end(self, runs: list[int], status: str) -> None:
        for i in runs:
            if status == "pruned":
                self.trainers[i].prune()
            else:
                self.trainers[i].finish(status)

    def collect(self, summaries, confusions) -> None:
        for i, t in self.trainers.items():
            if t.status != "pending":
                summaries[i] = t.summary()
                if t.confusion is not None and t.status != "pruned":
                    confusions[i] = t.confusion
                if self.records is not None:
                    self.records.save_params(t.config.label, t.theta, sizes=t.net.sizes,
                                             activations=t.net.activations, loss=t.net.loss_name)
                    _save_decision(self.records, t.config.label, t.net, t.theta, t.data)


class _OnExecutor:
    """Runs trained as tasks on local processes or a Dask cluster (waves), each span up to a rung."""

    def __init__(self, experiment, executor, send, control, cache, book, records, todo, resuming, summaries,
                 confusions):
        columns = book.columns if book is not None else experiment_columns(experiment.runs)
        self.waves = WaveRunner(experiment, executor, send, control, cache, columns, book, records)
        self.experiment, self.send, self.records, self.todo = experiment, send, records, todo
        self.summaries, self.confusions = summaries, confusions
        self.spans, self.paused = {}, {}
        for i in todo:
            path = checkpoint_of(records, experiment.runs[i]) if resuming else None
            if path is not None and path.is_file():
                state = checkpoint_mod.with_snapshots(path.read_bytes(), path.parent)
                self.spans[i] = Span(state, checkpoint_mod.epoch_of(path), None)
            else:
                self.spans[i] = Span(None, 0, None)

    def epoch(self, i: int) -> int:
        return self.spans[i].start_epoch

    def train(self, wave: list[int], rung: int | None) -> dict:
        spans = {i: Span(self.spans[i].start, self.spans[i].start_epoch, rung) for i in wave}
        self.paused = {}
        for i, r in self.waves.run_wave(spans).items():
            if r is None:  # stopped before it began
                continue
            if isinstance(r, dict):  # failed: its worker was lost twice
                self.summaries[i] = r
            elif r.status == "paused":
                self.paused[i] = r
                self.spans[i] = Span(r.state, r.epochs_done, None)
            else:
                self._keep(i, r)
        return {i: r.summary for i, r in self.paused.items()}

    def end(self, runs: list[int], status: str) -> None:
        for i in runs:
            self._keep(i, self.paused[i], status)

    def _keep(self, i, r, status=None) -> None:
        summary = dict(r.summary)
        if status is not None:
            summary["status"] = status
            self.send(Finished(i, self.experiment.runs[i].label, status, dict(summary), ()))
        self.summaries[i] = summary
        if r.confusion is not None and status is None:
            self.confusions[i] = r.confusion
        if self.records is not None:
            label = self.experiment.runs[i].label
            self.records.save_params(label, r.theta, **r.meta)
            _save_snapshots(self.records, label, r.state)
            prepared = self.waves.cache.get(self.experiment.runs[i])
            net = MLP(list(r.meta["sizes"]), list(r.meta["activations"][:-1]), r.meta["activations"][-1],
                      r.meta["loss"], r.theta.dtype)
            _save_decision(self.records, label, net, r.theta, prepared)

    def collect(self, summaries, confusions) -> None:
        pass  # kept as each ended


def _save_snapshots(records, label: str, state: bytes | None) -> None:
    """A run trained in another process: its parameter snapshots, which its state carries, into the records
    (a worker that shares the disk wrote the same file already; one on another machine could not)."""
    snaps = checkpoint_mod.snapshots_in(state) if state is not None else None
    if snaps is not None and len(snaps[0]):
        snapshots_mod.write(records.out / slug(label), *snaps)


def _save_decision(records, label: str, net, theta, prepared) -> None:
    """A two-input run's decision map beside its parameters (engine.nn.decision)."""
    if decision.has_map(prepared):
        records.save_decision(label, decision.decision_map(net, theta, prepared))


def _race(trainers: list[Trainer], control: Control) -> None:
    """Train every run at once: as many threads as the process has cores take the runs' chunks in
    turn (round-robin), so each run advances every few tenths of a second, the cores stay busy, and
    no more threads train than there are cores (each chunk also holds its path's cores: training.threads).

    With at least as many runs as cores, each run trains on one core: two runs side by side on
    one thread each got the 18-run zoo done in 13.4 s, each in turn on the split path in 15.9.
    That depends only on the experiment, never on what else trains, so a run's path (and with the
    split, its last digits) is the same whoever races beside it."""
    one_each = len(trainers) >= budget().total
    for t in trainers:
        if one_each:
            t.max_cores = 1
        t.start()
    turns = deque(trainers)
    lock = threading.Lock()
    failed: list[BaseException] = []

    def take_turns():
        while True:
            with lock:
                if not turns or failed or control.stop_requested.is_set():
                    return
                t = turns.popleft()
            if not wait_for_kernel(t.opt.opt_id, timeout=0):  # compiling in the background: the others' turn
                with lock:
                    turns.append(t)
                time.sleep(0.02)
                continue
            try:
                t.train_chunk()
            except BaseException as exc:  # the others stop too; the caller raises it
                with lock:
                    failed.append(exc)
                return
            with lock:
                if t.status == "running":
                    turns.append(t)

    threads = [threading.Thread(target=take_turns, name=f"tuilab-race-{k}", daemon=True)
               for k in range(min(budget().total, len(trainers)))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failed:
        raise failed[0]
    for t in trainers:
        if t.status == "running":
            t.finish("interrupted")
