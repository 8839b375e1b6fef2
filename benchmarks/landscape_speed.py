"""How long a network's loss landscape takes (tuilab landscape, issue 30): an N x N plane of training losses
over R rows, tuilab (one thread, and all this machine's cores) beside PyTorch CPU doing the same the plain way
(each point's parameters set, a forward pass under no_grad), over a grid of network shapes.

    python benchmarks/landscape_speed.py                 # 31 x 31, 2,000 rows
    python benchmarks/landscape_speed.py --grid 51 --rows 5000

Random data and parameters of each shape (the cost does not depend on them); float32; cross-entropy. A figure is
the best of --repeat of the whole plane, in seconds; speed-up = PyTorch's seconds over tuilab's (all cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _torch_mlp import torch_mlp

SHAPES = [
    ([2, 64, 64, 2], "relu"),  # spirals
    ([784, 30, 10], "sigmoid"),  # shallow-sigmoid
    ([784, 100, 10], "sigmoid"),
    ([784, *[30] * 8, 10], "sigmoid"),  # deep-sigmoid
    ([784, 256, 128, 10], "relu"),
    ([784, 1024, 10], "relu"),
]


def tuilab_seconds(sizes, act, X, Y, grid, threads, repeat) -> float:
    from tuilab.engine.nn.landscape import Plane, losses_on_plane
    from tuilab.engine.nn.model import MLP

    net = MLP(sizes, act, "softmax", "cross_entropy", "float32")
    theta = net.init("kaiming_uniform" if act == "relu" else "xavier_normal", "zeros", 0).astype(np.float64)
    rng = np.random.default_rng(1)
    plane = Plane("bench", theta, rng.normal(size=theta.shape) * 0.01, rng.normal(size=theta.shape) * 0.01)
    axis = np.linspace(-1, 1, grid)
    coords = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    losses_on_plane(net, plane, coords[:2], X, Y, threads)  # compiles or loads the kernel
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        losses_on_plane(net, plane, coords, X, Y, threads)
        best = min(best, time.perf_counter() - t)
    return best


def torch_seconds(sizes, act, X, Y, grid, repeat) -> float:
    import torch

    model = torch_mlp(sizes, act)
    params = list(model.parameters())
    origin = [p.detach().clone() for p in params]
    d1 = [torch.randn_like(p) * 0.01 for p in params]
    d2 = [torch.randn_like(p) * 0.01 for p in params]
    x, y = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
    axis = np.linspace(-1, 1, grid)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        with torch.no_grad():
            for b in axis:
                for a in axis:
                    for p, o, u, v in zip(params, origin, d1, d2, strict=True):
                        p.copy_(o + float(a) * u + float(b) * v)
                    torch.nn.functional.cross_entropy(model(x), y)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=31)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from tuilab.engine.training.threads import available_cpus

    cores = available_cpus()
    try:
        import torch

        torch.set_num_threads(cores)
        have_torch = True
    except ImportError:
        have_torch = False
    rng = np.random.default_rng(0)
    print(f"{args.grid}x{args.grid} plane, {args.rows} rows, float32, best of {args.repeat}; {cores} cores")
    print(f"{'network':<28}{'params':>10}{'tuilab 1 thread':>17}{f'tuilab {cores}':>11}"
          f"{'torch':>9}{'speed-up':>10}")
    for sizes, act in SHAPES:
        X = rng.random((args.rows, sizes[0]), dtype=np.float32)
        Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], args.rows)]
        n = sum(sizes[k] * sizes[k + 1] + sizes[k + 1] for k in range(len(sizes) - 1))
        one = tuilab_seconds(sizes, act, X, Y, args.grid, 1, args.repeat)
        every = tuilab_seconds(sizes, act, X, Y, args.grid, cores, args.repeat)
        ref = torch_seconds(sizes, act, X, Y, args.grid, args.repeat) if have_torch else float("nan")
        name = "-".join(map(str, sizes)) if len(sizes) < 6 else f"{sizes[0]}-30x{len(sizes) - 2}-{sizes[-1]}"
        print(f"{name + ' ' + act:<28}{n:>10,}{one:>16.2f}s{every:>10.2f}s{ref:>8.2f}s{ref / every:>9.1f}x")
    print("seconds for the whole plane; speed-up: torch over tuilab on all cores")


if __name__ == "__main__":
    main()
