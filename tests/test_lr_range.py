"""The learning-rate range test: on a problem whose answer is known, the rule it follows step by step,
every optimizer, the command line, records, report and the dashboard's key."""

import json
import math

import numpy as np
import pytest

from tuilab.cli import main as cli_main
from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.events import Control, LrRangePoints
from tuilab.engine.nn.optim import OPTIMIZER_NAMES
from tuilab.engine.training.lr_range import LrRange, RangeTest, analyse, run_lr_range
from tuilab.engine.training.runner import DataCache, DataOptions
from tuilab.errors import TuilabError


def _linear(data: dict, batch: int, lr_range: dict, optimizer=None) -> tuple:
    """A linear model under squared error: its loss is a quadratic in the parameters, whose Hessian is
    X~^T X~ / (n w) (X~: the inputs with a column of ones, w outputs); plain SGD diverges above 2 / L,
    L its largest eigenvalue."""
    doc = {"data": data, "model": {"hidden": [], "output": "identity", "loss": "squared_error", "dtype": "float64"},
           "optimizer": optimizer or {"name": "sgd", "lr": 0.1}, "train": {"batch_size": batch},
           "lr_range": lr_range}
    exp = build_experiment(doc, "test.toml", "test")
    d = DataCache(DataOptions(), lambda e: None).get(exp.runs[0])
    X = np.hstack([d.X_train, np.ones((len(d.X_train), 1))])
    L = float(np.linalg.eigvalsh(X.T @ X / (len(X) * d.Y_train.shape[1])).max())
    return exp, d, L


@pytest.mark.parametrize("data", [{"name": "sine", "n_samples": 400},
                                  {"name": "blobs", "n_samples": 400, "normalize": "standardize"}])
def test_sgd_on_a_quadratic_blows_up_near_two_over_its_largest_curvature(data):
    exp, _, L = _linear(data, 64, {"start": 1e-4, "end": 100.0, "steps": 1000})
    outcome = run_lr_range(exp)
    found = outcome.runs[0]["lr_range"]
    assert outcome.status == "completed"
    assert found["blowup_lr"] is not None
    assert 2 / L / 1.5 <= found["blowup_lr"] <= 1.5 * 2 / L, (found, 2 / L)
    assert found["suggested_lr"] < found["blowup_lr"] and found["suggested_lr"] < 2 / L
    assert found["min_loss_lr"] < found["blowup_lr"]
    assert found["steps_done"] < 1000  # it stopped early


def test_each_step_follows_the_exponential_rule_and_fastais_smoothing():
    spec = LrRange(start=1e-5, end=10.0, steps=120, smooth=0.9)
    exp, d, _ = _linear({"name": "sine", "n_samples": 300}, 16, spec.options())
    events = []
    test = RangeTest(0, exp.runs[0], d, events.append, Control(), spec)
    summary = test.run()
    lrs, losses, smoothed = (np.array(x) for x in test.points)
    n = len(lrs)
    assert n == summary["steps_done"] == summary["lr_range"]["steps_done"]
    k = np.arange(n)
    np.testing.assert_allclose(lrs, 1e-5 * (10.0 / 1e-5) ** (k / 119), rtol=1e-12)
    avg, expect = 0.0, []
    for i, loss in enumerate(losses):  # fastai: a debiased exponential moving average
        avg = 0.9 * avg + 0.1 * loss
        expect.append(avg / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(smoothed, expect, rtol=1e-12)
    # it stopped at the first step whose smoothed loss passed 4x the lowest before it, and not before
    lowest = np.minimum.accumulate(smoothed)
    past = [i for i in range(1, n) if not smoothed[i] <= 4 * lowest[i - 1]]
    if summary["lr_range"]["blowup_lr"] is not None:
        assert past == [n - 1] and summary["lr_range"]["blowup_lr"] == lrs[-1]
    else:
        assert not past and n == 120
    # the events carried the same steps, in order
    shown = [e for e in events if isinstance(e, LrRangePoints)]
    assert [x for e in shown for x in e.lrs] == list(lrs)
    assert [e.first_step for e in shown] == list(np.cumsum([0] + [len(e.lrs) for e in shown[:-1]]))


def test_the_suggestion_is_the_steepest_fall_before_the_lowest_point():
    lrs = np.logspace(-6, 1, 200)
    x = np.log10(lrs)
    # a smooth curve: flat, a fall centred at 1e-2 (steepest there), lowest near 1e-1, then a climb
    smoothed = 2.0 - np.tanh((x + 2) * 2) + np.where(x > -1, (x + 1) ** 2 * 3, 0.0)
    found = analyse(lrs, smoothed, blowup_lr=None)
    assert found["suggested_lr"] == pytest.approx(1e-2, rel=0.15)
    assert found["min_loss_lr"] == pytest.approx(lrs[int(np.argmin(smoothed))])
    assert found["blowup_lr"] is None and found["steps_done"] == 200
    # a curve with no fall: a tenth of the lowest point, the other usual pick
    flat = analyse(lrs, np.linspace(1, 2, 200), blowup_lr=3.0)
    assert flat["suggested_lr"] == pytest.approx(lrs[0] / 10) and flat["blowup_lr"] == 3.0
    # nothing finite: nothing to suggest, and no crash
    assert analyse(lrs[:3], [math.nan] * 3, 1.0)["suggested_lr"] is None


@pytest.mark.parametrize("name", [n for n in OPTIMIZER_NAMES])
def test_every_optimizer_runs_a_range_test(name):
    batch = 0 if name == "lbfgs" else 16  # L-BFGS takes the whole training set each step
    doc = {"data": {"name": "blobs", "n_samples": 200}, "model": {"hidden": [8], "dtype": "float32"},
           "optimizer": {"name": name}, "train": {"batch_size": batch},
           "lr_range": {"start": 1e-5, "end": 1.0, "steps": 40}}
    exp = build_experiment(doc, "test.toml", "test")
    outcome = run_lr_range(exp)
    r = outcome.runs[0]
    assert r["status"] == "completed" and 2 <= r["steps_done"] <= 40
    assert r["lr_range"]["suggested_lr"] is not None and r["lr_range"]["min_loss_lr"] is not None


@pytest.mark.parametrize("doc_range, word", [
    ({"start": 1.0, "end": 0.1}, "0 < start < end"),
    ({"steps": 1}, "steps must be a whole number >= 2"),
    ({"steps": 2.5}, "steps must be a whole number >= 2"),
    ({"smooth": 1.0}, "smooth must be a number in [0, 1)"),
    ({"stop_factor": 1.0}, "stop_factor must be a number > 1"),
    ({"stopp": 3}, "unknown key 'stopp'"),
    ({"end": "ten"}, "end must be a number"),
])
def test_a_bad_range_table_is_one_line(doc_range, word):
    with pytest.raises(TuilabError) as err:
        _linear({"name": "sine"}, 16, doc_range)
    assert word in str(err.value) and "\n" not in str(err.value)


def test_a_surface_preset_refuses_a_range_test_in_one_line():
    doc = {"surface": {"name": "rosenbrock"}, "optimizer": {"name": "adam"}, "lr_range": {}}
    with pytest.raises(TuilabError, match="surface preset has no minibatch loss"):
        build_experiment(doc, "s.toml", "s")


def test_the_command_line_writes_records_that_report_reads_and_prints_the_command(tmp_path, capsys):
    out = tmp_path / "r"
    code = cli_main(["--preset", "shallow-sigmoid", "--dataset", "digits", "--lr-range", "--set", "lr_range.steps=60",
                     "--out", str(out), "headless"])
    printed = capsys.readouterr().out
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    found = summary["lr_range"]
    assert summary["status"] == "completed" and found == summary["runs"][0]["lr_range"]
    assert set(found) == {"suggested_lr", "min_loss_lr", "blowup_lr", "steps_done"}
    rows = (out / "lr_range.csv").read_text().splitlines()
    assert rows[0] == "run,label,step,lr,loss,smoothed_loss" and len(rows) == 1 + found["steps_done"]
    assert f"--set optimizer.lr={found['suggested_lr']:.3g}" in printed and "--no-lr-range" in printed
    assert "[lr_range]" in (out / "config.toml").read_text()  # config.toml runs the same test again
    assert cli_main(["report", str(out)]) == 0
    assert "suggested lr" in capsys.readouterr().out


def test_resume_of_a_range_test_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli_main(["--preset", "lr-finder-shallow", "--dataset", "digits", "--set", "lr_range.steps=20",
                     "--out", str(out), "headless"]) == 0
    capsys.readouterr()
    assert cli_main(["resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "range test is not resumed" in err and "\n" not in err


def test_no_lr_range_trains_a_preset_that_has_the_table():
    from tuilab.engine.config.presets import load_experiment

    assert load_experiment("lr-finder-deep-relu").lr_range is not None
    plain = load_experiment("lr-finder-deep-relu", lr_range=False)
    assert plain.lr_range is None and [r.optimizer.name for r in plain.runs] == ["sgd", "adam"]


def test_jobs_are_said_to_be_unused_by_a_range_test():
    from tuilab.engine.events import Notice
    from tuilab.engine.training.runner import run_network

    exp, _, _ = _linear({"name": "sine", "n_samples": 100}, 16, {"steps": 20})
    seen = []
    outcome = run_network(exp, seen.append, jobs=2)
    assert outcome.status == "completed"
    assert any(isinstance(e, Notice) and "--jobs and --cluster are not used" in e.text for e in seen)
