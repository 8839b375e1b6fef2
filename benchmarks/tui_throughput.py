"""The dashboard against headless: one run's training speed, and a whole comparison's wall time.

    python benchmarks/tui_throughput.py                      # shallow-sigmoid, then the 18-run zoo
    python benchmarks/tui_throughput.py --preset deep-relu --epochs 2 --zoo-epochs 1

For one run (--preset): samples/s from summary.json, headless and in the dashboard. For the
comparison (--zoo, default optimizer-zoo): the wall time of the whole experiment, from the
start of the run to its last record, headless with --jobs 1 and --jobs 2 (each in its own
process) and in the dashboard (Textual's run_test: the real screens, timers and redraws on a
headless driver), and the dashboard's time against the faster headless one. Best of --repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _overrides(preset_epochs: int, dataset: str | None):
    return [("train.epochs", preset_epochs)] + ([("data.name", dataset)] if dataset else [])


def headless_worker(preset: str, epochs: int, dataset: str | None, jobs: int, out: str) -> dict:
    from tuilab.engine.config.presets import load_experiment
    from tuilab.engine.records.run_records import RunRecords
    from tuilab.engine.training.runner import run_network

    exp = load_experiment(preset, _overrides(epochs, dataset))
    t0 = time.perf_counter()
    outcome = run_network(exp, records=RunRecords(out), jobs=jobs)
    return {"wall": time.perf_counter() - t0, "status": outcome.status,
            "samples_per_second": outcome.runs[0].get("samples_per_second")}


def headless(preset: str, epochs: int, dataset: str | None, jobs: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", preset, "--epochs", str(epochs), "--jobs", str(jobs),
           "--out", str(out), "--dataset", dataset or ""]  # "": the preset's own data set
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


async def in_tui(preset: str, epochs: int, dataset: str | None, root: Path) -> dict:
    from tuilab.app.app import make_app

    t0 = time.perf_counter()
    app = make_app(preset, _overrides(epochs, dataset), out_root=root)
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.lives and not app.lives[0].running and app.lives[0].outcome is not None):
            for live in app.lives:  # the dashboard's cost, not its pace for watching (app.live.watch_pace)
                live.control.min_epoch_seconds = 0.0
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
        await pilot.pause(0.2)
    summary = json.loads(next(root.glob("*/summary.json")).read_text())
    return {"wall": wall, "status": summary["status"], "samples_per_second": summary["runs"][0]["samples_per_second"]}


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        return float("nan")


async def long_in_tui(preset: str, epochs: int, root: Path, size=(120, 40)) -> dict:
    """Epochs a second over the first and the last tenth of a long run in the dashboard, the UI
    thread's CPU share meanwhile, and the process's memory."""
    import resource

    from tuilab.app.app import make_app

    app = make_app(preset, [("train.epochs", epochs)], out_root=root)
    marks = []  # (wall, UI-thread CPU, epochs of all runs together)
    async with app.run_test(size=size) as pilot:
        while not app.lives:
            await asyncio.sleep(0.05)
        live = app.lives[0]
        live.control.min_epoch_seconds = 0.0  # the dashboard's cost, not its pace for watching
        rss0 = _rss_mb()
        def mark():
            runs = live.snapshot().runs
            marks.append((time.perf_counter(), time.thread_time(), sum(r.epoch for r in runs)))

        while live.running or live.outcome is None:
            mark()
            await asyncio.sleep(0.25)
        mark()  # the end (at most 0.25 s late: the last tenth's rate is, if anything, understated)
        n_runs = len(live.snapshot().runs)
        await pilot.pause(0.2)
    rss1 = _rss_mb()
    total = epochs * n_runs

    def rate(lo: float, hi: float) -> float:
        """Epochs a second (all runs together, per run) from the last mark at or before the fraction lo of all
        the epochs to the first at or past hi: runs advance a chunk at a time (~20 epochs of a small data
        set a turn), so a tenth may hold no mark of its own."""
        (t0, _, e0) = [m for m in marks if m[2] <= lo * total][-1]
        (t1, _, e1) = [m for m in marks if m[2] >= hi * total][0]
        return (e1 - e0) / (t1 - t0) / n_runs if t1 > t0 else float("nan")

    busy = [m for m in marks if 0 < m[2] < total]
    ui = (busy[-1][1] - busy[0][1]) / (busy[-1][0] - busy[0][0]) if len(busy) > 1 else float("nan")
    return {"first": rate(0.0, 0.1), "last": rate(0.9, 1.0), "ui_cpu": ui, "rss_start": rss0, "rss_end": rss1,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "wall": marks[-1][0] - marks[0][0]}


def long_report(preset: str, epochs: int, tmp: Path) -> None:
    h = headless(preset, epochs, None, 1, tmp / f"long-h-{preset}")
    t = asyncio.run(long_in_tui(preset, epochs, tmp / f"long-t-{preset}"))
    h_rate = epochs / h["wall"]
    print(f"{preset}, {epochs:,} epochs in the dashboard (120x40):")
    print(f"  epochs/s a run  first tenth {t['first']:,.0f}, last tenth {t['last']:,.0f} "
          f"({t['last'] / t['first']:.0%} of the first); headless {h_rate:,.0f} over the whole run "
          f"(last tenth {t['last'] / h_rate:.0%} of it)")
    print(f"  UI thread {t['ui_cpu']:.0%} of a core while training; resident memory {t['rss_start']:.0f} MB "
          f"at the start, {t['rss_end']:.0f} MB at the end, peak {t['peak_rss']:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="shallow-sigmoid", help="the one-run preset")
    ap.add_argument("--dataset", default="fashion-mnist", help="for the throughput comparisons ('': the preset's)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--zoo", default="optimizer-zoo", help="the many-run preset ('' to skip)")
    ap.add_argument("--zoo-epochs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--long", type=int, default=0, metavar="EPOCHS",
                    help="also run spirals this many epochs (e.g. 50000) "
                         "in the dashboard: epochs/s, first against last tenth, UI CPU, memory")
    ap.add_argument("--long-zoo", type=int, default=0, metavar="EPOCHS", help="the 18-run zoo's epochs for --long")
    ap.add_argument("--only-long", action="store_true", help="skip the throughput comparisons")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(headless_worker(a.worker, a.epochs, a.dataset or None, a.jobs, a.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.long:
            long_report("spirals", a.long, tmp)
        if a.long_zoo:
            long_report(a.zoo or "optimizer-zoo", a.long_zoo, tmp)
        if a.only_long:
            return
        h = max((headless(a.preset, a.epochs, a.dataset, 1, tmp / f"h{k}") for k in range(a.repeat)),
                key=lambda r: r["samples_per_second"])
        t = max((asyncio.run(in_tui(a.preset, a.epochs, a.dataset, tmp / f"t{k}")) for k in range(a.repeat)),
                key=lambda r: r["samples_per_second"])
        print(f"{a.preset} on {a.dataset}, {a.epochs} epochs (best of {a.repeat})")
        print(f"  {'headless':12s}{h['samples_per_second']:>14,.0f} samples/s")
        print(f"  {'dashboard':12s}{t['samples_per_second']:>14,.0f} samples/s   "
              f"{t['samples_per_second'] / h['samples_per_second']:.0%} of headless")
        if a.zoo:
            rows = {}
            for jobs in (1, 2):
                rows[f"headless --jobs {jobs}"] = min(
                    headless(a.zoo, a.zoo_epochs, a.dataset, jobs, tmp / f"z{jobs}-{k}")["wall"]
                    for k in range(a.repeat))
            rows["dashboard"] = min(asyncio.run(in_tui(a.zoo, a.zoo_epochs, a.dataset, tmp / f"zt{k}"))["wall"]
                                    for k in range(a.repeat))
            best = min(v for k, v in rows.items() if k.startswith("headless"))
            print(f"{a.zoo} on {a.dataset}, {a.zoo_epochs} epochs per run, wall time of the whole experiment "
                  f"(best of {a.repeat})")
            for k, v in rows.items():
                print(f"  {k:20s}{v:>8.1f} s   {v / best:.2f}x the faster headless")


if __name__ == "__main__":
    main()
