"""The process-global threading state of training: the core budget and the BLAS thread count.

## Cores

The process's cores as a budget that training chunks take turns on, first come first served.

Every chunk of training holds the cores its path keeps busy (one, or two for BLAS on two
threads, the column split or gathering ahead) while it runs. So runs that train at the
same time in one process (the dashboard's many runs, two experiments at once) never put
more busy threads on the machine than it has cores, each chunk runs at the speed its path
was timed at, and the turns are fair: a chunk waits behind those that asked before it,
which makes many runs advance round-robin, chunk by chunk.

## BLAS

The BLAS that the kernels' np.dot calls, and how many threads it runs.

Numba's np.dot in nopython code calls SciPy's BLAS (scipy.linalg.cython_blas), which
its helper library loads on the first call, not at import. A threadpool controller
made before that call does not see SciPy's OpenBLAS at all, and a limit set through
it reaches only NumPy's: so the kernels ran with every BLAS thread while the engine
believed it had asked for one ([784, 128, 64, 10] at batch 64: 4.5 s an epoch against
0.53 s once one thread really applied). Here SciPy's BLAS is loaded first, found by
where its file lives, and its thread count set directly, once per change.

The count is process-global: OpenBLAS has one thread pool. Training runs it with one
thread, except for a chunk that holds every core of the budget (above), which
may raise it and puts it back after.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from contextlib import contextmanager


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class CoreBudget:
    """`total` cores handed out in order of asking."""

    def __init__(self, total: int):
        self.total = max(1, total)
        self._free = self.total
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, n: int):
        """Wait for n cores (at most all of them), behind everyone who asked earlier; give them back after."""
        n = max(1, min(n, self.total))
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or self._free < n:
                self._changed.wait()
            self._queue.popleft()
            self._free -= n
            self._changed.notify_all()  # the next in line may fit in what is left
        try:
            yield n
        finally:
            with self._changed:
                self._free += n
                self._changed.notify_all()


_budget = CoreBudget(available_cpus())


def budget() -> CoreBudget:
    return _budget


def limit_to(total: int) -> None:
    """Make this process's budget `total` cores (a job process beside others: 1)."""
    global _budget
    _budget = CoreBudget(total)


# ---- BLAS ----

_lock = threading.Lock()
_libs: list | None = None
_threads: int | None = None


def numba_blas() -> list:
    """threadpoolctl's controllers of the BLAS library numba calls (loaded here if it was not)."""
    global _libs
    if _libs is None:
        with _lock:
            if _libs is None:
                _libs = _find()
    return _libs


def _find() -> list:
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS before we look for it)
    from threadpoolctl import ThreadpoolController

    blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    scipy_dir = os.path.dirname(os.path.abspath(scipy.__file__))
    wheel_libs = scipy_dir + ".libs"  # where a PyPI wheel keeps its OpenBLAS
    own = [lib for lib in blas
           if os.path.abspath(lib.filepath).startswith((scipy_dir + os.sep, wheel_libs + os.sep))]
    # conda and Linux distributions link SciPy to a shared BLAS, which NumPy may share too
    return own or blas


def set_blas_threads(n: int) -> None:
    """Set the thread count of numba's BLAS (no call when it is already n)."""
    global _threads
    libs = numba_blas()
    with _lock:
        if _threads == n:
            return
        for lib in libs:
            lib.set_num_threads(n)
        _threads = n


def describe() -> str:
    """One line: which BLAS the kernels call and its threads, for --verbose."""
    libs = numba_blas()
    if not libs:
        return "BLAS: none found by threadpoolctl (numba's np.dot still works; its threads are not controlled)"
    parts = [f"{lib.internal_api} {getattr(lib, 'version', '') or ''} ({getattr(lib, 'architecture', '') or '?'}) "
             f"{os.path.basename(lib.filepath)}" for lib in libs]
    return (f"BLAS for the kernels: {'; '.join(parts)}; {_threads or libs[0].num_threads} thread(s) now, training "
            "sets one per chunk, or two on the BLAS x2 path")
