"""Training steps on a network: the thin, checked Python face of the chunk kernel."""

from __future__ import annotations

import math
import time

import numpy as np

from tuilab.engine.nn.model import MLP
from tuilab.engine.nn.optim import Optimizer
from tuilab.engine.training import autotune
from tuilab.engine.training.kernel_choice import wait_for_kernel
from tuilab.engine.training.paths import Chunk, run_path
from tuilab.engine.training.threads import budget, limit_to
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
) -> tuple[int, np.ndarray, float]:
    """Run len(lrs) minibatch steps in one kernel call, batches taken from `order`.

    Returns (steps done, per-step losses, the seconds they trained, not counting a wait for cores); fewer
    steps than asked means a NaN/Inf loss at the next one (its loss is losses[done]). grad_sq, if given, is
    (len(lrs), n_layers) and receives each layer's squared gradient norm per step; with
    3 n_layers columns, also the squared norms of each step's change of each layer's
    parameters and of the parameters after it (the optimizer's internals), in the steps
    whose column n_layers is not NaN on the way in (engine.internals.step_norms_buffer).
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
    elif (grad_sq.shape not in ((n_steps, net.layout.n_layers), (n_steps, 3 * net.layout.n_layers))
          or grad_sq.dtype != np.float64):
        raise TuilabError(f"grad_sq must be float64 of shape ({n_steps}, {net.layout.n_layers}), or "
                          f"({n_steps}, {3 * net.layout.n_layers}) with the internals; "
                          f"got {grad_sq.dtype} {grad_sq.shape}")
    losses = np.full(n_steps, np.nan, np.float64)
    if opt.closure is not None:
        return _closure_steps(net, opt, theta, X, Y, order, first_batch, lrs, batch_size, grad_sq, losses)
    chunk = Chunk(net, theta, opt.state, opt.scal, opt.hp, opt.opt_id, np.ascontiguousarray(X),
                  np.ascontiguousarray(Y), np.ascontiguousarray(order, np.int64), first_batch,
                  np.ascontiguousarray(lrs, np.float64), batch_size, losses, grad_sq)
    wait_for_kernel(opt.opt_id)  # a kernel still compiling in the background (warmup.ensure_compiled)
    done, seconds = run_path(autotune.choose(chunk, max_cores), chunk)
    return int(done), losses, seconds


def _closure_steps(net, opt, theta, X, Y, order, first_batch, lrs, batch_size, grad_sq, losses):
    """train_steps for an optimizer that re-evaluates the loss within a step (L-BFGS): each step hands it
    a closure over the step's batch, the whole training set in its own row order when the batch is all
    of it (so every epoch sums the same rows the same way); the loss and gradient norms are those where
    the step began."""
    L = net.layout
    t0 = time.perf_counter()
    done = 0
    with budget().hold(1):
        for s, lr in enumerate(lrs):
            lo = (first_batch + s) * batch_size
            rows = order[lo:lo + batch_size]
            Xb, Yb = (X, Y) if len(rows) == len(X) else (X[rows], Y[rows])
            first = []

            def closure(th, Xb=Xb, Yb=Yb, first=first):
                loss, g = net.loss_and_grad(th, Xb, Yb)
                if not first:
                    first.append(g)
                return loss, g

            measure = grad_sq.shape[1] > L.n_layers and not np.isnan(grad_sq[s, L.n_layers])  # NaN: left out
            before = theta.copy() if measure else None
            losses[s] = opt.step_closure(theta, closure, float(lr))
            if not math.isfinite(losses[s]):
                break
            if len(grad_sq):
                g = first[0]
                for l in range(L.n_layers):
                    part = g[L.layer_slice(l)].astype(np.float64)
                    grad_sq[s, l] = part.dot(part)
                    if before is not None:
                        now = theta[L.layer_slice(l)].astype(np.float64)
                        change = now - before[L.layer_slice(l)]
                        grad_sq[s, L.n_layers + l], grad_sq[s, 2 * L.n_layers + l] = change.dot(change), now.dot(now)
            done += 1
    return done, losses, time.perf_counter() - t0
