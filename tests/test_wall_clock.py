"""The dashboard header's figures for the whole experiment: wall-clock elapsed, ETA and rate."""

import math

import pytest

from tuilab.app.live import RunView, Snapshot, WallClock


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def view(i, status, samples=0, total=0, epochs=10, paused=False):
    return RunView(key=f"x:{i}", label=f"r{i}", optimizer="sgd", lr=0.1, status=status, paused=paused,
                   epochs=epochs, samples=samples, total_samples=total)


def snap(views, began=100.0, ended=None):
    return Snapshot(tuple(views), (), False, "digits", began=began, ended=ended)


def test_eighteen_runs_two_at_a_time_give_the_eta_of_the_whole_experiment():
    # 18 runs of 10 epochs x 1,000 samples, two at a time, each at 500 samples per wall second
    clock = Clock()
    wall = WallClock(clock)
    def runs(t):
        done = 1000.0 * t  # samples trained in all, both lanes together
        out = []
        for i in range(18):
            lane_done = done / 2 - (i // 2) * 10_000
            if lane_done >= 10_000:
                out.append(view(i, "completed", 10_000, 10_000))
            elif lane_done > 0:
                out.append(view(i, "running", int(lane_done), 10_000))
            else:
                out.append(view(i, "pending"))
        return out
    for t in range(0, 126):  # two minutes of wall time and a bit
        clock.t = 100.0 + t
        p = wall.progress([snap(runs(t))], runs(t))
    assert p.elapsed == pytest.approx(125.0)
    assert p.rate == pytest.approx(1000.0)
    assert p.eta == pytest.approx((180_000 - 125_000) / 1000.0)  # ~a minute to go, not a run's own ETA
    assert p.running == 2 and p.paused == 0


def test_the_rate_is_over_the_last_few_seconds_and_stops_counting_while_paused():
    clock = Clock()
    wall = WallClock(clock)
    for t in range(10):
        clock.t = 100.0 + t
        p = wall.progress([snap([view(0, "running", 200 * t, 10_000)])], [view(0, "running", 200 * t, 10_000)])
    assert p.rate == pytest.approx(200.0)
    for t in range(10, 20):  # paused: no samples
        clock.t = 100.0 + t
        v = view(0, "running", 1800, 10_000, paused=True)
        p = wall.progress([snap([v])], [v])
    assert p.rate == 0.0 and math.isnan(p.eta) and p.paused == 1
    assert p.elapsed == pytest.approx(19.0)  # wall-clock: the pause counts


def test_elapsed_stops_at_the_end_and_runs_not_started_are_estimated_from_those_that_did():
    clock = Clock()
    wall = WallClock(clock)
    clock.t = 130.0
    done = [view(0, "completed", 5000, 5000, epochs=5)]
    p = wall.progress([snap(done, began=100.0, ended=125.0)], done)
    assert p.elapsed == pytest.approx(25.0) and math.isnan(p.eta) and p.running == 0
    clock.t = 131.0
    views = [view(0, "running", 1000, 5000, epochs=5), view(1, "pending", epochs=20)]
    wall = WallClock(clock)
    wall.progress([snap(views)], views)
    clock.t = 132.0
    views = [view(0, "running", 2000, 5000, epochs=5), view(1, "pending", epochs=20)]
    p = wall.progress([snap(views)], views)
    assert p.eta == pytest.approx((3000 + 20 * 1000) / 1000.0)  # 1,000 samples an epoch, as run 0's


def test_elapsed_counts_the_time_something_trained_not_the_gaps_between_restarts():
    """Issue 27: a 40 ms run restarted two minutes after the first ended read 2:00 elapsed."""
    from tuilab.app.live import busy_seconds

    clock = Clock()
    wall = WallClock(clock)
    clock.t = 300.0
    first = [view(0, "completed", 100, 100)]
    again = [view(1, "completed", 100, 100)]
    p = wall.progress([snap(first, began=100.0, ended=100.04), snap(again, began=220.0, ended=220.04)],
                      first + again)
    assert p.elapsed == pytest.approx(0.08)
    assert busy_seconds([(0.0, 10.0), (5.0, 12.0), (20.0, 21.0), (20.5, 20.7)]) == pytest.approx(13.0)
    assert busy_seconds([]) == 0.0


def _paced(cost_per_draw: float, seconds: float = 30.0):
    """A screen ticking every 0.2 s under a Pace, each redraw costing `cost_per_draw` CPU seconds of the UI
    thread: the intervals it settles on, and the UI's share of a core over the last 10 s."""
    from tuilab.app.live import Pace

    clock, cpu = Clock(), Clock()
    pace = Pace(0.2, share=0.08, most=2.0, clock=clock, cpu=cpu)
    draws = []
    t_end = clock.t + seconds
    while clock.t < t_end:
        if pace.due():
            draws.append(clock.t)
            cpu.t += cost_per_draw
        clock.t += 0.2
    late = [t for t in draws if t >= t_end - 10]
    return pace, len(late) * cost_per_draw / 10


def test_a_cheap_screen_keeps_five_redraws_a_second():
    pace, share = _paced(0.002)
    assert pace.interval == pytest.approx(0.2) and pace.factor == pytest.approx(1.0)
    assert share == pytest.approx(5 * 0.002, rel=0.05)


def test_a_costly_screen_slows_its_redraws_to_keep_its_share_of_a_core():
    # 20 runs' rows and chart: 60 ms a redraw would be 30 % of a core at 5 a second
    pace, share = _paced(0.060)
    assert pace.interval > 0.5 and pace.factor > 2.5
    assert share <= 0.12  # near the 8 % aimed at (the interval moves in steps of 1.5x)


def test_the_pace_comes_back_when_drawing_gets_cheap_again():
    from tuilab.app.live import Pace

    clock, cpu = Clock(), Clock()
    pace = Pace(0.2, clock=clock, cpu=cpu)
    for cost in (0.06, 0.001):
        for _ in range(100):
            if pace.due():
                cpu.t += cost
            clock.t += 0.2
        if cost == 0.06:
            assert pace.interval > 0.5
    assert pace.interval == pytest.approx(0.2)
