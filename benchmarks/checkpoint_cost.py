"""What checkpoints cost a run of many short epochs: spirals, 2,000 epochs, with records, with and
without checkpoints (each in its own process, twice). `python benchmarks/checkpoint_cost.py`"""

import subprocess
import sys
import tempfile
import time


def once(checkpoints: bool) -> float:
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.run_records import RunRecords
    from tuilab.engine.training import runner

    if not checkpoints:
        runner.checkpoint_of = lambda records, run: None
    exp = load_experiment("spirals", [("train.epochs", 2000)])
    runner.run_network(exp, records=RunRecords(tempfile.mkdtemp()))  # compiles or loads the kernels
    t = time.perf_counter()
    runner.run_network(exp, records=RunRecords(tempfile.mkdtemp()))
    return time.perf_counter() - t


if __name__ == "__main__":
    if len(sys.argv) == 2:
        print(once(sys.argv[1] == "on"))
        sys.exit(0)
    print("spirals, 2,000 epochs with records       seconds")
    for mode in ("on", "off", "on", "off"):
        out = subprocess.run([sys.executable, __file__, mode], capture_output=True, text=True, check=True)
        print(f"  checkpoints {mode:<3}                        {float(out.stdout):6.2f}")
