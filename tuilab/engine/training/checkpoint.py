"""A run's checkpoint at an epoch's end: everything its remaining epochs depend on, written whole.

theta, the optimizer's state and scalars, the bit generator that orders the minibatches,
the epoch and step reached, and the figures the summary needs. Resumed from it, a run
takes exactly the steps it would have taken uninterrupted (the schedule is a function of
the epoch, Demon's of the step count in the scalars).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tuilab.engine.records import snapshots as snapshots_mod
from tuilab.engine.records.run_records import RunRecords, slug, write_atomic
from tuilab.errors import TuilabError

if TYPE_CHECKING:
    from tuilab.engine.config.experiment import RunConfig

NAME = "checkpoint.npz"
FORK_POINTS = "fork_points"  # <run>/fork_points/epoch-NNNNNN.npz: checkpoints kept for tuilab fork
FORK_BYTES = 32 * 2**20  # at most this much of a run's fork points (a zoo of 20 runs: 20 times it at most)


def fork_stride(asked: int, epochs: int, nbytes: int) -> int:
    """Every how many epochs a run keeps a fork point (epoch 0 and its last epoch always): up to `asked` of
    them, fewer where FORK_BYTES would not hold them; 0: none."""
    if asked <= 0:
        return 0
    most = max(2, min(asked, FORK_BYTES // max(nbytes, 1)))
    return max(1, -(-epochs // (most - 1)))


def fork_point(run_folder: Path, epoch: int) -> Path:
    return Path(run_folder) / FORK_POINTS / f"epoch-{epoch:06d}.npz"


def fork_epochs(run_folder: Path) -> list[int]:
    """The epochs a run kept fork points at, in order."""
    folder = Path(run_folder) / FORK_POINTS
    if not folder.is_dir():
        return []
    return sorted(int(p.stem.split("-")[1]) for p in folder.glob("epoch-*.npz") if p.stem.split("-")[1].isdigit())


def save(path: Path, trainer) -> None:
    """Write `trainer`'s state to path (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, to_bytes(trainer))


def to_bytes(trainer, snapshots: bool = False) -> bytes:
    """`trainer`'s state as the bytes of a checkpoint file (sent from a worker to the client). snapshots: its
    parameter snapshots too, for a task's state that travels between processes (a checkpoint on disk leaves
    them to the run's records, engine.records.snapshots: up to 64 MB, not to be rewritten every half second)."""
    meta = {"epoch": trainer.epoch, "step": trainer.step, "samples_seen": trainer.samples_seen,
            "train_seconds": trainer.train_seconds, "rng": trainer.order_rng.bit_generator.state,
            "last_metrics": trainer.last_metrics}
    arrays, numbers = trainer.opt.extra_state()  # L-BFGS's history
    meta["opt_numbers"] = numbers
    buf = io.BytesIO()
    np.savez(buf, theta=trainer.theta, state=trainer.opt.state, scal=trainer.opt.scal,
             meta=np.frombuffer(json.dumps(meta, default=float).encode(), np.uint8),
             **{f"opt_{k}": v for k, v in arrays.items()}, **_snapshot_arrays(trainer, snapshots),
             **({"sharp_v": trainer.sharp.v} if trainer.sharp is not None else {}))
    return buf.getvalue()


def _snapshot_arrays(trainer, wanted: bool) -> dict:
    if not wanted or trainer.snapshots.last is None:
        return {}
    epochs, theta = trainer.snapshots.arrays()
    return {"snap_epochs": epochs, "snap_theta": theta}


def with_snapshots(data: bytes, folder: Path) -> bytes:
    """A checkpoint's bytes from disk with the snapshots the run's folder keeps added: a task resumed on a worker
    that does not share this disk carries them."""
    if not snapshots_mod.on_disk(folder):
        return data
    try:
        epochs, theta = snapshots_mod.load(folder)
    except TuilabError:
        return data
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("snap_")}
    buf = io.BytesIO()
    np.savez(buf, **arrays, snap_epochs=epochs, snap_theta=theta)
    return buf.getvalue()


def snapshots_in(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """The parameter snapshots a task's state carries (to_bytes with snapshots), or None."""
    with np.load(io.BytesIO(data)) as z:
        if "snap_epochs" not in z.files:
            return None
        return z["snap_epochs"], z["snap_theta"]


def restore(data: bytes, trainer) -> int:
    """A checkpoint's bytes (to_bytes) into a freshly made `trainer` of the same run; returns its epoch."""
    return load(io.BytesIO(data), trainer, "the checkpoint sent with the task")


def load(path, trainer, shown=None) -> int:
    """Put the checkpoint's state into a freshly made `trainer` of the same run; returns its epoch."""
    path_shown = shown or path
    try:
        with np.load(path) as z:
            theta, state, scal = z["theta"], z["state"], z["scal"]
            meta = json.loads(z["meta"].tobytes().decode())
            extra = {k[4:]: z[k] for k in z.files if k.startswith("opt_")}
            snaps = (z["snap_epochs"], z["snap_theta"]) if "snap_epochs" in z.files else None
            sharp_v = z["sharp_v"] if "sharp_v" in z.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise TuilabError(f"{path_shown}: not a readable checkpoint ({type(exc).__name__}); "
                          "delete it to redo that run from the start") from None
    # a fork (engine.records.fork) onto another optimizer starts it fresh; onto the same one it keeps the scalars
    # its own settings make (Demon's T, maximize)
    fresh = bool(meta.get("fresh_optimizer"))
    if theta.shape != trainer.theta.shape or (not fresh and state.shape != trainer.opt.state.shape):
        raise TuilabError(f"{path_shown}: the checkpoint is of another network or optimizer than config.toml says")
    trainer.theta[:] = theta
    if not fresh:
        own = trainer.opt.scal.copy()
        trainer.opt.state[:] = state
        trainer.opt.scal[:len(scal)] = scal  # an older tuilab kept fewer scalars: the rest start fresh
        for k in meta.get("own_scalars", ()):
            trainer.opt.scal[k] = own[k]
        if extra:
            trainer.opt.load_extra_state(extra, meta.get("opt_numbers", {}))
    trainer.order_rng.bit_generator.state = meta["rng"]
    trainer.epoch, trainer.step = int(meta["epoch"]), int(meta["step"])
    trainer.samples_seen, trainer.train_seconds = int(meta["samples_seen"]), float(meta["train_seconds"])
    trainer.last_metrics = meta["last_metrics"]
    _restore_snapshots(trainer, snaps)
    if sharp_v is not None and trainer.sharp is not None and sharp_v.shape == trainer.sharp.v.shape:
        trainer.sharp.v = sharp_v  # the power iteration's warm start: a resumed run measures as one never stopped
    return trainer.epoch


def _restore_snapshots(trainer, snaps) -> None:
    """The snapshots kept up to the checkpoint's epoch: carried in a task's state, else what the run's records
    folder keeps (those of epochs past the checkpoint are dropped: those epochs are trained again)."""
    if snaps is None and trainer.checkpoint is not None and snapshots_mod.on_disk(trainer.checkpoint.parent):
        try:
            snaps = snapshots_mod.load(trainer.checkpoint.parent)
        except TuilabError:
            snaps = None  # unreadable: they begin again from here; the run's training goes on
    if snaps is not None:
        trainer.snapshots.restore(snaps[0], snaps[1], trainer.epoch, trainer.theta)
    else:
        trainer.snapshots.offer(trainer.epoch, trainer.theta)


def epoch_of(path: Path | None) -> int:
    """The epoch a checkpoint was written at; 0 when there is none (the run starts over)."""
    if path is None or not path.is_file():
        return 0
    try:
        with np.load(path) as z:
            return int(json.loads(z["meta"].tobytes().decode())["epoch"])
    except (OSError, KeyError, ValueError):
        return 0


def not_started(run: RunConfig) -> dict:
    """A run's summary before it has trained an epoch."""
    o = run.optimizer
    return {"label": run.label, "optimizer": o.name, "lr": o.lr, "status": "interrupted",
            "epochs_done": 0, "steps_done": 0}


def checkpoint_of(records: RunRecords | None, run: RunConfig):
    """Where a run's checkpoint lives (beside its params.npz), or None without records."""
    return None if records is None else records.out / slug(run.label) / NAME


def checkpoint_epoch(records: RunRecords, run: RunConfig) -> int:
    return epoch_of(checkpoint_of(records, run))
