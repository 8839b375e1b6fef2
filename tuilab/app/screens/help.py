"""The help overlay: every key, on one page."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Preset browser", [("↑ ↓", "move between presets"), ("Enter", "start the highlighted preset"),
                        ("ctrl+p", "command palette: open any preset by name")]),
    ("While it learns", [("space", "pause / resume"), ("s", "stop (records are kept)"),
                         ("p", "full speed: one short run is paced over ~3 s, to watch it learn"),
                         ("r", "restart the preset as new runs"),
                         ("e", "edit: change optimizer, lr, sizes… and start it beside the others"),
                         ("c", "clear finished runs from the view"),
                         ("a", "chart: loss, accuracy, or sharpness (where measured) per epoch"),
                         ("tab ↑ ↓", "the run list (the table on a surface): move between runs"),
                         ("v  Enter", "the run under the cursor out of the charts, or back (a click too)"),
                         ("f", "focus it: on top in its colour, the others dimmed (f again: none)"),
                         ("b", "only the best 3, 5, 10 runs by the metric shown, then all"),
                         ("[ ]", "gradient bars: an epoch earlier / later"),
                         ("m", "decision map (two-input data): what each run predicts over its inputs, live; "
                                "the focused run large, test points it gets wrong marked ✗"),
                         ("i", "inside the optimizer: update/weight ratios, effective steps, momentum; each hidden "
                               "layer's mean f'(z): the share of the gradient it passes back (a sigmoid's is at "
                               "most 1/4: eight of them starve the first layers), dead ReLU units; under them each "
                               "layer's activations over the epochs (a band at 0 and 1: saturated; at 0: dying)"),
                         ("g", "landscape: the run's training loss over a plane through its parameters, its path "
                               "on it (o start, * end), how much of the path the plane holds; followed live"),
                         ("d", "landscape: the next plane (PCA of the path, random directions, the runs' start "
                               "and two ends)"),
                         ("[ ]", "surfaces, inside: step the arrows and the table back / on"),
                         ("a", "surfaces: the atlas, every optimizer run at every cell of two settings (the "
                               "preset's [atlas], else every start point): arrows pick a cell and draw its run, "
                               "n the next optimizer, m the next metric"),
                         ("l", "a range test: train each run at its suggested learning rate"),
                         ("w  x", "a sweep: its tab (grouped runs, chart) / chart the next axis"),
                         ("u", "opened records (tuilab open): resume what did not finish"),
                         ("F", "fork the run under the cursor: a new run from its checkpoint at an epoch, with "
                               "settings changed (tuilab fork), training beside it in a folder of its own"),
                         ("1 2 3 4 5 6", "a network's tabs: curves, inside, results, sweep, map, landscape"),
                         ("tab", "move focus (the run list, the tab bar, the results table)"),
                         ("Escape", "back to the presets (runs go on; ● marks them)")]),
    ("Anywhere", [("?", "this help"), ("q", "quit (running runs stop and keep their records)"),
                  ("S", "save the screen as an SVG file (beside the records shown, else in this folder)")]),
]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", justify="right")
        table.add_column()
        for title, keys in KEYS:
            table.add_row("", f"[bold]{title}[/]")
            for key, what in keys:
                table.add_row(key, what)
            table.add_row("", "")
        with Vertical(id="help-dialog"):
            yield Static("tuilab — keys", id="help-title")
            yield Static(table)
            yield Static("Escape or ? closes this", classes="dim")

    def action_dismiss(self) -> None:
        self.dismiss()
