"""What the network screen's lower tabs draw from the runs' snapshots: the results table and confusion matrix, the
sweep's tables and chart, the decision maps, and the class count the curves' guessing line needs. A mixin of
NetworkScreen (screens/network.py), kept apart so that each file holds one job."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.widgets import DataTable

from tuilab.app.live import RunView
from tuilab.app.map_view import DecisionMapView
from tuilab.app.widgets import ConfusionMatrix, Legend, Line, SweepPlot
from tuilab.engine.data.sets import CLASS_NAMES
from tuilab.engine.records.results import chosen_line, ranked, result_rows


class LowerTabs:
    """The results, sweep and map tabs of NetworkScreen (which gives experiment, lives, hidden, selection and
    sweep_axis)."""

    def _class_count(self, snaps, shown) -> int | None:
        """C where every run drawn classifies into C classes by softmax and cross-entropy (guessing's level
        is then ln C and 100 / C %), else None."""
        models = {v.key: (snap.experiment or lv.experiment).runs[i].model
                  for lv, snap in zip(self.lives, snaps, strict=True) for i, v in enumerate(snap.runs)}
        def classes(v):  # the output's width; records reopened have no sizes but their confusion matrix
            if models[v.key].loss != "cross_entropy" or models[v.key].output != "softmax":
                return None
            return v.sizes[-1] if v.sizes else (len(v.confusion) or None)

        counts = {classes(v) for v in shown}
        return counts.pop() if len(counts) == 1 else None

    def _maps(self, views, focused) -> None:
        """The map tab: the focused run large (else the best by validation accuracy), the others small, best
        first; runs hidden from the charts are left out."""
        drawn = [v for v in views if v.decision is not None and v.key not in self.selection.off]
        def accuracy(v):
            acc = v.val_accuracy.finite_last()
            return acc[-1] if acc else math.nan
        drawn.sort(key=lambda v: -accuracy(v) if math.isfinite(accuracy(v)) else math.inf)
        if focused is not None and focused in drawn:
            drawn.remove(focused)
            drawn.insert(0, focused)
        self.query_one("#map", DecisionMapView).show([(v.label, v.decision, accuracy(v)) for v in drawn])

    # -- the landscape tab (app.landscape_view): computed in a thread from the run's records --

    landscape_plane = "pca"
    _landscape_busy = False
    _landscape_at = -math.inf  # when the last one was asked for (time.monotonic())
    _landscape_of: tuple | None = None  # (run key, plane) of the one shown

    def action_landscape(self) -> None:
        """g: the landscape of the run the gradient bars show, where it stands now."""
        self.query_one("#lower").active = "tab-landscape"
        self._landscape(self._grad_view(), say=True)

    def action_landscape_plane(self) -> None:
        """d: the next kind of plane (pca, random, runs) for the landscape tab."""
        from tuilab.engine.nn.landscape import DIRECTIONS

        self.landscape_plane = DIRECTIONS[(DIRECTIONS.index(self.landscape_plane) + 1) % len(DIRECTIONS)]
        self.action_landscape()

    def _follow_landscape(self, view) -> None:
        """While the tab is shown and its run trains, its landscape again every REFRESH_SECONDS."""
        from tuilab.app.landscape_view import REFRESH_SECONDS

        if (self.query_one("#lower").active == "tab-landscape" and view is not None and view.status == "running"
                and self._landscape_of is not None and self._landscape_of[0] == view.key
                and time.monotonic() - self._landscape_at >= REFRESH_SECONDS):
            self._landscape(view)

    def _landscape(self, view, say: bool = False) -> None:
        from tuilab.app.landscape_view import GRID, ROWS, LandscapePanel

        panel = self.query_one("#landscape", LandscapePanel)
        found = next(((lv, int(v.key.rsplit(":", 1)[1])) for lv in self.lives for v in lv.snapshot().runs
                      if view is not None and v.key == view.key), None)
        if found is None:
            panel.say("a run's landscape appears once it has trained an epoch: g then draws it")
            return
        lv, index = found
        if lv.out is None:
            panel.say("records are off for this experiment: a landscape is drawn from a run's kept snapshots")
            return
        if self._landscape_busy:
            return
        self._landscape_busy = True
        self._landscape_at = time.monotonic()
        label, plane, folder = lv.experiment.runs[index].label, self.landscape_plane, lv.out
        data_dir = getattr(lv.data, "data_dir", None) if lv.data is not None else None
        if say:
            panel.say(f"{label}: computing its loss landscape on a {GRID}x{GRID} {plane} plane…")

        def work():
            from tuilab.engine.training.threads import budget
            from tuilab.errors import TuilabError
            from tuilab.landscape import landscape_of

            try:
                with budget().hold(1):  # one core: the runs go on training on the others
                    # keep=False: the dashboard draws it and writes nothing (tuilab open writes nothing;
                    # tuilab landscape keeps landscape.npz)
                    land, run_label, dataset = landscape_of(folder, label, plane, GRID, None, ROWS,
                                                            data_dir=data_dir, threads=1, now=True, keep=False)
                self.app.call_from_thread(self._landscape_done, view.key, plane, (land, run_label, dataset), None)
            except TuilabError as exc:
                self.app.call_from_thread(self._landscape_done, view.key, plane, None, str(exc))
            except Exception as exc:  # a surprise must not leave the tab busy for good: said, and g tries again
                self.app.call_from_thread(self._landscape_done, view.key, plane, None,
                                          f"the landscape could not be drawn ({type(exc).__name__}: {exc}); "
                                          "g tries again")

        self.run_worker(work, thread=True, group="landscape", exit_on_error=False)

    def _landscape_done(self, key, plane, found, error) -> None:
        from tuilab.app.landscape_view import LandscapePanel

        self._landscape_busy = False
        panel = self.query_one("#landscape", LandscapePanel)
        if error is not None:
            panel.say(error, style="yellow")
            self._landscape_of = None
            return
        self._landscape_of = (key, plane)
        panel.show(*found)

    def _sweep(self) -> None:
        """The sweep tab from what the runs have done so far: it fills in as they train and finish."""
        from tuilab.engine.records.sweep_results import sweep_results
        from tuilab.views.sweep import grouped_table, heat_table

        runs, histories = [], {}
        for lv in self.lives:
            snap = lv.snapshot()
            for i, v in enumerate(snap.runs):
                if v.key in self.hidden:
                    continue
                histories[len(runs)] = [tuple(s.finite_last()[-1] if s.finite_last() else math.nan
                                              for s in (v.val_accuracy, v.val_loss, v.train_loss))]
                runs.append({"status": v.status, "settings": (snap.experiment or lv.experiment).runs[i].settings})
        results = sweep_results(self.experiment.sweep.axes, runs, histories)
        heat = heat_table(results)
        text = grouped_table(results) + (f"\n\n{heat}" if heat else "")
        self.query_one("#sweep-table", Line).show(Text(text))
        axes = results.numeric_axes()
        axis = axes[self.sweep_axis % len(axes)] if axes else None
        key = self.query_one("#sweep-chart", SweepPlot).show(results, axis)
        self.query_one("#sweep-legend", Legend).show([(k, label, False) for k, label in key])

    def _results(self, views: list[RunView]) -> None:
        table = self.query_one("#results", DataTable)
        table.display = self.experiment.lr_range is None  # a range test has its own table, below
        if self.experiment.lr_range is not None:
            from tuilab.views.lr_range import range_table

            runs = [{**v.summary, "label": v.label, "optimizer": v.optimizer, "status": v.status} for v in views]
            self.query_one("#confusion", ConfusionMatrix).show(Text(range_table(runs) + "\n\nl: train each run at "
                                                                    "its suggested learning rate"))
            return
        runs = [{**v.summary, "label": v.label, "optimizer": v.optimizer, "lr": v.lr, "status": v.status,
                 **({"diverged_at": {"epoch": v.diverged_at[0], "step": v.diverged_at[1]}} if v.diverged_at else {})}
                for v in views]
        table.clear()
        for row in result_rows(runs):
            table.add_row(*row)
        ordered = [views[i] for i in ranked(runs)]
        best = next((v for v in ordered if v.confusion), None)
        conf = self.query_one("#confusion", ConfusionMatrix)
        chosen = chosen_line(runs)
        race = next((lv.outcome.result for lv in self.lives if getattr(lv.outcome, "result", None)), None)
        if race is not None:  # a fair race that has finished: the leaderboard, the mean curves, what was tuned
            from tuilab.views.race import leaderboard_text, race_chart, tuned_text
            from tuilab.views.run_style import no_color

            width = max(60, min(conf.size.width - 2, 140))
            chart = race_chart(race, width, 18, mono=no_color())
            conf.show(Text.assemble(leaderboard_text(race), "\n\n", Text.from_ansi(chart), "\n\n",
                                    tuned_text(race)))
            return
        if best is None:
            conf.show(Text(chosen))
            return
        sets = {lv.snapshot().dataset for lv in self.lives}
        names = CLASS_NAMES.get(sets.pop(), ()) if len(sets) == 1 else ()
        conf.show_matrix(chosen, best.label, best.confusion, names)
