"""Where run tasks go: local processes (`--jobs N`) or a Dask cluster (`--cluster local:N`,
`--cluster tcp://HOST:PORT`). Both take `tasks.RunTask`s and give back futures, and both carry
the tasks' events back to the client; the runner (engine.training.waves) does not know which
it has. Dask is optional: the [cluster] extra (tuilab.install says the command).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import uuid
from concurrent.futures.process import BrokenProcessPool

from tuilab.engine.training import tasks as tasks_mod
from tuilab.errors import TuilabError
from tuilab.install import pip_install

CLUSTER_ENV = "TUILAB_CLUSTER"
CONNECT_SECONDS = 8  # an unreachable scheduler is said within 10 s


class WorkerLost(Exception):
    """The process that ran a task died before the task ended (killed, out of memory, its machine gone)."""


@contextlib.contextmanager
def sigint_ignored():
    """Processes started meanwhile ignore Ctrl+C: a terminal sends it to the whole process group,
    and only the client decides (it stops the runs at a chunk's end, which keeps their epochs)."""
    if threading.current_thread() is not threading.main_thread():  # the dashboard's worker thread
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def start_resource_tracker() -> None:
    """multiprocessing's resource tracker started with the real stderr: started later, under the
    dashboard, it would be handed Textual's stand-in for stderr (no file descriptor) and fail, and
    with it every Dask nanny ("bad value(s) in fds_to_keep")."""
    import sys
    from multiprocessing import resource_tracker

    swapped = False
    try:
        os.fstat(sys.stderr.fileno())  # Textual's stand-in says -1
    except Exception:
        swapped, sys.stderr = sys.stderr, sys.__stderr__
    try:
        resource_tracker.ensure_running()
    finally:
        if swapped:
            sys.stderr = swapped


def _init_local_process(events, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tasks_mod._LINK = tasks_mod.EventLink(events.put, stop)


class LocalProcesses:
    """N spawned processes on this machine, one core each (concurrent.futures)."""

    shares_files = True  # the workers write their own rows and checkpoints into the records folder

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.ctx = mp.get_context("spawn")  # fork after OpenBLAS has started threads can hang
        start_resource_tracker()
        self.events = self.ctx.Queue()
        self.stop = self.ctx.Event()
        self.pool = self._new_pool()

    def describe(self) -> str:
        return f"{self.jobs} local processes"

    def _new_pool(self):
        return cf.ProcessPoolExecutor(self.jobs, mp_context=self.ctx, initializer=_init_local_process,
                                      initargs=(self.events, self.stop))

    def submit(self, task, source=None):
        with sigint_ignored():  # the pool starts its processes as tasks arrive
            return self.pool.submit(tasks_mod.train_in_local_process, task)

    def wait(self, futures, timeout: float) -> set:
        return cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED).done

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue_mod.Empty:
                return out

    def result(self, future):
        try:
            return future.result()
        except BrokenProcessPool:
            raise WorkerLost("a local process died") from None

    def after_loss(self) -> None:
        """A dead process breaks the whole pool (the others are stopped with it): a fresh one."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def request_stop(self) -> None:
        self.stop.set()

    def cancel_waiting(self, futures) -> None:
        for f in futures:
            f.cancel()  # only those no process has taken yet

    def scatter(self, source):
        return source  # the processes read the data sets from this machine's disks

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


WORKERS_SECONDS = 60  # how long a cluster's workers may take to join


class DaskCluster:
    """A Dask client: of a LocalCluster it starts (`local:N`) or of a running scheduler (an address)."""

    shares_files = False  # the client writes every record: the workers may be on other machines

    def __init__(self, address: str):
        try:
            import dask
            import distributed
        except ImportError:
            raise TuilabError(f"--cluster needs Dask (its distributed scheduler): {pip_install('cluster')}") from None
        for name in ("distributed", "distributed.worker", "distributed.nanny", "distributed.scheduler",
                     "distributed.core", "distributed.comm"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # the run's own output says what happened
        self.address = address
        self.cluster = None
        start_resource_tracker()
        if address.startswith("local:"):
            n = address.split(":", 1)[1]
            if not n.isdigit() or int(n) < 1:
                raise TuilabError(f"--cluster {address}: write local:N with N the number of worker processes, "
                                  "e.g. local:2")
            # a task whose worker dies is retried by the runner (once), not by the scheduler
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}), sigint_ignored():
                self.cluster = distributed.LocalCluster(
                    n_workers=int(n), threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, silence_logs=logging.CRITICAL)
            self.client = distributed.Client(self.cluster)
            # every worker, before the first task: counted and handed tasks while the rest were still starting,
            # a local:16 began on 5 workers and said so (issue 31)
            self.client.wait_for_workers(int(n), timeout=WORKERS_SECONDS)
        else:
            if "://" not in address:
                raise TuilabError(f"--cluster {address!r}: give a scheduler's address (tcp://HOST:PORT) or "
                                  "local:N for N worker processes here")
            try:
                self.client = distributed.Client(address, timeout=f"{CONNECT_SECONDS}s")
            except Exception as exc:  # OSError, TimeoutError, ValueError: each says the same to a person
                reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise TuilabError(f"--cluster {address}: no Dask scheduler answered ({reason}); start one with "
                                  "`dask scheduler` and workers with `dask worker ADDRESS`, or use "
                                  "--cluster local:N") from None
        if self.cluster is None:  # a running scheduler: as many workers as are there (said), at least one
            try:
                self.client.wait_for_workers(1, timeout=WORKERS_SECONDS)
            except Exception:
                with contextlib.suppress(Exception):
                    self.client.close(timeout=5)
                raise TuilabError(f"--cluster {address}: the scheduler has no workers (none joined within "
                                  f"{WORKERS_SECONDS:g} s); start some with `dask worker {address}`") from None
        tag = uuid.uuid4().hex[:12]
        self.queue_name, self.stop_name = f"tuilab-events-{tag}", f"tuilab-stop-{tag}"
        self.queue = distributed.Queue(self.queue_name, client=self.client)
        self.stop = distributed.Event(self.stop_name, client=self.client)
        self._killed = distributed.KilledWorker
        self._wait = distributed.wait

    def describe(self) -> str:
        n = len(self.client.scheduler_info().get("workers", {}))
        where = f"a local Dask cluster of {n} workers" if self.cluster else f"{n} Dask workers at {self.address}"
        return where

    def submit(self, task, source=None):
        return self.client.submit(tasks_mod.train_on_dask_worker, task, self.queue_name, self.stop_name, source,
                                  key=f"tuilab-run-{task.index}-{uuid.uuid4().hex[:8]}", pure=False)

    def wait(self, futures, timeout: float) -> set:
        try:
            return set(self._wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            return set()

    def drain(self) -> list:
        return list(self.queue.get(batch=True))

    def result(self, future):
        try:
            return future.result()
        except self._killed:
            raise WorkerLost("its Dask worker died") from None

    def after_loss(self) -> None:
        pass  # the scheduler has moved on to the workers that live

    def request_stop(self) -> None:
        self.stop.set()

    def cancel_waiting(self, futures) -> None:
        pass  # a Dask cancel drops running tasks too; those not begun see the stop and return at once

    def scatter(self, source):
        return self.client.scatter(source, broadcast=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)


def check_cluster_address(address: str) -> None:
    """One line (TuilabError) for a cluster that cannot work: no Dask, a malformed address, or no
    scheduler listening there (a TCP connection tried for at most CONNECT_SECONDS)."""
    import socket
    from urllib.parse import urlsplit

    try:
        import distributed  # noqa: F401
    except ImportError:
        raise TuilabError(f"--cluster needs Dask (its distributed scheduler): {pip_install('cluster')}") from None
    if address.startswith("local:"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise TuilabError(f"--cluster {address}: write local:N with N the number of worker processes, e.g. local:2")
        return
    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or parts.port is None:
        raise TuilabError(f"--cluster {address!r}: give a scheduler's address as tcp://HOST:PORT, or local:N "
                          "for N worker processes here")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise TuilabError(f"--cluster {address}: no Dask scheduler answered ({exc.strerror or exc}); start "
                          "one with `dask scheduler` and workers with `dask worker ADDRESS`, "
                          "or use --cluster local:N") from None


def make_executor(cluster: str | None, jobs: int):
    """--cluster (or TUILAB_CLUSTER) if given, else N local processes."""
    cluster = cluster or os.environ.get(CLUSTER_ENV) or None
    if cluster:
        return DaskCluster(cluster)
    return LocalProcesses(jobs)
