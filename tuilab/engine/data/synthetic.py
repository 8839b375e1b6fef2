"""Small data sets generated from a seed: 2-D classification sets and a 1-D regression set."""

from __future__ import annotations

import numpy as np


def spirals(n: int, noise: float, rng: np.random.Generator, classes: int = 2):
    """Interleaved arms turning out from the origin, one per class."""
    y = np.arange(n) % classes
    r = rng.uniform(0.05, 1.0, n)
    angle = 3.0 * np.pi * r + 2.0 * np.pi * y / classes
    X = np.column_stack([r * np.cos(angle), r * np.sin(angle)])
    return X + noise * rng.standard_normal((n, 2)), y


def moons(n: int, noise: float, rng: np.random.Generator):
    """Two interlocking half circles."""
    y = np.arange(n) % 2
    t = rng.uniform(0.0, np.pi, n)
    X = np.where(y[:, None] == 0,
                 np.column_stack([np.cos(t), np.sin(t)]),
                 np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)]))
    return X + noise * rng.standard_normal((n, 2)), y


def circles(n: int, noise: float, rng: np.random.Generator, factor: float = 0.5):
    """A small circle (class 1) inside a large one (class 0)."""
    y = np.arange(n) % 2
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    r = np.where(y == 0, 1.0, factor)
    X = np.column_stack([r * np.cos(t), r * np.sin(t)])
    return X + noise * rng.standard_normal((n, 2)), y


def xor(n: int, noise: float, rng: np.random.Generator):
    """The four corners of the unit square; class = x XOR y (n = 4 and noise 0 is the classic table)."""
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    idx = np.arange(n) % 4
    X = corners[idx] + noise * rng.standard_normal((n, 2))
    return X, (corners[idx, 0] != corners[idx, 1]).astype(np.int64)


def blobs(n: int, noise: float, rng: np.random.Generator, classes: int = 3):
    """Gaussian clouds around centres on a circle; noise is each cloud's standard deviation."""
    y = np.arange(n) % classes
    angle = 2.0 * np.pi * np.arange(classes) / classes
    centres = np.column_stack([np.cos(angle), np.sin(angle)])
    return centres[y] + max(noise, 1e-3) * 3.0 * rng.standard_normal((n, 2)), y


def checkerboard(n: int, noise: float, rng: np.random.Generator, cells: int = 4):
    """Points uniform in the unit square; class = (floor(cells x) + floor(cells y)) mod 2: a 4x4 board."""
    X = rng.uniform(0.0, 1.0, (n, 2))
    y = ((np.floor(cells * X[:, 0]) + np.floor(cells * X[:, 1])) % 2).astype(np.int64)
    return X + noise * rng.standard_normal((n, 2)), y


def sine(n: int, noise: float, rng: np.random.Generator):
    """1-D regression: t = sin(2 pi x) + noise for x uniform in [0, 1]."""
    x = rng.uniform(0.0, 1.0, n)
    t = np.sin(2.0 * np.pi * x) + noise * rng.standard_normal(n)
    return x[:, None], t[:, None]


MANY_CLASSES = ("blobs", "spirals")  # the sets data.classes sets
CLASSIFICATION = {"spirals": spirals, "moons": moons, "circles": circles, "xor": xor, "blobs": blobs,
                  "checkerboard": checkerboard}
REGRESSION = {"sine": sine}
