"""Snapshots of the main screens on deterministic presets (pytest-textual-snapshot).

Update after an intended change of look with `python -m pytest tests/test_snapshots.py --snapshot-update`
and review the SVGs in tests/__snapshots__/. The network dashboard is left out: its
samples/s and times differ run to run; the pilot tests cover it.
"""

import os
from pathlib import Path

import pytest
import textual

from tuilab.app.app import make_app

pytest.importorskip("pytest_textual_snapshot")

# The SVGs were made with this Textual; another version draws borders and colours a
# little differently, so compare only like with like (and regenerate on an upgrade).
SNAPSHOT_TEXTUAL = "8.2.8"  # also pinned in pyproject's test extra
if textual.__version__ != SNAPSHOT_TEXTUAL:
    if os.environ.get("CI"):  # CI installs the test extra, so it must have them: never pass without
        raise RuntimeError(f"snapshots need textual {SNAPSHOT_TEXTUAL} (the test extra pins it), "
                           f"this is {textual.__version__}")
    pytest.skip(f"snapshots were made with textual {SNAPSHOT_TEXTUAL}, this is {textual.__version__}",
                allow_module_level=True)


@pytest.fixture(autouse=True)
def no_user_presets(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    # no image set on disk, whatever this machine has: a preset's card says which data set it will use
    from tuilab.engine.data import sets as data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TUILAB_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DATA", tmp_path / "system")


def test_browser(snap_compare, tmp_path):
    assert snap_compare(make_app(out_root=tmp_path), press=["down", "down"], terminal_size=(100, 30))


def test_help(snap_compare, tmp_path):
    assert snap_compare(make_app(out_root=tmp_path), press=["question_mark"], terminal_size=(80, 24))


async def _surface_done(pilot):
    """Until every run has ended and its path has finished growing on screen (a fixed sleep for the
    growth made the snapshot flaky on a loaded machine)."""
    app = pilot.app
    for _ in range(600):
        await pilot.pause(0.05)
        lives = app.lives
        screen = next((s for s in app.screen_stack if hasattr(s, "_grow_start")), None)
        if (lives and not lives[0].running and all(v.finished for v in lives[0].snapshot().runs)
                and screen is not None and screen._drawn and screen._grow_start is None):
            break
    # and until the results table has sized its columns to its rows: a loaded CI machine once took the snapshot
    # between the rows and their widths (every column as wide as its heading: "mom", "0.")
    table = screen.query_one("#surface-results") if screen is not None else None
    for _ in range(200):
        await pilot.pause(0.05)
        if table is None or (table.row_count and not table._require_update_dimensions):
            break
    await pilot.pause()


def test_surface_view(snap_compare, tmp_path):
    assert snap_compare(make_app("rosenbrock-fast", out_root=tmp_path), run_before=_surface_done,
                        terminal_size=(120, 36))


def test_edit_form_over_surface(snap_compare, tmp_path):
    from textual.widgets import Input

    from tuilab.app.screens.edit import EditRun

    async def run_before(pilot):
        await _surface_done(pilot)
        await pilot.press("e")
        # until the form is up and laid out, not for a fixed time (0.3 s was short on a loaded machine)
        for _ in range(200):
            await pilot.pause(0.05)
            if isinstance(pilot.app.screen, EditRun) and pilot.app.screen.query("#edit-buttons"):
                break
        await pilot.wait_for_scheduled_animations()
        for field in pilot.app.screen.query(Input):  # a blinking cursor is drawn or not by when the shot falls
            field.cursor_blink = False
        await pilot.pause(0.3)

    assert snap_compare(make_app("rosenbrock-fast", out_root=tmp_path), run_before=run_before,
                        terminal_size=(100, 34))


def test_surface_inside_view(snap_compare, tmp_path):
    async def run_before(pilot):
        await _surface_done(pilot)
        await pilot.press("i")
        await pilot.pause(0.3)

    assert snap_compare(make_app("rosenbrock", out_root=tmp_path), run_before=run_before,
                        terminal_size=(120, 36))


# Many runs at a glance, at the three sizes a person is likely to have: the browser, a network dashboard of
# 20 runs (reopened from shipped records, so that nothing in it depends on this machine's speed or clock)
# and the 20 trajectories of rosenbrock-zoo.
SIZES = [(80, 24), (120, 40), (200, 60)]
ZOO_RECORDS = str(Path(__file__).parent / "data" / "zoo-records")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_browser_at(snap_compare, tmp_path, size):
    assert snap_compare(make_app(out_root=tmp_path), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_network_dashboard_with_many_runs_at(snap_compare, size):
    async def run_before(pilot):
        await pilot.pause(0.5)
        await pilot.press("a", "a")  # the curves tab, training loss
        await pilot.pause(0.5)

    assert snap_compare(make_app(opened=[ZOO_RECORDS], records=False), run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_surface_view_with_many_runs_at(snap_compare, tmp_path, size):
    assert snap_compare(make_app("rosenbrock-zoo", out_root=tmp_path), run_before=_surface_done, terminal_size=size)


# circles-width's two runs reopened with their kept decision maps (written by tuilab headless once and shipped,
# so that the colours do not depend on this machine's arithmetic): the Map tab, small multiples, best first
MAP_RECORDS = str(Path(__file__).parent / "data" / "map-records")


@pytest.mark.parametrize("size", SIZES[:2], ids=lambda s: f"{s[0]}x{s[1]}")
def test_decision_maps_at(snap_compare, size):
    async def run_before(pilot):
        await pilot.pause(0.5)
        await pilot.press("m")
        await pilot.pause(0.5)

    assert snap_compare(make_app(opened=[MAP_RECORDS], records=False), run_before=run_before, terminal_size=size)


# two float64 runs on circles from one start, with their parameter snapshots and sharpness every 5 epochs
# (written by tuilab headless once and shipped): the landscape tab (its PCA plane's sign fixed, so the same
# picture everywhere) and the chart's sharpness curve
LANDSCAPE_RECORDS = str(Path(__file__).parent / "data" / "landscape-records")


async def _landscape_drawn(pilot):
    for _ in range(400):
        await pilot.pause(0.05)
        screen = pilot.app.screen
        if screen.query("#landscape-heading") and " at epoch " in str(screen.query_one("#landscape-heading").render()):
            break
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES[:2], ids=lambda s: f"{s[0]}x{s[1]}")
def test_landscape_tab_at(snap_compare, size):
    async def run_before(pilot):
        await pilot.pause(0.5)
        await pilot.press("g")
        await _landscape_drawn(pilot)

    assert snap_compare(make_app(opened=[LANDSCAPE_RECORDS], records=False), run_before=run_before,
                        terminal_size=size)


def test_sharpness_chart(snap_compare):
    async def run_before(pilot):
        await pilot.pause(0.5)
        await pilot.press("a", "a")
        await pilot.pause(0.5)

    assert snap_compare(make_app(opened=[LANDSCAPE_RECORDS], records=False), run_before=run_before,
                        terminal_size=(120, 40))
