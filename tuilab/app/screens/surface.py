"""The surface view: the landscape's contour with each trajectory growing, log10 error, results."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from tuilab.app.screens.network import ExperimentScreen
from tuilab.engine.surfaces import landscape_of
from tuilab.surface_view import INSIDE_HEADER, draw_error, draw_step_length, draw_surface, inside_rows, results_rows

GROW_SECONDS = 1.5  # the runs take milliseconds; their paths are drawn growing over this time
CURSOR_MOVES = 40  # [ and ] move the inside view's step by this fraction of the longest run


class SurfaceScreen(ExperimentScreen):
    BINDINGS = [Binding("i", "inside", "Inside the optimizer"),
                Binding("left_square_bracket", "cursor(-1)", "Earlier step", key_display="["),
                Binding("right_square_bracket", "cursor(1)", "Later step", key_display="]")]

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
        self.inside = False  # the inside view: arrows on the contour, step lengths, the inside table
        self._settings()
        self._table_mode = None
        self._runs = []
        self._grow_start: float | None = None
        self._drawn: tuple = ()
        self.cursor: float | None = None  # the step the inside view shows (None: the end, or as it grows)
        self._results: list = []

    def _settings(self) -> None:
        key = ("   o start  * minimum  → the last step at the point shown;  [ ] a step back / on,  i: back"
               if self.inside else "   o start  * minimum   i: inside the optimizer")
        self.query_one("#settings", Static).update(Text.assemble(
            (f"{self.landscape.name}: ", "bold"), self.landscape.summary, (key, "dim")))

    def action_inside(self) -> None:
        self.inside = not self.inside
        if not self.inside:
            self.cursor = None  # back to the whole paths
        self._table_mode = None
        self._settings()
        self.redraw(force=True)

    def action_cursor(self, direction: int) -> None:
        """Move the inside view's step by 1/CURSOR_MOVES of the longest run (and into the inside view)."""
        longest = max((int(r.steps[-1]) for r in self._results), default=0)
        if not longest:
            return
        here = longest if self.cursor is None else self.cursor
        self.cursor = min(longest, max(0.0, here + direction * longest / CURSOR_MOVES))
        if not self.inside:
            self.inside = True
            self._settings()
        self._grow_start = None
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        if not self.is_mounted:
            return
        snaps = [lv.snapshot() for lv in self.lives]
        results = [r for s in snaps for key, r in s.surface_results if key not in self.hidden]
        runs = [v for s in snaps for v in s.runs if v.key not in self.hidden]
        key = tuple((id(r)) for r in results)
        self._results = results
        if key != self._drawn:
            self._drawn = key
            self._grow_start = time.monotonic()
            self.cursor = None
            self._runs = runs
            self._table_mode = None
        if self._grow_start is None and not force:
            return
        upto = 1.0 if self._grow_start is None else min(1.0, (time.monotonic() - self._grow_start) / GROW_SECONDS)
        at_step = self._at_step(results, upto)
        contour = self.query_one("#contour", PlotextPlot)
        draw_surface(contour.plt, self.landscape, results, upto=upto, at_step=at_step)
        contour.refresh()
        error = self.query_one("#error", PlotextPlot)
        if self.inside:
            draw_step_length(error.plt, results, upto=at_step)
        else:
            draw_error(error.plt, self.landscape, [_Partial(r, upto) for r in results])
        error.refresh()
        self._table(at_step)
        if upto >= 1.0:
            self._grow_start = None

    def _at_step(self, results, upto: float) -> float | None:
        """The step the inside view shows: the cursor's, or the step the growing paths have reached."""
        if self.cursor is not None:
            return self.cursor
        if not self.inside:
            return None
        return upto * max((int(r.steps[-1]) for r in results), default=0)

    def _table(self, at_step) -> None:
        """The results table, or in the inside view each optimizer inside at the step shown."""
        table = self.query_one("#surface-results", DataTable)
        mode = ("inside", at_step, self._drawn) if self.inside else ("results", self._drawn)
        if mode == self._table_mode:
            return
        table.clear(columns=True)
        if self.inside:
            table.add_columns(*INSIDE_HEADER)
            rows = inside_rows(self._results, at_step)
        else:
            table.add_columns(*results_rows([])[0])
            _, rows = results_rows([v.summary or {"label": v.label, "optimizer": v.optimizer, "lr": v.lr,
                                                  "status": v.status} for v in self._runs])
        for row in rows:
            table.add_row(*row)
        self._table_mode = mode

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
