"""What the network screen's lower tabs draw from the runs' snapshots: the results table and confusion matrix, the
sweep's tables and chart, the decision maps, and the class count the curves' guessing line needs. A mixin of
NetworkScreen (screens/network.py), kept apart so that each file holds one job."""

from __future__ import annotations

import math

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
        models = {v.key: lv.experiment.runs[i].model for lv, snap in zip(self.lives, snaps, strict=True)
                  for i, v in enumerate(snap.runs)}
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

    def _sweep(self) -> None:
        """The sweep tab from what the runs have done so far: it fills in as they train and finish."""
        from tuilab.engine.records.sweep_results import sweep_results
        from tuilab.views.sweep import grouped_table, heat_table

        runs, histories = [], {}
        for lv in self.lives:
            for i, v in enumerate(lv.snapshot().runs):
                if v.key in self.hidden:
                    continue
                histories[len(runs)] = [tuple(s.finite_last()[-1] if s.finite_last() else math.nan
                                              for s in (v.val_accuracy, v.val_loss, v.train_loss))]
                runs.append({"status": v.status, "settings": lv.experiment.runs[i].settings})
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
        if best is None:
            conf.show(Text(chosen))
            return
        sets = {lv.snapshot().dataset for lv in self.lives}
        names = CLASS_NAMES.get(sets.pop(), ()) if len(sets) == 1 else ()
        conf.show_matrix(chosen, best.label, best.confusion, names)
