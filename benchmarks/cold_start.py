"""What a cold start costs (issue 31): `tuilab --preset PRESET --epochs 1 headless` from an empty numba cache and
an empty path cache (NUMBA_CACHE_DIR and TUILAB_PATH_CACHE pointed at fresh folders), then again warm: the seconds
to the first epoch's line (a surface: to its end) and to the process's end; and, from another empty
cache, each kernel group's compile on its own: where the cold seconds go.

    python benchmarks/cold_start.py                  # spirals
    python benchmarks/cold_start.py --preset deep-relu
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

GROUPS = r'''
import time
t0 = time.perf_counter()
import numpy as np
from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training.paths import PATHS, Chunk, run_path
print(f"import\t{time.perf_counter() - t0:.1f}")
net = MLP([32, 2, 2], "relu", "softmax", "cross_entropy", "float32")
X = np.zeros((4, 32), net.dtype)
Y = np.eye(2, dtype=net.dtype)[[0, 1, 0, 1]]
theta = net.init("xavier_normal", "zeros", 0)
for name, path in PATHS.items():
    if path.fits(net, cores=2):
        opt = Optimizer("sgd", net.layout.size, net.dtype)
        t = time.perf_counter()
        run_path(path, Chunk(net, theta, opt.state, opt.scal, opt.hp, opt.opt_id, X, Y, np.arange(4), 0,
                             np.full(2, 0.1), 2, np.empty(2), np.zeros((2, 2))))
        print(f"training path {name}\t{time.perf_counter() - t:.1f}")
for name, call in (("evaluate", lambda: net.evaluate(theta, X, Y)), ("predict", lambda: net.predict(theta, X))):
    t = time.perf_counter()
    call()
    print(f"{name}\t{time.perf_counter() - t:.1f}")
from tuilab.engine.nn import health
t = time.perf_counter()
health.activation_health(net, theta, X)
print(f"activation health\t{time.perf_counter() - t:.1f}")
'''


def timed(cmd, env) -> tuple[float, float]:
    """Seconds to the first epoch's line, and to the process's end (which waits for a compile still going on
    in the background: the column split's, warmup.ensure_compiled)."""
    began = time.perf_counter()
    first = float("nan")
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            if first != first and ": epoch 1/" in line:
                first = time.perf_counter() - began
    end = time.perf_counter() - began
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return (end if first != first else first), end  # a surface prints its results at the end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="spirals")
    args = ap.parse_args()
    cache, paths, out = (tempfile.mkdtemp() for _ in range(3))
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "TUILAB_PATH_CACHE": os.path.join(paths, "paths.json")}
    from tuilab.engine.config.presets import find_preset, read_toml

    surface = "surface" in read_toml(find_preset(args.preset))  # its length is steps, not epochs
    one_epoch = [] if surface else ["--epochs", "1"]
    cmd = [sys.executable, "-m", "tuilab", "--preset", args.preset, *one_epoch, "--out", out, "headless"]
    cold, cold_end = timed(cmd, env)
    warm, warm_end = timed(cmd, env)
    print(f"tuilab --preset {args.preset} {' '.join(one_epoch)} headless: first epoch after cold {cold:.1f} s, "
          f"warm {warm:.1f} s (the process ended after {cold_end:.1f} s and {warm_end:.1f} s)")
    env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
    groups = subprocess.run([sys.executable, "-c", GROUPS], env=env, capture_output=True, text=True, check=True)
    print("each kernel group's compile from an empty cache, in the order a run asks for them (seconds):")
    for line in groups.stdout.splitlines():
        name, seconds = line.split("\t")
        print(f"  {name:<28}{seconds:>6}")


if __name__ == "__main__":
    main()
