"""The process's cores as a budget that training chunks take turns on, first come first served.

Every chunk of training holds the cores its path keeps busy (one, or two for BLAS on two
threads, the column split or gathering ahead) while it runs. So runs that train at the
same time in one process (the dashboard's many runs, two experiments at once) never put
more busy threads on the machine than it has cores, each chunk runs at the speed its path
was timed at, and the turns are fair: a chunk waits behind those that asked before it,
which makes many runs advance round-robin, chunk by chunk.
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
