"""Which version of the training kernels this process compiles: each optimizer's own, or the whole table's.

kernels.step_choice has the two. One optimizer's train_chunk compiles in ~9 s cold on the 2-core machine
and each further optimizer's in ~1.7 s (~6 s with the column split's two kernels); the whole table's in
17 s (22 s with the split) for every optimizer at once. So a process that trains a few optimizers compiles
each alone, and one racing many (optimizer-zoo: 34 s cold with the table, 76 s one by one) the table.
The runner decides once for an experiment (warmup.ensure_compiled), before anything trains, and hands the
decision to its workers with each task; both versions run the same step kernel's code, so results do not
depend on it (tests/test_train_chunk.py holds them equal). A process that trains the runs itself and finds
the table not cached compiles the first run's optimizer alone, then the table on a thread of its own while
that run trains (the runs of other optimizers wait for it): the first epoch comes after one optimizer's
compile, not the table's.
"""

from __future__ import annotations

import threading

from tuilab.kernels.step_choice import StepChoice, step_choice

_whole_table = False
_table_ready = threading.Event()  # clear while the table compiles in the background (warmup.ensure_compiled)
_table_ready.set()
_own_ready: frozenset[int] = frozenset()  # meanwhile, the rows whose own kernel is compiled and trains


def whole_table_pays(n_kernels: int, split: bool) -> bool:
    """Whether compiling the whole table is quicker than n_kernels step kernels one by one (the figures
    above: without the split the table wins from 6 kernels, with it from 3)."""
    return n_kernels > (2 if split else 5)


def surface_table_pays(n_kernels: int) -> bool:
    """The same for a surface preset's descents (kernels.surfaces): one compiles in ~1.4 s cold, the
    table's in ~12 s, so the table wins from 10 kernels."""
    return n_kernels > 9


def use_whole_table(on: bool) -> None:
    global _whole_table
    _whole_table = bool(on)


def whole_table() -> bool:
    return _whole_table


def table_compiling(own) -> None:
    """The whole table begins compiling on another thread: until table_compiled, the optimizer rows in `own`
    (their own kernels compiled) train with those, and a run of any other waits (wait_for_kernel)."""
    global _whole_table, _own_ready
    _own_ready = frozenset(own)
    _whole_table = False
    _table_ready.clear()


def table_pending() -> bool:
    """Whether the table compiles in the background now."""
    return not _table_ready.is_set()


def table_compiled(use: bool = True) -> None:
    """The background compile has ended: every run takes the table, or (use=False: it failed) each
    optimizer's own kernel, compiled as its runs come."""
    global _whole_table
    _whole_table = use
    _table_ready.set()


def wait_for_kernel(opt_id: int, timeout: float | None = None) -> bool:
    """Until optimizer row `opt_id` has a compiled kernel to train with (at once, but while the table
    compiles in the background for a row other than those that began), or `timeout` seconds; whether it has."""
    if opt_id >= 0 and not _table_ready.is_set() and opt_id not in _own_ready:  # L-BFGS (-1) has no kernel
        return _table_ready.wait(timeout)
    return True


def choice_for(opt_id: int, table: bool | None = None) -> StepChoice:
    """The StepChoice this process trains optimizer row `opt_id` with (`table`: that version, whatever the
    process's choice; a background compile asks for the table's)."""
    return step_choice(opt_id, _whole_table if table is None else table)
