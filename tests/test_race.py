"""Fair races: each run tuned over its own learning-rate grid (halving within that grid only), then raced over
seeds; the leaderboard and the mean curves come from the race's own rows."""

import contextlib
import csv
import io
import json
import math

import numpy as np
import pytest

from tuilab.cli import main as cli_main
from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.config.presets import load_experiment
from tuilab.engine.records.fork import make_fork
from tuilab.engine.training.halving import survivors_by_bracket
from tuilab.engine.training.race import pick_lrs, read_result, run_race, tune_experiment
from tuilab.errors import TuilabError
from tuilab.headless import run_headless


def race_preset(runs, **race):
    """spirals, 5 epochs, these runs ({label: optimizer table}) raced fairly."""
    doc = {"data": {"name": "spirals", "n_samples": 400}, "model": {"hidden": [16]},
           "train": {"epochs": 5, "batch_size": 32},
           "runs": [{"label": k, "optimizer": o} for k, o in runs.items()],
           "race": {"grid": 4, "decades": 3.0, "seeds": 2, **race}}
    return build_experiment(doc, "test", "race-test")


def test_halving_ranks_each_bracket_on_its_own():
    class Run:
        def __init__(self, group):
            self.settings, self.tables = {"race.run": group}, {}

    runs = [Run("sgd")] * 6 + [Run("adam")] * 6
    losses = {i: (10.0 + i if i < 6 else float(i)) for i in range(12)}  # every sgd loss above every adam loss
    kept = survivors_by_bracket(losses, 1 / 3, runs, "race.run")
    assert kept == {0, 1, 6, 7}  # the best two of each: one ranking of all twelve would have kept adam's four
    assert survivors_by_bracket(losses, 1 / 3, runs, "") == {6, 7, 8, 9}


def test_the_tuning_grid_is_each_runs_own_around_its_preset_lr():
    exp = race_preset({"sgd": {"name": "sgd", "lr": 0.1}, "adam": {"name": "adam", "lr": 1e-3}})
    tune = tune_experiment(exp)
    lrs = {r.settings["race.run"]: [] for r in tune.runs}
    for r in tune.runs:
        lrs[r.settings["race.run"]].append(r.optimizer.lr)
    assert lrs["sgd"] == pytest.approx([0.1 * 10 ** x for x in np.linspace(-1.5, 1.5, 4)], rel=1e-3)
    assert lrs["adam"] == pytest.approx([1e-3 * 10 ** x for x in np.linspace(-1.5, 1.5, 4)], rel=1e-3)
    assert tune.sweep.prune == "halving" and tune.sweep.bracket == "race.run"


def test_pick_takes_the_lowest_validation_loss_among_those_that_finished():
    exp = race_preset({"sgd": {"name": "sgd", "lr": 0.1}})
    tune = tune_experiment(exp)
    summaries = [{"status": "pruned", "val_loss": 0.01}, {"status": "completed", "val_loss": 0.5},
                 {"status": "completed", "val_loss": 0.3}, {"status": "diverged", "val_loss": math.nan}]
    (pick,) = pick_lrs(exp, tune, summaries)
    assert pick["tuned_lr"] == tune.runs[2].optimizer.lr and pick["tune_loss"] == 0.3  # not the pruned one
    (none,) = pick_lrs(exp, tune, [{"status": "diverged", "val_loss": math.nan}] * 4)
    assert none["tuned_lr"] == 0.1 and "preset's" in none["note"]


@pytest.fixture(scope="module")
def raced(tmp_path_factory):
    """SGD at a preset lr far too small for 5 epochs, beside Adam at its usual one: raced fairly."""
    out = tmp_path_factory.mktemp("race") / "r"
    exp = race_preset({"sgd": {"name": "sgd", "lr": 1e-4}, "adam": {"name": "adam", "lr": 1e-2}})
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_headless(exp, out=out, data_options=None, stream=stderr, stdout=stdout) == 0
    # progress numbers each phase's runs: 2 x 4 tuning runs, then 2 x 2 racing
    assert "[8/8] adam lr=" in stderr.getvalue() and "[4/4] adam @" in stderr.getvalue()
    assert "[9/" not in stderr.getvalue() and "/2]" not in stderr.getvalue()
    return exp, out, stdout.getvalue()


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tuning_picks_the_grid_value_with_the_lowest_validation_loss_where_it_is_known(raced):
    """SGD's grid is 3e-6 .. 3e-3, all far too small for 5 epochs: the larger the lr the lower the loss, so its
    best is the grid's top, and the race flags it at the grid's edge."""
    exp, out, _ = raced
    result = read_result(out)
    sgd = next(p for p in result["tuned"] if p["label"] == "sgd")
    assert sgd["tuned_lr"] == max(sgd["grid"]) and sgd["at_grid_edge"]
    # and it is what the tuning's own records say: the lowest final validation loss of the runs that finished
    summary = json.loads((out / "tune" / "summary.json").read_text())
    done = [(r["val_loss"], r["lr"]) for r in summary["runs"] if r["label"].startswith("sgd ")
            and r["status"] == "completed"]
    assert min(done)[1] == sgd["tuned_lr"]
    # halving stayed within each run's grid: of 4 a rung keeps 2, then 1, in each of the two grids
    statuses = [r["status"] for r in summary["runs"]]
    assert statuses.count("completed") == 2 and statuses.count("pruned") == 6
    # the tuning runs keep no fork points or snapshots (a zoo's took 1.8 GB); the race's do
    assert not list((out / "tune").glob("*/fork_points")) and not list((out / "tune").glob("*/snapshots*"))
    assert list((out / "race").glob("*/fork_points"))


def test_the_race_runs_each_at_its_tuned_lr_over_the_seeds_and_the_curves_are_their_mean(raced):
    exp, out, _ = raced
    result = read_result(out)
    race = json.loads((out / "race" / "summary.json").read_text())
    assert [r["lr"] for r in race["runs"]] == [p["tuned_lr"] for p in result["tuned"] for _ in range(2)]
    metric = result["target"]["metric"]
    assert metric == "val_accuracy" and result["target"]["chosen"] == "the median run's best mean"
    rows = _rows(out / "race" / "metrics.csv")
    for k, label in enumerate(["sgd", "adam"]):
        curve = result["curves"][label]
        mine = [[float(r[metric]) for r in rows if r["run"] == str(2 * k + s)] for s in range(2)]
        np.testing.assert_allclose(curve["mean"], np.mean(mine, axis=0))
        np.testing.assert_allclose(curve["min"], np.min(mine, axis=0))
    board = result["leaderboard"]
    assert {b["label"] for b in board} == {"sgd", "adam"} and all(b["seeds"] == 2 for b in board)
    first = board[0]
    reached = [b for b in board if b["epochs_to_target"] is not None]
    assert first in reached and first["epochs_to_target"] == min(b["epochs_to_target"] for b in reached)


def test_headless_and_report_print_the_leaderboard(raced, tmp_path):
    _, out, text = raced
    assert "leaderboard: epochs (and seconds) until the mean over seeds reaches val accuracy >=" in text
    assert "tuned lr" in text and "at most" in text and "without halving" in text
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        assert cli_main(["report", str(out), "--svg", str(tmp_path / "svg")]) == 0
    assert "leaderboard" in stream.getvalue() and (tmp_path / "svg" / "01-race.svg").is_file()


def test_a_stopped_race_keeps_its_records_and_says_so(tmp_path):
    from tuilab.engine.events import Control

    control = Control()
    control.stop()
    exp = race_preset({"sgd": {"name": "sgd", "lr": 0.1}})
    outcome = run_race(exp, control=control, out=tmp_path / "r")
    assert outcome.status == "interrupted" and read_result(tmp_path / "r")["status"] == "interrupted"
    assert (tmp_path / "r" / "tune" / "summary.json").is_file()


@pytest.mark.parametrize("preset, sets, fair, words", [
    ("rosenbrock", [], True, "a surface preset's runs take milliseconds"),
    ("spirals", [("race.grid", 1)], None, "[race] grid must be a whole number from 2 to 64"),
    ("spirals", [("race.speed", 1)], None, "unknown key 'speed' in [race]"),
    ("spirals", [("race.target_metric", "accuracy")], None, "target_metric must be one of"),
])
def test_a_race_that_cannot_be_is_one_line(preset, sets, fair, words):
    with pytest.raises(TuilabError) as err:
        load_experiment(preset, sets, fair=fair)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_fair_zoo_preset_and_no_fair():
    exp = load_experiment("optimizer-zoo-fair")
    assert exp.race is not None and len(exp.runs) == 20 and len(tune_experiment(exp).runs) == 160
    assert load_experiment("optimizer-zoo-fair", fair=False).race is None


@pytest.mark.asyncio
async def test_the_dashboard_tunes_then_races_and_shows_the_leaderboard(tmp_path):
    from tests.test_app import SIZE, views, wait_for
    from tuilab.app.app import make_app

    app = make_app("spirals", [("race.grid", 3), ("race.seeds", 2), ("train.epochs", 3), ("data.n_samples", 300)],
                   out_root=tmp_path, fair=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: getattr(app.lives[0].outcome, "result", None) is not None, timeout=120.0)
        await pilot.press("3")
        await pilot.pause(0.5)
        keys = [v.key for v in views(app)]
        assert len(keys) == 2 and all("-race:" in k for k in keys)  # the tuning runs gave way to the race's
        shown = str(app.screen.query_one("#confusion").render())
        assert "leaderboard" in shown and "the mean over seeds" in shown and "tuned lr" in shown
    assert read_result(next(tmp_path.glob("*spirals"))) is not None


def test_resume_of_a_race_folder_says_which_of_its_experiments_to_resume(raced):
    from tuilab.engine.records.resume import plan_resume

    _, out, _ = raced
    with pytest.raises(TuilabError, match="is a fair race, two experiments in turn: resume the one you mean"):
        plan_resume(out)
    with pytest.raises(TuilabError, match="is a fair race, two experiments in turn: fork the one you mean"):
        make_fork(out, 1)
    experiment, finished = plan_resume(out / "race")  # each phase is an ordinary experiment
    assert len(finished) == len(experiment.runs) == 4
