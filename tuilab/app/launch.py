"""`tuilab` with no command: check the input, then open the dashboard."""

from __future__ import annotations


def launch_dashboard(args, overrides) -> int:
    from tuilab.engine.presets import load_experiment
    from tuilab.engine.training.runner import DataOptions

    if args.preset:
        load_experiment(args.preset, overrides)  # a bad preset or --set is one line and exit 2, before the screen
    from tuilab.app.app import make_app

    app = make_app(args.preset, overrides, data=DataOptions(data_dir=args.data_dir, strict=bool(args.strict_data),
                                                      mirror=args.data_mirror),
                   out_root=args.out or "runs")
    app.run()
    return app.return_code or 0
