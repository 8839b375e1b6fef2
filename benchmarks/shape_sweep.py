"""Training speed over a grid of shapes, tuilab beside PyTorch CPU, in one run.

    python benchmarks/shape_sweep.py             # every cell (about 10 minutes on 2 cores)
    python benchmarks/shape_sweep.py --quick     # 10 cells, for a fast check
    python benchmarks/shape_sweep.py --json      # the same as JSON
    python benchmarks/shape_sweep.py --cells zoo,w2048

Each cell is a network (input, hidden widths, output), an activation, a batch size and an
optimizer: every network preset's own shape, then widths 16 to 2048, depths 1 to 4 and 16,
batches 1 to 256, the four activations, nine optimizers (Muon and Adafactor, which work per
matrix, on a preset's shape too; Rprop and L-BFGS on full batches). Both libraries train on the
same random data of the cell's size (60,000 rows of 784 for MNIST-sized cells), as their
users would: tuilab through train_steps in chunks of about 0.1 s with every layer's
gradient norm recorded per step (what the Trainer does), after its first chunk (which
compiles or loads the kernels and, on first use of a shape, times the training paths);
PyTorch in its own process (so the libraries never share the cores), at its faster of
1 and 2 threads, its plain loop (index a permutation, zero_grad, forward, backward,
step), flush-to-zero on. A figure is samples per second, the median of --repeat windows
of about --seconds each; speed-up = tuilab's over PyTorch's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
from _subprocess import json_from
from _torch_mlp import torch_mlp

MNIST = (784, 10, 60_000)
# name -> (input, hidden, output, rows, activation, batch (0: full), optimizer)
CELLS: dict[str, tuple] = {}


def _cell(name, hidden, act, batch, opt, data=MNIST):
    n_in, n_out, rows = data
    CELLS[name] = (n_in, list(hidden), n_out, rows, act, batch, opt)


# every network preset's own shape
_cell("shallow-sigmoid", [30], "sigmoid", 10, "sgd")  # lr-sweep's too
_cell("shallow-adam", [30], "sigmoid", 10, "adam")
_cell("deep-sigmoid", [30] * 8, "sigmoid", 32, "sgd")
_cell("deep-relu", [30] * 8, "relu", 32, "sgd")
_cell("zoo", [128, 64], "relu", 64, "adam")  # optimizer-zoo
_cell("jax-mlp", [512, 512], "relu", 128, "sgd")
_cell("tapered-relu", [512, 256, 128, 64], "relu", 128, "adam")
_cell("spirals", [64, 64], "relu", 32, "adam", (2, 2, 1_600))
_cell("xor", [8, 4], "sigmoid", 4, "rmsprop", (2, 2, 4))
_cell("digit-regression", [21], "sigmoid", 0, "sgd", (64, 10, 1_400))
# widths, one hidden layer
for w in (16, 64, 256, 1024, 2048):
    _cell(f"w{w}", [w], "relu", 64, "adam")
# depths at width 128, and a 16-deep net
for d in (1, 2, 3, 4):
    _cell(f"depth{d}", [128] * d, "relu", 64, "momentum")
_cell("depth16", [64] * 16, "relu", 64, "momentum")
# batch sizes
for b in (1, 8, 32, 64, 128, 256):
    _cell(f"batch{b}", [128], "tanh", b, "adam")
# activations
for a in ("sigmoid", "tanh", "relu", "gelu"):
    _cell(f"act-{a}", [256], a, 64, "nesterov")
# optimizers
for o in ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "asgd", "adafactor", "muon"):
    _cell(f"opt-{o}", [100], "relu", 32, o)
# the optimizers that work per matrix on a preset's shape (muon-vs-adamw), and Rprop on full batches
_cell("muon-vs-adamw", [128, 64], "relu", 128, "muon")
_cell("adafactor-zoo", [128, 64], "relu", 64, "adafactor")
_cell("rprop-full-batch", [64], "tanh", 0, "rprop", (64, 10, 1_400))
_cell("lbfgs-full-batch", [21], "sigmoid", 0, "lbfgs", (64, 10, 1_400))  # strong Wolfe: lbfgs-regression's net
# shapes users reported, and a few more corners
_cell("256x2-b32", [256, 256], "relu", 32, "adam")
_cell("128x3-gelu", [128, 128, 128], "gelu", 64, "adamw")
_cell("64x2-b64", [64, 64], "relu", 64, "adam")
_cell("case-b", [30], "sigmoid", 128, "adam")
_cell("case-d", [256, 128], "relu", 128, "adam")
_cell("1024x2-b256", [1024, 1024], "relu", 256, "adam")
_cell("2048-b128", [2048], "relu", 128, "sgd")
_cell("512-tanh-b8", [512], "tanh", 8, "momentum")
_cell("16x2-b1", [16, 16], "sigmoid", 1, "sgd")

QUICK = ["shallow-sigmoid", "deep-relu", "zoo", "jax-mlp", "spirals", "w2048", "depth16", "batch1",
         "act-gelu", "256x2-b32"]

HYPER = {"sgd": dict(lr=0.01), "momentum": dict(lr=0.01, momentum=0.9), "nesterov": dict(lr=0.01, momentum=0.9),
         "rmsprop": dict(lr=1e-3), "adam": dict(lr=1e-3), "adamw": dict(lr=1e-3, weight_decay=0.01),
         "asgd": dict(lr=0.01), "adafactor": dict(lr=0.01), "rprop": dict(lr=0.01),
         # muon's biases: AdamW at its defaults on both sides
         "muon": dict(lr=0.02), "lbfgs": dict(lr=1.0, line_search_fn="strong_wolfe")}


def describe(name: str) -> str:
    n_in, hidden, n_out, rows, act, batch, opt = CELLS[name]
    h = f"{hidden[0]}x{len(hidden)}" if len(set(hidden)) == 1 and len(hidden) > 2 else ",".join(map(str, hidden))
    return f"[{n_in},{h},{n_out}] {act} b{batch or rows} {opt}"


def make_data(name: str):
    n_in, _, n_out, rows, *_ = CELLS[name]
    rng = np.random.default_rng(0)
    X = rng.random((rows, n_in), dtype=np.float32)
    labels = rng.integers(0, n_out, rows)
    return X, labels


def _windows(train_for, repeat: int, seconds: float) -> list[float]:
    """Samples/s of `repeat` windows; train_for(seconds) trains about that long, returns (samples, s)."""
    train_for(min(seconds, 0.2))  # warm: compile or load, and the first-use timing of paths
    rates = []
    for _ in range(repeat):
        samples, dt = train_for(seconds)
        rates.append(samples / dt)
    return rates


def time_tuilab(name: str, repeat: int, seconds: float, internals: bool = True) -> list[float]:
    """Samples/s with each layer's gradient norm recorded per step and, with internals, each step's update
    and weight norms too (the update-to-weight ratios): as the Trainer records them by default."""
    from tuilab.engine.nn.model import MLP
    from tuilab.engine.nn.optim import Optimizer
    from tuilab.engine.training.fit import steps_per_epoch, train_steps

    n_in, hidden, n_out, rows, act, batch, opt_name = CELLS[name]
    batch = batch or rows
    X, labels = make_data(name)
    Y = np.eye(n_out, dtype=np.float32)[labels]
    net = MLP([n_in, *hidden, n_out], act)
    theta = net.init("xavier_normal" if act in ("sigmoid", "tanh") else "kaiming_uniform", seed=0)
    opt = Optimizer(opt_name, theta.size, np.float32, layout=net.layout, **HYPER[opt_name])
    spe = steps_per_epoch(rows, batch)
    rng = np.random.default_rng(1)
    from tuilab.engine.nn.internals import step_norms_buffer

    # an epoch's per-step norms as the Trainer keeps them: the internals measured on up to 33 steps of it
    state = {"order": rng.permutation(rows), "first": 0, "chunk": 8,
             "norms": step_norms_buffer(spe, net.layout.n_layers, internals)}

    def train_for(seconds):
        samples, spent = 0, 0.0
        while spent < seconds:
            if state["first"] >= spe:
                state["order"], state["first"] = rng.permutation(rows), 0
                state["norms"] = step_norms_buffer(spe, net.layout.n_layers, internals)
            n = min(state["chunk"], spe - state["first"])
            grad_sq = state["norms"][state["first"]:state["first"] + n]
            t0 = time.perf_counter()
            train_steps(net, opt, theta, X, Y, state["order"], state["first"], np.full(n, opt.lr), batch, grad_sq)
            dt = time.perf_counter() - t0
            spent += dt
            samples += min((state["first"] + n) * batch, rows) - state["first"] * batch
            state["first"] += n
            state["chunk"] = int(max(1, min(state["chunk"] * 4, n * 0.1 / max(dt, 1e-6))))  # as the Trainer
        return samples, spent

    return _windows(train_for, repeat, seconds)


class _MuonWithAdamW:
    """torch.optim.Muon on the weight matrices and AdamW on the biases, as torch's documentation sets it up
    (and as tuilab's muon does with its default rest)."""

    def __init__(self, params, lr):
        import torch

        self.opts = [torch.optim.Muon([p for p in params if p.ndim == 2], lr=lr),
                     torch.optim.AdamW([p for p in params if p.ndim != 2])]

    def zero_grad(self, set_to_none=True):
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        loss = closure() if closure is not None else None  # once: the gradient both optimizers step on
        for o in self.opts:
            o.step()
        return loss


def time_torch(name: str, repeat: int, seconds: float, threads: int) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    n_in, hidden, n_out, rows, act, batch, opt_name = CELLS[name]
    batch = batch or rows
    X_np, labels_np = make_data(name)
    X, y = torch.from_numpy(X_np), torch.from_numpy(labels_np)
    sizes = [n_in, *hidden, n_out]
    model = torch_mlp(sizes, act)
    h = HYPER[opt_name]
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=h["lr"]),
           "momentum": lambda p: torch.optim.SGD(p, lr=h["lr"], momentum=h["momentum"]),
           "nesterov": lambda p: torch.optim.SGD(p, lr=h["lr"], momentum=h["momentum"], nesterov=True),
           "rmsprop": lambda p: torch.optim.RMSprop(p, lr=h["lr"]),
           "adam": lambda p: torch.optim.Adam(p, lr=h["lr"]),
           "adamw": lambda p: torch.optim.AdamW(p, lr=h["lr"], weight_decay=h["weight_decay"]),
           "asgd": lambda p: torch.optim.ASGD(p, lr=h["lr"]),
           "adafactor": lambda p: torch.optim.Adafactor(p, lr=h["lr"]),
           "rprop": lambda p: torch.optim.Rprop(p, lr=h["lr"]),
           "muon": lambda p: _MuonWithAdamW(list(p), h["lr"]),
           "lbfgs": lambda p: torch.optim.LBFGS(p, lr=h["lr"], line_search_fn=h["line_search_fn"])}[opt_name](
               model.parameters())
    loss_fn = torch.nn.functional.cross_entropy
    gen = torch.Generator().manual_seed(1)
    state = {"perm": torch.randperm(rows, generator=gen), "start": 0}

    def train_for(seconds):
        samples = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(16):  # read the clock every few steps, as tuilab's chunks do
                if state["start"] >= rows:
                    state["perm"], state["start"] = torch.randperm(rows, generator=gen), 0
                idx = state["perm"][state["start"]:state["start"] + batch]
                def closure(idx=idx):  # L-BFGS calls it within its step; the rest once, before step
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(model(X[idx]), y[idx])
                    loss.backward()
                    return loss

                opt.step(closure)
                samples += len(idx)
                state["start"] += batch
        return samples, time.perf_counter() - t0

    return _windows(train_for, repeat, seconds)


def torch_in_subprocess(cells, repeat, seconds, threads) -> tuple[dict | None, str]:
    """{cell: samples/s} from one PyTorch process, or (None, the last line it printed)."""
    return json_from([sys.executable, __file__, "--worker", "torch", "--cells", ",".join(cells), "--repeat",
                      str(repeat), "--seconds", str(seconds), "--threads", str(threads)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"only {len(QUICK)} cells: {', '.join(QUICK)}")
    p.add_argument("--cells", help="comma-separated cell names (see --list)")
    p.add_argument("--list", action="store_true", help="print the cells and exit")
    p.add_argument("--repeat", type=int, default=3, help="timed windows per library and cell (tuilab: twice, with "
                                                                 "and without the internals in turns)")
    p.add_argument("--seconds", type=float, default=0.3, help="length of a window")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--verbose", action="store_true", help="say which training path tuilab chose per cell")
    p.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cells = QUICK if args.quick else list(CELLS)
    if args.cells:
        cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if bad:
        p.error(f"unknown cell(s) {', '.join(bad)}; --list shows them")
    if args.list:
        for c in cells:
            print(f"{c:<18}{describe(c)}")
        return 0
    if args.worker == "torch":
        print(json.dumps({c: statistics.median(time_torch(c, args.repeat, args.seconds, args.threads))
                          for c in cells}))
        return 0
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    ours, plain = {}, {}
    for c in cells:
        with_them, without = [], []
        for _ in range(2):  # in turns: the machine's drift between two runs was larger than the cost measured
            with_them += time_tuilab(c, args.repeat, args.seconds)
            without += time_tuilab(c, args.repeat, args.seconds, internals=False)
        ours[c], plain[c] = statistics.median(with_them), statistics.median(without)
        if not args.json:
            print(f"  tuilab {c}: {ours[c]:,.0f} samples/s ({plain[c]:,.0f} without the internals)",
                  file=sys.stderr, flush=True)
    torch_best: dict[str, tuple[float, int]] = {}
    torch_error = ""
    for threads in (1, 2):
        rates, torch_error = torch_in_subprocess(cells, args.repeat, args.seconds, threads)
        if rates is None:
            break
        for c, r in rates.items():
            if c not in torch_best or r > torch_best[c][0]:
                torch_best[c] = (r, threads)
    rows = []
    for c in cells:
        t = torch_best.get(c)
        rows.append({"cell": c, "network": describe(c), "tuilab_samples_per_s": round(ours[c]),
                     "torch_samples_per_s": round(t[0]) if t else None, "torch_threads": t[1] if t else None,
                     "speedup": round(ours[c] / t[0], 2) if t else None,
                     "internals_cost": round(plain[c] / ours[c] - 1, 3)})
    ups = [r["speedup"] for r in rows if r["speedup"]]
    summary = {"cells": len(rows), "geometric_mean": round(math.exp(statistics.fmean(map(math.log, ups))), 2)
               if ups else None, "minimum": min(ups) if ups else None,
               "below_1.5x": [r["cell"] for r in rows if r["speedup"] and r["speedup"] < 1.5]}
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=2))
        return 0
    print(f"{'cell':<18}{'network':<40}{'tuilab/s':>11}{'torch/s':>11}{'thr':>4}{'speed-up':>10}{'internals':>10}")
    for r in rows:
        torch_s = f"{r['torch_samples_per_s']:,}" if r["torch_samples_per_s"] else "-"
        speed = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        print(f"{r['cell']:<18}{r['network']:<40}{r['tuilab_samples_per_s']:>11,}{torch_s:>11}"
              f"{r['torch_threads'] or '-':>4}{speed:>10}{r['internals_cost']:>+10.0%}")
    if ups:
        print(f"{summary['cells']} cells; geometric mean {summary['geometric_mean']:.2f}x, minimum "
              f"{summary['minimum']:.2f}x; below 1.5x: {', '.join(summary['below_1.5x']) or 'none'}")
    costs = sorted(r["internals_cost"] for r in rows)
    print(f"internals: what recording them costs tuilab's speed, median {statistics.median(costs):+.0%}, "
          f"largest {costs[-1]:+.0%}")
    print("samples per second, median of", args.repeat, f"windows of {args.seconds} s; tuilab recording every "
          "layer's gradient norm and update-to-weight ratio per step (as the Trainer does); PyTorch at its faster "
          "of 1 and 2 threads (thr); internals: tuilab's time with them over without, less 1")
    if torch_error:
        print(f"PyTorch did not run ({torch_error}); `pip install torch==2.13.0` for its column.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
