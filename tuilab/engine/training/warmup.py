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


def _warmup_chunks(dtype: str, opt_ids, steps: int = 2):
    """(network, a fresh Chunk of `steps` steps, optimizer) of the tiny warm-up network for each optimizer row
    in opt_ids."""
    from tuilab.engine.training.paths import Chunk

    net, theta, X, Y = _warmup_net(dtype)
    for opt_id in opt_ids:
        opt = _optimizer_for(opt_id, net)
        yield net, Chunk(net, theta.copy(), opt.state.copy(), opt.scal.copy(), opt.hp, opt.opt_id, X, Y,
                         np.arange(4), 0, np.full(steps, 0.1), 2, np.empty(steps), np.zeros((steps, 2))), opt


def _fresh(c):
    """A copy of a warm-up chunk whose arrays a path may change."""
    from dataclasses import replace

    return replace(c, theta=c.theta.copy(), state=c.state.copy(), scal=c.scal.copy(), grad=None)


def compile_network_kernels(dtype: str = "float32", split: bool = True, opt_ids=(SGD,)) -> None:
    """Run every training path once on a tiny network with each optimizer row in opt_ids, so that every
    kernel they call is compiled (or loaded from numba's cache); split=False leaves out the column-split
    path's (5 s of a cold start on the 2-core machine), which no network with fewer than 32 inputs or
    without a hidden layer can take (paths.Path.fits)."""
    from tuilab.engine.training.paths import PATHS, run_path

    for net, chunk, opt in _warmup_chunks(dtype, opt_ids):
        for path in PATHS.values():
            if path.fits(net, cores=2, whole_tensors=opt.spec.whole_tensors) and (split or not path.splits):
                run_path(path, _fresh(chunk))
    from tuilab.engine.nn.health import activation_health

    net, theta, X, Y = _warmup_net(dtype)
    net.evaluate(theta, X, Y)
    net.predict(theta, X)
    activation_health(net, theta, X)  # at every epoch's end: compiled there, it would wait on a split compiling


def compile_split_kernels(dtype: str, opt_ids) -> None:
    """The column split's kernels alone, for each optimizer row in opt_ids (compiled or loaded from the cache).

    Safe beside training on another thread: it runs the split's code directly, without run_path, which
    would set BLAS's process-wide thread count under a BLAS x2 chunk, and for no step, so that the partner
    never spins on the other core while the lead compiles. numba's compiler lock keeps a compile that the
    other thread asks for meanwhile (a kernel it meets first) waiting, not racing."""
    from tuilab.engine.training.paths import PATHS
    from tuilab.kernels.fpu import current_fpu, restore_fpu

    split = PATHS["split 1/2"]
    for net, chunk, opt in _warmup_chunks(dtype, opt_ids, steps=0):
        if split.fits(net, cores=2, whole_tensors=opt.spec.whole_tensors):
            fpu = current_fpu()
            try:
                split.run(chunk)
            finally:
                restore_fpu(fpu)


def may_split(runs, prepared) -> bool:
    """Whether a run of these may take the column-split path: 32 or more inputs and a hidden layer."""
    return any(p.n_inputs >= 32 and len(r.model.hidden) >= 1 for r, p in zip(runs, prepared, strict=True))


def ensure_compiled(runs, prepared, emit, split_later: bool = False) -> None:
    """Decide how this process compiles the runs' optimizers (each alone, or the whole table:
    kernel_choice), then compile (with a notice that says what) or load from numba's cache every kernel
    these runs may call, before any timing starts: the column-split path's only where a run may take it.

    split_later (runs that train in this process only): a split that is not cached compiles on a thread of
    its own while the runs begin, and the autotuner keeps them on one thread until it is ready
    (paths.split_compiling). It was 5-7 of a wide network's 18-25 cold seconds before its first epoch.
    Not for runs sent to workers: each compiles what it needs itself, and two processes compiling different
    signatures of one kernel into numba's cache at once can overwrite each other's entries."""
    from tuilab.engine.training.kernel_choice import use_whole_table, whole_table_pays
    from tuilab.kernels.step_choice import step_choice

    split = may_split(runs, prepared)
    opt_ids = step_kernels_of(runs)
    table = whole_table_pays(len(opt_ids), split)
    use_whole_table(table)
    ids = opt_ids[:1] if table else opt_ids
    later = []
    for dtype in sorted({r.model.dtype for r in runs}):
        cached = network_kernels_ready(dtype, split, opt_ids)
        background = split and split_later and not cached
        if not cached:
            names = ", ".join(step_choice(i).name.removesuffix("_step") for i in opt_ids) or "no optimizer"
            what = f"every optimizer, for {names}" if table else names
            emit(Notice(f"compiling kernels ({dtype}; training with {what}), first run only: about "
                        f"{_estimate(len(opt_ids), split and not background, table)} s on 2 cores", "compiling"))
        compile_network_kernels(dtype, split and not background, ids)  # cached: a load from disk
        if background:
            later.append(dtype)
        if not cached:
            emit(Notice("kernels compiled and cached" + (
                "; the column split compiles meanwhile, and runs train on one thread until it is ready"
                if background else ""), "compiled"))
    if later:
        compile_split_in_background(later, ids)


def compile_split_in_background(dtypes, opt_ids) -> threading.Thread:
    """compile_split_kernels for each dtype on a thread of its own; paths.split_compiling() says so until it
    ends (failed or not: a split that fails to compile then fails where it is timed, and says why)."""
    from tuilab.engine.training import paths

    def compile_all():
        try:
            for dtype in dtypes:
                compile_split_kernels(dtype, opt_ids)
        except Exception:  # noqa: BLE001 - said where the split is first run
            log.exception("the column split failed to compile")
        finally:
            paths.split_compiled()

    paths.split_compiling_begins()
    # not a daemon: a process that ends meanwhile waits for the compile, which numba then has cached
    thread = threading.Thread(target=compile_all, name="tuilab-split-compile")
    thread.start()
    _background.append(thread)
    return thread


_background: list[threading.Thread] = []


def wait_for_background_compiles(timeout: float | None = None) -> None:
    """Until every compile_split_in_background has ended (tests: a shape timed after it sees every path)."""
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
