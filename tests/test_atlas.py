"""Atlases: every cell is the single run with its settings, bit for bit; heavy ball's region on a quadratic is the
analytic one; records, the heat map, the preset's mistakes in one line."""

import io
import json
import threading

import numpy as np
import pytest

from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.config.presets import load_experiment
from tuilab.engine.surfaces.atlas import LEFT, Atlas, axes_of, cell_run, run_atlas
from tuilab.engine.surfaces.landscapes import TOLERANCE, descend, landscape_of
from tuilab.engine.training.kernel_choice import use_whole_table, whole_table
from tuilab.errors import TuilabError
from tuilab.kernels.surfaces import CONVERGED, DIVERGED, OUT_OF_STEPS
from tuilab.views.atlas import MONO_RAMP, atlas_report, atlas_text

STATUS = {"converged": CONVERGED, "out of steps": OUT_OF_STEPS, "diverged": DIVERGED,
          "reached the minimum, then left it": LEFT}


def preset(runs, atlas, **surface):
    """A surface preset of these runs ({label: optimizer table}) and this [atlas], on Rosenbrock."""
    doc = {"surface": {"name": "rosenbrock", "start": [-1.5, 2.0], "steps": 1000, **surface},
           "runs": [{"label": label, "optimizer": o} for label, o in runs.items()], "atlas": atlas}
    return build_experiment(doc, "test", "test")


def assert_cells_are_single_runs(exp, atlas):
    """Every cell against landscapes.descend with the same settings: final point, first hit, status."""
    land = landscape_of(exp.runs[0].tables["surface"])
    x, y = axes_of(exp.atlas, land)
    for r, run in enumerate(exp.runs):
        for i, vy in enumerate(atlas.values_1):
            for j, vx in enumerate(atlas.values_0):
                c = cell_run(run, x, y, vx, vy, exp.atlas.steps)
                one = descend(land, c.optimizer, c.start, c.steps, checked=c.hyper)
                where = f"{run.label} at {x.setting}={vx}, {y.setting}={vy}"
                assert (atlas.final_x[r, i, j], atlas.final_y[r, i, j]) == one.final, where  # the same bits
                assert atlas.steps_to_tol[r, i, j] == (-1 if one.steps_to_tol is None else one.steps_to_tol), where
                assert atlas.status[r, i, j] == STATUS[one.status], where


def test_each_cell_is_the_single_run_bit_for_bit_over_lr_and_momentum():
    exp = preset({"adam": {"name": "adam", "lr": 1e-3}, "nadam": {"name": "nadam", "lr": 1e-3}},
                 {"x": {"setting": "lr", "log": [1e-3, 0.3], "n": 7},
                  "y": {"setting": "betas[0]", "lin": [0.0, 0.95], "n": 5}, "steps": 3000})
    atlas = run_atlas(exp)
    assert atlas.final_x.shape == (2, 5, 7) and atlas.tol == TOLERANCE
    assert_cells_are_single_runs(exp, atlas)


def test_each_cell_is_the_single_run_over_start_points_with_divergence_and_the_descents_table():
    # momentum at lr 3e-3 on Rosenbrock: some starts converge, some diverge; heavy ball's lr and momentum cells too
    exp = preset({"hb": {"name": "momentum", "lr": 1e-3, "momentum": 0.9}, "rmsprop": {"name": "rmsprop", "lr": 1e-3}},
                 {"x": {"setting": "start.x", "lin": [-2.0, 2.0], "n": 6},
                  "y": {"setting": "lr", "log": [1e-4, 3e-3], "n": 4}, "steps": 2000})
    atlas = run_atlas(exp)
    assert {DIVERGED, CONVERGED} <= set(np.unique(atlas.status))  # the test covers both ends
    assert_cells_are_single_runs(exp, atlas)
    was = whole_table()
    try:
        use_whole_table(True)  # the single runs by the table's descent, as a preset of many optimizers runs them
        assert_cells_are_single_runs(exp, atlas)
    finally:
        use_whole_table(was)


def test_cells_do_not_depend_on_how_many_threads_run_them():
    exp = load_experiment("himmelblau-basins", [("atlas.x.n", 23), ("atlas.y.n", 11)])
    one, two = run_atlas(exp, threads=1), run_atlas(exp, threads=3)
    assert one.threads == 1 and two.threads == 3
    for name in ("final_x", "final_y", "final_error", "steps_to_tol", "minimum", "status"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


def test_heavy_balls_region_on_a_quadratic_is_the_analytic_one():
    """(x^2 + c y^2) / 2, heavy ball v = mu v + g, theta -= lr v: stable exactly where lr c < 2 (1 + mu). Away
    from the edge by 10 %, every cell inside ends below its start's error, every cell outside above it (or
    diverged)."""
    exp = load_experiment("momentum-stability")
    atlas = run_atlas(exp)
    c = exp.runs[0].tables["surface"]["condition"]
    lr, mu = np.meshgrid(atlas.values_0, atlas.values_1)
    ratio = lr * c / (2 * (1 + mu))
    start = exp.runs[0].surface.start
    start_error = np.log10(0.5 * (start[0] ** 2 + c * start[1] ** 2))
    err, status = atlas.final_error[0], atlas.status[0]
    inside, outside = ratio < 0.9, ratio > 1.1
    assert inside.sum() > 1000 and outside.sum() > 300
    assert (err[inside] < start_error).all() and (status[inside] != DIVERGED).all()
    assert ((err[outside] > start_error) | (status[outside] == DIVERGED)).all()
    assert (status[ratio > 1.3] == DIVERGED).all()


def test_headless_writes_atlas_npz_and_prints_the_heat_maps(tmp_path):
    from tuilab.headless import run_headless

    exp = load_experiment("himmelblau-basins", [("atlas.x.n", 20), ("atlas.y.n", 10)])
    out = io.StringIO()
    assert run_headless(exp, out=tmp_path / "r", data_options=None, stream=io.StringIO(), stdout=out) == 0
    text = out.getvalue()
    assert "atlas of himmelblau: 3 optimizers x 20 x 10 cells in" in text
    assert "adam: 200 cells: " in text and "→ start.x" in text and "↑ start.y" in text
    with np.load(tmp_path / "r" / "atlas.npz") as z:
        assert {"axes", "values_0", "values_1", "final_error", "steps_to_tol", "minimum", "seconds"} <= set(z.files)
        assert list(z["axes"]) == ["start.x", "start.y"] and z["final_error"].shape == (3, 10, 20)
        assert z["values_0"][0] == -5.0 and z["values_0"][-1] == 5.0 and float(z["seconds"]) > 0
        assert set(np.unique(z["minimum"])) <= {-1, 0, 1, 2, 3} and (z["minimum"] >= 0).mean() > 0.9
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["atlas"]["cells"] == 200 and summary["atlas"]["complete"]
    back = Atlas.load(tmp_path / "r")
    assert back.labels == ["gradient descent", "momentum 0.9", "adam"] and back.metric == "minimum"


def test_a_stopped_atlas_keeps_what_it_ran_and_marks_the_rest_not_run():
    exp = load_experiment("himmelblau-basins", [("atlas.x.n", 8), ("atlas.y.n", 4)])
    stop = threading.Event()
    stop.set()
    atlas = run_atlas(exp, stop=stop)
    assert (atlas.status == -1).all() and np.isnan(atlas.final_x).all()
    assert "not run" in __import__("tuilab.engine.surfaces.atlas", fromlist=["x"]).describe_cell(atlas, 0, 0, 0)


def test_the_heat_map_without_colour_is_a_character_a_cell_with_its_axes_and_scale():
    exp = load_experiment("momentum-stability", [("atlas.x.n", 30), ("atlas.y.n", 12)])
    atlas = run_atlas(exp)
    lines = atlas_text(atlas, 0, mono=True).plain.splitlines()
    assert lines[0].startswith("heavy ball: log10(f - f*) at the end")
    assert "↑ momentum" in lines[1] and any("→ lr (log)" in line for line in lines)
    grid = [line[10:] for line in lines[2:14]]
    assert all(len(row) == 30 for row in grid)
    assert set("".join(grid)) <= set(MONO_RAMP) | {"X", "?"}
    assert grid[-1].endswith("X") and not grid[-1].startswith("X")  # lr's highest diverge, its lowest do not
    assert lines[2].startswith("     0.99 ") and lines[13].startswith("        0 ")  # y: highest at the top
    assert lines[14].split()[0] == "0.001" and lines[14].split()[-1] == "1"
    assert "X diverged" in lines[-1] and MONO_RAMP in lines[-1]


def test_the_heat_map_in_colour_draws_two_cells_a_character():
    exp = load_experiment("himmelblau-basins", [("atlas.x.n", 16), ("atlas.y.n", 8)])
    atlas = run_atlas(exp)
    drawn = atlas_text(atlas, 2, mono=False, cursor=(0, 0))
    rows = [line for line in drawn.plain.splitlines() if "▀" in line]
    assert len(rows) == 4 and all(line.count("▀") == 16 for line in rows)
    assert "(3, 2)" in drawn.plain  # a minimum's swatch in the key
    assert "atlas of himmelblau" in atlas_report(atlas, mono=False)


@pytest.mark.parametrize("sets, words", [
    ([("atlas.x", {"setting": "lr", "log": [0.0, 1.0]})], "needs 0 < lo"),
    ([("atlas.x", {"setting": "lr", "lin": [1.0, 0.1]})], "needs lo < hi"),
    ([("atlas.x", {"setting": "lr"})], "needs one of log = [lo, hi] or lin = [lo, hi]"),
    ([("atlas.x", {"setting": "lr", "lin": [0, 1], "n": 1})], "n must be a whole number from 2"),
    ([("atlas.x", {"setting": "lr", "lin": [0, 1]}), ("atlas.y", {"setting": "lr", "lin": [0, 1]})],
     "x and y both set lr"),
    ([("atlas.colour", "red")], "unknown key 'colour' in [atlas]"),
    ([("atlas.metric", "best")], "metric must be one of auto, final_error, steps_to_tol, minimum"),
    ([("atlas.x", {"setting": "momentum", "lin": [0, 1]})],
     "run 'adam (0.9, 0.99)' (adam) has no such number; it has start.x, start.y, lr"),
    ([("atlas.x", {"setting": "start.z", "lin": [0, 1]})], "has no such number; it has start.x, start.y, lr"),
])
def test_a_mistaken_atlas_is_one_line_naming_it(sets, words):
    with pytest.raises(TuilabError) as err:
        load_experiment("rosenbrock", sets)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_network_preset_has_no_atlas_and_a_cell_the_registry_refuses_says_which():
    with pytest.raises(TuilabError, match="a network preset has none"):
        load_experiment("spirals", [("atlas.metric", "minimum")])
    exp = preset({"hb": {"name": "momentum", "lr": 1e-4}}, {"x": {"setting": "momentum", "lin": [0.5, 1.5], "n": 3}})
    refused = r"atlas: hb at momentum=1, start.y=-3: momentum: momentum must be a number in \[0, 1\)"
    with pytest.raises(TuilabError, match=refused):
        run_atlas(exp)


def test_an_atlas_of_lbfgs_is_refused_in_words():
    exp = preset({"lbfgs": {"name": "lbfgs", "lr": 1.0}}, {"metric": "final_error"})
    with pytest.raises(TuilabError, match="evaluates the function within a step"):
        run_atlas(exp)


_ATLAS_OF = """
import sys
import numpy as np
from tuilab.engine.config.experiment import build_experiment
from tuilab.engine.surfaces.atlas import run_atlas
names, out = sys.argv[1].split(","), sys.argv[2]
tables = {"hb": {"name": "momentum", "lr": 1e-3, "momentum": 0.9}, "adam": {"name": "adam", "lr": 0.02},
          "rmsprop": {"name": "rmsprop", "lr": 1e-3}}
from tuilab.engine.surfaces.landscapes import descend, make_landscape
for name in names:
    hyper = {k: v for k, v in tables[name].items() if k != "name"}
    one = descend(make_landscape("rosenbrock"), tables[name]["name"], (-1.5, 2.0), 500, **hyper)
    np.save(f"{out}-{name}-descent.npy", one.path)
    doc = {"surface": {"name": "rosenbrock", "start": [-1.5, 2.0], "steps": 500},
           "runs": [{"label": name, "optimizer": tables[name]}],
           "atlas": {"x": {"setting": "lr", "log": [1e-4, 1e-2], "n": 5},
                     "y": {"setting": "start.x", "lin": [-2, 2], "n": 3}}}
    a = run_atlas(build_experiment(doc, "test", "test"), threads=1)
    np.save(f"{out}-{name}.npy", np.stack([a.final_x, a.final_y]))
"""


def test_kernels_cached_by_different_processes_keep_each_optimizers_code(tmp_path):
    """Each optimizer's descent and atlas loops compiled in a process of its own, all into one numba cache, then
    loaded together by another: each gives what it gave where it was compiled. The loops are closures of one
    name; before they were named per optimizer, that process linked one optimizer's code in another's place
    (wrong cells, a corrupted heap, a segmentation fault)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    script = tmp_path / "atlas_of.py"
    script.write_text(_ATLAS_OF)
    for names in ("hb", "adam"):  # one process each: each compiles its loop first
        r = subprocess.run([sys.executable, str(script), names, str(tmp_path / "alone")], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, str(script), "adam,hb", str(tmp_path / "together")], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("hb", "adam"):
        for what in ("", "-descent"):
            np.testing.assert_array_equal(np.load(tmp_path / f"together-{name}{what}.npy"),
                                          np.load(tmp_path / f"alone-{name}{what}.npy"), err_msg=name + what)


@pytest.mark.asyncio
async def test_a_opens_the_atlas_its_cursor_picks_a_cell_and_draws_that_cells_run(tmp_path):
    from tests.test_app import views, wait_for
    from tuilab.app.app import make_app
    from tuilab.app.screens.atlas import AtlasScreen
    from tuilab.app.screens.surface import SurfaceScreen

    app = make_app("himmelblau-basins", [("atlas.x.n", 24), ("atlas.y.n", 12)], out_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: views(app) and all(v.finished for v in views(app)), timeout=180.0)
        # the run's own atlas is in its records by the time it has finished: the view shows that one
        await wait_for(pilot, lambda: any(tmp_path.glob("*/atlas.npz")), timeout=60.0)
        saved = Atlas.load(next(tmp_path.glob("*/atlas.npz")))
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, AtlasScreen)
        await wait_for(pilot, lambda: screen.atlas is not None, timeout=60.0)
        assert screen.atlas.seconds == saved.seconds and screen.cursor == (6, 12)
        await pilot.press("right", "right", "up", "n")
        await pilot.pause(0.3)
        assert screen.cursor == (7, 14) and screen.run == 1
        cell = str(screen.query_one("#atlas-cell").render())
        x, y = saved.values_0[14], saved.values_1[7]
        assert f"start.x={x:.4g}, start.y={y:.4g}" in cell and "momentum 0.9: 288 cells" in cell
        # the contour draws that cell's run, started where the cell says
        shown = screen.trajectory
        assert tuple(shown.path[0]) == (x, y) and shown.optimizer == "momentum"
        assert shown.final == (saved.final_x[1, 7, 14], saved.final_y[1, 7, 14])  # the cell's own run
        await pilot.press("m")
        assert screen.metric == "final_error"
        assert "log10(f - f*) at the end" in str(screen.query_one("#atlas-title").render())
        await pilot.press("escape")
        assert isinstance(app.screen, SurfaceScreen)


@pytest.mark.asyncio
async def test_a_on_a_preset_with_no_atlas_maps_the_start_points_and_escape_stops_it(tmp_path):
    from tests.test_app import views, wait_for
    from tuilab.app.app import make_app
    from tuilab.app.screens.atlas import AtlasScreen

    app = make_app("himmelblau", records=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: views(app) and all(v.finished for v in views(app)), timeout=180.0)
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, AtlasScreen)
        await wait_for(pilot, lambda: screen.atlas is not None, timeout=120.0)
        atlas = screen.atlas
        assert atlas.axes == ("start.x", "start.y") and atlas.shape == (40, 64) and atlas.metric == "minimum"
        assert (atlas.status >= 0).all() and len(atlas.labels) == 4
        await pilot.press("escape")
        assert screen._stop.is_set()
