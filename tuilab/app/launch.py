"""`tuilab` with no command: check the input, then open the dashboard."""

from __future__ import annotations


def launch_dashboard(args, overrides, sweeps=()) -> int:
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.training.data_cache import DataOptions

    if args.preset:  # a bad preset, --set or --sweep is one line and exit 2, before the screen
        load_experiment(args.preset, overrides, sweeps, args.lr_range, args.fair)
    if args.cluster:
        from tuilab.engine.training.executors import check_cluster_address, start_resource_tracker

        check_cluster_address(args.cluster)  # no Dask, or no scheduler there: said before the screen too
        start_resource_tracker()  # while stderr is still the terminal's
    from tuilab.app.app import make_app

    data = DataOptions(data_dir=args.data_dir, strict=bool(args.strict_data), mirror=args.data_mirror)
    app = make_app(args.preset, overrides, sweeps=sweeps, data=data, out_root=args.out or "runs",
                   cluster=args.cluster, lr_range=args.lr_range, fair=args.fair)
    app.run()
    return app.return_code or 0
