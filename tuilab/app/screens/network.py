"""The network dashboard: progress, sparklines per run, curves, gradient bars, results."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from tuilab.app.distribution_view import ActivationStrips
from tuilab.app.landscape_view import LandscapePanel
from tuilab.app.live import WATCH_SECONDS, RunView, watch_pace
from tuilab.app.map_view import DecisionMapView
from tuilab.app.screens.base import CHART_SECONDS, ExperimentScreen, legend_entries
from tuilab.app.screens.network_tabs import LowerTabs
from tuilab.app.widgets import (
    ConfusionMatrix,
    CurvesPlot,
    GradBars,
    InsidePanel,
    Legend,
    Line,
    RunList,
    RunRow,
    SweepPlot,
    duration,
    fmt,
)
from tuilab.engine.data.synthetic import CLASSIFICATION as CLASSIFICATION_2D
from tuilab.engine.records.results import COLUMNS


def _last_finite(values) -> float:
    for v in reversed(list(values)):
        if isinstance(v, float) and math.isfinite(v):
            return v
    return math.nan


def lr_label(label: str, lr: float) -> str:
    """A run's label with the learning rate it trains at: "sgd lr=0.001" at 1.16 reads "sgd lr=1.16"."""
    said = f"lr={lr:.3g}"
    return re.sub(r"\blr=\S+", said, label) if re.search(r"\blr=", label) else f"{label} {said}"


class NetworkScreen(LowerTabs, ExperimentScreen):
    BINDINGS = [Binding("a", "toggle_curve", "Loss/accuracy"),
                Binding("u", "resume_records", "Resume"),
                Binding("F", "fork", "Fork"),
                Binding("p", "toggle_pace", "Full speed"),
                Binding("left_square_bracket", "grad_epoch(-1)", "Earlier grads", key_display="["),
                Binding("right_square_bracket", "grad_epoch(1)", "Later grads", key_display="]"),
                Binding("w", "sweep", "Sweep"), Binding("x", "sweep_axis", "Next axis", show=False),
                Binding("i", "inside", "Inside the optimizer"),
                Binding("l", "use_suggested_lr", "Train at suggested lr"),
                Binding("m", "show_tab('map')", "Decision map"),
                Binding("g", "landscape", "Landscape"),
                Binding("d", "landscape_plane", "Next plane", show=False),
                *(Binding(str(n), f"show_tab('{tab}')", tab.title(), show=False)
                  for n, tab in enumerate(("curves", "inside", "results", "sweep", "map", "landscape"), start=1))]

    sweep_axis = 0  # which numeric axis the sweep chart is drawn against

    @property
    def has_maps(self) -> bool:
        """Every run learns from two inputs it can map back to (engine.nn.decision): a decision map tab."""
        return all(r.data is not None and r.data.name in (*CLASSIFICATION_2D, "csv")
                   and r.data.normalize != "per_sample"
                   for r in self.experiment.runs) and self.experiment.lr_range is None  # a CSV file: if it has 2

    @property
    def is_sweep(self) -> bool:
        s = self.experiment.sweep
        return s is not None and bool(s.axes)

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "toggle_pace":  # a single short run is paced to be watched (app.live.watch_pace)
            return any(watch_pace(lv.experiment) > 0 for lv in self.lives if lv.running) or False
        if action == "resume_records":
            return self._resumable() or False  # shown only where opened records did not finish
        if (action in ("sweep", "sweep_axis") or parameters == ("sweep",)) and not self.is_sweep:
            return None  # not shown, and not taken, without a sweep
        if parameters == ("map",) and not self.has_maps:
            return None  # a decision map needs two inputs
        if action == "use_suggested_lr" and self.experiment.lr_range is None:
            return None  # a range test's key only
        return super().check_action(action, parameters)

    def _resumable(self) -> bool:
        from tuilab.app.live import ReplayedExperiment

        return any(isinstance(lv, ReplayedExperiment) and not lv.resumed
                   and any(r.status not in ("completed", "diverged", "pruned") for r in lv.snapshot().runs)
                   for lv in self.lives)

    def action_toggle_pace(self) -> None:
        """p: full speed for a run paced to be watched, or paced again."""
        paced = any(lv.control.min_epoch_seconds > 0 for lv in self.lives)
        for lv in self.lives:
            lv.control.min_epoch_seconds = 0.0 if paced else watch_pace(lv.experiment)
        self.notify("full speed" if paced else f"paced: about {WATCH_SECONDS:g} s a run, to watch it learn",
                    timeout=2)
        self.redraw(force=True)

    def action_use_suggested_lr(self) -> None:
        """l: the same preset trained normally, each run at the learning rate its range test suggests."""
        from dataclasses import replace

        suggested = {}
        for lv in self.lives:
            for i, v in enumerate(lv.snapshot().runs):
                s = (v.summary.get("lr_range") or {}).get("suggested_lr")
                if s is not None and v.key not in self.hidden:
                    suggested[i] = s
        if not suggested:
            self.notify("no suggestion yet: the range test has to finish first", timeout=3)
            return
        runs = tuple(replace(r, label=lr_label(r.label, suggested[i]),
                             tables={**r.tables, "optimizer": {**r.tables["optimizer"], "lr": suggested[i]}})
                     if i in suggested else r for i, r in enumerate(self.experiment.runs))
        experiment = replace(self.experiment, lr_range=None, runs=runs,
                             title=f"{self.experiment.title}: trained at the suggested learning rate")
        self.app.open_experiment(f"{self.preset} at suggested lr {len(self.app.lives)}", experiment)
        self.notify("training at " + ", ".join(f"{runs[i].label} lr={s:.3g}" for i, s in suggested.items()),
                    timeout=4)

    def action_sweep(self) -> None:
        self.action_show_tab("sweep")

    def action_sweep_axis(self) -> None:
        self.sweep_axis += 1
        self.action_sweep()

    grad_epoch: int | None = None  # the epoch the gradient bars show; None: the latest

    def action_grad_epoch(self, delta: int) -> None:
        """Step the gradient bars one epoch back or on (past the latest: follow it again)."""
        v = self._grad_view()
        if v is None:
            return
        shown = v.epoch if self.grad_epoch is None else self.grad_epoch
        first = v.grad_history[0][0] if v.grad_history else v.epoch
        target = max(first, shown + delta)
        self.grad_epoch = None if target >= v.epoch else target
        self.query_one("#grads", GradBars).show(v, self.grad_epoch)

    def action_resume_records(self) -> None:
        """u: continue the opened records that did not finish, in their own folders."""
        from tuilab.app.live import ReplayedExperiment
        from tuilab.engine.records.resume import plan_resume
        from tuilab.errors import TuilabError

        started = 0
        for lv in [lv for lv in self.lives if isinstance(lv, ReplayedExperiment) and not lv.resumed]:
            try:
                experiment, finished = plan_resume(lv.reopened.folder)
            except TuilabError as exc:
                self.notify(str(exc), severity="error", timeout=8)
                continue
            if len(finished) == len(experiment.runs):
                continue
            lv.resumed = True
            self.hidden |= {r.key for r in lv.snapshot().runs}  # the resumed runs take their rows
            self.clear_rows()
            live = self.app.start_live(experiment, f"resumed-{len(self.lives)}", out=lv.reopened.folder,
                                       resume=finished)
            self.lives.append(live)
            started += 1
        self.notify(f"resuming {started} experiment(s) in their folders" if started
                    else "nothing to resume: every opened run has finished", timeout=3)
        self.refresh_bindings()  # training now: pause, stop and the rest apply again

    def action_fork(self) -> None:
        """F: fork the run under the cursor from one of its fork points, with settings changed; the fork trains
        beside it, in a records folder of its own."""
        from tuilab.app.screens.fork import ForkRun
        from tuilab.engine.records.run_records import slug
        from tuilab.engine.training.checkpoint import fork_epochs

        view = self._cursor_view()
        live = next((lv for lv in self.lives if view is not None and view.key.startswith(f"{lv.tag}:")), None)
        if live is None or getattr(live, "out", None) is None:
            self.notify("no run with records under the cursor: a fork starts from a run's records",
                        severity="warning", timeout=5)
            return
        run = live.experiment.runs[int(view.key.rsplit(":", 1)[1])]
        epochs = fork_epochs(Path(live.out) / slug(run.label))
        if not epochs:
            self.notify(f"{run.label} has kept no fork point yet (one is kept as it starts, then every few epochs)",
                        severity="warning", timeout=5)
            return

        def started(made) -> None:
            if made is None:
                return
            experiment, out = made
            live = self.app.start_live(experiment, f"fork-{len(self.lives)}", out=out, resume={})
            self.lives.append(live)
            self.notify(f"forked: {experiment.runs[0].label}, in {out}", timeout=6)
            self.refresh_bindings()

        self.app.push_screen(ForkRun(live.out, run.label, epochs), started)

    def _grad_view(self, listed=None):
        """The run the gradient bars and the inside tab show: the focused one, else the last running."""
        listed = self.listed() if listed is None else listed
        focused = [v for v in listed if v.key == self.selection.focus and v.grad_norms]
        views = [v for v in listed if v.grad_norms and v.key not in self.selection.off]
        running = [v for v in views if v.status == "running"]
        return (focused or running or views or [None])[-1]

    metric = "training loss"

    def scores(self, views) -> dict[str, float]:
        """Show-best-N's order: the last training loss, or the last validation accuracy (higher is better)."""
        if self.experiment.lr_range is not None:
            return {v.key: min(v.range_smoothed, default=math.nan) for v in views}
        if self.curve == "accuracy":  # the last validation accuracy, as the results table ranks: never the test set
            out = {}
            for v in views:
                acc = v.val_accuracy.finite_last()
                out[v.key] = -acc[-1] if acc else math.nan
            return out
        return {v.key: (_last_finite(v.losses)) for v in views}

    curve = "loss"

    def action_show_tab(self, tab: str) -> None:
        """1 2 3 4: the curves, inside, results or sweep tab, without moving the focus to the tab bar."""
        self.query_one("#lower", TabbedContent).active = f"tab-{tab}"
        self.redraw(force=True)

    def action_inside(self) -> None:
        """i: inside the optimizer (the run the gradient bars show)."""
        self.action_show_tab("inside")

    def action_toggle_curve(self) -> None:
        """a: the chart's next curve: training loss, accuracy, and sharpness where a run measures it."""
        order = ["loss", "accuracy"] + (["sharpness"] if any(r.train.sharpness_every > 0
                                                             for r in self.experiment.runs) else [])
        self.curve = order[(order.index(self.curve) + 1) % len(order)] if self.curve in order else "loss"
        self.metric = "validation accuracy" if self.curve == "accuracy" else "training loss"
        self.action_show_tab("curves")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Line(id="settings")
        yield Static(id="progress")  # redrawn each tick, one line: no layout pass (Static.update(layout=False))
        yield Line(id="notice")
        yield Line(id="runs-header")
        yield RunList(id="runs")
        with TabbedContent(id="lower"):
            with TabPane("Curves", id="tab-curves"), Horizontal():
                with Vertical(id="curves-box"):
                    yield CurvesPlot(id="curves")
                    yield Legend(id="curves-legend")
                yield GradBars(id="grads")
            with TabPane("Inside", id="tab-inside"), VerticalScroll():
                yield InsidePanel(id="inside")
                yield ActivationStrips(id="strips")
            with TabPane("Results", id="tab-results"):
                yield DataTable(id="results", zebra_stripes=True)
                yield ConfusionMatrix(id="confusion")
            if self.has_maps:
                with TabPane("Map", id="tab-map"), VerticalScroll():
                    yield DecisionMapView(id="map")
            with TabPane("Landscape", id="tab-landscape"):
                yield LandscapePanel(id="landscape")
            if self.is_sweep:
                with TabPane("Sweep", id="tab-sweep"), Horizontal():
                    with VerticalScroll(id="sweep-tables"):
                        yield Line(id="sweep-table")
                    with Vertical(id="sweep-chart-box"):
                        yield SweepPlot(id="sweep-chart")
                        yield Legend(id="sweep-legend")
        yield Footer()

    def fit_to(self, height: int) -> None:
        self.query_one("#runs").styles.max_height = min(max((height - 16) // 2, 3), 20)
        self.query_one("#curves-legend").styles.max_height = 1 if height < 30 else (3 if height < 36 else 4)

    def on_mount(self) -> None:
        super().on_mount()
        self.title = self.experiment.title
        self.sub_title = self.preset
        table = self.query_one("#results", DataTable)
        table.add_columns(*COLUMNS)
        # a range test records no gradient norms: its curve takes the width, and its title fits
        self.query_one("#grads", GradBars).display = self.experiment.lr_range is None

    def clear_rows(self) -> None:
        for row in list(self.query(RunRow)):
            if row.view.key in self.hidden:
                row.remove()
        self._seen.clear()

    def redraw(self, force: bool = False) -> None:
        if not self.is_mounted:
            return
        snaps = [lv.snapshot() for lv in self.lives]
        views = [r for s in snaps for r in s.runs if r.key not in self.hidden]
        self._settings(snaps)
        self._notice(snaps)
        self._progress(snaps, views)
        shown, ks, focus = self.shown_runs(views)
        self._rows(views, {v.key for v in shown})
        # epochs seen (the series keep few points); a range test's steps
        epochs = tuple(len(v.range_lrs) if self.experiment.lr_range else len(v.train_loss) for v in views)
        now = time.monotonic()
        # plotext redraws cost ~10-30 ms: at most twice a second, so keys stay quick
        chart_every = CHART_SECONDS * self.pace.factor
        if force or (epochs != self._seen.get("epochs") and now - self._seen.get("chart_at", 0.0) >= chart_every):
            self._seen["epochs"] = epochs
            self._seen["chart_at"] = now
            self.query_one("#curves", CurvesPlot).show(shown, "lr_range" if self.experiment.lr_range else self.curve,
                                                       ks, focus, classes=self._class_count(snaps, shown),
                                                       hidden=len(views) - len(shown))
            self.query_one("#curves-legend", Legend).show(legend_entries(shown, ks, focus))
            shown_inside = self._grad_view(views)
            self.query_one("#grads", GradBars).show(shown_inside, self.grad_epoch)
            self.query_one("#inside", InsidePanel).show(shown_inside)
            self.query_one("#strips", ActivationStrips).show(shown_inside)
            if self.is_sweep:
                self._sweep()
            if self.has_maps:
                self._maps(views, shown[focus] if focus is not None else None)
            self._follow_landscape(shown_inside)
        finished = bool(views) and all(v.finished for v in views)
        status_key = tuple((v.key, v.status) for v in views)
        if finished and (force or status_key != self._seen.get("status")):
            self._seen["status"] = status_key
            self._results(views)  # the view stays where it is (the curves, mostly): 3 shows these

    def _settings(self, snaps) -> None:
        from tuilab.app.summary import brief, describe

        data = next((s.dataset for s in reversed(snaps) if s.dataset), "")
        parts = dict(describe(self.experiment))
        wanted = parts["data set"].split(" ")[0]
        used = Text(f" data: {data or wanted}", style="bold red" if data and data != wanted else "bold")
        head = Text.assemble(("net ", "dim"), parts["architecture"].split(",")[0], ("  act ", "dim"),
                             parts["activation"], ("  init ", "dim"), parts["init"], ("  opt ", "dim"))
        tail = Text.assemble(("  batch ", "dim"), parts["batch"], used)
        # the optimizers get what the line has left (one line where it can be), whole names only
        room = max(24, self.size.width - 2 - len(head) - len(tail))
        text = Text.assemble(head, brief(parts["optimizers"].split(", "), room), tail)
        self.query_one("#settings", Line).show(text)

    def _progress(self, snaps, views: list[RunView]) -> None:
        p = self.wall.progress(snaps, views)
        live = [v for v in views if v.status == "running"]
        if not views:
            text = Text("press r to start", style="dim")
        else:
            if p.running and p.paused == p.running:
                state = "paused"
            elif p.running:
                state = "training" + (f" ({p.paused} paused)" if p.paused else "")
                if any(lv.control.min_epoch_seconds > 0 and lv.running for lv in self.lives):
                    state += " (paced to watch: p for full speed)"
            else:
                state = "pending" if all(v.status == "pending" for v in views) else "finished"
            # wall-clock figures for the whole experiment (and the epoch when it is one run)
            v = live[0] if live else views[-1]
            where = f"epoch {v.epoch}/{v.epochs}  " if len(views) == 1 else ""
            rate = p.rate if p.running else math.nan
            text = Text.assemble((f"{state}  ", "bold"),
                                 ("3: results  " if state == "finished" else "", "bold"),  # the view stays put
                                 f"{where}elapsed {duration(p.elapsed)}  ETA {duration(p.eta)}  "
                                 f"{fmt(rate, ',.0f')} samples/s  ",
                                 (f"{len(live)} of {len(views)} runs training, "
                                  f"{sum(x.finished for x in views)} done", "dim"))
        self.query_one("#progress", Static).update(text, layout=False)  # one line, always: no layout pass

    def _rows(self, views: list[RunView], shown: set[str]) -> None:
        box = self.query_one("#runs", RunList)
        rows = {r.view.key: r for r in self.query(RunRow)}
        listed = {v.key for v in views}
        for key in [key for key in rows if key not in listed]:  # gone: a fair race's tuning runs, as it races
            rows.pop(key).remove()
        colours = self.colours([v.key for v in views])
        cursor = self.selection.move(0, len(views))
        sel = self.selection
        top, bottom = box.scroll_offset.y, box.scroll_offset.y + max(box.size.height, 1)
        for k, v in enumerate(views):
            state = ("on" if v.key in shown else ("off" if v.key in sel.off else "dim"), v.key == sel.focus,
                     k == cursor and box.has_focus)
            row = rows.get(v.key)
            if row is None:
                row = RunRow(v, colours[v.key])
                row.state = state
                box.mount(row)
            elif row.is_mounted:
                r = row.virtual_region
                if k == cursor and box.has_focus:
                    row.show(v, state)
                    if self._seen.get("cursor") != (cursor, v.key):  # once per move: the mouse may scroll
                        self._seen["cursor"] = (cursor, v.key)
                        row.scroll_visible(animate=False)
                    continue
                if r.height and (r.y + r.height <= top or r.y >= bottom):
                    continue  # scrolled out of view: brought up to date when it scrolls back in
                row.show(v, state)
        header = Text.assemble((" run".ljust(25), "dim"), ("training loss", "dim"), ("  ·  accuracy per epoch", "dim"))
        if len(views) > 1:
            header.append(f"   {sel.describe(len(shown), len(views), self.metric)}; ", style="dim")
            header.append("v show/hide  f focus  b best N", style="dim italic")
        self.query_one("#runs-header", Line).show(header)

    def on_run_row_clicked(self, message: RunRow.Clicked) -> None:
        views = self.listed()
        keys = [v.key for v in views]
        if message.key in keys:
            self.selection.cursor = keys.index(message.key)
            self.action_toggle_run(message.key)

    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, RunList):
            self.redraw(force=True)  # its cursor shows

    def on_descendant_blur(self, event) -> None:
        if isinstance(event.widget, RunList):
            self.redraw(force=True)
