"""Training steps on a network: the thin, checked Python face of the chunk kernel."""

from __future__ import annotations

import numpy as np

from tuilab.engine.model import MLP
from tuilab.engine.optim import Optimizer
from tuilab.engine.training import autotune
from tuilab.engine.training.paths import Chunk, run_path
from tuilab.engine.training.threads import limit_to
from tuilab.errors import TuilabError


def train_on_one_core() -> None:
    """Train on one core in this process: it runs beside other training processes (the
    runner's jobs), and paths that keep two cores busy would fight them for the cores."""
    limit_to(1)


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Minibatches in one pass over n_samples (the last one may be short)."""
    return -(-n_samples // batch_size)


def train_steps(
    net: MLP,
    opt: Optimizer,
    theta: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    order: np.ndarray,
    first_batch: int,
    lrs: np.ndarray,
    batch_size: int,
    grad_sq: np.ndarray | None = None,
    max_cores: int | None = None,
) -> tuple[int, np.ndarray]:
    """Run len(lrs) minibatch steps in one kernel call, batches taken from `order`.

    Returns (steps done, per-step losses); fewer steps than asked means a NaN/Inf
    loss at the next one (its loss is losses[done]). grad_sq, if given, is
    (len(lrs), n_layers) and receives each layer's squared gradient norm per step.
    The steps run on the path training.autotune chose for this shape on this machine
    (training.paths): one thread, BLAS on two, rows gathered ahead by a helper (the same
    bits), or the first layer shared with a partner thread (sums in another order, so
    equal up to rounding). max_cores caps the cores a path may keep busy: runs racing
    each other train one a core, which gets more done than each in turn on every core.
    """
    n_steps = len(lrs)
    if batch_size < 1:
        raise TuilabError(f"batch_size must be a whole number >= 1, got {batch_size}")
    if first_batch < 0:
        raise TuilabError(f"first_batch must be >= 0, got {first_batch}")
    if (first_batch + n_steps - 1) * batch_size >= len(order) and n_steps:
        raise TuilabError(
            f"{n_steps} steps from batch {first_batch} run past the {len(order)} samples of an epoch")
    net.check_arrays(theta, X, Y)
    if opt.dtype != net.dtype or opt.state.shape[1] != theta.shape[0]:
        raise TuilabError("the optimizer was made for another network (size or dtype differs)")
    if len(order) and (order.min() < 0 or order.max() >= len(X)):
        raise TuilabError(f"order holds row numbers outside 0..{len(X) - 1}")
    if len(order) > len(X):
        raise TuilabError(f"order has {len(order)} entries for {len(X)} rows")
    if grad_sq is None:
        grad_sq = np.zeros((0, net.layout.n_layers), np.float64)
    elif grad_sq.shape != (n_steps, net.layout.n_layers) or grad_sq.dtype != np.float64:
        raise TuilabError(f"grad_sq must be float64 of shape ({n_steps}, {net.layout.n_layers}), "
                          f"got {grad_sq.dtype} {grad_sq.shape}")
    losses = np.full(n_steps, np.nan, np.float64)
    chunk = Chunk(net, theta, opt.state, opt.scal, opt.hp, opt.opt_id, np.ascontiguousarray(X),
                  np.ascontiguousarray(Y), np.ascontiguousarray(order, np.int64), first_batch,
                  np.ascontiguousarray(lrs, np.float64), batch_size, losses, grad_sq)
    done = run_path(autotune.choose(chunk, max_cores), chunk)
    return int(done), losses
