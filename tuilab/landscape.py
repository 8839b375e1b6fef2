"""`tuilab landscape RUNDIR`: a trained run's own loss landscape on a plane through its parameters, its path
projected on it, printed (a contour with the path, a table of how much of it the plane holds) and kept in
<run>/landscape.npz (engine.nn.landscape, views.net_landscape)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tuilab.errors import TuilabError

ROWS = 2000  # the training rows the loss is taken on, evenly spread over the set


def load_run(folder, label: str | None):
    """(experiment, run index, run config) of a records folder; the best run when no label is given."""
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.results import ranked
    from tuilab.engine.records.run_records import read_records, slug

    folder = Path(folder)
    rec = read_records(folder)
    if rec.lab != "network":
        raise TuilabError(f"{folder}: a surface experiment: its whole landscape is its contour (tuilab report)")
    experiment = load_experiment(str(folder / "config.toml"))
    if label is None:
        order = [i for i in ranked(rec.runs) if i < len(experiment.runs)] or list(range(len(experiment.runs)))
        index = order[0]
    else:
        found = [i for i, r in enumerate(experiment.runs) if label in (r.label, slug(r.label))]
        if not found:
            names = ", ".join(repr(r.label) for r in experiment.runs)
            raise TuilabError(f"{folder}: no run {label!r}; its runs are {names}")
        index = found[0]
    return experiment, index


def _net_and_rows(run, rows: int, data_dir=None):
    """The run's network (as its Trainer built it) and `rows` of its training data, evenly spread."""
    from tuilab.engine.nn.model import MLP
    from tuilab.engine.training.data_cache import DataCache, DataOptions

    # no download: the run's own data is on this disk, or the stand-in it trained on when it was not
    data = DataCache(DataOptions(data_dir=data_dir, download=False), lambda event: None).get(run)
    m = run.model
    activation = m.activation if isinstance(m.activation, str) else list(m.activation)
    net = MLP([data.n_inputs, *m.hidden, data.n_outputs], activation, m.output, m.loss, m.dtype)
    if rows < 1:
        raise TuilabError(f"--rows must be 1 or more, got {rows}")
    pick = np.unique(np.linspace(0, len(data.X_train) - 1, min(rows, len(data.X_train))).astype(np.int64))
    return net, data.X_train[pick], data.Y_train[pick], data


def landscape_of(folder, label=None, directions="pca", grid=31, span=None, rows=ROWS, seed=0, data_dir=None,
                 threads=None, now=False, keep=True):
    """(the landscape, the run's label, the data set's name), kept in <run>/landscape.npz (keep). threads: how
    many batches of points at once (default: every core); now: a run still training ends its path at its last
    checkpoint (the dashboard's live view), past its last kept snapshot."""
    from tuilab.engine.nn import landscape as L
    from tuilab.engine.records import snapshots
    from tuilab.engine.records.run_records import read_records, slug
    from tuilab.engine.training.threads import available_cpus

    if directions not in L.DIRECTIONS:
        raise TuilabError(f"--directions must be one of {', '.join(L.DIRECTIONS)}, got {directions!r}")
    folder = Path(folder)
    experiment, index = load_run(folder, label)
    run = experiment.runs[index]
    epochs, thetas = snapshots.load(folder / slug(run.label))
    if now:
        epochs, thetas = _with_checkpoint(folder / slug(run.label), epochs, thetas)
    net, X, Y, data = _net_and_rows(run, rows, data_dir)
    trained_on = read_records(folder).dataset  # "a, b" where the runs trained on several sets
    if trained_on and data.name not in [name.strip() for name in trained_on.split(",")]:
        raise TuilabError(f"{folder}: {run.label!r} trained on {trained_on}, which is not on this disk (found "
                          f"{data.name}); fetch it first (run the preset once), or --data-dir DIR")
    if thetas.shape[1] != net.layout.size:
        raise TuilabError(f"{folder / slug(run.label)}: its snapshots are of another network than config.toml says")
    others = {}
    if directions == "pca":
        plane = L.pca_plane(thetas)
    elif directions == "random":
        plane = L.random_plane(net.layout, thetas[-1], seed)
    else:
        others = _same_start(folder, experiment, index, thetas[0])
        if not others:
            raise TuilabError(f"{folder}: --directions runs needs two or more runs that started from the same θ0 "
                              f"(the same network and seed) with snapshots; {run.label!r} has no such partner")
        partner = max(others, key=lambda k: np.linalg.norm(others[k][-1].astype(np.float64) - thetas[-1]))
        plane = L.runs_plane(thetas[0], thetas[-1], others[partner][-1])
    land = L.compute(net, plane, thetas, epochs, X, Y, grid, span, threads=threads or available_cpus(),
                     others=others)
    if keep:
        land.save(folder / slug(run.label) / "landscape.npz")
    return land, run.label, data.name


def _with_checkpoint(run_folder: Path, epochs, thetas):
    """The kept snapshots and, where the run's checkpoint is of a later epoch, its θ after them."""
    import json

    path = run_folder / "checkpoint.npz"
    if not path.is_file():
        return epochs, thetas
    try:
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            theta = np.asarray(z["theta"], np.float32)
    except (OSError, KeyError, ValueError):
        return epochs, thetas  # being rewritten as we read, or unreadable: the snapshots alone
    epoch = int(meta.get("epoch", -1))
    if epoch <= int(epochs[-1]) or theta.shape != thetas.shape[1:]:
        return epochs, thetas
    return np.append(epochs, epoch), np.vstack([thetas, theta[None]])


def _same_start(folder, experiment, index, theta0) -> dict:
    """Every other run of the experiment with snapshots that began at theta0: label -> its snapshots."""
    from tuilab.engine.records import snapshots
    from tuilab.engine.records.run_records import slug

    out = {}
    for i, r in enumerate(experiment.runs):
        path = folder / slug(r.label)
        if i == index or not snapshots.on_disk(path):
            continue
        _, thetas = snapshots.load(path)
        if thetas.shape[1] == len(theta0) and np.array_equal(thetas[0], theta0):
            out[r.label] = thetas
    return out


def print_landscape(folder, stream, label=None, directions="pca", grid=31, span=None, rows=ROWS, seed=0,
                    data_dir=None) -> int:
    """`tuilab landscape`: compute, print, keep."""
    import time

    import plotext

    from tuilab.engine.records.run_records import slug
    from tuilab.views.net_landscape import honesty_line, path_rows, surface_of
    from tuilab.views.run_style import ansi, legend, no_color
    from tuilab.views.surface import draw_surface, format_table

    began = time.perf_counter()
    land, run_label, dataset = landscape_of(folder, label, directions, grid, span, rows, seed, data_dir)
    seconds = time.perf_counter() - began
    surface, traces = surface_of(land, f"{run_label}: its loss landscape", labels=(run_label,))
    print(f"{run_label}: training loss on {land.rows} rows of {dataset} over a {len(land.a)}x{len(land.b)} plane, "
          f"{surface.summary} ({seconds:.1f} s)", file=stream)
    cols, lines = shutil.get_terminal_size((100, 40))
    width = max(60, min(cols, 140))
    colorless = not (hasattr(stream, "isatty") and stream.isatty()) or no_color()
    plotext.clear_figure()
    if colorless:
        plotext.theme("clear")
    draw_surface(plotext, surface, traces, legend=False, mono=colorless)
    plotext.xlabel("a")
    plotext.ylabel("b")
    plotext.plotsize(width, max(20, min(lines - 4, 36)))
    text = plotext.build()
    print(plotext.uncolorize(text) if colorless else text, file=stream)
    key = legend([(k, t.label) for k, t in enumerate(traces)], width, mono=colorless)
    print((key.plain if colorless else ansi(key)) + "   o start  * end", file=stream)
    print(honesty_line(land), file=stream)
    print(format_table(*path_rows(land)), file=stream)
    print(f"kept in {Path(folder) / slug(run_label) / 'landscape.npz'}", file=stream)
    return 0
