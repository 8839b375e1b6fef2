"""Atlases: many heavy-ball runs on Rosenbrock at once, tuilab's atlas beside PyTorch doing the same runs as
one batch of tensors (the fastest way PyTorch has: every cell a row, one vectorised step for all).

    python benchmarks/atlas_speed.py [--repeats R] [--quick]

Each case is cells x steps of heavy ball (v = mu v + g, theta -= lr v), lr on a log grid [1e-5, 1e-3], momentum
on [0, 0.99], from (-1.5, 2). tuilab's time is the atlas's own `seconds` (what atlas.npz records: every cell's
optimizer set up and all descents), at 1 thread and at this machine's cores, best of R; the first call of a
process also compiles the kernel, timed apart ("cold"). PyTorch runs the same arithmetic on (cells,) tensors
(no autograd: the gradient written out, as the kernel does), float64, at its default thread count; the
`agree` column is the largest difference between its final points and tuilab's where both converged.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.surfaces.atlas import run_atlas

CASES = [(100, 100, 1000), (32, 32, 10_000), (300, 300, 100), (10, 10, 100_000)]  # lr values, momenta, steps


def experiment(n_lr: int, n_mu: int, steps: int):
    doc = {"surface": {"name": "rosenbrock", "start": [-1.5, 2.0], "steps": steps},
           "runs": [{"label": "heavy ball", "optimizer": {"name": "momentum", "lr": 1e-4, "momentum": 0.9}}],
           "atlas": {"x": {"setting": "lr", "log": [1e-5, 1e-3], "n": n_lr},
                     "y": {"setting": "momentum", "lin": [0.0, 0.99], "n": n_mu}, "metric": "final_error"}}
    return build_experiment(doc, "atlas_speed", "atlas_speed")


def torch_heavy_ball(lrs: np.ndarray, mus: np.ndarray, steps: int):
    import torch

    lr, mu = np.meshgrid(lrs, mus)
    lr = torch.tensor(lr.ravel(), dtype=torch.float64)
    mu = torch.tensor(mu.ravel(), dtype=torch.float64)
    x = torch.full_like(lr, -1.5)
    y = torch.full_like(lr, 2.0)
    vx = torch.zeros_like(lr)
    vy = torch.zeros_like(lr)
    started = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            r = y - x * x
            gx = -2.0 * (1.0 - x) - 400.0 * x * r
            gy = 200.0 * r
            vx = mu * vx + gx
            vy = mu * vy + gy
            x = x - lr * vx
            y = y - lr * vy
    return time.perf_counter() - started, x.numpy(), y.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the first case only")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import torch

        torch_threads = torch.get_num_threads()
    except ImportError:
        torch = None
        torch_threads = 0
    print(f"heavy ball on Rosenbrock, float64, {cores} cores; PyTorch on {torch_threads} threads")
    head = (f"{'cells':>8} {'steps':>7} {'cold s':>7} {'1 thread s':>10} {f'{cores} threads s':>11} "
            f"{'ns/step':>8} {'torch s':>8} {'vs torch':>8} {'agree':>8}")
    print(head)
    print("-" * len(head))
    for n_lr, n_mu, steps in CASES[:1] if args.quick else CASES:
        exp = experiment(n_lr, n_mu, steps)
        started = time.perf_counter()
        run_atlas(exp, threads=1)
        cold = time.perf_counter() - started
        one = min(run_atlas(exp, threads=1).seconds for _ in range(args.repeats))
        runs = [run_atlas(exp, threads=cores) for _ in range(args.repeats)]
        best = min(runs, key=lambda a: a.seconds)
        cells = n_lr * n_mu
        ns = best.seconds / (cells * steps) * 1e9
        if torch is not None:
            t, tx, ty = min((torch_heavy_ball(best.values_0, best.values_1, steps) for _ in range(args.repeats)),
                            key=lambda r: r[0])
            ok = (best.status[0].ravel() == 0) & np.isfinite(tx) & np.isfinite(ty)
            agree = max(np.abs(tx[ok] - best.final_x[0].ravel()[ok]).max(initial=0.0),
                        np.abs(ty[ok] - best.final_y[0].ravel()[ok]).max(initial=0.0))
            tail = f"{t:>8.3f} {t / best.seconds:>7.1f}x {agree:>8.1e}"
        else:
            tail = f"{'-':>8} {'-':>8} {'-':>8}"
        print(f"{cells:>8,} {steps:>7,} {cold:>7.2f} {one:>10.3f} {best.seconds:>11.3f} {ns:>8.1f} {tail}")
    print("cold: the first call in this process, compiling the kernel (or loading it from numba's cache) and running")


if __name__ == "__main__":
    main()
