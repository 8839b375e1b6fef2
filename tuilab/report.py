"""`tuilab report RUNDIR ...`: records read back and printed with no screen (tables, a chart, notes)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from tuilab.engine.records.run_records import Reopened, read_records
from tuilab.headless import headline, results_table


def surface_outcome(rec: Reopened):
    """(experiment, outcome) of surface records, as views.surface draws them: from trajectory.csv and
    summary.json."""
    from types import SimpleNamespace

    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.replay import replayed_surface_events
    from tuilab.engine.surfaces.landscapes import landscape_of

    experiment = load_experiment(str(rec.folder / "config.toml"))
    # summary.json keeps NaN as null (JSON has no NaN); the table wants the numbers back
    runs = [{k: math.nan if v is None and k in ("distance", "log10_error") else v for k, v in r.items()}
            for r in rec.runs]
    results = [e.result for e in replayed_surface_events(rec, experiment)]
    outcome = SimpleNamespace(status=rec.status, runs=runs, results=results,
                              landscape=landscape_of(experiment.runs[0].tables["surface"]))
    return experiment, outcome


def print_surface_report(rec: Reopened, stream) -> None:
    """The surface lab's own table, contour with trajectories and error chart (views.surface)."""
    from tuilab.views.surface import print_surface_results

    print_surface_results(*surface_outcome(rec), stream)


def _atlas_of(rec: Reopened):
    """The records' atlas (engine.surfaces.atlas), or None where they have none."""
    from tuilab.engine.surfaces.atlas import FILE, Atlas

    return Atlas.load(rec.folder / FILE) if (rec.folder / FILE).is_file() else None


def loss_chart(rec: Reopened, width: int = 100, height: int = 18, mono: bool = True) -> str:
    """Training loss per epoch of every run, as plotext draws it (with ANSI colours unless mono)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    from tuilab.views.run_style import ansi, legend, run_style

    drawn = []
    for i, r in enumerate(rec.runs):
        pts = [(m["epoch"], m["train_loss"]) for m in rec.metrics
               if m.get("run") == i and isinstance(m.get("train_loss"), float) and math.isfinite(m["train_loss"])]
        if len(pts) >= 2:  # mono (it may go to a file): each run its own mark, the legend below
            look = run_style(i, mono=mono)
            plt.plot([p[0] for p in pts], [p[1] for p in pts], marker=look.marker, color=None if mono else look.rgb)
            drawn.append((i, str(r.get("label", i))))
    if not drawn:
        return ""
    plt.title("training loss per epoch")
    plt.xlabel("epoch")
    if mono:
        return plt.uncolorize(plt.build()) + "\n" + legend(drawn, width, mono=True).plain
    return plt.build() + "\n" + ansi(legend(drawn, width, mono=False))


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


def fork_origin(folder) -> dict | None:
    """Where a fork's records came from (engine.records.fork: forked_from.json), or None."""
    import json
    from pathlib import Path

    path = Path(folder) / "forked_from.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def fork_chart(folder, width: int = 100, height: int = 18, mono: bool = True) -> str:
    """The fork's training loss beside its original run's, a line at the epoch they part: "" where the original
    is gone or the records are no fork."""
    import plotext as plt

    from tuilab.views.run_style import ansi, legend, run_style

    origin = fork_origin(folder)
    if origin is None:
        return ""
    from tuilab.errors import TuilabError

    try:
        fork, first = read_records(folder), read_records(origin["folder"])
    except (TuilabError, OSError, KeyError):  # the original moved or went: the fork's own table says the rest
        return ""
    index = next((i for i, r in enumerate(first.runs) if r.get("label") == origin["run"]), None)
    label = fork.runs[0].get("label", "fork") if fork.runs else "fork"
    series = [(origin["run"], [m for m in first.metrics if m.get("run") == index]),
              (label, [m for m in fork.metrics if m.get("run") == 0])]
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    drawn = []
    for k, (label, rows) in enumerate(series):
        pts = [(m["epoch"], m["train_loss"]) for m in rows
               if isinstance(m.get("train_loss"), float) and math.isfinite(m["train_loss"])]
        if len(pts) >= 2:
            look = run_style(k, mono=mono)
            plt.plot([p[0] for p in pts], [p[1] for p in pts], marker=look.marker, color=None if mono else look.rgb)
            drawn.append((k, label))
    if not drawn:
        return ""
    plt.vline(origin["epoch"])
    plt.title(f"training loss per epoch: the fork parts at epoch {origin['epoch']} (|)")
    plt.xlabel("epoch")
    if mono:
        return plt.uncolorize(plt.build()) + "\n" + legend(drawn, width, mono=True).plain
    return plt.build() + "\n" + ansi(legend(drawn, width, mono=False))


def print_fork_chart(folder, stream) -> None:
    origin = fork_origin(folder)
    if origin is None:
        return
    print(f"\nforked from {origin['folder']}: {origin['run']!r} at the end of epoch {origin['epoch']}", file=stream)
    drawn = fork_chart(folder)
    if drawn:
        print(drawn, file=stream)


def report_figures(rec: Reopened, width: int = 110):
    """(name, title, text with ANSI colours) of each chart the report draws of these records, for SVG files."""
    name = rec.title or rec.folder.name
    if rec.lab == "surface":
        from tuilab.views.surface import surface_charts

        experiment, outcome = surface_outcome(rec)
        if not outcome.results:
            return
        contour, error = surface_charts(outcome, width, 36, mono=False, theme="clear")
        yield "trajectories", f"{name}: the trajectories on {outcome.landscape.name}", contour[1]
        yield "error", f"{name}: error by step", error[1]
        atlas = _atlas_of(rec)
        if atlas is not None:
            from tuilab.views.atlas import atlas_summary, atlas_text
            from tuilab.views.run_style import ansi

            for r, label in enumerate(atlas.labels):
                drawn = ansi(atlas_text(atlas, r, mono=False)) + "\n" + atlas_summary(atlas, r)
                yield f"atlas-{label}", f"{name}: atlas of {label}", drawn
        return
    if (rec.folder / "lr_range.csv").is_file():
        from tuilab.engine.training.lr_range import curves_of
        from tuilab.views.lr_range import range_chart

        yield "range-test", f"{name}: learning-rate range test", range_chart(rec.runs, curves_of(rec.folder, rec.runs),
                                                                             width, 22, mono=False)
        return
    drawn = fork_chart(rec.folder, width, 22, mono=False) or loss_chart(rec, width, 22, mono=False)
    if drawn:
        yield "training-loss", f"{name}: training loss per epoch", drawn
    from tuilab.engine.records.sweep_results import from_records
    from tuilab.views.sweep import sweep_charts

    sweep = from_records(rec)
    if sweep is not None:
        keys = [sweep.axes[i][0] for i in sweep.numeric_axes()]
        for key, text in zip(keys, sweep_charts(sweep, width, 22, mono=False), strict=True):
            yield f"sweep-{key}", f"{name}: {sweep.metric} against {key}", text
    maps = io.StringIO()
    print_decision_maps(rec, maps)
    if maps.getvalue().strip():
        yield "decision-maps", f"{name}: decision maps", maps.getvalue().strip("\n")
    strips = io.StringIO()
    print_distributions(rec, strips)
    if strips.getvalue().strip():
        yield "activations", f"{name}: activations over the epochs", strips.getvalue().strip("\n")


def report(folders, stream, chart: bool = True, svg: str | None = None) -> int:
    """Print each folder's records, and with `svg` write each chart there as an SVG file; returns the exit code
    (a folder with no records is an error)."""
    from tuilab.engine.training.race import read_result
    from tuilab.views.svg import SvgFigures

    races = {str(f): read_result(f) for f in folders}
    # a folder with no records: one line, nothing written (a fair race's are its race.json and two folders)
    records = [races[str(f)] if races[str(f)] is not None else read_records(f) for f in folders]
    figures = SvgFigures(svg) if svg else None
    for k, rec in enumerate(records):
        if isinstance(rec, dict):  # a fair race
            from tuilab.views.race import race_chart, race_text

            if k:
                print(file=stream)
            print(f"{rec.get('title', '')}   ({folders[k]})", file=stream)
            print(race_text(rec, chart=chart), file=stream)
            if figures is not None:
                drawn = race_chart(rec, 110, 22, mono=False)
                if drawn:
                    prefix = f"{Path(folders[k]).name}-" if len(records) > 1 else ""
                    figures.add(prefix + "race", drawn, f"{rec.get('title', '')}: the fair race")
            continue
        if figures is not None:
            prefix = f"{rec.folder.name}-" if len(records) > 1 else ""
            for name, title, text in report_figures(rec):
                figures.add(prefix + name, text, title)
        if k:
            print(file=stream)
        if rec.lab == "surface":
            print(f"({rec.folder})", file=stream)
            print_surface_report(rec, stream)
            atlas = _atlas_of(rec)
            if atlas is not None:
                from tuilab.views.atlas import atlas_report

                print("\n" + atlas_report(atlas, mono=True), file=stream)
        elif (rec.folder / "lr_range.csv").is_file():
            from tuilab.engine.training.lr_range import curves_of
            from tuilab.views.lr_range import range_text

            print(f"{headline(rec.title, rec.dataset)}: range test {rec.status}   ({rec.folder})", file=stream)
            curves = curves_of(rec.folder, rec.runs)
            print(range_text(rec.summary.get("preset", "PRESET"), rec.runs, curves, chart=chart), file=stream)
        else:
            print(f"{headline(rec.title, rec.dataset)}: {rec.status}   ({rec.folder})", file=stream)
            print(results_table(rec.runs) if rec.runs else "(no runs recorded)", file=stream)
            forked = fork_chart(rec.folder) if chart else ""
            drawn = loss_chart(rec) if chart and not forked else ""
            if drawn:
                print(drawn, file=stream)
            if forked:
                print_fork_chart(rec.folder, stream)
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
    if figures is not None:
        names = ", ".join(p.name for p in figures.written) or "none: these records have no chart yet"
        print(f"\nSVG figures in {figures.folder}: {names}", file=stream)
    return 0
