"""Sweeps on Dask, with real components: a distributed.LocalCluster of worker processes, and a
`dask scheduler` with two `dask worker` processes on 127.0.0.1. Their records equal a local run's
bit for bit; a worker killed mid-sweep costs a retry, not the sweep; Ctrl+C keeps every epoch."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # a dependency of distributed

from tests.test_data import make_image_set  # noqa: E402

ENV = {**os.environ, "TUILAB_PATH": "1 thread"}  # one path in every process: the same last digits
SWEEP = """
title = "cluster trial"
[data]
name = "{data}"
n_samples = 400
[model]
hidden = [16]
activation = "tanh"
[optimizer]
name = "sgd"
[train]
epochs = {epochs}
batch_size = 32
[sweep]
"optimizer.lr" = [1e-5, 0.05, 0.3]
"train.seed" = [0, 1]
{extra}
"""
HALVING = 'prune = "halving"\nrung_epochs = 2\nkeep = 0.5'


def tuilab(*args, env=ENV, timeout=300):
    return subprocess.run([sys.executable, "-m", "tuilab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def preset(folder, data="spirals", epochs=8, extra=HALVING):
    path = folder / "sweep.toml"
    path.write_text(SWEEP.format(data=data, epochs=epochs, extra=extra))
    return path


def records(folder):
    """Everything a run leaves but its timings: rows by (run, epoch), params, confusion, statuses."""
    rows = list(csv.DictReader((folder / "metrics.csv").read_text().splitlines()))
    for r in rows:
        r.pop("seconds"), r.pop("samples_per_second")
    rows.sort(key=lambda r: (int(r["run"]), int(r["epoch"])))
    params = {}
    for p in sorted(folder.glob("*/params.npz")):
        with np.load(p) as z:
            params[p.parent.name] = z["theta"].tobytes()
    summary = json.loads((folder / "summary.json").read_text())
    statuses = [(r["label"], r["status"], r["epochs_done"], r.get("settings")) for r in summary["runs"]]
    confusion = sorted((folder / "confusion.csv").read_text().splitlines())
    snaps = {}  # each run's parameter snapshots (issue 30): from a task's state on Dask, written by its worker here
    for p in sorted(folder.glob("*/snapshots.npz")):
        with np.load(p) as z:
            snaps[p.parent.name] = (z["epochs"].tolist(), z["theta"].tobytes())
    return rows, params, statuses, confusion, summary["sweep"], snaps


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref")
    r = tuilab("--preset", str(preset(folder)), "--out", str(folder / "r"), "headless")
    assert r.returncode == 0, r.stderr
    return folder / "r"


@pytest.mark.parametrize("where, said", [(["--cluster", "local:2"], "a local Dask cluster of 2 workers"),
                                         (["--jobs", "2"], "2 local processes")])
def test_workers_write_the_records_of_a_local_run_bit_for_bit(where, said, local_reference, tmp_path):
    """Local processes write their own rows and checkpoints (shares_files); a Dask cluster's go through the
    client. With halving, each rung's next task of a run once passed for the scheduler running a lost worker's
    task again: a false 'worker was lost', and metrics.csv rewritten under the local processes' appends, which
    lost rows (14 of 26)."""
    r = tuilab("--preset", str(preset(tmp_path)), "--out", str(tmp_path / "c"), *where, "headless")
    assert r.returncode == 0, r.stderr
    assert f"training on {said}" in r.stderr
    assert "halving at epoch 2" in r.stderr and "pruned" in r.stdout
    assert "lost" not in r.stderr
    ours, ref = records(tmp_path / "c"), records(local_reference)
    assert len(ours[0]) == len(ref[0]) > 6
    assert len(ours[5]) == 6 and all(e[0] == 0 for e, _ in ours[5].values())  # every run's snapshots, from θ0
    assert ours == ref
    assert len(list((tmp_path / "c").glob("*/checkpoint.npz"))) == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; stopped at the end. The
    workers have no data sets beyond what any machine has (no $TUILAB_DATA, a cache of their own)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in ENV.items() if k != "TUILAB_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "worker-cache")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the scheduler did not start"
                time.sleep(0.2)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--host",
                 "127.0.0.1", "--no-dashboard", "--death-timeout", "60"], env=env, cwd=tmp_path,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_sweep_through_a_running_scheduler_and_workers(scheduler, local_reference, tmp_path):
    r = tuilab("--preset", str(preset(tmp_path)), "--out", str(tmp_path / "s"), "--cluster", scheduler, "headless")
    assert r.returncode == 0, r.stderr
    assert f"2 Dask workers at {scheduler}" in r.stderr
    assert "lost" not in r.stderr  # each rung's next tasks are new spans, not retries
    assert records(tmp_path / "s") == records(local_reference)
    # the client wrote each run's checkpoint as it came back: these workers may be on other machines
    assert len(list((tmp_path / "s").glob("*/checkpoint.npz"))) == 6


def test_a_worker_without_the_data_set_gets_the_clients_copy_once(scheduler, tmp_path):
    make_image_set(tmp_path / "data" / "kmnist", n_train=60, n_test=20)
    env = {**ENV, "TUILAB_DATA": str(tmp_path / "data")}  # the client has kmnist; the workers do not
    r = tuilab("--preset", str(preset(tmp_path, data="kmnist", epochs=3, extra="")), "--out", str(tmp_path / "k"),
               "--cluster", scheduler, "headless", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("sending it the client's copy") == 1, r.stderr
    assert "(kmnist): completed" in r.stdout
    local = tuilab("--preset", str(preset(tmp_path, data="kmnist", epochs=3, extra="")), "--out",
                   str(tmp_path / "l"), "headless", env=env)
    assert local.returncode == 0
    assert records(tmp_path / "k")[:2] == records(tmp_path / "l")[:2]


def _rows_per_run(folder) -> dict:
    rows = list(csv.DictReader((folder / "metrics.csv").read_text().splitlines()))
    out: dict = {}
    for r in rows:
        out.setdefault(int(r["run"]), []).append(int(r["epoch"]))
    return out


def _started(args, tmp_path, **kw):
    """tuilab in the background, its output in files (a pipe nobody reads would fill and stop it)."""
    out, err = open(tmp_path / "stdout", "w+"), open(tmp_path / "stderr", "w+")
    return subprocess.Popen([sys.executable, "-m", "tuilab", *args], stdout=out, stderr=err, text=True, env=ENV,
                            **kw), out, err


def _finish(p, files, timeout):
    p.wait(timeout=timeout)
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read())
        f.close()
    return texts


def _dask_workers(p) -> list:
    """The worker processes of the LocalCluster that tuilab process `p` started (its nannies' children)."""
    return [c for c in psutil.Process(p.pid).children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]


def _wait_for_rows(folder, runs: int, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "metrics.csv").exists() and len(_rows_per_run(folder)) >= runs:
            return
        time.sleep(0.2)
    raise AssertionError("no rows came")


def _two_runs_on_a_local_cluster(tmp_path, out, epochs):
    """Two long runs of full-batch epochs (one each for the two workers), in the background."""
    return _started(["--preset", str(preset(tmp_path, epochs=epochs, extra="")), "--set", "train.batch_size=400",
                     "--sweep", "train.seed=[0]", "--sweep", "optimizer.lr=[0.05, 0.3]",
                     "--out", str(out), "--cluster", "local:2", "headless"], tmp_path)


def test_a_worker_killed_mid_sweep_costs_a_retry_not_the_sweep(tmp_path):
    out = tmp_path / "k"
    # long enough that the kill lands mid-run: 1,500 full-batch epochs of this net take a fraction of a
    # second, and a kill that came after both runs ended was seen in CI (no retry to speak of)
    p, *files = _two_runs_on_a_local_cluster(tmp_path, out, 6000)
    try:
        _wait_for_rows(out, 2)
        workers = _dask_workers(p)
        assert len(workers) == 2, [c.cmdline() for c in workers]
        workers[0].send_signal(signal.SIGKILL)
        stdout, stderr = _finish(p, files, 300)
    finally:
        p.kill()
    assert p.returncode == 0, stderr
    # the retry is said either way it comes: tuilab's, on the lost future, or the scheduler's own, whose new
    # attempt the client sees by its tag (waves.py); which comes first is Dask's race (seen both in CI)
    assert ("trying it again from the start" in stderr
            or "the scheduler runs it again from the start on another worker" in stderr), stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["completed", "completed"]
    # every epoch once: the lost try's rows gave way to the retry's
    assert _rows_per_run(out) == {0: list(range(1, 6001)), 1: list(range(1, 6001))}


def test_a_run_whose_worker_dies_twice_is_recorded_as_failed_with_its_epochs(tmp_path):
    out = tmp_path / "k"
    p, *files = _two_runs_on_a_local_cluster(tmp_path, out, 4000)
    try:
        _wait_for_rows(out, 2)
        first = _dask_workers(p)[0]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        deadline = time.monotonic() + 120
        while "trying it again" not in (tmp_path / "stderr").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        said = (tmp_path / "stderr").read_text().split("trying it again")[0].rsplit("\n", 1)[-1]
        retried = 0 if said.startswith("tuilab: warning: lr=0.05") else 1
        label = ("lr=0.05 seed=0", "lr=0.3 seed=0")[retried]
        # its second try is under way: begun again, with rows of its own
        while ((tmp_path / "stderr").read_text().count(f"{label}: sgd on") < 2
               or len(_rows_per_run(out).get(retried, [])) < 5):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for w in _dask_workers(p):  # both: the retried run's second loss, the other's first
            w.send_signal(signal.SIGKILL)
        stdout, stderr = _finish(p, files, 300)
    finally:
        p.kill()
    assert p.returncode == 1, stderr
    assert "recorded as failed" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    rows = _rows_per_run(out)
    failed = summary["runs"][retried]
    assert failed["status"] == "failed" and summary["status"] == "failed"
    assert rows[retried] == list(range(1, failed["epochs_done"] + 1)) and failed["epochs_done"] >= 5
    assert summary["runs"][1 - retried]["status"] == "completed" and rows[1 - retried] == list(range(1, 4001))


@pytest.mark.parametrize("where", [["--jobs", "2"], ["--cluster", "local:2"]])
def test_ctrl_c_mid_sweep_keeps_every_finished_epoch(where, tmp_path):
    out = tmp_path / "c"
    # 100,000 epochs: runs of 5,000 (0.4 s each) sometimes ended before the Ctrl+C below, and none was left to be
    # stopped mid-way ("stopped after" never said; found 2026-12-04 by printing the summary of a failing try)
    p, *files = _started(["--preset", str(preset(tmp_path, epochs=100_000, extra="")), "--out", str(out), *where,
                          "headless"], tmp_path, start_new_session=True)
    try:
        _wait_for_rows(out, 2)
        time.sleep(1)
        os.killpg(p.pid, signal.SIGINT)  # as a terminal does: to the whole process group
        stdout, stderr = _finish(p, files, 60)
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr[max(0, stderr.find("Traceback") - 500):][:4000]
    assert "stopped after" in stderr, (out / "summary.json").read_text()
    summary = json.loads((out / "summary.json").read_text())
    for run in summary["runs"]:  # a run the stop came before says so, where it said nothing before
        if run["epochs_done"] == 0:
            assert f"{run['label']}: not begun" in stderr, stderr[-2000:]
    if any(run["epochs_done"] == 0 for run in summary["runs"]):
        assert f"tuilab resume {out} trains what did not finish" in stderr
    assert summary["status"] == "interrupted"
    rows = _rows_per_run(out)
    for i, run in enumerate(summary["runs"]):
        epochs = rows.get(i, [])
        assert epochs == list(range(1, len(epochs) + 1))
        assert run["epochs_done"] == len(epochs), (run, len(epochs))
    assert sum(len(e) > 0 for e in rows.values()) >= 2


def test_a_cluster_that_cannot_be_reached_is_one_line_within_ten_seconds(tmp_path):
    for address, words in ((f"tcp://127.0.0.1:{_free_port()}", "no Dask scheduler answered"),
                           ("local:two", "local:N"), ("scheduler:8786", "tcp://HOST:PORT")):
        began = time.monotonic()
        r = tuilab("--preset", "xor", "--out", str(tmp_path / "x"), "--cluster", address, "headless")
        assert r.returncode == 2 and time.monotonic() - began < 10
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], r.stderr
        assert not (tmp_path / "x").exists()  # said before any record


def test_without_dask_the_cluster_option_says_how_to_install_it(monkeypatch):
    from tuilab.engine.training import executors
    from tuilab.errors import TuilabError

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(TuilabError, match=r'pip install -e ".*\[cluster\]"'):
        executors.check_cluster_address("local:2")


def test_the_dashboard_trains_a_sweep_on_a_local_cluster(tmp_path):
    """Under Textual, stderr has no file descriptor: the nannies' processes must start all the same."""
    import asyncio

    from tuilab.app.app import make_app

    async def drive():
        app = make_app("xor", [("train.epochs", 5)], sweeps=[("optimizer.lr", (0.1, 0.5))], out_root=tmp_path,
                       cluster="local:2")
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                await pilot.pause(0.2)
                snap = app.lives[0].snapshot() if app.lives else None
                if snap is not None and (snap.error or all(r.finished for r in snap.runs)):
                    break
            return snap

    snap = asyncio.run(drive())
    assert snap.error is None and [r.status for r in snap.runs] == ["completed", "completed"]
    assert [r.epoch for r in snap.runs] == [5, 5]  # the workers' epochs reached the screen
    assert any("local Dask cluster" in n for n in snap.notices)


def test_a_local_cluster_starts_every_worker_before_the_first_task():
    """--cluster local:N counted its workers, and handed out tasks, before all had joined (a local:16 said 5)."""
    from tuilab.engine.training.executors import DaskCluster

    c = DaskCluster("local:2")
    try:
        assert len(c.client.scheduler_info()["workers"]) == 2 and c.describe() == "a local Dask cluster of 2 workers"
    finally:
        c.close()


def test_a_scheduler_without_workers_is_one_line(monkeypatch, tmp_path):
    """A running scheduler with no worker: it waits (here 2 s) for one to join, then says so; it never hangs."""
    from tuilab.engine.training import executors
    from tuilab.errors import TuilabError

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", str(port), "--no-dashboard"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:  # until it listens
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the scheduler never listened"
            time.sleep(0.2)
        monkeypatch.setattr(executors, "WORKERS_SECONDS", 2)
        with pytest.raises(TuilabError, match="the scheduler has no workers .*dask worker"):
            executors.DaskCluster(address)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
