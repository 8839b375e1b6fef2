"""The network screen's landscape tab (issue 30): a run's own loss landscape on a plane through its parameters,
its path on it, drawn by the surface lab's contour code (views.net_landscape), and how much of the path the plane
holds. Computed off the UI thread from the run's records (its kept snapshots and, while it trains, its last
checkpoint): g computes it (again), d takes the next kind of plane."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual_plotext import PlotextPlot

from tuilab.app.widgets import Line
from tuilab.views.net_landscape import honesty_line, path_rows, surface_of
from tuilab.views.surface import draw_surface

GRID = 25  # points a side on the dashboard: a live refresh in well under a second on one core
ROWS = 1000  # training rows the loss is taken on (tuilab landscape's default is 2,000)
REFRESH_SECONDS = 5.0  # while the run trains and the tab is shown, the landscape follows it this often


class LandscapePanel(Vertical):
    """Heading, contour with the run's path (and, for a runs plane, every run's), the honesty line and the table
    of snapshots, last first."""

    DEFAULT_CSS = """
    LandscapePanel { height: 1fr; }
    LandscapePanel #landscape-plot { height: 1fr; min-height: 12; }
    LandscapePanel #landscape-table { height: auto; max-height: 8; }
    """

    def compose(self) -> ComposeResult:
        yield Line(id="landscape-heading")
        yield PlotextPlot(id="landscape-plot")
        yield Line(id="landscape-table")

    def say(self, words: str, style: str = "dim") -> None:
        """A message in place of the landscape (nothing to draw yet, a run without snapshots, computing...)."""
        self.query_one("#landscape-heading", Line).show(Text(words, style=style))

    def show(self, land, label: str, dataset: str) -> None:
        surface, traces = surface_of(land, f"{label}: its loss landscape", labels=(label,))
        at = int(land.epochs[-1])
        self.query_one("#landscape-heading", Line).show(Text(
            f"{label} at epoch {at}: training loss on {land.rows} rows of {dataset}, {surface.summary}   "
            "(g again: now; d: another plane)", style="bold"))
        plot = self.query_one("#landscape-plot", PlotextPlot)
        draw_surface(plot.plt, surface, traces, legend=False)
        plot.plt.title("o start  * end" + ("  (several runs: their legend is the run list's colours)"
                                           if len(traces) > 1 else ""))
        plot.plt.xlabel("a")
        plot.plt.ylabel("b")
        plot.refresh()
        header, rows = path_rows(land)
        widths = [max(len(header[c]), *(len(r[c]) for r in rows)) for c in range(len(header))]
        text = Text()
        text.append(honesty_line(land) + "\n", style="yellow" if land.misread.any() else "")
        text.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n", style="dim")
        for r in reversed(rows):  # the latest first: where it stands now
            text.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
        self.query_one("#landscape-table", Line).show(text)
