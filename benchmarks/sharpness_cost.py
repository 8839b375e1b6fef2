"""What measuring sharpness costs (engine.nn.sharpness: a power iteration of up to 20 Hessian-vector products,
each a float64 gradient of the probe rows, and one more gradient at θ): the edge-of-stability preset run with
train.sharpness_every = 0, 10 and 1, in this process, best of --repeat. Records are not written.

    python benchmarks/sharpness_cost.py
    python benchmarks/sharpness_cost.py --preset edge-of-stability --epochs 300 --repeat 3
"""

import argparse
import time


def run_once(preset: str, epochs: int, every: int) -> float:
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.training import runner
    from tuilab.engine.training.data_cache import DataOptions

    exp = load_experiment(preset, [("train.epochs", epochs), ("train.sharpness_every", every)])
    t = time.perf_counter()
    runner.run_network(exp, data=DataOptions(download=False))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="edge-of-stability")
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    run_once(args.preset, 20, 1)  # compiles, loads the data
    best = {}
    for every in (0, 10, 1):
        best[every] = min(run_once(args.preset, args.epochs, every) for _ in range(args.repeat))
    print(f"{args.preset}, {args.epochs} epochs, best of {args.repeat}")
    print(f"{'sharpness_every':>16}{'seconds':>10}{'cost':>9}")
    for every, seconds in best.items():
        print(f"{every:>16}{seconds:>9.2f}s{seconds / best[0] - 1:>+9.0%}")


if __name__ == "__main__":
    main()
