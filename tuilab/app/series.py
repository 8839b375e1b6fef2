"""A history of any length kept in a fixed number of points, for drawing (no Textual here).

Values arrive one at a time (a run's loss per epoch). They are kept in buckets of equal
width, each holding its lowest, highest and last value; when the buckets fill up, pairs
of neighbours merge and the width doubles. So a history of 40,000 epochs costs what one
of a few hundred does, appending is O(1) on average, and a spike stays visible: it is
some bucket's highest value, however far the series is thinned. The full history is in
the records (metrics.csv), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POINTS = 256  # buckets kept: between POINTS and 2 * POINTS once the series is long


def _lower(a: float, b: float) -> float:
    """The lower of two values, NaN only when both are."""
    if a != a:
        return b
    return a if not b < a else b


def _higher(a: float, b: float) -> float:
    if a != a:
        return b
    return a if not b > a else b


@dataclass(frozen=True)
class SeriesView:
    """A Series frozen at a moment: bucket k covers values [k * width, (k + 1) * width)."""

    count: int = 0
    width: int = 1
    lo: tuple[float, ...] = ()
    hi: tuple[float, ...] = ()
    last: tuple[float, ...] = ()

    def __len__(self) -> int:  # how many values arrived, not how many points are kept
        return self.count

    @property
    def xs(self) -> tuple[int, ...]:
        """The 1-based index of each bucket's last value (an epoch number)."""
        return tuple(min((k + 1) * self.width, self.count) for k in range(len(self.last)))

    def coarsened(self, buckets: int) -> SeriesView:
        """The same history in at most `buckets` buckets (whole groups of neighbours merged)."""
        n = len(self.last)
        if n <= buckets:
            return self
        k = -(-n // buckets)
        lo, hi, last = [], [], []
        for i in range(0, n, k):
            lo.append(min((v for v in self.lo[i:i + k] if v == v), default=math.nan))
            hi.append(max((v for v in self.hi[i:i + k] if v == v), default=math.nan))
            last.append(self.last[min(i + k, n) - 1])
        return _Coarse(self.count, self.width * k, tuple(lo), tuple(hi), tuple(last))

    def finite_last(self) -> list[float]:
        return [v for v in self.last if math.isfinite(v)]

    def envelope(self) -> tuple[list[int], list[float]]:
        """Points for a line that visits each bucket's lowest and highest finite value."""
        xs, ys = [], []
        for x, lo, hi, last in zip(self.xs, self.lo, self.hi, self.last, strict=True):
            if self.width == 1:
                if math.isfinite(last):
                    xs.append(x)
                    ys.append(last)
                continue
            for y in (lo, hi):
                if math.isfinite(y):
                    xs.append(x)
                    ys.append(y)
        return xs, ys


class _Coarse(SeriesView):
    """A coarsened view: its buckets hold `width` values, but the last one may hold fewer."""


class Series:
    """Values appended one by one, kept as at most 2 * points buckets (see the module's text)."""

    __slots__ = ("points", "width", "count", "lo", "hi", "last", "_view")

    def __init__(self, points: int = POINTS):
        self.points = max(1, points)
        self.width = 1
        self.count = 0
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.last: list[float] = []
        self._view: SeriesView | None = SeriesView()

    def append(self, value: float) -> None:
        v = float(value)
        finite = math.isfinite(v)
        if self.count % self.width == 0:  # a new bucket
            if len(self.last) == 2 * self.points:
                self._merge_pairs()
            self.lo.append(v if finite else math.nan)
            self.hi.append(v if finite else math.nan)
            self.last.append(v)
        else:
            if finite:
                self.lo[-1] = _lower(self.lo[-1], v)
                self.hi[-1] = _higher(self.hi[-1], v)
            self.last[-1] = v
        self.count += 1
        self._view = None

    def _merge_pairs(self) -> None:
        # every bucket is complete here (count is a multiple of width): merge 2k and 2k + 1
        self.lo = [_lower(a, b) for a, b in zip(self.lo[0::2], self.lo[1::2], strict=True)]
        self.hi = [_higher(a, b) for a, b in zip(self.hi[0::2], self.hi[1::2], strict=True)]
        self.last = self.last[1::2]
        self.width *= 2

    def view(self) -> SeriesView:
        """A frozen copy, made once per change however often it is asked for."""
        if self._view is None:
            self._view = SeriesView(self.count, self.width, tuple(self.lo), tuple(self.hi), tuple(self.last))
        return self._view
