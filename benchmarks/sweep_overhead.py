"""What a sweep pays to run where it runs: 24 runs of the shallow sigmoid net on Fashion-MNIST
(6 learning rates x 4 seeds, a few epochs each) in this process, on 2 local processes, on a
`--cluster local:2` and through a `dask scheduler` with two `dask worker` processes on 127.0.0.1;
then Dask at full width (issue 31): a 32-run spirals sweep (8 learning rates x 4 seeds) on N local
processes against a `--cluster local:N`, N = 1, 2, 4, 16 up to this machine's cores.

    python benchmarks/sweep_overhead.py [--epochs 3] [--data-dir DIR] [--spirals-epochs 300] [--part both]

Wall time is the whole command (start-up, data, kernels from numba's cache, records; the
scheduler and its workers are started before the clock, as a running cluster is). The overhead
per run is the worker-seconds not spent in training steps, over the runs:
(wall x workers - the runs' training seconds) / runs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["--sweep", "optimizer.lr=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0]", "--sweep", "train.seed=[0, 1, 2, 3]"]


def run(where: list[str], epochs: int, data_dir: str | None, env=None) -> tuple[float, float, str]:
    out = Path(tempfile.mkdtemp()) / "r"
    cmd = [sys.executable, "-m", "tuilab", "--preset", "shallow-sigmoid", "--dataset", "fashion-mnist",
           "--strict-data", *SWEEP, "--epochs", str(epochs), "--out", str(out), *where, "headless"]
    if data_dir:
        cmd[4:4] = ["--data-dir", data_dir]
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        return wall, float("nan"), proc.stderr.strip().splitlines()[-1]
    summary = json.loads((out / "summary.json").read_text())
    trained = sum(r.get("train_seconds") or 0.0 for r in summary["runs"])
    return wall, trained, summary["status"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_scheduler(n_workers: int = 2):
    port = _port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    time.sleep(2)
    for _ in range(n_workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                       "1", "--host", "127.0.0.1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(address, timeout="30s") as c:
        c.wait_for_workers(n_workers, timeout=60)
    return address, procs


SPIRALS = ["--preset", "spirals", "--sweep", "optimizer.lr=[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]",
           "--sweep", "train.seed=[0, 1, 2, 3]"]


def spirals_wall(where: list[str], epochs: int) -> tuple[float, str]:
    out = Path(tempfile.mkdtemp()) / "s"
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tuilab", *SPIRALS, "--epochs", str(epochs), "--out", str(out),
                           *where, "headless"], capture_output=True, text=True)
    wall = time.perf_counter() - began
    said = next((line for line in proc.stderr.splitlines() if "training on" in line), "")
    return wall, (said.split("training on ")[-1] if proc.returncode == 0 else proc.stderr.strip()[-200:])


def full_width(epochs: int) -> None:
    """Dask against local processes at 1, 2, 4 and 16 workers (those this machine has cores for)."""
    from tuilab.engine.training.threads import available_cpus

    cores = available_cpus()
    print(f"\n32 runs: spirals 2-64-64-2, {epochs} epochs each (8 learning rates x 4 seeds); {cores} cores")
    print(f"{'workers':>8}{'--jobs N s':>12}{'local:N s':>11}{'ratio':>8}{'extra s/run':>13}  what Dask said")
    for n in [w for w in (1, 2, 4, 16) if w <= cores]:
        local, _ = spirals_wall(["--jobs", str(n)], epochs)
        dask, said = spirals_wall(["--cluster", f"local:{n}"], epochs)
        print(f"{n:>8}{local:>12.2f}{dask:>11.2f}{dask / local:>8.2f}{(dask - local) / 32:>13.3f}  {said}")
    print("--jobs 1 trains in this process (no worker to start); extra s/run: the wall's difference over 32 runs, "
          "the cluster's start (about 0.6 s) and its workers' first imports included")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data-dir")
    ap.add_argument("--spirals-epochs", type=int, default=300)
    ap.add_argument("--part", choices=("fashion", "spirals", "both"), default="both")
    args = ap.parse_args()
    if args.part != "fashion":
        full_width(args.spirals_epochs)
    if args.part == "spirals":
        return
    print(f"24 runs: shallow sigmoid 784-30-10 on Fashion-MNIST, {args.epochs} epochs each, batch 10; "
          f"{os.cpu_count()} cores")
    print(f"{'where':<34}{'workers':>8}{'wall s':>9}{'trained s':>11}{'overhead/run s':>16}  status")
    address, procs = start_scheduler()
    try:
        for name, where, workers in (("this process (--jobs 1)", [], 1),
                                     ("local processes (--jobs 2)", ["--jobs", "2"], 2),
                                     ("--cluster local:2", ["--cluster", "local:2"], 2),
                                     ("a scheduler + 2 workers", ["--cluster", address], 2)):
            wall, trained, status = run(where, args.epochs, args.data_dir)
            over = (wall * workers - trained) / 24
            print(f"{name:<34}{workers:>8}{wall:>9.1f}{trained:>11.1f}{over:>16.2f}  {status}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)


if __name__ == "__main__":
    main()
