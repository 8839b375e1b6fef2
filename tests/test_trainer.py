"""The Trainer and the runner on small data: learning, events, determinism, divergence, stop, records."""

import csv
import json
import threading

import numpy as np
import pytest

from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.events import Control, Diverged, EpochEnd, Finished, Notice, Progress, Started
from tuilab.engine.records.run_records import RunRecords
from tuilab.engine.training.runner import run_network
from tuilab.engine.training.train import confusion_matrix


def experiment(runs=None, **tables):
    base = {"data": {"name": "spirals", "n_samples": 1200, "noise": 0.03, "normalize": "standardize"},
            "model": {"hidden": [32, 32], "activation": "relu", "init": "kaiming_uniform"},
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 20, "batch_size": 32, "seed": 0}}
    for k, v in tables.items():
        base[k] = {**base.get(k, {}), **v}
    if runs:
        base["runs"] = runs
    return build_experiment(base, "test.toml", "test")


class Recorder(list):
    def __call__(self, event):
        self.append(event)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def read_metrics(folder):
    with open(folder / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_spirals_reach_95_percent_with_relu(tmp_path):
    events = Recorder()
    out = run_network(experiment(), events, records=RunRecords(tmp_path))
    run = out.runs[0]
    assert out.status == "completed" and run["status"] == "completed"
    assert run["test_accuracy"] >= 0.95
    assert [type(e) for e in events if not isinstance(e, (Progress, Notice))] == (
        [Started] + [EpochEnd] * 20 + [Finished])
    epochs = events.of(EpochEnd)
    assert [e.epoch for e in epochs] == list(range(1, 21))
    assert epochs[-1].metrics["train_loss"] < epochs[0].metrics["train_loss"]
    assert all(p.step <= p.total_steps for p in events.of(Progress))
    rows = read_metrics(tmp_path)
    assert len(rows) == 20 and float(rows[-1]["test_accuracy"]) == pytest.approx(run["test_accuracy"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["dataset"] == "spirals"
    assert summary["runs"][0]["test_accuracy"] == pytest.approx(run["test_accuracy"])
    conf = list(csv.reader(open(tmp_path / "confusion.csv")))
    assert conf[0] == ["run", "label", "true", "0", "1"]
    counts = np.array([[int(c) for c in row[3:]] for row in conf[1:]])
    assert counts.sum() == 240 and np.trace(counts) / 240 == pytest.approx(run["test_accuracy"])
    params = np.load(tmp_path / "adam-lr-0.01" / "params.npz")
    assert params["theta"].shape == (2 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2,)
    assert params["sizes"].tolist() == [2, 32, 32, 2]


def test_metrics_per_epoch(tmp_path):
    events = Recorder()
    run_network(experiment(train={"epochs": 2}), events)
    m = events.of(EpochEnd)[-1].metrics
    for key in ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "lr", "seconds",
                "samples_per_second", "grad_ratio", "grad_norm_1", "grad_norm_3", "weight_norm_3"):
        assert np.isfinite(m[key]), key
    assert m["grad_ratio"] == pytest.approx(m["grad_norm_1"] / m["grad_norm_3"])
    assert m["lr"] == 0.01 and m["step"] == 2 * 27  # 864 training samples / 32


def test_same_seed_same_results_bit_for_bit():
    a, b, c = Recorder(), Recorder(), Recorder()
    run_network(experiment(train={"epochs": 3}), a)
    run_network(experiment(train={"epochs": 3}), b)
    run_network(experiment(train={"epochs": 3, "seed": 1}), c)
    ma = [e.metrics["train_loss"] for e in a.of(EpochEnd)]
    assert ma == [e.metrics["train_loss"] for e in b.of(EpochEnd)]
    assert ma != [e.metrics["train_loss"] for e in c.of(EpochEnd)]


def test_a_comparison_shares_its_start_and_order():
    # two runs with the same optimizer and settings under different labels must be identical
    exp = experiment(runs=[{"label": "one"}, {"label": "two"},
                           {"label": "other", "optimizer": {"name": "sgd", "lr": 0.1}}],
                     train={"epochs": 2})
    events = Recorder()
    run_network(exp, events)
    loss = {e.run: [x.metrics["train_loss"] for x in events.of(EpochEnd) if x.run == e.run]
            for e in events.of(Started)}
    assert loss[0] == loss[1] and loss[0] != loss[2]


def test_interleaved_runs_match_sequential_ones_and_take_turns():
    exp = experiment(runs=[{"label": "a"}, {"label": "b", "optimizer": {"name": "sgd", "lr": 0.1}},
                           {"label": "c", "optimizer": {"name": "rmsprop", "lr": 0.001}},
                           {"label": "d", "optimizer": {"name": "nesterov", "lr": 0.05}}],
                     train={"epochs": 6})
    seq, inter = Recorder(), Recorder()
    run_network(exp, seq)
    # a first race compiles the one-core paths the race picks (four runs on two cores: one core each);
    # on a cold numba cache one run's first chunk would otherwise hold its thread for the compile
    run_network(exp, Recorder(), interleave=True)
    run_network(exp, inter, interleave=True)
    by_run = lambda rec: sorted((e.run, e.epoch, e.metrics["train_loss"]) for e in rec.of(EpochEnd))  # noqa: E731
    assert by_run(seq) == by_run(inter)  # bit for bit: every run keeps its path, whoever trains beside it

    # round-robin by chunks, seen where no clock decides it: one thread takes the turns, so the runs' chunks
    # come 0, 1, 2, 3, 0, 1, ... (with two threads, one held back by the OS lets the other go round the
    # rest, and any bound on the order is a bound on the machine's load)
    from tuilab.engine.training.threads import budget, limit_to

    cores = budget().total
    one = Recorder()
    limit_to(1)
    try:
        run_network(exp, one, interleave=True)
    finally:
        limit_to(cores)
    turns = [e.run for e in one.of(Progress)]
    chunks = [run for k, run in enumerate(turns) if k == 0 or turns[k - 1] != run]
    assert chunks[:8] == [0, 1, 2, 3, 0, 1, 2, 3], chunks
    assert by_run(one) == by_run(seq)


def test_parallel_jobs_give_the_same_results(tmp_path):
    exp = experiment(runs=[{"label": "a"}, {"label": "b", "optimizer": {"name": "sgd", "lr": 0.1}},
                           {"label": "c", "optimizer": {"name": "rmsprop", "lr": 0.001}}],
                     train={"epochs": 2})
    seq = run_network(exp)
    par = run_network(exp, records=RunRecords(tmp_path), jobs=2)
    assert par.status == "completed"
    for s, p in zip(seq.runs, par.runs, strict=True):
        assert s["label"] == p["label"] and s["test_loss"] == pytest.approx(p["test_loss"], rel=1e-6)
    assert len(read_metrics(tmp_path)) == 6
    assert all((tmp_path / label / "params.npz").exists() for label in "abc")
    with np.load(tmp_path / "a" / "decision.npz") as f:  # the client draws each run's map from its theta
        assert f["p"].shape == (64, 96, 2) and f["x"].shape == (96,) and f["y"].shape == (64,)


def test_divergence_is_a_result_and_keeps_records(tmp_path):
    exp = experiment(optimizer={"name": "sgd", "lr": 1e6}, model={"activation": "relu"},
                     data={"normalize": "none"}, train={"epochs": 5})
    events = Recorder()
    out = run_network(exp, events, records=RunRecords(tmp_path))
    assert out.status == "diverged" and out.runs[0]["status"] == "diverged"
    d = events.of(Diverged)[0]
    assert not np.isfinite(d.loss) and out.runs[0]["diverged_at"]["step"] == d.step
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["runs"][0]["diverged_at"]["step"] == d.step
    assert len(read_metrics(tmp_path)) == d.epoch - 1
    params = np.load(tmp_path / "sgd-lr-1e+06" / "params.npz")["theta"]
    assert np.isfinite(params).all()  # the step that blew up was not applied


def test_stop_keeps_finished_epochs(tmp_path):
    control = Control()
    events = Recorder()

    def emit(event):
        events(event)
        if isinstance(event, EpochEnd) and event.epoch == 3:
            control.stop()

    exp = experiment(runs=[{"label": "a"}, {"label": "b"}], train={"epochs": 50})
    out = run_network(exp, emit, control, records=RunRecords(tmp_path))
    assert out.status == "interrupted"
    assert [r["status"] for r in out.runs] == ["interrupted", "interrupted"]
    assert out.runs[0]["epochs_done"] == 3 and out.runs[1]["epochs_done"] == 0
    assert len(read_metrics(tmp_path)) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "interrupted"


def test_pause_and_resume_from_another_thread():
    control = Control()
    seen = Recorder()
    paused_at = []

    def emit(event):
        seen(event)
        if isinstance(event, Progress) and not paused_at:
            paused_at.append(event.step)
            control.pause()
            threading.Timer(0.3, control.resume).start()

    out = run_network(experiment(train={"epochs": 2}), emit, control)
    assert out.status == "completed" and paused_at
    assert out.runs[0]["train_seconds"] < sum(e.metrics["seconds"] for e in seen.of(EpochEnd))


def test_regression_target_reports_rounded_accuracy():
    exp = experiment(data={"name": "digits", "target": "value", "normalize": "per_sample"},
                     model={"hidden": [21], "activation": "sigmoid", "output": "sigmoid",
                            "loss": "squared_error"},
                     optimizer={"name": "sgd", "lr": 4.0}, train={"epochs": 200, "batch_size": 0})
    out = run_network(exp)
    assert out.runs[0]["test_accuracy"] > 0.2  # chance is 0.1
    sine = experiment(data={"name": "sine", "normalize": "none"},
                      model={"hidden": [16], "activation": "tanh", "output": "identity",
                             "loss": "squared_error"}, train={"epochs": 30})
    out = run_network(sine)
    assert np.isnan(out.runs[0]["test_accuracy"]) and out.runs[0]["test_loss"] < 0.1


def test_confusion_matrix_counts():
    m = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_unwritable_out_is_an_error_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    events = Recorder()
    from tuilab.errors import TuilabError

    with pytest.raises(TuilabError, match="cannot write records"):
        run_network(experiment(), events, records=RunRecords(blocker / "sub"))
    assert not events.of(Started)


@pytest.mark.parametrize("optimizer, train", [
    ({"name": "lbfgs", "line_search_fn": "strong_wolfe", "history_size": 5}, {"batch_size": 0}),
    ({"name": "lbfgs"}, {"batch_size": 0}),
    ({"name": "muon", "lr": 0.02, "rest": {"name": "adamw", "lr": 0.005}}, {}),
    ({"name": "adafactor"}, {}),
])
def test_a_run_resumed_from_a_checkpoint_ends_where_it_would_have(optimizer, train):
    """The state beyond theta (L-BFGS's history, Muon's rest optimizer's moments and scalars, Adafactor's
    factored moments) goes into the checkpoint: a run restored at epoch 3 of 6 ends bit for bit as one never
    stopped."""
    from tuilab.engine.training import checkpoint
    from tuilab.engine.training.runner import DataCache, DataOptions
    from tuilab.engine.training.train import Trainer

    exp = experiment(runs=[{"label": "x", "optimizer": optimizer}], train={"epochs": 6, **train},
                     model={"dtype": "float64"})
    run = exp.runs[0]
    data = DataCache(DataOptions(), lambda e: None).get(run)
    whole = Trainer(0, run, data, lambda e: None)
    whole.run()
    first = Trainer(0, run, data, lambda e: None)
    first.start()
    for _ in range(3):
        first.train_epoch()
    saved = checkpoint.to_bytes(first)
    second = Trainer(0, run, data, lambda e: None)
    assert checkpoint.restore(saved, second) == 3
    second.start()
    while second.status == "running":
        second.train_epoch()
    assert second.epoch == 6 and np.array_equal(second.theta, whole.theta)
    assert not np.array_equal(first.theta, whole.theta)  # it had 3 epochs to go
