"""The command line end to end, in subprocesses as a person would run it."""

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuilab import __version__

FASHION = Path("/usr/share/datasets/fashion-mnist")


def tuilab(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tuilab", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def test_version_help_and_list():
    assert tuilab("--version").stdout.strip() == f"tuilab {__version__}"
    out = tuilab("--help").stdout
    assert "examples:" in out and "headless" in out and "--preset deep-relu headless" in out
    listing = tuilab("list")
    assert listing.returncode == 0
    assert "deep-sigmoid" in listing.stdout and "vanishing" in listing.stdout.lower()


def test_headless_end_to_end(tmp_path):
    out = tmp_path / "rec"
    r = tuilab("--preset", "spirals", "--epochs", "3", "--set", "data.n_samples=400", "--out", str(out),
               "headless")
    assert r.returncode == 0, r.stderr
    assert "epoch 3/3" in r.stderr and "records: " + str(out) in r.stdout
    assert "adam lr=0.01" in r.stdout.splitlines()[-2]  # the results table, then the path
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["dataset"] == "spirals"
    run = summary["runs"][0]
    assert run["label"] == "adam lr=0.01" and run["optimizer"] == "adam" and run["status"] == "completed"
    assert 0 <= run["test_accuracy"] <= 1 and run["samples_per_second"] > 0
    assert (out / "config.toml").exists() and (out / "confusion.csv").exists()
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 3
    again = tuilab("--preset", str(out / "config.toml"), "--out", str(tmp_path / "again"), "headless")
    assert again.returncode == 0, again.stderr
    rerun = json.loads((tmp_path / "again" / "summary.json").read_text())["runs"][0]
    assert rerun["test_loss"] == run["test_loss"]  # config.toml reproduces the run bit for bit


def test_missing_data_set_falls_back_and_records_say_so(tmp_path):
    from tests.test_data import refused_url

    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TUILAB_DATA": str(tmp_path / "none"),
           "TUILAB_DATA_MIRROR": refused_url()}  # offline, as a test must be
    r = tuilab("--preset", "deep-relu", "--dataset", "kmnist", "--epochs", "1", "--out", str(tmp_path / "o"),
               "headless", env=env)
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if line.startswith("tuilab: warning:")]
    # Fashion-MNIST stands in where it is on disk (the same 28x28 images in ten classes), else the digits
    stand_in = "fashion-mnist" if FASHION.is_dir() else "digits"
    assert len(warning) == 1 and "kmnist" in warning[0] and (stand_in if FASHION.is_dir() else "bundled digits") \
        in warning[0]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["dataset"] == stand_in
    strict = tuilab("--preset", "deep-relu", "--dataset", "kmnist", "--strict-data", "--out",
                    str(tmp_path / "s"), "headless", env=env)
    lines = strict.stderr.splitlines()
    assert strict.returncode == 2 and lines[-1].startswith("tuilab: error: kmnist: not found on disk")
    assert all(line.startswith("tuilab: fetching ") for line in lines[:-1])  # a line per file tried


@pytest.mark.parametrize("args, words", [
    (["--preset", "deep-rleu", "headless"], "Did you mean 'deep-relu'"),
    (["--preset", "spirals", "--set", "model.hiden=[3]", "headless"], "did you mean 'hidden'"),
    (["--preset", "spirals", "--set", "optimizer.lr=-1", "headless"], "lr must be a number > 0"),
    (["--preset", "spirals", "--dataset", "mnsit", "headless"], "did you mean 'mnist'"),
    (["--preset", "spirals", "--jobs", "0", "headless"], "--jobs"),
    (["headless"], "needs a preset"),
])
def test_bad_input_is_one_line_and_exit_2(args, words, tmp_path):
    r = tuilab(*args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_unwritable_out_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    r = tuilab("--preset", "spirals", "--out", str(tmp_path / "file" / "x"), "headless")
    assert r.returncode == 2 and "cannot write records" in r.stderr and "epoch" not in r.stderr


def test_ctrl_c_keeps_records_and_exits_130(tmp_path):
    out = tmp_path / "rec"
    p = subprocess.Popen([sys.executable, "-m", "tuilab", "--preset", "spirals", "--epochs", "100000",
                          "--out", str(out), "headless"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a few finished epochs
        if (out / "metrics.csv").exists() and len((out / "metrics.csv").read_text().splitlines()) > 3:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["runs"][0]["epochs_done"] >= 3
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) - 1 == summary["runs"][0]["epochs_done"]
    assert "Traceback" not in stderr


def test_engine_and_headless_never_import_textual():
    code = ("import sys, tuilab.engine.training.runner, tuilab.engine.config.experiment, tuilab.engine.config.presets, "
            "tuilab.headless, tuilab.cli; sys.exit('textual' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist for this test")
def test_short_real_run_on_fashion_mnist(tmp_path):
    r = tuilab("--preset", "shallow-adam", "--dataset", "fashion-mnist", "--epochs", "1",
               "--set", "train.batch_size=64", "--strict-data", "--out", str(tmp_path / "o"), "headless")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["dataset"] == "fashion-mnist"
    assert summary["runs"][0]["test_accuracy"] > 0.7  # one epoch of a 30-unit net; chance is 0.1


def test_ctrl_c_with_jobs_stops_every_job_and_keeps_every_finished_epoch(tmp_path):
    """A terminal's Ctrl+C goes to the whole process group: the jobs as well as tuilab."""
    out = tmp_path / "rec"
    p = subprocess.Popen([sys.executable, "-m", "tuilab", "--preset", "lr-sweep", "--dataset", "digits",
                          "--epochs", "100000", "--jobs", "2", "--out", str(out), "headless"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # both jobs have finished a few epochs of their first runs
            rows = (out / "metrics.csv").read_text().splitlines()[1:] if (out / "metrics.csv").exists() else []
            if len({r.split(",")[0] for r in rows}) >= 2 and len(rows) >= 6:
                break
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    header, *rows = (out / "metrics.csv").read_text().splitlines()
    run_col = header.split(",").index("run")
    per_run = collections.Counter(int(r.split(",")[run_col]) for r in rows)
    done = {i: r["epochs_done"] for i, r in enumerate(summary["runs"]) if r["epochs_done"]}
    assert len(done) >= 2 and done == per_run  # every finished epoch of every run, no more
    assert all(r["status"] == "interrupted" for r in summary["runs"])  # none could finish 100000 epochs
