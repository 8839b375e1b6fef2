"""100,000 Adam steps on Rosenbrock: tuilab's kernels beside the homework's NumPy loop and torch.optim.

    python benchmarks/surface_speed.py [--steps N] [--runs R]

Prints a table of seconds per run (best of R) and the final point of each: all of them
reach (1, 1); they part at ~1e-5 because 100k steps in the valley amplify rounding. A
"floor" row times the same Adam with everything in registers and nothing recorded: what
no descent loop can beat on this machine.
The NumPy loop is the homework's: Adam with betas (0.9, 0.99), lr 1e-3,
from (-4, -2), bias corrections as powers each step.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from tuilab.engine.surfaces.landscapes import descend, make_landscape


def numpy_adam(steps: int, lr: float = 1e-3, b1: float = 0.9, b2: float = 0.99, eps: float = 1e-8):
    w = np.array([-4.0, -2.0])
    m = np.zeros(2)
    v = np.zeros(2)
    for t in range(1, steps + 1):
        x, y = w
        g = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return w


def torch_adam(steps: int, lr: float = 1e-3):
    import torch

    torch.set_default_dtype(torch.float64)
    p = torch.tensor([-4.0, -2.0], requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr, betas=(0.9, 0.99))
    for _ in range(steps):
        opt.zero_grad()
        x, y = p[0], p[1]
        ((1 - x) ** 2 + 100 * (y - x * x) ** 2).backward()
        opt.step()
    return p.detach().numpy()


def register_floor():
    """Adam on Rosenbrock with every value in a register and nothing else: no records, no first-hit or
    blow-up test, no state arrays, the same update written plainly. No descent loop that keeps the
    optimizer's kernels can be faster; its time is the chain sqrt -> divide -> update that each step
    waits on (a floor for this machine, not a tuilab feature)."""
    from numba import njit

    @njit(error_model="numpy")
    def adam_in_registers(x, y, n, lr, b1, b2, eps):
        m0 = m1 = v0 = v1 = 0.0
        p1 = p2 = 1.0
        for _ in range(n):
            r = y - x * x
            g0 = -2.0 * (1.0 - x) - 400.0 * x * r
            g1 = 200.0 * r
            p1 *= b1
            p2 *= b2
            step = lr / (1.0 - p1)
            bc = math.sqrt(1.0 - p2)
            m0 = m0 * b1 + g0 * (1.0 - b1)
            m1 = m1 * b1 + g1 * (1.0 - b1)
            v0 = v0 * b2 + g0 * g0 * (1.0 - b2)
            v1 = v1 * b2 + g1 * g1 * (1.0 - b2)
            x = x - step * (m0 / (math.sqrt(v0) / bc + eps))
            y = y - step * (m1 / (math.sqrt(v1) / bc + eps))
        return np.array([x, y])

    adam_in_registers(-4.0, -2.0, 10, 1e-3, 0.9, 0.99, 1e-8)  # compile
    return lambda steps: adam_in_registers(-4.0, -2.0, steps, 1e-3, 0.9, 0.99, 1e-8)


def best_of(fn, runs: int):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    land = make_landscape("rosenbrock")
    descend(land, "adam", (-4.0, -2.0), 10, lr=1e-3, betas=(0.9, 0.99))  # compile or load the cache
    rows = [("tuilab (numba kernels)", *best_of(
        lambda: np.array(descend(land, "adam", (-4.0, -2.0), a.steps, lr=1e-3, betas=(0.9, 0.99)).final),
        a.runs))]
    floor = register_floor()
    rows.append(("floor: Adam in registers", *best_of(lambda: floor(a.steps), a.runs)))
    rows.append(("homework NumPy loop", *best_of(lambda: numpy_adam(a.steps), max(1, a.runs // 2))))
    try:
        rows.append(("torch.optim.Adam", *best_of(lambda: torch_adam(a.steps), 1)))
    except ImportError:
        print("(torch is not installed: pip install torch==2.13.0 for its row)")
    base = rows[0][1]
    print(f"{a.steps:,} Adam steps on Rosenbrock from (-4, -2), lr 1e-3, betas (0.9, 0.99)")
    print(f"{'':24s}{'seconds':>10s}{'ms':>10s}{'x tuilab':>10s}   final point")
    for name, secs, w in rows:
        print(f"{name:24s}{secs:>10.4f}{secs * 1e3:>10.2f}{secs / base:>10.1f}   ({w[0]:.9f}, {w[1]:.9f})")


if __name__ == "__main__":
    main()
