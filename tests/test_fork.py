"""Forks: a run started again from another's checkpoint at an epoch, with settings changed. Its first rows are
the original's; with nothing changed every later row and the final parameters are the original's too."""

import contextlib
import csv
import io
import json

import numpy as np
import pytest

from tuilab.cli import main as cli_main
from tuilab.engine.config.presets import load_experiment
from tuilab.engine.records.fork import make_fork
from tuilab.engine.records.run_records import read_records, slug
from tuilab.engine.training.checkpoint import fork_epochs, fork_stride
from tuilab.errors import TuilabError
from tuilab.headless import run_headless

# the figures a run computes (not its timings, its label or its run number)
TIMINGS = {"run", "label", "seconds", "samples_per_second"}


def _train(out, extra=(), epochs=6):
    exp = load_experiment("spirals", [("train.epochs", epochs), ("data.n_samples", 400), *extra])
    assert run_headless(exp, out=out, data_options=None, stream=io.StringIO(), stdout=io.StringIO()) == 0
    return exp


def _rows(folder, run=0):
    with open(folder / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(f)
                if row["run"] == str(run)]


def _cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    out = tmp_path_factory.mktemp("fork") / "original"
    _train(out)
    return out


def test_a_run_keeps_a_fork_point_at_every_epoch_of_a_short_run_and_thins_a_long_one(original):
    run = original / slug(read_records(original).runs[0]["label"])
    assert fork_epochs(run) == [0, 1, 2, 3, 4, 5, 6]
    assert fork_stride(8, 6, 1000) == 1 and fork_stride(8, 100, 1000) == 15 and fork_stride(0, 100, 1000) == 0
    assert fork_stride(8, 100, 6 * 2**20) == 25  # 32 MB holds 5 checkpoints of 6 MB: epochs 0, 25, 50, 75, 100


def test_a_fork_with_nothing_changed_is_the_original_run_bit_for_bit(original, tmp_path):
    exp, out = make_fork(original, 2, out=tmp_path / "same")
    assert run_headless(exp, out=out, data_options=None, stream=io.StringIO(), stdout=io.StringIO(), resume={}) == 0
    assert _rows(out) == _rows(original)  # epochs 1-2 copied, 3-6 trained again: every figure the same
    first, again = (np.load(f / slug(label) / "params.npz") for f, label in
                    ((original, read_records(original).runs[0]["label"]), (out, exp.runs[0].label)))
    assert set(first.files) == set(again.files)
    for key in first.files:
        np.testing.assert_array_equal(first[key], again[key])
    assert read_records(out).runs[0]["status"] == "completed"


def test_the_command_line_forks_with_a_lower_lr_and_prints_where_they_part(original, tmp_path):
    code, out, err = _cli("fork", original, "--at", 3, "--set", "optimizer.lr=0.001", "--out", tmp_path / "lower")
    assert code == 0, err
    fork = tmp_path / "lower"
    rows, before = _rows(fork), _rows(original)
    assert rows[:3] == before[:3]  # the original's rows up to the fork
    assert rows[3]["train_loss"] != before[3]["train_loss"] and len(rows) == 6
    rec = read_records(fork)
    assert rec.runs[0]["label"] == "adam lr=0.01 | from epoch 3: optimizer.lr=0.001" and rec.runs[0]["lr"] == 0.001
    assert json.loads((fork / "forked_from.json").read_text())["epoch"] == 3
    assert "the fork parts at epoch 3" in out and "forked from" in out
    code, out, _ = _cli("report", fork)  # the report draws both runs, too
    assert code == 0 and "the fork parts at epoch 3" in out


def test_a_fork_onto_another_optimizer_starts_it_fresh_from_the_same_parameters(original, tmp_path):
    exp, out = make_fork(original, 4, [("optimizer.name", "momentum"), ("optimizer.lr", 0.05)], out=tmp_path / "m")
    assert exp.runs[0].optimizer.name == "momentum"
    assert run_headless(exp, out=out, data_options=None, stream=io.StringIO(), stdout=io.StringIO(), resume={}) == 0
    rows, before = _rows(out), _rows(original)
    same = [k for k in rows[0] if k in before[0]]  # momentum has no bias corrections among its internals
    assert [{k: r[k] for k in same} for r in rows[:4]] == [{k: r[k] for k in same} for r in before[:4]]
    assert "bias_correction1" in before[0] and "bias_correction1" not in rows[0]
    assert len(rows) == 6 and rows[4]["lr"] == "0.05" and rows[4]["train_loss"] != before[4]["train_loss"]


def test_a_fork_with_more_epochs_goes_on_past_the_original(original, tmp_path):
    exp, out = make_fork(original, 6, [("train.epochs", 8)], out=tmp_path / "longer")
    assert run_headless(exp, out=out, data_options=None, stream=io.StringIO(), stdout=io.StringIO(), resume={}) == 0
    assert [r["epoch"] for r in _rows(out)] == [str(e) for e in range(1, 9)]


@pytest.mark.parametrize("args, words", [
    (dict(at=9), "has no fork point at epoch 9: it kept epochs 0, 1, 2, 3, 4, 5, 6"),
    (dict(at=2, changes=[("model.hidden", [8])]), "it cannot change model.hidden"),
    (dict(at=2, changes=[("train.seed", 3)]), "it cannot change train.seed"),
    (dict(at=5, changes=[("train.epochs", 4)]), "set train.epochs to more than 5"),
    (dict(at=2, run_label="sgd"), "has no run 'sgd'; its runs: 'adam lr=0.01'"),
    (dict(at=2, changes=[("optimizer.lr", -1.0)]), "lr must be"),
])
def test_a_fork_that_cannot_be_is_one_line_saying_why(original, tmp_path, args, words):
    with pytest.raises(TuilabError) as err:
        make_fork(original, out=tmp_path / "x", **args)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()  # nothing written


def test_several_runs_need_run_and_a_surface_has_no_fork(tmp_path):
    exp = load_experiment("spirals", [("train.epochs", 2), ("data.n_samples", 200)], [("optimizer.lr", (0.01, 0.1))])
    assert run_headless(exp, out=tmp_path / "two", data_options=None, stream=io.StringIO(),
                        stdout=io.StringIO()) == 0
    with pytest.raises(TuilabError, match="has 2 runs: say which with --run LABEL"):
        make_fork(tmp_path / "two", 1)
    _, out = make_fork(tmp_path / "two", 1, run_label=exp.runs[1].label, out=tmp_path / "second")
    assert _rows(out)[0]["train_loss"] == _rows(tmp_path / "two", run=1)[0]["train_loss"]
    surf = load_experiment("rosenbrock-fast")
    assert run_headless(surf, out=tmp_path / "s", data_options=None, stream=io.StringIO(),
                        stdout=io.StringIO()) == 0
    code, _, err = _cli("fork", tmp_path / "s", "--at", 1)
    assert code == 2 and "a surface experiment" in err


@pytest.mark.asyncio
async def test_F_in_opened_records_forks_the_run_under_the_cursor_and_trains_it_beside(original, tmp_path):
    import shutil

    from tests.test_app import SIZE, wait_for
    from tuilab.app.app import make_app
    from tuilab.app.screens.fork import ForkRun

    folder = tmp_path / "opened"
    shutil.copytree(original, folder)
    app = make_app(opened=[folder], records=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.lives and app.lives[0].snapshot().runs, timeout=30.0)
        await pilot.press("F")
        await wait_for(pilot, lambda: isinstance(app.screen, ForkRun), timeout=10.0)
        form = app.screen
        assert form.epochs == [0, 1, 2, 3, 4, 5, 6]
        form.query_one("#fork-epoch").value = "9"
        await pilot.press("enter")  # not a fork point: said in the form, which stays
        assert "no fork point at epoch 9" in str(form.query_one("#fork-error").render())
        form.query_one("#fork-epoch").value = "2"
        form.query_one("#fork-changes").value = "optimizer.lr=0.002"
        form.query_one("#fork-changes").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ForkRun), timeout=10.0)
        forks = list(tmp_path.glob("opened-fork2-*"))
        assert len(forks) == 1
        await wait_for(pilot, lambda: (forks[0] / "summary.json").is_file()
                       and read_records(forks[0]).status == "completed", timeout=60.0)
    rows = _rows(forks[0])
    assert rows[:2] == _rows(original)[:2] and len(rows) == 6 and rows[2]["lr"] == "0.002"


def test_a_fork_into_a_taken_place_or_from_a_moved_original_says_so(original, tmp_path):
    taken = tmp_path / "file"
    taken.write_text("")
    with pytest.raises(TuilabError, match="is a file: give the fork another folder with --out"):
        make_fork(original, 1, out=taken)
    import shutil

    from tuilab.report import fork_chart

    copy = tmp_path / "orig"
    shutil.copytree(original, copy)
    _, out = make_fork(copy, 1, out=tmp_path / "f")
    assert run_headless(load_experiment(str(out / "config.toml")), out=out, data_options=None,
                        stream=io.StringIO(), stdout=io.StringIO(), resume={}) == 0
    assert "the fork parts at epoch 1" in fork_chart(out)
    shutil.rmtree(copy)
    assert fork_chart(out) == ""  # the original went: no chart, the fork's own records stand
    code, text, _ = _cli("report", out)
    assert code == 0 and "forked from" not in text.split("\n")[0]
