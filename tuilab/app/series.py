"""A history of any length kept in a fixed number of points, for drawing (no Textual here).

Values arrive one at a time (a run's loss per epoch). They are kept in buckets of equal
width, each holding its first, lowest, highest and last value and where (which epoch) the
lowest and highest came; when the buckets fill up, pairs of neighbours merge and the width
doubles. So a history of 40,000 epochs costs what one of a few hundred does, appending is
O(1) on average, and a spike stays visible: it is some bucket's highest value, however far
the series is thinned. A bucket's four values in the order they came are points of the
true curve, so `polyline` draws a thinned curve as the curve it is (a falling loss falls;
a spike rises and comes back where it was). The full history is in the records
(metrics.csv), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POINTS = 256  # buckets kept: between POINTS and 2 * POINTS once the series is long


@dataclass(frozen=True)
class SeriesView:
    """A Series frozen at a moment: bucket k covers values [k * width, (k + 1) * width).
    lo_at and hi_at are the 1-based indices (epochs) of each bucket's lowest and highest value (0: none)."""

    count: int = 0
    width: int = 1
    lo: tuple[float, ...] = ()
    hi: tuple[float, ...] = ()
    last: tuple[float, ...] = ()
    first: tuple[float, ...] = ()
    lo_at: tuple[int, ...] = ()
    hi_at: tuple[int, ...] = ()

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
        lo, hi, last, first, lo_at, hi_at = [], [], [], [], [], []
        for i in range(0, n, k):
            j = min(i + k, n)
            low = _extreme(self.lo[i:j], self.lo_at[i:j], lambda a, b: a < b)
            high = _extreme(self.hi[i:j], self.hi_at[i:j], lambda a, b: a > b)
            lo.append(low[0])
            lo_at.append(low[1])
            hi.append(high[0])
            hi_at.append(high[1])
            first.append(self.first[i])
            last.append(self.last[j - 1])
        return _Coarse(self.count, self.width * k, tuple(lo), tuple(hi), tuple(last), tuple(first), tuple(lo_at),
                       tuple(hi_at))

    def finite_last(self) -> list[float]:
        return [v for v in self.last if math.isfinite(v)]

    def polyline(self) -> tuple[list[int], list[float]]:
        """Points of the curve in time order: each bucket's first, lowest, highest and last finite value at
        the epoch it came (one point an epoch, the last where there is one a bucket)."""
        xs: list[int] = []
        ys: list[float] = []
        for k, end in enumerate(self.xs):
            if self.width == 1:
                points = [(end, self.last[k])]
            else:
                start = k * self.width + 1
                points = sorted([(start, self.first[k]), (self.lo_at[k], self.lo[k]), (self.hi_at[k], self.hi[k]),
                                 (end, self.last[k])], key=lambda p: p[0])
            for x, y in points:
                if x < 1 or not math.isfinite(y) or (xs and xs[-1] == x):
                    continue
                xs.append(x)
                ys.append(y)
        return xs, ys


def _extreme(values, at, better) -> tuple[float, int]:
    """The best of values (by better(a, b): a beats b) and its index; the earliest on a tie; NaN, 0 if none."""
    best, where = math.nan, 0
    for v, i in zip(values, at, strict=True):
        if v == v and (best != best or better(v, best)):
            best, where = v, i
    return best, where


class _Coarse(SeriesView):
    """A coarsened view: its buckets hold `width` values, but the last one may hold fewer."""


class Series:
    """Values appended one by one, kept as at most 2 * points buckets (see the module's text)."""

    __slots__ = ("points", "width", "count", "lo", "hi", "last", "first", "lo_at", "hi_at", "_view")

    def __init__(self, points: int = POINTS):
        self.points = max(1, points)
        self.width = 1
        self.count = 0
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.last: list[float] = []
        self.first: list[float] = []
        self.lo_at: list[int] = []  # the 1-based index of the bucket's lowest value; 0 while it has none
        self.hi_at: list[int] = []
        self._view: SeriesView | None = SeriesView()

    def append(self, value: float) -> None:
        v = float(value)
        finite = math.isfinite(v)
        self.count += 1
        if (self.count - 1) % self.width == 0:  # a new bucket
            if len(self.last) == 2 * self.points:
                self._merge_pairs()
            self.lo.append(v if finite else math.nan)
            self.hi.append(v if finite else math.nan)
            self.lo_at.append(self.count if finite else 0)
            self.hi_at.append(self.count if finite else 0)
            self.first.append(v)
            self.last.append(v)
        else:
            if finite:
                if not self.lo[-1] <= v:  # lower, or the bucket's first finite value
                    self.lo[-1], self.lo_at[-1] = v, self.count
                if not self.hi[-1] >= v:
                    self.hi[-1], self.hi_at[-1] = v, self.count
            self.last[-1] = v
        self._view = None

    def _merge_pairs(self) -> None:
        # every bucket is complete here (count is a multiple of width): merge 2k and 2k + 1
        lows = [_extreme(self.lo[i:i + 2], self.lo_at[i:i + 2], lambda a, b: a < b) for i in range(0, len(self.lo), 2)]
        highs = [_extreme(self.hi[i:i + 2], self.hi_at[i:i + 2], lambda a, b: a > b)
                 for i in range(0, len(self.hi), 2)]
        self.lo, self.lo_at = [v for v, _ in lows], [i for _, i in lows]
        self.hi, self.hi_at = [v for v, _ in highs], [i for _, i in highs]
        self.first = self.first[0::2]
        self.last = self.last[1::2]
        self.width *= 2

    def view(self) -> SeriesView:
        """A frozen copy, made once per change however often it is asked for."""
        if self._view is None:
            self._view = SeriesView(self.count, self.width, tuple(self.lo), tuple(self.hi), tuple(self.last),
                                    tuple(self.first), tuple(self.lo_at), tuple(self.hi_at))
        return self._view
