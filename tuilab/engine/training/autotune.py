"""Choosing how a shape trains on this machine: time every path that fits, keep the fastest.

On first use of a shape (layer sizes, activations, loss, dtype, batch size and
the data's size, to the nearest power of two), each candidate of training.paths runs a few
steps on copies of the parameters and optimizer state with learning rate 0, in
alternating rounds so that a passing disturbance does not decide; the fastest of its
rounds counts. Nothing of the real run is touched, so the choice changes no result
beyond the rounding of the split. The choice is kept per machine in a JSON file beside
numba's cache and read back on later launches, so a shape is timed once. A path within
TIE of a simpler one (earlier in training.paths.PATHS) loses to it: two that time alike
should not make a run's digits depend on noise.

TUILAB_PATH=NAME (one of training.paths.PATHS) skips the timing and runs that path where it
fits; TUILAB_PATH_CACHE=FILE puts the cache elsewhere.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import threading
import time
from pathlib import Path as FsPath

import numpy as np

from tuilab.engine.nn.model import MLP
from tuilab.engine.training.kernel_choice import table_pending
from tuilab.engine.training.paths import PATHS, Chunk, Path, candidates, split_compiling
from tuilab.engine.training.threads import budget, numba_blas, set_blas_threads
from tuilab.errors import TuilabError
from tuilab.kernels.optimizers import needs_whole_tensors

log = logging.getLogger("tuilab.paths")

ROUNDS = 5
ROUND_SECONDS = 0.02  # one measurement: long enough to time, short beside a run
TIE = 0.05
MIN_STEPS = 4  # a call with fewer steps (a last short chunk) is not timed, unless a whole epoch is that short

_lock = threading.Lock()
_choices: dict[str, str] | None = None
_told: set[str] = set()  # keys whose choice --verbose has shown
_decided: dict[tuple, tuple] = {}  # choose's answers by network object and call


def cache_file() -> FsPath:
    if os.environ.get("TUILAB_PATH_CACHE"):
        return FsPath(os.environ["TUILAB_PATH_CACHE"])
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return FsPath(numba_dir) / "tuilab-paths.json"
    import tuilab.kernels

    return FsPath(tuilab.kernels.__file__).parent / "__pycache__" / "tuilab-paths.json"


def machine() -> str:
    """What the timings depend on besides the shape: the CPU, the cores we may use, the BLAS."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    blas = ",".join(f"{lib.internal_api}-{getattr(lib, 'version', '')}-{getattr(lib, 'architecture', '')}"
                    for lib in numba_blas())
    return f"{cpu}|{budget().total} cores|{blas}"


def shape_key(net: MLP, batch_size: int, X: np.ndarray, whole_tensors: bool = False) -> str:
    """What a path's speed depends on. Not the optimizer: its update is a small part of a step,
    and one path for all the runs of a comparison keeps them from slowing each other (OpenBLAS's
    threads spinning after a BLAS x2 chunk slow the next chunk of another path)."""
    size = 2 ** round(math.log2(max(X.nbytes, 1)))
    acts = ",".join(str(a) for a in net.acts)
    # an optimizer that must see whole matrices has fewer paths (no split): a choice of its own
    whole = "|whole tensors" if whole_tensors else ""
    return f"{net.dtype}|{'-'.join(map(str, net.sizes))}|{acts}|{net.loss}|batch{batch_size}|X{size}{whole}"


def _readable(c: Chunk) -> str:
    return (f"{list(map(int, c.net.sizes))} {'/'.join(dict.fromkeys(c.net.activations))} batch {c.batch_size} "
            f"{c.net.dtype}, {c.X.nbytes / 2**20:.0f} MB of rows")


def _load() -> dict[str, str]:
    global _choices
    if _choices is None:
        _choices = {}
        try:
            saved = json.loads(cache_file().read_text())
            if saved.get("machine") == machine():
                _choices = {k: v for k, v in saved.get("choices", {}).items() if v in PATHS}
        except (OSError, ValueError, AttributeError):
            pass  # no cache yet, or an unreadable one: time again
    return _choices


def _save() -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"machine": machine(), "choices": _choices}, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only install: the choice lives as long as the process


def forget() -> None:
    """Drop the choices held in memory (the file stays): the next shape is read or timed anew."""
    global _choices
    with _lock:
        _choices = None
        _decided.clear()


def forced() -> Path | None:
    name = os.environ.get("TUILAB_PATH")
    if not name:
        return None
    if name not in PATHS:
        raise TuilabError(f"TUILAB_PATH={name!r} is not a training path; choose from {', '.join(PATHS)}")
    return PATHS[name]


def choose(c: Chunk, max_cores: int | None = None) -> Path:
    """The path this chunk's shape trains on here (timed now if it never was), among those that
    keep at most max_cores busy (None: as many as the process has)."""
    cores = budget().total
    # a full-batch run calls once a step: what was decided for this network is looked up, not worked out
    # again (train_steps took 76 us a call, now 38, beside a kernel of 5 us on xor)
    memo = (id(c.net), c.batch_size, c.X.nbytes, max_cores, cores, os.environ.get("TUILAB_PATH"), c.opt_id)
    known = _decided.get(memo)
    if known is not None and known[0] is c.net:
        return known[1]
    path = _choose(c, cores, max_cores)
    if path is not None:
        if len(_decided) > 1000:
            _decided.clear()
        _decided[memo] = (c.net, path)  # the net is kept, so its id is not reused while here
        return path
    return PATHS["1 thread"]


def _choose(c: Chunk, cores: int, max_cores: int | None) -> Path | None:
    """choose's answer, or None for 'one thread this time, decide later'."""
    whole = needs_whole_tensors(c.opt_id)
    fits = candidates(c.net, min(cores, max_cores or cores), whole)
    wanted = forced()
    if wanted is not None:
        return wanted if wanted in fits else PATHS["1 thread"]
    if len(fits) == 1:
        return fits[0]
    key = shape_key(c.net, c.batch_size, c.X, whole)
    with _lock:
        name = _load().get(key)
    # a compile on another thread (warmup.compile_in_background) makes the machine busy, and a path that needs
    # its kernels cannot be timed yet: one thread meanwhile, and no choice kept
    pending = split_compiling() or table_pending()
    if name is not None and PATHS[name] in fits:
        if pending and PATHS[name].splits:
            return None  # its kernels are still compiling (warmup.ensure_compiled): one thread until then
        if key not in _told:
            _told.add(key)
            log.info("training path for %s: %s (timed earlier on this machine: %s)", _readable(c), name,
                     cache_file())
        return PATHS[name]
    spe = -(-len(c.order) // c.batch_size)
    if len(c.lrs) < min(MIN_STEPS, spe):  # full batches (one step an epoch) are timed as they come
        return None
    if pending:  # timed, and the choice kept, once the background compile has ended
        return None
    with _lock:  # one timing at a time; a second run of the same shape waits for the first's choice
        name = _load().get(key)
        if name is None or PATHS[name] not in fits:
            with budget().hold(cores):  # the whole machine, so that nothing of ours disturbs the timing
                times = time_paths(c, fits)
            name = pick(times, fits)
            _choices[key] = name
            _told.add(key)
            _save()
            log.info("training path for %s: %s (ms a step: %s)", _readable(c), name,
                     ", ".join(f"{p.name} {times[p.name] * 1e3:.3g}" for p in fits))
    return PATHS[name]


def pick(times: dict[str, float], fits: list[Path]) -> str:
    """The fastest, unless a path listed before it is within TIE of it."""
    best = min(times.values())
    return next(p.name for p in fits if times[p.name] <= best * (1 + TIE))


def time_paths(c: Chunk, fits: list[Path]) -> dict[str, float]:
    """Seconds per step of each path on this chunk's shape and rows (copies, learning rate 0).

    Each measurement is one call of as many steps as fill about ROUND_SECONDS, as a run's
    chunks are single calls of many steps: a path with a cost per call (the split copies its
    columns in and out, gathering ahead starts on a short block) is timed as it will run. The
    rows move on through the epoch from one measurement to the next, so no path trains on rows
    another left in the cache. An epoch shorter than that (full batches) is timed over repeated
    calls of the whole epoch, as its chunks will be. Paths with BLAS on two threads come last: OpenBLAS's threads spin
    on for ~0.1 s after their last product, and whatever ran then was slowed (a split's step
    took 1.2 ms instead of 0.27).
    """
    spe = -(-len(c.order) // c.batch_size)
    per_step = {p.name: math.inf for p in fits}
    wanted = {p.name: MIN_STEPS for p in fits}  # steps a measurement should take
    first = 0
    for group in ([p for p in fits if p.blas == 1], [p for p in fits if p.blas > 1]):
        for _ in range(ROUNDS):
            for p in group:
                n = min(spe, wanted[p.name])
                calls = -(-wanted[p.name] // n)
                if first + n > spe:
                    first = 0
                per_step[p.name] = min(per_step[p.name], _time(p, c, first, n, calls) / (n * calls))
                first += n
                wanted[p.name] = max(MIN_STEPS, int(ROUND_SECONDS / max(per_step[p.name], 1e-7)))
    return per_step


def _time(p: Path, c: Chunk, first: int, steps: int, calls: int = 1) -> float:
    trial = Chunk(c.net, c.theta.copy(), c.state.copy(), c.scal.copy(), c.hp, c.opt_id, c.X, c.Y, c.order, first,
                  np.zeros(steps), c.batch_size, np.empty(steps),
                  # the gradient norms as the chunk records them, not the internals: those cost every path
                  # alike (and the choice is cached per shape, internals on or off)
                  np.empty((steps if c.grad_sq.shape[0] else 0, c.net.layout.n_layers)))
    set_blas_threads(p.blas)
    try:
        t0 = time.perf_counter()
        for _ in range(calls):
            p.run(trial)
        return time.perf_counter() - t0
    finally:
        set_blas_threads(1)
