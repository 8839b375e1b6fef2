"""A network's own loss landscape (issue 30): the training loss over a plane through its parameters, with the
run's path (its parameter snapshots) projected on it, and how much of the path the plane holds.

Planes, each an origin and two directions, a point (a, b) standing for origin + a d1 + b d2:
- pca: through the run's last θ, along the first two principal components of its snapshots centred on it
  (unit vectors; the share of the path's variance each explains comes with them);
- random: through the last θ, along two filter-normalised random directions (Li et al. 2018, "Visualizing the
  Loss Landscape of Neural Nets"): a Gaussian direction scaled, unit by unit (a dense layer's row of incoming
  weights is its "filter"), to the norm of θ's own row, the biases' directions 0 as in their code's default;
- runs: through θ0, the start that runs of one experiment share, along two runs' ends less θ0, so that θ0 is
  (0, 0), one end (1, 0) and the other (0, 1): every run of the experiment is then drawn in one frame.

A path of thousands of dimensions drawn in two is a projection: `off_plane` says how far each snapshot lies from
the plane (against its distance from the run's end), and the loss there is compared with the plane's loss at its
projection.
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tuilab.engine.records.run_records import write_atomic
from tuilab.errors import TuilabError
from tuilab.kernels.landscape import plane_losses

DIRECTIONS = ("pca", "random", "runs")
MISREAD = 0.10  # a snapshot whose true loss and the plane's differ by more than this share is flagged


@dataclass
class Plane:
    kind: str
    origin: np.ndarray  # (p,) float64
    d1: np.ndarray
    d2: np.ndarray
    explained: np.ndarray = field(default_factory=lambda: np.zeros(0))  # pca: each component's variance share


def pca_plane(snapshots: np.ndarray) -> Plane:
    """The plane of the snapshots' first two principal components, centred on the last snapshot. The SVD of
    the (k, p) differences goes through their k x k Gram matrix: k is at most 64, p may be millions."""
    S = np.asarray(snapshots, np.float64)
    if len(S) < 3:
        raise TuilabError(f"a PCA plane needs 3 or more snapshots of the run, it kept {len(S)}; "
                          "use --directions random")
    D = S - S[-1]
    gram = D @ D.T
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    if values[1] <= 1e-12 * max(values[0], 1e-300):
        raise TuilabError("the run's snapshots lie on a line (they span one direction): a PCA plane needs two; "
                          "use --directions random")
    d1, d2 = (D.T @ vectors[:, k] / math.sqrt(values[k]) for k in (0, 1))
    # an eigenvector's sign is arbitrary (and LAPACKs differ): the start is put at a <= 0, b <= 0, so that the
    # same run draws the same picture everywhere, from the lower left to the end at (0, 0)
    d1, d2 = (-d if D[0] @ d > 0 else d for d in (d1, d2))
    return Plane("pca", S[-1].copy(), d1, d2, values / values.sum())


def random_plane(layout, theta: np.ndarray, seed: int = 0) -> Plane:
    """Two filter-normalised Gaussian directions through theta (seeded)."""
    theta = np.asarray(theta, np.float64)
    rng = np.random.default_rng([seed, 30])
    ds = []
    for _ in range(2):
        d = np.zeros_like(theta)
        for l in range(layout.n_layers):
            W, _ = layout.layer(theta, l)
            D = rng.standard_normal(W.shape)
            scale = np.linalg.norm(W, axis=1, keepdims=True) / np.maximum(np.linalg.norm(D, axis=1, keepdims=True),
                                                                          1e-300)
            Dw, _ = layout.layer(d, l)  # views into d
            Dw[:] = D * scale
        ds.append(d)
    return Plane("random", theta.copy(), ds[0], ds[1])


def runs_plane(theta0: np.ndarray, end_a: np.ndarray, end_b: np.ndarray) -> Plane:
    """The plane through theta0 and two ends: theta0 at (0, 0), end_a at (1, 0), end_b at (0, 1)."""
    o = np.asarray(theta0, np.float64)
    d1, d2 = np.asarray(end_a, np.float64) - o, np.asarray(end_b, np.float64) - o
    n1, n2 = np.linalg.norm(d1), np.linalg.norm(d2)
    if n1 == 0 or n2 == 0 or abs(d1 @ d2) >= (1 - 1e-9) * n1 * n2:
        raise TuilabError("the two runs' ends and their start lie on one line: no plane through them; "
                          "choose two runs that went different ways (--run)")
    return Plane("runs", o, d1, d2)


def project(plane: Plane, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coords (k, 2), distance of each point from the plane): least squares on the directions (they need not
    be orthogonal)."""
    P = np.asarray(points, np.float64) - plane.origin
    B = np.stack([plane.d1, plane.d2])  # (2, p)
    coords = np.linalg.solve(B @ B.T, B @ P.T).T
    off = np.linalg.norm(P - coords @ B, axis=1)
    return coords, off


def losses_on_plane(net, plane: Plane, coords: np.ndarray, X: np.ndarray, Y: np.ndarray,
                    threads: int = 1) -> np.ndarray:
    """The loss on (X, Y) at each point of the plane, by the network's forward kernels, `threads` batches of
    points at once (the kernel lets go of the GIL)."""
    dtype = net.dtype
    theta, d1, d2 = (np.ascontiguousarray(v, dtype) for v in (plane.origin, plane.d1, plane.d2))
    X, Y = np.ascontiguousarray(X, dtype), np.ascontiguousarray(Y, dtype)
    L = net.layout

    def first_layer(v):  # X W1ᵀ of a vector's first weights: the plane's points mix three of them
        W, _ = L.layer(v, 0)
        return np.ascontiguousarray(X @ W.T)

    P0, Pa, Pb = first_layer(theta), first_layer(d1), first_layer(d2)
    coords = np.ascontiguousarray(coords, np.float64).reshape(-1, 2)
    out = np.empty(len(coords))
    parts = [p for p in np.array_split(np.arange(len(coords)), max(1, min(threads, len(coords)))) if len(p)]

    def run(idx):
        chunk = np.empty(len(idx))
        plane_losses(theta, d1, d2, coords[idx], X, Y, P0, Pa, Pb, L.w_off, L.b_off, L.sizes, net.acts,
                     net.loss, chunk)
        out[idx] = chunk

    if len(parts) == 1:
        run(parts[0])
    else:
        from tuilab.engine.training.threads import set_blas_threads

        set_blas_threads(1)  # a thread a batch of points: a BLAS of several threads in each would fight them
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(run, parts))
    return out


@dataclass
class Landscape:
    """What `tuilab landscape` computes and keeps in <run>/landscape.npz."""

    kind: str
    a: np.ndarray  # (nx,) the first direction's coordinates of the grid
    b: np.ndarray  # (ny,)
    loss: np.ndarray  # (ny, nx)
    path: np.ndarray  # (snapshots, 2): the run's snapshots projected
    epochs: np.ndarray  # (snapshots,)
    explained: np.ndarray  # pca: each component's share of the path's variance; empty otherwise
    true_loss: np.ndarray  # (snapshots,): the loss at each snapshot itself
    plane_loss: np.ndarray  # (snapshots,): the loss at its projection on the plane
    off_plane: np.ndarray  # (snapshots,): its distance from the plane over its distance from the run's end
    rows: int  # the training rows the loss is taken on
    others: dict = field(default_factory=dict)  # runs: every other run's projected path, by label

    @property
    def misread(self) -> np.ndarray:
        """Snapshots where the plane's loss misstates the true one by more than MISREAD."""
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.abs(self.plane_loss - self.true_loss) / np.maximum(np.abs(self.true_loss), 1e-12)
        return gap > MISREAD

    def save(self, path) -> None:
        """<run>/landscape.npz, written whole."""
        buf = io.BytesIO()
        np.savez(buf, a=self.a, b=self.b, loss=self.loss, path=self.path, explained=self.explained,
                 true_loss=self.true_loss, plane_loss=self.plane_loss, off_plane=self.off_plane, epochs=self.epochs,
                 kind=np.array(self.kind), rows=np.array(self.rows))
        write_atomic(path, buf.getvalue())


def window(points: np.ndarray, kind: str, span: float | None) -> tuple[float, float, float, float]:
    """The grid's extent: ±span about the origin when given; else the points' with a quarter more on each side
    (random directions: ±1, Li et al.'s, grown to hold the points)."""
    if span is not None:
        if not (span > 0 and math.isfinite(span)):
            raise TuilabError(f"--span must be a number > 0, got {span}")
        return -span, span, -span, span
    pts = np.vstack([np.asarray(points, np.float64).reshape(-1, 2), [[0.0, 0.0]]])
    if kind == "random":
        pts = np.vstack([pts, [[-1.0, -1.0], [1.0, 1.0]]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum((hi - lo) * 0.25, 1e-3)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def compute(net, plane: Plane, snapshots: np.ndarray, epochs: np.ndarray, X: np.ndarray, Y: np.ndarray,
            grid: int = 31, span: float | None = None, threads: int = 1, others: dict | None = None) -> Landscape:
    """The landscape on a grid x grid plane around the path (and the other runs' paths, for a runs plane)."""
    if grid < 3:
        raise TuilabError(f"--grid must be 3 or more, got {grid}")
    path, off = project(plane, snapshots)
    projected_others = {label: project(plane, s)[0] for label, s in (others or {}).items()}
    every = np.vstack([path, *projected_others.values()]) if projected_others else path
    x0, x1, y0, y1 = window(every, plane.kind, span)
    a, b = np.linspace(x0, x1, grid), np.linspace(y0, y1, grid)
    coords = np.stack(np.meshgrid(a, b), axis=-1).reshape(-1, 2)
    loss = losses_on_plane(net, plane, coords, X, Y, threads).reshape(grid, grid)
    plane_loss = losses_on_plane(net, plane, path, X, Y, threads)
    true_loss = np.array([net.evaluate(np.ascontiguousarray(s, net.dtype), X, Y)[0] for s in snapshots])
    to_end = np.linalg.norm(np.asarray(snapshots, np.float64) - np.asarray(snapshots[-1], np.float64), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        off_share = np.where(to_end > 0, off / to_end, 0.0)
    return Landscape(plane.kind, a, b, loss, path, np.asarray(epochs), plane.explained, true_loss, plane_loss,
                     off_share, len(X), projected_others)
