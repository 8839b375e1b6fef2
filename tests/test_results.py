"""The results table chooses on validation, never on the test set, and says what to report (issue 27)."""

import math

from tuilab.engine.records.results import chosen_line, ranked, result_rows
from tuilab.engine.records.sweep_results import sweep_results
from tuilab.headless import results_table


def run(label, val_acc, test_acc, val_loss=1.0, train_loss=0.5, status="completed", lr=0.1):
    return {"label": label, "optimizer": "sgd", "lr": lr, "status": status, "val_accuracy": val_acc,
            "test_accuracy": test_acc, "val_loss": val_loss, "test_loss": 0.9, "train_loss": train_loss,
            "settings": {"optimizer.lr": lr}}


def test_ranked_by_validation_accuracy_not_by_test_accuracy():
    runs = [run("lr=0.1", 0.80, 0.95, lr=0.1), run("lr=1", 0.90, 0.85, lr=1.0)]
    assert ranked(runs) == [1, 0]  # the better validation accuracy, though its test accuracy is lower
    assert result_rows(runs)[0][1] == "lr=1"
    assert chosen_line(runs) == "chosen on validation accuracy: lr=1; test accuracy 85.00%, test loss 0.9000"
    assert results_table(runs).splitlines()[-1] == chosen_line(runs)


def test_the_sweep_and_the_table_crown_the_same_run():
    runs = [run("lr=0.1", 0.80, 0.95, lr=0.1), run("lr=1", 0.90, 0.85, lr=1.0)]
    # lr=0.1 had the best epoch (0.93), lr=1 ends better: both views take each run's last epoch
    histories = {0: [(0.93, 0.5, 0.4), (0.80, 1.0, 0.5)], 1: [(0.5, 2.0, 1.0), (0.90, 1.0, 0.5)]}
    best = sweep_results([("optimizer.lr", (0.1, 1.0))], runs, histories).best()
    assert best.values == (1.0,) and runs[ranked(runs)[0]]["label"] == "lr=1"


def test_without_validation_the_training_loss_chooses_and_completed_runs_come_first():
    nan = math.nan
    runs = [run("a", nan, 0.99, val_loss=nan, train_loss=0.3), run("b", nan, 0.5, val_loss=nan, train_loss=0.1),
            run("c", nan, nan, val_loss=nan, train_loss=0.01, status="diverged")]
    assert ranked(runs) == [1, 0, 2]
    assert chosen_line(runs).startswith("chosen on training loss (no validation set): b; test accuracy 50.00%")
    assert chosen_line(runs[:1]) == ""  # one run: nothing was chosen


def test_a_resumed_run_that_had_finished_says_so():
    import io

    from tuilab.engine.events import Started
    from tuilab.headless import ProgressPrinter

    out = io.StringIO()
    printer = ProgressPrinter(out, n_runs=2, live=False)
    for run, done in ((0, 3), (1, 1)):
        printer(Started(run, f"r{run}", 3, 10, 100, (2, 4, 2), "spirals", "sgd", 320, first_epoch=done))
    lines = out.getvalue().splitlines()
    assert lines == ["[1/2] r0: finished already (3 of 3 epochs): nothing to train",
                     "[2/2] r1: goes on after epoch 1 of 3"]
