"""Many runs at a glance: which runs the charts draw (app.selection) and how each run looks
(run_style), with colour and with NO_COLOR."""

import math

from tuilab.app.selection import Selection
from tuilab.views.run_style import MARKS, PALETTE, drawing_order, legend, line_look, run_style

KEYS = [f"r{i}" for i in range(6)]


def test_toggled_runs_leave_the_charts_and_come_back():
    sel = Selection()
    assert sel.shown(KEYS) == KEYS
    assert sel.toggle("r2") is False and sel.shown(KEYS) == ["r0", "r1", "r3", "r4", "r5"]
    assert sel.toggle("r2") is True and sel.shown(KEYS) == KEYS


def test_best_n_by_score_with_runs_without_a_score_last():
    sel = Selection()
    scores = {"r0": 3.0, "r1": math.nan, "r2": 1.0, "r3": 2.0, "r4": 0.5}  # r5: none yet
    assert sel.next_best(len(KEYS)) == 3
    assert sel.shown(KEYS, scores) == ["r2", "r3", "r4"]  # in list order, the best three
    assert sel.next_best(len(KEYS)) == 5
    assert sel.shown(KEYS, scores) == ["r0", "r1", "r2", "r3", "r4"]  # r1 (NaN) before r5 (none): both last
    assert sel.next_best(len(KEYS)) is None  # 10 is not fewer than 6 runs: back to all
    assert sel.shown(KEYS, scores) == KEYS


def test_a_focused_run_is_shown_whatever_else_and_off_runs_lose_the_focus():
    sel = Selection()
    sel.next_best(len(KEYS))
    scores = {k: float(i) for i, k in enumerate(KEYS)}
    assert sel.toggle_focus("r5") is True
    assert sel.shown(KEYS, scores) == ["r0", "r1", "r2", "r5"]
    sel.toggle("r5")
    assert sel.focus is None and "r5" not in sel.shown(KEYS, scores)
    assert sel.toggle_focus("r1") and not sel.toggle_focus("r1") and sel.focus is None


def test_the_cursor_stays_on_the_list():
    sel = Selection()
    assert sel.move(-1, 6) == 0 and sel.move(10, 6) == 5 and sel.move(0, 3) == 2 and sel.move(0, 0) == 0


def test_every_run_of_a_zoo_looks_different_with_colour_and_without():
    for mono in (False, True):
        looks = {(run_style(k, mono).rgb, run_style(k, mono).marker) for k in range(40)}
        assert len(looks) == 40
    assert len({run_style(k, True).tag for k in range(len(MARKS))}) == len(MARKS)  # NO_COLOR: a mark each
    assert len(set(PALETTE)) == len(PALETTE) == 8
    assert run_style(0, False).marker == "braille" and run_style(8, False).marker != "braille"


def test_no_color_in_the_environment_turns_to_marks(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert run_style(0).marker == MARKS[0] and run_style(1).tag == MARKS[1]
    text = legend([(0, "sgd"), (1, "adam")], mono=None)
    assert text.plain.split() == [MARKS[0], "sgd", MARKS[1], "adam"] and not text.spans
    monkeypatch.setenv("NO_COLOR", "")  # set but empty: colour stays (no-color.org)
    assert run_style(0).marker == "braille"


def test_the_focused_run_is_drawn_last_in_its_colour_and_the_others_dimmed():
    assert drawing_order(4, 1) == [0, 2, 3, 1] and drawing_order(3) == [0, 1, 2]
    assert line_look(3, focus=1, i=1, mono=False) == (PALETTE[3], "braille")
    colour, marker = line_look(3, focus=1, i=0, mono=False)
    assert colour != PALETTE[3] and marker == "braille"
    assert line_look(3, focus=1, i=0, mono=True)[1] == MARKS[3]  # without colour the mark stays


def test_legends_wrap_at_their_width():
    text = legend([(k, f"optimizer-{k}") for k in range(12)], width=40, mono=True)
    assert all(len(line) <= 40 for line in text.plain.splitlines()) and len(text.plain.splitlines()) > 3


def test_a_legend_with_too_few_lines_counts_the_runs_it_cannot_show():
    entries = [(k, f"optimizer-{k}") for k in range(18)]
    whole = legend(entries, width=60, mono=True).plain.splitlines()
    assert len(whole) > 2
    cut = legend(entries, width=60, mono=True, max_lines=2).plain.splitlines()
    assert len(cut) == 2 and all(len(line) <= 60 for line in cut)
    shown = sum(line.count("optimizer-") for line in cut)
    assert cut[-1].endswith(f"+{18 - shown} more") and 0 < shown < 18
    assert cut[0] == whole[0]  # the first runs keep their places
    assert legend(entries, width=60, mono=True, max_lines=len(whole)).plain.splitlines() == whole  # room: no count
