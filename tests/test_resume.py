"""tuilab resume: a run killed with SIGKILL at any moment and resumed ends with exactly the parameters
of the same run never interrupted, and its records as if it had never stopped."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

PRESET = """
title = "resume trial"
[data]
name = "spirals"
n_samples = 400
[model]
hidden = [16, 16]
activation = "tanh"
[optimizer]
name = "adam"
lr = 0.01
[train]
epochs = {epochs}
batch_size = 16
[[runs]]
label = "adam f32"
[[runs]]
label = "demon momentum f64 warm-up"
model = {{ dtype = "float64" }}
optimizer = {{ name = "demon_momentum", lr = 0.05 }}
schedule = {{ name = "cosine", T_max = {epochs}, warmup = 20 }}
[[runs]]
label = "nesterov f32 step"
optimizer = {{ name = "nesterov", lr = 0.05 }}
schedule = {{ name = "step", step_size = 50, gamma = 0.5 }}
[[runs]]
label = "muon f32 cosine"
optimizer = {{ name = "muon", lr = 0.02, rest = {{ name = "adamw", lr = 0.01 }} }}
schedule = {{ name = "cosine", T_max = {epochs} }}
[[runs]]
label = "lbfgs f64 full batch"
model = {{ dtype = "float64" }}
optimizer = {{ name = "lbfgs", line_search_fn = "strong_wolfe", history_size = 10 }}
train = {{ batch_size = 0 }}
"""
EPOCHS = 400
ENV = {**os.environ, "TUILAB_PATH": "1 thread"}  # one path for every process: the same last digits


def tuilab(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tuilab", *args], capture_output=True, text=True, env=ENV,
                          timeout=600, **kw)


def params(folder):
    out = {}
    for p in sorted(folder.glob("*/params.npz")):
        with np.load(p) as z:
            out[p.parent.name] = z["theta"].copy()
    return out


def metrics(folder):
    rows = list(csv.DictReader((folder / "metrics.csv").read_text().splitlines()))
    keep = ("run", "epoch", "step", "train_loss", "val_loss", "val_accuracy", "lr", "grad_norm_1")
    return [{k: r[k] for k in keep} for r in rows]


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "trial.toml"
    path.write_text(PRESET.format(epochs=EPOCHS))
    return path


@pytest.fixture(scope="module")
def reference(preset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "r"
    r = tuilab("--preset", str(preset), "--out", str(out), "headless")
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("jobs", [1, 2])
def test_killed_at_random_moments_then_resumed_ends_bit_identical(preset, reference, tmp_path, jobs):
    ref_params, ref_rows = params(reference), metrics(reference)
    assert len(ref_params) == 5 and len(ref_rows) == 5 * EPOCHS
    rng = random.Random(7 + jobs)
    for trial in range(2):  # 3 until the suite neared 10 minutes in CI (2026-12-05): 4 random kills in all
        out = tmp_path / f"k{trial}"
        p = subprocess.Popen([sys.executable, "-m", "tuilab", "--preset", str(preset), "--out", str(out),
                              "--jobs", str(jobs), "headless"], env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(1.5, 4.0))
        os.killpg(p.pid, signal.SIGKILL)  # the jobs too, as a crash or an out-of-memory kill would
        p.wait(timeout=30)
        if not (out / "config.toml").exists():
            continue
        r = tuilab("resume", str(out), "--jobs", str(jobs))
        assert r.returncode == 0, r.stderr
        got = params(out)
        assert got.keys() == ref_params.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], ref_params[name], err_msg=f"{name}, trial {trial}")
        rows = sorted(metrics(out), key=lambda m: (int(m["run"]), int(m["epoch"])))
        assert rows == sorted(ref_rows, key=lambda m: (int(m["run"]), int(m["epoch"])))  # none lost, none twice


def test_resume_of_a_finished_experiment_does_nothing(reference):
    r = tuilab("resume", str(reference))
    assert r.returncode == 0 and "nothing to resume" in r.stdout


def test_resume_of_a_folder_without_records_is_one_line(tmp_path):
    r = tuilab("resume", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no tuilab records" in r.stderr
