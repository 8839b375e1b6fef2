"""The BLAS that the kernels' np.dot calls, and how many threads it runs.

Numba's np.dot in nopython code calls SciPy's BLAS (scipy.linalg.cython_blas), which
its helper library loads on the first call, not at import. A threadpool controller
made before that call does not see SciPy's OpenBLAS at all, and a limit set through
it reaches only NumPy's: so the kernels ran with every BLAS thread while the engine
believed it had asked for one ([784, 128, 64, 10] at batch 64: 4.5 s an epoch against
0.53 s once one thread really applied). Here SciPy's BLAS is loaded first, found by
where its file lives, and its thread count set directly, once per change.

The count is process-global: OpenBLAS has one thread pool. Training runs it with one
thread, except for a chunk that holds every core of the budget (engine.cores), which
may raise it and puts it back after.
"""

from __future__ import annotations

import os
import threading

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
