"""Knowing whether the Numba kernels are compiled (or cached on disk), and compiling them."""

from __future__ import annotations

import logging
import threading

import numpy as np

from tuilab.engine.events import Notice

log = logging.getLogger("tuilab.warmup")


def _cached(dispatcher, dtype: str | None = None, argument: str | None = None) -> bool:
    """Whether this kernel is compiled, or in numba's on-disk cache, for a first argument that is an
    array of `dtype` (None: for any signature) and, if given, an argument whose type reads `argument` (a
    StepChoice's). It reads a private API, so any surprise counts as 'not cached': the cost is one notice
    too many."""
    def fits(sig) -> bool:
        return ((dtype is None or str(sig[0]).startswith(f"array({dtype}"))
                and (argument is None or any(str(t) == argument for t in sig)))

    try:
        if any(fits(sig) for sig in dispatcher.signatures):
            return True
        index = dispatcher._cache._cache_file._load_index()
        return any(fits(key[0]) for key in index)
    except Exception:
        return False


SGD = 0  # kernels.optimizers.STEP_KERNELS' first row: what a warm-up compiles when it is told of no optimizer


def step_kernels_of(runs) -> list[int]:
    """The optimizer table rows (kernels.optimizers.STEP_KERNELS) these runs train with, first seen first;
    a closure optimizer (L-BFGS) has none: it trains through loss_and_grad, not a chunk kernel."""
    from tuilab.engine.nn.optim import get_spec

    ids = (get_spec(r.optimizer.name).opt_id for r in runs)
    return list(dict.fromkeys(i for i in ids if i >= 0))


def network_kernels_ready(dtype: str = "float32", split: bool = True, opt_ids=(SGD,)) -> bool:
    """Whether the kernels a run needs are compiled or cached: training for each optimizer row in opt_ids
    (kernels.step_choice, in the version engine.training.kernel_choice says), the evaluation, and with split
    the column-split path's (a run with 32 or more inputs and a hidden layer may take it)."""
    from tuilab.engine.training.kernel_choice import choice_for
    from tuilab.engine.training.paths import SPLIT_AVAILABLE
    from tuilab.kernels import column_split, fpu, health, mlp

    per_optimizer = (mlp.train_chunk,) + ((column_split.lead_steps, column_split.partner_steps)
                                         if SPLIT_AVAILABLE and split else ())
    shared = (mlp.gather_rows, mlp.mlp_evaluate, mlp.mlp_predict, health.layer_health)
    return (all(_cached(k, dtype, repr(choice_for(i))) for k in per_optimizer for i in opt_ids)
            and all(_cached(k, dtype) for k in shared) and _cached(fpu.current_fpu))


def surface_kernels_ready(opt_ids=(SGD,)) -> bool:
    """Whether the descent is compiled or cached for each optimizer row in opt_ids (kernels.step_choice),
    or whole (engine.training.kernel_choice)."""
    from tuilab.engine.training.kernel_choice import whole_table
    from tuilab.kernels import surfaces
    from tuilab.kernels.step_choice import step_choice

    if whole_table():
        return _cached(surfaces.surface_descent)
    return all(_cached(surfaces.surface_descent_of, None, repr(step_choice(i))) for i in opt_ids)


def _optimizer_for(opt_id: int, net):
    """An optimizer whose step kernel is row opt_id, with its defaults, for the tiny warm-up network."""
    from tuilab.engine.nn.optim import REGISTRY, Optimizer

    name = next(n for n, spec in REGISTRY.items() if spec.opt_id == opt_id)
    return Optimizer(name, net.layout.size, net.dtype, 100, layout=net.layout)


def _warmup_net(dtype: str):
    """The tiny network every warm-up runs: wide enough (32 inputs, a hidden layer) for the column split."""
    from tuilab.engine.nn.model import MLP

    net = MLP([32, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    X = np.zeros((4, 32), net.dtype)
    Y = np.eye(2, dtype=net.dtype)[[0, 1, 0, 1]]
    return net, net.init("xavier_normal", "zeros", 0), X, Y


def _warmup_chunks(dtype: str, opt_ids, steps: int = 2, table: bool | None = None):
    """(network, a fresh Chunk of `steps` steps, optimizer) of the tiny warm-up network for each optimizer row
    in opt_ids (`table`: as paths.Chunk.table)."""
    from tuilab.engine.training.paths import Chunk

    net, theta, X, Y = _warmup_net(dtype)
    for opt_id in opt_ids:
        opt = _optimizer_for(opt_id, net)
        yield net, Chunk(net, theta.copy(), opt.state.copy(), opt.scal.copy(), opt.hp, opt.opt_id, X, Y,
                         np.arange(4), 0, np.full(steps, 0.1), 2, np.empty(steps), np.zeros((steps, 2)),
                         table=table), opt


def _fresh(c):
    """A copy of a warm-up chunk whose arrays a path may change."""
    from dataclasses import replace

    return replace(c, theta=c.theta.copy(), state=c.state.copy(), scal=c.scal.copy(), grad=None)


def compile_network_kernels(dtype: str = "float32", split: bool = True, opt_ids=(SGD,),
                            table: bool | None = None) -> None:
    """Run every training path once on a tiny network with each optimizer row in opt_ids, so that every
    kernel they call is compiled (or loaded from numba's cache); split=False leaves out the column-split
    path's (5 s of a cold start on the 2-core machine), which no network with fewer than 32 inputs or
    without a hidden layer can take (paths.Path.fits)."""
    from tuilab.engine.nn.health import activation_health
    from tuilab.engine.training.paths import PATHS, run_path

    for net, chunk, opt in _warmup_chunks(dtype, opt_ids, table=table):
        for path in PATHS.values():
            if path.fits(net, cores=2, whole_tensors=opt.spec.whole_tensors) and (split or not path.splits):
                run_path(path, _fresh(chunk))
    net, theta, X, Y = _warmup_net(dtype)
    net.evaluate(theta, X, Y)
    net.predict(theta, X)
    activation_health(net, theta, X)  # at every epoch's end: compiled there, it would wait on a split compiling


def compile_split_kernels(dtype: str, opt_ids, table: bool | None = None) -> None:
    """The column split's kernels alone, for each optimizer row in opt_ids (compiled or loaded from the cache).

    Safe beside training on another thread: it runs the split's code directly, without run_path, which
    would set BLAS's process-wide thread count under a BLAS x2 chunk, and for no step, so that the partner
    never spins on the other core while the lead compiles. numba's compiler lock keeps a compile that the
    other thread asks for meanwhile (a kernel it meets first) waiting, not racing."""
    from tuilab.engine.training.paths import PATHS
    from tuilab.kernels.fpu import current_fpu, restore_fpu

    split = PATHS["split 1/2"]
    for net, chunk, opt in _warmup_chunks(dtype, opt_ids, steps=0, table=table):
        if split.fits(net, cores=2, whole_tensors=opt.spec.whole_tensors):
            fpu = current_fpu()
            try:
                split.run(chunk)
            finally:
                restore_fpu(fpu)


def may_split(runs, prepared) -> bool:
    """Whether a run of these may take the column-split path: 32 or more inputs and a hidden layer."""
    return any(p.n_inputs >= 32 and len(r.model.hidden) >= 1 for r, p in zip(runs, prepared, strict=True))


def ensure_compiled(runs, prepared, emit, compile_later: bool = False):
    """Decide how this process compiles the runs' optimizers (each alone, or the whole table:
    kernel_choice), then compile (with a notice that says what) or load from numba's cache every kernel
    these runs may call, before any timing starts: the column-split path's only where a run may take it.

    compile_later (runs that train in this process only): what the first epochs need compiles now, the rest
    on a thread of its own while the runs begin:
    - a split that is not cached: the autotuner keeps the runs on one thread until it is ready
      (paths.split_compiling). It was 5-7 of a wide network's 18-25 cold seconds before its first epoch;
    - a whole table that is not cached: the first run's optimizer compiles alone now and trains, and the
      runs of the others wait for the table (kernel_choice.wait_for_kernel). It was 17 s before the zoo's
      first epoch, against about 9 for one optimizer.
    Not for runs sent to workers: each compiles what it needs itself, and two processes compiling different
    signatures of one kernel into numba's cache at once can overwrite each other's entries.

    Returns what to call when the runs have ended: a background compile that ends later says nothing."""
    from tuilab.engine.training.kernel_choice import use_whole_table, whole_table_pays
    from tuilab.kernels.step_choice import step_choice

    split = may_split(runs, prepared)
    opt_ids = step_kernels_of(runs)
    table = whole_table_pays(len(opt_ids), split)
    use_whole_table(table)
    ids = opt_ids[:1] if table else opt_ids
    split_dtypes, table_dtypes = [], []
    for dtype in sorted({r.model.dtype for r in runs}):
        cached = network_kernels_ready(dtype, split, opt_ids)
        split_later_here = split and compile_later and not cached
        table_later_here = table and compile_later and not cached
        if not cached:
            names = ", ".join(step_choice(i).name.removesuffix("_step") for i in opt_ids) or "no optimizer"
            what = (f"{names.split(', ')[0]} first, one kernel for the others meanwhile" if table_later_here
                    else f"every optimizer, for {names}" if table else names)
            seconds = (_estimate(1, False, False) if table_later_here
                       else _estimate(len(opt_ids), split and not split_later_here, table))
            emit(Notice(f"compiling kernels ({dtype}; training with {what}), first run only: about "
                        f"{seconds} s on 2 cores", "compiling"))
        # cached: a load from disk
        compile_network_kernels(dtype, split and not split_later_here, ids, table=False if table_later_here else None)
        if split_later_here:
            split_dtypes.append(dtype)
        if table_later_here:
            table_dtypes.append(dtype)
        if not cached:
            emit(Notice("kernels compiled and cached", "compiled"))
            meanwhile = [what for what, later in (("the other optimizers' kernel", table_later_here),
                                                  ("the column split", split_later_here)) if later]
            if meanwhile:  # an info notice: the dashboard shows it, where it shows no "compiled" one
                emit(Notice(f"{' and '.join(meanwhile)} compile{'s' if len(meanwhile) == 1 else ''} in the "
                            "background, first run only" + (
                                "; the other optimizers' runs wait for it" if table_later_here else "") + (
                                "; runs train on one thread until the split is ready" if split_later_here else ""),
                            "info"))
    if split_dtypes or table_dtypes:
        told = _WhileRunning(emit)
        compile_in_background(split_dtypes, table_dtypes, ids, told.say)
        return told.close
    return lambda: None


class _WhileRunning:
    """A notice from the background compile, said only while the runs it was for go on."""

    def __init__(self, emit):
        self.emit, self.open, self.lock = emit, True, threading.Lock()

    def say(self, text: str) -> None:
        with self.lock:
            if self.open:
                self.emit(Notice(text, "info"))

    def close(self) -> None:
        with self.lock:
            self.open = False


def compile_in_background(split_dtypes, table_dtypes, opt_ids, say=None) -> threading.Thread:
    """On a thread of its own: the whole table's training kernel for each dtype in table_dtypes (the runs of
    optimizers other than opt_ids' first wait for it: kernel_choice.table_compiling), then the column split
    for each in split_dtypes (paths.split_compiling() says so until it ends). A table that fails to compile
    leaves each optimizer its own kernel; a split that fails fails again where it is first timed, and says
    why."""
    from tuilab.engine.training import kernel_choice, paths

    def compile_all():
        table_ok = False
        try:
            for dtype in table_dtypes:
                compile_table_kernels(dtype, opt_ids[:1])
            table_ok = True
        except Exception:  # noqa: BLE001 - each optimizer then trains with its own kernel
            log.exception("the optimizers' table failed to compile")
        finally:
            if table_dtypes:
                kernel_choice.table_compiled(use=table_ok)
        try:
            for dtype in split_dtypes:
                compile_split_kernels(dtype, opt_ids)
        except Exception:  # noqa: BLE001
            log.exception("the column split failed to compile")
        finally:
            if split_dtypes:
                paths.split_compiled()
        if say is not None:
            say("the background compile is done: every training path is timed from the next chunk"
                if split_dtypes else "the background compile is done")

    if table_dtypes:
        kernel_choice.table_compiling(own=opt_ids[:1])
    if split_dtypes:
        paths.split_compiling_begins()
    # not a daemon: a process that ends meanwhile waits for the compile, which numba then has cached
    thread = threading.Thread(target=compile_all, name="tuilab-background-compile")
    thread.start()
    _background.append(thread)
    return thread


def compile_table_kernels(dtype: str, opt_ids) -> None:
    """The whole table's training kernel (kernels.step_choice) on the tiny network, by the paths that call it
    on one BLAS thread, whatever this process trains with now; run directly, not through run_path, for
    the reason compile_split_kernels gives."""
    from tuilab.engine.training.paths import PATHS
    from tuilab.kernels.fpu import current_fpu, restore_fpu

    for _, chunk, _ in _warmup_chunks(dtype, opt_ids, table=True):
        for name in ("1 thread", "gather ahead"):
            fpu = current_fpu()
            try:
                PATHS[name].run(_fresh(chunk))
            finally:
                restore_fpu(fpu)


_background: list[threading.Thread] = []


def wait_for_background_compiles(timeout: float | None = None) -> None:
    """Until every compile_in_background has ended (tests: a shape timed after it sees every path)."""
    while _background:
        _background[0].join(timeout)
        if _background[0].is_alive():
            return
        _background.pop(0)


def _estimate(n_optimizers: int, split: bool, table: bool) -> int:
    """Seconds a cold compile takes on the 2-core machine (benchmarks/cold_start.py): the first optimizer's
    training kernel and the evaluation ~12 s, each further optimizer ~2 s, the column split ~4 s an
    optimizer; the whole table ~21 s, with the split ~26 s. Said so that a newcomer knows the wait is
    bounded; the cache makes it once."""
    if table:
        return 26 if split else 21
    n = max(n_optimizers, 1)
    return 12 + 2 * (n - 1) + (4 * n if split else 0)
