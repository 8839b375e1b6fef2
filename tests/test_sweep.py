"""Sweeps: [sweep] and --sweep expanded into runs, checked before anything starts; halving; the
results grouped by axis values."""

import json
import math
import tomllib

import pytest

from tuilab.cli import main
from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.config.presets import load_experiment
from tuilab.engine.config.sweep import Sweep, parse_sweep_option
from tuilab.engine.records.sweep_results import sweep_results
from tuilab.engine.training.halving import survivors
from tuilab.errors import TuilabError
from tuilab.views.sweep import grouped_table, heat_table, sweep_text

BASE = {"data": {"name": "xor"}, "model": {"hidden": [4]}, "optimizer": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 2}}


def build(doc, sweeps=(), overrides=()):
    return build_experiment(doc, "t.toml", "t", overrides, sweeps)


def test_grid_is_every_combination_first_axis_slowest_with_labels_and_settings():
    e = build({**BASE, "sweep": {"optimizer.lr": [0.01, 0.1], "train.seed": [0, 1, 2]}})
    assert [r.label for r in e.runs] == [f"lr={lr:g} seed={s}" for lr in (0.01, 0.1) for s in (0, 1, 2)]
    assert [(r.optimizer.lr, r.train.seed) for r in e.runs] == [(lr, s) for lr in (0.01, 0.1)
                                                                            for s in (0, 1, 2)]
    assert e.runs[4].settings == {"optimizer.lr": 0.1, "train.seed": 1}
    assert e.sweep.describe() == {"axes": {"optimizer.lr": [0.01, 0.1], "train.seed": [0, 1, 2]}, "mode": "grid"}


def test_zip_pairs_values_and_each_run_is_taken_times_the_grid():
    doc = {**BASE, "sweep": {"optimizer.lr": [0.01, 0.1], "train.seed": [5, 6], "mode": "zip"},
           "runs": [{"label": "a"}, {"label": "b", "optimizer": {"name": "adam", "lr": 1e-3}}]}
    e = build(doc)
    assert [r.label for r in e.runs] == ["a lr=0.01 seed=5", "a lr=0.1 seed=6", "b lr=0.01 seed=5",
                                         "b lr=0.1 seed=6"]
    # the sweep's value wins over the run's own, and a run naming another optimizer keeps it
    assert [r.optimizer.name for r in e.runs] == ["sgd", "sgd", "adam", "adam"]
    assert e.runs[3].optimizer.lr == 0.1


def test_an_optimizer_name_axis_and_list_values():
    e = build({**BASE, "sweep": {"optimizer.name": ["sgd", "adam"], "model.hidden": [[4], [8, 8]]}})
    assert [r.label for r in e.runs] == ["sgd hidden=4", "sgd hidden=8-8", "adam hidden=4", "adam hidden=8-8"]
    assert e.runs[3].model.hidden == (8, 8)
    assert e.runs[2].optimizer.lr == 0.001  # adam's own default, not sgd's lr


@pytest.mark.parametrize("sweep, words", [
    ({"optimizer.lr": 0.1}, "non-empty list"),
    ({"optimizer.lr": []}, "non-empty list"),
    ({"lr": [0.1]}, "table.key"),
    ({"optimizer.lr": [0.1, 0.1]}, "twice"),
    ({"optimizer.lr": [0.1], "mode": "cross"}, "mode must be"),
    ({"optimizer.lr": [0.1, 1], "train.seed": [0], "mode": "zip"}, "one length"),
    ({"optimizer.lr": [0.1], "prune": "halving", "keep": 1.5}, "keep"),
    ({"optimizer.lr": [0.1], "prune": "asha"}, "prune must be"),
    ({"optimizer.lrr": [0.1]}, "lrr"),
    ({"optimizer.lr": [0.1, -1.0]}, "sweep lr=-1"),
    ({"surface.name": ["x"]}, "table must be"),
])
def test_every_mistake_is_one_line_before_anything_runs(sweep, words):
    with pytest.raises(TuilabError) as e:
        build({**BASE, "sweep": sweep})
    assert words in str(e.value) and "\n" not in str(e.value)


def test_command_line_axes_add_to_and_replace_the_presets():
    e = build({**BASE, "sweep": {"optimizer.lr": [0.01, 0.1]}},
              sweeps=[parse_sweep_option("optimizer.lr=[1.0]"), parse_sweep_option("train.seed=[0, 1]")])
    assert [r.label for r in e.runs] == ["lr=1 seed=0", "lr=1 seed=1"]
    with pytest.raises(TuilabError, match="both set it"):
        build(BASE, sweeps=[parse_sweep_option("optimizer.lr=[1.0]")], overrides=[("optimizer.lr", 0.5)])
    for bad in ("optimizer.lr", "optimizer.lr=0.1", "optimizer.lr=[1,"):
        with pytest.raises(TuilabError, match="--sweep"):
            parse_sweep_option(bad)


def test_config_toml_spells_the_runs_out_and_reads_back_as_the_same_sweep():
    e = build({**BASE, "sweep": {"optimizer.lr": [0.01, 0.1], "train.seed": [0, 1], "prune": "halving",
                                 "rung_epochs": 1, "keep": 0.5}})
    again = build(tomllib.loads(e.to_toml()))
    assert again.runs == e.runs and [r.settings for r in again.runs] == [r.settings for r in e.runs]
    assert again.sweep == e.sweep


def test_rungs_and_survivors():
    s = Sweep((("optimizer.lr", (1, 2)),), prune="halving", rung_epochs=2, keep=1 / 3)
    assert s.rungs(20) == [2, 6, 18] and s.rungs(18) == [2, 6] and Sweep().rungs(10) == []
    assert survivors({0: 0.5, 1: 0.1, 2: math.nan, 3: 0.3}, 0.5) == {1, 3}
    assert survivors({0: math.nan, 1: math.nan}, 0.33) == {0}  # ties to the earlier run
    assert survivors({4: 1.0}, 0.1) == {4}


def test_the_builtin_sweep_presets_resolve():
    assert [r.optimizer.lr for r in load_experiment("lr-sweep").runs] == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    zoo = load_experiment("optimizer-zoo-seeds")
    assert len(zoo.runs) == 3 * len(load_experiment("optimizer-zoo").runs)
    assert len(load_experiment("init-sweep").runs) == 12


HALVING = """
title = "halving"
[data]
name = "digits"
[model]
hidden = [32]
activation = "relu"
init = "kaiming_uniform"
[optimizer]
name = "sgd"
[train]
epochs = 6
batch_size = 32
[sweep]
"optimizer.lr" = [1e-6, 1e-5, 0.05, 0.2]
prune = "halving"
rung_epochs = 2
keep = 0.5
"""


def test_halving_prunes_the_hopeless_learning_rates_at_the_first_rung(tmp_path, capsys):
    preset = tmp_path / "halving.toml"
    preset.write_text(HALVING)
    out = tmp_path / "r"
    assert main(["--preset", str(preset), "--out", str(out), "headless"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    runs = {r["label"]: r for r in summary["runs"]}
    assert {k: (r["status"], r["epochs_done"]) for k, r in runs.items() if r["lr"] < 1e-3} == {
        "lr=1e-06": ("pruned", 2), "lr=1e-05": ("pruned", 2)}
    # rungs at 2 and 4: one of the two good ones goes on to the end
    assert sorted((r["status"], r["epochs_done"]) for r in runs.values() if r["lr"] > 1e-3) == [
        ("completed", 6), ("pruned", 4)]
    assert summary["sweep"]["prune"] == "halving" and runs["lr=0.2"]["settings"] == {"optimizer.lr": 0.2}
    text = capsys.readouterr()
    assert "halving at epoch 2: 2 of 4 runs go on; pruned: lr=1e-06, lr=1e-05" in text.err
    assert "sweep: val accuracy by optimizer.lr" in text.out
    # every epoch a pruned run trained is in the records, and its params
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 + 2 + 4 + 6
    assert all((out / r["label"].replace("=", "-") / "params.npz").is_file() for r in summary["runs"])


def _results():
    runs = []
    for lr, accs in ((0.01, (0.5, 0.7)), (0.1, (0.9, 0.8))):
        for name in ("sgd", "adam"):
            for seed, acc in enumerate(accs):
                bump = 0.05 if name == "adam" else 0.0
                runs.append({"status": "completed", "val_accuracy": acc + bump, "val_loss": 1.0,
                             "settings": {"optimizer.lr": lr, "optimizer.name": name, "train.seed": seed}})
    axes = [("optimizer.lr", (0.01, 0.1)), ("optimizer.name", ("sgd", "adam")), ("train.seed", (0, 1))]
    return sweep_results(axes, runs, {})


def test_results_average_over_seeds_and_mark_the_best():
    r = _results()
    assert r.metric == "val accuracy" and r.seeds == ["train.seed"]
    assert [(c.values, round(c.mean, 6)) for c in r.cells] == [
        ((0.01, "sgd"), 0.6), ((0.01, "adam"), 0.65), ((0.1, "sgd"), 0.85), ((0.1, "adam"), 0.9)]
    assert math.isclose(r.cells[0].spread, math.sqrt(0.02))
    table = grouped_table(r)
    assert "90.00% ± 7.07 *" in table and "2 completed" in table
    heat = heat_table(r).splitlines()
    assert heat[0].split() == ["lr", "\\", "optimizer", "sgd", "adam"]
    assert heat[3].split() == ["0.1", "85.00%", "90.00%", "*"]
    text = sweep_text(r, chart=True, width=80, height=15)
    assert "best: lr=0.1 optimizer=adam (90.00% ± 7.07)" in text and "(log scale)" not in text
    assert "val accuracy, % against optimizer.lr" in text


def test_bad_sweep_on_the_command_line_is_one_line_and_exit_2(capsys):
    assert main(["--preset", "xor", "--sweep", "optimizer.lr=0.1", "headless"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TOML list" in err[0]
