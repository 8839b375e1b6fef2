"""What Muon's Newton-Schulz iterations cost, tuilab beside PyTorch's Muon, on the same layers, in one run.

    python benchmarks/muon_speed.py            # every layer shape
    python benchmarks/muon_speed.py --json

Muon orthogonalises each weight matrix's momentum with `ns_steps` (5) Newton-Schulz iterations, three
matrix products each: for an n x m matrix (n <= m) about 5 (4 n^2 m + 2 n^3) flops a step, more than the
whole forward and backward pass of a small batch. Per layer shape (torch's (out, in)): milliseconds per
orthogonalisation, tuilab's newton_schulz in float32 (numba, SciPy's BLAS, at its faster of 1 and 2
threads, the training paths' two settings) beside torch.optim._muon._zeropower_via_newtonschulz as
torch.optim.Muon calls it (in bfloat16) and the same iteration in float32, in a PyTorch process of
its own at its faster of 1 and 2 threads. The median of --repeat windows of about --seconds each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from _subprocess import json_from

# (out, in): the layers of the muon-vs-adamw and optimizer-zoo presets, the shape sweep's wide ones,
# and a square one
SHAPES = [(128, 784), (64, 128), (10, 64), (256, 784), (512, 512), (100, 784), (1024, 784), (784, 256)]
A, B, C = 3.4445, -4.7750, 2.0315


def _matrix(shape):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _time(call, repeat: int, seconds: float) -> float:
    call()
    rates = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            call()
            n += 1
        rates.append((time.perf_counter() - t0) / n)
    return statistics.median(rates) * 1e3


def time_tuilab(repeat: int, seconds: float) -> dict:
    """{shape: (ms, BLAS threads)} at the faster of 1 and 2 threads (the training paths' two settings)."""
    from tuilab.engine.training.threads import set_blas_threads
    from tuilab.kernels.optimizers import newton_schulz

    out = {}
    for threads in (1, 2):
        set_blas_threads(threads)
        for shape in SHAPES:
            U = _matrix(shape)
            ms = _time(lambda U=U: newton_schulz(U, A, B, C, 5, 1e-7), repeat, seconds)
            if str(shape) not in out or ms < out[str(shape)][0]:
                out[str(shape)] = (ms, threads)
    set_blas_threads(1)
    return out


def time_torch(repeat: int, seconds: float, threads: int) -> dict:
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz

    torch.set_num_threads(threads)

    def float32(G):
        X = G.T if G.size(0) > G.size(1) else G
        X = X / X.norm().clamp(min=1e-7)
        for _ in range(5):
            M = X @ X.T
            X = torch.addmm(X, torch.addmm(M, M, M, beta=B, alpha=C), X, beta=A)
        return X.T if G.size(0) > G.size(1) else X

    out = {}
    with torch.no_grad():
        for shape in SHAPES:
            G = torch.from_numpy(_matrix(shape))
            out[str(shape)] = {
                "bf16": _time(lambda G=G: _zeropower_via_newtonschulz(G, (A, B, C), 5, 1e-7), repeat, seconds),
                "f32": _time(lambda G=G: float32(G), repeat, seconds)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seconds", type=float, default=0.3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker == "torch":
        print(json.dumps(time_torch(args.repeat, args.seconds, args.threads)))
        return 0
    ours = time_tuilab(args.repeat, args.seconds)
    best: dict[str, dict] = {}
    error = ""
    for threads in (1, 2):
        got, error = json_from([sys.executable, __file__, "--worker", "torch", "--repeat", str(args.repeat),
                                "--seconds", str(args.seconds), "--threads", str(threads)])
        for shape, t in (got or {}).items():
            for kind, ms in t.items():
                if kind not in best.setdefault(shape, {}) or ms < best[shape][kind][0]:
                    best[shape][kind] = (ms, threads)
    rows = []
    for shape in SHAPES:
        key = str(shape)
        n, m = sorted(shape)
        t = best.get(key, {})
        rows.append({"shape": list(shape), "mflop": round(5 * (4 * n * n * m + 2 * n**3) / 1e6, 1),
                     "tuilab_ms": round(ours[key][0], 3), "tuilab_threads": ours[key][1],
                     "torch_bf16_ms": round(t["bf16"][0], 3) if "bf16" in t else None,
                     "torch_bf16_threads": t["bf16"][1] if "bf16" in t else None,
                     "torch_f32_ms": round(t["f32"][0], 3) if "f32" in t else None,
                     "torch_f32_threads": t["f32"][1] if "f32" in t else None})
    if args.json:
        print(json.dumps({"rows": rows, "torch_error": error or None}, indent=1))
        return 0
    print(f"{'layer (out, in)':<16}{'MFLOP':>8}{'tuilab ms':>11}{'thr':>4}{'torch bf16 ms':>15}{'thr':>4}"
          f"{'torch f32 ms':>14}{'thr':>4}{'vs bf16':>9}{'vs f32':>8}")
    def ratio(r, k):
        return f"{r[k] / r['tuilab_ms']:.2f}x" if r[k] else "-"

    for r in rows:
        print(f"{str(tuple(r['shape'])):<16}{r['mflop']:>8}{r['tuilab_ms']:>11.3f}{r['tuilab_threads']:>4}"
              f"{r['torch_bf16_ms'] or float('nan'):>15.3f}{r['torch_bf16_threads'] or '-':>4}"
              f"{r['torch_f32_ms'] or float('nan'):>14.3f}{r['torch_f32_threads'] or '-':>4}"
              f"{ratio(r, 'torch_bf16_ms'):>9}{ratio(r, 'torch_f32_ms'):>8}")
    print("ms per orthogonalisation (5 Newton-Schulz iterations), median of "
          f"{args.repeat} windows of {args.seconds} s; float32 but torch's bf16 (what torch.optim.Muon runs); each "
          "library at its faster of 1 and 2 threads (thr); 'vs' = torch's time over tuilab's")
    if error:
        print(f"PyTorch not measured: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
