"""Knowing whether the Numba kernels are compiled (or cached on disk), and compiling them."""

from __future__ import annotations

import numpy as np

from tuilab.engine.events import Notice


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
    from tuilab.kernels import column_split, fpu, mlp

    per_optimizer = (mlp.train_chunk,) + ((column_split.lead_steps, column_split.partner_steps)
                                         if SPLIT_AVAILABLE and split else ())
    shared = (mlp.gather_rows, mlp.mlp_evaluate, mlp.mlp_predict)
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


def compile_network_kernels(dtype: str = "float32", split: bool = True, opt_ids=(SGD,)) -> None:
    """Run every training path once on a tiny network with each optimizer row in opt_ids, so that every
    kernel they call is compiled (or loaded from numba's cache); split=False leaves out the column-split
    path's (5 s of a cold start on the 2-core machine), which no network with fewer than 32 inputs or
    without a hidden layer can take (paths.Path.fits)."""
    from tuilab.engine.nn.model import MLP
    from tuilab.engine.training.paths import PATHS, Chunk, run_path

    net = MLP([32, 2, 2], "relu", "softmax", "cross_entropy", dtype)
    X = np.zeros((4, 32), net.dtype)
    Y = np.eye(2, dtype=net.dtype)[[0, 1, 0, 1]]
    theta = net.init("xavier_normal", "zeros", 0)
    for opt_id in opt_ids:
        opt = _optimizer_for(opt_id, net)
        for path in PATHS.values():
            if path.fits(net, cores=2, whole_tensors=opt.spec.whole_tensors) and (split or not path.splits):
                run_path(path, Chunk(net, theta.copy(), opt.state.copy(), opt.scal.copy(), opt.hp, opt.opt_id,
                                     X, Y, np.arange(4), 0, np.full(2, 0.1), 2, np.empty(2), np.zeros((2, 2))))
    net.evaluate(theta, X, Y)
    net.predict(theta, X)


def may_split(runs, prepared) -> bool:
    """Whether a run of these may take the column-split path: 32 or more inputs and a hidden layer."""
    return any(p.n_inputs >= 32 and len(r.model.hidden) >= 1 for r, p in zip(runs, prepared, strict=True))


def ensure_compiled(runs, prepared, emit) -> None:
    """Decide how this process compiles the runs' optimizers (each alone, or the whole table:
    kernel_choice), then compile (with a notice that says what) or load from numba's cache every kernel
    these runs may call, before any timing starts: the column-split path's only where a run may take it."""
    from tuilab.engine.training.kernel_choice import use_whole_table, whole_table_pays
    from tuilab.kernels.step_choice import step_choice

    split = may_split(runs, prepared)
    opt_ids = step_kernels_of(runs)
    table = whole_table_pays(len(opt_ids), split)
    use_whole_table(table)
    for dtype in sorted({r.model.dtype for r in runs}):
        cached = network_kernels_ready(dtype, split, opt_ids)
        if not cached:
            names = ", ".join(step_choice(i).name.removesuffix("_step") for i in opt_ids) or "no optimizer"
            what = f"every optimizer, for {names}" if table else names
            emit(Notice(f"compiling kernels ({dtype}; training with {what}), first run only: about "
                        f"{_estimate(len(opt_ids), split, table)} s on 2 cores", "compiling"))
        compile_network_kernels(dtype, split, opt_ids[:1] if table else opt_ids)  # cached: a load from disk
        if not cached:
            emit(Notice("kernels compiled and cached", "compiled"))


def _estimate(n_optimizers: int, split: bool, table: bool) -> int:
    """Seconds a cold compile takes on the 2-core machine (benchmarks/cold_start.py): the first optimizer's
    training kernel and the evaluation ~12 s, each further optimizer ~2 s, the column split ~4 s an
    optimizer; the whole table ~21 s, with the split ~26 s. Said so that a newcomer knows the wait is
    bounded; the cache makes it once."""
    if table:
        return 26 if split else 21
    n = max(n_optimizers, 1)
    return 12 + 2 * (n - 1) + (4 * n if split else 0)
