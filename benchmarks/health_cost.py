"""What activation health (engine.nn.health: a forward pass over the probe rows, up to 512, in each epoch that
records the internals) costs training: presets run in this process with it and without it, alternately, best of
--repeat; and, less noisy, the seconds spent inside it over the run's (the "inside" column): two runs of the same
preset differ by a few per cent from one to the next on a shared machine, more than health costs.

    python benchmarks/health_cost.py                 # the default presets
    python benchmarks/health_cost.py --presets spirals,deep-sigmoid --repeat 5

Data sets that are not on disk fall back as the presets do (Fashion-MNIST's stand-in, the bundled digits); the
table says which data each ran on. Records are not written (the cost of health alone)."""

import argparse
import time

PRESETS = "xor,spirals,shallow-sigmoid,deep-sigmoid,deep-relu,optimizer-zoo"


def run_once(name: str, epochs: int | None, with_health: bool) -> tuple[float, str]:
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.nn import health
    from tuilab.engine.training import runner
    from tuilab.engine.training.data_cache import DataOptions

    real = health.activation_health
    spent = [0.0]

    def timed(net, theta, X):
        t = time.perf_counter()
        try:
            return real(net, theta, X)
        finally:
            spent[0] += time.perf_counter() - t

    health.activation_health = timed if with_health else (lambda net, theta, X: {})
    try:
        exp = load_experiment(name, [("train.epochs", epochs)] if epochs else [])
        t = time.perf_counter()
        outcome = runner.run_network(exp, data=DataOptions(download=False))  # what is on disk, or a stand-in
        return time.perf_counter() - t, outcome.dataset, spent[0]
    finally:
        health.activation_health = real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=PRESETS)
    ap.add_argument("--epochs", type=int, default=0, help="epochs per run (0: a preset's own, capped below)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    caps = {"xor": 400, "spirals": 300, "shallow-sigmoid": 2, "deep-sigmoid": 2, "deep-relu": 2,
            "optimizer-zoo": 1}
    print(f"{'preset':<18}{'data':<26}{'with':>9}{'without':>10}{'cost':>8}{'inside':>8}")
    for name in args.presets.split(","):
        epochs = args.epochs or caps.get(name)
        run_once(name, epochs, True)  # compiles, loads the data
        with_, without, inside, data = [], [], [], ""
        for _ in range(args.repeat):
            seconds, data, spent = run_once(name, epochs, True)
            with_.append(seconds)
            inside.append(spent / seconds)
            without.append(run_once(name, epochs, False)[0])
        a, b = min(with_), min(without)
        print(f"{name:<18}{data[:25]:<26}{a:8.3f}s{b:9.3f}s{a / b - 1:+8.1%}{min(inside):8.1%}")
    print(f"seconds for the whole preset (epochs: {args.epochs or 'capped per preset'}), best of {args.repeat}; "
          "cost: with health over without, less 1; inside: seconds in activation_health over the run's (least)")
    decision_map_cost()


def decision_map_cost() -> None:
    """What a live decision map costs: its grid's forward pass, against the dashboard's MAP_SECONDS."""
    import numpy as np

    from tuilab.app.live import MAP_SECONDS
    from tuilab.engine.data.sets import load_source, prepare
    from tuilab.engine.nn import decision
    from tuilab.engine.nn.model import MLP

    src, _ = load_source("spirals", n_samples=1000, noise=0.1, seed=0)
    data = prepare(src, normalize="standardize")
    net = MLP([2, 64, 64, 2], "relu", "softmax", "cross_entropy", "float32")
    theta = net.init("kaiming_uniform", "zeros", 0)
    decision.decision_map(net, theta, data)  # compiles
    times = []
    for _ in range(30):
        t = time.perf_counter()
        decision.decision_map(net, theta, data)
        times.append(time.perf_counter() - t)
    ms = 1000 * float(np.median(times))
    print(f"decision map {decision.GRID[0]}x{decision.GRID[1]} on [2,64,64,2]: {ms:.2f} ms (median of 30); "
          f"once every {MAP_SECONDS:g} s while the dashboard trains: {ms / 10 / MAP_SECONDS:.2f} % of a core")


if __name__ == "__main__":
    main()
