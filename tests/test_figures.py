"""Figures for slides: `tuilab report RUNDIR --svg DIR` writes each chart as an SVG file, and S in the dashboard
saves the whole screen; the SVGs parse, hold the chart's text, and ask for no web font."""

import contextlib
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tuilab.cli import main as cli_main
from tuilab.engine.config.presets import load_experiment
from tuilab.headless import run_headless
from tuilab.views.svg import PORTABLE_MONO, portable, svg_of

SVG = "{http://www.w3.org/2000/svg}"


def svg_text(path: Path) -> str:
    """Every text node of the SVG, joined, with the non-breaking spaces Rich writes read as spaces."""
    root = ET.parse(path).getroot()  # raises on a file that does not parse
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text")).replace("\xa0", " ")


def assert_portable(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    assert "@font-face" not in raw and "cdnjs" not in raw and "Fira Code" not in raw
    assert PORTABLE_MONO in raw


def _report(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["report", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


def test_svg_of_keeps_the_text_and_its_colours(tmp_path):
    svg = svg_of("\x1b[38;2;230;159;0mloss\x1b[0m by epoch\nsecond line", "a title")
    assert "#e69f00" in svg.lower()  # the ANSI colour, as Rich writes it
    path = tmp_path / "figure.svg"
    path.write_text(svg, encoding="utf-8")
    text = svg_text(path)
    assert "loss" in text and "by epoch" in text and "second line" in text and "a title" in text
    assert_portable(path)


def test_portable_drops_the_web_font_of_rich_and_textual():
    from rich.console import Console

    console = Console(record=True, file=io.StringIO(), width=20)
    console.print("x")
    raw = console.export_svg()
    assert "@font-face" in raw and "Fira Code" in raw  # what Rich asks for, so the test below means something
    assert "@font-face" not in portable(raw) and "Fira Code" not in portable(raw)


@pytest.fixture(scope="module")
def surface_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("svg") / "rosenbrock"
    assert run_headless(load_experiment("rosenbrock-fast"), out=out, data_options=None, stream=io.StringIO(),
                        stdout=io.StringIO()) == 0
    return out


def test_report_writes_a_surface_presets_charts_as_svg(surface_records, tmp_path):
    code, out, err = _report(surface_records, "--svg", tmp_path / "figs")
    assert code == 0, err
    files = sorted((tmp_path / "figs").glob("*.svg"))
    assert [f.name for f in files] == ["01-trajectories.svg", "02-error.svg"]
    assert f"SVG figures in {tmp_path / 'figs'}: 01-trajectories.svg, 02-error.svg" in out
    contour, error = (svg_text(f) for f in files)
    assert "banana" in contour and "the trajectories on rosenbrock" in contour  # the chart's title and the file's
    assert "log10(f - f*) by step" in error
    labels = [r.label for r in load_experiment("rosenbrock-fast").runs]
    assert all(label in error for label in labels)  # the legend goes with the last chart
    for f in files:
        assert_portable(f)


def test_report_writes_a_network_sweeps_charts_as_svg(tmp_path):
    exp = load_experiment("spirals", [("train.epochs", 3), ("data.n_samples", 400)],
                          [("optimizer.lr", (0.01, 0.1))])
    assert run_headless(exp, out=tmp_path / "r", data_options=None, stream=io.StringIO(),
                        stdout=io.StringIO()) == 0
    code, out, _ = _report(tmp_path / "r", "--svg", tmp_path / "figs")
    assert code == 0
    names = [f.name for f in sorted((tmp_path / "figs").glob("*.svg"))]
    assert names[:2] == ["01-training-loss.svg", "02-sweep-optimizer-lr.svg"]
    assert "03-decision-maps.svg" in names  # spirals has two inputs
    loss = svg_text(tmp_path / "figs" / names[0])
    assert "training loss per epoch" in loss and "lr=0.01" in loss and "lr=0.1" in loss
    assert "against optimizer.lr" in svg_text(tmp_path / "figs" / names[1])


def test_report_svg_into_a_file_says_so_in_one_line(surface_records, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    code, _, err = _report(surface_records, "--svg", blocker / "figs")
    assert code == 2
    assert err.startswith("tuilab: error: cannot write figures to") and "--svg" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.asyncio
async def test_S_saves_the_dashboard_as_svg_beside_the_records(tmp_path, monkeypatch):
    from tests.test_app import SIZE, views, wait_for
    from tuilab.app.app import make_app

    monkeypatch.chdir(tmp_path)
    app = make_app("rosenbrock-fast", out_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: views(app) and all(v.finished for v in views(app)), timeout=180.0)
        # the charts draw a moment after the runs end: wait until a screenshot shows them
        await wait_for(pilot, lambda: "by&#160;step" in app.export_screenshot(), timeout=30.0)
        await pilot.press("S")
        await pilot.pause(0.3)
        saved = list((tmp_path / "runs").glob("*/screen-rosenbrock-fast-*.svg"))
        assert len(saved) == 1
        assert any(str(saved[0]) in str(n.message) for n in app._notifications)
    text = svg_text(saved[0])
    assert "Rosenbrock at lr 1e-3" in text and "log10(f - f*) by step" in text and "adam (0.9, 0.99)" in text
    assert_portable(saved[0])
