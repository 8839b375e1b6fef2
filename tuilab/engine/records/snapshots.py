"""Parameter snapshots of a run (issue 30): θ at up to `train.snapshots` epochs (64 by default), spread evenly
over the run whatever its length, epoch 0 (the start) and the last always: the path `tuilab landscape` draws
through the run's own loss landscape. A finished run keeps them in `<run>/snapshots.npz` as `epochs` (k,) and
`theta` (k, parameters) float32, written whole (a temporary name, then renamed).

Evenly without knowing the run's length: a snapshot is kept at every `stride`-th epoch, and when that would pass
the limit the stride doubles and every other one goes. The limit is also what SNAPSHOT_BYTES allows: a wide
network keeps fewer ([784,2048,10]'s 1.6 M parameters, 6.5 MB a snapshot: 9).

While the run trains each kept snapshot is a file of its own, `<run>/snapshots/<epoch>.npy`, written once when it
is kept and deleted when thinning drops it: a run that is killed keeps every snapshot up to its last checkpoint
(resume goes on from them, and trains the epochs past the checkpoint again), and nothing is rewritten (a 64 MB
file rewritten at each new snapshot would be gigabytes over a long run). The run's end gathers them into
snapshots.npz and removes the folder."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np

from tuilab.engine.records.run_records import write_atomic
from tuilab.errors import TuilabError

SNAPSHOT_BYTES = 64 * 2**20  # at most this much of a run's snapshots
FILE = "snapshots.npz"
FOLDER = "snapshots"  # the kept ones while the run trains


def most_kept(asked: int, n_params: int) -> int:
    """How many snapshots a run keeps: the asked number, fewer where SNAPSHOT_BYTES would not hold them (but
    never fewer than 2, the start and the end); 0 when none were asked for."""
    if asked <= 0:
        return 0
    return max(2, min(asked, SNAPSHOT_BYTES // (4 * max(n_params, 1))))


class SnapshotKeeper:
    """θ at epoch 0, at every stride-th epoch (the stride doubling as needed) and at the last offered one; with
    a folder (the run's records), each kept one also on disk as it is kept."""

    def __init__(self, most: int, folder: Path | None = None):
        self.most = most
        self.folder = Path(folder) if folder is not None else None
        self.stride = 1
        self.kept: dict[int, np.ndarray] = {}
        self.last: tuple[int, np.ndarray] | None = None  # the latest offered, kept whatever its epoch

    def offer(self, epoch: int, theta: np.ndarray) -> None:
        if self.most <= 0:
            return
        self.last = (epoch, np.array(theta, np.float32))  # a copy, whatever theta's dtype
        if epoch == 0 or epoch % self.stride == 0:
            self._keep(epoch, self.last[1])

    def _keep(self, epoch: int, theta: np.ndarray) -> None:
        self.kept[epoch] = theta
        if self.folder is not None:
            self._write_one(epoch, theta)
        while len(self.kept) > self.most - 1:  # one place stays free for the last
            self.stride *= 2
            for e in [e for e in self.kept if e and e % self.stride]:
                del self.kept[e]
                if self.folder is not None:
                    (self.folder / FOLDER / f"{e}.npy").unlink(missing_ok=True)

    def _write_one(self, epoch: int, theta: np.ndarray) -> None:
        where = self.folder / FOLDER
        where.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, theta)
        write_atomic(where / f"{epoch}.npy", buf.getvalue())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, theta) in epoch order, the last offered included."""
        kept = dict(self.kept)
        if self.last is not None:
            kept[self.last[0]] = self.last[1]
        epochs = np.array(sorted(kept), np.int64)
        if not len(epochs):
            return epochs, np.zeros((0, 0), np.float32)
        return epochs, np.stack([kept[int(e)] for e in epochs])

    def restore(self, epochs, theta, upto: int, theta_now: np.ndarray | None = None) -> None:
        """Go on from kept snapshots (a task's state, or what the records hold) at epoch `upto`: those after it
        are dropped (those epochs are trained again), and theta_now, the run's θ at upto, is offered."""
        folder, self.folder = self.folder, None  # they are on disk already
        for e, t in zip(np.asarray(epochs).tolist(), theta, strict=True):
            if e <= upto:
                self.offer(int(e), np.asarray(t))
        self.folder = folder
        if folder is not None and (folder / FOLDER).is_dir():
            for f in (folder / FOLDER).glob("*.npy"):
                if not f.stem.isdigit() or int(f.stem) not in self.kept:
                    f.unlink(missing_ok=True)
        if theta_now is not None:
            self.offer(upto, theta_now)

    def finish(self) -> None:
        """At the run's end: snapshots.npz, whole, and the folder of kept ones removed."""
        if self.most <= 0 or self.last is None or self.folder is None:
            return
        write(self.folder, *self.arrays())
        shutil.rmtree(self.folder / FOLDER, ignore_errors=True)


def write(folder: Path, epochs: np.ndarray, theta: np.ndarray) -> None:
    """<folder>/snapshots.npz, written whole (a temporary name, then renamed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, epochs=np.asarray(epochs, np.int64), theta=np.asarray(theta, np.float32))
    write_atomic(folder / FILE, buf.getvalue())


def load(folder) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, theta) a run's folder keeps: snapshots.npz, or, for a run killed before its end, the snapshots
    it had kept so far; one clear line when there are none or they cannot be read."""
    folder = Path(folder)
    path = folder / FILE
    if not path.is_file():
        files = sorted(((int(f.stem), f) for f in (folder / FOLDER).glob("*.npy") if f.stem.isdigit())
                       if (folder / FOLDER).is_dir() else [])
        kept = []
        for epoch, f in files:
            try:
                kept.append((epoch, np.load(f)))
            except FileNotFoundError:
                # a run still training thins its snapshots (and at its end gathers them into FILE) while this
                # reads them: one gone since the listing is one the run no longer keeps, not a fault
                continue
            except (OSError, ValueError) as exc:
                raise TuilabError(f"{folder / FOLDER}: a snapshot is unreadable ({type(exc).__name__})") from None
        if not kept:
            if path.is_file():  # gathered into FILE between the first look and the listing
                return load(folder)
            raise TuilabError(f"{folder}: no {FILE}: this run kept no parameter snapshots (recorded by an older "
                              "tuilab, or with train.snapshots = 0); train it again to draw its landscape")
        return np.array([e for e, _ in kept], np.int64), np.stack([theta for _, theta in kept])
    try:
        with np.load(path) as z:
            epochs, theta = np.asarray(z["epochs"], np.int64), np.asarray(z["theta"], np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise TuilabError(f"{path}: not a readable snapshots file ({type(exc).__name__})") from None
    if theta.ndim != 2 or len(theta) != len(epochs) or len(epochs) < 1:
        raise TuilabError(f"{path}: its epochs and snapshots do not match; train the run again")
    return epochs, theta


def on_disk(folder) -> bool:
    """Whether a run's folder keeps any snapshots (finished, or kept so far)."""
    folder = Path(folder)
    if (folder / FILE).is_file():
        return True
    return (folder / FOLDER).is_dir() and any((folder / FOLDER).glob("*.npy"))
