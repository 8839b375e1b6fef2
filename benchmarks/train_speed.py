"""Seconds per training epoch, tuilab beside PyTorch CPU, on 60,000 samples of 784 features.

    python benchmarks/train_speed.py            # table
    python benchmarks/train_speed.py --json     # the same as JSON
    python benchmarks/train_speed.py --cases a,d --runs 7

Each figure is the median of --runs epochs after one warm-up epoch (which includes
Numba's compilation, or loading it from cache).  Fair to PyTorch: it runs in its own
process (so the two libraries' thread pools never share the 2 cores), with its faster
of 1 and 2 threads, its own best loop (index a permutation, no DataLoader), the same
data in memory, and flush-to-zero on (torch.set_flush_denormal), as tuilab's kernels do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from _subprocess import json_from
from _torch_mlp import torch_mlp

N_SAMPLES, N_FEATURES, N_CLASSES = 60_000, 784, 10

# case -> (description, sizes, activation, init, batch, optimizer, hyperparameters, target)
CASES = {
    "a": ("[784,30,10] sigmoid, batch 10, SGD nesterov 0.8", [784, 30, 10], "sigmoid",
          "xavier_normal", 10, "nesterov", dict(lr=0.1, momentum=0.8), 15.0),
    "b": ("[784,30,10] sigmoid, batch 128, Adam 1e-3", [784, 30, 10], "sigmoid",
          "xavier_normal", 128, "adam", dict(lr=1e-3), 2.5),
    "c": ("[784,30x8,10] relu kaiming, batch 64, SGD momentum 0.9", [784] + [30] * 8 + [10],
          "relu", "kaiming_uniform", 64, "momentum", dict(lr=0.01, momentum=0.9), 5.0),
    "d": ("[784,256,128,10] relu, batch 128, Adam", [784, 256, 128, 10], "relu",
          "kaiming_uniform", 128, "adam", dict(lr=1e-3), 1.3),
}


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((N_SAMPLES, N_FEATURES), dtype=np.float32)
    labels = rng.integers(0, N_CLASSES, N_SAMPLES)
    return X, labels


def time_tuilab(case: str, runs: int, track: bool = False) -> list[float]:
    """Epoch times; with track, also each layer's gradient norm per step and the sampled steps' update
    norms (the internals), as the Trainer does."""
    from tuilab.engine.nn.internals import step_norms_buffer
    from tuilab.engine.nn.model import MLP
    from tuilab.engine.nn.optim import Optimizer
    from tuilab.engine.training.fit import steps_per_epoch, train_steps

    _, sizes, act, init, batch, opt_name, hyper, _ = CASES[case]
    X, labels = make_data()
    Y = np.eye(N_CLASSES, dtype=np.float32)[labels]
    net = MLP(sizes, act)
    theta = net.init(init, seed=0)
    opt = Optimizer(opt_name, theta.size, np.float32, **hyper)
    lrs = np.full(steps_per_epoch(N_SAMPLES, batch), opt.lr)
    rng = np.random.default_rng(1)
    times = []
    for _ in range(runs + 1):
        order = rng.permutation(N_SAMPLES)
        t0 = time.perf_counter()
        grad_sq = step_norms_buffer(len(lrs), len(sizes) - 1) if track else None
        train_steps(net, opt, theta, X, Y, order, 0, lrs, batch, grad_sq)
        times.append(time.perf_counter() - t0)
    return times[1:]


def time_torch(case: str, runs: int, threads: int) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    _, sizes, act, _, batch, opt_name, hyper, _ = CASES[case]
    X_np, labels_np = make_data()
    X, y = torch.from_numpy(X_np), torch.from_numpy(labels_np)
    model = torch_mlp(sizes, act)
    if case in ("a", "c"):
        init = torch.nn.init.xavier_normal_ if act == "sigmoid" else torch.nn.init.kaiming_uniform_
        for m in model:
            if isinstance(m, torch.nn.Linear):
                init(m.weight)
                torch.nn.init.zeros_(m.bias)
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=hyper["lr"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=hyper["lr"], momentum=hyper["momentum"],
                              nesterov=opt_name == "nesterov")
    loss_fn = torch.nn.functional.cross_entropy
    gen = torch.Generator().manual_seed(1)
    times = []
    for _ in range(runs + 1):
        perm = torch.randperm(N_SAMPLES, generator=gen)
        t0 = time.perf_counter()
        for start in range(0, N_SAMPLES, batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def torch_in_subprocess(case: str, runs: int, threads: int) -> tuple[list[float] | None, str]:
    """(epoch times, "") or (None, the last line the failed PyTorch run printed)."""
    return json_from([sys.executable, __file__, "--worker", "torch", "--cases", case, "--runs", str(runs),
                      "--threads", str(threads)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="a,b,c,d", help="comma-separated, from a,b,c,d")
    p.add_argument("--runs", type=int, default=5, help="timed epochs per library and case")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad:
        p.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    if args.worker == "torch":
        print(json.dumps(time_torch(cases[0], args.runs, args.threads)))
        return 0

    rows = []
    torch_error = ""
    for case in cases:
        ours = statistics.median(time_tuilab(case, args.runs))
        tracked = statistics.median(time_tuilab(case, args.runs, track=True))
        best = None
        for threads in (1, 2):
            t, torch_error = torch_in_subprocess(case, args.runs, threads)
            if t is None:
                break
            med = statistics.median(t)
            if best is None or med < best[0]:
                best = (med, threads)
        torch_s = best[0] if best else None
        rows.append({
            "case": case,
            "tuilab_s": round(ours, 4),
            "tuilab_tracked_s": round(tracked, 4),
            "torch_s": round(torch_s, 4) if torch_s else None,
            "torch_threads": best[1] if best else None,
            "speedup": round(torch_s / ours, 2) if torch_s else None,
            "target": CASES[case][-1],
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'case':<5}{'network':<58}{'tuilab s':>9}{'torch s':>9}{'speed-up':>10}{'target':>8}"
          f"{'as Trainer':>12}")
    for r in rows:
        torch_s = f"{r['torch_s']:.3f}" if r["torch_s"] else "-"
        speed = f"{r['speedup']:.1f}x" if r["speedup"] else "-"
        print(f"{r['case']:<5}{CASES[r['case']][0]:<58}{r['tuilab_s']:>9.3f}{torch_s:>9}"
              f"{speed:>10}{r['target']:>7.1f}x{r['tuilab_tracked_s']:>12.3f}")
    print(f"seconds per epoch of {N_SAMPLES:,} samples, median of {args.runs}; "
          "PyTorch at its faster of 1 and 2 threads;\n'as Trainer': tuilab also recording each "
          "layer's gradient norm every step and the internals' update norms on 33 steps an epoch, as the "
          "Trainer (dashboard, headless) does")
    if torch_error:
        print(f"PyTorch did not run ({torch_error}); `pip install torch==2.13.0` for its column.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
