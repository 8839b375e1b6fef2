"""The surface view: the landscape's contour with each trajectory growing, log10 error, results."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from tuilab.app.screens.network import ExperimentScreen
from tuilab.engine.surfaces import landscape_of
from tuilab.surface_view import draw_error, draw_surface, results_rows

GROW_SECONDS = 1.5  # the runs take milliseconds; their paths are drawn growing over this time


class SurfaceScreen(ExperimentScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="settings")
        with Horizontal(id="surface-charts"):
            yield PlotextPlot(id="contour")
            yield PlotextPlot(id="error")
        yield DataTable(id="surface-results", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.title = self.experiment.title
        self.sub_title = self.preset
        self.landscape = landscape_of(self.experiment.runs[0]["surface"])
        self.query_one("#settings", Static).update(Text.assemble(
            (f"{self.landscape.name}: ", "bold"), self.landscape.summary,
            ("   o start  * minimum", "dim")))
        table = self.query_one("#surface-results", DataTable)
        header, _ = results_rows([])
        table.add_columns(*header)
        self._grow_start: float | None = None
        self._drawn: tuple = ()

    def redraw(self, force: bool = False) -> None:
        if not self.is_mounted:
            return
        snaps = [lv.snapshot() for lv in self.lives]
        results = [r for s in snaps for key, r in s.surface_results if key not in self.hidden]
        runs = [v for s in snaps for v in s.runs if v.key not in self.hidden]
        key = tuple((id(r)) for r in results)
        if key != self._drawn:
            self._drawn = key
            self._grow_start = time.monotonic()
            self._table(runs)
        if self._grow_start is None and not force:
            return
        upto = 1.0 if self._grow_start is None else min(1.0, (time.monotonic() - self._grow_start) / GROW_SECONDS)
        contour = self.query_one("#contour", PlotextPlot)
        draw_surface(contour.plt, self.landscape, results, upto=upto)
        contour.refresh()
        error = self.query_one("#error", PlotextPlot)
        draw_error(error.plt, self.landscape, [_Partial(r, upto) for r in results])
        error.refresh()
        if upto >= 1.0:
            self._grow_start = None

    def _table(self, runs) -> None:
        table = self.query_one("#surface-results", DataTable)
        table.clear()
        _, rows = results_rows([v.summary or {"label": v.label, "optimizer": v.optimizer, "lr": v.lr,
                                              "status": v.status} for v in runs])
        for row in rows:
            table.add_row(*row)

    def clear_rows(self) -> None:
        self._drawn = ()


class _Partial:
    """A SurfaceResult cut at a fraction of its points (for the growing error chart)."""

    def __init__(self, result, upto: float):
        n = max(1, int(len(result.steps) * upto + 0.999))
        self.label = result.label
        self.steps = result.steps[:n]
        self.f = result.f[:n]
        self.log10_error = result.log10_error[:n]
