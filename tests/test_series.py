"""A long history kept in a bounded number of points, spikes and ends kept."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tuilab.app.series import Series


def test_bounded_whatever_the_length_and_every_value_accounted_for():
    s = Series(points=16)
    values = np.random.default_rng(0).normal(size=10_000)
    for v in values:
        s.append(v)
        assert len(s.last) <= 32
    view = s.view()
    assert len(view) == 10_000 and 16 <= len(view.last) <= 32
    w = view.width
    for k in range(len(view.last)):  # each bucket is exactly its slice of the history
        chunk = values[k * w:(k + 1) * w]
        assert view.lo[k] == chunk.min() and view.hi[k] == chunk.max() and view.last[k] == chunk[-1]
    assert view.xs[-1] == 10_000 and view.last[-1] == values[-1]


def test_a_single_spike_survives_thinning():
    s = Series(points=8)
    for i in range(50_000):
        s.append(100.0 if i == 31_337 else 1.0)
    xs, ys = s.view().polyline()
    assert max(ys) == 100.0 and min(ys) == 1.0
    k = ys.index(100.0)
    assert xs[k] == 31_338  # drawn at its own epoch
    assert ys[k - 1] == ys[k + 1] == 1.0  # and the line comes back down after it


def test_nan_values_are_skipped_for_the_range_but_kept_as_last():
    s = Series(points=2)
    for v in [1.0, math.nan, 3.0, math.nan, math.nan, math.nan, 2.0, 5.0]:
        s.append(v)
    view = s.view()
    assert view.width == 2 and len(view.last) == 4
    assert view.lo[2] != view.lo[2]  # a bucket of NaNs only has no range
    assert view.lo[0] == 1.0 and view.hi[1] == 3.0 and math.isnan(view.last[1])
    assert view.finite_last() == [5.0]


def test_view_is_made_once_per_change():
    s = Series()
    s.append(1.0)
    assert s.view() is s.view()
    before = s.view()
    s.append(2.0)
    assert s.view() is not before and len(s.view()) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), max_size=400), st.integers(1, 9))
def test_range_matches_the_history(values, points):
    s = Series(points=points)
    for v in values:
        s.append(v)
    view = s.view()
    assert len(view) == len(values) and len(view.last) <= 2 * points
    finite = [v for v in values if math.isfinite(v)]
    lows = [x for x in view.lo if x == x]
    if finite:
        assert min(lows) == min(finite) and max(x for x in view.hi if x == x) == max(finite)
    else:
        assert lows == []


def test_coarsened_keeps_range_count_and_last():
    s = Series(points=64)
    values = np.random.default_rng(1).normal(size=3_001)
    for v in values:
        s.append(v)
    view = s.view()
    c = view.coarsened(10)
    assert len(c.last) <= 10 and len(c) == 3_001
    assert min(c.lo) == values.min() and max(c.hi) == values.max() and c.last[-1] == values[-1]
    assert c.xs[-1] == 3_001 and all(a < b for a, b in zip(c.xs, c.xs[1:], strict=False))
    assert view.coarsened(10_000) is view


def polyline_is_on_the_curve(values, xs, ys):
    """Every point is the value at its epoch, in time order."""
    assert all(a < b for a, b in zip(xs, xs[1:], strict=False))
    for x, y in zip(xs, ys, strict=True):
        assert y == values[x - 1]


def test_a_falling_curve_thinned_still_falls():
    """The sawtooth of issue 27: a loss falling over 300 epochs drawn in 16 buckets went low, high, low, high."""
    values = [2.3 * 0.99 ** e for e in range(300)]
    s = Series()
    for v in values:
        s.append(v)
    for buckets in (16, 40, 100, 1000):
        xs, ys = s.view().coarsened(buckets).polyline()
        polyline_is_on_the_curve(values, xs, ys)
        assert all(a > b for a, b in zip(ys, ys[1:], strict=False)), buckets  # strictly falling, as the loss
        assert xs[0] == 1 and xs[-1] == 300  # from the first epoch to the last


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), max_size=600), st.integers(1, 9),
       st.integers(1, 50))
def test_polyline_points_are_the_history_in_time_order_with_its_extremes(values, points, buckets):
    s = Series(points=points)
    for v in values:
        s.append(v)
    view = s.view().coarsened(buckets)
    xs, ys = view.polyline()
    polyline_is_on_the_curve(values, xs, ys)
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        assert min(ys) == min(finite) and max(ys) == max(finite)
    else:
        assert ys == []
