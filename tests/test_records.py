"""Records read back in any state: finished, written by an older tuilab, cut short, or killed outright."""

import contextlib
import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tuilab.cli import main as cli_main
from tuilab.engine.records.run_records import read_records
from tuilab.errors import TuilabError


def _headless(out, *extra, epochs=5):
    return subprocess.run([sys.executable, "-m", "tuilab", "--preset", "spirals", "--epochs", str(epochs),
                           "--set", "data.n_samples=400", "--out", str(out), *extra, "headless"],
                          capture_output=True, text=True, timeout=300)


def _report(*folders):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["report", *map(str, folders)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "done"
    assert _headless(out).returncode == 0
    return out


def test_a_finished_run_reads_back_whole_and_reports(finished):
    rec = read_records(finished)
    assert rec.status == "completed" and rec.notes == []
    assert [r["epochs_done"] for r in rec.runs] == [5] and len(rec.metrics) == 5
    code, out, err = _report(finished)
    assert code == 0 and "completed" in out and "adam lr=0.01" in out and "training loss per epoch" in out
    assert "\x1b[" not in out
    assert out.startswith("Two spirals: completed")  # the data set said once, not "Two spirals on spirals"


def test_records_of_an_older_tuilab_open_with_a_note_of_what_is_missing(finished, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.toml").write_text((finished / "config.toml").read_text())
    rows = list(csv.reader((finished / "metrics.csv").read_text().splitlines()))
    keep = [k for k, c in enumerate(rows[0]) if c not in ("grad_ratio", "test_loss")]
    (old / "metrics.csv").write_text("\n".join(",".join(r[k] for k in keep) for r in rows) + "\n")
    rec = read_records(old)  # no summary.json, two columns fewer
    assert rec.runs[0]["epochs_done"] == 5 and rec.status == "interrupted"
    assert any("no summary.json" in n for n in rec.notes)
    assert any("grad_ratio" in n and "test_loss" in n for n in rec.notes)
    code, out, _ = _report(old)
    assert code == 0 and "note: no summary.json" in out
    assert out.startswith("Two spirals: interrupted") and "?" not in out.splitlines()[0]  # from config.toml


def test_a_row_cut_short_is_left_out_and_said(finished, tmp_path):
    cut = tmp_path / "cut"
    cut.mkdir()
    for name in ("config.toml", "summary.json"):
        (cut / name).write_text((finished / name).read_text())
    text = (finished / "metrics.csv").read_text()
    (cut / "metrics.csv").write_text(text[: text.rindex("\n", 0, len(text) - 1) + 20])
    rec = read_records(cut)
    assert len(rec.metrics) == 4 and any("incomplete row" in n for n in rec.notes)


def test_a_folder_without_records_is_one_line_and_exit_2(tmp_path):
    with pytest.raises(TuilabError, match="holds no tuilab records"):
        read_records(tmp_path)
    code, _, err = _report(tmp_path)
    assert code == 2 and err.count("\n") == 1
    code, _, err = _report(tmp_path / "nonexistent")
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


def test_a_title_says_its_data_set_once():
    from tuilab.headless import headline

    assert headline("Two spirals", "spirals") == "Two spirals"
    assert headline("Shallow sigmoid net on MNIST", "mnist") == "Shallow sigmoid net on MNIST"
    assert headline("Shallow sigmoid net on MNIST", "fashion-mnist") == "Shallow sigmoid net (fashion-mnist)"
    assert headline("Deep ReLU net with Kaiming init: the fix", "digits") == \
        "Deep ReLU net with Kaiming init: the fix (digits)"
    assert headline("Optimizer zoo", None) == "Optimizer zoo"


def test_sigkill_at_twenty_random_moments_leaves_records_that_load(tmp_path):
    rng = random.Random(20261202)
    seen_epochs = 0
    with_records = 0
    command = [sys.executable, "-m", "tuilab", "--preset", "spirals", "--set", "data.n_samples=400", "headless"]
    # one run to its end first: it writes numba's cache of the kernels this run needs, which a process killed
    # while compiling never does (in a fresh CI checkout every kill then came before the first epoch)
    subprocess.run([*command[:3], "--epochs", "2", "--out", str(tmp_path / "warm"), *command[3:]],
                   capture_output=True, timeout=600, check=True)
    for trial in range(20):
        out = tmp_path / f"k{trial}"
        p = subprocess.Popen([*command[:3], "--epochs", "100000", "--out", str(out), *command[3:]],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # from while Python starts (no records yet) to well into training
        time.sleep(rng.uniform(0.05, 2.5))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        if not (out / "config.toml").exists():
            assert not (out / "metrics.csv").exists()  # nothing written before config.toml
            continue
        with_records += 1
        rec = read_records(out)
        assert rec.status == "interrupted"
        epochs = [m["epoch"] for m in rec.metrics]
        assert epochs == list(range(1, len(epochs) + 1))  # every finished epoch, in order, none twice
        assert rec.runs[0]["epochs_done"] == len(epochs)
        if (out / "summary.json").exists():  # written just after config.toml: whole, whenever the kill came
            assert json.loads((out / "summary.json").read_text())["preset"] == "spirals"
        code, text, _ = _report(out)
        assert code == 0 and "spirals" in text.lower()
        seen_epochs += len(epochs)
    print(f"{with_records} of 20 kills landed with records, {seen_epochs} finished epochs among them")
    assert with_records >= 10 and seen_epochs > 0  # the kills did land while records were being written


def test_params_are_written_whole(finished):
    with np.load(finished / "adam-lr-0.01" / "params.npz") as z:
        assert z["theta"].size > 0 and list(z["sizes"])[0] == 2


def test_surface_records_report_with_their_table_and_charts(tmp_path):
    out = tmp_path / "saddle"
    r = subprocess.run([sys.executable, "-m", "tuilab", "--preset", "saddle", "--out", str(out), "headless"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["runs"][0]["log10_error"] is None  # NaN kept as null
    code, text, err = _report(out)
    assert code == 0, err
    assert "final x" in text and "converged" in text and "a saddle at the origin" in text  # table and contour
    assert "log10(f - f*) by step" in text  # the error chart
