"""`tuilab report RUNDIR ...`: records read back and printed with no screen (tables, a chart, notes)."""

from __future__ import annotations

import math

from tuilab.engine.records.run_records import Reopened, read_records
from tuilab.headless import headline, results_table


def print_surface_report(rec: Reopened, stream) -> None:
    """The surface lab's own table, contour with trajectories and error chart (views.surface),
    from trajectory.csv and summary.json."""
    from types import SimpleNamespace

    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.replay import replayed_surface_events
    from tuilab.engine.surfaces.landscapes import landscape_of
    from tuilab.views.surface import print_surface_results

    experiment = load_experiment(str(rec.folder / "config.toml"))
    # summary.json keeps NaN as null (JSON has no NaN); the table wants the numbers back
    runs = [{k: math.nan if v is None and k in ("distance", "log10_error") else v for k, v in r.items()}
            for r in rec.runs]
    results = [e.result for e in replayed_surface_events(rec, experiment)]
    outcome = SimpleNamespace(status=rec.status, runs=runs, results=results,
                              landscape=landscape_of(experiment.runs[0].tables["surface"]))
    print_surface_results(experiment, outcome, stream)


def loss_chart(rec: Reopened, width: int = 100, height: int = 18) -> str:
    """Training loss per epoch of every run, as plotext draws it."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    from tuilab.views.run_style import legend, run_style

    drawn = []
    for i, r in enumerate(rec.runs):
        pts = [(m["epoch"], m["train_loss"]) for m in rec.metrics
               if m.get("run") == i and isinstance(m.get("train_loss"), float) and math.isfinite(m["train_loss"])]
        if len(pts) >= 2:  # no colours (it may go to a file): each run its own mark, the legend below
            plt.plot([p[0] for p in pts], [p[1] for p in pts], marker=run_style(i, mono=True).marker)
            drawn.append((i, str(r.get("label", i))))
    if not drawn:
        return ""
    plt.title("training loss per epoch")
    plt.xlabel("epoch")
    return plt.uncolorize(plt.build()) + "\n" + legend(drawn, width, mono=True).plain


def print_decision_maps(rec, stream, most: int = 4) -> None:
    """Each run's decision map (two-input data), a character per class, for the best `most` runs (as ranked)."""
    from tuilab.engine.nn import decision
    from tuilab.engine.records.results import ranked
    from tuilab.engine.records.run_records import slug

    shown = 0
    for i in ranked(rec.runs):
        path = rec.folder / slug(rec.runs[i].get("label", "")) / "decision.npz"
        if not path.is_file() or shown >= most:
            continue
        print(f"\ndecision map of {rec.runs[i]['label']} over its inputs (what it predicts where)", file=stream)
        print(decision.as_text(decision.load(path)), file=stream)
        shown += 1


def print_distributions(rec, stream) -> None:
    """The best run's activations over the epochs, a strip a hidden layer (views.distributions)."""
    from tuilab.engine.records.results import ranked
    from tuilab.views.distributions import distributions_text

    order = ranked(rec.runs)
    if not order:
        return
    best = order[0]
    rows = [r for r in rec.metrics if r.get("run") == best]
    text = distributions_text(rows)
    if text:
        print(f"\n{rec.runs[best]['label']}: {text}", file=stream)


def report(folders, stream, chart: bool = True) -> int:
    """Print each folder's records; returns the exit code (a folder with no records is an error)."""
    for k, folder in enumerate(folders):
        rec = read_records(folder)
        if k:
            print(file=stream)
        if rec.lab == "surface":
            print(f"({rec.folder})", file=stream)
            print_surface_report(rec, stream)
        elif (rec.folder / "lr_range.csv").is_file():
            from tuilab.engine.training.lr_range import curves_of
            from tuilab.views.lr_range import range_text

            print(f"{headline(rec.title, rec.dataset)}: range test {rec.status}   ({rec.folder})", file=stream)
            curves = curves_of(rec.folder, rec.runs)
            print(range_text(rec.summary.get("preset", "PRESET"), rec.runs, curves, chart=chart), file=stream)
        else:
            print(f"{headline(rec.title, rec.dataset)}: {rec.status}   ({rec.folder})", file=stream)
            print(results_table(rec.runs) if rec.runs else "(no runs recorded)", file=stream)
            drawn = loss_chart(rec) if chart else ""
            if drawn:
                print(drawn, file=stream)
            from tuilab.engine.records.sweep_results import from_records
            from tuilab.views.sweep import sweep_text

            sweep = from_records(rec)
            if sweep is not None:
                print(sweep_text(sweep, chart=chart), file=stream)
            if chart:
                print_decision_maps(rec, stream)
                print_distributions(rec, stream)
        for note in rec.notes:
            print(f"note: {note}", file=stream)
    return 0
