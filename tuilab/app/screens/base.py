"""What the network and surface screens share: the live experiments, the keys that control them, which runs the
charts show, and the redraw timer.

How a screen redraws (the redraw protocol):
- The engine's events reach the screen only as snapshots (app.live): a timer calls `redraw()` at most every
  REFRESH_SECONDS (stretched by the screen's Pace when drawing takes more than its share of a core), and a key
  calls `redraw(force=True)` at once.
- A redraw rebuilds what it shows from the snapshots and hands each widget its content; a widget redraws only
  when that content changed: `Line.show` keeps the last text it drew (an update of an auto-sized widget costs a
  layout pass of the screen, ~30 ms), and the charts (plotext, 10-70 ms a draw) are drawn at most every
  CHART_SECONDS unless forced.
- What the screen itself has drawn is in `self._seen` (the epochs the charts last drew, when, the runs' statuses
  the results last showed, where the run list's cursor was): `clear_rows()` forgets it, so that the next redraw
  draws everything again.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen

from tuilab.app.live import LiveExperiment, Pace, WallClock
from tuilab.app.selection import Selection
from tuilab.app.widgets import Line

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
REFRESH_SECONDS = 0.2  # at most 5 redraws a second, whatever the event rate (keys redraw at once)
CHART_SECONDS = 1.0  # plotext builds its chart in Python: ~40-70 ms, so once a second at most
# both stretched by the screen's Pace when drawing takes more than its share of a core (many runs)


def legend_entries(shown, ks, focus: int | None) -> list[tuple]:
    """A chart legend's entries for the runs it draws: (colour index, label, dimmed behind the focus)."""
    return [(k, v.label, focus is not None and i != focus) for i, (k, v) in enumerate(zip(ks, shown, strict=True))]


class ExperimentScreen(Screen):
    """What the network and surface screens share: live experiments, keys, the redraw timer."""

    # the footer shows keys in this order and cuts what does not fit: the way out and to help first
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.quit", "Quit"),
        Binding("space", "pause", "Pause/resume"),
        Binding("s", "stop", "Stop"),
        Binding("r", "restart", "Restart"),
        Binding("e", "edit", "Edit"),
        Binding("c", "clear", "Clear finished"),
        Binding("v", "toggle_run", "Show/hide run"),
        Binding("f", "focus_run", "Focus run"),
        Binding("b", "best_runs", "Best N"),
    ]

    TRAINING_ACTIONS = frozenset({"pause", "stop", "restart", "edit"})

    @property
    def only_records(self) -> bool:
        """Every experiment shown is records reopened (tuilab open), none resumed: nothing here trains."""
        from tuilab.app.live import ReplayedExperiment

        return bool(self.lives) and all(isinstance(lv, ReplayedExperiment) for lv in self.lives)

    def check_action(self, action: str, parameters) -> bool | None:
        if action in self.TRAINING_ACTIONS and self.only_records:
            return False  # records are records: not shown, not taken (u resumes them, in their folder)
        return True

    def __init__(self, preset: str, experiment, **kw):
        super().__init__(**kw)
        self.preset = preset
        self.experiment = experiment
        self.lives: list[LiveExperiment] = []
        self.hidden: set[str] = set()  # run keys cleared from view
        self._seen: dict[str, int] = {}
        self._spin = 0
        self.edits = 0
        self.wall = WallClock()
        self.pace = Pace(REFRESH_SECONDS)
        self.selection = Selection()
        self._colours: dict[str, int] = {}  # run key -> its colour, kept for as long as it is shown

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._tick)

    def on_resize(self, event) -> None:
        self.fit_to(event.size.height)

    def fit_to(self, height: int) -> None:
        """Share the rows between the run list or table and the charts by the terminal's height: at 80x24 the
        charts were squeezed to nothing behind 8 rows of runs and a 3-line legend. Each screen its own."""
        raise NotImplementedError

    def _tick(self) -> None:
        if self.pace.due():
            self.redraw()

    # -- starting and controlling --

    def start(self, experiment=None, tag: str | None = None) -> LiveExperiment:
        live = self.app.start_live(experiment or self.experiment, tag or f"{len(self.lives)}")
        self.lives.append(live)
        self.redraw()
        return live

    @property
    def running(self) -> list[LiveExperiment]:
        return [lv for lv in self.lives if lv.running]

    @property
    def paused(self) -> bool:
        """Something is paused (each experiment's Control says; there is no second copy here)."""
        return any(lv.control.paused for lv in self.running)

    def action_pause(self) -> None:
        """Space: resume everything paused if anything is, else pause everything running."""
        live = self.running
        if not live:
            self.notify("nothing is running", timeout=2)
            return
        pause = not self.paused
        for lv in live:
            (lv.control.pause if pause else lv.control.resume)()
        self.notify("paused" if pause else "resumed", timeout=1.5)
        self.redraw(force=True)

    def action_stop(self) -> None:
        live = self.running
        for lv in live:
            lv.stop()
        if live:
            self.notify("stopping; the records are kept", timeout=2)

    def action_restart(self) -> None:
        for lv in self.running:
            lv.stop()
        self.hidden |= {r.key for lv in self.lives for r in lv.snapshot().runs}
        self.clear_rows()
        self.start(tag=f"{len(self.lives)}")
        self.notify("restarted", timeout=1.5)

    def action_clear(self) -> None:
        done = {r.key for lv in self.lives for r in lv.snapshot().runs if r.finished}
        if not done:
            self.notify("no finished runs to clear", timeout=2)
            return
        self.hidden |= done
        self.clear_rows()
        self.redraw(force=True)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_edit(self) -> None:
        from tuilab.app.screens.edit import EditRun

        base = self.lives[-1].experiment if self.lives else self.experiment
        self.app.push_screen(EditRun(base), self.start_edited)

    def start_edited(self, experiment) -> None:
        if experiment is None:
            return
        self.edits += 1
        self.start(experiment, tag=f"e{self.edits}")
        self.notify(f"started {experiment.runs[0].label}", timeout=2)

    def clear_rows(self) -> None:
        """Forget the rows of runs cleared from view (self.hidden) and what was drawn (self._seen)."""
        self._seen.clear()

    def redraw(self, force: bool = False) -> None:
        """Draw the screen from the experiments' snapshots (see the module's docstring); each screen its own."""
        raise NotImplementedError

    # -- which runs the charts show (app.selection) --

    def listed(self) -> list:
        """Every run the screen lists (all but those cleared), in order."""
        return [v for lv in self.lives for v in lv.snapshot().runs if v.key not in self.hidden]

    def colours(self, keys) -> dict[str, int]:
        """Each run's colour index: the lowest free one when it first appears, kept from then on (a
        restarted experiment's runs get their colours back, in order)."""
        used = {self._colours[k] for k in keys if k in self._colours}
        for key in keys:
            if key not in self._colours:
                k = 0
                while k in used:
                    k += 1
                self._colours[key] = k
                used.add(k)
        return self._colours

    def scores(self, views) -> dict[str, float]:
        """What "best" means for show-best-N (lower is better)."""
        return {}

    metric = "its metric"

    def _cursor_view(self):
        views = self.listed()
        if not views:
            return None
        return views[self.selection.move(0, len(views))]

    def action_cursor_run(self, delta: int) -> None:
        views = self.listed()
        if views:
            self.selection.move(delta, len(views))
            self.redraw(force=True)

    def action_toggle_run(self, key: str | None = None) -> None:
        """v (or Enter in the run list, or a click on a row): the run under the cursor in or out of the charts."""
        view = self._cursor_view() if key is None else next((v for v in self.listed() if v.key == key), None)
        if view is None:
            return
        on = self.selection.toggle(view.key)
        self.notify(f"{view.label}: {'shown' if on else 'hidden'} in the charts", timeout=1.5)
        self.redraw(force=True)

    def action_focus_run(self) -> None:
        """f: the run under the cursor drawn on top in its colour, the others dimmed (f again: none)."""
        view = self._cursor_view()
        if view is None:
            return
        on = self.selection.toggle_focus(view.key)
        self.notify(f"focused on {view.label}" if on else "no run focused", timeout=1.5)
        self.redraw(force=True)

    def action_best_runs(self) -> None:
        """b: only the best 3, 5, 10 runs by the metric shown, then all again."""
        views = self.listed()
        n = self.selection.next_best(len(views))
        self.notify(f"showing the best {n} by {self.metric}" if n else "showing every run", timeout=1.5)
        self.redraw(force=True)

    def shown_runs(self, views) -> tuple[list, list[int], int | None]:
        """(the runs the charts draw, their colour indices, the focused one's position among them)."""
        colours = self.colours([v.key for v in views])
        keys = self.selection.shown([v.key for v in views], self.scores(views) if self.selection.best else None)
        by_key = {v.key: v for v in views}
        shown = [by_key[k] for k in keys]
        focus = keys.index(self.selection.focus) if self.selection.focus in keys else None
        return shown, [colours[v.key] for v in shown], focus

    def _notice(self, snaps) -> None:
        """The line under the settings: compiling (with a spinner), the last error, or the last notice."""
        notice = self.query_one("#notice", Line)
        self._spin = (self._spin + 1) % len(SPINNER)  # a frame a redraw
        compiling = any(s.compiling for s in snaps)
        errors = [s.error for s in snaps if s.error]
        notes = [n for s in snaps for n in s.notices]
        if compiling:
            text = Text(f"{SPINNER[self._spin]} compiling kernels, first run only…", style="bold yellow")
        elif errors:
            text = Text(errors[-1], style="bold red")
        elif notes:
            text = Text(notes[-1], style="yellow")
        else:
            text = Text("")
        notice.show(text)
        shown = bool(compiling or errors or notes)
        if notice.display != shown:
            notice.display = shown
