"""Command line: `tuilab` (the dashboard), `tuilab --preset NAME headless`, `tuilab list`."""

from __future__ import annotations

import argparse
import os
import sys

from tuilab import __version__
from tuilab.errors import TuilabError
from tuilab.install import pip_install

EXAMPLES = """\
examples:
  tuilab                                   open the dashboard and pick a preset
  tuilab --preset deep-relu                open the dashboard on one preset
  tuilab --preset deep-relu headless       train with no screen; records in runs/
  tuilab --preset optimizer-zoo --epochs 3 --jobs 2 headless
  tuilab --preset shallow-sigmoid --dataset fashion-mnist --set optimizer.lr=0.01 headless
  tuilab --preset my-experiment.toml --out results/try1 headless
  tuilab --preset shallow-sigmoid --sweep 'train.seed=[0, 1, 2]' headless
  tuilab --preset lr-sweep --cluster tcp://scheduler:8786 headless
  tuilab --preset shallow-sigmoid --lr-range headless   which learning rate? (a range test)
  tuilab fork runs/... --at 5 --set optimizer.lr=0.003   what if the lr had dropped at epoch 5?
  tuilab --preset optimizer-zoo-fair headless   each optimizer at its own tuned lr, over 3 seeds
  tuilab --preset rosenbrock headless      optimizers racing on a 2-D landscape
  tuilab list                              every preset with its description
  tuilab report runs/... --svg figures     the records' tables, and each chart as an SVG file
  tuilab --preset rosenbrock-zoo serve     the dashboard in a web browser, http://127.0.0.1:8000

data sets are looked for in --data-dir, $TUILAB_DATA, ~/.cache/tuilab and
/usr/share/datasets/<name>/; when one is missing tuilab says so and runs on the
bundled digits (or stops, with --strict-data).
"""


def _add_run_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument("--preset", metavar="NAME|FILE", help="a preset name (see `tuilab list`) or a TOML file",
                   **d)
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                   help="override a setting, e.g. --set optimizer.lr=0.01 (repeatable)",
                   **(d or {"default": []}))
    p.add_argument("--sweep", dest="sweeps", metavar="KEY=[VALUES]", action="append",
                   help="run the preset at each value, e.g. --sweep 'optimizer.lr=[1e-3, 1e-2]' "
                        "(a TOML list; repeatable: every combination)", **(d or {"default": []}))
    p.add_argument("--dataset", metavar="NAME", help="same as --set data.name=NAME", **d)
    p.add_argument("--data", metavar="FILE.csv", help="your own data: a CSV file with a header row, numeric features "
                   "and a label column (the last, or --set data.label=NAME)", **d)
    p.add_argument("--epochs", type=int, metavar="N", help="same as --set train.epochs=N", **d)
    p.add_argument("--seed", type=int, metavar="N", help="same as --set train.seed=N", **d)
    p.add_argument("--data-dir", metavar="DIR", help="where to look for IDX data sets first", **d)
    p.add_argument("--strict-data", action="store_true",
                   help="stop with an error instead of falling back to the bundled digits", **d)
    p.add_argument("--data-mirror", metavar="URL",
                   help="fetch MNIST, Fashion-MNIST and KMNIST from URL/<set>/<file> (or TUILAB_DATA_MIRROR)", **d)
    p.add_argument("--out", metavar="DIR", help="where the records go (default runs/<time>-<preset>/)", **d)
    p.add_argument("--jobs", type=int, metavar="N", help="run a comparison's runs in N processes", **d)
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="train the runs on Dask: local:N (N worker processes here) or tcp://HOST:PORT (a "
                        f"running scheduler); or TUILAB_CLUSTER. Needs Dask: {pip_install('cluster')}", **d)
    p.add_argument("--lr-range", action=argparse.BooleanOptionalAction,
                   help="a learning-rate range test of each run instead of training it (the lr rising from "
                        "1e-7 to 10 over 200 steps; --set lr_range.steps=N etc.); --no-lr-range trains a preset "
                        "that has a [lr_range] table", **d)
    p.add_argument("--fair", action=argparse.BooleanOptionalAction,
                   help="a fair race of the preset's runs: each one's learning rate tuned over its own grid "
                        "(successive halving), then all raced at their tuned rates over 3 seeds (--set race.seeds=N "
                        "etc.); --no-fair runs a preset that has a [race] table as it is", **d)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="headless: also say which BLAS the kernels call and which training path each "
                        "network shape runs on (timed on its first use on this machine)", **d)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuilab",
        description="A terminal laboratory for neural-network optimisation.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tuilab {__version__}")
    _add_run_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="command")
    headless = sub.add_parser("headless", help="run the preset with no screen and write records",
                              description="Run a preset with no screen: progress on stderr, a table "
                                          "of the runs on stdout, records on disk.")
    _add_run_options(headless, suppress=True)
    sub.add_parser("list", help="list the presets with their descriptions")
    report = sub.add_parser("report", help="print the records of finished, stopped or killed runs",
                            description="Read records folders back and print their results, best "
                                        "first, with a chart of the training loss.")
    report.add_argument("folders", nargs="+", metavar="RUNDIR", help="a folder a run wrote (runs/...)")
    report.add_argument("--no-chart", action="store_true", help="the tables only")
    report.add_argument("--svg", metavar="DIR", help="also write each chart as an SVG file in DIR (for a browser "
                                                     "or slides)")
    opener = sub.add_parser("open", help="the dashboard on records: curves, runs, confusion, gradients",
                            description="Open records folders in the dashboard; several are overlaid.")
    opener.add_argument("folders", nargs="+", metavar="RUNDIR")
    fork = sub.add_parser("fork", help="a new run from a run's checkpoint at an epoch, with settings changed",
                          description="Start a new run from RUNDIR's run at the end of epoch EPOCH (its parameters, "
                                      "optimizer state and minibatch order), with the --set changes, in a records "
                                      "folder of its own beside the original; then print both runs' training "
                                      "loss, where they part. Runs keep fork points at up to train.fork_points "
                                      "epochs (8: every epoch of a run of up to 7).")
    fork.add_argument("folder", metavar="RUNDIR")
    fork.add_argument("--at", type=int, required=True, metavar="EPOCH", help="the epoch whose end it starts from")
    fork.add_argument("--run", metavar="LABEL", help="which run (needed where RUNDIR has several)")
    fork.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                      help="a change, e.g. --set optimizer.lr=0.003 (optimizer.*, schedule.*, train.epochs)")
    fork.add_argument("--out", metavar="DIR", help="where the fork's records go (default: beside RUNDIR)")
    fork.add_argument("--data-dir", metavar="DIR", help="where to look for data sets first")
    resume = sub.add_parser("resume", help="continue a stopped, interrupted or killed experiment",
                            description="Continue the experiment in RUNDIR: finished runs are kept, the "
                                        "others go on from their last finished epoch, in the same records.")
    resume.add_argument("folder", metavar="RUNDIR")
    resume.add_argument("--jobs", type=int, metavar="N", help="run the remaining runs in N processes")
    resume.add_argument("--cluster", metavar="ADDRESS", help="run the remaining runs on Dask (as for a run)")
    resume.add_argument("--data-dir", metavar="DIR", help="where to look for data sets first")
    land = sub.add_parser("landscape", help="a trained run's own loss landscape, its path drawn on it",
                          description="The training loss over a plane through a run's parameters, the run's "
                                      "kept snapshots projected on it (o start, * end), with how much of the "
                                      "path the plane holds; kept in <run>/landscape.npz.")
    land.add_argument("folder", metavar="RUNDIR")
    land.add_argument("--run", metavar="LABEL", help="which run (default: the best)")
    land.add_argument("--directions", default="pca", choices=("pca", "random", "runs"),
                      help="pca: the path's first two principal components; random: two filter-normalised "
                           "random directions (Li et al. 2018); runs: through the runs' shared start and two "
                           "runs' ends, every run drawn (default pca)")
    land.add_argument("--grid", type=int, default=31, metavar="N", help="N x N points (default 31)")
    land.add_argument("--span", type=float, metavar="S", help="the plane from -S to S on both axes "
                                                             "(default: the path's extent and a quarter more)")
    land.add_argument("--rows", type=int, default=2000, metavar="R",
                      help="the training rows the loss is taken on (default 2000)")
    land.add_argument("--seed", type=int, default=0, help="the random directions' seed (default 0)")
    land.add_argument("--data-dir", metavar="DIR", help="where to look for data sets first")
    web = sub.add_parser("serve", help=f"serve the dashboard to a web browser (needs {pip_install('web')})",
                         description="Serve the dashboard to a web browser with textual-serve: each tab that "
                                     "opens the page gets its own dashboard, with the options given before "
                                     "`serve` (e.g. tuilab --preset rosenbrock-zoo serve).")
    web.add_argument("--host", default="127.0.0.1",
                     help="the address to listen on (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    return parser


def overrides_from(args) -> list[tuple[str, object]]:
    from tuilab.engine.config.overrides import parse_override

    pairs = [parse_override(text) for text in args.overrides or []]
    if args.dataset is not None:
        pairs.append(("data.name", args.dataset))
    if getattr(args, "data", None) is not None:
        pairs += [("data.name", "csv"), ("data.path", args.data)]
    if args.epochs is not None:
        pairs.append(("train.epochs", args.epochs))
    if args.seed is not None:
        pairs.append(("train.seed", args.seed))
    return pairs


def sweeps_from(args) -> list[tuple[str, tuple]]:
    from tuilab.engine.config.sweep import parse_sweep_option

    return [parse_sweep_option(text) for text in getattr(args, "sweeps", None) or []]


def list_presets(stream) -> None:
    from tuilab.engine.config.presets import preset_catalog

    catalog = preset_catalog()
    for group, entries in catalog.items():
        if not entries:
            continue
        print(f"{group}:", file=stream)
        width = max(len(e.name) for e in entries)
        for e in entries:
            print(f"  {e.name.ljust(width)}  {e.description or e.error or ''}", file=stream)
        print(file=stream)


def _say_what_runs_where() -> None:
    import logging

    from tuilab.engine.training.threads import describe

    logging.basicConfig(level=logging.INFO, format="tuilab: %(message)s", stream=sys.stderr)
    logging.getLogger("tuilab").info(describe())


def _run(args) -> int:
    if args.command == "list":
        list_presets(sys.stdout)
        return 0
    if args.command == "open":
        from pathlib import Path

        from tuilab.engine.records.run_records import read_records
        from tuilab.engine.training.race import read_result

        # a fair race's folder: its race, each optimizer at its tuned lr over the seeds
        args.folders = [str(Path(f) / "race") if read_result(f) is not None else f for f in args.folders]
        for folder in args.folders:
            read_records(folder)  # a folder with no records is one line and exit 2, before the screen
        from tuilab.app.app import make_app

        app = make_app(opened=args.folders, records=False)
        app.run()
        return app.return_code or 0
    if args.command == "resume":
        return _resume(args)
    if args.command == "fork":
        return _fork(args)
    if args.command == "serve":
        from tuilab.serve import serve

        if args.preset:  # a bad preset, --set or --sweep: one line here, not an error in every browser tab
            from tuilab.engine.config.presets import load_experiment

            load_experiment(args.preset, overrides_from(args), sweeps_from(args), args.lr_range, args.fair)
        return serve(args.host, args.port, args.run_args)
    if args.command == "landscape":
        from tuilab.landscape import print_landscape

        return print_landscape(args.folder, sys.stdout, args.run, args.directions, args.grid, args.span, args.rows,
                               args.seed, args.data_dir)
    if args.command == "report":
        from tuilab.report import report

        return report(args.folders, sys.stdout, chart=not args.no_chart, svg=args.svg)
    if args.jobs is not None and args.jobs < 1:
        raise TuilabError(f"--jobs must be a whole number >= 1, got {args.jobs}")
    if args.command == "headless":
        if not args.preset:
            raise TuilabError(
                "headless needs a preset: tuilab --preset NAME headless (`tuilab list` shows them)")
        from tuilab.engine.config.presets import load_experiment
        from tuilab.engine.records.run_records import default_out
        from tuilab.engine.training.data_cache import DataOptions
        from tuilab.headless import run_headless

        if args.verbose:
            _say_what_runs_where()
        experiment = load_experiment(args.preset, overrides_from(args), sweeps_from(args), args.lr_range, args.fair)
        out = args.out or default_out(experiment.name)
        options = DataOptions(data_dir=args.data_dir, strict=bool(args.strict_data), mirror=args.data_mirror)
        cluster = _cluster_of(args)
        return run_headless(experiment, out=out, data_options=options, jobs=args.jobs or 1, cluster=cluster)
    from tuilab.app.launch import launch_dashboard

    return launch_dashboard(args, overrides_from(args), sweeps_from(args))


def _cluster_of(args) -> str | None:
    """--cluster, else TUILAB_CLUSTER, checked now: a bad address is one line before any record."""
    from tuilab.engine.training.executors import CLUSTER_ENV, check_cluster_address

    cluster = args.cluster or os.environ.get(CLUSTER_ENV) or None
    if cluster:
        check_cluster_address(cluster)
    return cluster


def _resume(args) -> int:
    from pathlib import Path

    from tuilab.engine.records.resume import plan_resume
    from tuilab.engine.training.data_cache import DataOptions
    from tuilab.headless import run_headless

    experiment, finished = plan_resume(args.folder)
    if len(finished) == len(experiment.runs):
        print(f"tuilab: every run in {args.folder} has finished; nothing to resume")
        return 0
    options = DataOptions(data_dir=args.data_dir, mirror=args.data_mirror)
    return run_headless(experiment, out=Path(args.folder), data_options=options, jobs=args.jobs or 1,
                        resume=finished, cluster=_cluster_of(args))


def _fork(args) -> int:
    from tuilab.engine.config.overrides import parse_override
    from tuilab.engine.records.fork import make_fork
    from tuilab.engine.training.data_cache import DataOptions
    from tuilab.headless import run_headless
    from tuilab.report import print_fork_chart

    changes = [parse_override(text) for text in args.overrides]
    experiment, out = make_fork(args.folder, args.at, changes, args.run, args.out)
    print(f"tuilab: forking {experiment.runs[0].label!r} into {out}", file=sys.stderr)
    code = run_headless(experiment, out=out, data_options=DataOptions(data_dir=args.data_dir), resume={})
    print_fork_chart(out, sys.stdout)
    return code


def command_index(parser: argparse.ArgumentParser, argv: list[str]) -> int | None:
    """Where the command word stands in argv: the first token that is neither an option nor an option's value.

    An option's value may itself read "serve" (--out serve), so argv.index("serve") is not it."""
    takes_value = {flag for action in parser._actions if action.nargs != 0 for flag in action.option_strings}
    flags = {flag for action in parser._actions for flag in action.option_strings}

    def needs_value(token: str) -> bool:
        if token in flags:
            return token in takes_value
        matches = [flag for flag in flags if flag.startswith(token)]  # argparse takes --pre for --preset
        return len(matches) == 1 and matches[0] in takes_value

    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return i + 1 if i + 1 < len(argv) else None
        if not token.startswith("-") or token == "-":
            return i
        i += 2 if needs_value(token) else 1  # --out=DIR and flags carry no separate value
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    # serve: the options before it are the served dashboard's own
    args.run_args = argv[:command_index(parser, argv)] if args.command == "serve" else []
    for key in ("preset", "dataset", "epochs", "seed", "data_dir", "data_mirror", "strict_data", "out", "jobs",
                "verbose", "cluster", "lr_range", "fair"):
        if not hasattr(args, key):
            setattr(args, key, None)
    try:
        if args.command != "list":
            from tuilab.compat import check_plotext

            check_plotext()
        return _run(args)
    except TuilabError as exc:
        print(f"tuilab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tuilab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # `tuilab list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
