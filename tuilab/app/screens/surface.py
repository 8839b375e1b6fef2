"""The surface view: the landscape's contour with each trajectory growing, log10 error, results."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from tuilab.app.screens.base import ExperimentScreen, legend_entries
from tuilab.app.widgets import Legend, Line
from tuilab.engine.surfaces.landscapes import landscape_of
from tuilab.views.run_style import no_color, run_style
from tuilab.views.surface import INSIDE_HEADER, draw_error, draw_step_length, draw_surface, inside_rows, results_rows

GROW_SECONDS = 1.5  # the runs take milliseconds; their paths are drawn growing over this time
CURSOR_MOVES = 40  # [ and ] move the inside view's step by this fraction of the longest run


class SurfaceScreen(ExperimentScreen):
    BINDINGS = [Binding("i", "inside", "Inside the optimizer"), Binding("a", "atlas", "Atlas"),
                Binding("left_square_bracket", "cursor(-1)", "Earlier step", key_display="["),
                Binding("right_square_bracket", "cursor(1)", "Later step", key_display="]")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="settings")
        yield Line(id="notice")  # "compiling kernels" on a fresh install's first run (about half a minute)
        with Horizontal(id="surface-charts"):
            yield PlotextPlot(id="contour")
            yield PlotextPlot(id="error")
        yield Legend(id="surface-legend")
        yield DataTable(id="surface-results", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.title = self.experiment.title
        self.sub_title = self.preset
        self.landscape = landscape_of(self.experiment.runs[0].tables["surface"])
        self.inside = False  # the inside view: arrows on the contour, step lengths, the inside table
        self._settings()
        self._table_mode = None
        self._runs = []
        self._grow_start: float | None = None
        self._drawn: tuple = ()
        self.cursor: float | None = None  # the step the inside view shows (None: the end, or as it grows)
        self._results: list = []
        self._found: dict = {}

    def fit_to(self, height: int) -> None:
        self.query_one("#surface-results").styles.max_height = min(max((height - 16) // 2, 4), 14)
        self.query_one("#surface-legend").styles.max_height = 1 if height < 30 else (3 if height < 36 else 4)

    def _settings(self) -> None:
        key = ("   o start  * minimum  → the last step at the point shown;  [ ] a step back / on,  i: back"
               if self.inside else "   o start  ■ end  * minimum   i: inside   a: atlas")
        self.query_one("#settings", Static).update(Text.assemble(
            (f"{self.landscape.name}: ", "bold"), self.landscape.summary, (key, "dim")))

    def action_inside(self) -> None:
        self.inside = not self.inside
        if not self.inside:
            self.cursor = None  # back to the whole paths
        self._table_mode = None
        self._settings()
        self.redraw(force=True)

    def action_atlas(self) -> None:
        """The atlas view: the preset's [atlas], or every start point over the window, for each optimizer."""
        from tuilab.app.screens.atlas import AtlasScreen

        folder = next((lv.out for lv in self.lives if getattr(lv, "out", None) is not None), None)
        self.app.push_screen(AtlasScreen(self.experiment, folder))

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
        self._notice(snaps)
        found = {key: r for s in snaps for key, r in s.surface_results if key not in self.hidden}
        runs = [v for s in snaps for v in s.runs if v.key not in self.hidden]
        shown, ks, focus = self.shown_runs([v for v in runs if v.key in found])
        results = [found[v.key] for v in shown]
        self._runs, self._found = runs, found
        self._results = results
        key = tuple(id(r) for r in found.values())
        if key != self._drawn:
            self._drawn = key
            self._grow_start = time.monotonic()
            self.cursor = None
        if self._grow_start is None and not force:
            return
        upto = 1.0 if self._grow_start is None else min(1.0, (time.monotonic() - self._grow_start) / GROW_SECONDS)
        at_step = self._at_step(results, upto)
        contour = self.query_one("#contour", PlotextPlot)
        draw_surface(contour.plt, self.landscape, results, upto=upto, at_step=at_step, ks=ks, focus=focus,
                     legend=False)
        contour.refresh()
        error = self.query_one("#error", PlotextPlot)
        if self.inside:
            draw_step_length(error.plt, results, upto=at_step, ks=ks, focus=focus, legend=False)
        else:
            draw_error(error.plt, self.landscape, [_Partial(r, upto) for r in results], ks=ks, focus=focus,
                       legend=False)
        error.refresh()
        self.query_one("#surface-legend", Legend).show(legend_entries(shown, ks, focus))
        self._table(at_step, {v.key for v in shown})
        if upto >= 1.0:
            self._grow_start = None

    def _at_step(self, results, upto: float) -> float | None:
        """The step the inside view shows: the cursor's, or the step the growing paths have reached."""
        if self.cursor is not None:
            return self.cursor
        if not self.inside:
            return None
        return upto * max((int(r.steps[-1]) for r in results), default=0)

    metric = "final log10 error"

    def scores(self, views) -> dict[str, float]:
        """Show-best-N's order: the final log10(f - f*), or f where no minimum is known."""
        out = {}
        for v in views:
            r = self._found.get(v.key)
            if r is not None and len(r.f):
                y = r.log10_error[-1] if self.landscape.f_min is not None else r.f[-1]
                out[v.key] = float(y) if r.status != "diverged" else math.inf
        return out

    def _cursor_view(self):
        """The run under the table's cursor."""
        table = self.query_one("#surface-results", DataTable)
        keys = getattr(self, "_table_keys", [])
        if not keys:
            return None
        key = keys[min(max(table.cursor_row, 0), len(keys) - 1)]
        return next((v for v in self._runs if v.key == key), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on a row: that run in or out of the charts."""
        keys = getattr(self, "_table_keys", [])
        if 0 <= event.cursor_row < len(keys):
            self.action_toggle_run(keys[event.cursor_row])

    def _table(self, at_step, shown: set[str]) -> None:
        """The results table, or in the inside view each optimizer inside at the step shown; a row per run
        with its tag in its colour (the charts' legend too), dim when the charts leave it out."""
        table = self.query_one("#surface-results", DataTable)
        sel = self.selection
        mode = ("inside" if self.inside else "results", at_step if self.inside else None, self._drawn,
                tuple(sorted(shown)), sel.focus)
        if mode == self._table_mode:
            return
        colours = self.colours([v.key for v in self._runs])
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_columns("", *(INSIDE_HEADER if self.inside else results_rows([])[0]))
        keys = []
        for v in self._runs:
            r = self._found.get(v.key)
            if self.inside:
                if r is None:
                    continue
                rows = inside_rows([r], at_step)
            else:
                rows = results_rows([v.summary or {"label": v.label, "optimizer": v.optimizer, "lr": v.lr,
                                                   "status": v.status}])[1]
            look = run_style(colours[v.key])
            on = v.key in shown
            style = "" if on else "grey42"
            tag = Text(("◆" if v.key == sel.focus else " ") + look.tag,
                       style=(look.rich if on else "grey35") if not no_color() else "")
            for j, row in enumerate(rows):
                cells = [Text(str(c), style=style + (" bold" if v.key == sel.focus else "")) for c in row]
                if j == 0:
                    cells[0].stylize(look.rich if on and not no_color() else style)
                table.add_row(tag if j == 0 else Text(""), *cells)
                keys.append(v.key)
        self._table_keys = keys
        if keys:
            table.move_cursor(row=min(max(cursor, 0), len(keys) - 1), animate=False)
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
