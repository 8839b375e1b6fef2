"""The atlas view (a on a surface preset): a heat map of every run at every cell of two settings, and the
trajectory of the cell under the cursor on the contour beside it."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual_plotext import PlotextPlot

from tuilab.engine.config.atlas import AtlasSpec
from tuilab.engine.surfaces.atlas import FILE, METRIC_WORDS, Atlas, axes_of, cell_count, cell_run, describe_cell
from tuilab.engine.surfaces.landscapes import descend, landscape_of
from tuilab.errors import TuilabError
from tuilab.views.atlas import atlas_summary, atlas_text, scale_text
from tuilab.views.surface import draw_surface

METRICS = ("final_error", "steps_to_tol", "minimum")


class AtlasScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("up,k", "move(1, 0)", "Up", show=False), Binding("down,j", "move(-1, 0)", "Down", show=False),
                Binding("left,h", "move(0, -1)", "Left", show=False),
                Binding("right,l", "move(0, 1)", "Right", show=False),
                Binding("n", "next_run", "Next optimizer"), Binding("m", "next_metric", "Next metric"),
                Binding("enter", "show_cell", "Trajectory")]

    def __init__(self, experiment, folder: str | Path | None = None, **kw):
        """`folder`: the experiment's records, whose atlas.npz (the run's own) is shown where there is one."""
        super().__init__(**kw)
        self.experiment = experiment
        self.folder = Path(folder) if folder is not None else None
        self.atlas: Atlas | None = None
        self.run = 0
        self.metric: str | None = None
        self.cursor = (0, 0)  # (row: y value, column: x value)
        self.trajectory = None  # the cell under the cursor as a single run (landscapes.SurfaceResult)
        self.landscape = landscape_of(experiment.runs[0].tables["surface"])
        self.spec = experiment.atlas or AtlasSpec()
        self._stop = threading.Event()  # set when the view closes: an atlas still computing stops

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="atlas-title")
        with Horizontal(id="atlas-body"):
            yield Static(id="atlas-map")
            yield PlotextPlot(id="atlas-contour")
        yield Static(id="atlas-cell")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"{self.experiment.title}: atlas"
        saved = self.folder / FILE if self.folder is not None else None
        if saved is not None and saved.is_file():
            try:
                self._show(Atlas.load(saved))
                return
            except TuilabError:
                pass  # unreadable: computed afresh below
        runs = len(self.experiment.runs)
        self.query_one("#atlas-title", Static).update(Text(
            f"computing the atlas: {runs} optimizer{'s' * (runs != 1)} x {cell_count(self.experiment):,} runs "
            "(the first time, its kernels compile first: a few seconds an optimizer)", style="bold"))
        self.run_worker(self._compute, thread=True, name="atlas", group="atlas", exit_on_error=False)

    def _compute(self) -> None:
        from tuilab.engine.surfaces.atlas import run_atlas

        try:
            atlas = run_atlas(self.experiment, stop=self._stop)
        except TuilabError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._show, atlas)

    def on_unmount(self) -> None:
        self._stop.set()

    def _failed(self, message: str) -> None:
        self.query_one("#atlas-title", Static).update(Text(f"no atlas: {message}", style="bold red"))

    def _show(self, atlas: Atlas) -> None:
        if self._stop.is_set():  # computed for a view closed meanwhile
            return
        self.atlas = atlas
        self.metric = atlas.metric
        n1, n0 = atlas.shape
        self.cursor = (n1 // 2, n0 // 2)
        self.redraw()

    # -- keys --

    def action_move(self, rows: int, columns: int) -> None:
        if self.atlas is None:
            return
        n1, n0 = self.atlas.shape
        i, j = self.cursor
        self.cursor = (min(n1 - 1, max(0, i + rows)), min(n0 - 1, max(0, j + columns)))
        self.redraw()

    def action_next_run(self) -> None:
        if self.atlas is not None:
            self.run = (self.run + 1) % len(self.atlas.labels)
            self.redraw()

    def action_next_metric(self) -> None:
        if self.atlas is None:
            return
        usable = [m for m in METRICS if m != "minimum" or len(self.atlas.minima) > 1]
        k = usable.index(self.metric) if self.metric in usable else -1
        self.metric = usable[(k + 1) % len(usable)]
        self.redraw()

    def action_show_cell(self) -> None:
        self.redraw()

    # -- drawing --

    def redraw(self) -> None:
        atlas = self.atlas
        if atlas is None or not self.is_mounted:
            return
        i, j = self.cursor
        title = Text.assemble((f"{atlas.labels[self.run]}", "bold"), f": {METRIC_WORDS[self.metric]}   ",
                              (f"{atlas.shape[1]} x {atlas.shape[0]} runs in {atlas.seconds:.2f} s on "
                               f"{atlas.threads} thread{'s' * (atlas.threads != 1)}   "
                               "arrows: a cell   n: next optimizer   m: next metric", "dim"))
        self.query_one("#atlas-title", Static).update(title)
        self.query_one("#atlas-map", Static).update(atlas_text(atlas, self.run, self.metric, cursor=self.cursor,
                                                                title=False, key=False))
        self.query_one("#atlas-cell", Static).update(Text.assemble(
            scale_text(atlas, self.run, self.metric, indent=0), "\n", ("cell: ", "bold"),
            describe_cell(atlas, self.run, i, j), "\n", (atlas_summary(atlas, self.run), "dim")))
        self._draw_trajectory(i, j)

    def _draw_trajectory(self, i: int, j: int) -> None:
        """The cell's run, made again as a single run (its path; the atlas keeps only the end), on the contour."""
        atlas = self.atlas
        plot = self.query_one("#atlas-contour", PlotextPlot)
        run = self.experiment.runs[self.run]
        x, y = axes_of(self.spec, self.landscape)
        try:
            cell = cell_run(run, x, y, atlas.values_0[j], atlas.values_1[i], self.spec.steps)
            result = descend(self.landscape, cell.optimizer, cell.start, cell.steps, 600,
                             f"{x.setting}={atlas.values_0[j]:.3g} {y.setting}={atlas.values_1[i]:.3g}",
                             checked=cell.hyper)
        except TuilabError as exc:
            plot.plt.clear_figure()
            plot.plt.title(str(exc)[:80])
            plot.refresh()
            return
        self.trajectory = result
        draw_surface(plot.plt, self.landscape, [result], title=f"{run.label}: {result.label} ({result.status})",
                     legend=False)
        plot.refresh()
